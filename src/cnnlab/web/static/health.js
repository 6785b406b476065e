// The run's training health (its stats.jsonl, read by cnnlab.inspect.training_health on the server): whether a
// layer died, then the zeros after each ReLU, the gradient norms and each layer's activation histograms over
// the training steps as one figure.
import { $, api, runPath, state } from "./state.js";

export async function showHealth(id) {
  const img = $("#health");
  img.hidden = true;
  img.removeAttribute("src");
  $("#health-verdict").textContent = "";
  const h = await api(`${runPath(id)}/health`);
  if (id !== state.run) return;  // another run was chosen meanwhile
  const verdict = $("#health-verdict");
  verdict.textContent = h.verdict;
  verdict.className = Object.keys(h.died).length ? "wrong" : h.recorded ? "right" : "meta";
  if (h.recorded) { img.src = `${runPath(id)}/health.png`; img.hidden = false; }
}
