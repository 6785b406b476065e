// cnnlab's page: draws what the API returns; every number comes from the cnnlab library on the server.
const $ = (sel) => document.querySelector(sel);
// Text that came from the server (class and layer names, run ids, formulas, notes) is escaped wherever it is
// put into HTML: a class folder named like markup must show as text, never run.
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (v) => String(v).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
// A run id may hold slashes (runs in subfolders): each segment is URL-encoded on its own.
const runPath = (id) => "/api/runs/" + id.split("/").map(encodeURIComponent).join("/");
const state = { run: null, info: null, image: null, busy: false, pending: false, overlay: "none" };

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`);
  showError("");
  return body;
}

const json = (payload) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });

// ---- colour map for feature maps and heat maps (viridis, five stops) ----
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const JET = [[0, 0, 143], [0, 120, 255], [80, 255, 170], [255, 200, 0], [200, 0, 0]];
function colour(v, stops = STOPS) {
  const t = Math.min(Math.max(v, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}

function paint(canvas, values, h, w, { stops = STOPS, alpha = 255, scale = 1, gray = false } = {}) {
  canvas.width = w; canvas.height = h;
  canvas.style.width = `${w * scale}px`; canvas.style.height = "auto";  // the height follows, even when shrunk to fit
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = gray ? [values[i], values[i], values[i]] : colour(values[i] / 255, stops);
    img.data.set([r, g, b, alpha], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}

const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const num = (v) => Number(Number(v).toPrecision(4));

// ---- runs ----
async function loadRuns() {
  const { runs } = await api("/api/runs");
  const select = $("#run");
  select.innerHTML = runs.map((r) => `<option value="${esc(r.id)}">${esc(r.id === "." ? r.name : r.id)}</option>`).join("");
  if (runs.length) await selectRun(runs[0].id);
  else showError("No runs here. Train one with: cnnlab train --out runs/NAME");
}

async function selectRun(id) {
  state.run = id;
  state.info = await api(runPath(id));
  const { input_shape: shape, config, metrics } = state.info;
  const last = metrics.at(-1) || {};
  const held = "val_accuracy" in last ? "val" : "test";
  $("#run-info").textContent = `${config.model || "model"} on ${config.data || "data"}, input ${shape.join("x")}` +
    (last[`${held}_accuracy`] !== undefined ? `, ${held} accuracy ${last[`${held}_accuracy`].toFixed(4)}` : "");
  renderSummary(state.info);
  $("#curves").src = `${runPath(id)}/curves.png`;
  if (state.image) await refresh(true);
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

// ---- input: draw, upload, sample ----
const pad = $("#pad"), padCtx = pad.getContext("2d");
function clearPad() { padCtx.fillStyle = "#000"; padCtx.fillRect(0, 0, pad.width, pad.height); }
clearPad();
let drawing = false, last = null;
pad.addEventListener("pointerdown", (e) => { drawing = true; last = [e.offsetX, e.offsetY]; pad.setPointerCapture(e.pointerId); stroke(e); });
pad.addEventListener("pointermove", (e) => { if (drawing) stroke(e); });
pad.addEventListener("pointerup", () => { drawing = false; refresh(true); });
function stroke(e) {
  padCtx.strokeStyle = "#fff"; padCtx.lineWidth = 18; padCtx.lineCap = "round"; padCtx.lineJoin = "round";
  padCtx.beginPath(); padCtx.moveTo(...last); padCtx.lineTo(e.offsetX, e.offsetY); padCtx.stroke();
  last = [e.offsetX, e.offsetY];
  state.image = { kind: "drawing" };
  refresh(false);
}
$("#clear").addEventListener("click", () => { clearPad(); state.image = null; $("#bars").innerHTML = ""; $("#maps").innerHTML = ""; });

$("#file").addEventListener("change", async (e) => {
  if (!e.target.files.length) return;
  state.image = { kind: "file", file: e.target.files[0] };
  await refresh(true);
});
$("#sample-go").addEventListener("click", async () => {
  const index = Number($("#sample-index").value);
  try {
    const s = await api(`${runPath(state.run)}/sample/${index}`);
    $("#sample-label").textContent = `${s.description}: label ${s.label}`;
    state.image = { kind: "pixels", pixels: s.pixels };
    await refresh(true);
  } catch (err) { showError(err.message); }
});
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => {
  document.querySelectorAll(".tabs button").forEach((x) => x.classList.toggle("active", x === b));
  document.querySelectorAll("[data-pane]").forEach((p) => { p.hidden = p.dataset.pane !== b.dataset.tab; });
}));
document.querySelectorAll("input[name=overlay]").forEach((r) => r.addEventListener("change", () => {
  state.overlay = r.value; drawOverlay();
}));

function gray28() { return state.info && state.info.input_shape.join("x") === "28x28x1"; }

function requestFor() {
  const img = state.image;
  if (img.kind === "file") { const form = new FormData(); form.append("file", img.file); return { method: "POST", body: form }; }
  if (img.kind === "pixels") return json({ pixels: img.pixels });
  return json({ image: pad.toDataURL("image/png"), preprocess: gray28() ? "mnist" : "none" });
}

// Predictions follow the pen: one request in flight, the newest drawing sent as soon as it returns.
async function refresh(full) {
  if (!state.image || !state.run) return;
  if (state.busy) { state.pending = state.pending || (full ? "full" : "fast"); return; }
  state.busy = true;
  try {
    const p = await api(`${runPath(state.run)}/predict`, requestFor());
    renderBars(p);
    if (full) {
      const maps = await api(`${runPath(state.run)}/feature-maps`, requestFor());
      renderInput(maps.input);
      renderMaps(maps.layers);
      state.heat = {};
      await drawOverlay();
    }
  } catch (err) { showError(err.message); }
  state.busy = false;
  if (state.pending) { const again = state.pending === "full"; state.pending = false; refresh(again); }
}

function renderBars(p) {
  const top = p.probabilities.indexOf(Math.max(...p.probabilities));
  $("#bars").innerHTML = p.classes.map((c, i) => `<div class="bar${i === top ? " top" : ""}" data-class="${esc(c)}" data-probability="${p.probabilities[i]}">` +
    `<span>${esc(c)}</span><div class="fill" style="width:${(p.probabilities[i] * 100).toFixed(1)}%"></div><span>${(p.probabilities[i] * 100).toFixed(1)}%</span></div>`).join("");
  $("#notes").textContent = (p.notes || []).join("; ");
}

function renderInput(input) {
  const [h, w, c] = input.shape;
  const data = decode(input.data).slice(0, h * w);  // first channel
  paint($("#seen"), data, h, w, { gray: true, scale: 196 / w });
  $("#seen-shape").textContent = `${h}x${w}x${c}`;
}

async function drawOverlay() {
  const canvas = $("#overlay");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  $("#overlay-reason").textContent = "";
  if (state.overlay === "none" || !state.image) return;
  try {
    state.heat = state.heat || {};
    if (!state.heat[state.overlay]) {
      state.heat[state.overlay] = await api(`${runPath(state.run)}/explain?method=${state.overlay}`, requestFor());
    }
    const e = state.heat[state.overlay];
    const h = e.heatmap.length, w = e.heatmap[0].length;
    paint(canvas, e.heatmap.flat().map((v) => v * 255), h, w, { stops: JET, alpha: 120, scale: 196 / w });
    $("#overlay-reason").textContent = `${e.method} for '${e.class}' (p = ${e.probability.toFixed(2)}): ${e.reason}`;
  } catch (err) { showError(err.message); }
}

const VECTOR_COLUMNS = 64;

function renderMaps(layers) {
  $("#maps").innerHTML = "";
  for (const layer of layers) {
    const section = document.createElement("div");
    section.className = "layer"; section.dataset.layer = layer.name;
    const title = document.createElement("h3");
    title.textContent = `${layer.name} (${layer.kind}): ${layer.shape.join("x")}`;
    section.append(title);
    const holder = document.createElement("div");
    if (layer.values) {
      // a vector is wrapped into rows of at most VECTOR_COLUMNS cells, so a Flatten of 3,136 values is a
      // 64x49 block, never a strip wider than the page
      holder.className = "vector";
      const n = layer.values.length, lo = Math.min(...layer.values), hi = Math.max(...layer.values);
      const cols = Math.min(n, VECTOR_COLUMNS), rows = Math.ceil(n / cols);
      const padded = Array.from({ length: rows * cols }, (_, i) => (i < n && hi > lo ? (layer.values[i] - lo) / (hi - lo) * 255 : 0));
      const c = document.createElement("canvas");
      c.className = "fmap";
      paint(c, padded, rows, cols, { scale: Math.max(2, Math.min(24, Math.floor(512 / cols))) });
      c.title = `${n} values${rows > 1 ? ` in rows of ${cols}` : ""}, ${lo.toFixed(3)} .. ${hi.toFixed(3)}`;
      holder.append(c);
    } else {
      holder.className = "maps";
      const [h, w, ch] = layer.shape;
      const bytes = decode(layer.data);
      const scale = Math.max(1, Math.floor(56 / w));
      for (let k = 0; k < ch; k++) {
        const c = document.createElement("canvas");
        c.className = "fmap";
        const values = bytes.subarray(k * h * w, (k + 1) * h * w);
        paint(c, values, h, w, { scale });
        c.title = `channel ${k}: ${num(layer.min[k])} .. ${num(layer.max[k])}`;
        c.addEventListener("click", () => zoom(layer, k, values));
        holder.append(c);
      }
    }
    section.append(holder);
    $("#maps").append(section);
  }
}

async function zoom(layer, k, values) {
  const [h, w] = layer.shape;
  $("#zoom-title").textContent = `${layer.name} channel ${k} (${h}x${w})`;
  paint($("#zoom-map"), values, h, w, { scale: Math.floor(280 / w) });
  $("#zoom-range").textContent = `values ${num(layer.min[k])} .. ${num(layer.max[k])} (colours scaled to this range)`;
  $("#zoom").hidden = false;
  try {
    const f = await api(`${runPath(state.run)}/filters/${encodeURIComponent(layer.name)}?channel=${k}`);
    $("#zoom-filter-title").textContent = `the filter that made it: ${f.layer} channel ${f.channel}, ${f.shape.join("x")}` +
      (f.shape[2] > 1 ? " (input channel 0 shown)" : "");
    const rows = f.kernel.map((row) => row.map((cell) => cell[0]));
    $("#zoom-filter").innerHTML = `<table class="kernel">${rows.map((r) => `<tr>${r.map((v) => {
      const t = f.max > f.min ? (v - f.min) / (f.max - f.min) : 0.5;
      const [R, G, B] = colour(t);
      return `<td style="background:rgb(${R},${G},${B});color:${t > 0.6 ? "#000" : "#fff"}">${v.toFixed(3)}</td>`;
    }).join("")}</tr>`).join("")}</table>`;
  } catch (err) { $("#zoom-filter-title").textContent = err.message; $("#zoom-filter").innerHTML = ""; }
}
$("#zoom-close").addEventListener("click", () => { $("#zoom").hidden = true; });

