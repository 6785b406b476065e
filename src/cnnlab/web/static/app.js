// cnnlab's page: draws what the API returns; every number comes from the cnnlab library on the server.
const $ = (sel) => document.querySelector(sel);
// Text that came from the server (class and layer names, run ids, formulas, notes) is escaped wherever it is
// put into HTML: a class folder named like markup must show as text, never run.
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (v) => String(v).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
// A run id may hold slashes (runs in subfolders): each segment is URL-encoded on its own.
const runPath = (id) => "/api/runs/" + id.split("/").map(encodeURIComponent).join("/");
// Every panel shows the current run and the current input, or an empty state that says what to do. `gen` counts
// input and run changes: a response that comes back after the input changed is dropped, never drawn.
const state = { run: null, info: null, tab: "draw", inputs: {}, busy: false, pending: false, overlay: "none", gen: 0 };
const current = () => state.inputs[state.tab] || null;
const HINTS = {
  draw: "Draw a digit in the box (or pick a test sample).",
  upload: "Choose an image file to see what the model makes of it.",
  sample: "Pick a test image by its index and press Show (or Enter).",
};

let lastError = "";
function showError(message) {
  if (message === lastError) return;  // a stopped server is reported once, not once per pen move
  lastError = message;
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new Error(`The cnnlab server at ${location.origin} is not answering. Start it again with: cnnlab serve`);
  }
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

