"""Which pixels decided a prediction: saliency, SmoothGrad, Grad-CAM and occlusion, in one registry.

Each method returns an :class:`Attribution`: a heat map at input resolution (H, W),
scaled to [0, 1], and the class it explains (the predicted one unless ``target`` is given).
They work for grayscale and RGB models alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.compute.modes import evaluating
from cnnlab.compute.outputs import class_score, ends_in_softmax, probabilities
from cnnlab.errors import InputError
from cnnlab.inspect.capture import forward_capturing, model_and_input, named_layers, select
from cnnlab.shown import Shown, Table


@dataclass(frozen=True, repr=False)
class Attribution(Shown):
    """Printed: the method, the class explained with its probability, the layer and why; in a notebook the
    image, the heat map and both overlaid (:meth:`plot`)."""

    method: str
    heatmap: np.ndarray  # (H, W) in [0, 1]
    target: int  # the class explained
    target_name: str
    probabilities: np.ndarray  # (classes,)
    layer: str | None = None  # Grad-CAM's layer
    reason: str = ""  # why that layer, or how the map was made
    notes: tuple[str, ...] = field(default=())
    image: np.ndarray | None = None  # the image explained (H, W, C), as it was given

    @property
    def _figure(self) -> str:
        return "cnnlab.viz.layers:attribution_figure" if self.image is not None else ""

    def table(self) -> Table:
        p = float(self.probabilities[self.target])
        top = np.argsort(self.probabilities)[::-1][:3]
        lines = (f"why: {self.reason}",) if self.reason else ()
        lines += (f"heat map {self.heatmap.shape[0]}x{self.heatmap.shape[1]}, scaled to [0, 1]",)
        lines += tuple(f"note: {n}" for n in self.notes)
        rows = tuple((str(int(k)), f"{float(self.probabilities[k]):.4f}") for k in top)
        where = f" on {self.layer}" if self.layer else ""
        title = f"{self.method}{where}: explaining class {self.target} '{self.target_name}' (p = {p:.4f})"
        return Table(title, ("top class", "probability"), rows, frozenset({1}), lines)


def _normalize(h: torch.Tensor) -> np.ndarray:
    h = h.detach().float()
    h = h - h.min()
    top = h.max()
    return (h / top if top > 0 else h).cpu().numpy()


def _probs(model, x) -> torch.Tensor:
    return probabilities(model(x), ends_in_softmax(model))


def _score(model, x, target: int) -> torch.Tensor:
    """The target's logit (or probability for a model ending in softmax), per image."""
    return model(x)[:, target]