// ---- convolution playground: the same cnnlab.arith results as `cnnlab conv` ----
async function playground() {
  const n = Number($("#pg-size").value), k = Number($("#pg-kernel").value), s = Number($("#pg-stride").value);
  const op = $("#pg-op").value, padding = $("#pg-padding-mode").value;
  const input = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i * n + j + 1));
  try {
    const r = op === "conv"
      ? await api("/api/arith/conv", json({ input, kernel: Array.from({ length: k }, () => Array(k).fill(1)), strides: s, padding }))
      : await api("/api/arith/pool", json({ input, size: k, strides: s, padding, mode: op }));
    renderPlayground(r);
  } catch (err) { showError(err.message); }
}

function cells(holder, grid, mask, origin, cls = "") {
  holder.innerHTML = "";
  const box = document.createElement("div");
  box.className = "cells";
  box.style.gridTemplateColumns = `repeat(${grid[0].length}, 38px)`;
  grid.forEach((row, i) => row.forEach((v, j) => {
    const c = document.createElement("div");
    const isPad = mask && mask[i][j];
    c.className = `cell ${cls}${isPad ? " pad" : ""}`;
    c.textContent = isPad ? "pad" : +v.toFixed(3);
    c.dataset.row = i - origin[0]; c.dataset.col = j - origin[1];
    if (isPad) c.dataset.pad = "1";
    box.append(c);
  }));
  holder.append(box);
  return box;
}

