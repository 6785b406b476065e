"""``cnnlab inspect``'s output folder: every figure for one image, and an index.json that says what each is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnlab.atomic import write_text
from cnnlab.errors import InputError


def load_image(spec: str, run=None) -> tuple[np.ndarray, str, list[str]]:
    """An image from ``dataset:split:index`` or a file, converted for ``run`` when given.
    Returns (uint8 (H, W, C), description, notes)."""
    from cnnlab.data import sample
    from cnnlab.data.images import decode, mode_of, open_header

    if Path(spec).is_file() or ":" not in spec:
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"{spec} does not exist. Expected an image file or dataset:split:index like mnist:test:3.")
        if run is not None:
            from cnnlab.train.predict import load_image_for

            img, notes = load_image_for(run, path)
            return img, path.name, notes
        pil_mode, _ = open_header(path)
        return decode(path, mode_of(pil_mode), None), path.name, []
    size = mode = None
    if run is not None:
        h, w, c = run.input_shape
        size, mode = (h, w), ("gray" if c == 1 else "rgb")
    img, label, desc = sample(spec, size, mode)
    return img, f"{desc} (label {label})", []


def _entry(file: Path, kind: str, layer, shape, meaning: str) -> dict:
    return {
        "file": file.name,
        "kind": kind,
        "layer": layer,
        "shape": list(shape) if shape is not None else None,
        "meaning": meaning,
    }


def write_inspection(
    run,
    image: np.ndarray,
    out,
    layers=None,
    channels: int = 8,
    methods=("gradcam",),
    maximize: list[tuple[str, int]] = (),
    description: str = "",
) -> list[dict]:
    """Probabilities, feature maps of the chosen layers, first-layer filters, attributions, maximized channels."""
    from cnnlab import inspect
    from cnnlab.viz import inspect as draw
    from cnnlab.viz.train import probability_bars

    # every name is checked before the first file is written: a typo leaves no half-filled folder
    inspect.capture.select(run.model, layers)
    inspect.capture.select(run.model, [layer for layer, _ in maximize])
    unknown = [m for m in methods if m not in inspect.METHODS]
    if unknown:
        raise InputError(f"Unknown method {unknown[0]!r}. Expected one of: {', '.join(inspect.METHODS)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    probs = run.predict(image[None])[0]
    top = int(np.argmax(probs))
    f = probability_bars(
        probs, run.classes, out / "probabilities.png", f"{description}: {run.classes[top]} ({probs[top]:.1%})"
    )
    index.append(_entry(f, "probabilities", None, probs.shape, "class probabilities for the image"))
    maps = inspect.feature_maps(run, image, layers)
    for name, m in maps.items():
        f = draw.feature_maps(name, m[0], out / f"features_{name}.png", channels)
        index.append(_entry(f, "feature_maps", name, m.shape[1:], f"output of layer {name} for the image"))
    convs = inspect.conv_layers(run.model)
    if convs:
        flt = inspect.filters(run.model, convs[0])
        f = draw.filter_grid(flt, out / f"filters_{convs[0]}.png")
        index.append(_entry(f, "filters", convs[0], flt.kernels.shape, "first-layer kernels, min-max scaled"))
    for method in methods:
        a = inspect.explain(run, image, method)
        f = draw.heatmap_overlay(image, a, out / f"{method}.png")
        index.append(
            _entry(f, "attribution", a.layer, a.heatmap.shape, f"{method} for class '{a.target_name}': {a.reason}")
        )
    for layer, channel in maximize:
        m = inspect.maximize(run.model, run.input_shape, layer, channel)
        f = draw.maximized(m, out / f"maximize_{layer}_{channel}.png")
        index.append(
            _entry(f, "maximize", layer, m.image.shape, f"an input that maximizes channel {channel} of {layer}")
        )
    write_text(out / "index.json", json.dumps({"image": description, "figures": index}, indent=2))
    return index


def write_random_filters(image: np.ndarray, n: int, out, seed: int = 0, description: str = "") -> list[dict]:
    from cnnlab.inspect import random_filters
    from cnnlab.viz import inspect as draw

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rf = random_filters(image, n, seed)
    f = draw.random_filters(rf, image, out / "random_filters.png")
    index = [
        _entry(
            f,
            "random_filters",
            None,
            rf.pooled.shape,
            f"{n} random 3x3 filters, stride 2 SAME -> {rf.conv.shape}, then 2x2 max pool -> "
            f"{rf.pooled.shape}; " + " | ".join(rf.explanation),
        )
    ]
    write_text(out / "index.json", json.dumps({"image": description, "figures": index}, indent=2))
    return index
