// The Test set panel: the run evaluated on its own test split as `cnnlab eval` does (GET /evaluation): accuracy,
// confusion matrix (click a cell for those mistakes) and the first mistakes, each of which opens in the viewer.
import { selectTab, showSample } from "./input.js";
import { paint } from "./paint.js";
import { $, api, decode, esc, runPath, showError, state } from "./state.js";

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

function mistakeCard(m, ev) {
  const [h, w, c] = ev.shape;
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
  return card;
}

function renderMistakes(t, p) {
  const ev = state.evaluation;
  const shown = ev.mistakes.filter((m) => t === null || (m.true === t && m.predicted === p));
  $("#mistakes-filter").textContent = t === null ? `(the first ${ev.mistakes.length})` :
    `(true ${ev.classes[t]}, predicted ${ev.classes[p]}: ${shown.length} of the first ${ev.mistakes.length})`;
  $("#mistakes").innerHTML = "";
  for (const m of shown) $("#mistakes").append(mistakeCard(m, ev));
}

export function setUpTestSet() {
  $("#evaluate").addEventListener("click", evaluateRun);
}
