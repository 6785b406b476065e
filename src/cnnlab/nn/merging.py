"""Layers that merge several tensors, as Keras's: ``Add()([a, b])`` and the other element-wise merges of tensors of
one shape, and ``Concatenate(axis)``. Shapes are Keras's (``(H, W, C)``, ``(units,)``); inside, NCHW."""

from __future__ import annotations

import functools
import math

import torch

from cnnlab.errors import InputError, ShapeError
from cnnlab.nn.base import Layer, shape_text


class _Merge(Layer):
    """The element-wise merges: two or more tensors of the same shape in, that shape out."""

    takes_many = True
    op = None  # (tensor, tensor) -> tensor, folded over the inputs

    def infer(self, shapes):
        if len(shapes) < 2:
            raise ShapeError(f"{self.kind} '{self.name}' merges two or more tensors; it was given {len(shapes)}.")
        if len(set(shapes)) > 1:
            got = ", ".join(shape_text(s) for s in shapes)
            raise ShapeError(f"{self.kind} '{self.name}' needs inputs of one shape but receives {got}.")
        return shapes[0]

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
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise InputError(f"Concatenate axis={axis!r}. Expected a whole number, e.g. -1 (the channels).")
        self.axis = axis

    def infer(self, shapes):
        ranks = {len(s) for s in shapes}
        if len(shapes) < 2 or len(ranks) > 1:
            raise ShapeError(
                f"Concatenate '{self.name}' joins two or more tensors of one rank; it receives "
                f"{', '.join(shape_text(s) for s in shapes)}."
            )
        rank = ranks.pop()
        if not -rank <= self.axis < rank:
            raise ShapeError(f"Concatenate '{self.name}' axis={self.axis} is outside the {rank} axes of its inputs.")
        axis = self.axis % rank
        others = {s[:axis] + s[axis + 1 :] for s in shapes}
        if len(others) > 1:
            raise ShapeError(
                f"Concatenate '{self.name}' joins along axis {self.axis}, so every other axis must agree; it "
                f"receives {', '.join(shape_text(s) for s in shapes)}."
            )
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def forward(self, xs):
        rank = len(self.output_shape)
        axis = self.axis % rank
        dim = 1 + axis if rank == 1 else (1 if axis == 2 else axis + 2)  # (H, W, C) axis -> NCHW dim
        return torch.cat(xs, dim=dim)

    def config(self):
        return {"axis": self.axis}
