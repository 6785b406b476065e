"""Explanations of a convolution or pooling: formulas, padding per side, windows, traces.

``explain_conv`` and ``explain_pool`` compute the output with the NumPy reference
and return an :class:`Explanation` that can say, for every output cell, which
input cells its window covers (padding included), and on request the products
and the sum that make the cell. The CLI, the figures and the web page all
present this one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.arith import reference
from cnnlab.arith.padding import AxisPadding, axes_for, pair
from cnnlab.errors import CnnlabError, InputError
from cnnlab.shown import Shown, Table

OPS = ("conv2d", "max_pool2d", "avg_pool2d")


def fmt(value: float) -> str:
    """Compact number: integers without a decimal point, others to 4 significant digits."""
    if value is None:
        return "pad"
    v = float(value)
    if np.isfinite(v) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


@dataclass(frozen=True)
class Term:
    """One tap of a window: where it reads, what it reads, and (for conv) its weight."""

    row: int  # input coordinates; outside [0, H) x [0, W) means padding
    col: int
    channel: int
    value: float | None  # None for a padding cell
    weight: float | None = None  # conv only

    @property
    def is_padding(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class CellTrace:
    """How one output cell is computed."""

    op: str
    n: int
    row: int
    col: int
    channel: int
    terms: tuple[Term, ...]
    result: float

    @property
    def real_terms(self) -> list[Term]:
        return [t for t in self.terms if not t.is_padding]

    @property
    def padding_count(self) -> int:
        return sum(t.is_padding for t in self.terms)

    def text(self) -> str:
        """One line, e.g. ``out[0,1] = 5·1 + 6·1 + pad·1 + pad·1 = 5 + 6 + 0 + 0 = 11``."""
        head = f"out[{self.row},{self.col},{self.channel}]"
        if self.op == "conv2d":
            prods = " + ".join(f"{fmt(t.value)}·{fmt(t.weight)}" for t in self.terms)
            vals = " + ".join("0" if t.is_padding else fmt(t.value * t.weight) for t in self.terms)
            return f"{head} = {prods} = {vals} = {fmt(self.result)}"
        real = [fmt(t.value) for t in self.real_terms]
        skipped = self.padding_count
        pad_note = f"  ({skipped} padding cell{'s' if skipped != 1 else ''} absent, not 0)" if skipped else ""
        if self.op == "max_pool2d":
            return f"{head} = max({', '.join(real)}) = {fmt(self.result)}{pad_note}"
        return f"{head} = ({' + '.join(real)}) / {len(real)} = {fmt(self.result)}{pad_note}"

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "row": self.row,
            "col": self.col,
            "channel": self.channel,
            "result": self.result,
            "terms": [
                {"row": t.row, "col": t.col, "channel": t.channel, "value": t.value, "weight": t.weight}
                for t in self.terms
            ],
            "text": self.text(),
        }


@dataclass(frozen=True, repr=False)
class Explanation(Shown):
    """A convolution or pooling with everything needed to explain it. Printed: the shapes, the padding on
    each side with TensorFlow's formulas, and the output of image 0; in a notebook the same with the padded
    input, the window of one output cell and that cell (:meth:`plot`)."""

    op: str  # one of OPS
    input: np.ndarray  # (N, H, W, C) float64
    kernel: np.ndarray | None  # (kh, kw, C, O) for conv2d, None for pooling
    window: tuple[int, int]  # kernel / pool size
    axes: tuple[AxisPadding, AxisPadding]  # height, width
    output: np.ndarray  # (N, Ho, Wo, O)
    notes: tuple[str, ...] = field(default=())

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.input.shape)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return tuple(self.kernel.shape) if self.kernel is not None else self.window

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.output.shape)

    @property
    def strides(self) -> tuple[int, int]:
        return (self.axes[0].stride, self.axes[1].stride)

    @property
    def dilation(self) -> tuple[int, int]:
        return (self.axes[0].dilation, self.axes[1].dilation)

    @property
    def padding(self) -> dict[str, int]:
        ah, aw = self.axes
        return {"top": ah.before, "bottom": ah.after, "left": aw.before, "right": aw.after}

    def padded(self, n: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Image ``n`` with its padding: values (Hp, Wp, C) with 0 in padding, and the padding mask (Hp, Wp)."""
        p = self.padding
        img = self.input[n]
        values = np.pad(img, ((p["top"], p["bottom"]), (p["left"], p["right"]), (0, 0)))
        mask = np.pad(
            np.zeros(img.shape[:2], bool),
            ((p["top"], p["bottom"]), (p["left"], p["right"])),
            constant_values=True,
        )
        return values, mask

    def window_of(self, row: int, col: int) -> tuple[list[int], list[int]]:
        """Input rows and columns read by output cell (row, col); out-of-range means padding."""
        ah, aw = self.axes
        if not (0 <= row < ah.out and 0 <= col < aw.out):
            raise InputError(
                f"Output cell ({row}, {col}) does not exist. Expected 0 <= row < {ah.out} and 0 <= col < {aw.out}."
            )
        return ah.taps(row), aw.taps(col)

    def trace(self, row: int, col: int, channel: int = 0, n: int = 0) -> CellTrace:
        """The products and the sum (conv), or the cells compared / averaged (pooling), of one output cell."""
        rows, cols = self.window_of(row, col)
        h, w, c_in = self.input.shape[1:]
        channels = range(c_in) if self.op == "conv2d" else [channel]
        terms = []
        for c in channels:
            for a, r in enumerate(rows):
                for b, q in enumerate(cols):
                    inside = 0 <= r < h and 0 <= q < w
                    value = float(self.input[n, r, q, c]) if inside else None
                    weight = float(self.kernel[a, b, c, channel]) if self.kernel is not None else None
                    terms.append(Term(r, q, c, value, weight))
        return CellTrace(self.op, n, row, col, channel, tuple(terms), float(self.output[n, row, col, channel]))

    def traces(self, n: int = 0):
        """Every output cell's trace, channel by channel, row by row."""
        for o in range(self.output.shape[3]):
            for i in range(self.output.shape[1]):
                for j in range(self.output.shape[2]):
                    yield self.trace(i, j, o, n)

    def formulas(self) -> dict[str, str]:
        return {ax.axis: ax.formula() for ax in self.axes}

    def pytorch(self) -> dict[str, str]:
        return {ax.axis: ax.torch_note(self.op) for ax in self.axes}

    _figure = "cnnlab.viz.arith:draw_explanation"

    def table(self) -> Table:
        p = self.padding
        what = "kernel" if self.op == "conv2d" else "pool"
        lines = [
            f"strides {self.strides}, padding {self.axes[0].padding.upper()}: "
            f"top {p['top']}, bottom {p['bottom']}, left {p['left']}, right {p['right']}",
            *(f"{axis}: {formula}" for axis, formula in self.formulas().items()),
        ]
        _, ho, wo, channels = self.output.shape
        if ho * wo <= 256 and channels <= 4:  # small enough to read: every value
            for o in range(channels):
                lines.append(f"output of image 0, channel {o}:")
                lines += ["  " + " ".join(fmt(v).rjust(6) for v in row) for row in self.output[0, :, :, o]]
        else:
            lines.append(f"output values {fmt(self.output.min())}..{fmt(self.output.max())} (.output, NHWC)")
        lines += [f"note: {n}" for n in self.notes]
        title = f"{self.op}: input {self.input_shape}, {what} {self.kernel_shape} -> output {self.output_shape}"
        return Table(title, lines=tuple(lines))

    def to_dict(self, trace: bool = False) -> dict:
        d = {
            "op": self.op,
            "input_shape": list(self.input_shape),
            "kernel_shape": list(self.kernel_shape),
            "output_shape": list(self.output_shape),
            "strides": list(self.strides),
            "dilation": list(self.dilation),
            "padding_mode": self.axes[0].padding,
            "padding": self.padding,
            "formulas": self.formulas(),
            "pytorch": self.pytorch(),
            "notes": list(self.notes),
            "output": self.output.tolist(),
        }
        if trace:
            d["trace"] = [t.to_dict() for t in self.traces()]
        return d


