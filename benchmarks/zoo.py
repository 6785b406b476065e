"""Accuracy per second: the tutorial models and cnnlab's own, trained the same ways on both datasets.

Every model trains 2 epochs (batch 64, Adam 1e-3) from three seeds on MNIST and Fashion-MNIST, once
with a constant learning rate and once with the cosine schedule; cnnlab-fast also trains 1 epoch with
the cosine schedule. The table gives the mean test accuracy (lowest-highest beside it) and the training
time: the number of epochs times the model's fastest epoch on that dataset over all its runs. The
schedule does not change what an epoch computes, and this machine's speed drifts by tens of percent
between runs (noise only adds time), so the fastest of 15 epochs is the steadier price of a model.
``zoo.png`` plots accuracy against training time, one panel per dataset.
"""

from __future__ import annotations

import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

import cnnlab
from cnnlab.nn import zoo

MODELS = ("seed-mnist5x5", "seed-fashion", "cnnlab-fast")
SCHEDULES = ("constant", "cosine")
# (model, lr_schedule, epochs)
RECIPES = [(m, s, 2) for s in SCHEDULES for m in MODELS] + [("cnnlab-fast", "cosine", 1)]
DATASETS = ("mnist", "fashion-mnist")
SEEDS = (0, 1, 2)
TITLE = (
    f"Accuracy per second: batch 64, Adam 1e-3, mean of seeds {', '.join(map(str, SEEDS))}"
    " (test accuracy lowest-highest; train_s = epochs x the model's fastest epoch on the dataset)"
)


def run(figure: Path | None = None) -> list[dict]:
    accuracy = {}  # (data, model, schedule, epochs) -> test accuracy per seed
    epoch_s = defaultdict(list)  # (data, model) -> seconds of every epoch of every run
    with tempfile.TemporaryDirectory() as tmp:
        for data in DATASETS:
            for name, schedule, epochs in RECIPES:
                acc = accuracy[data, name, schedule, epochs] = []
                for seed in SEEDS:
                    r = cnnlab.train(
                        data=data,
                        model=name,
                        epochs=epochs,
                        batch_size=64,
                        lr_schedule=schedule,
                        seed=seed,
                        out=str(Path(tmp) / f"{data}-{name}-{schedule}-{epochs}-{seed}"),
                        verbose=False,
                    )
                    acc.append(r.metrics[-1]["test_accuracy"])
                    epoch_s[data, name] += [m["seconds"] for m in r.metrics]
    rows = [
        {
            "dataset": data,
            "model": name,
            "params": f"{sum(zoo.build(name).count_params()):,}",
            "lr_schedule": schedule,
            "epochs": epochs,
            "epoch_s_fastest": min(epoch_s[data, name]),
            "train_s": round(epochs * min(epoch_s[data, name]), 1),
            "test_accuracy": round(statistics.mean(acc), 4),
            "range": f"{min(acc):.4f}-{max(acc):.4f}",
        }
        for (data, name, schedule, epochs), acc in accuracy.items()
    ]
    if figure:
        plot(rows, figure)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Test accuracy against training time: up and to the left is better per second."""
    from cnnlab.viz.style import save, subplots

    fig, axes = subplots(1, len(DATASETS), figsize=(11, 4.6))
    colors = dict(zip(MODELS, ("tab:blue", "tab:orange", "tab:green"), strict=True))
    markers = {("constant", 2): "o", ("cosine", 2): "s", ("cosine", 1): "D"}
    for ax, data in zip(axes, DATASETS, strict=True):
        for r in (r for r in rows if r["dataset"] == data):
            lo, hi = (float(v) for v in r["range"].split("-"))
            y = r["test_accuracy"]
            ax.errorbar(
                r["train_s"],
                y,
                yerr=[[y - lo], [hi - y]],
                fmt=markers[r["lr_schedule"], r["epochs"]],
                color=colors[r["model"]],
                capsize=3,
                label=f"{r['model']}, {r['epochs']} ep, {r['lr_schedule']}",
            )
        ax.set_title(data)
        ax.set_xlabel("training time, s (epochs x fastest epoch)")
        ax.set_ylabel("test accuracy (mean of 3 seeds, lowest-highest)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Accuracy per second: up and to the left is better")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    save(fig, path)
