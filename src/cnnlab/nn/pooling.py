"""Pooling layers: max and average pooling with TensorFlow's padding (padding cells absent, never 0), and
their global forms."""

from __future__ import annotations

from cnnlab.arith.padding import axes_for, normalize_padding, pair
from cnnlab.errors import InputError, ShapeError
from cnnlab.nn import functional
from cnnlab.nn.base import Layer, shape_text


class _Pool(Layer):
    mode = "max"
    keras_data_format = True

    def __init__(self, pool_size=2, strides=None, padding="valid", name: str | None = None):
        super().__init__(name)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = pair(strides, "strides") if strides is not None else self.pool_size
        self.padding = normalize_padding(padding)
        if not isinstance(self.padding, str):
            raise InputError(f"{self.kind} padding must be 'same' or 'valid' (Keras's words).")

    def infer(self, shape):
        self._require_map(shape)
        try:
            ah, aw = axes_for(shape[0], shape[1], self.pool_size, self.strides, 1, self.padding)
        except ShapeError as e:
            raise ShapeError(
                f"{self.kind} '{self.name}' cannot pool a {shape_text(shape)} input with pool_size "
                f"{shape_text(self.pool_size)} and padding='{self.padding}': {e}"
            ) from None
        return (ah.out, aw.out, shape[2])

    def forward(self, x):
        fn = functional.max_pool2d_nchw if self.mode == "max" else functional.avg_pool2d_nchw
        return fn(x, self.pool_size, self.strides, self.padding)

    def config(self):
        return {"pool_size": list(self.pool_size), "strides": list(self.strides), "padding": self.padding}

    def macs(self):
        ho, wo, c = self.output_shape
        return ho * wo * c * self.pool_size[0] * self.pool_size[1]


class MaxPooling2D(_Pool):
    kind = "MaxPooling2D"
    mode = "max"


class AveragePooling2D(_Pool):
    kind = "AveragePooling2D"
    mode = "avg"


class _GlobalPool(Layer):
    """One number per channel from the whole map: (H, W, C) -> (C,), or (1, 1, C) with ``keepdims=True``."""

    keras_data_format = True

    def __init__(self, keepdims: bool = False, name: str | None = None):
        super().__init__(name)
        if not isinstance(keepdims, bool):
            raise InputError(f"{self.kind} keepdims={keepdims!r}. Expected True or False.")
        self.keepdims = keepdims

    def infer(self, shape):
        self._require_map(shape)
        return (1, 1, shape[2]) if self.keepdims else (shape[2],)

    def config(self):
        return {"keepdims": True} if self.keepdims else {}

    def keras_config(self):
        return {**super().keras_config(), "keepdims": self.keepdims}

    def macs(self):
        h, w, c = self.input_shape
        return h * w * c


class GlobalAveragePooling2D(_GlobalPool):
    kind = "GlobalAveragePooling2D"

    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=self.keepdims)  # (N, C) or (N, C, 1, 1)


class GlobalMaxPooling2D(_GlobalPool):
    kind = "GlobalMaxPooling2D"

    def forward(self, x):
        return x.amax(dim=(2, 3), keepdim=self.keepdims)  # (N, C) or (N, C, 1, 1)
