"""BatchNormalization, as Keras has it (momentum 0.99, epsilon 1e-3, gamma and beta optional), and its batch
statistics added over the training processes when several train together."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import InputError
from cnnlab.nn.base import Layer


class BatchNormalization(Layer):
    """Per channel for maps, per unit for vectors. Keras counts 4 numbers per channel: gamma and beta
    (trainable), the moving mean and variance (non-trainable)."""

    kind = "BatchNormalization"
    keras_fixed = {"axis": (-1, 3, [-1], [3])}
    keras_variables = (
        ("weight", "vector", "gamma"),
        ("bias", "vector", "beta"),
        ("running_mean", "vector", "moving_mean"),
        ("running_var", "vector", "moving_variance"),
    )

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


def _channels(shape) -> int:
    return shape[-1]


class Normalization(Layer):
    """``Normalization(mean=None, variance=None)``: (x - mean) / max(sqrt(variance), 1e-7) per channel, as Keras
    computes it. Keras keeps the mean, the variance and the count of samples they came from as three
    non-trainable variables (2·C + 1 numbers), or takes mean and variance in its config."""

    kind = "Normalization"
    keras_fixed = {"axis": (-1, 3, [-1], [3]), "invert": (False,)}

    def __init__(self, mean=None, variance=None, name: str | None = None):
        super().__init__(name)
        if (mean is None) != (variance is None):
            raise InputError("Normalization takes both mean and variance, or neither (then its weights hold them).")
        self.given = None if mean is None else (_numbers(mean, "mean"), _numbers(variance, "variance"))

    @property
    def keras_variables(self):
        return (
            ()
            if self.given
            else (("mean", "vector", "mean"), ("variance", "vector", "variance"), ("count", "vector", "count"))
        )

    def create(self, shape):
        c = _channels(shape)
        mean, variance = self.given or ([0.0], [1.0])
        for values in (mean, variance):
            if len(values) not in (1, c):
                raise InputError(f"Normalization '{self.name}': {len(values)} values for {c} channels.")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).expand(c).clone())
        self.register_buffer("variance", torch.tensor(variance, dtype=torch.float32).expand(c).clone())
        if not self.given:
            self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) / self.variance.sqrt().clamp_min(1e-7).view(shape)

    def config(self):
        if not self.given:
            return {}
        return {"mean": list(self.given[0]), "variance": list(self.given[1])}

    def formula(self):
        c = self.input_shape[-1]
        return "" if self.given else f"2·{c} + 1 = {2 * c + 1:,} (mean, variance, count)"


def _numbers(values, what: str) -> list[float]:
    values = [values] if isinstance(values, (int, float)) else values
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(f"Normalization {what}={values!r}. Expected a number or a list of numbers.") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise InputError(f"Normalization {what}={values!r}. Expected finite numbers.")
    return out


class LayerNormalization(Layer):
    """``LayerNormalization(epsilon=1e-3, center=True, scale=True)`` over the channels of each cell (Keras's
    default axis -1): (x - mean) / sqrt(var + epsilon) · gamma + beta."""

    kind = "LayerNormalization"
    keras_fixed = {"axis": (-1, 3, [-1], [3]), "rms_scaling": (False,)}
    keras_variables = (("weight", "vector", "gamma"), ("bias", "vector", "beta"))

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True, name: str | None = None):
        super().__init__(name)
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)

    def create(self, shape):
        c = _channels(shape)
        self.weight = nn.Parameter(torch.ones(c)) if self.scale else None
        self.bias = nn.Parameter(torch.zeros(c)) if self.center else None

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.epsilon)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        return y + self.bias.view(shape) if self.bias is not None else y

    def config(self):
        extra = {k: False for k in ("center", "scale") if not getattr(self, k)}
        return {"epsilon": self.epsilon, **extra}

    def formula(self):
        c, n = self.input_shape[-1], int(self.center) + int(self.scale)
        return f"{n}·{c} = {n * c:,}"
