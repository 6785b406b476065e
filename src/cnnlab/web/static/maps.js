// The feature maps of every layer: channel maps with their colour bar, vectors wrapped into rows, and the
// class scores named by class. A click opens a map (or the scores) in the dialog (cell.js).
import { showSoftmax, zoom } from "./cell.js";
import { DIVERGING, STOPS, colourBar, paint } from "./paint.js";
import { $, decode, esc, fmt, num, state } from "./state.js";

const VECTOR_COLUMNS = 64;
const SHOWN_CHANNELS = 16;  // channels of a layer in view; the others fold under "N more channels"

// Enter (and Space, for a map) on a focused element does what a click does
function clickable(el, open, keys = ["Enter"]) {
  el.tabIndex = 0;
  el.addEventListener("click", open);
  el.addEventListener("keydown", (e) => { if (keys.includes(e.key)) { e.preventDefault(); open(); } });
}

// one score per class: labelled with the class names, click for the softmax
function renderScores(layer, holder) {
  holder.className = "scores";
  const top = Math.max(...layer.values.map(Math.abs)) || 1;
  holder.innerHTML = layer.values.map((v, i) => `<div class="score"><span>${esc(state.info.classes[i])}</span>` +
    `<div class="track"><div class="fill ${v < 0 ? "neg" : ""}" style="width:${(Math.abs(v) / top * 50).toFixed(1)}%;` +
    `${v < 0 ? "right:50%" : "left:50%"}"></div></div><span>${fmt(v)}</span></div>`).join("");
  holder.classList.add("clickable");
  holder.setAttribute("aria-label", `${layer.name}: one score per class; press Enter for the softmax`);
  clickable(holder, () => showSoftmax(layer, holder));
}

// a vector is wrapped into rows of at most VECTOR_COLUMNS cells, so a Flatten of 3,136 values is a 64x49
// block, never a strip wider than the page; hovering names the unit
function renderVector(layer, holder) {
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
}

// The channels in the order asked for: as they are, or the strongest (highest mean) first
function channelOrder(layer, bytes) {
  const [h, w, ch] = layer.shape;
  const order = [...Array(ch).keys()];
  if ($("#map-order").value !== "activation") return order;
  const mean = (k) => {
    let t = 0;
    for (let i = 0; i < h * w; i++) t += layer.min[k] + bytes[k * h * w + i] / 255 * (layer.max[k] - layer.min[k]);
    return t / (h * w);
  };
  const means = order.map(mean);
  return order.sort((a, b) => means[b] - means[a]);
}

// One channel's bytes for painting: as sent (its own range), re-scaled to the layer's range, or around 0
function channelValues(layer, k, bytes, range) {
  const [h, w] = layer.shape;
  const raw = bytes.subarray(k * h * w, (k + 1) * h * w);
  const lo = layer.min[k], hi = layer.max[k];
  if (!range.diverging && !range.perLayer) return raw;
  const value = (u) => lo + u / 255 * (hi - lo);
  const m = Math.max(Math.abs(range.perLayer ? range.lo : lo), Math.abs(range.perLayer ? range.hi : hi)) || 1;
  const [a, b] = range.perLayer ? [range.lo, range.hi] : [lo, hi];
  return Uint8Array.from(raw, (u) => (range.diverging ? (value(u) / m + 1) * 127.5 : (b > a ? (value(u) - a) / (b - a) * 255 : 0)));
}

function renderChannels(layer, holder, section, range) {
  holder.className = "maps";
  const [, w, ch] = layer.shape;
  const bytes = decode(layer.data);
  const scale = Math.max(2, Math.min(8, Math.floor(112 / w)));  // larger maps get larger tiles, up to 112 px
  for (const k of channelOrder(layer, bytes)) {
    const c = document.createElement("canvas");
    c.className = "fmap";
    c.dataset.channel = k;
    const values = channelValues(layer, k, bytes, range);
    paint(c, values, layer.shape[0], w, { scale, stops: range.diverging ? DIVERGING : STOPS });
    c.title = `channel ${k}: ${num(layer.min[k])} .. ${num(layer.max[k])}`;
    c.setAttribute("aria-label", `${layer.name} ${c.title}`);
    clickable(c, () => zoom(layer, k, values, c, range.diverging), ["Enter", " "]);
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
  const { lo, hi, diverging, perLayer } = range;
  const [barLo, barHi] = diverging ? [-Math.max(-lo, hi), Math.max(-lo, hi)] : [lo, hi];
  section.append(colourBar(barLo, barHi, diverging));
  if (!perLayer && !diverging) section.lastChild.lastChild.textContent += " (each map scaled to its own range)";
}

export function renderMaps(layers) {
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
    if (isScores) renderScores(layer, holder);
    else if (layer.values) renderVector(layer, holder);
    else {
      const lo = scaleBy === "network" ? networkLo : Math.min(...layer.min);
      const hi = scaleBy === "network" ? networkHi : Math.max(...layer.max);
      renderChannels(layer, holder, section, { lo, hi, diverging: lo < 0, perLayer });
    }
    section.append(holder);
    $("#maps").append(section);
  }
}

export function setUpMaps() {
  $("#map-scale").addEventListener("change", () => state.layers && renderMaps(state.layers));
  $("#map-order").addEventListener("change", () => state.layers && renderMaps(state.layers));
}
