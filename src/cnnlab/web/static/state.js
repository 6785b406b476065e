// The page's one state object and the helpers every panel uses: every number comes from the cnnlab library on
// the server, through api().
export const $ = (sel) => document.querySelector(sel);
// Text that came from the server (class and layer names, run ids, formulas, notes) is escaped wherever it is
// put into HTML: a class folder named like markup must show as text, never run.
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (v) => String(v).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
// A run id may hold slashes (runs in subfolders): each segment is URL-encoded on its own.
export const runPath = (id) => "/api/runs/" + id.split("/").map(encodeURIComponent).join("/");

// Every panel shows the current run and the current input, or an empty state that says what to do. `gen` counts
// input and run changes: a response that comes back after the input changed is dropped, never drawn.
export const state = {
  run: null, info: null, tab: "draw", inputs: {}, busy: false, pending: false, overlay: "none", gen: 0,
  heat: {},  // explanations of the current input, by method and class
  layers: null,  // the feature maps last drawn, redrawn when their scale or order changes
  evaluation: null,  // the current run's test-set evaluation
  checks: null,  // the current run's explanation checks, once asked for
  zoomed: null, zoomOpener: null,  // the map in the dialog, and what gets the focus back when it closes
  pen: { down: false, last: null },  // the drawing pad's stroke in progress
  playground: { gen: 0, custom: null },  // custom: a patch and kernel from the model, until a field changes
  lastError: "",
};
export const METHOD_NAMES = {
  gradcam: "Grad-CAM", saliency: "Saliency", smoothgrad: "SmoothGrad", occlusion: "Occlusion",
  "gradcam++": "Grad-CAM++", layercam: "LayerCAM", integrated_gradients: "Integrated Gradients",
};
export const current = () => state.inputs[state.tab] || null;
export const HINTS = {
  draw: "Draw a digit in the box (or pick a test sample).",
  upload: "Choose an image file to see what the model makes of it.",
  sample: "Pick a test image by its index and press Show (or Enter).",
};

export function showError(message) {
  if (message === state.lastError) return;  // a stopped server is reported once, not once per pen move
  state.lastError = message;
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

export async function api(path, options = {}) {
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

export const json = (payload) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
export const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
export const num = (v) => Number(Number(v).toPrecision(4));
export const fmt = (v) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.001) ? v.toExponential(2) : +v.toFixed(3));
