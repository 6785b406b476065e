"""Layers that move cells without computing on them, as Keras has them: ``ZeroPadding2D``, ``Cropping2D``,
``UpSampling2D`` (nearest and bilinear), ``Identity``, and Keras's random preprocessing layers, which are the
identity at inference (:class:`Augmentation`)."""

from __future__ import annotations

import torch.nn.functional as F

from cnnlab.arith.padding import pair
from cnnlab.errors import InputError, ShapeError
from cnnlab.nn.base import Layer, shape_text


def _sides(value, what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's three ways to give rows and columns: n, (rows, cols), ((top, bottom), (left, right))."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (list, tuple)) for v in value):
        return pair(value[0], what, minimum=0), pair(value[1], what, minimum=0)
    rows, cols = pair(value, what, minimum=0)
    return (rows, rows), (cols, cols)


class ZeroPadding2D(Layer):
    """``ZeroPadding2D(padding=1)``: rows of zeros above and below, columns left and right."""

    kind = "ZeroPadding2D"
    keras_data_format = True

    def __init__(self, padding=1, name: str | None = None):
        super().__init__(name)
        self.padding = _sides(padding, "ZeroPadding2D padding")

    def infer(self, shape):
        self._require_map(shape)
        (t, b), (left, r) = self.padding
        return (shape[0] + t + b, shape[1] + left + r, shape[2])

    def forward(self, x):
        (t, b), (left, r) = self.padding
        return F.pad(x, (left, r, t, b))

    def config(self):
        return {"padding": [list(p) for p in self.padding]}


class Cropping2D(Layer):
    """``Cropping2D(cropping=((top, bottom), (left, right)))``: rows and columns cut from the edges."""

    kind = "Cropping2D"
    keras_data_format = True

    def __init__(self, cropping=((0, 0), (0, 0)), name: str | None = None):
        super().__init__(name)
        self.cropping = _sides(cropping, "Cropping2D cropping")

    def infer(self, shape):
        self._require_map(shape)
        (t, b), (left, r) = self.cropping
        h, w = shape[0] - t - b, shape[1] - left - r
        if h < 1 or w < 1:
            raise ShapeError(
                f"Cropping2D '{self.name}' crops {self.cropping} from a {shape_text(shape)} map: nothing left."
            )
        return (h, w, shape[2])

    def forward(self, x):
        (t, b), (left, r) = self.cropping
        return x[:, :, t : x.shape[2] - b, left : x.shape[3] - r]

    def config(self):
        return {"cropping": [list(p) for p in self.cropping]}


class UpSampling2D(Layer):
    """``UpSampling2D(size=2, interpolation="nearest")``: each cell repeated ``size`` times along each axis, or
    bilinear resizing with TensorFlow's half-pixel centres and no antialiasing."""

    kind = "UpSampling2D"
    keras_data_format = True

    def __init__(self, size=2, interpolation: str = "nearest", name: str | None = None):
        super().__init__(name)
        self.size = pair(size, "UpSampling2D size")
        if interpolation not in ("nearest", "bilinear"):
            raise InputError(f"UpSampling2D interpolation={interpolation!r}. Expected 'nearest' or 'bilinear'.")
        self.interpolation = interpolation

    def infer(self, shape):
        self._require_map(shape)
        return (shape[0] * self.size[0], shape[1] * self.size[1], shape[2])

    def forward(self, x):
        if self.interpolation == "nearest":
            return x.repeat_interleave(self.size[0], 2).repeat_interleave(self.size[1], 3)
        return F.interpolate(x, scale_factor=self.size, mode="bilinear", align_corners=False)

    def config(self):
        return {"size": list(self.size), "interpolation": self.interpolation}

    def macs(self):
        return (
            0
            if self.interpolation == "nearest"
            else 4 * self.output_shape[0] * self.output_shape[1] * self.output_shape[2]
        )


class Identity(Layer):
    """``Identity()``: the input, unchanged."""

    kind = "Identity"
    passes_at_inference = True

    def forward(self, x):
        return x


AUGMENTATIONS = (
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
    "RandomHue",
    "RandomSaturation",
    "RandomSharpness",
    "RandomGrayscale",
    "RandomErasing",
    "RandomGaussianBlur",
    "RandomPosterization",
    "RandomColorJitter",
    "AutoContrast",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout2D",
)


class Augmentation(Layer):
    """One of Keras's random preprocessing layers (``RandomFlip``, ``RandomRotation``, ...; the noise layers too):
    the identity at inference, which is all cnnlab computes with it; it keeps its Keras config to write it back.
    cnnlab's own augmentation is ``cnnlab train --augment``."""

    kind = "Augmentation"
    passes_at_inference = True
    note = "the identity at inference; cnnlab does not apply it in training (use --augment)"

    def __init__(self, keras_class: str = "RandomFlip", settings: dict | None = None, name: str | None = None):
        super().__init__(name)
        if keras_class not in AUGMENTATIONS:
            raise InputError(f"Augmentation {keras_class!r}. Expected one of: {', '.join(AUGMENTATIONS)}.")
        self.keras_class, self.settings = keras_class, dict(settings or {})

    @classmethod
    def from_keras(cls, cfg, keras_class="RandomFlip"):
        keep = {k: v for k, v in cfg.items() if k not in ("name", "trainable", "dtype") and not isinstance(v, dict)}
        return cls(keras_class, keep, name=cfg.get("name"))

    def forward(self, x):
        return x

    def config(self):
        return {"keras_class": self.keras_class, "settings": dict(self.settings)}

    def keras_config(self):
        return dict(self.settings)
