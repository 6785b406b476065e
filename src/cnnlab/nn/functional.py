"""``tf.nn``-style convolution and pooling on PyTorch tensors, with TensorFlow's padding.

Public functions take NHWC tensors and HWIO kernels, like ``tf.nn.conv2d``, and
return NHWC. Underneath they call PyTorch's NCHW kernels on a ``channels_last``
view (the permute is free for a contiguous NHWC tensor) and pad asymmetrically
with ``F.pad`` only where TensorFlow's SAME padding is uneven. The ``*_nchw``
functions are the same ops without the layout change, for layers that keep
NCHW tensors inside the engine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.arith.padding import AxisPadding, axes_for, pair
from cnnlab.errors import ShapeError


def _plan(x_nchw: torch.Tensor, kernel: tuple[int, int], strides, dilation, padding):
    """Per-axis padding for an NCHW tensor; returns (height axis, width axis)."""
    if x_nchw.dim() != 4:
        raise ShapeError(
            f"Expected a 4-D batch (N, H, W, C), received shape {tuple(x_nchw.shape)}. "
            "Add a batch axis with x[None] for a single image."
        )
    # int(): under torch.jit.trace, sizes are tensors; the padding plan is fixed per input size
    kernel = tuple(int(k) for k in kernel)
    return axes_for(int(x_nchw.shape[2]), int(x_nchw.shape[3]), kernel, strides, dilation, padding)


def _pads(ah: AxisPadding, aw: AxisPadding) -> tuple[int, int, int, int]:
    """F.pad order for NCHW: (left, right, top, bottom)."""
    return (aw.before, aw.after, ah.before, ah.after)


def conv2d_nchw(x, weight, bias=None, strides=1, padding="valid", dilation=1, groups=1):
    """Convolution on NCHW ``x`` with an OIHW ``weight`` and TensorFlow's padding (``groups``: each group of
    input channels feeds its own group of outputs; ``groups`` = channels is a depthwise convolution)."""
    if weight.shape[1] * groups != x.shape[1]:
        raise ShapeError(
            f"kernel has {weight.shape[1]} input channel(s) but the input has {x.shape[1]}. "
            f"Expected kernel shape (kh, kw, {x.shape[1]}, out_channels)."
        )
    ah, aw = _plan(x, tuple(weight.shape[2:]), strides, dilation, padding)
    if ah.symmetric and aw.symmetric:
        pad = (ah.before, aw.before)
    else:  # TensorFlow's uneven SAME padding: the extra row/column goes after
        x = F.pad(x, _pads(ah, aw))
        pad = (0, 0)
    return F.conv2d(x, weight, bias, (ah.stride, aw.stride), pad, (ah.dilation, aw.dilation), groups)


def _ceil_mode_matches(ah: AxisPadding, aw: AxisPadding) -> bool:
    """True when PyTorch's ``ceil_mode=True`` reads exactly TensorFlow's windows.

    That holds when all padding is after (before == 0) and ceil mode yields the same count:
    its last window may run past the end, and PyTorch leaves those cells out (max) or
    out of the divisor (avg), as TensorFlow does.
    """
    for ax in (ah, aw):
        ceil_out = -(-(ax.size - ax.kernel) // ax.stride) + 1
        if ax.before != 0 or ax.size < ax.kernel or ceil_out != ax.out:
            return False
    return True


def _pool_plan(x, pool_size, strides, padding):
    """(window, height axis, width axis, stride pair) of a pooling; strides default to the window."""
    size = pair(pool_size, "pool_size")
    ah, aw = _plan(x, size, size if strides is None else strides, 1, padding)
    return size, ah, aw, (ah.stride, aw.stride)


class _MaxPoolScatteredGrad(torch.autograd.Function):
    """PyTorch's max pooling, with a backward that scatters the gradient with ``max_unpool2d``.

    Only for windows that do not overlap (stride >= window), where each input cell has at most one
    window and the scatter is exactly max pooling's gradient: the same indices, so the same cell wins
    a tie. On this project's CPU it is faster than PyTorch's backward for bf16 channels_last maps
    (fwd+bwd of a 64x32x28x28 map 0.78 vs 1.10 ms; a seed-fashion training step about 3% shorter).
    """

    @staticmethod
    def forward(ctx, x, size, stride, ceil_mode):
        y, indices = torch.ops.aten.max_pool2d_with_indices(x, size, stride, (0, 0), (1, 1), ceil_mode)
        ctx.save_for_backward(indices)
        ctx.size, ctx.stride, ctx.input_hw = size, stride, tuple(x.shape[2:])
        return y

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return F.max_unpool2d(grad, indices, ctx.size, ctx.stride, output_size=ctx.input_hw), None, None, None


def _max_pool(x, size, stride, ceil_mode=False):
    if (
        x.requires_grad
        and torch.is_grad_enabled()
        and x.device.type == "cpu"
        and stride[0] >= size[0]
        and stride[1] >= size[1]
        and not torch.jit.is_tracing()
    ):
        return _MaxPoolScatteredGrad.apply(x, size, stride, ceil_mode)
    return F.max_pool2d(x, size, stride, ceil_mode=ceil_mode)


def max_pool2d_nchw(x, pool_size, strides=None, padding="valid"):
    """Max pooling on NCHW ``x``; padded cells are -inf (or outside ceil mode's reach), so they never win."""
    size, ah, aw, stride = _pool_plan(x, pool_size, strides, padding)
    if ah.total == 0 and aw.total == 0:
        return _max_pool(x, size, stride)
    if _ceil_mode_matches(ah, aw):  # no copy of the input
        return _max_pool(x, size, stride, ceil_mode=True)
    return _max_pool(F.pad(x, _pads(ah, aw), value=float("-inf")), size, stride)


def avg_pool2d_nchw(x, pool_size, strides=None, padding="valid"):
    """Average pooling on NCHW ``x``, dividing by the number of real cells in each window."""
    size, ah, aw, stride = _pool_plan(x, pool_size, strides, padding)
    if ah.total == 0 and aw.total == 0:
        return F.avg_pool2d(x, size, stride)
    if _ceil_mode_matches(ah, aw):
        return F.avg_pool2d(x, size, stride, ceil_mode=True, count_include_pad=False)
    if ah.symmetric and aw.symmetric and ah.before <= size[0] // 2 and aw.before <= size[1] // 2:
        return F.avg_pool2d(x, size, stride, (ah.before, aw.before), count_include_pad=False)
    pads = _pads(ah, aw)
    sums = F.avg_pool2d(F.pad(x, pads), size, stride, divisor_override=1)
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    counts = F.avg_pool2d(F.pad(ones, pads), size, stride, divisor_override=1)  # (1, 1, Ho, Wo)
    return sums / counts


def _nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4:
        raise ShapeError(
            f"Expected a 4-D NHWC batch (N, H, W, C), received shape {tuple(x.shape)}. "
            "Add a batch axis with x[None] for a single image."
        )
    return x.permute(0, 3, 1, 2)  # (N, C, H, W), channels_last in memory


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation=1):
    """``tf.nn.conv2d``: ``x`` (N, H, W, C), ``kernel`` (kh, kw, C, O) -> (N, Ho, Wo, O).

    ``padding`` is 'same', 'valid' (any case) or ((top, bottom), (left, right)).
    Differentiable with respect to ``x``, ``kernel`` and ``bias``.
    """
    if kernel.dim() != 4:
        raise ShapeError(
            f"kernel has shape {tuple(kernel.shape)}. Expected (kh, kw, in_channels, out_channels) as in tf.nn.conv2d."
        )
    # (O, I, kh, kw); a bare permute of HWIO has strides oneDNN handles on a slow path (about 3x here),
    # so copy the (small) kernel into channels_last order once per call.
    weight = kernel.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    y = conv2d_nchw(_nhwc_to_nchw(x), weight, bias, strides, padding, dilation)
    return y.permute(0, 2, 3, 1)  # (N, Ho, Wo, O)


def max_pool2d(x, pool_size, strides=None, padding="valid"):
    """``tf.nn.max_pool2d`` on NHWC ``x``; ``strides`` defaults to ``pool_size`` as in Keras."""
    return max_pool2d_nchw(_nhwc_to_nchw(x), pool_size, strides, padding).permute(0, 2, 3, 1)


def avg_pool2d(x, pool_size, strides=None, padding="valid"):
    """``tf.nn.avg_pool2d`` on NHWC ``x``: padded cells are left out of each average."""
    return avg_pool2d_nchw(_nhwc_to_nchw(x), pool_size, strides, padding).permute(0, 2, 3, 1)
