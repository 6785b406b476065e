"""Symbolic tensors: what ``Input(shape)`` returns and what a layer returns when it is called on symbolic tensors,
as in Keras's functional API (``x = Conv2D(32, 3)(inputs)``). A symbolic tensor holds a shape (Keras's, without
the batch: ``(H, W, C)`` or ``(units,)``) and the node that makes it; nodes know their inbound tensors, so the
outputs of a model reach back to its inputs (:class:`cnnlab.nn.graph.Model`). No data flows here."""

from __future__ import annotations

from cnnlab.errors import InputError, ShapeError


def shape_words(shape) -> str:
    """(None, 14, 14, 32): a symbolic tensor's shape as Keras prints it, with the batch."""
    return "(None, " + ", ".join(str(n) for n in shape) + ")"


class SymbolicTensor:
    """A shape and the node that makes it (None for a model input)."""

    def __init__(self, shape: tuple[int, ...], node: Node | None = None):
        self.shape = tuple(shape)
        self.node = node

    @property
    def source(self) -> str:
        """Who makes this tensor, in words: a layer's name, or "the model input"."""
        return f"'{self.node.layer.name}'" if self.node is not None else "the model input"

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={shape_words(self.shape)} from {self.source}>"


class Node:
    """One call of a layer on symbolic tensors: the layer, its inbound tensors, and the tensor it makes. A layer
    called twice has two nodes and one set of weights."""

    def __init__(self, layer, inputs: tuple[SymbolicTensor, ...], many: bool):
        self.layer, self.inputs, self.many = layer, inputs, many  # many: the layer takes a list of tensors
        self.output = SymbolicTensor(layer.output_shape, self)


def is_symbolic(value) -> bool:
    """A symbolic tensor, or a non-empty list or tuple of them (what merge layers such as Add take)."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(isinstance(v, SymbolicTensor) for v in value)
    return isinstance(value, SymbolicTensor)


def connect(layer, value) -> SymbolicTensor:
    """``layer`` called on a symbolic tensor (or a list of them): built for their shapes on its first call, the
    same weights on every later call (which must bring the same shapes), and a new node."""
    many = isinstance(value, (list, tuple))
    inputs = tuple(value) if many else (value,)
    if many != getattr(layer, "takes_many", False):
        want = "a list of tensors, e.g. Add()([a, b])" if not many else "one tensor, e.g. Conv2D(8, 3)(x)"
        raise InputError(f"{layer.kind} '{layer.name or layer.kind}' takes {want}; it was given {len(inputs)}.")
    shape = [t.shape for t in inputs] if many else inputs[0].shape
    if layer.output_shape is None:
        try:
            layer.build(shape)
        except ShapeError as e:
            if not many:
                raise  # a chain's caller says where its input came from (Sequential: and where the map shrank)
            raise ShapeError(f"{e} Its inputs come from {', '.join(t.source for t in inputs)}.") from None
    elif tuple(map(tuple, shape) if many else shape) != tuple(layer.input_shape):
        raise ShapeError(
            f"{layer.kind} '{layer.name}' was built for {layer.input_shape} and is called again on {shape}; a "
            "layer called twice shares its weights, so it needs the same input shape each time."
        )
    return Node(layer, inputs, many).output
