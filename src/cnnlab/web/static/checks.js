// Beside the overlay: how far each explanation method can be trusted on this run (deletion, insertion and the
// model-randomization check, computed by cnnlab.inspect.check_explanations on the server), the overlay's own
// method marked.
import { $, METHOD_NAMES, api, esc, runPath, showError, state } from "./state.js";

export function resetChecks() {
  state.checks = null;
  $("#checks").innerHTML = "";
  $("#check").disabled = false;
}

export function markChecked() {
  document.querySelectorAll("#checks tr[data-method]").forEach((row) => {
    row.classList.toggle("current", row.dataset.method === state.overlay);
  });
}

function renderChecks(c) {
  const rows = c.methods.map((m) => `<tr data-method="${esc(m.method)}" class="${m.flagged ? "flagged" : ""}">` +
    `<td>${esc(METHOD_NAMES[m.method] || m.method)}${m.flagged ? " (flagged)" : ""}</td><td>${m.deletion.toFixed(3)}</td>` +
    `<td>${m.insertion.toFixed(3)}</td><td>${m.randomization_rho.toFixed(2)}</td></tr>`).join("");
  $("#checks").innerHTML = `<p class="meta small">On ${c.images} test images. Deletion: the class probability as the ` +
    `top-ranked pixels are blacked out (area, lower is better); insertion: as they are put back into the blurred ` +
    `image (higher is better); random: rank correlation with the map of the same model with random weights ` +
    `(flagged in red at ${c.flag_rho} or more: the map shows the image, not what the model learned).</p>` +
    `<table><tr><th>method</th><th>deletion</th><th>insertion</th><th>random</th></tr>${rows}</table>`;
  markChecked();
}

export function setUpChecks() {
  $("#check").addEventListener("click", async () => {
    const run = state.run;
    $("#check").disabled = true;
    $("#checks").innerHTML = `<p class="meta">Checking every method on the test images...</p>`;
    try {
      const c = await api(`${runPath(run)}/explanation-checks`);
      if (run !== state.run) return;
      state.checks = c;
      renderChecks(c);
    } catch (err) {
      if (run === state.run) { $("#checks").innerHTML = ""; showError(err.message); }
    }
    if (run === state.run) $("#check").disabled = false;
  });
}
