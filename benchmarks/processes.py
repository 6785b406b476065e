"""``cnnlab train --nproc N`` on this machine: training throughput of 1 and 2 processes and the scaling.

Each configuration is the whole ``cnnlab train`` command a user types (seed-mnist5x5 on MNIST, batch 64,
2 epochs, from the dataset cache); the rate is the second (steady-state) epoch's images per second as the
run's metrics.jsonl records it (the images of all ranks over the epoch's wall time), and the whole process
is timed as well. The two sides alternate over ROUNDS rounds; each side's best round counts, the median
beside it. Efficiency = rate(N) / (N * rate(1)): 1.0 would be perfect scaling.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cnnlab

ROUNDS, EPOCHS, NPROCS = 3, 2, (1, 2)
CNNLAB = str(Path(sys.executable).parent / "cnnlab")


def one(nproc: int, out: Path) -> dict:
    cmd = [CNNLAB, "train", "--data", "mnist", "--model", "seed-mnist5x5", "--epochs", str(EPOCHS)]
    cmd += ["--batch-size", "64", "--seed", "0", "--out", str(out), "--nproc", str(nproc)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
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
