"""Feature maps of every layer, captured without touching the shared model.

A model may be shared by many threads (the server keeps one per run). A cnnlab model (a Sequential or
any graph Model) is therefore run node by node, keeping the outputs asked for: nothing is attached to the model, so
any number of captures and predictions can run on it at once. Any other ``nn.Module`` gets forward
hooks for the length of one call, under a lock of its own, so two captures never share hooks.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import torch
from torch import nn

from cnnlab.compute.modes import evaluating, modes_restored
from cnnlab.errors import InputError
from cnnlab.nn.graph import Model
from cnnlab.shown import Shown, Table, picture


def named_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers in order: a Sequential's own names (conv1, pool1, ...), else the leaf modules of any nn.Module."""
    if isinstance(model, Model):
        return model.walk(models=True)
    return [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]


def kernels_of(module: nn.Module):
    """A convolution layer's kernels as (kh, kw, in, out), one (kh, kw, in) kernel an output channel: a
    depthwise layer's read one input channel each, a separable layer's are its depthwise ones, a transposed
    convolution's map its input channels to each filter. None for a layer without kernels."""
    weight = getattr(module, "depthwise", None)
    weight = weight if weight is not None else getattr(module, "weight", None)
    if weight is None or weight.dim() != 4:
        return None
    order = (2, 3, 0, 1) if getattr(module, "kind", "") == "Conv2DTranspose" else (2, 3, 1, 0)  # torch's (I, O, ..)
    return weight.detach().float().permute(*order)


def conv_layers(model: nn.Module) -> list[str]:
    """The names of the layers that hold convolution kernels, in order."""
    return [n for n, m in named_layers(model) if kernels_of(m) is not None]


def conv_before(model: nn.Module, layer: str) -> str:
    """The convolution whose kernels made ``layer``'s map: the last one at or before it."""
    ((name, _),) = select(model, layer)
    names = [n for n, _ in named_layers(model)]
    before = [n for n in conv_layers(model) if names.index(n) <= names.index(name)]
    if not before:
        raise InputError(f"No convolution comes before '{name}'.")
    return before[-1]


def select(model: nn.Module, layers=None) -> list[tuple[str, nn.Module]]:
    """The named layers asked for (all by default); an unknown name lists the valid ones."""
    available = named_layers(model)
    if layers is None:
        return available
    wanted = [layers] if isinstance(layers, str) else list(layers)
    by_name = dict(available)
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise InputError(f"No layer named {unknown[0]!r}. Expected one of: {', '.join(n for n, _ in available)}.")
    return [(n, by_name[n]) for n in wanted]


_LOCKS_GUARD = threading.Lock()


def _hook_lock(model: nn.Module) -> threading.Lock:
    with _LOCKS_GUARD:
        return model.__dict__.setdefault("_cnnlab_hook_lock", threading.Lock())


def _sequential_body(model: nn.Module):
    """The layers of a cnnlab model (a graph: Sequential or Model), or None for any other nn.Module."""
    return model.body if isinstance(model, Model) else None


