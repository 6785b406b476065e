"""Where and in what precision tensors are computed: the device, bfloat16 or float32, the CPU threads."""

from __future__ import annotations

import contextlib
import os
import time

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


PRECISIONS = ("auto", "bf16", "fp32")  # every option and argument that takes a precision takes these


def check_precision(precision) -> str:
    """``precision`` when it is one of PRECISIONS, else an InputError listing them."""
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}. Expected one of: {', '.join(PRECISIONS)}.")
    return precision


def pick_precision(name: str, device: torch.device = torch.device("cpu")) -> str:
    """``name`` checked, with "auto" made concrete for ``device``: bf16 where it runs natively, else fp32."""
    if check_precision(name) != "auto":
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


def busy_elsewhere(window: float = 0.1) -> int:
    """The whole cores of this process's affinity that other processes keep busy, from /proc/stat's per-core
    times over ``window`` seconds less this process's own (a core counts from 3/4 of it busy); 0 where there
    is no /proc/stat. PyTorch's threads wait for each other at every operation, so one on a core another
    process keeps busy holds them all back: a seed-catdog epoch of 4,000 images beside one busy process took
    29.7 s on 2 threads and 16.1 s on 1 (10.5 s on 2 when quiet) on this project's 2-core machine."""
    cores, tick = os.sched_getaffinity(0), os.sysconf("SC_CLK_TCK")

    def now() -> tuple[float, float, float]:  # (busy seconds of the cores, this process's, wall clock)
        busy = 0
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                name, *fields = line.split()
                if name[3:].isdigit() and name.startswith("cpu") and int(name[3:]) in cores:
                    v = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                    busy += sum(v) - v[3] - v[4]
        own = os.times()
        return busy / tick, own.user + own.system, time.monotonic()

    try:
        b0, o0, t0 = now()
        time.sleep(window)
        b1, o1, t1 = now()
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, int(((b1 - b0) - (o1 - o0)) / (t1 - t0) + 0.25))


def set_threads(threads: int | None = None) -> int:
    """One thread a core (no oversubscription with interop threads): OMP_NUM_THREADS if set, else ``threads``
    (a resumed run's own: the weights depend on the count), else every core that no other process keeps busy
    (:func:`busy_elsewhere`). Also tunes the allocator (:func:`keep_freed_memory`)."""
    cores = len(os.sched_getaffinity(0))
    n = int(os.environ.get("OMP_NUM_THREADS") or threads or cores - (busy_elsewhere() if cores > 1 else 0))
    torch.set_num_threads(max(1, n))
    keep_freed_memory()
    return torch.get_num_threads()