// values: h*w numbers 0..255 (one channel), or with rgb: 3*h*w bytes, channel after channel (C, H, W)
function paint(canvas, values, h, w, { stops = STOPS, alpha = 255, scale = 1, gray = false, rgb = false } = {}) {
  canvas.width = w; canvas.height = h;
  canvas.style.width = `${w * scale}px`; canvas.style.height = "auto";  // the height follows, even when shrunk to fit
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = rgb ? [values[i], values[h * w + i], values[2 * h * w + i]]
      : gray ? [values[i], values[i], values[i]] : colour(values[i] / 255, stops);
    img.data.set([r, g, b, typeof alpha === "function" ? alpha(values[i]) : alpha], i * 4);
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
  $("#target").innerHTML = `<option value="">the predicted one</option>` +
    info.classes.map((c, i) => `<option value="${i}">${esc(c)}</option>`).join("");
  $("#curves").src = `${runPath(id)}/curves.png`;
  $("#compare").innerHTML = `<option value="">no other run</option>` + [...$("#run").options]
    .filter((o) => o.value !== id).map((o) => `<option value="${esc(o.value)}">${esc(o.textContent)}</option>`).join("");
  $("#compare-curves").hidden = true;
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

// Everything computed from an input, emptied: the empty state says what to do instead
function resetOutputs(message) {
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

// ---- input: draw, upload, sample; each tab keeps its own input ----
const pad = $("#pad"), padCtx = pad.getContext("2d", { willReadFrequently: true });
function clearPad() { padCtx.fillStyle = "#000"; padCtx.fillRect(0, 0, pad.width, pad.height); }
clearPad();
const padHasInk = () => padCtx.getImageData(0, 0, pad.width, pad.height).data.some((v, i) => i % 4 !== 3 && v > 0);
let drawing = false, last = null;
pad.addEventListener("pointerdown", (e) => { drawing = true; last = [e.offsetX, e.offsetY]; pad.setPointerCapture(e.pointerId); stroke(e); });
pad.addEventListener("pointermove", (e) => { if (drawing) stroke(e); });
pad.addEventListener("pointerup", () => { drawing = false; refresh(true); });
function stroke(e) {
  padCtx.strokeStyle = "#fff"; padCtx.lineWidth = 18; padCtx.lineCap = "round"; padCtx.lineJoin = "round";
  padCtx.beginPath(); padCtx.moveTo(...last); padCtx.lineTo(e.offsetX, e.offsetY); padCtx.stroke();
  last = [e.offsetX, e.offsetY];
  if (!state.inputs.draw) { state.inputs.draw = { kind: "drawing" }; state.gen++; }  // a new input; later strokes refine it
  refresh(false);
}
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

async function showSample(index, go = true) {
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
$("#sample-go").addEventListener("click", () => showSample(Number($("#sample-index").value)));
$("#sample-index").addEventListener("keydown", (e) => { if (e.key === "Enter") showSample(Number($("#sample-index").value)); });

function selectTab(tab) {
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
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => selectTab(b.dataset.tab)));
document.querySelectorAll("input[name=overlay]").forEach((r) => r.addEventListener("change", () => {
  state.overlay = r.value; drawOverlay(state.gen);
}));
$("#target").addEventListener("change", () => drawOverlay(state.gen));

function gray28() { return state.info && state.info.input_shape.join("x") === "28x28x1"; }

function requestFor(img) {
  if (img.kind === "file") { const form = new FormData(); form.append("file", img.file); return { method: "POST", body: form }; }
  if (img.kind === "pixels") return json({ pixels: img.pixels });
  return json({ image: pad.toDataURL("image/png"), preprocess: gray28() ? "mnist" : "none" });
}

// Predictions follow the pen: one request in flight, the newest input sent as soon as it returns.
async function refresh(full) {
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

async function drawOverlay(gen) {
  const canvas = $("#overlay");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  $("#overlay-reason").textContent = "";
  const img = current();
  if (state.overlay === "none" || !img || !$("#seen-shape").textContent) return;
  const method = state.overlay, target = $("#target").value;
  const key = `${method}:${target}`;
  try {
    state.heat = state.heat || {};
    const query = `method=${method}${target === "" ? "" : `&target=${target}`}`;
    const e = state.heat[key] || await api(`${runPath(state.run)}/explain?${query}`, requestFor(img));
    if (gen !== state.gen || method !== state.overlay || target !== $("#target").value) return;
    state.heat[key] = e;
    const h = e.heatmap.length, w = e.heatmap[0].length;
    // transparent where the heat is low, so the input stays visible under it
    paint(canvas, e.heatmap.flat().map((v) => v * 255), h, w, { stops: JET, alpha: (v) => Math.round(40 + 180 * v / 255) * (v > 20), scale: 196 / w });
    const words = { gradcam: "Grad-CAM", saliency: "Saliency", smoothgrad: "SmoothGrad", occlusion: "Occlusion" }[e.method] || e.method;
    $("#overlay-reason").textContent = `${words} for '${e.class}' (p = ${e.probability.toFixed(2)}): ${e.reason}`;
  } catch (err) { if (gen === state.gen) showError(err.message); }
}

const VECTOR_COLUMNS = 64;
const SHOWN_CHANNELS = 16;  // channels of a layer in view; the others fold under "N more channels"

// Diverging colours for maps that hold negative values (before a ReLU): blue below 0, white at 0, red above
const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];

function colourBar(lo, hi, diverging) {
  const bar = document.createElement("div");
  bar.className = "colour-bar meta small";
  const c = document.createElement("canvas");
  paint(c, Array.from({ length: 64 }, (_, i) => i * 255 / 63), 1, 64, { stops: diverging ? DIVERGING : STOPS, scale: 2 });
  c.setAttribute("aria-label", `colour scale from ${num(lo)} to ${num(hi)}`);
  const left = document.createElement("span"), right = document.createElement("span");
  left.textContent = String(num(lo)); right.textContent = String(num(hi));
  bar.append(left, c, right);
  return bar;
}

function renderMaps(layers) {
  state.layers = layers;
  const scaleBy = $("#map-scale").value, perLayer = scaleBy !== "channel";
  const maps = layers.filter((l) => !l.values);  // "network": one range over every map of every layer
  const networkLo = Math.min(...maps.flatMap((l) => l.min)), networkHi = Math.max(...maps.flatMap((l) => l.max));
  $("#maps").innerHTML = "";
  for (const layer of layers) {
    const section = document.createElement("div");
    section.className = "layer"; section.dataset.layer = layer.name;
    const title = document.createElement("h3");
    title.textContent = `${layer.name} (${layer.kind}): ${layer.shape.join("x")}`;
    section.append(title);
    const holder = document.createElement("div");
    const isScores = layer === layers.at(-1) && layer.values && state.info && layer.values.length === state.info.classes.length;
    if (isScores) {  // one score per class: labelled with the class names, click for the softmax
      holder.className = "scores";
      const top = Math.max(...layer.values.map(Math.abs)) || 1;
      holder.innerHTML = layer.values.map((v, i) => `<div class="score"><span>${esc(state.info.classes[i])}</span>` +
        `<div class="track"><div class="fill ${v < 0 ? "neg" : ""}" style="width:${(Math.abs(v) / top * 50).toFixed(1)}%;` +
        `${v < 0 ? "right:50%" : "left:50%"}"></div></div><span>${fmt(v)}</span></div>`).join("");
      holder.tabIndex = 0;
      holder.classList.add("clickable");
      holder.setAttribute("aria-label", `${layer.name}: one score per class; press Enter for the softmax`);
      const open = () => showSoftmax(layer, holder);
      holder.addEventListener("click", open);
      holder.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    } else if (layer.values) {
      // a vector is wrapped into rows of at most VECTOR_COLUMNS cells, so a Flatten of 3,136 values is a
      // 64x49 block, never a strip wider than the page; hovering names the unit
      holder.className = "vector";
      const n = layer.values.length, lo = Math.min(...layer.values), hi = Math.max(...layer.values);
      const cols = Math.min(n, VECTOR_COLUMNS), rows = Math.ceil(n / cols);
      const padded = Array.from({ length: rows * cols }, (_, i) => (i < n && hi > lo ? (layer.values[i] - lo) / (hi - lo) * 255 : 0));
      const c = document.createElement("canvas");
      c.className = "fmap";
      paint(c, padded, rows, cols, { scale: Math.max(2, Math.min(24, Math.floor(512 / cols))) });
      const summary = `${n} values${rows > 1 ? ` in rows of ${cols}` : ""}, ${lo.toFixed(3)} .. ${hi.toFixed(3)}`;
      c.title = summary;
      c.setAttribute("aria-label", `${layer.name}: ${summary}`);
      c.addEventListener("mousemove", (e) => {
        const box = c.getBoundingClientRect();
        const i = Math.floor((e.clientY - box.top) / box.height * rows) * cols + Math.floor((e.clientX - box.left) / box.width * cols);
        c.title = i < n ? `unit ${i}: ${fmt(layer.values[i])}` : summary;
      });
      holder.append(c, colourBar(lo, hi, false));
    } else {
      holder.className = "maps";
      const [h, w, ch] = layer.shape;
      const bytes = decode(layer.data);
      const layerLo = scaleBy === "network" ? networkLo : Math.min(...layer.min);
      const layerHi = scaleBy === "network" ? networkHi : Math.max(...layer.max);
      const diverging = layerLo < 0;
      const scale = Math.max(2, Math.min(8, Math.floor(112 / w)));  // larger maps get larger tiles, up to 112 px
      const order = [...Array(ch).keys()];
      if ($("#map-order").value === "activation") {  // strongest channels first
        const mean = (k) => { let t = 0; for (let i = 0; i < h * w; i++) t += layer.min[k] + bytes[k * h * w + i] / 255 * (layer.max[k] - layer.min[k]); return t / (h * w); };
        const means = order.map(mean);
        order.sort((a, b) => means[b] - means[a]);
      }
      for (const k of order) {
        const c = document.createElement("canvas");
        c.className = "fmap";
        c.dataset.channel = k;
        const raw = bytes.subarray(k * h * w, (k + 1) * h * w);
        const lo = layer.min[k], hi = layer.max[k];
        const value = (u) => lo + u / 255 * (hi - lo);
        let values = raw;
        if (diverging || perLayer) {  // re-scaled from the real values: to the layer's range, or around 0
          const m = Math.max(Math.abs(perLayer ? layerLo : lo), Math.abs(perLayer ? layerHi : hi)) || 1;
          const [a, b] = perLayer ? [layerLo, layerHi] : [lo, hi];
          values = Uint8Array.from(raw, (u) => (diverging ? (value(u) / m + 1) * 127.5 : (b > a ? (value(u) - a) / (b - a) * 255 : 0)));
        }
        paint(c, values, h, w, { scale, stops: diverging ? DIVERGING : STOPS });
        c.title = `channel ${k}: ${num(lo)} .. ${num(hi)}`;
        c.setAttribute("aria-label", `${layer.name} ${c.title}`);
        c.tabIndex = 0;
        const open = () => zoom(layer, k, values, c, diverging);
        c.addEventListener("click", open);
        c.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
        if (holder.childElementCount < SHOWN_CHANNELS) holder.append(c);
        else {  // the first few in view, the rest folded
          let more = holder.querySelector("details");
          if (!more) {
            more = document.createElement("details");
            more.innerHTML = `<summary>${ch - SHOWN_CHANNELS} more channels</summary>`;
            holder.append(more);
          }
          more.append(c);
        }
      }
      const [barLo, barHi] = diverging ? [-Math.max(-layerLo, layerHi), Math.max(-layerLo, layerHi)] : [layerLo, layerHi];
      section.append(colourBar(barLo, barHi, diverging));
      if (!perLayer && !diverging) section.lastChild.lastChild.textContent += " (each map scaled to its own range)";
    }
    section.append(holder);
    $("#maps").append(section);
  }
}
$("#map-scale").addEventListener("change", () => state.layers && renderMaps(state.layers));
$("#map-order").addEventListener("change", () => state.layers && renderMaps(state.layers));

function kernelTable(rows, lo, hi) {
  return `<table class="kernel">${rows.map((r) => `<tr>${r.map((v) => {
    const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    const [R, G, B] = colour(t);
    return `<td style="background:rgb(${R},${G},${B});color:${t > 0.6 ? "#000" : "#fff"}">${v.toFixed(3)}</td>`;
  }).join("")}</tr>`).join("")}</table>`;
}

const KERNEL_CHANNELS = 8;  // input channels of a kernel shown as tables; the rest are counted
let zoomOpener = null;
async function zoom(layer, k, values, opener, diverging = false) {
  const [h, w] = layer.shape;
  const gen = state.gen;
  zoomOpener = opener || null;
  state.zoomed = { layer, k };
  $("#zoom-cell").innerHTML = "";
  $("#zoom-title").textContent = `${layer.name} channel ${k} (${h}x${w})`;
  paint($("#zoom-map"), values, h, w, { scale: Math.floor(280 / w), stops: diverging ? DIVERGING : STOPS });
  $("#zoom-range").textContent = `values ${num(layer.min[k])} .. ${num(layer.max[k])} ` +
    (diverging ? "(blue below 0, white at 0, red above)" : "(colours scaled to this range)");
  $("#zoom-filter-title").textContent = "";
  $("#zoom-filter").innerHTML = "";
  $("#zoom").hidden = false;
  $("#zoom-close").focus();
  try {
    const f = await api(`${runPath(state.run)}/filters/${encodeURIComponent(layer.name)}?channel=${k}`);
    if (gen !== state.gen || $("#zoom").hidden) return;
    const [kh, kw, cin] = f.shape;
    $("#zoom-filter-title").textContent = `the filter that made it: ${f.layer} channel ${f.channel}, ${f.shape.join("x")}` +
      (cin > KERNEL_CHANNELS ? ` (input channels 0-${KERNEL_CHANNELS - 1} of ${cin} shown)` : "");
    const parts = [];
    if (cin === 3) {  // an RGB kernel in colour, min-max scaled over the kernel, as filter figures show it
      parts.push(`<div class="kernel-part"><div class="meta small">in colour (R, G, B)</div><canvas id="zoom-rgb" aria-label="the kernel in colour"></canvas></div>`);
    }
    for (let i = 0; i < Math.min(cin, KERNEL_CHANNELS); i++) {
      const label = cin === 1 ? "" : cin === 3 ? `input channel ${i} (${"RGB"[i]})` : `input channel ${i}`;
      parts.push(`<div class="kernel-part"><div class="meta small">${label}</div>${kernelTable(f.kernel.map((row) => row.map((cell) => cell[i])), f.min, f.max)}</div>`);
    }
    $("#zoom-filter").innerHTML = `<div class="kernel-parts">${parts.join("")}</div>`;
    if (cin === 3) {
      const bytes = new Uint8Array(3 * kh * kw);
      for (let ch = 0; ch < 3; ch++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
        bytes[ch * kh * kw + y * kw + x] = Math.round((f.kernel[y][x][ch] - f.min) / ((f.max - f.min) || 1) * 255);
      }
      paint($("#zoom-rgb"), bytes, kh, kw, { rgb: true, scale: Math.floor(120 / kw) });
    }
  } catch (err) { $("#zoom-filter-title").textContent = err.message; $("#zoom-filter").innerHTML = ""; }
}
// ---- one cell's computation, from the model's own weights (POST /cell) ----
const fmt = (v) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.001) ? v.toExponential(2) : +v.toFixed(3));
function grid(values, mask, { cls = "", mark = null } = {}) {
  return `<table class="cellgrid ${cls}">${values.map((row, i) => `<tr>${row.map((v, j) => {
    const pad = mask && mask[i][j];
    const hit = mark && mark[0] === i && mark[1] === j;
    return `<td class="${pad ? "pad" : ""}${hit ? " win" : ""}">${pad ? "pad" : fmt(v)}</td>`;
  }).join("")}</tr>`).join("")}</table>`;
}

