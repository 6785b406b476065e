"""The convolution layers, as Keras has them: ``Conv2D`` (``groups`` too), ``DepthwiseConv2D``,
``SeparableConv2D`` and ``Conv2DTranspose``, with TensorFlow's SAME/VALID padding and output sizes.

Kernels are kept in PyTorch's layouts (OIHW; a depthwise kernel as a grouped one, output channel ``c * M + m``
for input channel ``c`` and multiplier ``m``, which is TensorFlow's order) and converted to Keras's (HWIO,
``(kh, kw, C, M)``) by each layer's codec (:data:`cnnlab.nn.base.LAYOUTS`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.arith.padding import axes_for, normalize_padding, pair
from cnnlab.errors import InputError, ShapeError
from cnnlab.nn import functional
from cnnlab.nn.base import INITIALIZERS, Layer, _init, activate, check_activation, shape_text


def _whole(value, what: str, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what}={value!r}. Expected a whole number >= 1, e.g. {example}.")
    return value


class _Conv(Layer):
    """What the convolutions share: kernel size, strides, TensorFlow's padding, dilation, activation, bias."""

    keras_data_format = True

    def __init__(self, kernel_size, strides, padding, dilation_rate, activation, use_bias, kernel_initializer, name):
        super().__init__(name)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        self.padding = normalize_padding(padding)
        if not isinstance(self.padding, str):
            raise InputError(f"{self.kind} padding must be 'same' or 'valid' (Keras's words).")
        self.activation = check_activation(activation)
        self.use_bias = bool(use_bias)
        if kernel_initializer not in INITIALIZERS:
            raise InputError(
                f"Unknown kernel_initializer {kernel_initializer!r}. Expected one of: {', '.join(INITIALIZERS)}."
            )
        self.kernel_initializer = kernel_initializer

    def _axes(self, shape):
        self._require_map(shape)
        try:
            return axes_for(shape[0], shape[1], self.kernel_size, self.strides, self.dilation_rate, self.padding)
        except ShapeError as e:
            raise ShapeError(
                f"{self.kind} '{self.name}' cannot apply a {shape_text(self.kernel_size)} kernel to a "
                f"{shape_text(shape)} input with padding='{self.padding}': {e}"
            ) from None

    def _bias(self, n: int):
        return nn.Parameter(torch.zeros(n)) if self.use_bias else None

    def forward(self, x):
        return activate(self.convolve(x), self.activation)

    def config(self):
        return {
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }


class Conv2D(_Conv):
    """``Conv2D(filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1, activation=None,
    use_bias=True)``. With ``groups=g`` the input channels and the filters are split into g groups, each
    convolved on its own (TensorFlow's grouped convolution)."""

    kind = "Conv2D"
    keras_variables = (("weight", "conv", "kernel"), ("bias", "vector", "bias"))

    def __init__(
        self,
        filters: int,
        kernel_size=3,
        strides=1,
        padding="valid",
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        groups: int = 1,
        name: str | None = None,
    ):
        self.filters = _whole(filters, "Conv2D filters", "Conv2D(32, 3)")
        self.groups = _whole(groups, "Conv2D groups", "groups=2")
        super().__init__(kernel_size, strides, padding, dilation_rate, activation, use_bias, kernel_initializer, name)
        if filters % groups:
            raise InputError(f"Conv2D filters={filters} is not a multiple of groups={groups}.")

    def infer(self, shape):
        ah, aw = self._axes(shape)
        if shape[2] % self.groups:
            raise ShapeError(
                f"Conv2D '{self.name}' has groups={self.groups}, but its input has {shape[2]} channels: expected "
                "a multiple of groups."
            )
        return (ah.out, aw.out, self.filters)

    def create(self, shape):
        c, (kh, kw) = shape[2] // self.groups, self.kernel_size
        self.weight = nn.Parameter(torch.empty(self.filters, c, kh, kw))  # (O, I/groups, kh, kw)
        _init(self.weight, self.kernel_initializer, kh * kw * c, kh * kw * self.filters)
        self.bias = self._bias(self.filters)

    def convolve(self, x):
        """The convolution without the activation."""
        return functional.conv2d_nchw(
            x, self.weight, self.bias, self.strides, self.padding, self.dilation_rate, self.groups
        )

    def config(self):
        return {"filters": self.filters, **super().config(), **({"groups": self.groups} if self.groups > 1 else {})}

    def formula(self):
        (kh, kw), c = self.kernel_size, self.input_shape[2] // self.groups
        n = kh * kw * c * self.filters + (self.filters if self.use_bias else 0)
        bias = f" + {self.filters}" if self.use_bias else ""
        return f"{kh}·{kw}·{c}·{self.filters}{bias} = {n:,}"

    def macs(self):
        ho, wo, o = self.output_shape
        return ho * wo * o * self.kernel_size[0] * self.kernel_size[1] * self.input_shape[2] // self.groups


