"""Layers that merge several tensors, as Keras's: ``Add()([a, b])`` and the other element-wise merges of tensors of
one shape, and ``Concatenate(axis)``. Shapes are Keras's (``(H, W, C)``, ``(units,)``); inside, NCHW."""

from __future__ import annotations

import functools
import math

import torch

from cnnlab.errors import InputError, ShapeError
from cnnlab.nn.base import Layer, shape_text


def broadcast(layer, shapes) -> tuple[int, ...]:
    """The shape element-wise operations on ``shapes`` make, by NumPy's rule within one rank (an axis of 1 is
    repeated: a (1, 1, C) gate times an (H, W, C) map); anything else is an error naming both shapes."""
    ranks = {len(s) for s in shapes}
    out = []
    for sizes in zip(*shapes, strict=False) if len(ranks) == 1 else ():
        grown = {n for n in sizes if n != 1}
        if len(grown) > 1:
            break
        out.append(grown.pop() if grown else 1)
    if len(ranks) > 1 or len(out) != ranks.pop():
        got = ", ".join(shape_text(s) for s in shapes)
        raise ShapeError(
            f"{layer.kind} '{layer.name}' needs inputs of one shape (or of 1 along the axes that differ) but "
            f"receives {got}."
        )
    return tuple(out)


class _Merge(Layer):
    """The element-wise merges: two or more tensors of the same shape in, that shape out."""

    takes_many = True
    op = None  # (tensor, tensor) -> tensor, folded over the inputs

    def infer(self, shapes):
        if len(shapes) < 2:
            raise ShapeError(f"{self.kind} '{self.name}' merges two or more tensors; it was given {len(shapes)}.")
        return broadcast(self, shapes)

    def forward(self, xs):
        return functools.reduce(type(self).op, xs)

    def macs(self):
        return (len(self.input_shape) - 1) * math.prod(self.output_shape)


class Add(_Merge):
    kind = "Add"
    op = staticmethod(torch.add)


class Subtract(_Merge):
    """``a - b``: exactly two inputs, as Keras's."""

    kind = "Subtract"
    op = staticmethod(torch.sub)

    def infer(self, shapes):
        if len(shapes) != 2:
            raise ShapeError(f"Subtract '{self.name}' takes exactly two tensors; it was given {len(shapes)}.")
        return super().infer(shapes)


class Multiply(_Merge):
    kind = "Multiply"
    op = staticmethod(torch.mul)


class Maximum(_Merge):
    kind = "Maximum"
    op = staticmethod(torch.maximum)


class Minimum(_Merge):
    kind = "Minimum"
    op = staticmethod(torch.minimum)


class Average(_Merge):
    kind = "Average"

    def forward(self, xs):
        return functools.reduce(torch.add, xs) / len(xs)


class Concatenate(Layer):
    """Tensors joined along Keras's ``axis`` of (H, W, C) or (units,) (default -1: the channels); every other
    axis must agree."""

    kind = "Concatenate"
    takes_many = True

    def __init__(self, axis: int = -1, name: str | None = None):
        super().__init__(name)
        if not isinstance(axis, int) or isinstance(axis, bool) or axis == 0:
            raise InputError(
                f"Concatenate axis={axis!r}. Expected Keras's axis, which counts the batch as 0: -1 or 3 (the "
                "channels of a map), 1 (its rows), 2 (its columns)."
            )
        self.axis = axis

    def infer(self, shapes):
        ranks = {len(s) for s in shapes}
        if len(shapes) < 2 or len(ranks) > 1:
            raise ShapeError(
                f"Concatenate '{self.name}' joins two or more tensors of one rank; it receives "
                f"{', '.join(shape_text(s) for s in shapes)}."
            )
        rank = ranks.pop()
        if not -rank <= self.axis <= rank:
            raise ShapeError(f"Concatenate '{self.name}' axis={self.axis} is outside the {rank} axes of its inputs.")
        axis = self._axis(rank)
        others = {s[:axis] + s[axis + 1 :] for s in shapes}
        if len(others) > 1:
            raise ShapeError(
                f"Concatenate '{self.name}' joins along axis {self.axis}, so every other axis must agree; it "
                f"receives {', '.join(shape_text(s) for s in shapes)}."
            )
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def _axis(self, rank: int) -> int:
        """Keras's axis (the batch is 0) as an axis of the shape without the batch."""
        return self.axis - 1 if self.axis > 0 else self.axis % rank

    def forward(self, xs):
        rank = len(self.output_shape)
        axis = self._axis(rank)
        dim = 1 + axis if rank == 1 else (1 if axis == 2 else axis + 2)  # (H, W, C) axis -> NCHW dim
        return torch.cat(xs, dim=dim)

    def config(self):
        return {"axis": self.axis}


OPERATIONS = {
    "Add": torch.add,
    "Subtract": torch.sub,
    "Multiply": torch.mul,
    "Divide": torch.div,
    "TrueDivide": torch.div,
}


class Operation(Layer):
    """A Keras 3 operation node: ``x + 3.0`` or ``x * y`` written in a functional model is saved as
    ``keras.src.ops.numpy.Add`` (not a layer). ``operands`` holds the numbers in their places and None where
    the tensors go, in order: ``Operation("Add", [None, 3.0])([x])`` is x + 3."""

    kind = "Operation"
    takes_many = True

    def __init__(self, op: str = "Add", operands=(None, None), name: str | None = None):
        super().__init__(name)
        if op not in OPERATIONS:
            raise InputError(f"Operation {op!r} is not one cnnlab computes. Expected one of: {', '.join(OPERATIONS)}.")
        ops = list(operands)
        if len(ops) < 2 or None not in ops or not all(v is None or isinstance(v, (int, float)) for v in ops):
            raise InputError(f"Operation {op} operands={operands!r}. Expected numbers and None where tensors go.")
        self.op, self.operands = op, tuple(None if v is None else float(v) for v in ops)

    def infer(self, shapes):
        if len(shapes) != self.operands.count(None):
            raise ShapeError(f"Operation '{self.name}' ({self.op}) takes {self.operands.count(None)} tensor(s).")
        return broadcast(self, shapes) if len(shapes) > 1 else tuple(shapes[0])

    def forward(self, xs):
        tensors = iter(xs)
        values = [next(tensors) if v is None else v for v in self.operands]
        return functools.reduce(OPERATIONS[self.op], values)

    def config(self):
        return {"op": self.op, "operands": list(self.operands)}
