"""Output size and padding of one spatial axis, exactly as TensorFlow computes them.

TensorFlow's rules (``tf.nn.conv2d``, ``tf.nn.max_pool2d``, Keras layers):

* ``'valid'``: no padding; ``out = floor((in - k_eff) / s) + 1`` where
  ``k_eff = (k - 1) * d + 1`` is the dilated kernel extent.
* ``'same'``: ``out = ceil(in / s)``; total padding
  ``max((out - 1) * s + k_eff - in, 0)``; ``floor(total / 2)`` goes before
  (top/left) and the rest after (bottom/right), so an odd total puts the extra
  row at the bottom and the extra column at the right.
* explicit ``(before, after)``: ``out = floor((in + before + after - k_eff) / s) + 1``.

PyTorch's ``padding=int`` pads both sides equally and its ``padding='same'``
refuses stride > 1, so where TensorFlow pads unevenly PyTorch needs ``F.pad``
first; :class:`AxisPadding` says which case applies.
"""

from __future__ import annotations

import functools
import numbers
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.errors import InputError, PaddingError, ShapeError

PADDING_WORDS = ("same", "valid")


def normalize_padding(padding) -> str | tuple[tuple[int, int], tuple[int, int]]:
    """Return ``'same'``, ``'valid'`` or explicit ``((top, bottom), (left, right))``.

    Accepts the words in any case, or explicit pairs as TensorFlow does.
    """
    if isinstance(padding, str):
        word = padding.strip().lower()
        if word in PADDING_WORDS:
            return word
        raise PaddingError(
            f"Unknown padding {padding!r}. Expected one of 'same' or 'valid' (any case), "
            "or explicit ((top, bottom), (left, right)). Use padding='same' to keep the size "
            "at stride 1, or 'valid' for no padding."
        )
    try:
        (top, bottom), (left, right) = padding
        pads = tuple(int(v) for v in (top, bottom, left, right))
    except (TypeError, ValueError):
        raise PaddingError(
            f"Padding {padding!r} is neither a word nor two (before, after) pairs. "
            "Expected 'same', 'valid' or ((top, bottom), (left, right)), e.g. ((0, 1), (0, 1))."
        ) from None
    if min(pads) < 0:
        raise PaddingError(
            f"Explicit padding {padding!r} has a negative value. "
            "Expected non-negative counts of rows/columns; use 0 for no padding."
        )
    return ((pads[0], pads[1]), (pads[2], pads[3]))


def pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> a pair, each at least ``minimum``."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        values = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        values = tuple(value)
    else:
        raise InputError(f"{name}={value!r} is not an int or a pair of ints. Expected e.g. {name}=2 or {name}=(2, 1).")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not float(v).is_integer():
            raise InputError(f"{name}={value!r} must hold whole numbers. Expected e.g. {name}=2.")
        if int(v) < minimum:
            raise InputError(
                f"{name}={value!r} is below {minimum}. Expected {name} >= {minimum}; "
                f"use {name}={minimum} for the smallest allowed value."
            )
        out.append(int(v))
    return out[0], out[1]


@dataclass(frozen=True)
class AxisPadding:
    """Everything about one spatial axis of a convolution or pooling."""

    axis: str  # "height" or "width"
    size: int  # input cells along the axis
    kernel: int  # kernel taps along the axis
    stride: int
    dilation: int
    padding: str  # "same", "valid" or "explicit"
    out: int
    before: int  # cells of padding on the top / left
    after: int  # cells of padding on the bottom / right

    @property
    def effective_kernel(self) -> int:
        """Extent of the dilated kernel: ``(k - 1) * d + 1``."""
        return (self.kernel - 1) * self.dilation + 1

    @property
    def total(self) -> int:
        return self.before + self.after

    @property
    def symmetric(self) -> bool:
        return self.before == self.after

    @property
    def torch_padding(self) -> int | None:
        """The ``padding=int`` that makes PyTorch match exactly, or None when none can."""
        return self.before if self.symmetric else None

    def taps(self, index: int) -> list[int]:
        """Input cells read by output cell ``index``, in input coordinates.

        A value below 0 or at least ``size`` is a padding cell.
        """
        start = index * self.stride - self.before
        return [start + t * self.dilation for t in range(self.kernel)]

    def formula(self) -> str:
        """The output-size formula with this axis's numbers filled in."""
        k, s, d, n = self.kernel, self.stride, self.dilation, self.size
        ke = self.effective_kernel
        kdesc = f"k_eff = ({k}-1)*{d}+1 = {ke}; " if d > 1 else ""
        if self.padding == "same":
            return (
                f"{kdesc}SAME: out = ceil({n}/{s}) = {self.out}; "
                f"total pad = max(({self.out}-1)*{s} + {ke} - {n}, 0) = {self.total}; "
                f"before = floor({self.total}/2) = {self.before}, after = {self.total}-{self.before} = {self.after}"
            )
        if self.padding == "valid":
            return f"{kdesc}VALID: out = floor(({n} - {ke})/{s}) + 1 = {self.out}; no padding"
        return (
            f"{kdesc}explicit: out = floor(({n} + {self.before} + {self.after} - {ke})/{s}) + 1 = {self.out}; "
            f"before = {self.before}, after = {self.after}"
        )

    def torch_note(self, op: str = "conv2d") -> str:
        """What PyTorch needs to compute the same thing along this axis.

        ``op`` is ``'conv2d'``, ``'max_pool2d'`` or ``'avg_pool2d'``: PyTorch's pooling pads
        with cells that are ignored (max) or optionally not counted (``count_include_pad=False``).
        """
        side = "top/bottom" if self.axis == "height" else "left/right"
        pool = op != "conv2d"
        if self.total == 0:
            return "PyTorch: padding=0 matches (no padding)."
        if self.symmetric:
            note = f"PyTorch: padding={self.before} matches (equal {side} padding)."
            if op == "avg_pool2d":
                note += " Pass count_include_pad=False so the padding is not averaged in."
            elif op == "conv2d" and self.padding == "same" and self.stride > 1:
                note += " Its padding='same' would refuse stride > 1."
            if pool and self.before > self.kernel // 2:
                note += f" (PyTorch pooling allows at most {self.kernel // 2}: pad with F.pad instead.)"
            return note
        sym = self.after
        torch_out = (self.size + 2 * sym - self.effective_kernel) // self.stride + 1
        note = (
            f"PyTorch pads {side} equally, TensorFlow puts {self.before} before and {self.after} after: "
            f"padding={sym} would give {torch_out} outputs"
        )
        note += " with every window one cell earlier" if torch_out == self.out else ""
        fill = {"conv2d": "", "max_pool2d": ", value=-inf", "avg_pool2d": ""}[op]
        note += f"; pad ({self.before}, {self.after}) with F.pad(...{fill}) first, then padding=0."
        if op == "avg_pool2d":
            note += " Then divide each window's sum by its count of real cells, not by the window size."
        elif op == "conv2d" and self.padding == "same":
            note += (
                " padding='same' matches at stride 1 only (it refuses stride > 1)."
                if self.stride > 1
                else " padding='same' matches here (at stride 1 it also puts the extra cell after)."
            )
        return note


