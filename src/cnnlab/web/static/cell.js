// The map dialog: one map enlarged with the filter that made it, and one cell's computation from the model's
// own weights (POST /cell); for the class scores, their softmax. Keyboard: Enter opens, Escape closes, and the
// focus stays inside while it is open.
import { requestFor } from "./input.js";
import { DIVERGING, STOPS, colour, paint } from "./paint.js";
import { playgroundWith } from "./playground.js";
import { $, api, current, esc, fmt, num, runPath, state } from "./state.js";

const KERNEL_CHANNELS = 8;  // input channels of a kernel shown as tables; the rest are counted

function kernelTable(rows, lo, hi) {
  return `<table class="kernel">${rows.map((r) => `<tr>${r.map((v) => {
    const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    const [R, G, B] = colour(t);
    return `<td style="background:rgb(${R},${G},${B});color:${t > 0.6 ? "#000" : "#fff"}">${v.toFixed(3)}</td>`;
  }).join("")}</tr>`).join("")}</table>`;
}

function openDialog(title, opener) {
  state.zoomOpener = opener || null;
  $("#zoom-title").textContent = title;
  $("#zoom-cell").innerHTML = "";
  $("#zoom-filter-title").textContent = "";
  $("#zoom-filter").innerHTML = "";
  $("#zoom").hidden = false;
  $("#zoom-close").focus();
}

// The filter that made channel `channel` of `layer`: each input channel as a table, an RGB kernel also in colour
function renderFilter(f) {
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
}

export async function zoom(layer, k, values, opener, diverging = false) {
  const [h, w] = layer.shape;
  const gen = state.gen;
  state.zoomed = { layer, k };
  openDialog(`${layer.name} channel ${k} (${h}x${w})`, opener);
  paint($("#zoom-map"), values, h, w, { scale: Math.floor(280 / w), stops: diverging ? DIVERGING : STOPS });
  $("#zoom-range").textContent = `values ${num(layer.min[k])} .. ${num(layer.max[k])} ` +
    (diverging ? "(blue below 0, white at 0, red above)" : "(colours scaled to this range)");
  try {
    const f = await api(`${runPath(state.run)}/filters/${encodeURIComponent(layer.name)}?channel=${k}`);
    if (gen !== state.gen || $("#zoom").hidden) return;
    renderFilter(f);
  } catch (err) { $("#zoom-filter-title").textContent = err.message; $("#zoom-filter").innerHTML = ""; }
}

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

// A convolution cell: the window each side reads (TensorFlow's padding, and PyTorch's where it differs), the
// kernel, the products and their sum, for the input channel that contributes most
function renderConvCell(c, head) {
  const tf = c.tensorflow, cin = tf.per_input_channel.length;
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
}

function renderCell(c) {
  const head = `<h4>cell (${c.row}, ${c.col}) of ${esc(c.layer)} channel ${c.channel} = ${fmt(c.value)}</h4>`;
  if (c.kind === "Conv2D") renderConvCell(c, head);
  else if (c.mode) {
    const what = c.mode === "max" ? `the largest real cell wins: <b>${fmt(c.output)}</b>`
      : `the mean of the ${c.count} real cells: ${fmt(c.sum)} / ${c.count} = <b>${fmt(c.output)}</b>`;
    $("#zoom-cell").innerHTML = head + `<div class="meta small">window rows ${c.rows.join(", ")}, columns ${c.cols.join(", ")}</div>` +
      grid(c.window, c.padding_mask, { mark: c.winner || null }) + `<p class="sum">${what}</p>`;
  } else $("#zoom-cell").innerHTML = head;
}

export async function showSoftmax(layer, opener) {
  const img = current(), gen = state.gen;
  state.zoomed = null;
  openDialog(`${layer.name}: from class scores to probabilities`, opener);
  $("#zoom-range").textContent = "";
  const map = $("#zoom-map"); map.width = 0; map.height = 0; map.style.width = "0px";
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

function closeZoom() {
  if ($("#zoom").hidden) return;
  $("#zoom").hidden = true;
  if (state.zoomOpener) state.zoomOpener.focus();
}

export function setUpCell() {
  $("#zoom-map").addEventListener("click", cellAt);
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
}
