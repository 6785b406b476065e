"""Inference: the one path every entry point takes (Run.predict, predict, eval, the server, inspect).

On the CPU the model runs as a frozen TorchScript graph (oneDNN fuses conv+ReLU and pre-packs the
weights), in bfloat16 where the CPU has it natively; images go in as uint8 and are scaled one batch
at a time. The graph is built once per model, precision and input size, and rebuilt when any
parameter or buffer changes (a BatchNorm running mean counts as much as a weight). ``precision="fp32"``
keeps float32 throughout, for exact comparisons.
"""

from __future__ import annotations

import copy
import threading
import warnings

import numpy as np
import torch

from cnnlab.errors import InputError
from cnnlab.train.engine import autocast, evaluating, from_numpy, pick_precision, to_input

PRECISIONS = ("auto", "bf16", "fp32")
# Images per forward pass of the fast path: seed-fashion's bf16 graph on this project's 2-core machine did
# 44-46k images/s at 64-256 and 24k at 512: up to 256, one batch's activations stay in the L2 cache.
BATCH = 256
_BUILD_LOCK = threading.Lock()  # one graph build at a time; the cache dict is only replaced whole under it


def resolve_precision(precision: str, device: torch.device = torch.device("cpu")) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}. Expected one of: {', '.join(PRECISIONS)}.")
    return pick_precision(precision, device)


def frozen(model, example: torch.Tensor, precision: str):
    """A copy of ``model`` traced and frozen for inference, in bfloat16 when ``precision`` is bf16.
    Returns None when the model cannot be traced; callers then run it eagerly."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    try:
        m = copy.deepcopy(model).eval().to(dtype)
        for module in m.modules():  # a copy taken while another request captures feature maps has its hooks
            module._forward_hooks.clear()
            module._forward_pre_hooks.clear()
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # TracerWarnings about shapes, which are fixed per input size
            graph = torch.jit.freeze(torch.jit.trace(m, example.to(dtype), check_trace=False))
    except Exception:  # any model a trace cannot follow (data-dependent control flow, ...)
        return None
    return lambda x: graph(x.to(dtype)).float()


def _weights_key(model) -> tuple:
    """Changes whenever a parameter or buffer changes: in place (version counter) or replaced (storage)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def frozen_cached(model, example: torch.Tensor, precision: str):
    """:func:`frozen`, built once per model, input size and precision, and rebuilt after any change to the
    model's parameters or buffers. Safe to call from several threads at once."""
    key, weights = (precision, tuple(example.shape[1:])), _weights_key(model)
    cache = model.__dict__.get("_cnnlab_frozen")
    if cache is not None and cache["weights"] == weights and key in cache["graphs"]:
        return cache["graphs"][key]
    with _BUILD_LOCK:
        cache = model.__dict__.get("_cnnlab_frozen")
        if cache is None or cache["weights"] != weights:
            cache = {"weights": weights, "graphs": {}}
        if key not in cache["graphs"]:
            graphs = {**cache["graphs"], key: frozen(model, example, precision)}
            cache = {"weights": weights, "graphs": graphs}
            model.__dict__["_cnnlab_frozen"] = cache  # replaced whole: readers never see it half-built
        return cache["graphs"][key]


def outputs_of(
    model,
    x,
    device=torch.device("cpu"),
    precision: str = "fp32",
    batch_size: int = 1000,
    scale: float = 1 / 255,
    optimize: bool = False,
) -> torch.Tensor:
    """The model's float32 output for ``x``, computed in no-grad batches: logits, or probabilities for a model
    that ends in softmax (``outputs_probabilities``), whatever its last layer gives.

    ``x`` is uint8 NHWC images (a NumPy array or a tensor, maybe already on the device, scaled by ``scale``
    one batch at a time) or the model's float input, an (N, C, H, W) tensor. ``optimize`` runs the frozen
    graph of :func:`frozen_cached`: for a trained model, not for the per-epoch evaluation of one that is
    still training.
    """
    with evaluating(model):  # the model's train/eval mode is as it was afterwards
        return _outputs(model, x, device, precision, batch_size, scale, optimize)


def _outputs(model, x, device, precision: str, batch_size: int, scale: float, optimize: bool) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and x.dtype != torch.uint8:
        xs, prepare = x, (lambda b: b.to(device))
    else:
        xs = x if isinstance(x, torch.Tensor) else from_numpy(x)  # (N, H, W, C) uint8, maybe on the device

        def prepare(b):
            return to_input(b.to(device), scale)  # (n, C, H, W) float32, channels_last

    if not len(xs):
        return torch.zeros(0)
    forward = None
    if optimize and device.type == "cpu":
        forward = frozen_cached(model, prepare(xs[:1]), precision)
    out = []
    with torch.inference_mode(), autocast(device, precision if forward is None else "fp32"):
        for i in range(0, len(xs), batch_size):
            xb = prepare(xs[i : i + batch_size])
            out.append((forward(xb) if forward else model(xb)).float())
    return torch.cat(out).cpu()  # one copy to the host, not one wait per batch


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (the CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def probabilities_of(model, x, precision: str = "auto", batch_size: int = BATCH, scale: float = 1 / 255) -> np.ndarray:
    """Class probabilities (N, classes) through the fast path: softmax of the output, or the output itself
    for a model that ends in softmax. It runs where the model's weights are (a GPU after ``run.to("cuda")``),
    the images moved there one batch at a time and the outputs copied back once."""
    device = model_device(model)
    precision = resolve_precision(precision, device)
    out = outputs_of(model, x, device, precision, batch_size, scale, optimize=True)
    if getattr(model, "outputs_probabilities", False):
        return out.numpy()
    return torch.softmax(out, dim=1).numpy()
