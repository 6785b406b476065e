"""Where and how tensors are computed: device, precision, threads, and turning uint8 NHWC batches into input."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import numpy as np
import torch

from cnnlab.errors import InputError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was asked for but PyTorch sees no CUDA GPU. Use --device cpu or auto.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device='mps' was asked for but this machine has no Apple GPU. Use --device cpu or auto.")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bfloat16 natively here (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_precision(name: str, device: torch.device) -> str:
    if name != "auto":
        return name
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """Mixed precision for the forward pass: weights and optimizer stay float32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    A CNN step allocates and frees the same ~100 MB activation buffers again and again; by
    default glibc serves blocks that large with fresh mmap()s, so every step pays page faults
    on memory it just gave back. Raising the mmap and trim thresholds removed that here:
    seed-fashion inference went from about 7,000 to 18,000 images/s (fp32), training from
    8.4 to 6.8 ms per batch of 64. Does nothing where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 31))
    except (OSError, AttributeError):
        return False


def set_threads() -> int:
    """Use every core once (no oversubscription with interop threads); honour OMP_NUM_THREADS if set.
    Also tunes the allocator (:func:`keep_freed_memory`)."""
    n = int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
    torch.set_num_threads(max(1, n))
    keep_freed_memory()
    return torch.get_num_threads()


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR):
    """Torch's notes to its own developers (from the named loggers) are not the user's business: below
    ``level`` they are hidden for the block, and each logger's own level is restored afterwards."""
    loggers = [logging.getLogger(name) for name in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, before, strict=True):
            lg.setLevel(old)


def from_numpy(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing memory with ``a`` (copied only if not contiguous). Cached datasets are read-only
    arrays; cnnlab only reads them, so PyTorch's warning about non-writable arrays does not apply."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(a))


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


@contextlib.contextmanager
def modes_restored(model: torch.nn.Module):
    """Whatever the block does to train/eval mode, every submodule's mode is as it was afterwards, also after
    an error (a model can be shared: by the server's requests, or by a user who is still training it)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def evaluating(model: torch.nn.Module):
    """Eval mode for the block, and every submodule's mode as it was afterwards (:func:`modes_restored`)."""
    with modes_restored(model):
        if model.training:  # eval() walks every module: skip it when already in eval mode (a server calls this a lot)
            model.eval()
        yield model