def saliency(model, x, target: int, **_) -> tuple[torch.Tensor, dict]:
    """Vanilla gradient: |d score / d pixel|, max over channels (Simonyan et al., 2014)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_score(model, x, target).sum(), x)
    return grad.abs().amax(dim=1)[0], {"reason": "absolute gradient of the class score, max over channels"}


def smoothgrad(model, x, target: int, samples: int = 24, noise: float = 0.15, seed: int = 0, **_):
    """Average gradient over noisy copies of the image (Smilkov et al., 2017); noise is a fraction of the range."""
    g = torch.Generator().manual_seed(seed)
    sigma = noise * float(x.max() - x.min() or 1.0)
    noisy = x.repeat(samples, 1, 1, 1) + sigma * torch.randn((samples, *x.shape[1:]), generator=g)
    noisy.requires_grad_(True)
    (grad,) = torch.autograd.grad(_score(model, noisy, target).sum(), noisy)
    return grad.abs().amax(dim=1).mean(0), {
        "reason": f"mean absolute gradient over {samples} copies, noise {noise:.0%}"
    }


def gradcam_layer(model, x) -> tuple[str, str]:
    """The last layer with a spatial map before the classifier that every path to the output passes through
    (in a chain, every layer; in a ResNet, the end of a block, not a convolution inside one), and why."""
    from cnnlab.nn.graph import Model
    from cnnlab.nn.model import Sequential

    layers = named_layers(model)
    on_every_path = set(model.chokepoints()) if isinstance(model, Model) else {n for n, _ in layers}
    with torch.no_grad():
        _, out = forward_capturing(model, x, [n for n, _ in layers if n in on_every_path])
    spatial = [
        (n, out[n]) for n, _ in layers if n in out and out[n].dim() == 4 and out[n].shape[-1] * out[n].shape[-2] > 1
    ]
    if not spatial:
        raise InputError(
            "Grad-CAM needs a layer with a spatial map (H x W > 1), and this model has none: all its layers "
            "output vectors. Use method='occlusion', which works for any model."
        )
    name, t = spatial[-1]
    names = [n for n, _ in layers if n in on_every_path]
    following = names[names.index(name) + 1] if names.index(name) + 1 < len(names) else "the output"
    h, w, c = t.shape[2], t.shape[3], t.shape[1]
    where = (
        ""
        if isinstance(model, Sequential) or not isinstance(model, Model)
        else " that every path to the output passes through"
    )
    return name, f"'{name}' is the last layer with a spatial map ({h}x{w}x{c}){where} before '{following}'"


def _flattened_after(model, layer: str) -> bool:
    """True when a Flatten or Reshape lies between ``layer`` and the output (of a cnnlab model)."""
    layers = named_layers(model)
    names = [n for n, _ in layers]
    if not hasattr(model, "body") or layer not in names:
        return False
    return any(getattr(m, "kind", "") in ("Flatten", "Reshape") for _, m in layers[names.index(layer) + 1 :])


def gradcam(model, x, target: int, layer: str | None = None, variant: str = "auto", **_):
    """Grad-CAM (Selvaraju et al., 2017): ReLU of the layer's maps weighted by their gradient.

    ``variant='mean'`` is the published form: one weight per channel, the spatial mean of its
    gradient. That is right when the maps reach the classifier through global pooling, but
    when a Flatten feeds a Dense layer every position has its own weights, the mean mixes
    evidence for and against the class, and the map often comes out entirely negative (blank).
    ``variant='elementwise'`` then weights each position by its own gradient (gradient x
    activation; HiResCAM, Draelos and Carin, 2020), which equals the mean form for globally
    pooled maps. ``'auto'`` picks elementwise when a Flatten/Reshape follows the layer.
    """
    if variant not in ("auto", "mean", "elementwise"):
        raise InputError(f"Unknown Grad-CAM variant {variant!r}. Expected auto, mean or elementwise.")
    if layer is None:
        layer, reason = gradcam_layer(model, x)
    else:
        select(model, layer)
        reason = f"'{layer}' chosen by the caller"
    if variant == "auto":
        variant = "elementwise" if _flattened_after(model, layer) else "mean"
        if variant == "elementwise":
            reason += "; a Flatten follows, so each position is weighted by its own gradient (HiResCAM form)"
    x = x.detach().clone().requires_grad_(True)  # a frozen base's maps need a graph back to something
    y, out = forward_capturing(model, x, [name for name, _ in select(model, layer)], keep_graph=True)
    score = y[:, target].sum()
    a = out[layer]
    if a.dim() != 4:
        raise InputError(
            f"Layer '{layer}' outputs a vector {tuple(a.shape[1:])}, not a spatial map; Grad-CAM needs one. "
            "Pick a Conv2D or pooling layer, or use method='occlusion'."
        )
    (grad,) = torch.autograd.grad(score, a)
    if variant == "mean":
        weights = grad.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1): how much each map matters
    else:
        weights = grad  # (1, C, h, w): how much each map matters at each position
    cam = F.relu((weights * a).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    return cam[0, 0], {"layer": layer, "reason": reason}


def _log_score(model, x, target: int) -> torch.Tensor:
    """The class's logit (log-probability for a model that ends in softmax): unlike the probability it
    still moves when the model is very sure, so occluding evidence shows."""
    return class_score(model(x), target, ends_in_softmax(model))


def occlusion(model, x, target: int, patch: int | None = None, stride: int | None = None, **_):
    """Drop of the class score when a patch of the image's mean value hides each region
    (Zeiler and Fergus, 2014, who used the probability; see :func:`_log_score`). No gradients."""
    _, _, h, w = x.shape
    patch = patch or max(2, min(h, w) // 7)
    stride = stride or max(1, patch // 2)
    fill = float(x.mean())
    with torch.no_grad():
        base = _log_score(model, x, target)[0]
        tops = list(range(0, max(h - patch, 0) + 1, stride))
        lefts = list(range(0, max(w - patch, 0) + 1, stride))
        boxes = [(t, le) for t in tops for le in lefts]
        heat = torch.zeros(h, w)
        count = torch.zeros(h, w)
        for i in range(0, len(boxes), 256):
            chunk = boxes[i : i + 256]
            batch = x.repeat(len(chunk), 1, 1, 1)
            for j, (t, le) in enumerate(chunk):
                batch[j, :, t : t + patch, le : le + patch] = fill
            drops = base - _log_score(model, batch, target)
            for j, (t, le) in enumerate(chunk):
                heat[t : t + patch, le : le + patch] += drops[j]
                count[t : t + patch, le : le + patch] += 1
    heat = F.relu(heat / count.clamp_min(1))
    return heat, {"reason": f"drop of the class score with a {patch}x{patch} patch hidden, stride {stride}"}


METHODS: dict[str, Callable] = {
    "saliency": saliency,
    "smoothgrad": smoothgrad,
    "gradcam": gradcam,
    "occlusion": occlusion,
}


def check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"Unknown method {method!r}. Expected one of: {', '.join(METHODS)}.")


def explain(model_or_run, image, method: str = "gradcam", target: int | None = None, **options) -> Attribution:
    """Attribution of one image (H, W, C) by ``method`` (see ``METHODS``) for ``target`` (default: the prediction)."""
    check_method(method)
    model, x, classes, notes = model_and_input(model_or_run, image)
    if x.shape[0] != 1:
        raise InputError(f"explain() takes one image; received {x.shape[0]}. Pass images[i].")
    if float(x.amax()) == float(x.amin()):
        raise InputError(
            f"The image is blank (every value {float(x.amin()):.3g}): there is nothing in it to explain. "
            "Draw something, or choose an image with content."
        )
    with evaluating(model):
        with torch.no_grad():
            probs = _probs(model, x)[0].float()
        if target is None:
            target = int(probs.argmax())
        if not 0 <= target < probs.numel():
            raise InputError(f"target={target} is not a class index. Expected 0..{probs.numel() - 1}.")
        heat, info = METHODS[method](model, x, target, **options)
    name = classes[target] if classes else str(target)
    shown = np.asarray(image) if isinstance(image, np.ndarray) and image.ndim == 3 else None
    return Attribution(
        method, _normalize(heat), target, name, probs.numpy(), info.get("layer"), info["reason"], tuple(notes), shown
    )
