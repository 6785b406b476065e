// The input panel: drawing, upload and test samples (each tab keeps its own input), the prediction bars, the
// image the model saw and the explanation over it.
import { renderMaps } from "./maps.js";
import { JET, paint } from "./paint.js";
import { markChecked } from "./checks.js";
import { $, HINTS, METHOD_NAMES, api, current, decode, esc, json, runPath, showError, state } from "./state.js";

const pad = () => $("#pad");
const padCtx = () => pad().getContext("2d", { willReadFrequently: true });
function clearPad() { const ctx = padCtx(); ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad().width, pad().height); }
const padHasInk = () => padCtx().getImageData(0, 0, pad().width, pad().height).data.some((v, i) => i % 4 !== 3 && v > 0);

// Everything computed from an input, emptied: the empty state says what to do instead
export function resetOutputs(message) {
  $("#bars").innerHTML = "";
  $("#sample-verdict").textContent = "";
  const empty = document.createElement("p");
  empty.className = "empty meta";
  empty.textContent = message || HINTS[state.tab];
  $("#bars").append(empty);
  $("#notes").textContent = "";
  $("#maps").innerHTML = "";
  for (const id of ["#seen", "#overlay"]) $(id).getContext("2d").clearRect(0, 0, $(id).width, $(id).height);
  $("#seen-shape").textContent = "";
  $("#overlay-reason").textContent = "";
  state.heat = {};
}

function stroke(e) {
  const ctx = padCtx();
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(...state.pen.last); ctx.lineTo(e.offsetX, e.offsetY); ctx.stroke();
  state.pen.last = [e.offsetX, e.offsetY];
  if (!state.inputs.draw) { state.inputs.draw = { kind: "drawing" }; state.gen++; }  // a new input; later strokes refine it
  refresh(false);
}

export async function showSample(index, go = true) {
  const gen = ++state.gen;
  state.inputs.sample = null;
  $("#sample-label").textContent = "";
  resetOutputs("Loading the test image...");
  try {
    const s = await api(`${runPath(state.run)}/sample/${index}`);
    if (gen !== state.gen) return;
    $("#sample-label").textContent = `${s.description}: label ${s.label}`;
    state.inputs.sample = { kind: "pixels", pixels: s.pixels, index, label: s.label };
    if (go && state.tab === "sample") await refresh(true);
  } catch (err) { if (gen === state.gen) { resetOutputs(); showError(err.message); } }
}

export function selectTab(tab) {
  state.tab = tab;
  document.querySelectorAll(".tabs button").forEach((x) => {
    x.classList.toggle("active", x.dataset.tab === tab);
    x.setAttribute("aria-selected", String(x.dataset.tab === tab));
  });
  document.querySelectorAll("[data-pane]").forEach((p) => { p.hidden = p.dataset.pane !== tab; });
  state.gen++;
  resetOutputs();
  refresh(true);
}

function gray28() { return state.info && state.info.input_shape.join("x") === "28x28x1"; }

export function requestFor(img) {
  if (img.kind === "file") { const form = new FormData(); form.append("file", img.file); return { method: "POST", body: form }; }
  if (img.kind === "pixels") return json({ pixels: img.pixels });
  return json({ image: pad().toDataURL("image/png"), preprocess: gray28() ? "mnist" : "none" });
}

// Predictions follow the pen: one request in flight, the newest input sent as soon as it returns.
export async function refresh(full) {
  const img = current();
  if (!state.run || !state.info) return;
  if (!img) { resetOutputs(); return; }
  if (img.kind === "drawing" && !padHasInk()) { resetOutputs("Nothing drawn yet: " + HINTS.draw); return; }
  if (state.busy) { state.pending = state.pending === "full" || full ? "full" : "fast"; return; }
  state.busy = true;
  const gen = state.gen;
  try {
    const p = await api(`${runPath(state.run)}/predict`, requestFor(img));
    if (gen === state.gen) {
      if (p.blank) resetOutputs(`Nothing to recognise: ${p.notes.join("; ")}.`);
      else renderBars(p);
      if (full && !p.blank) {
        const maps = await api(`${runPath(state.run)}/feature-maps`, requestFor(img));
        if (gen === state.gen) {
          renderInput(maps.input);
          renderMaps(maps.layers);
          state.heat = {};
          await drawOverlay(gen);
        }
      }
    }
  } catch (err) {
    if (gen === state.gen) { resetOutputs(); showError(err.message); }
  }
  state.busy = false;
  if (state.pending) { const again = state.pending === "full"; state.pending = false; refresh(again); }
}

