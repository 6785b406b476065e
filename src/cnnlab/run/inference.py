"""Inference: the one path every entry point takes (Run.predict, predict, eval, the server, inspect).

On the CPU the model runs as a private copy in the precision asked for, bfloat16 where the CPU has it
natively (the weights cast once, not on every call as autocast does), in channels_last memory where oneDNN
is fastest; the batches are shared out to one worker thread a core (:mod:`cnnlab.compute.workers`), so a
core that another process takes slows only its own share. Images go in as uint8 and are scaled one batch at
a time. The copy is made once per model and precision, and made again when any parameter or buffer changes
(a BatchNorm running mean counts as much as a weight). ``precision="fp32"`` keeps float32 throughout, for
exact comparisons.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import torch

from cnnlab.compute.device import autocast, pick_precision
from cnnlab.compute.modes import evaluating
from cnnlab.compute.outputs import ends_in_softmax, probabilities
from cnnlab.compute.tensors import from_numpy, to_input
from cnnlab.compute.workers import map_batches
from cnnlab.data.rows import RowFile, part

# Images per forward pass of the fast path: seed-fashion in bf16 on this project's 2-core machine, two workers,
# did 24.9k images/s at 128 and 22.8k at 256; with one busy process beside it 19.4k at 256 and 18.3k at 64.
BATCH = 256
_BUILD_LOCK = threading.Lock()  # one copy made at a time; the cache dict is only replaced whole under it


def fast_copy(model, precision: str):
    """A copy of ``model`` for inference, its weights in bfloat16 when ``precision`` is bf16: a function of
    float32 NCHW input to float32 output. None when the model cannot be copied; callers then run it as it is."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    cache = model.__dict__.get("_cnnlab_fast")
    try:  # the copy leaves out the model's cache of copies (memo: that object's copy is None)
        m = copy.deepcopy(model, {id(cache): None} if cache is not None else None)
        m = m.eval().to(dtype).to(memory_format=torch.channels_last)
    except Exception:  # a module that cannot be deep-copied
        return None
    for module in m.modules():  # a copy taken while another request captures feature maps has its hooks
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    for p in m.parameters():
        p.requires_grad_(False)
    return lambda x: m(x.to(dtype)).float()


def _weights_key(model) -> tuple:
    """Changes whenever a parameter or buffer changes: in place (version counter) or replaced (storage)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def fast_copy_cached(model, precision: str):
    """:func:`fast_copy`, made once per model and precision, and again after any change to the model's
    parameters or buffers. Safe to call from several threads at once."""
    weights = _weights_key(model)
    cache = model.__dict__.get("_cnnlab_fast")
    if cache is not None and cache["weights"] == weights and precision in cache["copies"]:
        return cache["copies"][precision]
    with _BUILD_LOCK:
        cache = model.__dict__.get("_cnnlab_fast")
        if cache is None or cache["weights"] != weights:
            cache = {"weights": weights, "copies": {}}
        if precision not in cache["copies"]:
            cache = {"weights": weights, "copies": {**cache["copies"], precision: fast_copy(model, precision)}}
            model.__dict__["_cnnlab_fast"] = cache  # replaced whole: readers never see it half-built
        return cache["copies"][precision]


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
    one batch at a time) or the model's float input, an (N, C, H, W) tensor. ``optimize`` runs the copy of
    :func:`fast_copy_cached` on the workers: for a trained model, not for the per-epoch evaluation of one
    that is still training.
    """
    with evaluating(model):  # the model's train/eval mode is as it was afterwards
        return _outputs(model, x, device, precision, batch_size, scale, optimize)


def _outputs(model, x, device, precision: str, batch_size: int, scale: float, optimize: bool) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and x.dtype != torch.uint8:
        xs, prepare = x, (lambda b: b.to(device))
    else:
        # (N, H, W, C) uint8, maybe on the device, or a file of rows past the memory budget (read per batch)
        xs = x if isinstance(x, (torch.Tensor, RowFile)) else from_numpy(x)

        def prepare(b):
            b = from_numpy(b[:]) if isinstance(b, RowFile) else b
            return to_input(b.to(device), scale)  # (n, C, H, W) float32, channels_last

    if not len(xs):
        return torch.zeros(0)
    batches = [part(xs, slice(i, i + batch_size)) for i in range(0, len(xs), batch_size)]
    forward = fast_copy_cached(model, precision) if optimize and device.type == "cpu" else None
    if forward is not None:

        def one(b):
            with torch.inference_mode():  # per thread, as autocast is: each worker enters it
                return forward(prepare(b))

        out = map_batches(one, batches)
    else:
        with torch.inference_mode(), autocast(device, precision):
            out = [model(prepare(b)).float() for b in batches]
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
    precision = pick_precision(precision, device)
    out = outputs_of(model, x, device, precision, batch_size, scale, optimize=True)
    return probabilities(out, ends_in_softmax(model)).numpy()
