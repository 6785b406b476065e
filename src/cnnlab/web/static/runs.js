// The runs in the served folder: the list, the current run's summary and metrics, and switching runs.
import { resetChecks } from "./checks.js";
import { showCurves } from "./curves.js";
import { renderGraph } from "./graph.js";
import { showHealth } from "./health.js";
import { refresh, resetOutputs, showSample } from "./input.js";
import { $, api, esc, runPath, showError, state } from "./state.js";

export async function loadRuns() {
  const { runs } = await api("/api/runs");
  const select = $("#run");
  select.innerHTML = runs.map((r) => `<option value="${esc(r.id)}">${esc(r.id === "." ? r.name : r.id)}</option>`).join("");
  if (runs.length) {  // the most recently trained run first: most likely the one just made
    const newest = runs.reduce((a, b) => (b.modified > a.modified ? b : a));
    select.value = newest.id;
    await selectRun(newest.id);
  }
  else showError("No runs here. Train one with: cnnlab train --out runs/NAME");
}

async function selectRun(id) {
  state.run = id;
  state.info = null;
  const gen = ++state.gen;
  resetOutputs();
  const info = await api(runPath(id));
  if (gen !== state.gen) return;
  state.info = info;
  const { input_shape: shape, config, metrics } = info;
  const last = metrics.at(-1) || {};
  const held = "val_accuracy" in last ? "val" : "test";
  $("#run-info").textContent = `${config.model || "model"} on ${config.data || "data"}, input ${shape.join("x")}` +
    (last[`${held}_accuracy`] !== undefined ? `, ${held} accuracy ${last[`${held}_accuracy`].toFixed(4)}` : "");
  renderSummary(info);
  renderGraph(info.graph);
  $("#target").innerHTML = `<option value="">the predicted one</option>` +
    info.classes.map((c, i) => `<option value="${i}">${esc(c)}</option>`).join("");
  showCurves(id);
  resetChecks();
  showHealth(id).catch((err) => showError(err.message));
  for (const sel of ["#eval-summary", "#mistakes-filter"]) $(sel).textContent = "";
  for (const sel of ["#confusion", "#mistakes"]) $(sel).innerHTML = "";
  // a test sample belongs to its run: the same index is fetched again from the new run's own test split
  if (state.inputs.sample) await showSample(state.inputs.sample.index, false);
  await refresh(true);
}

function renderSummary(info) {
  const s = info.summary;
  $("#summary").innerHTML = !s ? "<p>Custom model (no summary).</p>" :
    `<table><tr><th>Layer (type)</th><th>Output Shape</th><th>Param #</th><th>formula</th><th>mult-adds</th></tr>` +
    s.layers.map((r) => `<tr><td>${esc(r.name)} (${esc(r.kind)})</td><td>${esc(r.output_shape)}</td><td>${r.params.toLocaleString("en")}</td>` +
      `<td>${esc(r.formula)}</td><td>${r.macs.toLocaleString("en")}</td></tr>`).join("") + "</table>" +
    `<p>${s.closing_lines.map(esc).join("<br>")}</p>`;
  const m = info.metrics;
  $("#metrics").innerHTML = !m.length ? "" : `<table><tr>${Object.keys(m[0]).map((k) => `<th>${esc(k)}</th>`).join("")}</tr>` +
    m.map((row) => `<tr>${Object.values(row).map((v) => `<td>${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : esc(v)}</td>`).join("")}</tr>`).join("") + "</table>";
}

export function setUpRuns() {
  $("#run").addEventListener("change", (e) => selectRun(e.target.value).catch((err) => showError(err.message)));
}
