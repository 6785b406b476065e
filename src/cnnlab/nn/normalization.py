"""BatchNormalization, as Keras has it (momentum 0.99, epsilon 1e-3, gamma and beta optional), and its batch
statistics added over the training processes when several train together."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.nn.base import Layer


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
