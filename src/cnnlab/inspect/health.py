"""Dead units: the channels after a ReLU that never fire (give 0 for every image of a set), layer by layer.

A channel is dead when no image makes it positive anywhere; a layer is dead when all its channels are. The
zero fraction (how many of a layer's outputs are 0) says how close the rest come. Only layers whose output is
a ReLU's are counted: elsewhere 0 is a value like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.errors import InputError
from cnnlab.inspect.capture import feature_maps, named_layers, own_images
from cnnlab.nn.activations import ends_in_relu
from cnnlab.shown import Shown, Table

BATCH = 256
NEEDS_IMAGES = "needs images, or a run that says which dataset it was trained on."


def relu_layers(model) -> list[str]:
    """The named layers whose output is a ReLU's (:func:`cnnlab.nn.activations.ends_in_relu`)."""
    return [name for name, m in named_layers(model) if ends_in_relu(m)]


@dataclass(frozen=True)
class LayerHealth:
    layer: str
    channels: int
    dead: tuple[int, ...]  # the channels that never fired
    zero_fraction: float  # of all the layer's outputs over all the images


@dataclass(frozen=True, repr=False)
class DeadUnits(Shown):
    """Printed: a row per ReLU layer with its dead channels and zero fraction, the dead layers named first; in
    a notebook the same with a bar per layer (:meth:`plot`)."""

    images: int
    layers: tuple[LayerHealth, ...]

    _figure = "cnnlab.viz.layers:dead_units_figure"

    @property
    def dead_layers(self) -> list[str]:
        return [h.layer for h in self.layers if h.channels and len(h.dead) == h.channels]

    def table(self) -> Table:
        rows = tuple(
            (
                h.layer,
                f"{h.channels:,}",
                f"{len(h.dead):,}",
                f"{h.zero_fraction:.1%}",
                ", ".join(map(str, h.dead[:12])) + (", ..." if len(h.dead) > 12 else ""),
            )
            for h in self.layers
        )
        dead = self.dead_layers
        verdict = f"dead layers: {', '.join(dead)}" if dead else "no layer is dead"
        title = f"Dead units over {self.images:,} images: {verdict}"
        return Table(title, ("layer", "channels", "dead", "zeros", "dead channels"), rows, frozenset({1, 2, 3}))


def died_in_training(lines: list[dict]) -> dict[str, int]:
    """From a run's stats.jsonl lines: {layer: its channels} of each layer whose every channel never fired in
    the watched steps of the last recorded epoch."""
    epochs = [r for r in lines if r.get("kind") == "epoch" and isinstance(r.get("never_fired"), dict)]
    if not epochs:
        return {}
    last = epochs[-1]
    channels = last.get("channels", {})
    return {
        name: channels[name]
        for name, never in last["never_fired"].items()
        if isinstance(channels.get(name), int) and channels[name] > 0 and len(never) == channels[name]
    }


@dataclass(frozen=True, repr=False)
class TrainingHealth(Shown):
    """A run's stats.jsonl (``--stats on``). Printed: whether a layer died, and a row per layer with its output
    in the last watched step (mean, std, zeros after a ReLU); in a notebook the same with the zeros after each
    ReLU and the gradient norms over the steps, and each layer's activation histograms over time as a heat
    map (:meth:`plot`)."""

    lines: tuple[dict, ...]

    _figure = "cnnlab.viz.train:health_figure"

    @property
    def steps(self) -> list[dict]:
        return [r for r in self.lines if r.get("kind") == "step"]

    @property
    def died(self) -> dict[str, int]:
        return died_in_training(list(self.lines))

    @property
    def verdict(self) -> str:
        died = self.died
        if died:
            return "Dead layers: " + ", ".join(f"{n} (all {c} channels never fired)" for n, c in died.items())
        return "No layer died: every layer that ends in a ReLU had channels that fired in the last epoch."

    def table(self) -> Table:
        last = self.steps[-1] if self.steps else {"layers": {}, "step": 0}
        rows = tuple(
            (
                name,
                f"{v['mean']:.4g}",
                f"{v['std']:.4g}",
                f"{v['zeros']:.1%}" if "zeros" in v else "",
            )
            for name, v in last["layers"].items()
        )
        title = f"Training health over {len(self.steps)} watched steps: {self.verdict}"
        columns = ("layer", f"mean (step {last['step']})", "std", "zeros")
        return Table(title, columns, rows, frozenset({1, 2, 3}))


def training_health(run) -> TrainingHealth:
    """The training statistics a run recorded (its stats.jsonl); an InputError for a run trained with
    ``--stats off`` or before cnnlab recorded them."""
    from cnnlab.run.files import STATS, read_metrics

    path = run.file(STATS)
    lines = read_metrics(path) if path is not None else []
    if not any(r.get("kind") == "step" for r in lines):
        raise InputError(
            f"{run.path} recorded no training statistics (trained with --stats off, or before cnnlab kept "
            "them): train it again to see its health."
        )
    return TrainingHealth(tuple(lines))


def dead_units(model_or_run, images=None, limit: int = 2000) -> DeadUnits:
    """The dead channels of every ReLU layer over ``images`` (uint8 NHWC), by default the first ``limit`` test
    images of a run's own dataset."""
    from cnnlab.run.run import Run

    if images is None:
        images = own_images(model_or_run, "test", limit, f"dead_units() {NEEDS_IMAGES}")
    model = model_or_run.model if isinstance(model_or_run, Run) else model_or_run
    names = relu_layers(model)
    if not names:
        raise InputError("The model has no ReLU layer: no unit of it can be dead in this sense.")
    fired: dict[str, np.ndarray] = {}
    zeros: dict[str, int] = dict.fromkeys(names, 0)
    sizes: dict[str, int] = dict.fromkeys(names, 0)
    for i in range(0, len(images), BATCH):
        maps = feature_maps(model_or_run, images[i : i + BATCH], layers=names)
        for name, a in maps.items():  # (N, H, W, C) or (N, units): the channel is the last axis
            per_channel = (a > 0).reshape(-1, a.shape[-1]).any(axis=0)
            fired[name] = per_channel if name not in fired else fired[name] | per_channel
            zeros[name] += int((a == 0).sum())
            sizes[name] += a.size
    layers = tuple(
        LayerHealth(n, len(fired[n]), tuple(int(k) for k in np.flatnonzero(~fired[n])), zeros[n] / max(sizes[n], 1))
        for n in names
        if n in fired
    )
    return DeadUnits(len(images), layers)
