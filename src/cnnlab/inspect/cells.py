"""How one cell of a layer's output was computed for one image, from the model's own weights and inputs.

A convolution cell: the input patch its window reads (with TensorFlow's padding cells marked), the kernel
of that output channel, their products summed per input channel, the bias, the activation, and where
TensorFlow pads asymmetrically the same cell under PyTorch's symmetric padding. A pooling cell: its
window and which cell won (max) or the mean of the real cells (average). The model's outputs: its
logits, their exponentials and the softmax. Every number is what the model computed; ``value`` is the
cell as the layer itself output it, so a reader can check the arithmetic against the map.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.arith.padding import axes_for
from cnnlab.compute.modes import evaluating
from cnnlab.errors import InputError
from cnnlab.inspect.capture import _sequential_body, forward_capturing, model_and_input, to_numpy_nhwc


def _window(inp: np.ndarray, ah, aw, row: int, col: int):
    """The cells of ``inp`` (H, W, C) read by output (row, col), 0 where they fall on padding; and the mask."""
    rows, cols = ah.taps(row), aw.taps(col)
    h, w, c = inp.shape
    patch = np.zeros((len(rows), len(cols), c), np.float64)
    pad = np.ones((len(rows), len(cols)), bool)
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            if 0 <= r < h and 0 <= q < w:
                patch[i, j], pad[i, j] = inp[r, q], False
    return patch, pad, rows, cols


def _symmetric(ah, aw):
    """The same axes under PyTorch's symmetric padding: both sides padded as TensorFlow pads the larger one."""
    from dataclasses import replace

    return replace(ah, before=ah.after), replace(aw, before=aw.after)


def _activate(value: float, activation) -> float:
    from cnnlab.nn.layers import ACTIVATIONS

    fn = ACTIVATIONS.get(activation)
    return float(fn(torch.tensor([[value]], dtype=torch.float64))[0, 0]) if fn else value


def _conv_cell(layer, inp, row, col, channel) -> dict:
    h, w, cin = inp.shape
    ah, aw = axes_for(h, w, layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding)
    weight = layer.weight.detach().double().permute(2, 3, 1, 0).cpu().numpy()  # (kh, kw, in, out)
    kernel = weight[:, :, :, channel]
    bias = float(layer.bias.detach()[channel]) if layer.bias is not None else 0.0

    def side(axes):
        patch, pad, rows, cols = _window(inp, *axes, row, col)
        products = patch * kernel
        per_channel = products.sum(axis=(0, 1))
        pre = float(per_channel.sum()) + bias
        return {
            "rows": rows,
            "cols": cols,
            "patch": patch.round(6).tolist(),
            "padding_mask": pad.tolist(),
            "products": products.round(6).tolist(),
            "per_input_channel": per_channel.round(6).tolist(),
            "sum": round(float(per_channel.sum()), 6),
            "pre_activation": round(pre, 6),
            "output": round(_activate(pre, layer.activation), 6),
        }

    out = {
        "kernel": kernel.round(6).tolist(),
        "bias": round(bias, 6),
        "activation": layer.activation or "linear",
        "padding": {"top": ah.before, "bottom": ah.after, "left": aw.before, "right": aw.after},
        "tensorflow": side((ah, aw)),
    }
    if not (ah.symmetric and aw.symmetric):
        out["pytorch"] = side(_symmetric(ah, aw))
    return out


def _pool_cell(layer, inp, row, col, channel) -> dict:
    h, w, _ = inp.shape
    ah, aw = axes_for(h, w, layer.pool_size, layer.strides, 1, layer.padding)
    patch, pad, rows, cols = _window(inp[:, :, channel : channel + 1], ah, aw, row, col)
    real = patch[:, :, 0][~pad]
    if layer.mode == "max":  # padding cells never win: TensorFlow pads max pooling with -inf
        scores = np.where(pad, -np.inf, patch[:, :, 0])
        winner = np.unravel_index(int(np.argmax(scores)), scores.shape)
        result = {"winner": [int(winner[0]), int(winner[1])], "output": round(float(scores[winner]), 6)}
    else:  # TensorFlow's average counts the real cells only
        result = {"count": int(real.size), "sum": round(float(real.sum()), 6), "output": round(float(real.mean()), 6)}
    return {
        "mode": layer.mode,
        "rows": rows,
        "cols": cols,
        "window": patch[:, :, 0].round(6).tolist(),
        "padding_mask": pad.tolist(),
        **result,
    }


