// A branching model drawn as a graph: a row for each level (the longest path from the input), the layers of
// one level side by side, each with the layers it takes and the tensor shape on each of those edges. A nested
// model is a node that folds open. Clicking a layer brings up its feature maps for the current input.
import { $, esc } from "./state.js";

function nodeHtml(n, prefix) {
  const path = prefix + n.name;
  const edges = n.inputs.map((i) => `<span class="gedge">${esc(i.from)} <b>${esc(i.shape.join("x"))}</b></span>`).join(" ");
  const inner = !n.graph ? "" : `<details class="gnested"><summary>${n.graph.nodes.length} layers inside ${esc(n.name)}</summary>` +
    `${levelsHtml(n.graph.nodes, `${path}/`)}</details>`;
  return `<div class="gnode" data-node="${esc(path)}"><div class="gedges">from ${edges}</div>` +
    `<button type="button" class="gname" data-layer="${esc(path)}">${esc(n.name)} (${esc(n.kind)})</button> ` +
    `<span class="gshape">${esc(n.shape.join("x"))}</span>${inner}</div>`;
}

function levelsHtml(nodes, prefix = "") {
  const levels = [];
  for (const n of nodes) (levels[n.level] ||= []).push(n);
  return levels.filter(Boolean).map((row) => `<div class="glevel">${row.map((n) => nodeHtml(n, prefix)).join("")}</div>`).join("");
}

export function renderGraph(graph) {
  $("#graph").innerHTML = !graph ? "" :
    `<h3>Graph of ${esc(graph.name)}: input ${esc(graph.input_shape.join("x"))}</h3>${levelsHtml(graph.nodes)}`;
}

export function setUpGraph() {
  $("#graph").addEventListener("click", (e) => {
    const button = e.target.closest("button.gname");
    if (!button) return;
    for (const old of document.querySelectorAll(".layer.picked")) old.classList.remove("picked");
    const section = document.querySelector(`.layer[data-layer="${CSS.escape(button.dataset.layer)}"]`);
    if (!section) return;
    section.classList.add("picked");
    section.scrollIntoView({ block: "start" });
  });
}
