"""Kernels of a convolution layer, and the tutorials' min-max normalization for looking at them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.errors import InputError
from cnnlab.inspect.capture import conv_layers, kernels_of, select
from cnnlab.shown import Shown, Table


@dataclass(frozen=True, repr=False)
class Filters(Shown):
    """Printed: the layer, its kernels' shape and range; in a notebook each filter as an image (:meth:`plot`)."""

    layer: str
    kernels: np.ndarray  # (kh, kw, in, out), HWIO as in tf.nn.conv2d
    normalized: np.ndarray  # the same, min-max scaled to [0, 1] over the whole layer

    _figure = "cnnlab.viz.layers:filter_figure"

    def table(self) -> Table:
        kh, kw, cin, cout = self.kernels.shape
        k = self.kernels
        lines = (
            f"weights {k.min():.4g}..{k.max():.4g}, mean {k.mean():.4g}; shown min-max scaled over the layer",
            "kernels: HWIO, as tf.nn.conv2d; .images(): one image a filter, (out, kh, kw, in)",
        )
        return Table(f"{self.layer}: {cout} filters of {kh}x{kw}x{cin}", lines=lines)

    def images(self, mode: str = "auto") -> np.ndarray:
        """Filters as images, NHWC as every image cnnlab returns: (out, kh, kw, in), one image a filter with its
        input channels last: RGB when there are 3 (``mode='rgb'`` insists on it), else ``in`` gray planes."""
        n = self.normalized
        if mode == "rgb" and n.shape[2] != 3:
            raise InputError(f"Layer '{self.layer}' has {n.shape[2]} input channels; RGB needs 3.")
        return n.transpose(3, 0, 1, 2)  # (kh, kw, in, out) -> (out, kh, kw, in)


def filters(model, layer: str) -> Filters:
    """The kernels of a convolution layer. Normalization: ``(k - min) / (max - min)`` over the whole layer,
    as the tutorials do, so that filters stay comparable with one another (0 = most negative weight)."""
    ((name, module),) = select(model, layer)
    kernels = kernels_of(module)
    if kernels is None:
        convs = ", ".join(conv_layers(model)) or "none"
        raise InputError(f"Layer '{name}' has no convolution kernels. Layers that do: {convs}.")
    with torch.no_grad():
        k = kernels.cpu().numpy()  # (kh, kw, I, O)
    lo, hi = float(k.min()), float(k.max())
    norm = (k - lo) / (hi - lo) if hi > lo else np.zeros_like(k)
    return Filters(name, k, norm)
