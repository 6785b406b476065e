"""Convolution and pooling written from their definitions, in float64 NumPy.

These are the oracle for everything else in cnnlab: slow, loop-based and easy
to check by eye. Shapes follow TensorFlow: images NHWC, kernels HWIO.

    conv:  out[n, i, j, o] = sum_{a, b, c} x[n, i*sh - top + a*dh, j*sw - left + b*dw, c] * k[a, b, c, o]
    pool:  out[n, i, j, c] = max / mean over the *real* cells of the window

Padding cells contribute 0 to a convolution's sum (zero padding), and are absent
from a pooling window: max never sees a 0 that was not in the input, and the
average divides by the number of real cells.
"""

from __future__ import annotations

import numpy as np

from cnnlab.arith.padding import AxisPadding, axes_for, pair
from cnnlab.errors import InputError, ShapeError


def as_images(x, name: str = "x") -> tuple[np.ndarray, bool]:
    """Validate ``x`` as (N, H, W, C) or (H, W, C); return float64 NHWC and whether it was 3-D."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{name} could not be read as numbers (got {type(x).__name__}). "
            "Expected an array of shape (N, H, W, C) or (H, W, C)."
        ) from None
    if arr.ndim not in (3, 4):
        raise ShapeError(
            f"{name} has shape {arr.shape} ({arr.ndim}-D). Expected (N, H, W, C) or a single "
            "(H, W, C) image; add a channel axis to a 2-D matrix with x[..., None]."
        )
    if arr.size == 0:
        raise ShapeError(f"{name} is empty (shape {arr.shape}). Expected at least one cell on every axis.")
    single = arr.ndim == 3
    return (arr[None] if single else arr), single


def as_kernel(kernel, channels: int) -> np.ndarray:
    """Validate an HWIO kernel (a 2-D (kh, kw) kernel means one input and one output channel)."""
    try:
        k = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"kernel could not be read as numbers (got {type(kernel).__name__}). "
            "Expected an array of shape (kh, kw, in_channels, out_channels)."
        ) from None
    if k.ndim == 2:
        k = k[:, :, None, None]  # (kh, kw) -> (kh, kw, 1, 1)
    if k.ndim != 4:
        raise ShapeError(
            f"kernel has shape {k.shape}. Expected (kh, kw, in_channels, out_channels) as in "
            "tf.nn.conv2d, or a 2-D (kh, kw) kernel for one channel."
        )
    if k.size == 0:
        raise ShapeError(f"kernel is empty (shape {k.shape}). Expected at least one tap and one channel.")
    if k.shape[2] != channels:
        raise ShapeError(
            f"kernel has {k.shape[2]} input channel(s) (shape {k.shape}) but the input has {channels}. "
            f"Expected kernel shape (kh, kw, {channels}, out_channels); give one kernel slice per input channel."
        )
    return k


def _windows(ax: AxisPadding) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each output index: (clipped input indices, mask of real cells) along one axis."""
    out = []
    for i in range(ax.out):
        taps = np.array(ax.taps(i))
        real = (taps >= 0) & (taps < ax.size)
        out.append((np.clip(taps, 0, ax.size - 1), real))
    return out


def conv2d(x, kernel, strides=1, padding="valid", dilation=1) -> np.ndarray:
    """Cross-correlation as ``tf.nn.conv2d`` computes it, in float64.

    ``x``: (N, H, W, C) or (H, W, C). ``kernel``: (kh, kw, C, O). ``strides`` and
    ``dilation``: int or pair. ``padding``: 'same', 'valid' or ((top, bottom), (left, right)).
    Returns (N, Ho, Wo, O), or (Ho, Wo, O) for a single image.
    """
    xs, single = as_images(x)
    k = as_kernel(kernel, xs.shape[3])
    ah, aw = axes_for(xs.shape[1], xs.shape[2], k.shape[:2], strides, dilation, padding)
    out = np.zeros((xs.shape[0], ah.out, aw.out, k.shape[3]))
    for i, (rows, rmask) in enumerate(_windows(ah)):
        for j, (cols, cmask) in enumerate(_windows(aw)):
            patch = xs[:, rows][:, :, cols]  # (N, kh, kw, C)
            patch = patch * (rmask[:, None] & cmask[None, :])[None, :, :, None]  # zero padding
            out[:, i, j, :] = np.einsum("nabc,abco->no", patch, k)
    return out[0] if single else out


def _pool(x, pool_size, strides, padding, reduce) -> np.ndarray:
    xs, single = as_images(x)
    size = pair(pool_size, "pool_size")
    strides = size if strides is None else strides
    ah, aw = axes_for(xs.shape[1], xs.shape[2], size, strides, 1, padding)
    out = np.zeros((xs.shape[0], ah.out, aw.out, xs.shape[3]))
    for i, (rows, rmask) in enumerate(_windows(ah)):
        for j, (cols, cmask) in enumerate(_windows(aw)):
            real = rmask[:, None] & cmask[None, :]  # (kh, kw)
            if not real.any():
                raise ShapeError(
                    f"Pooling window at output ({i}, {j}) covers only padding. "
                    "Expected every window to hold at least one input cell; use less explicit padding."
                )
            patch = xs[:, rows][:, :, cols][:, real]  # (N, real cells, C)
            out[:, i, j, :] = reduce(patch)
    return out[0] if single else out


def max_pool2d(x, pool_size, strides=None, padding="valid") -> np.ndarray:
    """Max pooling as ``tf.nn.max_pool2d``: padded cells are absent, never a competing 0.

    ``strides`` defaults to ``pool_size`` (Keras's ``MaxPooling2D``).
    """
    return _pool(x, pool_size, strides, padding, lambda p: p.max(axis=1))


def avg_pool2d(x, pool_size, strides=None, padding="valid") -> np.ndarray:
    """Average pooling as ``tf.nn.avg_pool2d``: divides by the number of real cells in each window."""
    return _pool(x, pool_size, strides, padding, lambda p: p.mean(axis=1))
