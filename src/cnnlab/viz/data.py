"""Figures of dataset samples: a labelled grid, or one image large."""

from __future__ import annotations

import math

import numpy as np

from cnnlab.viz.style import finish, subplots


def _show(ax, img: np.ndarray) -> None:
    if img.shape[2] == 1:
        ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid(x: np.ndarray, y: np.ndarray, classes, path, title: str = "", cols: int = 8):
    """``x`` uint8 (N, H, W, C), ``y`` labels: one tile per image, titled with its class name."""
    n = len(x)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = subplots(rows, cols, figsize=(1.5 * cols, 1.75 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, x[i])
            ax.set_title(str(classes[int(y[i])]), fontsize=8)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return finish(fig, path)


def dataset_figure(ds, path=None, n: int = 16):
    """The first ``n`` training images of a :class:`~cnnlab.data.Dataset`, each titled with its class."""
    n = min(n, len(ds.train))
    h, w, c = ds.image_shape
    return sample_grid(
        ds.train.x[:n],
        ds.train.y[:n],
        ds.classes,
        path,
        f"{ds.name}: {h}x{w}x{c}, {n} of {len(ds.train):,} training images",
    )


def single_image(img: np.ndarray, label: str, path, title: str = ""):
    """One image large, with its label and pixel grid size."""
    fig, ax = subplots(figsize=(5, 5.4))
    _show(ax, img)
    h, w, c = img.shape
    ax.set_title(f"{title}\nlabel: {label}   ({h}x{w}x{c}, values {img.min()}..{img.max()})", fontsize=10)
    return finish(fig, path)
