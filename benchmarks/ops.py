"""Cost of TensorFlow-exact padding: cnnlab.nn.functional against the nearest plain PyTorch call.

Each case runs on the same tensors in the same process; the ratio is cnnlab time / PyTorch time.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from cnnlab.nn import functional as cf


def paired_median_ms(a, b, repeat: int = 40, warmup: int = 10) -> tuple[float, float]:
    """Median milliseconds of ``a`` and ``b``, alternated call by call so both see the same machine state."""
    for _ in range(warmup):
        a(), b()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, times in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3


def cases():
    torch.manual_seed(0)
    x = torch.randn(64, 28, 28, 32)  # NHWC batch
    x_cl = x.permute(0, 3, 1, 2)  # the same memory as NCHW channels_last
    k = torch.randn(3, 3, 32, 64)
    w = k.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    m = torch.randn(64, 7, 7, 64)
    m_cl = m.permute(0, 3, 1, 2)
    yield (
        "conv 3x3 s1 SAME (even padding)",
        lambda: cf.conv2d(x, k, padding="same"),
        "F.conv2d(padding=1)",
        lambda: F.conv2d(x_cl, w, padding=1),
    )
    yield (
        "conv 3x3 s2 SAME (0 before, 1 after)",
        lambda: cf.conv2d(x, k, strides=2, padding="same"),
        "F.conv2d(stride=2, padding=1) [shifted windows]",
        lambda: F.conv2d(x_cl, w, stride=2, padding=1),
    )
    yield (
        "max pool 2x2 s2 SAME on 7x7 -> 4x4",
        lambda: cf.max_pool2d(m, 2, 2, "same"),
        "F.max_pool2d(ceil_mode=True)",
        lambda: F.max_pool2d(m_cl, 2, 2, ceil_mode=True),
    )


def run() -> list[dict]:
    rows = []
    with torch.inference_mode():
        for name, ours, peer_name, peer in cases():
            a, b = paired_median_ms(ours, peer)
            rows.append(
                {
                    "case": name,
                    "cnnlab_ms": round(a, 3),
                    "peer": peer_name,
                    "peer_ms": round(b, 3),
                    "ratio": round(a / b, 2),
                }
            )
    return rows
