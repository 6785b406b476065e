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


def _hard_sigmoid(x):
    """Keras 3's hard_sigmoid: relu6(x + 3) / 6 (Keras 2's was clip(0.2x + 0.5, 0, 1))."""
    return F.relu6(x + 3) / 6


ACTIVATIONS = {  # Keras 3's built-in activations, by the names its configs use
    None: None,
    "linear": None,
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "hard_swish": lambda x: x * _hard_sigmoid(x),
    "tanh": torch.tanh,
    "softmax": lambda x: F.softmax(x, dim=1),
    "log_softmax": lambda x: F.log_softmax(x, dim=1),
    "elu": F.elu,
    "gelu": F.gelu,  # Keras's default: the exact erf form
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "mish": F.mish,
    "exponential": torch.exp,
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


def _depthwise_to_torch(kernel, layer):  # Keras (kh, kw, C, M) -> torch (C*M, 1, kh, kw), channel c*M + m
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]


def _depthwise_to_keras(weight, layer):
    cm, _, kh, kw = weight.shape
    m = layer.depth_multiplier
    return weight[:, 0].transpose(1, 2, 0).reshape(kh, kw, cm // m, m)


# How a variable is laid out in Keras's weights and in cnnlab's: (Keras -> cnnlab, cnnlab -> Keras), NumPy arrays
LAYOUTS = {
    "vector": (lambda a, layer: a, lambda a, layer: a),
    "conv": (lambda k, layer: k.transpose(3, 2, 0, 1), lambda w, layer: w.transpose(2, 3, 1, 0)),  # HWIO, OIHW
    "dense": (lambda k, layer: k.T, lambda w, layer: w.T),  # (in, out) and (out, in)
    "depthwise": (_depthwise_to_torch, _depthwise_to_keras),
}
KERAS_IGNORED = ("_initializer", "_regularizer", "_constraint")  # config keys that change no computed number


def keras_value(value):
    """A config value as Keras's JSON has it: tuples as lists, no activation as "linear"."""
    if isinstance(value, tuple):
        return [keras_value(v) for v in value]
    return value


def shape_text(shape) -> str:
    """(14, 14, 32) -> '14x14x32'."""
    return "x".join(str(s) for s in shape)


class Freezable:
    """Keras's ``trainable = False`` for a layer or a nested model (mixed into ``nn.Module`` subclasses)."""

    frozen = False

    def freeze(self, frozen: bool = True):
        """No weight of it learns, and its BatchNormalization layers keep using their moving statistics even
        while the model around it trains (Keras's rule for a frozen layer)."""
        self.frozen = frozen
        for p in self.parameters():
            p.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode and not self.frozen)
        return self


class Layer(Freezable, nn.Module):
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
    passes_at_inference = False  # True where inference passes the input on unchanged (augmentation, Dropout)

    def __call__(self, *args, **kwargs):
        """On tensors, the layer's forward pass; on symbolic tensors (the functional API), a new node."""
        if len(args) == 1 and not kwargs and is_symbolic(args[0]):
            return connect(self, args[0])
        return super().__call__(*args, **kwargs)

    @property
    def outputs_probabilities(self) -> bool:
        """True when this layer's output is class probabilities (a softmax), not logits."""
        return getattr(self, "activation", None) == "softmax"

    def build(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        self.input_shape = tuple(shape)
        self.output_shape = tuple(self.infer(self.input_shape))
        self.create(self.input_shape)
        return self.output_shape

    def spec(self) -> dict:
        return {"type": self.kind, "name": self.name, **self.config()}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    # --- the Keras codec: what a layer's Keras config and weights say, both ways -----------------------------
    keras_class: str | None = None  # Keras's class name, where it is not ``kind``
    keras_variables: tuple[tuple[str, str, str], ...] = ()  # (attribute, layout, Keras's name), in Keras's order
    keras_data_format = False  # Keras's config of this layer carries data_format
    keras_fixed: dict = {}  # Keras config keys whose other values cnnlab does not compute: {key: allowed values}
    keras_skip: tuple[str, ...] = ("kernel_initializer", "input_dim")  # cnnlab config keys Keras has not

    @property
    def keras_name(self) -> str:
        return self.keras_class or self.kind

    def keras_config(self) -> dict:
        """This layer's Keras 3 config (without the name, dtype and trainable every layer has)."""
        cfg = {k: keras_value(v) for k, v in self.config().items() if k not in self.keras_skip}
        if "activation" in cfg and cfg["activation"] is None:
            cfg["activation"] = "linear"
        return {**cfg, **({"data_format": "channels_last"} if self.keras_data_format else {})}

    @classmethod
    def from_keras(cls, cfg: dict) -> Layer:
        """The layer a Keras config describes: its arguments are Keras's own names, so they are read by name;
        initializers, regularizers and constraints change no number computed and are left out."""
        import inspect

        for key, allowed in cls.keras_fixed.items():
            if key in cfg and cfg[key] not in allowed:
                raise InputError(f"{key}={cfg[key]!r} is not supported (cnnlab computes {key} in {list(allowed)}).")
        params = inspect.signature(cls.__init__).parameters
        needed = [k for k, p in params.items() if k != "self" and p.default is inspect.Parameter.empty]
        if any(k not in cfg for k in needed):
            raise InputError(f"its config has no {next(k for k in needed if k not in cfg)!r}")
        args = {k: cfg[k] for k in params if k in cfg and k != "self" and not k.endswith(KERAS_IGNORED)}
        return cls(**args)

    def keras_arrays(self) -> list:
        """The layer's variables in Keras's order and layouts, as NumPy arrays."""
        out = []
        for attr, layout, _ in self.keras_variables:
            value = getattr(self, attr, None)
            if value is not None:
                value = value.detach().cpu()
                out.append(LAYOUTS[layout][1]((value.float() if value.is_floating_point() else value).numpy(), self))
        return out

    def load_keras_arrays(self, arrays: list) -> None:
        """Copy Keras's variables (in Keras's order and layouts) into this layer, checking each shape."""
        import numpy as np

        targets = [(a, lay, n) for a, lay, n in self.keras_variables if getattr(self, a, None) is not None]
        if len(arrays) != len(targets):
            raise InputError(f"the weights hold {len(arrays)} variable(s); the config makes {len(targets)}")
        for (attr, layout, keras_name), value in zip(targets, arrays, strict=True):
            param, value = getattr(self, attr), np.asarray(value)
            wanted = LAYOUTS[layout][1](np.empty(tuple(param.shape), np.float32), self).shape  # no data touched
            if value.shape != wanted:
                raise InputError(f"the {keras_name} in the weights is {value.shape} but the config makes it {wanted}")
            value = LAYOUTS[layout][0](value, self)
            with torch.no_grad():
                param.copy_(torch.from_numpy(np.array(value, order="C")).to(param.dtype))  # (0-d stays 0-d)

    def _require_map(self, shape) -> None:
        if len(shape) != 3:
            raise ShapeError(
                f"{self.kind} '{self.name}' expects a feature map (H, W, C) but receives a vector of "
                f"{shape_text(shape)} values. Put it before Flatten/Dense, or use Reshape."
            )