function renderBars(p) {
  const top = p.probabilities.indexOf(Math.max(...p.probabilities));
  $("#bars").innerHTML = p.classes.map((c, i) => `<div class="bar${i === top ? " top" : ""}" data-class="${esc(c)}" data-probability="${p.probabilities[i]}">` +
    `<span>${esc(c)}</span><div class="fill" style="width:${(p.probabilities[i] * 100).toFixed(1)}%"></div><span>${(p.probabilities[i] * 100).toFixed(1)}%</span></div>`).join("");
  $("#notes").textContent = (p.notes || []).join("; ");
  const sample = state.tab === "sample" ? state.inputs.sample : null;
  const verdict = $("#sample-verdict");
  verdict.textContent = ""; verdict.className = "";
  if (sample && sample.label !== undefined) {  // the tutorials' caption: blue when right, red when wrong
    const right = p.classes[top] === sample.label;
    verdict.className = right ? "right" : "wrong";
    verdict.textContent = `predicted ${p.classes[top]} (${(p.probabilities[top] * 100).toFixed(1)}%), label ${sample.label}: ${right ? "right" : "wrong"}`;
  }
}

function renderInput(input) {
  const [h, w, c] = input.shape;
  const data = decode(input.data);  // (C, H, W) bytes: gray, or RGB in colour
  paint($("#seen"), data, h, w, { gray: c === 1, rgb: c === 3, scale: 196 / w });
  $("#seen-shape").textContent = `${h}x${w}x${c}`;
}

export async function drawOverlay(gen) {
  const canvas = $("#overlay");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  $("#overlay-reason").textContent = "";
  const img = current();
  if (state.overlay === "none" || !img || !$("#seen-shape").textContent) return;
  const method = state.overlay, target = $("#target").value;
  const key = `${method}:${target}`;
  try {
    const query = `method=${encodeURIComponent(method)}${target === "" ? "" : `&target=${target}`}`;
    const e = state.heat[key] || await api(`${runPath(state.run)}/explain?${query}`, requestFor(img));
    if (gen !== state.gen || method !== state.overlay || target !== $("#target").value) return;
    state.heat[key] = e;
    const h = e.heatmap.length, w = e.heatmap[0].length;
    // transparent where the heat is low, so the input stays visible under it
    paint(canvas, e.heatmap.flat().map((v) => v * 255), h, w, { stops: JET, alpha: (v) => Math.round(40 + 180 * v / 255) * (v > 20), scale: 196 / w });
    $("#overlay-reason").textContent = `${METHOD_NAMES[e.method] || e.method} for '${e.class}' (p = ${e.probability.toFixed(2)}): ${e.reason}`;
  } catch (err) { if (gen === state.gen) showError(err.message); }
}

export function setUpInput() {
  clearPad();
  const canvas = pad();
  canvas.addEventListener("pointerdown", (e) => {
    state.pen = { down: true, last: [e.offsetX, e.offsetY] };
    canvas.setPointerCapture(e.pointerId);
    stroke(e);
  });
  canvas.addEventListener("pointermove", (e) => { if (state.pen.down) stroke(e); });
  canvas.addEventListener("pointerup", () => { state.pen.down = false; refresh(true); });
  $("#clear").addEventListener("click", () => { clearPad(); state.inputs.draw = null; state.gen++; resetOutputs(); });
  $("#file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";  // choosing the same file again is a new choice
    if (!file) return;
    state.inputs.upload = { kind: "file", file };
    $("#file-name").textContent = file.name;
    state.gen++;
    await refresh(true);
  });
  $("#sample-go").addEventListener("click", () => showSample(Number($("#sample-index").value)));
  $("#sample-index").addEventListener("keydown", (e) => { if (e.key === "Enter") showSample(Number($("#sample-index").value)); });
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => selectTab(b.dataset.tab)));
  document.querySelectorAll("input[name=overlay]").forEach((r) => r.addEventListener("change", () => {
    state.overlay = r.value; drawOverlay(state.gen); markChecked();
  }));
  $("#target").addEventListener("change", () => drawOverlay(state.gen));
}
