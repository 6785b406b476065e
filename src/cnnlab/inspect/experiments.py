"""The tutorials' "random filters on a digit" experiment, computed with cnnlab's exact arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab import arith
from cnnlab.errors import InputError
from cnnlab.shown import Shown, Table


@dataclass(frozen=True, repr=False)
class RandomFilters(Shown):
    """Printed: the shapes each step makes and TensorFlow's formulas for them; in a notebook the same with the
    image, the filters, their maps and the pooled maps (:meth:`plot`)."""

    kernels: np.ndarray  # (3, 3, C, n), HWIO
    conv: np.ndarray  # (H/2, W/2, n): 3x3 stride 2 SAME
    pooled: np.ndarray  # (H/4, W/4, n): then 2x2 max pooling, stride 2 SAME
    explanation: list[str]  # the two shape computations
    image: np.ndarray | None = None  # the image (H, W, C) the filters ran over

    _figure = "cnnlab.viz.layers:random_filters_figure"

    def table(self) -> Table:
        h, w, c = self.image.shape if self.image is not None else ("?", "?", self.kernels.shape[2])
        n = self.kernels.shape[3]
        title = (
            f"{n} random 3x3 filters on a {h}x{w}x{c} image: {'x'.join(map(str, self.conv.shape))} after the "
            f"stride-2 SAME convolution, {'x'.join(map(str, self.pooled.shape))} after 2x2 max pooling"
        )
        return Table(title, lines=tuple(self.explanation))


def random_filters(image: np.ndarray, n: int = 5, seed: int = 0) -> RandomFilters:
    """N random 3x3 filters at stride 2 SAME over one image (H, W, C), then 2x2 pooling with stride 2 SAME.
    On a 28x28 MNIST digit: 14x14xN, then 7x7xN."""
    if not 1 <= n <= 256:
        raise InputError(f"n={n} random filters: expected 1..256.")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise InputError(f"image has shape {img.shape}; expected (H, W, C).")
    if img.max() > 1.0:
        img = img / 255.0
    rng = np.random.default_rng(seed)
    kernels = rng.normal(size=(3, 3, img.shape[2], n))
    conv_ex = arith.explain_conv(img, kernels, strides=2, padding="same")
    pool_ex = arith.explain_pool(conv_ex.output, 2, 2, "same", "max")
    lines = [f"conv 3x3 stride 2, {axis}: {f}" for axis, f in conv_ex.formulas().items()]
    lines += [f"max pool 2x2 stride 2, {axis}: {f}" for axis, f in pool_ex.formulas().items()]
    given = np.asarray(image)
    return RandomFilters(kernels, conv_ex.output[0], pool_ex.output[0], lines, given.reshape(img.shape))
