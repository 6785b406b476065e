"""NumPy images into tensors: uint8 NHWC batches become the float NCHW (channels_last) input of a model."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from cnnlab.errors import InputError


def from_numpy(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing memory with ``a`` (copied only if not contiguous). Cached datasets are read-only
    arrays; cnnlab only reads them, so PyTorch's warning about non-writable arrays does not apply."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(a))


def on_device(a, device) -> torch.Tensor:
    """Images for a run: a tensor on ``device``, or, for images past the memory budget (a
    :class:`~cnnlab.data.rows.RowFile`), the file itself, read a batch at a time by :func:`rows_of`."""
    from cnnlab.data.rows import RowFile

    return a if isinstance(a, RowFile) else from_numpy(a).to(device)


def rows_of(x, idx: torch.Tensor) -> torch.Tensor:
    """``x[idx]`` on ``idx``'s device, whether ``x`` is a tensor or a file of rows (:func:`on_device`)."""
    if isinstance(x, torch.Tensor):
        return x[idx]
    return from_numpy(x[idx]).to(idx.device)


def to_input(batch_u8: torch.Tensor, scale: float = 1 / 255) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in channels_last memory, scaled to [0, 1]."""
    return batch_u8.float().mul_(scale).permute(0, 3, 1, 2)  # a free view: NHWC memory is channels_last


def as_uint8_or_float(images) -> tuple[np.ndarray, bool]:
    """Accept uint8 images (scaled by the run's preprocessing) or float images already in [0, 1]."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InputError(f"Expected images (N, H, W, C) or one (H, W, C); received shape {a.shape}.")
    return a, a.dtype == np.uint8