async function cellAt(e) {
  const z = state.zoomed, img = current();
  if (!z || !img) return;
  const [h, w] = z.layer.shape;
  const box = $("#zoom-map").getBoundingClientRect();
  const row = Math.min(h - 1, Math.floor((e.clientY - box.top) / box.height * h));
  const col = Math.min(w - 1, Math.floor((e.clientX - box.left) / box.width * w));
  const gen = state.gen;
  $("#zoom-cell").textContent = "Computing...";
  try {
    const q = `layer=${encodeURIComponent(z.layer.name)}&row=${row}&col=${col}&channel=${z.k}`;
    const c = await api(`${runPath(state.run)}/cell?${q}`, requestFor(img));
    if (gen === state.gen && !$("#zoom").hidden) renderCell(c);
  } catch (err) { $("#zoom-cell").textContent = err.message; }
}

function renderCell(c) {
  const head = `<h4>cell (${c.row}, ${c.col}) of ${esc(c.layer)} channel ${c.channel} = ${fmt(c.value)}</h4>`;
  if (c.kind === "Conv2D") {
    const tf = c.tensorflow, cin = tf.per_input_channel.length;
    // the input channel that contributes most is shown cell by cell; the others as their sums
    const order = tf.per_input_channel.map((v, i) => [Math.abs(v), i]).sort((a, b) => b[0] - a[0]).map((p) => p[1]);
    const i = order[0];
    const pick = (a3) => a3.map((row) => row.map((cell) => cell[i]));
    const side = (s, name) => `<div class="cell-side"><div class="meta small">${name}: input rows ${s.rows.join(", ")}, ` +
      `columns ${s.cols.join(", ")}${cin > 1 ? `, input channel ${i}` : ""}</div>` +
      `<div class="kernel-parts"><div>input patch${grid(pick(s.patch), s.padding_mask)}</div>` +
      `<div>kernel${grid(pick(c.kernel))}</div><div>products${grid(pick(s.products), s.padding_mask)}</div></div>` +
      `<p class="sum">${cin > 1 ? `sum over ${cin} input channels` : "sum of the products"} ${fmt(s.sum)} + bias ${fmt(c.bias)} = ` +
      `${fmt(s.pre_activation)}; ${esc(c.activation)} -> <b>${fmt(s.output)}</b></p></div>`;
    const channels = cin > 1 ? `<p class="meta small">largest contributions by input channel: ${order.slice(0, 8)
      .map((k) => `${k}: ${fmt(tf.per_input_channel[k])}`).join(", ")}${cin > 8 ? ", ..." : ""}</p>` : "";
    const torch = c.pytorch ? side(c.pytorch, "PyTorch (symmetric padding) reads instead") +
      `<p class="meta small">TensorFlow pads top ${c.padding.top}, bottom ${c.padding.bottom}, left ${c.padding.left}, ` +
      `right ${c.padding.right}; PyTorch pads both sides alike, so its window starts earlier.</p>` : "";
    $("#zoom-cell").innerHTML = head + side(tf, "TensorFlow (the model's own padding)") + channels + torch +
      `<button id="to-playground">Try this patch and kernel in the playground</button>`;
    $("#to-playground").addEventListener("click", () => {
      const patch = pick(tf.patch).map((row, r) => row.map((v, q) => (tf.padding_mask[r][q] ? 0 : v)));
      closeZoom();
      playgroundWith(patch, pick(c.kernel));
    });
  } else if (c.mode) {
    const what = c.mode === "max" ? `the largest real cell wins: <b>${fmt(c.output)}</b>`
      : `the mean of the ${c.count} real cells: ${fmt(c.sum)} / ${c.count} = <b>${fmt(c.output)}</b>`;
    $("#zoom-cell").innerHTML = head + `<div class="meta small">window rows ${c.rows.join(", ")}, columns ${c.cols.join(", ")}</div>` +
      grid(c.window, c.padding_mask, { mark: c.winner || null }) + `<p class="sum">${what}</p>`;
  } else $("#zoom-cell").innerHTML = head;
}

