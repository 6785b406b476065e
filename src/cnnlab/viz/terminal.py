"""Text pictures of an explanation for the terminal (rich markup), no matplotlib."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.text import Text

from cnnlab.arith.explain import Explanation, fmt

PAD_MARK = "·"


def matrix_text(values: np.ndarray, mask: np.ndarray | None = None, highlight=None) -> Text:
    """A 2-D array as aligned columns; cells where ``mask`` is True are shown as padding."""
    cells = [
        [PAD_MARK if mask is not None and mask[i, j] else fmt(v) for j, v in enumerate(row)]
        for i, row in enumerate(values)
    ]
    width = max(len(c) for row in cells for c in row)
    text = Text()
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            style = "dim" if cell == PAD_MARK else ""
            if highlight is not None and (i, j) in highlight:
                style = "bold reverse"
            text.append(" " if j else "  ")
            text.append(cell.rjust(width), style=style)
        text.append("\n")
    return text


def _header(ex: Explanation) -> Text:
    p = ex.padding
    mode = ex.axes[0].padding.upper()
    what = "kernel" if ex.op == "conv2d" else "pool"
    t = Text()
    t.append(f"{ex.op}", style="bold")
    t.append(f"  input {ex.input_shape}  {what} {ex.kernel_shape}  ->  output {ex.output_shape}\n")
    dil = f"  dilation {ex.dilation}" if ex.op == "conv2d" else ""
    t.append(f"strides {ex.strides}{dil}  padding {mode}: ")
    t.append(f"top {p['top']}, bottom {p['bottom']}, left {p['left']}, right {p['right']}\n", style="bold")
    for axis, formula in ex.formulas().items():
        t.append(f"  {axis}: {formula}\n")
    return t


def explanation(ex: Explanation, trace: bool = False) -> Group:
    """Shapes, formulas, padding per side, the padded input, the kernel, the output, notes, traces."""
    parts = [_header(ex)]
    values, mask = ex.padded(0)
    n_images = ex.input_shape[0]
    of = f" (image 0 of {n_images})" if n_images > 1 else ""
    for c in range(values.shape[2]):
        parts.append(Text(f"padded input{of}, channel {c}  ({PAD_MARK} = padding)", style="cyan"))
        parts.append(matrix_text(values[:, :, c], mask))
    if ex.kernel is not None:
        for o in range(ex.kernel.shape[3]):
            for c in range(ex.kernel.shape[2]):
                parts.append(Text(f"kernel, input channel {c} -> output channel {o}", style="cyan"))
                parts.append(matrix_text(ex.kernel[:, :, c, o]))
    for n in range(n_images):
        for o in range(ex.output.shape[3]):
            img = f"image {n}, " if n_images > 1 else ""
            parts.append(Text(f"output {img}channel {o}", style="green"))
            parts.append(matrix_text(ex.output[n, :, :, o]))
    if ex.notes:
        parts.append(Text("notes", style="yellow"))
        parts.append(Text("".join(f"  - {note}\n" for note in ex.notes)))
    if trace:
        parts.append(Text("trace (out[row,col,channel]; pad = padding cell)", style="magenta"))
        parts.append(Text("".join(f"  {t.text()}\n" for t in ex.traces())))
    return Group(*parts)
