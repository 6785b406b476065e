// The training curves (curves.png, the loss every few steps) and another run's drawn on the same chart.
import { $, esc, runPath, state } from "./state.js";

// The curves of run `id`, and the other runs offered for comparison
export function showCurves(id) {
  $("#curves").src = `${runPath(id)}/curves.png`;
  $("#compare").innerHTML = `<option value="">no other run</option>` + [...$("#run").options]
    .filter((o) => o.value !== id).map((o) => `<option value="${esc(o.value)}">${esc(o.textContent)}</option>`).join("");
  $("#compare-curves").hidden = true;
}

export function setUpCurves() {
  $("#compare").addEventListener("change", () => {
    const other = $("#compare").value, img = $("#compare-curves");
    img.hidden = !other;
    if (other) img.src = `/api/compare/curves.png?run=${encodeURIComponent(state.run)}&run=${encodeURIComponent(other)}`;
  });
}
