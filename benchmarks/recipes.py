"""The recipes against their goals, and the frontier of accuracy against training time.

- Every recipe of RECIPES on both datasets runs as the whole ``cnnlab train --recipe R --data D --seed S``
  process a user types, for each of SEEDS: the test accuracy after the last epoch, the training time (the
  sum of the epochs' seconds in metrics.jsonl) and the whole process's wall time.
- The budget is measured in the same run: before each seed's recipes, seed-fashion trains 2 epochs on
  Fashion-MNIST (batch 64, a whole process), and the budget is BUDGET_EPOCHS times the median of those
  steady-state (second) epochs.
- The Keras tutorial model (seed-fashion written in Keras, Adam 1e-3, batch 64) trains KERAS_EPOCHS epochs
  on each dataset in .venv-peers with the test set evaluated after every epoch: its curve of accuracy
  against training time.

``frontier.png`` puts the recipes, the zoo's rows (``make bench ONLY=zoo``, from the same results.json)
and the Keras curve in one panel per dataset.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

import cnnlab
from benchmarks.process import cnnlab_train, whole_process
from benchmarks.train import PEER_ENV, PEER_PYTHON, ROOT, peer_arrays

RECIPES = ("fast", "best", "res")
DATASETS = ("mnist", "fashion-mnist")
SEEDS = (0, 1, 2)
BUDGET_EPOCHS = 40
GOALS = {
    ("best", "mnist"): 0.995,
    ("best", "fashion-mnist"): 0.935,
    ("res", "mnist"): 0.996,  # the stretch goals that cnnlab-fast missed, for the residual model
    ("res", "fashion-mnist"): 0.94,
}
COLORS = {"fast": "tab:green", "best": "tab:blue", "res": "tab:purple"}
KERAS_EPOCHS = 10
TITLE = (
    f"The recipes: whole `cnnlab train --recipe R` processes, mean of seeds {', '.join(map(str, SEEDS))} (test "
    f"accuracy lowest-highest; train_s = the epochs' seconds; budget = {BUDGET_EPOCHS} seed-fashion epochs of "
    "this run); the Keras tutorial model for comparison"
)


def keras_curve(data: str, tmp: Path, epochs: int, seed: int = 0) -> dict | None:
    """The Keras tutorial model's test accuracy after every epoch and each epoch's seconds (None: no peer)."""
    if not PEER_PYTHON.exists():
        return None
    npz = peer_arrays(cnnlab.data.load(data), tmp / f"{data}.npz")
    script = ROOT / "benchmarks" / "peers" / "keras_seed_fashion.py"
    out, _ = whole_process([str(PEER_PYTHON), str(script), str(npz), str(epochs), "--curve", "64", str(seed)], PEER_ENV)
    return json.loads(out.strip().splitlines()[-1])


def run(
    recipes=RECIPES, datasets=DATASETS, seeds=SEEDS, keras_epochs: int = KERAS_EPOCHS, extra=()
) -> tuple[list[dict], dict]:
    """The table's rows and the raw numbers (every run's, the budget's epochs and the Keras curves).
    ``extra`` options go to every ``cnnlab train`` (the tests shorten the runs with them); ``keras_epochs=0``
    leaves the Keras curves out."""
    for data in datasets:
        cnnlab.data.load(data)  # cached before any timing
    runs: dict[tuple[str, str], list[dict]] = {}
    yardstick = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in seeds:
            rows, _ = cnnlab_train(tmp / f"yardstick-{seed}", "--data", "fashion-mnist", "--model", "seed-fashion",
                                   "--epochs", "2", "--batch-size", "64", "--seed", str(seed))  # fmt: skip
            yardstick.append(rows[-1]["seconds"])
            for data in datasets:
                for recipe in recipes:
                    rows, seconds = cnnlab_train(tmp / f"{recipe}-{data}-{seed}", "--recipe", recipe, "--data", data,
                                                 "--seed", str(seed), *extra)  # fmt: skip
                    runs.setdefault((recipe, data), []).append(
                        {
                            "seed": seed,
                            "epochs": len(rows),
                            "test_accuracy": rows[-1]["test_accuracy"],
                            "train_s": sum(r["seconds"] for r in rows),
                            "process_s": seconds,
                        }
                    )
        keras = {data: keras_curve(data, tmp, keras_epochs) for data in datasets} if keras_epochs else {}
    budget = BUDGET_EPOCHS * statistics.median(yardstick)
    table = [_row(recipe, data, done, budget) for (recipe, data), done in runs.items()]
    for data, curve in keras.items():
        if curve:
            table.append(
                {
                    "dataset": data,
                    "recipe": f"Keras tutorial model ({len(curve['epoch_s'])} epochs)",
                    "model": "seed-fashion in Keras",
                    "epochs": len(curve["epoch_s"]),
                    "train_s": round(sum(curve["epoch_s"]), 1),
                    "process_s": None,
                    "budget_s": round(budget, 1),
                    "test_accuracy": round(curve["test_accuracy"][-1], 4),
                    "range": "1 seed",
                    "goal": None,
                    "reached": None,
                }
            )
    raw = {"runs": {f"{r}/{d}": v for (r, d), v in runs.items()}, "yardstick_epoch_s": yardstick, "keras": keras}
    return table, raw


def merged(previous: list[dict], fresh: list[dict]) -> list[dict]:
    """The rows of a rerun of some recipes (``make bench ONLY=recipes RECIPES=res``) with the previous run's rows
    of the others; each row keeps the budget measured in its own run. By dataset, then in RECIPES' order."""
    redone = {(r["recipe"], r["dataset"]) for r in fresh}
    rows = [r for r in previous if (r["recipe"], r["dataset"]) not in redone] + fresh
    order = {name: i for i, name in enumerate(RECIPES)}  # the Keras model's rows after the recipes
    return sorted(rows, key=lambda r: (DATASETS.index(r["dataset"]), order.get(r["recipe"], len(order))))


