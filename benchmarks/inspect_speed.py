"""Inspection latency for one 28x28 image through seed-fashion: all feature maps, and Grad-CAM."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from cnnlab.compute.device import set_threads
from cnnlab.inspect import explain, feature_maps
from cnnlab.nn import zoo


def median_ms(fn, repeat: int = 200, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def run() -> list[dict]:
    set_threads()
    torch.manual_seed(0)
    model = zoo.build("seed-fashion").to(memory_format=torch.channels_last).eval()
    image = np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)
    rows = [
        {
            "what": "feature maps of every layer, one image",
            "median_ms": round(median_ms(lambda: feature_maps(model, image)), 3),
            "goal_ms": 2,
        },
        {
            "what": "Grad-CAM, one image",
            "median_ms": round(median_ms(lambda: explain(model, image, "gradcam"), 100), 3),
            "goal_ms": 20,
        },
        {
            "what": "saliency, one image",
            "median_ms": round(median_ms(lambda: explain(model, image, "saliency"), 100), 3),
            "goal_ms": "",
        },
    ]
    return rows