def padding_for(
    size: int,
    kernel: int,
    stride: int = 1,
    dilation: int = 1,
    padding="valid",
    *,
    axis: str = "height",
) -> AxisPadding:
    """Output size and padding before/after for one axis (TensorFlow's rules).

    ``padding`` is ``'same'``, ``'valid'`` (any case) or an explicit ``(before, after)`` pair.
    """
    for name, value in (("size", size), ("kernel", kernel), ("stride", stride), ("dilation", dilation)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name}={value!r} is not allowed. Expected a whole number >= 1 (e.g. {name}=1).")
    ke = (kernel - 1) * dilation + 1
    if isinstance(padding, str):
        mode = normalize_padding(padding)
        before = after = 0
    else:
        try:
            before, after = (int(v) for v in padding)
        except (TypeError, ValueError):
            raise PaddingError(
                f"Padding {padding!r} for one axis is not a word or a (before, after) pair. "
                "Expected 'same', 'valid' or e.g. (0, 1)."
            ) from None
        if before < 0 or after < 0:
            raise PaddingError(f"Padding {padding!r} has a negative count. Expected (before, after) >= 0.")
        mode = "explicit"
    if mode == "same":
        out = -(-size // stride)  # ceil in exact integers: size / stride in floats is wrong past 2**53
        total = max((out - 1) * stride + ke - size, 0)
        before, after = total // 2, total - total // 2
    else:
        span = size + before + after
        if span < ke:
            what = f"{size}" if mode == "valid" else f"{size} + {before} + {after} padding = {span}"
            raise ShapeError(
                f"The {axis} kernel extent {ke} is larger than the {mode.upper()} input {axis} {what}. "
                f"Expected kernel <= input along each axis; use padding='same', a smaller kernel, "
                "or a larger input."
            )
        out = (span - ke) // stride + 1
    return AxisPadding(axis, size, kernel, stride, dilation, mode, out, before, after)


def _hashable(value):
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def axes_for(height: int, width: int, kernel, strides, dilation, padding) -> tuple[AxisPadding, AxisPadding]:
    """Both spatial axes at once; ``padding`` as accepted by :func:`normalize_padding`.

    Memoized: a layer asks the same question on every forward pass (5 us each time otherwise).
    """
    if _compiling():  # torch.compile traces the computation itself (it cannot trace into the cache)
        return _axes_for.__wrapped__(height, width, kernel, strides, dilation, padding)
    try:
        return _axes_for(height, width, kernel, strides, dilation, padding)  # layers pass tuples: hashable
    except TypeError:
        pass
    try:  # lists from a user or a JSON body: the same question as tuples
        return _axes_for(height, width, _hashable(kernel), _hashable(strides), _hashable(dilation), _hashable(padding))
    except TypeError:  # still unhashable: compute it uncached (and let validation explain it)
        return _axes_for.__wrapped__(height, width, kernel, strides, dilation, padding)


def _compiling() -> bool:
    """True while torch.compile traces a model (arith never imports torch itself)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.compiler.is_compiling()


@functools.lru_cache(maxsize=4096)
def _axes_for(height: int, width: int, kernel, strides, dilation, padding) -> tuple[AxisPadding, AxisPadding]:
    sh, sw = pair(strides, "strides")
    dh, dw = pair(dilation, "dilation")
    mode = normalize_padding(padding)
    ph, pw = (mode, mode) if isinstance(mode, str) else mode
    return (
        padding_for(height, kernel[0], sh, dh, ph, axis="height"),
        padding_for(width, kernel[1], sw, dw, pw, axis="width"),
    )