function renderPlayground(r) {
  const tf = r.tensorflow, pt = r.pytorch, p = tf.padding;
  $("#pg-padding").textContent = `TensorFlow pads top ${p.top}, bottom ${p.bottom}, left ${p.left}, right ${p.right}` +
    ` -> output ${tf.output_shape[1]}x${tf.output_shape[2]}` +
    (pt.padding ? ` | PyTorch padding=${pt.padding.top} -> ${pt.output_shape[1]}x${pt.output_shape[2]}${pt.same_as_tensorflow ? " (the same)" : ""}` : "");
  const tfBox = cells($("#pg-tf"), tf.padded, tf.padded_mask, [p.top, p.left]);
  if (pt.padded) cells($("#pg-torch"), pt.padded, pt.padded_mask, [pt.padding.top, pt.padding.left]);
  else $("#pg-torch").textContent = pt.error || "";
  const out = tf.output[0].map((row) => row.map((v) => v[0]));
  const outBox = cells($("#pg-out"), out, null, [0, 0], "out");
  $("#pg-notes").innerHTML = tf.notes.map((t) => `<div>${esc(t)}</div>`).join("");
  const traces = tf.trace.filter((t) => t.channel === 0);
  outBox.querySelectorAll(".cell").forEach((cell) => cell.addEventListener("mouseenter", () => {
    const t = traces.find((x) => x.row === +cell.dataset.row && x.col === +cell.dataset.col);
    tfBox.querySelectorAll(".cell").forEach((c) => c.classList.toggle("hit",
      t.terms.some((term) => term.row === +c.dataset.row && term.col === +c.dataset.col)));
    outBox.querySelectorAll(".cell").forEach((c) => c.classList.toggle("hit", c === cell));
    $("#pg-trace").textContent = t.text;
  }));
}
["#pg-op", "#pg-size", "#pg-kernel", "#pg-stride", "#pg-padding-mode"].forEach((id) => $(id).addEventListener("change", playground));
$("#run").addEventListener("change", (e) => selectRun(e.target.value));

loadRuns().catch((err) => showError(err.message));
playground();
window.cnnlab = { state, refresh };