def _softmax_terms(logits: np.ndarray, classes) -> dict:
    z = logits.astype(np.float64)
    shifted = np.exp(z - z.max())  # exp(z - max): the same ratios, and no overflow
    return {
        "classes": list(classes),
        "logits": z.round(6).tolist(),
        "max_logit": round(float(z.max()), 6),
        "exp_shifted": shifted.round(6).tolist(),
        "sum": round(float(shifted.sum()), 6),
        "probabilities": (shifted / shifted.sum()).round(6).tolist(),
    }


def _inbound(model, layer: str) -> list[str | None]:
    """The layers whose outputs ``layer`` reads in the graph (its first call's; None for the model input), a
    nested model's layers by their outer/inner names."""
    nodes = model.flat_nodes()
    names = {out: name for name, _, out in nodes}
    ins = next(ins for name, ins, _ in nodes if name == layer)
    return [names.get(k) for k in ins]


def _merge_cell(layer, inputs: list[np.ndarray], sources, row, col, channel) -> dict:
    """Which inputs made a merged cell: each input's value there (Add, Multiply, ...), or which input and
    which of its channels a Concatenate's cell comes from."""
    names = [s or "the model input" for s in sources]
    if layer.kind == "Concatenate" and len(inputs[0].shape) == 3 and layer._axis(3) == 2:
        start = 0
        for name, a in zip(names, inputs, strict=True):
            if channel < start + a.shape[2]:
                return {"from": name, "from_channel": channel - start}
            start += a.shape[2]
    cell = [float(a[min(row, a.shape[0] - 1), min(col, a.shape[1] - 1), min(channel, a.shape[2] - 1)]) for a in inputs]
    return {"inputs": [{"from": n, "value": round(v, 6)} for n, v in zip(names, cell, strict=True)]}


def explain_cell(run, image, layer: str, row: int = 0, col: int = 0, channel: int = 0) -> dict:
    """How output cell (``row``, ``col``, ``channel``) of ``layer`` was computed for one image (H, W, C)
    of a :class:`cnnlab.Run`; a layer that gives one score per class is explained as its softmax."""
    model, x, classes, _ = model_and_input(run, image[None] if np.asarray(image).ndim == 3 else image)
    if _sequential_body(model) is None:
        raise InputError("Cell computations read a Sequential model layer by layer; this run holds a custom model.")
    layers = dict(model.walk())
    names = list(layers)
    if layer not in layers:
        raise InputError(f"No layer {layer!r}. Layers: {', '.join(names)}.")
    index = names.index(layer)
    module = layers[layer]
    sources = _inbound(model, layer)  # the layers whose outputs this one reads, None for the model input
    with evaluating(model), torch.inference_mode():
        y, outputs = forward_capturing(model, x, [layer] + [s for s in sources if s])
    out = to_numpy_nhwc(outputs[layer])[0]
    inputs = [to_numpy_nhwc(outputs[s])[0] if s else to_numpy_nhwc(x)[0] for s in sources]
    inp = inputs[0]
    kind = module.kind
    base = {"layer": layer, "kind": kind}
    if out.ndim == 1:  # a vector: the class scores are explained by their softmax, other units are not cells
        if index != len(names) - 1 or out.shape[0] != len(classes or ()):
            raise InputError(f"'{layer}' outputs {out.shape[0]} values; click a cell of a convolution or pooling map.")
        softmax = module.outputs_probabilities
        if softmax and kind == "Dense":  # the logits before the layer's own softmax
            weight, bias = module.weight.detach().double().cpu().numpy(), module.bias
            logits = weight @ inp.astype(np.float64) + (bias.detach().double().cpu().numpy() if bias is not None else 0)
        else:
            logits = inp if softmax else out
        return {**base, "softmax": _softmax_terms(logits, classes)}
    ho, wo, co = out.shape
    if not (0 <= row < ho and 0 <= col < wo and 0 <= channel < co):
        raise InputError(f"Cell ({row}, {col}) channel {channel} is outside '{layer}' ({ho}x{wo}x{co}).")
    base.update(row=row, col=col, channel=channel, value=round(float(out[row, col, channel]), 6))
    if len(inputs) > 1:
        return {**base, **_merge_cell(module, inputs, sources, row, col, channel)}
    if kind == "Conv2D":  # a grouped convolution's filter reads its group's channels
        per = module.filters // module.groups
        group = channel // per
        c = inp.shape[2] // module.groups
        return {**base, "group": group, **_conv_cell(module, inp[:, :, group * c : (group + 1) * c], row, col, channel)}
    if kind == "DepthwiseConv2D":  # output channel c * M + m reads input channel c only
        c = channel // module.depth_multiplier
        return {**base, "input_channel": c, **_conv_cell(module, inp[:, :, c : c + 1], row, col, channel)}
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return {**base, **_pool_cell(module, inp, row, col, channel)}
    return {**base, "input": round(float(inp[row, col, channel]), 6)} if inp.shape == out.shape else base
