"""Keras-vocabulary layers on PyTorch.

Each layer knows, before it sees data, the shape it produces from the shape it
receives (``build``), how many parameters it holds and by which formula, and how
many multiply-adds it costs: that is what ``Sequential`` checks at construction and
what the summary prints. Shapes a person sees are Keras's: ``(H, W, C)`` for maps and
``(units,)`` for vectors. Inside, tensors are NCHW in channels_last memory.

Defaults follow Keras: Conv2D/Dense use Glorot-uniform kernels and zero biases;
pooling strides default to the pool size; BatchNormalization has momentum 0.99 and
epsilon 1e-3; Flatten flattens in HWC order so Dense weights line up with Keras's.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.arith.padding import axes_for, normalize_padding, pair
from cnnlab.errors import InputError, ShapeError
from cnnlab.nn import functional
from cnnlab.nn.base import (  # noqa: F401 (re-exported: the layers' shared names)
    ACTIVATIONS,
    INITIALIZERS,
    Layer,
    _init,
    activate,
    check_activation,
    shape_text,
)
from cnnlab.nn.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from cnnlab.nn.normalization import BatchNormalization
from cnnlab.nn.pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from cnnlab.nn.symbolic import SymbolicTensor


class Conv2D(Layer):
    kind = "Conv2D"

    def __init__(
        self,
        filters: int,
        kernel_size=3,
        strides=1,
        padding="valid",
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        name: str | None = None,
    ):
        super().__init__(name)
        if not isinstance(filters, int) or filters < 1:
            raise InputError(f"Conv2D filters={filters!r}. Expected a whole number >= 1, e.g. Conv2D(32, 3).")
        self.filters = filters
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        self.padding = normalize_padding(padding)
        if not isinstance(self.padding, str):
            raise InputError("Conv2D padding must be 'same' or 'valid' (Keras's words).")
        self.activation = check_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        if kernel_initializer not in INITIALIZERS:
            raise InputError(
                f"Unknown kernel_initializer {kernel_initializer!r}. Expected one of: {', '.join(INITIALIZERS)}."
            )

    def infer(self, shape):
        self._require_map(shape)
        h, w, _ = shape
        try:
            ah, aw = axes_for(h, w, self.kernel_size, self.strides, self.dilation_rate, self.padding)
        except ShapeError as e:
            raise ShapeError(
                f"Conv2D '{self.name}' cannot apply a {shape_text(self.kernel_size)} kernel to a {shape_text(shape)} "
                f"input with padding='{self.padding}': {e}"
            ) from None
        return (ah.out, aw.out, self.filters)

    def create(self, shape):
        c = shape[2]
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(self.filters, c, kh, kw))  # (O, I, kh, kw)
        _init(self.weight, self.kernel_initializer, kh * kw * c, kh * kw * self.filters)
        self.bias = nn.Parameter(torch.zeros(self.filters)) if self.use_bias else None

    def forward(self, x):
        y = functional.conv2d_nchw(x, self.weight, self.bias, self.strides, self.padding, self.dilation_rate)
        return activate(y, self.activation)

    def config(self):
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }

    def formula(self):
        kh, kw = self.kernel_size
        c = self.input_shape[2]
        n = kh * kw * c * self.filters + (self.filters if self.use_bias else 0)
        bias = f" + {self.filters}" if self.use_bias else ""
        return f"{kh}·{kw}·{c}·{self.filters}{bias} = {n:,}"

    def macs(self):
        ho, wo, o = self.output_shape
        kh, kw = self.kernel_size
        return ho * wo * o * kh * kw * self.input_shape[2]


class Rescaling(Layer):
    """``x * scale + offset``, as Keras's Rescaling (``Rescaling(1 / 255)`` at the start of a model)."""

    kind = "Rescaling"

    def __init__(self, scale: float, offset: float = 0.0, name: str | None = None):
        super().__init__(name)
        try:
            self.scale, self.offset = float(scale), float(offset)
        except (TypeError, ValueError):
            raise InputError(f"Rescaling scale={scale!r}, offset={offset!r}. Expected numbers.") from None

    def infer(self, shape):
        return tuple(shape)

    def forward(self, x):
        return x * self.scale + self.offset

    def config(self):
        return {"scale": self.scale, "offset": self.offset}


class Flatten(Layer):
    """Flattens in (H, W, C) order, as Keras does, so a Dense after it sees Keras's feature order."""

    kind = "Flatten"

    def infer(self, shape):
        return (math.prod(shape),)

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        return x.reshape(x.shape[0], -1)


