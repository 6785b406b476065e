"""Training curves, the confusion matrix, misclassified images, probability bars."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cnnlab.viz.style import figure, finish, subplots


def curves(rows: list[dict], path, steps: list[dict] | None = None, runs: dict | None = None):
    """Loss and accuracy per epoch, for training and the held-out split (validation or test); with ``steps``
    (steps.jsonl) the training loss and accuracy every few steps too, so even one epoch draws a curve.
    ``runs`` ({name: rows}) draws several runs' held-out curves on the same axes, to compare them."""
    fig, (a, b) = subplots(1, 2, figsize=(10, 3.8))
    for name, run_rows in (runs or {"": rows}).items():
        epochs = [r["epoch"] for r in run_rows]
        held = "val" if "val_loss" in run_rows[0] else "test"
        prefix = f"{name}: " if name else ""
        for ax, key in ((a, "loss"), (b, "accuracy")):
            if not runs:
                ax.plot(epochs, [r[key] for r in run_rows], "o-", label="train (epoch mean)")
            ax.plot(epochs, [r[f"{held}_{key}"] for r in run_rows], "s-", label=f"{prefix}{held}")
    for r_steps in [steps] if steps and not runs else []:
        x = [r["epoch"] - 1 + (r["step"] - (r["epoch"] - 1) * r["of"]) / r["of"] for r in r_steps]
        a.plot(x, [r["loss"] for r in r_steps], "-", lw=0.8, alpha=0.6, label="train (every few steps)")
        b.plot(x, [r["accuracy"] for r in r_steps], "-", lw=0.8, alpha=0.6, label="train (every few steps)")
    last = max(r["epoch"] for run_rows in (runs or {"": rows}).values() for r in run_rows)
    for ax, label in ((a, "loss"), (b, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.set_xticks(range(0 if steps else 1, last + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return finish(fig, path)


def curves_callback(run_dir, rows: list[dict]):
    """For ``cnnlab.train(callbacks=[...])``: redraw the run's curves.png after every epoch."""
    from cnnlab.run.files import STEPS, read_metrics

    return curves(rows, Path(run_dir) / "curves.png", read_metrics(Path(run_dir) / STEPS))


def confusion(matrix: np.ndarray, classes, path, title: str = "confusion matrix (rows: true, columns: predicted)"):
    k = len(classes)
    fig, ax = subplots(figsize=(1.0 + 0.62 * k, 0.8 + 0.6 * k))
    ax.imshow(matrix, cmap="Blues")
    vmax = matrix.max() if matrix.size else 1
    for i in range(k):
        for j in range(k):
            v = int(matrix[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > 0.6 * vmax else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return finish(fig, path)


def evaluation_figure(ev, path=None):
    """The confusion matrix of an :class:`~cnnlab.run.evaluate.Evaluation`, titled with its accuracy."""
    title = f"accuracy {ev.accuracy:.4f} on {len(ev.labels):,} images (rows: true, columns: predicted)"
    return confusion(ev.confusion, ev.classes, path, title)


def run_figure(run, path=None):
    """A :class:`~cnnlab.run.run.Run`'s curves: its epochs, and its steps where it kept them."""
    return curves(run.metrics, path, run.steps or None)


HEATMAPS_PER_ROW = 4


def health_figure(health, path=None):
    """A run's training statistics (:class:`~cnnlab.inspect.health.TrainingHealth`, or stats.jsonl's lines)
    over the training steps: the share of zeros after each ReLU layer (1.0 is a dead layer), each weight's
    gradient norm (log scale: a vanishing or exploding one shows), then a heat map per layer of its
    activation histograms (columns: watched steps; rows: output value; colour: log10 of the share of outputs
    in that bin, :func:`cnnlab.training.stats.histograms_over_time`)."""
    from cnnlab.training.stats import histograms_over_time

    lines = list(getattr(health, "lines", health))
    steps = [r for r in lines if r.get("kind") == "step"]
    names = list(steps[0]["layers"]) if steps else []
    rows = 1 + math.ceil(len(names) / HEATMAPS_PER_ROW)
    fig = figure((12, 3.6 + 2.4 * (rows - 1)))
    grid = fig.add_gridspec(rows, 2 * HEATMAPS_PER_ROW, height_ratios=[1.5] + [1] * (rows - 1))
    a = fig.add_subplot(grid[0, :HEATMAPS_PER_ROW])
    b = fig.add_subplot(grid[0, HEATMAPS_PER_ROW:])
    x = [r["step"] for r in steps]
    for name in names:
        if "zeros" in steps[0]["layers"][name]:
            a.plot(x, [r["layers"].get(name, {}).get("zeros", np.nan) for r in steps], label=name)
    positive = False
    for name in steps[0].get("weights", {}) if steps else ():
        if name.endswith("/weight"):
            norms = [r.get("weights", {}).get(name, {}).get("grad_norm", np.nan) for r in steps]
            norms = [g if g > 0 else np.nan for g in norms]  # a dead layer's 0 has no place on a log scale
            positive = positive or any(g > 0 for g in norms)
            b.plot(x, norms, label=name[:-7])
    a.set_ylim(-0.02, 1.02)
    a.set_title("outputs that are 0, after each ReLU", fontsize=10)
    if positive:
        b.set_yscale("log")
    b.set_title("gradient norm of each layer's weights", fontsize=10)
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for i, name in enumerate(names):
        at, edges, shares = histograms_over_time(lines, name)
        r, c = 1 + i // HEATMAPS_PER_ROW, 2 * (i % HEATMAPS_PER_ROW)
        ax = fig.add_subplot(grid[r, c : c + 2])
        with np.errstate(divide="ignore"):
            shown = np.log10(np.where(shares > 0, shares, np.nan)).T
        image = ax.imshow(
            shown,
            aspect="auto",
            origin="lower",
            cmap="viridis",
            vmin=-4,
            vmax=0,
            extent=(at[0], at[-1] if len(at) > 1 else at[0] + 1, edges[0], edges[-1]),
        )
        ax.set_title(f"{name}: activations", fontsize=8)
        ax.tick_params(labelsize=6)
        if c == 0:
            ax.set_ylabel("output value", fontsize=7)
        if i == len(names) - 1:
            bar = fig.colorbar(image, ax=ax)
            bar.set_label("log10 share of outputs", fontsize=7)
            bar.ax.tick_params(labelsize=6)
    fig.tight_layout()
    return finish(fig, path)


def misclassified(x: np.ndarray, true: np.ndarray, pred: np.ndarray, probs: np.ndarray, classes, path, limit: int = 32):
    """A gallery of wrong predictions: 'true -> predicted (p)'."""
    wrong = np.flatnonzero(true != pred)[:limit]
    n = max(len(wrong), 1)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig, axes = subplots(rows, cols, figsize=(1.7 * cols, 1.9 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        img = x[i]
        ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None)
        ax.set_title(f"{classes[true[i]]} -> {classes[pred[i]]}\n({probs[i, pred[i]]:.2f})", fontsize=7)
    fig.suptitle(f"misclassified: {len(np.flatnonzero(true != pred))} of {len(true)} (first {len(wrong)})")
    fig.tight_layout()
    return finish(fig, path)


def probability_bars(probs: np.ndarray, classes, path, title: str = ""):
    """The tutorials' bar chart of class probabilities, top class highlighted."""
    fig, ax = subplots(figsize=(max(5, 0.6 * len(classes)), 3.2))
    top = int(np.argmax(probs))
    colors = ["#1f77b4"] * len(classes)
    colors[top] = "#d62728"
    ax.bar(range(len(classes)), probs, color=colors)
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 6 else 0, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title or f"predicted: {classes[top]} ({probs[top]:.1%})", fontsize=10)
    fig.tight_layout()
    return finish(fig, path)