def _unread_note(ax: AxisPadding) -> str | None:
    last = ax.taps(ax.out - 1)[-1]
    if last < ax.size - 1:
        first, end = last + 1, ax.size - 1
        cells = f"{first}" if first == end else f"{first}..{end}"
        word = "row" if ax.axis == "height" else "column"
        many = first != end
        return (
            f"Input {word}{'s' if many else ''} {cells} (0-based) {'are' if many else 'is'} never read: "
            f"the stride {ax.stride} steps past {'them' if many else 'it'} (VALID drops the remainder)."
        )
    return None


def _common_notes(axes, op: str) -> list[str]:
    notes = [f"{ax.axis}: {ax.torch_note(op)}" for ax in axes]
    notes += [n for n in (_unread_note(ax) for ax in axes) if n]
    return notes


@dataclass(frozen=True)
class Limits:
    """How much work one explanation may take: cells of the padded input and of the output, and multiply-adds.
    The defaults fit a batch of real images; the server passes smaller ones (one request must stay quick)."""

    cells: int = 2**24
    macs: int = 2**31

    def check(self, xs: np.ndarray, axes, out_channels: int, reads_per_output: int) -> None:
        (ah, aw), (n, c) = axes, (xs.shape[0], xs.shape[3])
        padded = n * c * (ah.size + ah.before + ah.after) * (aw.size + aw.before + aw.after)
        cells = n * out_channels * ah.out * aw.out
        for what, value, limit in (
            ("padded input cells", padded, self.cells),
            ("output cells", cells, self.cells),
            ("multiply-adds", cells * reads_per_output, self.macs),
        ):
            if value > limit:
                raise InputError(
                    f"This would take {value:,} {what}; the limit is {limit:,}. Expected a smaller input, padding, "
                    f"dilation or window (padding {ah.before},{ah.after} x {aw.before},{aw.after}, "
                    f"output {ah.out}x{aw.out})."
                )


