// The convolution playground: the same cnnlab.arith results as `cnnlab conv`, TensorFlow's padding beside
// PyTorch's, each output cell's window lit on both sides.
import { $, api, esc, json, state } from "./state.js";

// A number field holds what it says: a value outside its min..max is set back to the nearest one allowed.
function fieldValue(id) {
  const field = $(id), lo = Number(field.min), hi = Number(field.max);
  const v = Math.round(Number(field.value));
  const kept = Number.isFinite(v) ? Math.min(Math.max(v, lo), hi) : lo;
  if (String(kept) !== field.value) field.value = String(kept);
  return kept;
}

function clearPlayground(message = "") {
  for (const id of ["#pg-tf", "#pg-torch", "#pg-out", "#pg-torch-out"]) $(id).innerHTML = "";
  $("#pg-padding").textContent = message;
  $("#pg-trace").textContent = "Hover an output cell.";
  $("#pg-torch-trace").textContent = "";
  $("#pg-notes").innerHTML = "";
}

// The model's own patch and kernel (from the map dialog), kept until a field changes
export function playgroundWith(input, kernel) {
  state.playground.custom = { input, kernel };
  $("#pg-op").value = "conv";
  $("#pg-padding-mode").value = "VALID";
  $("#playground").scrollIntoView();
  playground(true);
}

export async function playground(keep = false) {
  const pg = state.playground;
  if (keep !== true) pg.custom = null;
  const custom = pg.custom;
  const n = fieldValue("#pg-size"), k = fieldValue("#pg-kernel"), s = custom ? 1 : fieldValue("#pg-stride");
  const op = custom ? "conv" : $("#pg-op").value, padding = $("#pg-padding-mode").value;
  const input = custom ? custom.input : Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => i * n + j + 1));
  const kernel = custom ? custom.kernel : Array.from({ length: k }, () => Array(k).fill(1));
  $("#pg-source").textContent = custom ? "Your model's own patch and kernel (one input channel), from the map dialog." : "";
  const gen = ++pg.gen;
  clearPlayground("Computing...");
  try {
    const r = op === "conv"
      ? await api("/api/arith/conv", json({ input, kernel, strides: s, padding }))
      : await api("/api/arith/pool", json({ input, size: k, strides: s, padding, mode: op }));
    if (gen === pg.gen) renderPlayground(r);
  } catch (err) { if (gen === pg.gen) clearPlayground(err.message); }
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

export function setUpPlayground() {
  ["#pg-op", "#pg-size", "#pg-kernel", "#pg-stride", "#pg-padding-mode"].forEach((id) => $(id).addEventListener("change", () => playground()));
}
