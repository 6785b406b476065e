"""A model from a file is counted before it is built: on PyTorch's "meta" device, where a layer's weights
have shapes and no memory, its numbers and the values its layers make for one image are summed, and a model
past :mod:`cnnlab.limits`' bounds is refused before one weight is allocated."""

from __future__ import annotations

import math

import torch

from cnnlab.errors import InputError
from cnnlab.limits import MAX_ACTIVATION_CELLS, MAX_PARAMETERS


def activation_cells(model) -> int:
    """How many values the layers of ``model`` (nested models opened) make for one image."""
    total = 0
    for node in getattr(model, "_nodes", ()):
        if hasattr(node.layer, "_nodes"):
            total += activation_cells(node.layer)
            continue
        shapes = node.output.shape
        total += math.prod(shapes) if shapes and isinstance(shapes[0], int) else sum(map(math.prod, shapes))
    return total


def check_budget(model, what: str, error=InputError) -> None:
    """Refuse ``model`` (built on any device) when it holds more than ``MAX_PARAMETERS`` numbers or its layers
    make more than ``MAX_ACTIVATION_CELLS`` values for one image."""
    numbers = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    if numbers > MAX_PARAMETERS:
        raise error(
            f"{what} declares {numbers:,} weights; cnnlab builds models of at most {MAX_PARAMETERS:,} "
            "(VGG19 has 143.7 million)."
        )
    cells = activation_cells(model)
    if cells > MAX_ACTIVATION_CELLS:
        raise error(
            f"{what}'s layers make {cells:,} values for one image; cnnlab builds models that make at most "
            f"{MAX_ACTIVATION_CELLS:,}."
        )


def built_within_budget(build, what: str, error=InputError, model_of=lambda built: built):
    """``build()``, first on the meta device (nothing allocated) to be counted by :func:`check_budget`, then
    for real; on the meta device already (``models check`` counting a model of any size), just ``build()``.
    ``model_of`` picks the model out of what ``build`` returns."""
    if torch.empty(0).device.type == "meta":  # already counting (models check, summary): nothing is allocated
        return build()
    with torch.device("meta"):
        probe = build()
    check_budget(model_of(probe), what, error)
    del probe
    return build()
