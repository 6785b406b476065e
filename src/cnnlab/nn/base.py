"""What every Keras-vocabulary layer shares: the :class:`Layer` base class (its output shape before it sees
data, its parameter formula, its multiply-adds, its spec), activations by name and initializers.

Defaults follow Keras: Conv2D/Dense use Glorot-uniform kernels and zero biases. Shapes a person sees are
Keras's: ``(H, W, C)`` for maps and ``(units,)`` for vectors. Inside, tensors are NCHW in channels_last memory.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import InputError, ShapeError
from cnnlab.nn.symbolic import connect, is_symbolic

ACTIVATIONS = {
    None: None,
    "linear": None,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: F.softmax(x, dim=1),
    "elu": F.elu,
    "gelu": F.gelu,
    "selu": F.selu,
    "softplus": F.softplus,
    "swish": F.silu,
    "silu": F.silu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # Keras's default negative slope
}
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros", "ones")


def activate(y: torch.Tensor, activation) -> torch.Tensor:
    """Apply a Conv2D/Dense activation to that layer's fresh output. ReLU runs in place: conv and
    linear do not keep their output for the backward pass, so nothing autograd needs is overwritten."""
    if activation == "relu":
        return F.relu_(y)
    fn = ACTIVATIONS[activation]
    return fn(y) if fn else y


def check_activation(activation):
    key = activation.lower() if isinstance(activation, str) else activation
    if key not in ACTIVATIONS:
        names = ", ".join(sorted(k for k in ACTIVATIONS if k))
        raise InputError(f"Unknown activation {activation!r}. Expected one of: {names} (or None).")
    return key


def _init(tensor: torch.Tensor, name: str, fan_in: int, fan_out: int) -> None:
    """Keras's initializers, by fan-in and fan-out (receptive field included for convolutions)."""
    with torch.no_grad():
        if name == "glorot_uniform":
            limit = math.sqrt(6 / (fan_in + fan_out))
            tensor.uniform_(-limit, limit)
        elif name == "glorot_normal":
            tensor.normal_(0, math.sqrt(2 / (fan_in + fan_out)))  # Keras truncates at 2 std; close enough here
        elif name == "he_uniform":
            limit = math.sqrt(6 / fan_in)
            tensor.uniform_(-limit, limit)
        elif name == "he_normal":
            tensor.normal_(0, math.sqrt(2 / fan_in))
        elif name == "zeros":
            tensor.zero_()
        elif name == "ones":
            tensor.fill_(1)
        else:
            raise InputError(f"Unknown kernel_initializer {name!r}. Expected one of: {', '.join(INITIALIZERS)}.")


def shape_text(shape) -> str:
    """(14, 14, 32) -> '14x14x32'."""
    return "x".join(str(s) for s in shape)


class Layer(nn.Module):
    """Base class: a named layer that infers its output shape when built."""

    kind = "Layer"

    def __init__(self, name: str | None = None):
        super().__init__()
        self.name = name
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None

    # --- to override ---------------------------------------------------------------------------------------
    def infer(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def create(self, shape: tuple[int, ...]) -> None:
        """Create parameters for this input shape (layers without parameters do nothing)."""

    def config(self) -> dict:
        return {}

    def formula(self) -> str:
        return ""

    def macs(self) -> int:
        return 0

    # --- shared ----------------------------------------------------------------------------------------------
    takes_many = False  # True for merge layers (Add, Concatenate, ...), called on a list of tensors

    def __call__(self, *args, **kwargs):
        """On tensors, the layer's forward pass; on symbolic tensors (the functional API), a new node."""
        if len(args) == 1 and not kwargs and is_symbolic(args[0]):
            return connect(self, args[0])
        return super().__call__(*args, **kwargs)

    def build(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        self.input_shape = tuple(shape)
        self.output_shape = tuple(self.infer(self.input_shape))
        self.create(self.input_shape)
        return self.output_shape

    def spec(self) -> dict:
        return {"type": self.kind, "name": self.name, **self.config()}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def _require_map(self, shape) -> None:
        if len(shape) != 3:
            raise ShapeError(
                f"{self.kind} '{self.name}' expects a feature map (H, W, C) but receives a vector of "
                f"{shape_text(shape)} values. Put it before Flatten/Dense, or use Reshape."
            )
