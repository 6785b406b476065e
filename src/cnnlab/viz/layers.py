"""Figures of what cnnlab.inspect returns: feature maps, filters, heat maps, maximized inputs, random filters."""

from __future__ import annotations

import math
import textwrap

import numpy as np

from cnnlab.viz.style import finish, subplots


def _gray(ax, img, cmap="viridis", vmin=None, vmax=None):
    ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _show_image(ax, img):
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
    ax.set_xticks([])
    ax.set_yticks([])


def feature_map_title(name: str, shape, shown: int) -> str:
    """'pool1: (14, 14, 32), first 8 of 32 channels', as the tutorials title them."""
    total = shape[-1]
    return f"{name}: {tuple(shape)}, first {shown} of {total} {'channels' if len(shape) == 3 else 'units'}"


def feature_maps(name: str, maps: np.ndarray, path, channels: int = 8, cols: int = 8, classes=None):
    """One layer's output for one image: (H, W, C) maps as a grid, or a (units,) vector as a strip; with
    ``classes`` (for the layer that gives one score per class) a bar per class, labelled with its name.
    Maps that hold negative values (before a ReLU) use a diverging scale around 0; a colour bar says how
    to read the colours."""
    if maps.ndim == 1 and classes is not None and len(classes) == len(maps):
        fig, ax = subplots(figsize=(7, 0.9 + 0.28 * len(maps)))
        ax.barh(range(len(maps)), maps, color=["#b2182b" if v >= 0 else "#2166ac" for v in maps])
        ax.set_yticks(range(len(maps)), [str(c) for c in classes], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="#555", lw=0.8)
        ax.set_title(f"{name}: one score per class (the softmax turns them into probabilities)", fontsize=10)
        return finish(fig, path)
    if maps.ndim == 1:
        shown = min(len(maps), 256)
        fig, ax = subplots(figsize=(10, 1.6))
        im = ax.imshow(maps[None, :shown], cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_yticks([])
        ax.set_xlabel("unit", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
        ax.set_title(
            feature_map_title(name, maps.shape, shown) + f"; values {maps.min():.3g}..{maps.max():.3g}", fontsize=10
        )
        return finish(fig, path)
    shown = min(channels, maps.shape[2])
    cols = min(cols, shown)
    rows = math.ceil(shown / cols)
    diverging = bool(maps.min() < 0)
    fig, axes = subplots(rows, cols, figsize=(1.45 * cols + 0.8, 1.55 * rows + 0.6), squeeze=False)
    im = None
    for i, ax in enumerate(axes.flat):
        if i < shown:
            m = maps[:, :, i]
            if diverging:  # around 0, symmetric: white is 0, red above, blue below
                edge = float(np.abs(m).max()) or 1.0
                im = ax.imshow(m, cmap="RdBu_r", vmin=-edge, vmax=edge, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                _gray(ax, m)
                im = ax.images[0]
            ax.set_title(f"{i}: {m.min():.2g}..{m.max():.2g}", fontsize=6)
        else:
            ax.axis("off")
    bar = fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02)
    bar.set_ticks([im.norm.vmin, 0 if diverging else im.norm.vmax] + ([im.norm.vmax] if diverging else []))
    bar.set_ticklabels(["-max |value|", "0", "+max |value|"] if diverging else ["its min", "its max"], fontsize=6)
    bar.set_label("each map scaled to its own range", fontsize=6)
    fig.suptitle(feature_map_title(name, maps.shape, shown), fontsize=10)
    return finish(fig, path)


def filter_figure(f, limit: int = 32):
    """First-layer (or any conv) kernels after the layer-wide min-max scaling, each kh x kw as it is: in
    colour when they read 3 input channels (RGB), else input channel 0 in gray."""
    imgs = f.images()  # (out, kh, kw, in)
    n = min(limit, imgs.shape[0])
    kh, kw, cin, cout = f.kernels.shape
    rgb = cin == 3  # from the kernels, never from the array's last axis (a 3x3x1 kernel also ends in 3)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig, axes = subplots(rows, cols, figsize=(1.2 * cols, 1.3 * rows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        if rgb:
            ax.imshow(imgs[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            _gray(ax, imgs[i, :, :, 0], cmap="gray", vmin=0, vmax=1)  # input channel 0
        ax.set_title(str(i), fontsize=7)
    fig.suptitle(
        f"{f.layer}: {cout} filters {kh}x{kw}x{cin}, first {n} "
        f"(min-max over the layer: {f.kernels.min():.3g}..{f.kernels.max():.3g}"
        f"{'' if rgb or cin == 1 else ', input channel 0'})",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def filter_grid(f, path, limit: int = 32):
    """:func:`filter_figure` written to ``path`` (PNG)."""
    return finish(filter_figure(f, limit), path)


def heatmap_overlay(image: np.ndarray, a, path):
    """The image, the heat map and both overlaid, titled with the method, the class and the layer."""
    fig, axes = subplots(1, 3, figsize=(6.6, 2.8))  # 726 px at 110 dpi: shown at its own size in the report
    _show_image(axes[0], image)
    axes[0].set_title("input", fontsize=9)
    _gray(axes[1], a.heatmap, cmap="jet", vmin=0, vmax=1)
    axes[1].set_title(a.method + (f" on {a.layer}" if a.layer else ""), fontsize=9)
    _show_image(axes[2], image)
    axes[2].imshow(a.heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[2].set_title("overlay", fontsize=9)
    p = float(a.probabilities[a.target])
    # wrapped to the figure's width: one long line made bbox_inches="tight" widen the PNG, and every title
    # shrank with it wherever the image is shown at a fixed width (the report's cards: ~4 px text)
    fig.suptitle(textwrap.fill(f"explaining '{a.target_name}' (p = {p:.2f}); {a.reason}", 100), fontsize=9)
    fig.tight_layout()
    return finish(fig, path)


def attribution_figure(a, path=None):
    """:func:`heatmap_overlay` of an :class:`~cnnlab.inspect.Attribution` on the image it explains."""
    return heatmap_overlay(a.image, a, path)


def feature_maps_figure(maps, path=None, layer: str | None = None, image: int = 0, channels: int = 8):
    """:func:`feature_maps` of one layer (default: the first) of what ``cnnlab.inspect.feature_maps`` gave,
    for image ``image``."""
    name = next(iter(maps)) if layer is None else layer
    return feature_maps(name, maps[name][image], path, channels)


def random_filters_figure(rf, path=None):
    """:func:`random_filters` on the image the :class:`~cnnlab.inspect.RandomFilters` ran over."""
    return random_filters(rf, rf.image, path)


def dead_units_figure(d, path=None):
    """A bar per ReLU layer of :class:`~cnnlab.inspect.health.DeadUnits`: the share of its channels that never
    fired (red when all did not) beside the share of its outputs that are 0."""
    names = [h.layer for h in d.layers]
    fig, ax = subplots(figsize=(7, 0.9 + 0.35 * len(names)))
    dead = [len(h.dead) / h.channels if h.channels else 0 for h in d.layers]
    ys = np.arange(len(names))
    ax.barh(ys - 0.2, dead, 0.4, color=["#b2182b" if v == 1 else "#ef8a62" for v in dead], label="dead channels")
    ax.barh(ys + 0.2, [h.zero_fraction for h in d.layers], 0.4, color="#67a9cf", label="outputs that are 0")
    ax.set_yticks(ys, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(
        f"dead units over {d.images:,} images" + (f": {', '.join(d.dead_layers)} dead" if d.dead_layers else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return finish(fig, path)


def explanation_checks_figure(c, path=None):
    """:class:`~cnnlab.inspect.checks.ExplanationChecks` in three panels: each method's mean deletion and
    insertion curves (class probability against the share of pixels removed or put back, the area in the
    legend), and its randomization score as a bar (red at or over the flag line)."""
    from cnnlab.inspect.checks import FLAG_RHO

    fig, (d, s, r) = subplots(1, 3, figsize=(13, 3.8))
    for m in c.checks:
        xs = np.linspace(0, 1, len(m.deletion_curve))
        d.plot(xs, m.deletion_curve, label=f"{m.method} ({m.deletion:.3f})")
        s.plot(xs, m.insertion_curve, label=f"{m.method} ({m.insertion:.3f})")
    d.set_title("deletion: lower area is better", fontsize=10)
    d.set_xlabel("share of the pixels blacked out, top-ranked first")
    s.set_title("insertion: higher area is better", fontsize=10)
    s.set_xlabel("share of the pixels put back into the blurred image")
    for ax in (d, s):
        ax.set_ylabel("probability of the explained class")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ys = np.arange(len(c.checks))
    rhos = [m.randomization_rho for m in c.checks]
    r.barh(ys, rhos, color=["#b2182b" if m.flagged else "#67a9cf" for m in c.checks])
    r.axvline(FLAG_RHO, color="#444", linestyle="--", linewidth=1)
    r.set_yticks(ys, [m.method for m in c.checks], fontsize=8)
    r.invert_yaxis()
    r.set_xlim(min(0.0, *rhos) - 0.05, 1.02)
    r.set_title("random weights: rank correlation (red: flagged)", fontsize=10)
    fig.suptitle(f"explanation checks on {c.images} test images", fontsize=11)
    fig.tight_layout()
    return finish(fig, path)


def maximized(m, path):
    fig, ax = subplots(figsize=(3.6, 3.9))
    _show_image(ax, m.image)
    title = f"{m.layer} channel {m.channel}\nmean activation {m.start_activation:.3g} -> {m.activation:.3g}"
    if m.note:  # a dead channel: say so rather than let a flat image pass for a pattern
        title = f"{m.layer} channel {m.channel}: dead\n" + textwrap.fill(m.note, 44)
    ax.set_title(title, fontsize=9)
    return finish(fig, path)


def random_filters(rf, image: np.ndarray, path):
    """Rows: the random kernels, their 3x3 stride-2 SAME maps, and those maps after 2x2 pooling."""
    n = rf.kernels.shape[3]
    fig, axes = subplots(3, n + 1, figsize=(1.7 * (n + 1), 5.6), squeeze=False)
    _show_image(axes[0, 0], image)
    axes[0, 0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=8)
    for ax, what, maps in ((axes[1, 0], "conv 3x3 s2 SAME", rf.conv), (axes[2, 0], "max pool 2x2 s2", rf.pooled)):
        ax.axis("off")
        label = f"{what}\n-> {maps.shape[0]}x{maps.shape[1]}x{n}"
        ax.text(0.5, 0.5, label, ha="center", va="center", fontsize=8, transform=ax.transAxes)
    for i in range(n):
        _gray(axes[0, i + 1], rf.kernels[:, :, 0, i], cmap="gray")
        axes[0, i + 1].set_title(f"filter {i}", fontsize=8)
        _gray(axes[1, i + 1], rf.conv[:, :, i])
        _gray(axes[2, i + 1], rf.pooled[:, :, i])
    fig.suptitle(f"{n} random 3x3 filters on one image", fontsize=10)
    fig.tight_layout()
    return finish(fig, path)