class Dense(Layer):
    kind = "Dense"

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        input_dim: int | None = None,
        name: str | None = None,
    ):
        super().__init__(name)
        if not isinstance(units, int) or units < 1:
            raise InputError(f"Dense units={units!r}. Expected a whole number >= 1, e.g. Dense(128).")
        self.units = units
        self.activation = check_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.input_dim = input_dim
        if kernel_initializer not in INITIALIZERS:
            raise InputError(
                f"Unknown kernel_initializer {kernel_initializer!r}. Expected one of: {', '.join(INITIALIZERS)}."
            )

    def infer(self, shape):
        if len(shape) != 1:
            raise ShapeError(
                f"Dense '{self.name}' receives a {shape_text(shape)} feature map. Expected a vector; put "
                f"Flatten() (-> {math.prod(shape):,} values) or GlobalAveragePooling2D() (-> {shape[-1]}) before it."
            )
        if self.input_dim is not None and shape[0] != self.input_dim:
            raise ShapeError(f"Dense '{self.name}' expects {self.input_dim:,} inputs but receives {shape[0]:,}.")
        return (self.units,)

    def create(self, shape):
        self.weight = nn.Parameter(torch.empty(self.units, shape[0]))  # (out, in)
        _init(self.weight, self.kernel_initializer, shape[0], self.units)
        self.bias = nn.Parameter(torch.zeros(self.units)) if self.use_bias else None

    def forward(self, x):
        return activate(F.linear(x, self.weight, self.bias), self.activation)

    def config(self):
        cfg = {
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }
        if self.input_dim is not None:
            cfg["input_dim"] = self.input_dim
        return cfg

    def formula(self):
        n_in = self.input_shape[0]
        n = n_in * self.units + (self.units if self.use_bias else 0)
        bias = f" + {self.units}" if self.use_bias else ""
        return f"{n_in:,}·{self.units}{bias} = {n:,}"

    def macs(self):
        return self.input_shape[0] * self.units


class Dropout(Layer):
    kind = "Dropout"

    def __init__(self, rate: float, name: str | None = None):
        super().__init__(name)
        if not 0 <= rate < 1:
            raise InputError(f"Dropout rate={rate!r}. Expected 0 <= rate < 1 (the fraction of inputs dropped).")
        self.rate = float(rate)

    def forward(self, x):
        return F.dropout(x, self.rate, self.training)

    def config(self):
        return {"rate": self.rate}


class Activation(Layer):
    kind = "Activation"

    def __init__(self, activation: str, name: str | None = None):
        super().__init__(name)
        self.activation = check_activation(activation)

    def forward(self, x):
        fn = ACTIVATIONS[self.activation]
        return fn(x) if fn else x

    def config(self):
        return {"activation": self.activation}


class ReLU(Activation):
    kind = "ReLU"

    def __init__(self, name: str | None = None):
        super().__init__("relu", name)

    def config(self):
        return {}


class Softmax(Activation):
    kind = "Softmax"

    def __init__(self, name: str | None = None):
        super().__init__("softmax", name)

    def config(self):
        return {}


class Reshape(Layer):
    kind = "Reshape"

    def __init__(self, target_shape, name: str | None = None):
        super().__init__(name)
        shape = tuple(target_shape) if isinstance(target_shape, (list, tuple)) else ()
        if not shape or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape):
            raise InputError(
                f"Reshape target_shape={target_shape!r}. Expected whole numbers >= 1, e.g. (7, 7, 64) or (3136,)."
            )
        self.target_shape = shape

    def infer(self, shape):
        if math.prod(shape) != math.prod(self.target_shape):
            raise ShapeError(
                f"Reshape '{self.name}' cannot turn {shape_text(shape)} ({math.prod(shape):,} values) into "
                f"{shape_text(self.target_shape)} ({math.prod(self.target_shape):,} values). Expected the same count."
            )
        if len(self.target_shape) not in (1, 3):
            raise ShapeError(f"Reshape '{self.name}' target {self.target_shape}: expected (units,) or (H, W, C).")
        return self.target_shape

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # (N, H, W, C): reshape in Keras's order
        y = x.reshape(x.shape[0], *self.target_shape)
        if y.dim() == 4:
            y = y.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)  # (N, C, H, W)
        return y

    def config(self):
        return {"target_shape": list(self.target_shape)}


class Input(SymbolicTensor):
    """A model's input of shape (H, W, C), as ``keras.Input(shape=...)``: a symbolic tensor that layers are
    called on (the functional API), or the first item of a ``Sequential``'s list. It computes nothing."""

    kind = "Input"

    def __init__(self, shape, name: str | None = None):
        dims = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if len(dims) != 3 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in dims):
            raise InputError(f"Input shape={shape!r}. Expected (height, width, channels), e.g. Input((28, 28, 1)).")
        shape = tuple(int(v) for v in dims)
        if min(shape) < 1:
            raise InputError(f"Input shape={shape!r}. Expected (height, width, channels), e.g. Input((28, 28, 1)).")
        super().__init__(shape)
        self.name = name


LAYERS: dict[str, type] = {
    cls.kind: cls
    for cls in (
        Conv2D,
        MaxPooling2D,
        AveragePooling2D,
        GlobalAveragePooling2D,
        GlobalMaxPooling2D,
        Rescaling,
        Flatten,
        Dense,
        Dropout,
        BatchNormalization,
        ReLU,
        Activation,
        Softmax,
        Reshape,
        Add,
        Subtract,
        Multiply,
        Average,
        Maximum,
        Minimum,
        Concatenate,
    )
}
SHORT_NAMES = {
    "Conv2D": "conv",
    "MaxPooling2D": "pool",
    "AveragePooling2D": "avgpool",
    "GlobalAveragePooling2D": "gap",
    "GlobalMaxPooling2D": "gmp",
    "Rescaling": "rescale",
    "Flatten": "flatten",
    "Dense": "dense",
    "Dropout": "dropout",
    "BatchNormalization": "bn",
    "ReLU": "relu",
    "Activation": "act",
    "Softmax": "softmax",
    "Reshape": "reshape",
    "Add": "add",
    "Subtract": "subtract",
    "Multiply": "multiply",
    "Average": "average",
    "Maximum": "maximum",
    "Minimum": "minimum",
    "Concatenate": "concat",
}
