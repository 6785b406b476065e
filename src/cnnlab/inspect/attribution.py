"""Which pixels decided a prediction: saliency, SmoothGrad, Grad-CAM, Grad-CAM++, LayerCAM, Integrated
Gradients and occlusion, in one registry.

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
from cnnlab.inspect.capture import forward_capturing, model_and_input, named_layers, own_images, select
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
    values: np.ndarray | None = None  # signed attributions (H, W, C) where the method has them (Integrated Gradients)

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


def _spatial_layers(model, x) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """(name, output) of each layer with a spatial map (H x W > 1) that every path to the output passes through
    (in a chain, every layer; in a ResNet, the end of a block, not a convolution inside one), in order, and the
    names of all the layers on every path; an InputError when no layer has a spatial map."""
    from cnnlab.nn.graph import Model

    layers = named_layers(model)
    on_every_path = set(model.chokepoints()) if isinstance(model, Model) else {n for n, _ in layers}
    names = [n for n, _ in layers if n in on_every_path]
    with torch.no_grad():
        _, out = forward_capturing(model, x, names)
    spatial = [(n, out[n]) for n in names if n in out and out[n].dim() == 4 and out[n].shape[-1] * out[n].shape[-2] > 1]
    if not spatial:
        raise InputError(
            "Grad-CAM needs a layer with a spatial map (H x W > 1), and this model has none: all its layers "
            "output vectors. Use method='occlusion', which works for any model."
        )
    return spatial, names


def gradcam_layer(model, x) -> tuple[str, str]:
    """The last layer with a spatial map before the classifier that every path to the output passes through,
    and why (:func:`_spatial_layers`)."""
    from cnnlab.nn.graph import Model
    from cnnlab.nn.model import Sequential

    spatial, names = _spatial_layers(model, x)
    name, t = spatial[-1]
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
    a, grad = _cam_inputs(model, x, target, layer, "Grad-CAM")
    if variant == "mean":
        weights = grad.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1): how much each map matters
    else:
        weights = grad  # (1, C, h, w): how much each map matters at each position
    cam = F.relu((weights * a).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    return _to_input(cam, x), {"layer": layer, "reason": reason}


def _cam_inputs(model, x, target: int, layer: str, method: str = "a CAM"):
    """A layer's maps and the gradient of the class score with respect to them: (maps, gradient), (1, C, h, w).
    ``method`` names what needs the spatial map in the error for a layer that has none."""
    x = x.detach().clone().requires_grad_(True)  # a frozen base's maps need a graph back to something
    y, out = forward_capturing(model, x, [name for name, _ in select(model, layer)], keep_graph=True)
    a = out[layer]
    if a.dim() != 4:
        raise InputError(
            f"Layer '{layer}' outputs a vector {tuple(a.shape[1:])}, not a spatial map; {method} needs one. "
            "Pick a Conv2D or pooling layer, or use method='occlusion'."
        )
    (grad,) = torch.autograd.grad(y[:, target].sum(), a)
    return a.detach(), grad


def _to_input(cam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (1, 1, h, w) map bilinearly resized to the input's height and width: (H, W)."""
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0]


def gradcam_plus_plus(model, x, target: int, layer: str | None = None, **_):
    """Grad-CAM++ (Chattopadhay et al., 2018): each channel weighted by its positive gradients, each position's
    share set by alpha = g^2 / (2 g^2 + sum(A) g^3) (the paper's closed form for an exponential score), so
    several objects of a class all count, not only the strongest."""
    layer, reason = gradcam_layer(model, x) if layer is None else (select(model, layer)[0][0], "chosen by the caller")
    a, g = _cam_inputs(model, x, target, layer)
    denom = 2 * g**2 + a.sum(dim=(2, 3), keepdim=True) * g**3
    alpha = torch.where(denom != 0, g**2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g))
    weights = (alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * a).sum(dim=1, keepdim=True))
    return _to_input(cam, x), {"layer": layer, "reason": f"{reason}; Grad-CAM++ weights (positive gradients)"}


def layercam(model, x, target: int, layers=None, **_):
    """LayerCAM (Jiang et al., 2021): at every position, the maps weighted by their own positive gradient; the
    maps of several layers (default: the last three with a spatial map on every path), each scaled to [0, 1] at
    the input's size, averaged, so that a late layer's where and an early layer's detail combine."""
    if layers is None:
        layers = [name for name, _ in _spatial_layers(model, x)[0][-3:]]
    elif isinstance(layers, str):
        layers = [name for name, _ in select(model, layers)]
    total = torch.zeros(x.shape[2:])
    for layer in layers:
        a, g = _cam_inputs(model, x, target, layer)
        cam = _to_input(F.relu((F.relu(g) * a).sum(dim=1, keepdim=True)), x)
        total += (cam / cam.max()) if cam.max() > 0 else cam
    named_list = ", ".join(f"'{n}'" for n in layers)
    return total / len(layers), {
        "layer": layers[-1],
        "reason": f"LayerCAM of {named_list}, each scaled to [0, 1], averaged",
    }