async function showSoftmax(layer, opener) {
  const img = current(), gen = state.gen;
  zoomOpener = opener; state.zoomed = null;
  $("#zoom-title").textContent = `${layer.name}: from class scores to probabilities`;
  for (const id of ["#zoom-range", "#zoom-filter-title"]) $(id).textContent = "";
  $("#zoom-filter").innerHTML = ""; $("#zoom-cell").innerHTML = "";
  const map = $("#zoom-map"); map.width = 0; map.height = 0; map.style.width = "0px";
  $("#zoom").hidden = false;
  $("#zoom-close").focus();
  try {
    const c = await api(`${runPath(state.run)}/cell?layer=${encodeURIComponent(layer.name)}`, requestFor(img));
    if (gen !== state.gen) return;
    const s = c.softmax;
    $("#zoom-cell").innerHTML = `<table class="softmax"><tr><th>class</th><th>logit z</th><th>exp(z - ${fmt(s.max_logit)})</th><th>probability</th></tr>` +
      s.classes.map((k, i) => `<tr><td>${esc(k)}</td><td>${fmt(s.logits[i])}</td><td>${fmt(s.exp_shifted[i])}</td><td>${fmt(s.probabilities[i])}</td></tr>`).join("") +
      `<tr><th>sum</th><td></td><td>${fmt(s.sum)}</td><td>1</td></tr></table>` +
      `<p class="meta small">probability = exp(z - max z) / sum: subtracting the largest logit changes no ratio and keeps exp from overflowing.</p>`;
  } catch (err) { $("#zoom-cell").textContent = err.message; }
}
$("#zoom-map").addEventListener("click", cellAt);

