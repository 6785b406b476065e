"""Figure of a convolution or pooling: padded input with one window, the kernel, the output."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.patches import Rectangle

from cnnlab.arith.explain import Explanation, fmt
from cnnlab.viz.style import finish, subplots


def default_cell(ex: Explanation) -> tuple[int, int]:
    """The last output cell: with SAME padding its window is the one that reaches into the padding."""
    return ex.output.shape[1] - 1, ex.output.shape[2] - 1


def _grid(ax, values, mask=None, highlight=None, cmap="Blues", title="", origin=(0, 0)):
    h, w = values.shape
    shown = np.where(mask, np.nan, values) if mask is not None else values
    finite = shown[np.isfinite(shown)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0, 1)
    ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1)
    for i in range(h):
        for j in range(w):
            if mask is not None and mask[i, j]:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        facecolor="#eeeeee",
                        edgecolor="#999999",
                        hatch="//",
                        linewidth=0.5,
                    )
                )
                ax.text(j, i, "pad", ha="center", va="center", fontsize=7, color="#777777")
            else:
                v = values[i, j]
                dark = vmax > vmin and (v - vmin) / (vmax - vmin) > 0.6
                ax.text(j, i, fmt(v), ha="center", va="center", fontsize=9, color="white" if dark else "black")
    if highlight is not None:
        (r0, r1), (c0, c1) = highlight
        ax.add_patch(
            Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, edgecolor="#d62728", linewidth=2.5)
        )
    # tick labels are input coordinates: padding rows/columns fall outside 0..H-1 / 0..W-1
    ax.set_xticks(range(w), [str(j - origin[1]) for j in range(w)])
    ax.set_yticks(range(h), [str(i - origin[0]) for i in range(h)])
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=10)


def draw_explanation(ex: Explanation, path=None, cell=None, channel: int = 0, n: int = 0):
    """Three panels: the padded input (padding hatched) with the window of ``cell`` outlined,
    the kernel (or the pooling window), and the output with ``cell`` outlined."""
    cell = default_cell(ex) if cell is None else cell
    rows, cols = ex.window_of(*cell)
    values, mask = ex.padded(n)
    top, left = ex.padding["top"], ex.padding["left"]
    in_channel = channel if ex.kernel is None else 0  # pooling maps channel c to channel c
    fig, axes = subplots(
        1,
        3,
        figsize=(12, 4.4),
        gridspec_kw={"width_ratios": [values.shape[1], max(ex.window[1], 2), ex.output.shape[2]]},
    )
    window = ((rows[0] + top, rows[-1] + top), (cols[0] + left, cols[-1] + left))
    p = ex.padding
    _grid(
        axes[0],
        values[:, :, in_channel],
        mask,
        window,
        title=f"padded input {ex.input_shape[1]}x{ex.input_shape[2]} (channel {in_channel})\n"
        f"pad top {p['top']}, bottom {p['bottom']}, left {p['left']}, right {p['right']}",
        origin=(top, left),
    )
    if ex.kernel is not None:
        _grid(
            axes[1],
            ex.kernel[:, :, in_channel, channel],
            cmap="Oranges",
            title=f"kernel {ex.window[0]}x{ex.window[1]}\n(in {in_channel} -> out {channel})",
        )
    else:
        axes[1].axis("off")
        axes[1].text(
            0.5,
            0.5,
            f"{ex.op.split('_')[0]} pool\n{ex.window[0]}x{ex.window[1]}\n\npadding cells\nare absent",
            ha="center",
            va="center",
            fontsize=11,
            transform=axes[1].transAxes,
        )
    _grid(
        axes[2],
        ex.output[n, :, :, channel],
        highlight=((cell[0], cell[0]), (cell[1], cell[1])),
        cmap="Greens",
        title=f"output {ex.output.shape[1]}x{ex.output.shape[2]} (channel {channel})\nstrides {ex.strides}",
    )
    trace = textwrap.fill(ex.trace(cell[0], cell[1], channel, n).text(), 110)
    mode = ex.axes[0].padding.upper()
    fig.suptitle(
        f"{ex.op} {mode}: {ex.input_shape[1]}x{ex.input_shape[2]} -> "
        f"{ex.output.shape[1]}x{ex.output.shape[2]}\n{trace}",
        fontsize=10,
        y=1.02 + 0.04 * trace.count("\n"),
        va="bottom",
    )
    return finish(fig, path)