def explain_conv(x, kernel, strides=1, padding="valid", dilation=1, limits: Limits = Limits()) -> Explanation:
    """Explain ``tf.nn.conv2d(x, kernel, strides, padding, dilations)``; ``x`` NHWC or HWC, kernel HWIO.
    Work beyond ``limits`` is refused before anything is allocated."""
    xs, _ = reference.as_images(x)
    k = reference.as_kernel(kernel, xs.shape[3])
    axes = axes_for(xs.shape[1], xs.shape[2], k.shape[:2], strides, dilation, padding)
    limits.check(xs, axes, k.shape[3], k.shape[0] * k.shape[1] * k.shape[2])
    out = reference.conv2d(xs, k, strides, padding, dilation)
    notes = _common_notes(axes, "conv2d")
    if any(ax.total for ax in axes):
        notes.insert(0, "Padding cells hold 0 for a convolution: they add nothing to the sum.")
    return Explanation("conv2d", xs, k, tuple(k.shape[:2]), axes, out, tuple(notes))


def explain_pool(
    x, pool_size, strides=None, padding="valid", mode: str = "max", limits: Limits = Limits()
) -> Explanation:
    """Explain ``tf.nn.max_pool2d`` (mode 'max') or ``tf.nn.avg_pool2d`` (mode 'avg'), within ``limits``."""
    mode = str(mode).lower()
    if mode not in ("max", "avg"):
        raise InputError(f"Unknown pooling mode {mode!r}. Expected 'max' or 'avg'.")
    xs, _ = reference.as_images(x)
    size = pair(pool_size, "pool_size")
    strides = size if strides is None else strides
    axes = axes_for(xs.shape[1], xs.shape[2], size, strides, 1, padding)
    limits.check(xs, axes, xs.shape[3], size[0] * size[1])  # a window reads one channel
    fn = reference.max_pool2d if mode == "max" else reference.avg_pool2d
    out = fn(xs, size, strides, padding)
    ex = Explanation(f"{mode}_pool2d", xs, None, size, axes, out)
    notes = _common_notes(axes, ex.op)
    if any(ax.total for ax in axes):
        notes.insert(
            0,
            "Padding cells are absent from a pooling window, not zeros: max compares only real cells, "
            "average divides by the number of real cells.",
        )
        notes += _pool_padding_notes(ex, mode)
    return Explanation(ex.op, xs, None, size, axes, out, tuple(notes))


def _pool_padding_notes(ex: Explanation, mode: str, limit: int = 3) -> list[str]:
    """Point at outputs where treating padding as 0 would have changed the answer."""
    notes = []
    for c in range(ex.output.shape[3]):
        changed = []
        for i in range(ex.output.shape[1]):
            for j in range(ex.output.shape[2]):
                t = ex.trace(i, j, c)
                if not t.padding_count:
                    continue
                real = [v.value for v in t.real_terms]
                zero = max(max(real), 0.0) if mode == "max" else sum(real) / len(t.terms)
                if zero != t.result:
                    changed.append((t, zero))
        if not changed:
            continue
        cells = ", ".join(f"out[{t.row},{t.col}] = {fmt(t.result)}" for t, _ in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        if mode == "max":
            notes.append(
                f"channel {c}: {cells}{more} come from windows that reach into the padding. Padding is not a 0 "
                "that competes, so these values survive; zero padding would have given "
                + ", ".join(fmt(z) for _, z in changed[:4])
                + "."
            )
        else:
            notes.append(
                f"channel {c}: {cells}{more} average only the real cells of windows that reach into the "
                "padding; counting padding as 0 would have given " + ", ".join(fmt(z) for _, z in changed[:4]) + "."
            )
        if len(notes) >= limit:
            break
    return notes


def beside_pytorch(ex: Explanation, rerun) -> dict:
    """TensorFlow's explanation and what PyTorch's symmetric padding computes instead, side by side, each with
    its padded input and mask. ``rerun(padding)`` repeats the same operation with explicit padding."""

    def side(e: Explanation) -> dict:
        d = e.to_dict(trace=True)
        values, mask = e.padded(0)
        d["padded"], d["padded_mask"] = values[:, :, 0].tolist(), mask.tolist()
        return d

    ah, aw = ex.axes
    try:  # PyTorch pads both sides by the same amount: the larger of TensorFlow's two
        torch_side = side(rerun(((ah.after, ah.after), (aw.after, aw.after))))
    except CnnlabError as e:
        torch_side = {"error": str(e)}
    torch_side["note"] = ex.pytorch()
    torch_side["same_as_tensorflow"] = ah.symmetric and aw.symmetric
    return {"tensorflow": side(ex), "pytorch": torch_side}