function closeZoom() {
  if ($("#zoom").hidden) return;
  $("#zoom").hidden = true;
  if (zoomOpener) zoomOpener.focus();
}
$("#zoom-close").addEventListener("click", closeZoom);
$("#zoom").addEventListener("click", (e) => { if (e.target === $("#zoom")) closeZoom(); });  // outside the box
document.addEventListener("keydown", (e) => {
  if ($("#zoom").hidden) return;
  if (e.key === "Escape") { closeZoom(); return; }
  if (e.key === "Tab") {  // focus stays inside the dialog while it is open
    const items = [...$("#zoom").querySelectorAll("button, [tabindex]")];
    const first = items[0], lastItem = items.at(-1);
    if (e.shiftKey && document.activeElement === first) { e.preventDefault(); lastItem.focus(); }
    else if (!e.shiftKey && document.activeElement === lastItem) { e.preventDefault(); first.focus(); }
  }
});

// ---- the test set: accuracy, confusion matrix, mistakes (GET /evaluation) ----
async function evaluateRun() {
  const run = state.run;
  $("#eval-summary").textContent = "Evaluating...";
  try {
    const ev = await api(`${runPath(run)}/evaluation`);
    if (run !== state.run) return;
    state.evaluation = ev;
    $("#eval-summary").textContent = `test accuracy ${ev.accuracy.toFixed(4)}, loss ${ev.loss.toFixed(4)}: ` +
      `${ev.wrong.toLocaleString("en")} of ${ev.total.toLocaleString("en")} wrong`;
    $("#confusion").innerHTML = `<table><tr><th></th>${ev.classes.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>` +
      ev.confusion.map((row, i) => `<tr><th>${esc(ev.classes[i])}</th>${row.map((v, j) =>
        `<td data-true="${i}" data-pred="${j}" class="${i === j ? "diag" : ""}" title="true ${esc(ev.classes[i])}, predicted ${esc(ev.classes[j])}">${v}</td>`).join("")}</tr>`).join("") + "</table>";
    $("#confusion").querySelectorAll("td").forEach((td) => td.addEventListener("click", () => {
      $("#confusion").querySelectorAll("td").forEach((x) => x.classList.toggle("picked", x === td));
      renderMistakes(+td.dataset.true, +td.dataset.pred);
    }));
    renderMistakes(null, null);
  } catch (err) { $("#eval-summary").textContent = ""; showError(err.message); }
}

