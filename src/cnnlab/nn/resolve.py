"""One way to turn what a user names into a model: a zoo name or a .json/.toml spec file.

The rule for shapes and classes: a zoo model is a template, built for the ``input_shape`` and
``num_classes`` given (its last Dense takes the class count). A spec is the user's own model, taken
as written: a declared input shape or a last layer that disagrees with what is given is an error
that says how to fix it, never silently changed.
"""

from __future__ import annotations

import math
from pathlib import Path

from cnnlab.errors import InputError
from cnnlab.nn import zoo
from cnnlab.nn.base import shape_text
from cnnlab.nn.layers import Input
from cnnlab.nn.model import Sequential
from cnnlab.nn.spec import from_spec, read_spec


def resolve(name: str, input_shape=None, num_classes: int | None = None) -> Sequential:
    """The model ``name`` (zoo name or spec file) for ``input_shape`` (H, W, C) and ``num_classes``, each
    optional (a zoo model's defaults, a spec's declaration)."""
    if name in zoo.ZOO:
        return zoo.build(name, input_shape=input_shape, num_classes=num_classes)
    if Path(name).suffix.lower() not in (".json", ".toml"):
        raise InputError(f"Unknown model {name!r}. Expected one of: {', '.join(zoo.ZOO)}, or a .json/.toml spec file.")
    spec = read_spec(name)
    declared = spec.get("input_shape")
    if declared is not None:
        Input(declared)  # three whole numbers, each at least 1, within the bound: else its own error
    if declared and input_shape is not None and tuple(declared) != tuple(input_shape):
        raise InputError(
            f"{name} declares input_shape {tuple(declared)} but the images are {tuple(input_shape)}. "
            "Remove input_shape from the spec, or pass --size/--mode to convert the images."
        )
    model = from_spec(spec, input_shape=input_shape, what=f"Model spec {name}")
    if num_classes is not None and model.output_shape != (num_classes,):
        shape = model.output_shape
        if isinstance(shape, tuple) and len(shape) == 3:
            raise InputError(
                f"{name} ends in a {shape_text(shape)} map per image, not one score a class: a Dense on a map "
                f"works on each cell's channels. Put Flatten() (-> {math.prod(shape[:2]) * shape[2]:,} values) or "
                f"GlobalAveragePooling2D() before the last Dense({num_classes})."
            )
        raise InputError(
            f"{name} ends in {shape} outputs but there are {num_classes} classes. "
            f"Make the last layer Dense({num_classes})."
        )
    return model