BASELINES = ("black", "blurred", "mean")


def _baseline(x: torch.Tensor, baseline, model_or_run) -> tuple[torch.Tensor, str]:
    """The input Integrated Gradients starts from, in the model's input scale: black (all zeros), the image
    blurred (a Gaussian of a tenth of its size, nothing of its edges left), the training set's mean image
    (a run's dataset), or an image given as an array (H, W, C) of pixels 0..255."""
    if isinstance(baseline, np.ndarray):
        b = torch.from_numpy(np.asarray(baseline, np.float32)).permute(2, 0, 1)[None] / 255
        if b.shape != x.shape:
            raise InputError(f"baseline has shape {tuple(baseline.shape)}; expected the image's {tuple(x.shape[2:])}.")
        return b * _scale_of(model_or_run) * 255, "the given image"
    if baseline == "black":
        return torch.zeros_like(x), "black"
    if baseline == "blurred":
        sigma = max(x.shape[2], x.shape[3]) / 10
        r = int(3 * sigma)
        t = torch.arange(-r, r + 1, dtype=x.dtype)
        k = torch.exp(-(t**2) / (2 * sigma**2))
        k = k / k.sum()
        c = x.shape[1]
        padded = F.pad(x, (r, r, r, r), mode="replicate")
        b = F.conv2d(padded, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        b = F.conv2d(b, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
        return b, f"the image blurred (Gaussian, sigma {sigma:.1f} px)"
    if baseline == "mean":
        refusal = "baseline='mean' needs a Run (its dataset's mean image); pass baseline=array instead."
        train = own_images(model_or_run, "train", 10_000, refusal)
        mean = np.asarray(train, np.float64).mean(0)
        return torch.from_numpy(mean.astype(np.float32)).permute(2, 0, 1)[None] * _scale_of(model_or_run), (
            f"the mean image of {model_or_run.train_config['data']}'s training split"
        )
    raise InputError(f"Unknown baseline {baseline!r}. Expected one of: {', '.join(BASELINES)}, or an image array.")


def _scale_of(model_or_run) -> float:
    return float(getattr(model_or_run, "scale", 1 / 255))


def integrated_gradients(model, x, target: int, baseline="black", steps: int = 64, model_or_run=None, **_):
    """Integrated Gradients (Sundararajan et al., 2017): (x - baseline) times the gradient of the class score
    averaged along the straight path from the baseline to x (the trapezoid rule over ``steps`` intervals).
    Complete: the attributions sum to score(x) - score(baseline), which the reason reports with its error."""
    b, what = _baseline(x, baseline, model_or_run)
    alphas = torch.linspace(0, 1, steps + 1, dtype=x.dtype).view(-1, 1, 1, 1)
    grads = []
    for i in range(0, steps + 1, 32):
        path = (b + alphas[i : i + 32] * (x - b)).requires_grad_(True)
        (g,) = torch.autograd.grad(_score(model, path, target).sum(), path)
        grads.append(g)
    g = torch.cat(grads)
    mean_grad = (g[:-1] + g[1:]).sum(0, keepdim=True) / (2 * steps)  # the trapezoid rule
    values = ((x - b) * mean_grad)[0]  # (C, H, W), signed
    with torch.no_grad():
        gap = float(_score(model, x, target)[0] - _score(model, b, target)[0])
    total = float(values.sum())
    error = abs(total - gap)
    reason = (
        f"from {what} in {steps} steps; the attributions sum to {total:.4g}, the score moved {gap:.4g} "
        f"(completeness error {error:.2g})"
    )
    return values.abs().sum(0), {"reason": reason, "values": values.permute(1, 2, 0).numpy()}


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
    "gradcam++": gradcam_plus_plus,
    "layercam": layercam,
    "integrated_gradients": integrated_gradients,
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
        more = {"model_or_run": model_or_run} if method == "integrated_gradients" else {}
        heat, info = METHODS[method](model, x, target, **options, **more)
    name = classes[target] if classes else str(target)
    shown = np.asarray(image) if isinstance(image, np.ndarray) and image.ndim == 3 else None
    return Attribution(
        method,
        _normalize(heat),
        target,
        name,
        probs.numpy(),
        info.get("layer"),
        info["reason"],
        tuple(notes),
        shown,
        info.get("values"),
    )
