"""``cnnlab inspect``'s output folder: a figure for each thing :func:`cnnlab.inspect.inspect_image` computed,
and an index.json that says what each PNG shows. Draws and writes only: nothing is computed here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnlab.atomic import make_folder, write_text


def _entry(file: Path, kind: str, layer, shape, meaning: str) -> dict:
    return {
        "file": file.name,
        "kind": kind,
        "layer": layer,
        "shape": list(shape) if shape is not None else None,
        "meaning": meaning,
    }


def write_inspection(ins, out, channels: int = 8, description: str = "") -> list[dict]:
    """Probabilities, feature maps, first-layer filters, attributions and maximized channels of an
    :class:`cnnlab.inspect.Inspection`, as PNGs in ``out`` with index.json."""
    from cnnlab.viz import layers as draw
    from cnnlab.viz.train import probability_bars

    out = Path(out)
    make_folder(out)
    probs, top = ins.probabilities, int(np.argmax(ins.probabilities))
    title = f"{description}: {ins.classes[top]} ({probs[top]:.1%})"
    f = probability_bars(probs, ins.classes, out / "probabilities.png", title)
    index = [_entry(f, "probabilities", None, probs.shape, "class probabilities for the image")]
    last = list(ins.feature_maps)[-1] if ins.feature_maps else None
    for name, m in ins.feature_maps.items():
        scores = ins.classes if name == last else None  # the class scores, labelled with the class names
        f = draw.feature_maps(name, m, out / f"features_{name}.png", channels, classes=scores)
        index.append(_entry(f, "feature_maps", name, m.shape, f"output of layer {name} for the image"))
    if ins.filters is not None:
        flt = ins.filters
        f = draw.filter_grid(flt, out / f"filters_{flt.layer}.png")
        index.append(_entry(f, "filters", flt.layer, flt.kernels.shape, "first-layer kernels, min-max scaled"))
    for a in ins.attributions:
        f = draw.heatmap_overlay(ins.image, a, out / f"{a.method}.png")
        meaning = f"{a.method} for class '{a.target_name}': {a.reason}"
        index.append(_entry(f, "attribution", a.layer, a.heatmap.shape, meaning))
    for m in ins.maximized:
        f = draw.maximized(m, out / f"maximize_{m.layer}_{m.channel}.png")
        meaning = m.note or f"an input that maximizes channel {m.channel} of {m.layer}"
        index.append(_entry(f, "maximize", m.layer, m.image.shape, meaning))
    write_text(out / "index.json", json.dumps({"image": description, "figures": index}, indent=2))
    return index


def write_random_filters(rf, image: np.ndarray, out, description: str = "") -> list[dict]:
    """The random-filters experiment (:func:`cnnlab.inspect.random_filters`) as a PNG with index.json."""
    from cnnlab.viz import layers as draw

    out = Path(out)
    make_folder(out)
    f = draw.random_filters(rf, image, out / "random_filters.png")
    n = rf.pooled.shape[-1]
    meaning = (
        f"{n} random 3x3 filters, stride 2 SAME -> {rf.conv.shape}, then 2x2 max pool -> {rf.pooled.shape}; "
        + " | ".join(rf.explanation)
    )
    index = [_entry(f, "random_filters", None, rf.pooled.shape, meaning)]
    write_text(out / "index.json", json.dumps({"image": description, "figures": index}, indent=2))
    return index