function renderMistakes(t, p) {
  const ev = state.evaluation;
  const shown = ev.mistakes.filter((m) => t === null || (m.true === t && m.predicted === p));
  $("#mistakes-filter").textContent = t === null ? `(the first ${ev.mistakes.length})` :
    `(true ${ev.classes[t]}, predicted ${ev.classes[p]}: ${shown.length} of the first ${ev.mistakes.length})`;
  $("#mistakes").innerHTML = "";
  const [h, w, c] = ev.shape;
  for (const m of shown) {
    const card = document.createElement("button");
    card.className = "mistake";
    const canvas = document.createElement("canvas");
    paint(canvas, decode(m.data), h, w, { gray: c === 1, rgb: c === 3, scale: 56 / w });
    canvas.setAttribute("aria-label", `test image ${m.index}`);
    const caption = document.createElement("div");
    caption.className = "wrong";
    caption.textContent = `${ev.classes[m.true]} -> ${ev.classes[m.predicted]} (${m.probability.toFixed(2)})`;
    card.append(canvas, caption);
    card.dataset.index = m.index;
    card.addEventListener("click", async () => {  // into the viewer, as the test sample it is
      $("#sample-index").value = String(m.index);
      selectTab("sample");
      await showSample(m.index);
      $("#input-panel").scrollIntoView();
    });
    $("#mistakes").append(card);
  }
}
$("#evaluate").addEventListener("click", evaluateRun);
$("#compare").addEventListener("change", () => {
  const other = $("#compare").value, img = $("#compare-curves");
  img.hidden = !other;
  if (other) img.src = `/api/compare/curves.png?run=${encodeURIComponent(state.run)}&run=${encodeURIComponent(other)}`;
});

