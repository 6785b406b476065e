// Colours and canvases: feature maps, heat maps, kernels and colour bars are painted here.
import { num } from "./state.js";

// viridis, five stops, for maps and kernels; a jet-like map for heat; diverging colours for maps that hold
// negative values (before a ReLU): blue below 0, white at 0, red above
export const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export const JET = [[0, 0, 143], [0, 120, 255], [80, 255, 170], [255, 200, 0], [200, 0, 0]];
export const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];

export function colour(v, stops = STOPS) {
  const t = Math.min(Math.max(v, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}

// values: h*w numbers 0..255 (one channel), or with rgb: 3*h*w bytes, channel after channel (C, H, W)
export function paint(canvas, values, h, w, { stops = STOPS, alpha = 255, scale = 1, gray = false, rgb = false } = {}) {
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

export function colourBar(lo, hi, diverging) {
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
