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

from cnnlab.errors import InputError, ShapeError
from cnnlab.limits import MAX_INPUT_CELLS
from cnnlab.nn.activations import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax, TwoClasses
from cnnlab.nn.base import (  # noqa: F401 (re-exported: the layers' shared names)
    ACTIVATIONS,
    INITIALIZERS,
    Layer,
    _init,
    activate,
    check_activation,
    shape_text,
)
from cnnlab.nn.convolution import Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from cnnlab.nn.merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Operation, Subtract
from cnnlab.nn.normalization import BatchNormalization, LayerNormalization, Normalization
from cnnlab.nn.pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from cnnlab.nn.reshaping import Augmentation, Cropping2D, Identity, UpSampling2D, ZeroPadding2D
from cnnlab.nn.symbolic import SymbolicTensor


class Rescaling(Layer):
    """``x * scale + offset``, as Keras's Rescaling (``Rescaling(1 / 255)`` at the start of a model); scale and
    offset may also be one number a channel (EfficientNet's ``Rescaling(1 / sqrt(variance))``)."""

    kind = "Rescaling"

    def __init__(self, scale, offset=0.0, name: str | None = None):
        super().__init__(name)
        self.scale, self.offset = _per_channel(scale, offset)

    def infer(self, shape):
        for v in (self.scale, self.offset):
            if isinstance(v, tuple) and len(v) not in (1, shape[-1]):
                raise ShapeError(f"Rescaling '{self.name}' has {len(v)} values for {shape[-1]} channels.")
        return tuple(shape)

    def forward(self, x):
        def per(v):
            return x.new_tensor(v).view((1, -1) + (1,) * (x.dim() - 2)) if isinstance(v, tuple) else v

        return x * per(self.scale) + per(self.offset)

    def config(self):
        return {"scale": _plain(self.scale), "offset": _plain(self.offset)}


def _per_channel(*values):
    out = []
    for v in values:
        try:
            out.append(tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v))
        except (TypeError, ValueError):
            raise InputError(f"Rescaling scale and offset {values!r}. Expected numbers (or one a channel).") from None
        if not all(math.isfinite(x) for x in (out[-1] if isinstance(out[-1], tuple) else [out[-1]])):
            raise InputError(f"Rescaling scale and offset {values!r}. Expected finite numbers.")
    return out


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


class Flatten(Layer):
    """Flattens in (H, W, C) order, as Keras does, so a Dense after it sees Keras's feature order."""

    kind = "Flatten"
    keras_data_format = True

    def infer(self, shape):
        return (math.prod(shape),)

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        return x.reshape(x.shape[0], -1)


class Dense(Layer):
    kind = "Dense"
    keras_variables = (("weight", "dense", "kernel"), ("bias", "vector", "bias"))

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
        if self.input_dim is not None and shape[-1] != self.input_dim:
            raise ShapeError(
                f"Dense '{self.name}' expects {self.input_dim:,} inputs but receives "
                f"{f'{shape[0]:,}' if len(shape) == 1 else f'a {shape_text(shape)} map'}."
                + (f" Put Flatten() (-> {math.prod(shape):,} values) before it." if len(shape) > 1 else "")
            )
        return (*shape[:-1], self.units)  # on a map, as Keras's: on the channels of every cell

    def create(self, shape):
        self.weight = nn.Parameter(torch.empty(self.units, shape[-1]))  # (out, in)
        _init(self.weight, self.kernel_initializer, shape[-1], self.units)
        self.bias = nn.Parameter(torch.zeros(self.units)) if self.use_bias else None

    def forward(self, x):
        if x.dim() == 4:  # (N, C, H, W) in channels_last memory: the channels of each cell
            y = F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)
            return activate(y, self.activation)
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
        n_in = self.input_shape[-1]
        n = n_in * self.units + (self.units if self.use_bias else 0)
        bias = f" + {self.units}" if self.use_bias else ""
        return f"{n_in:,}·{self.units}{bias} = {n:,}"

    def macs(self):
        return math.prod(self.input_shape) * self.units


class Dropout(Layer):
    kind = "Dropout"
    passes_at_inference = True

    def __init__(self, rate: float, name: str | None = None):
        super().__init__(name)
        if not 0 <= rate < 1:
            raise InputError(f"Dropout rate={rate!r}. Expected 0 <= rate < 1 (the fraction of inputs dropped).")
        self.rate = float(rate)

    def forward(self, x):
        return F.dropout(x, self.rate, self.training)

    def config(self):
        return {"rate": self.rate}


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
        if math.prod(shape) > MAX_INPUT_CELLS:
            raise InputError(
                f"Input shape={shape!r} holds {math.prod(shape):,} values an image; cnnlab builds models for at "
                f"most {MAX_INPUT_CELLS:,} (a 4096x4096 RGBA picture)."
            )
        super().__init__(shape)
        self.name = name


VOCABULARY = (  # every layer a spec, a Keras file or the functional API may name, and its short name (conv1, ...)
    (Conv2D, "conv"),
    (DepthwiseConv2D, "dwconv"),
    (SeparableConv2D, "sepconv"),
    (Conv2DTranspose, "deconv"),
    (MaxPooling2D, "pool"),
    (AveragePooling2D, "avgpool"),
    (GlobalAveragePooling2D, "gap"),
    (GlobalMaxPooling2D, "gmp"),
    (Rescaling, "rescale"),
    (Normalization, "norm"),
    (Flatten, "flatten"),
    (Dense, "dense"),
    (Dropout, "dropout"),
    (BatchNormalization, "bn"),
    (LayerNormalization, "ln"),
    (ReLU, "relu"),
    (LeakyReLU, "lrelu"),
    (ELU, "elu"),
    (PReLU, "prelu"),
    (Activation, "act"),
    (Softmax, "softmax"),
    (Reshape, "reshape"),
    (ZeroPadding2D, "pad"),
    (Cropping2D, "crop"),
    (UpSampling2D, "up"),
    (Identity, "identity"),
    (Augmentation, "augment"),
    (Add, "add"),
    (Subtract, "subtract"),
    (Multiply, "multiply"),
    (Average, "average"),
    (Maximum, "maximum"),
    (Minimum, "minimum"),
    (Concatenate, "concat"),
    (Operation, "op"),
    (TwoClasses, "two_classes"),
)
LAYERS: dict[str, type] = {cls.kind: cls for cls, _ in VOCABULARY}
SHORT_NAMES = {cls.kind: short for cls, short in VOCABULARY}