// ---- convolution playground: the same cnnlab.arith results as `cnnlab conv` ----
// A number field holds what it says: a value outside its min..max is set back to the nearest one allowed.
function fieldValue(id) {
  const field = $(id), lo = Number(field.min), hi = Number(field.max);
  const v = Math.round(Number(field.value));
  const kept = Number.isFinite(v) ? Math.min(Math.max(v, lo), hi) : lo;
  if (String(kept) !== field.value) field.value = String(kept);
  return kept;
}

let playgroundGen = 0;
function clearPlayground(message = "") {
  for (const id of ["#pg-tf", "#pg-torch", "#pg-out", "#pg-torch-out"]) $(id).innerHTML = "";
  $("#pg-padding").textContent = message;
  $("#pg-trace").textContent = "Hover an output cell.";
  $("#pg-torch-trace").textContent = "";
  $("#pg-notes").innerHTML = "";
}

let custom = null;  // a patch and kernel taken from the model (the map dialog), until a field changes
function playgroundWith(input, kernel) {
  custom = { input, kernel };
  $("#pg-op").value = "conv";
  $("#pg-padding-mode").value = "VALID";
  $("#playground").scrollIntoView();
  playground(true);
}

async function playground(keep = false) {
  if (keep !== true) custom = null;
  const n = fieldValue("#pg-size"), k = fieldValue("#pg-kernel"), s = custom ? 1 : fieldValue("#pg-stride");
  const op = custom ? "conv" : $("#pg-op").value, padding = $("#pg-padding-mode").value;
  const input = custom ? custom.input : Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i * n + j + 1));
  const kernel = custom ? custom.kernel : Array.from({ length: k }, () => Array(k).fill(1));
  $("#pg-source").textContent = custom ? "Your model's own patch and kernel (one input channel), from the map dialog." : "";
  const gen = ++playgroundGen;
  clearPlayground("Computing...");
  try {
    const r = op === "conv"
      ? await api("/api/arith/conv", json({ input, kernel, strides: s, padding }))
      : await api("/api/arith/pool", json({ input, size: k, strides: s, padding, mode: op }));
    if (gen === playgroundGen) renderPlayground(r);
  } catch (err) { if (gen === playgroundGen) clearPlayground(err.message); }
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