def forward_capturing(
    model: nn.Module, x: torch.Tensor, names, keep_graph: bool = False
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The model's output for ``x`` and the outputs of the layers named in ``names``.

    ``keep_graph`` keeps them attached to autograd (Grad-CAM, maximization); otherwise they are
    detached copies, so a later in-place operation cannot change what was captured.
    """
    wanted = set(names)
    body = _sequential_body(model)
    if body is None:
        layers = [(n, m) for n, m in named_layers(model) if n in wanted]
        with _hook_lock(model), capturing(model, layers, keep_graph) as outputs:
            y = model(x)
        return y, dict(outputs)
    outputs = {}

    def keep(name, value):  # what the model's forward does in eval mode, keeping the outputs asked for
        if name in wanted:
            outputs[name] = value if keep_graph else value.detach().clone()

    return model.run_nodes([x], keep), outputs


@contextlib.contextmanager
def capturing(model: nn.Module, layers: list[tuple[str, nn.Module]], keep_graph: bool = False):
    """Record each layer's output into the yielded dict while the block runs, with forward hooks on ``model``
    (which every other user of the model then sees: prefer :func:`forward_capturing`).

    The hooks are removed and the model's train/eval mode is restored when the block
    ends, also when it ends with an exception. ``keep_graph`` keeps outputs attached to
    autograd (for Grad-CAM); otherwise they are detached copies, so a later in-place
    operation (a user's ``nn.ReLU(inplace=True)``) cannot change what was captured.
    """
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name):
        def hook(module, inputs, output):
            outputs[name] = output if keep_graph else output.detach().clone()

        return hook

    with modes_restored(model):
        try:
            for name, module in layers:
                handles.append(module.register_forward_hook(hook_for(name)))
            yield outputs
        finally:
            for h in handles:
                h.remove()


def to_numpy_nhwc(t: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C); vectors stay (N, units)."""
    t = t.detach().float().cpu()
    return (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).numpy()


def model_and_input(model_or_run, images) -> tuple[nn.Module, torch.Tensor, tuple[str, ...] | None, list[str]]:
    """A Run applies its own preprocessing to uint8 (or float) NHWC images; a bare model takes float NHWC in [0, 1]
    (or an NCHW tensor). Returns (model, NCHW input, class names or None, notes)."""
    from cnnlab.run.run import Run

    if isinstance(model_or_run, Run):
        x, notes = model_or_run.prepare(images)
        return model_or_run.model, x, model_or_run.classes, notes
    model = model_or_run
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        return model, images.float(), None, []
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InputError(f"Images have shape {a.shape}. Expected (N, H, W, C) or one (H, W, C), as floats in [0, 1].")
    return model, torch.from_numpy(a).permute(0, 3, 1, 2), None, []  # (N, C, H, W), channels_last memory


def own_images(model_or_run, split: str, limit: int, refusal: str) -> np.ndarray:
    """The first ``limit`` images of ``split`` ("train" or "test") of the dataset a run was trained on, in the
    run's size and mode; an InputError with ``refusal`` for anything but such a run."""
    from cnnlab import data as datalib
    from cnnlab.data.images import mode_for

    name = getattr(model_or_run, "train_config", {}).get("data")
    if not name:
        raise InputError(refusal)
    h, w, c = model_or_run.input_shape
    return getattr(datalib.load(name, size=(h, w), mode=mode_for(c)), split).x[:limit]


class FeatureMaps(dict, Shown):
    """``{layer: (N, H, W, C) or (N, units)}``, a dict of NumPy arrays. Printed: a row per layer (its shape
    and range); in a notebook the same with each layer's maps of image 0 as a grid with its colour bar
    (:meth:`plot` draws one layer: ``layer=``, ``image=``)."""

    _figure = "cnnlab.viz.layers:feature_maps_figure"

    def table(self) -> Table:
        rows = tuple(
            (name, str(tuple(a.shape)), f"{float(a.min()):.4g}", f"{float(a.max()):.4g}") for name, a in self.items()
        )
        return Table(f"Feature maps of {len(self)} layers", ("layer", "shape", "min", "max"), rows, frozenset({2, 3}))

    def _repr_html_(self) -> str:
        grids = "".join(picture(self.plot(layer=name), f"feature maps of {name}") for name in self)
        return f'<div class="cnnlab-shown">{self.table().html()}{grids}</div>'

    def __repr__(self) -> str:
        return Shown.__repr__(self)


def feature_maps(model_or_run, images, layers=None) -> FeatureMaps:
    """``{layer: (N, H, W, C) or (N, units)}`` for every named layer (or those asked for), in order."""
    model, x, _, _ = model_and_input(model_or_run, images)
    chosen = select(model, layers)
    with evaluating(model), torch.inference_mode():
        _, outputs = forward_capturing(model, x, [name for name, _ in chosen])
    return FeatureMaps({name: to_numpy_nhwc(outputs[name]) for name, _ in chosen if name in outputs})
