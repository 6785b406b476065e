"""Everything ``cnnlab inspect`` looks at for one image, computed in one place: arrays, never figures.

:func:`load_image` reads ``dataset:split:index`` or a file (fitted to the run as ``cnnlab predict`` fits
it); :func:`inspect_image` returns the probabilities, the feature maps, the first layer's filters, the
attributions and the maximized channels that ``cnnlab.viz.inspect_folder`` then draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.data.images import mode_for
from cnnlab.errors import InputError
from cnnlab.inspect.attribution import Attribution, check_method, explain
from cnnlab.inspect.capture import conv_layers, feature_maps, select
from cnnlab.inspect.filters import Filters, filters
from cnnlab.inspect.maximize import Maximized, maximize


def load_image(spec: str, run=None) -> tuple[np.ndarray, str, list[str]]:
    """An image from ``dataset:split:index`` or a file, fitted to ``run`` when given.
    Returns (uint8 (H, W, C), description, notes)."""
    from cnnlab.data import sample
    from cnnlab.data.images import decode

    if Path(spec).is_file() or ":" not in spec:
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"{spec} does not exist. Expected an image file or dataset:split:index like mnist:test:3.")
        if run is not None:
            from cnnlab.run.predict import load_image_for

            img, notes = load_image_for(run, path)  # as cnnlab predict reads it: size, mode, inversion
            return img, path.name, notes
        return decode(path), path.name, []
    size = mode = None
    if run is not None:
        h, w, c = run.input_shape
        size, mode = (h, w), mode_for(c)
    img, label, desc = sample(spec, size, mode)
    return img, f"{desc} (label {label})", []


@dataclass(frozen=True)
class Inspection:
    image: np.ndarray  # uint8 (H, W, C), what the model saw
    probabilities: np.ndarray  # (classes,)
    classes: tuple[str, ...]
    feature_maps: dict[str, np.ndarray]  # layer -> (H, W, C) or (units,)
    filters: Filters | None  # the first convolution's kernels
    attributions: tuple[Attribution, ...] = field(default=())
    maximized: tuple[Maximized, ...] = field(default=())


def inspect_image(run, image: np.ndarray, layers=None, methods=("gradcam",), maximize_=()) -> Inspection:
    """Probabilities, feature maps of ``layers`` (all by default), first-layer filters, an attribution per method
    and a maximized input per (layer, channel). Every name is checked before anything is computed. A blank
    image gets no attributions: there is nothing in it to explain (``Run.fit_image`` notes it as blank)."""
    from cnnlab.data.images import is_blank

    select(run.model, layers)
    select(run.model, [layer for layer, _ in maximize_])
    for method in methods:
        check_method(method)
    convs = conv_layers(run.model)
    return Inspection(
        image,
        run.predict(image[None])[0],
        run.classes,
        {name: m[0] for name, m in feature_maps(run, image, layers).items()},
        filters(run.model, convs[0]) if convs else None,
        () if is_blank(image) else tuple(explain(run, image, method) for method in methods),
        tuple(maximize(run.model, run.input_shape, layer, channel) for layer, channel in maximize_),
    )