class DepthwiseConv2D(_Conv):
    """``DepthwiseConv2D(kernel_size, strides=1, padding="valid", depth_multiplier=1, ...)``: each input channel
    convolved with its own ``depth_multiplier`` kernels, C·M output channels."""

    kind = "DepthwiseConv2D"
    keras_variables = (("weight", "depthwise", "kernel"), ("bias", "vector", "bias"))

    def __init__(
        self,
        kernel_size=3,
        strides=1,
        padding="valid",
        depth_multiplier: int = 1,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        name: str | None = None,
    ):
        self.depth_multiplier = _whole(depth_multiplier, f"{self.kind} depth_multiplier", "depth_multiplier=2")
        super().__init__(
            kernel_size, strides, padding, dilation_rate, activation, use_bias, depthwise_initializer, name
        )

    def infer(self, shape):
        ah, aw = self._axes(shape)
        return (ah.out, aw.out, shape[2] * self.depth_multiplier)

    def _depthwise_kernels(self, channels: int) -> nn.Parameter:
        """``depth_multiplier`` kernels an input channel, as a grouped kernel (C·M, 1, kh, kw)."""
        m, (kh, kw) = self.depth_multiplier, self.kernel_size
        kernels = nn.Parameter(torch.empty(channels * m, 1, kh, kw))
        _init(kernels, self.kernel_initializer, kh * kw, kh * kw * m)  # Keras's fans for (kh, kw, C, M)
        return kernels

    def _depthwise(self, x, kernels, bias):
        """Each input channel convolved with its own kernels (a convolution of as many groups as channels)."""
        c = self.input_shape[2]
        return functional.conv2d_nchw(x, kernels, bias, self.strides, self.padding, self.dilation_rate, c)

    def create(self, shape):
        self.weight = self._depthwise_kernels(shape[2])
        self.bias = self._bias(shape[2] * self.depth_multiplier)

    def convolve(self, x):
        return self._depthwise(x, self.weight, self.bias)

    def config(self):
        return {**super().config(), "depth_multiplier": self.depth_multiplier}

    def formula(self):
        (kh, kw), c, m = self.kernel_size, self.input_shape[2], self.depth_multiplier
        n = kh * kw * c * m + (c * m if self.use_bias else 0)
        return f"{kh}·{kw}·{c}·{m}{f' + {c * m}' if self.use_bias else ''} = {n:,}"

    def macs(self):
        ho, wo, o = self.output_shape
        return ho * wo * o * self.kernel_size[0] * self.kernel_size[1]


class SeparableConv2D(DepthwiseConv2D):
    """``SeparableConv2D(filters, kernel_size, ...)``: a depthwise convolution (``depth_multiplier`` kernels an
    input channel) then a 1x1 convolution to ``filters`` channels, the bias and the activation."""

    kind = "SeparableConv2D"
    keras_variables = (
        ("depthwise", "depthwise", "depthwise_kernel"),
        ("pointwise", "conv", "pointwise_kernel"),
        ("bias", "vector", "bias"),
    )

    def __init__(
        self,
        filters: int,
        kernel_size=3,
        strides=1,
        padding="valid",
        depth_multiplier: int = 1,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        name: str | None = None,
    ):
        self.filters = _whole(filters, "SeparableConv2D filters", "SeparableConv2D(32, 3)")
        super().__init__(
            kernel_size,
            strides,
            padding,
            depth_multiplier,
            dilation_rate,
            activation,
            use_bias,
            depthwise_initializer,
            name,
        )

    def infer(self, shape):
        ah, aw = self._axes(shape)
        return (ah.out, aw.out, self.filters)

    def create(self, shape):
        cm = shape[2] * self.depth_multiplier
        self.depthwise = self._depthwise_kernels(shape[2])
        self.pointwise = nn.Parameter(torch.empty(self.filters, cm, 1, 1))
        _init(self.pointwise, self.kernel_initializer, cm, self.filters)
        self.bias = self._bias(self.filters)

    def convolve(self, x):
        return F.conv2d(self._depthwise(x, self.depthwise, None), self.pointwise, self.bias)

    def config(self):
        return {"filters": self.filters, **super().config()}

    def formula(self):
        (kh, kw), c, m, f = self.kernel_size, self.input_shape[2], self.depth_multiplier, self.filters
        n = kh * kw * c * m + c * m * f + (f if self.use_bias else 0)
        return f"{kh}·{kw}·{c}·{m} + {c * m}·{f}{f' + {f}' if self.use_bias else ''} = {n:,}"

    def macs(self):
        ho, wo, f = self.output_shape
        cm = self.input_shape[2] * self.depth_multiplier
        return ho * wo * cm * (self.kernel_size[0] * self.kernel_size[1] + f)