// One output cell at (row, col), hovered in either output grid: each side's window lit in its own padded input,
// so PyTorch's "every window one cell earlier" is there to see.
function lightWindows(sides, row, col) {
  for (const side of sides) {
    const t = side.traces.find((x) => x.row === row && x.col === col);
    side.input.querySelectorAll(".cell").forEach((c) => c.classList.toggle("hit",
      Boolean(t) && t.terms.some((term) => term.row === +c.dataset.row && term.col === +c.dataset.col)));
    side.output.querySelectorAll(".cell").forEach((c) => c.classList.toggle("hit", +c.dataset.row === row && +c.dataset.col === col));
    side.text.textContent = t ? `${side.name}: ${t.text}` : `${side.name}: no output cell (${row}, ${col})`;
  }
}

function renderPlayground(r) {
  const tf = r.tensorflow, pt = r.pytorch, p = tf.padding;
  $("#pg-padding").textContent = `TensorFlow pads top ${p.top}, bottom ${p.bottom}, left ${p.left}, right ${p.right}` +
    ` -> output ${tf.output_shape[1]}x${tf.output_shape[2]}` +
    (pt.padding ? ` | PyTorch padding=${pt.padding.top} -> ${pt.output_shape[1]}x${pt.output_shape[2]}${pt.same_as_tensorflow ? " (the same)" : ""}` : "");
  const grid = (e) => e.output[0].map((row) => row.map((v) => v[0]));
  const sides = [{
    name: "TensorFlow", text: $("#pg-trace"), traces: tf.trace.filter((t) => t.channel === 0),
    input: cells($("#pg-tf"), tf.padded, tf.padded_mask, [p.top, p.left]),
    output: cells($("#pg-out"), grid(tf), null, [0, 0], "out"),
  }];
  if (pt.padded) {
    sides.push({
      name: "PyTorch", text: $("#pg-torch-trace"), traces: pt.trace.filter((t) => t.channel === 0),
      input: cells($("#pg-torch"), pt.padded, pt.padded_mask, [pt.padding.top, pt.padding.left]),
      output: cells($("#pg-torch-out"), grid(pt), null, [0, 0], "out"),
    });
  } else $("#pg-torch").textContent = pt.error || "";
  $("#pg-notes").innerHTML = tf.notes.map((t) => `<div>${esc(t)}</div>`).join("");
  for (const side of sides) {
    side.output.querySelectorAll(".cell").forEach((cell) => cell.addEventListener("mouseenter",
      () => lightWindows(sides, +cell.dataset.row, +cell.dataset.col)));
  }
}
["#pg-op", "#pg-size", "#pg-kernel", "#pg-stride", "#pg-padding-mode"].forEach((id) => $(id).addEventListener("change", () => playground()));
$("#run").addEventListener("change", (e) => selectRun(e.target.value).catch((err) => showError(err.message)));

loadRuns().catch((err) => showError(err.message));
playground();
window.cnnlab = { state, refresh };
resetOutputs();
