"""``cnnlab train --nproc N`` on this machine: training throughput of 1 and 2 processes and the scaling.

Each configuration is the whole ``cnnlab train`` command a user types (seed-mnist5x5 on MNIST, batch 64,
2 epochs, from the dataset cache); the rate is the second (steady-state) epoch's images per second as the
run's metrics.jsonl records it (the images of all ranks over the epoch's wall time), and the whole process
is timed as well. The two sides alternate over ROUNDS rounds; each side's best round counts, the median
beside it. Efficiency = rate(N) / (N * rate(1)): 1.0 would be perfect scaling.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import cnnlab
from benchmarks.process import cnnlab_train

ROUNDS, EPOCHS, NPROCS = 3, 2, (1, 2)


def one(nproc: int, out: Path) -> dict:
    args = ["--data", "mnist", "--model", "seed-mnist5x5", "--epochs", str(EPOCHS), "--batch-size", "64"]
    rows, seconds = cnnlab_train(out, *args, "--seed", "0", "--nproc", str(nproc))
    return {"images_per_s": rows[-1]["images_per_s"], "process_s": seconds, "test_accuracy": rows[-1]["test_accuracy"]}


def run() -> list[dict]:
    cnnlab.data.load("mnist")  # cached before any timing
    rounds: dict[int, list[dict]] = {n: [] for n in NPROCS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(ROUNDS):
            for n in NPROCS:
                rounds[n].append(one(n, Path(tmp) / f"n{n}-{r}"))
    base = max(x["images_per_s"] for x in rounds[1])
    rows = []
    for n in NPROCS:
        rates = [x["images_per_s"] for x in rounds[n]]
        rows.append(
            {
                "processes": n,
                "images_per_s_best": round(max(rates)),
                "images_per_s_median": round(statistics.median(rates)),
                "efficiency": round(max(rates) / (n * base), 2),
                "process_s_best": round(min(x["process_s"] for x in rounds[n]), 1),
                "test_accuracy": round(statistics.median(x["test_accuracy"] for x in rounds[n]), 4),
                "cores": len(os.sched_getaffinity(0)),
            }
        )
    return rows