def _row(recipe: str, data: str, done: list[dict], budget: float) -> dict:
    from cnnlab.training.recipes import RECIPES as ALL

    acc = [d["test_accuracy"] for d in done]
    mean, process_s = statistics.mean(acc), statistics.mean(d["process_s"] for d in done)
    goal = GOALS.get((recipe, data))
    return {
        "dataset": data,
        "recipe": recipe,
        "model": ALL[recipe].options[data]["model"],
        "epochs": done[0]["epochs"],
        "train_s": round(statistics.mean(d["train_s"] for d in done), 1),
        "process_s": round(process_s, 1),
        "budget_s": round(budget, 1),
        "test_accuracy": round(mean, 4),
        "range": f"{min(acc):.4f}-{max(acc):.4f}",
        "goal": goal,
        "reached": None if goal is None else bool(mean >= goal and process_s <= budget),
    }


def plot(results: dict, path: Path) -> None:
    """Test accuracy against training time, one panel per dataset: the recipes (mean and range of the seeds),
    the zoo's rows where results.json has them, and the Keras tutorial model's curve. Up and left is better."""
    from cnnlab.viz.style import save, subplots

    rows, raw = results["recipes"], results.get("recipes_raw", {})
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
    fig, axes = subplots(1, len(datasets), figsize=(5.8 * len(datasets), 4.8), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        for z in (z for z in results.get("zoo") or [] if z["dataset"] == data):
            ax.scatter(z["train_s"], z["test_accuracy"], s=18, color="0.6", zorder=2,
                       label="zoo, 1-2 epochs (time: epochs x fastest epoch)")  # fmt: skip
        curve = (raw.get("keras") or {}).get(data)
        if curve:
            ax.plot(np.cumsum(curve["epoch_s"]), curve["test_accuracy"], "-o", ms=3, color="tab:red", zorder=3,
                    label="Keras tutorial model (seed-fashion), after each epoch")  # fmt: skip
        for r in (r for r in rows if r["dataset"] == data and r["range"] != "1 seed"):
            lo, hi = (float(v) for v in r["range"].split("-"))
            y = r["test_accuracy"]
            label = f"--recipe {r['recipe']} ({r['model']}, {r['epochs']} epochs): mean, range of seeds"
            ax.errorbar(r["train_s"], y, yerr=[[y - lo], [hi - y]], fmt="D", ms=7, capsize=3, zorder=4,
                        color=COLORS[r["recipe"]], label=label)  # fmt: skip
            ax.annotate(f"{r['recipe']}: {y:.4f}", (r["train_s"], y), textcoords="offset points", xytext=(-10, 8),
                        ha="right", fontsize=8)  # fmt: skip
            if r["goal"]:
                ax.axhline(r["goal"], color=COLORS[r["recipe"]], ls=":", lw=1, label=f"goal of --recipe {r['recipe']}")
                ax.axvline(r["budget_s"], color="0.3", ls="--", lw=1, label="budget: 40 seed-fashion epochs")
        ax.set_xscale("log")
        ax.set_title(data)
        ax.set_xlabel("training time, s (sum of the epochs; log scale)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3, which="both")
    unique = {}  # one legend for both panels, below them, where it hides no point
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        unique |= dict(zip(labels, handles, strict=True))
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Accuracy against training time on this machine: up and to the left is better")
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    save(fig, path)
