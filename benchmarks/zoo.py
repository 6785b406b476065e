"""Accuracy per second: the tutorial models and cnnlab's own, trained the same way on both datasets.

Each model trains 2 epochs (batch 64, Adam 1e-3) from three seeds on MNIST and Fashion-MNIST; the
table gives the mean test accuracy (lowest-highest beside it) and the fastest of the three training
times (this machine's speed drifts by tens of percent; noise only adds time), so a model is better per
second when it is more accurate in the same time or as accurate in less.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import cnnlab
from cnnlab.nn import zoo

MODELS = ("seed-mnist5x5", "seed-fashion", "cnnlab-fast")
DATASETS = ("mnist", "fashion-mnist")
SEEDS, EPOCHS = (0, 1, 2), 2
TITLE = (
    f"Accuracy per second: {EPOCHS} epochs, batch 64, Adam 1e-3, mean of seeds {', '.join(map(str, SEEDS))}"
    " (test accuracy lowest-highest; fastest training time of the three)"
)


def run() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in DATASETS:
            for name in MODELS:
                acc, seconds = [], []
                for seed in SEEDS:
                    out = Path(tmp) / f"{data}-{name}-{seed}"
                    r = cnnlab.train(
                        data=data, model=name, epochs=EPOCHS, batch_size=64, seed=seed, out=str(out), verbose=False
                    )
                    acc.append(r.metrics[-1]["test_accuracy"])
                    seconds.append(sum(m["seconds"] for m in r.metrics))
                rows.append(
                    {
                        "dataset": data,
                        "model": name,
                        "params": f"{sum(zoo.build(name).count_params()):,}",
                        "train_s_fastest": round(min(seconds), 1),
                        "test_accuracy": round(statistics.mean(acc), 4),
                        "range": f"{min(acc):.4f}-{max(acc):.4f}",
                    }
                )
    return rows
