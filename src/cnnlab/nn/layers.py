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


class _Pool(Layer):
    mode = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", name: str | None = None):
        super().__init__(name)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = pair(strides, "strides") if strides is not None else self.pool_size
        self.padding = normalize_padding(padding)
        if not isinstance(self.padding, str):
            raise InputError(f"{self.kind} padding must be 'same' or 'valid' (Keras's words).")

    def infer(self, shape):
        self._require_map(shape)
        try:
            ah, aw = axes_for(shape[0], shape[1], self.pool_size, self.strides, 1, self.padding)
        except ShapeError as e:
            raise ShapeError(
                f"{self.kind} '{self.name}' cannot pool a {shape_text(shape)} input with pool_size "
                f"{shape_text(self.pool_size)} and padding='{self.padding}': {e}"
            ) from None
        return (ah.out, aw.out, shape[2])

    def forward(self, x):
        fn = functional.max_pool2d_nchw if self.mode == "max" else functional.avg_pool2d_nchw
        return fn(x, self.pool_size, self.strides, self.padding)

    def config(self):
        return {"pool_size": list(self.pool_size), "strides": list(self.strides), "padding": self.padding}

    def macs(self):
        ho, wo, c = self.output_shape
        return ho * wo * c * self.pool_size[0] * self.pool_size[1]


class MaxPooling2D(_Pool):
    kind = "MaxPooling2D"
    mode = "max"


class AveragePooling2D(_Pool):
    kind = "AveragePooling2D"
    mode = "avg"


class _GlobalPool(Layer):
    """One number per channel from the whole map: (H, W, C) -> (C,)."""

    def infer(self, shape):
        self._require_map(shape)
        return (shape[2],)

    def macs(self):
        h, w, c = self.input_shape
        return h * w * c


class GlobalAveragePooling2D(_GlobalPool):
    kind = "GlobalAveragePooling2D"

    def forward(self, x):
        return x.mean(dim=(2, 3))  # (N, C)


class GlobalMaxPooling2D(_GlobalPool):
    kind = "GlobalMaxPooling2D"

    def forward(self, x):
        return x.amax(dim=(2, 3))  # (N, C)


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


class BatchNormalization(Layer):
    """Per channel for maps, per unit for vectors. Keras counts 4 numbers per channel: gamma and beta
    (trainable), the moving mean and variance (non-trainable)."""

    kind = "BatchNormalization"

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        name: str | None = None,
    ):
        super().__init__(name)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)  # Keras's: beta and gamma exist only when asked

    def create(self, shape):
        c = shape[-1]
        self.weight = nn.Parameter(torch.ones(c)) if self.scale else None  # gamma
        self.bias = nn.Parameter(torch.zeros(c)) if self.center else None  # beta
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x):
        if self.training and _processes() > 1:
            return _batch_norm_across_processes(self, x)
        # Keras's momentum is the weight of the old moving average; PyTorch's is the weight of the new batch
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            1 - self.momentum,
            self.epsilon,
        )

    def config(self):
        extra = {k: False for k in ("center", "scale") if not getattr(self, k)}
        return {"momentum": self.momentum, "epsilon": self.epsilon, **extra}

    def formula(self):
        c, learned = self.input_shape[-1], int(self.center) + int(self.scale)
        return f"{2 + learned}·{c} = {(2 + learned) * c:,} ({learned * c:,} trainable)"

    def macs(self):
        return math.prod(self.input_shape)


def _processes() -> int:
    """How many training processes share each batch (1 unless torch.distributed's group is up)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _SumOverProcesses(torch.autograd.Function):
    """A tensor added over all training processes; its gradient is the gradients added the same way (each
    rank's loss depends on every rank's contribution)."""

    @staticmethod
    def forward(ctx, values):
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
        return values

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _batch_norm_across_processes(layer: BatchNormalization, x: torch.Tensor) -> torch.Tensor:
    """Training-mode batch normalization over the whole global batch when several processes train: each
    rank's per-channel sums of x and x*x and its count are added over the ranks by an all_reduce that
    carries the gradients back, so every rank normalizes with the statistics one process would have
    computed and the moving statistics stay equal on all ranks. (torch.nn.SyncBatchNorm does the same on
    GPUs only; this runs on gloo and the CPU too.)"""
    c = x.shape[1]
    dims = [d for d in range(x.dim()) if d != 1]
    xf = x.float()
    count = xf.new_tensor([x.numel() / c])
    total = _SumOverProcesses.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
    n = total[-1]
    mean = total[:c] / n
    var = (total[c : 2 * c] / n - mean * mean).clamp_min(0)
    with torch.no_grad():
        new = 1 - layer.momentum  # Keras's momentum is the weight of the old moving average
        layer.running_mean.mul_(1 - new).add_(mean.detach(), alpha=new)
        layer.running_var.mul_(1 - new).add_(var.detach() * n / (n - 1).clamp_min(1), alpha=new)
    shape = [1, c] + [1] * (x.dim() - 2)
    y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + layer.epsilon)
    if layer.weight is not None:
        y = y * layer.weight.view(shape)
    if layer.bias is not None:
        y = y + layer.bias.view(shape)
    return y.to(x.dtype)


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


class Input:
    """Marks the input shape (H, W, C), as ``keras.Input(shape=...)``; not a layer that computes."""

    kind = "Input"

    def __init__(self, shape, name: str | None = None):
        dims = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if len(dims) != 3 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in dims):
            raise InputError(f"Input shape={shape!r}. Expected (height, width, channels), e.g. Input((28, 28, 1)).")
        shape = tuple(int(v) for v in dims)
        if min(shape) < 1:
            raise InputError(f"Input shape={shape!r}. Expected (height, width, channels), e.g. Input((28, 28, 1)).")
        self.shape = shape
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
}