def transposed_length(size: int, kernel: int, stride: int, padding: str, output_padding: int | None) -> int:
    """TensorFlow's output length of a transposed convolution (Keras's ``deconv_output_length``); ``kernel`` is
    the dilated kernel's extent."""
    if output_padding is None:
        return size * stride + max(kernel - stride, 0) if padding == "valid" else size * stride
    pad = kernel // 2 if padding == "same" else 0
    return (size - 1) * stride + kernel - 2 * pad + output_padding


class Conv2DTranspose(_Conv):
    """``Conv2DTranspose(filters, kernel_size, strides=1, padding="valid", output_padding=None, ...)``: the
    gradient of a convolution, as TensorFlow computes it. The full transposed result is cut to TensorFlow's
    output size, the cut starting at half the difference (rounded down) for SAME and at 0 for VALID."""

    kind = "Conv2DTranspose"
    keras_variables = (
        ("weight", "conv", "kernel"),
        ("bias", "vector", "bias"),
    )  # Keras's (kh, kw, filters, C); torch's (C, f, kh, kw)

    def __init__(
        self,
        filters: int,
        kernel_size=3,
        strides=1,
        padding="valid",
        output_padding=None,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        name: str | None = None,
    ):
        self.filters = _whole(filters, "Conv2DTranspose filters", "Conv2DTranspose(16, 3, strides=2)")
        super().__init__(kernel_size, strides, padding, dilation_rate, activation, use_bias, kernel_initializer, name)
        self.output_padding = None if output_padding is None else pair(output_padding, "output_padding", minimum=0)

    def _extent(self, axis: int) -> int:
        return (self.kernel_size[axis] - 1) * self.dilation_rate[axis] + 1

    def infer(self, shape):
        self._require_map(shape)
        pads = self.output_padding or (None, None)
        h, w = (transposed_length(shape[i], self._extent(i), self.strides[i], self.padding, pads[i]) for i in (0, 1))
        if h < 1 or w < 1:
            raise ShapeError(f"Conv2DTranspose '{self.name}' makes an empty map from {shape_text(shape)}.")
        return (h, w, self.filters)

    def create(self, shape):
        (kh, kw), c = self.kernel_size, shape[2]
        self.weight = nn.Parameter(torch.empty(c, self.filters, kh, kw))
        _init(
            self.weight, self.kernel_initializer, kh * kw * self.filters, kh * kw * c
        )  # Keras's fans of (kh, kw, f, C)
        self.bias = self._bias(self.filters)

    def convolve(self, x):
        full = F.conv_transpose2d(x, self.weight, None, self.strides, 0, 0, 1, self.dilation_rate)
        out_h, out_w, _ = self.output_shape
        starts = []
        for axis, out in ((0, out_h), (1, out_w)):
            total = full.shape[2 + axis] - out
            starts.append(max(total, 0) // 2 if self.padding == "same" else 0)
        grow_h, grow_w = max(out_h - full.shape[2], 0), max(out_w - full.shape[3], 0)  # rows beyond: only the bias
        if grow_h or grow_w:
            full = F.pad(full, (0, grow_w, 0, grow_h))
        y = full[:, :, starts[0] : starts[0] + out_h, starts[1] : starts[1] + out_w]
        y = y.contiguous(memory_format=torch.channels_last)
        return y + self.bias.view(1, -1, 1, 1) if self.bias is not None else y

    def config(self):
        extra = {"output_padding": list(self.output_padding)} if self.output_padding else {}
        return {"filters": self.filters, **super().config(), **extra}

    def formula(self):
        (kh, kw), c, f = self.kernel_size, self.input_shape[2], self.filters
        n = kh * kw * c * f + (f if self.use_bias else 0)
        return f"{kh}·{kw}·{f}·{c}{f' + {f}' if self.use_bias else ''} = {n:,}"

    def macs(self):
        h, w, c = self.input_shape
        return h * w * c * self.filters * self.kernel_size[0] * self.kernel_size[1]
