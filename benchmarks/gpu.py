"""On a CUDA GPU: what the GPU path buys, as a user runs it.

- time to 99.0% and to 99.5% MNIST test accuracy with ``cnnlab train --recipe gpu-speed`` (mean of SEEDS):
  the training time is the sum of the epochs' seconds up to the first epoch at or above the target (the
  per-epoch test evaluation not included), and the whole ``cnnlab train`` process is timed too;
- time to 93% Fashion-MNIST with cnnlab-fast, batch 256, cosine, up to FASHION_EPOCHS epochs;
- the steady-state epoch of seed-fashion at batch 64;
- ``Run.predict`` images/s on the 10,000 Fashion-MNIST test images after ``run.to("cuda")``.

A target not reached is reported as such (None), never estimated. Without a CUDA GPU the section says so and
measures nothing; ``run(device="cpu")`` runs the same code on the CPU (what the tests do, on a tiny budget).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

import cnnlab
from benchmarks.process import cnnlab_train

SEEDS = (0, 1, 2)
FASHION_EPOCHS = 10


def time_to(rows: list[dict], target: float) -> float | None:
    """Seconds of training until the first epoch whose test accuracy reaches ``target`` (None: never)."""
    spent = 0.0
    for row in rows:
        spent += row["seconds"]
        if row.get("test_accuracy", 0.0) >= target:
            return spent
    return None


def _train(out: Path, device: str, *args: str) -> tuple[list[dict], float]:
    return cnnlab_train(out, "--device", device, *args)


def _mean(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else round(statistics.mean(values), 3)


def run(device: str = "cuda", seeds=SEEDS, fashion_epochs: int = FASHION_EPOCHS, extra=()) -> list[dict]:
    if device == "cuda" and not torch.cuda.is_available():
        return [{"what": "no CUDA GPU on this machine: nothing measured", "value": None, "seeds": 0}]
    cnnlab.data.load("mnist"), cnnlab.data.load("fashion-mnist")  # cached before any timing
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        speed = [_train(tmp / f"speed-{s}", device, "--recipe", "gpu-speed", "--data", "mnist", "--seed", str(s),
                        *extra) for s in seeds]  # fmt: skip
        for target in (0.99, 0.995):
            rows.append({"what": f"MNIST {target:.1%}, gpu-speed recipe, training s",
                         "value": _mean([time_to(m, target) for m, _ in speed]), "seeds": len(seeds)})  # fmt: skip
        rows.append({"what": "gpu-speed recipe, whole cnnlab train process, s",
                     "value": _mean([s for _, s in speed]), "seeds": len(seeds)})  # fmt: skip
        fashion = [
            _train(tmp / f"fashion-{s}", device, "--data", "fashion-mnist", "--model", "cnnlab-fast", "--epochs",
                   str(fashion_epochs), "--batch-size", "256", "--lr", "3e-3", "--lr-schedule", "cosine", "--seed",
                   str(s), *extra)[0]
            for s in seeds
        ]  # fmt: skip
        rows.append({"what": f"Fashion-MNIST 93.0%, cnnlab-fast, training s (of at most {fashion_epochs} epochs)",
                     "value": _mean([time_to(m, 0.93) for m in fashion]), "seeds": len(seeds)})  # fmt: skip
        seed_fashion, _ = _train(tmp / "seed-fashion", device, "--data", "fashion-mnist", "--model", "seed-fashion",
                                 "--epochs", "2", "--batch-size", "64", *extra)  # fmt: skip
        rows.append({"what": "seed-fashion epoch, batch 64, s", "value": seed_fashion[-1]["seconds"], "seeds": 1})
        trained = cnnlab.Run.load(tmp / "seed-fashion").to(device)
        x = cnnlab.data.load("fashion-mnist").test.x
        trained.predict(x[:512])  # warm up
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            trained.predict(x)
            times.append(time.perf_counter() - t0)
        rows.append({"what": "Run.predict, test set, images/s", "value": round(len(x) / min(times)), "seeds": 1})
    return rows
