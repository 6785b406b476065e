"""The layers of keras.applications and the rest of Keras's vocabulary, each against a NumPy computation
written from its definition (Keras's documentation): depthwise, separable, grouped and transposed
convolutions, padding, cropping, upsampling, ReLU's arguments, the activations, the normalizations. (Each is
also checked against TensorFlow's own numbers in test_keras_applications.py.)"""

import math

import numpy as np
import pytest
import torch

from cnnlab.arith.reference import conv2d as np_conv2d
from cnnlab.nn import (
    Conv2D,
    Conv2DTranspose,
    Cropping2D,
    DepthwiseConv2D,
    GlobalAveragePooling2D,
    Input,
    LayerNormalization,
    Normalization,
    PReLU,
    ReLU,
    Rescaling,
    SeparableConv2D,
    Sequential,
    UpSampling2D,
    ZeroPadding2D,
)
from cnnlab.nn.base import ACTIVATIONS

RNG = np.random.default_rng(0)


def run(layer, x: np.ndarray) -> np.ndarray:
    """One layer on NHWC ``x``, through a Sequential as a user builds it."""
    m = Sequential([Input(x.shape[1:]), layer]).eval()
    with torch.no_grad():
        y = m(torch.from_numpy(x).float().permute(0, 3, 1, 2))
    return y.permute(0, 2, 3, 1).numpy() if y.dim() == 4 else y.numpy()


def keras_kernel(layer, name="weight"):
    """The layer's variable ``name`` in Keras's layout, as its codec writes it."""
    names = [n for n, _, _ in layer.keras_variables if getattr(layer, n) is not None]
    return dict(zip(names, layer.keras_arrays(), strict=True))[name]


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_convolves_each_channel_with_its_own_kernels_in_tensorflows_channel_order(multiplier):
    x = RNG.normal(size=(2, 7, 6, 3)).astype(np.float32)
    layer = DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=multiplier)
    y = run(layer, x)
    k = keras_kernel(layer)  # (kh, kw, C, M)
    for c in range(3):
        for m in range(multiplier):  # output channel c * M + m, as tf.nn.depthwise_conv2d orders them
            want = np_conv2d(x[..., c : c + 1], k[:, :, c : c + 1, m : m + 1], 2, "same")[..., 0]
            np.testing.assert_allclose(
                y[..., c * multiplier + m], want + layer.bias[c * multiplier + m].item(), atol=1e-5
            )


def test_separable_is_a_depthwise_then_a_pointwise_convolution():
    x = RNG.normal(size=(1, 6, 6, 2)).astype(np.float32)
    layer = SeparableConv2D(5, 3, padding="valid", depth_multiplier=2, activation="relu")
    y = run(layer, x)
    dw, pw = keras_kernel(layer, "depthwise"), keras_kernel(layer, "pointwise")
    depth = np.concatenate(
        [np_conv2d(x[..., c : c + 1], dw[:, :, c : c + 1, m : m + 1]) for c in range(2) for m in range(2)], axis=-1
    )
    want = np.maximum(np.einsum("nhwc,co->nhwo", depth, pw[0, 0]) + layer.bias.detach().numpy(), 0)
    np.testing.assert_allclose(y, want, atol=1e-5)
    assert layer.formula() == "3·3·2·2 + 4·5 + 5 = 61"


def test_grouped_convolution_is_one_convolution_a_group():
    x = RNG.normal(size=(1, 5, 5, 4)).astype(np.float32)
    layer = Conv2D(6, 3, padding="same", groups=2, use_bias=False)
    y = run(layer, x)
    k = keras_kernel(layer)  # (3, 3, 2, 6): each group's 3 filters see its 2 channels
    want = np.concatenate(
        [np_conv2d(x[..., 2 * g : 2 * g + 2], k[..., 3 * g : 3 * g + 3], 1, "same") for g in range(2)], -1
    )
    np.testing.assert_allclose(y, want, atol=1e-5)


@pytest.mark.parametrize(
    "size, strides, padding, output_padding, out",
    [
        (5, 2, "same", None, 10),
        (5, 2, "valid", None, 11),
        (4, 3, "valid", None, 12),
        (5, 2, "same", 1, 10),
        (5, 2, "valid", 1, 12),
    ],
)
def test_transposed_convolution_is_the_adjoint_of_the_convolution_it_undoes(
    size, strides, padding, output_padding, out
):
    """TensorFlow's conv2d_transpose is the gradient of conv2d: <conv(y), x> = <y, conv_transpose(x)> for every
    x and y, with the output size of Keras's rule (deconv_output_length)."""
    x = RNG.normal(size=(1, size, size, 2)).astype(np.float32)
    layer = Conv2DTranspose(3, 3, strides=strides, padding=padding, output_padding=output_padding, use_bias=False)
    z = run(layer, x)
    assert z.shape == (1, out, out, 3)
    y = RNG.normal(size=z.shape).astype(np.float64)
    k = keras_kernel(layer).astype(np.float64)  # (kh, kw, filters, C): a convolution from filters to C
    forward = np_conv2d(y, k, strides, padding)
    assert forward.shape == x.shape
    assert math.isclose(float((forward * x).sum()), float((y * z).sum()), rel_tol=1e-5)


def test_padding_cropping_and_upsampling_move_cells_as_keras_says():
    x = RNG.normal(size=(1, 3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(run(ZeroPadding2D(((1, 2), (0, 1))), x), np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0))))
    np.testing.assert_array_equal(run(ZeroPadding2D(1), x), np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))
    np.testing.assert_array_equal(run(Cropping2D(((1, 0), (1, 2))), x), x[:, 1:, 1:2])
    np.testing.assert_array_equal(run(UpSampling2D((2, 3)), x), x.repeat(2, axis=1).repeat(3, axis=2))
    # bilinear with half-pixel centres: output cell i samples input coordinate (i + 0.5) / 2 - 0.5, clamped
    up = run(UpSampling2D(2, interpolation="bilinear"), x)
    line = x[0, 0, :, 0]
    coords = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(up[0, 0, :, 0], np.interp(coords, np.arange(4), line), atol=1e-6)


def test_relu_arguments_and_keras_3_activations_by_their_definitions():
    x = np.linspace(-6, 6, 48, dtype=np.float32).reshape(1, 6, 8, 1)  # (no point at the threshold itself)
    # Keras: max_value if x >= max_value; x if threshold <= x < max_value; negative_slope * (x - threshold) otherwise
    want = np.where(x >= 2.5, 2.5, np.where(x >= 0.5, x, 0.2 * (x - 0.5)))
    np.testing.assert_allclose(run(ReLU(max_value=2.5, negative_slope=0.2, threshold=0.5), x), want, atol=1e-6)
    assert run(ReLU(), x).min() == 0 and ReLU().activation == "relu" and ReLU(6.0).activation != "relu"
    t = torch.from_numpy(x)
    definitions = {
        "relu6": np.clip(x, 0, 6),
        "hard_sigmoid": np.clip(x / 6 + 0.5, 0, 1),  # Keras 3's (Keras 2's was 0.2x + 0.5)
        "hard_swish": x * np.clip(x / 6 + 0.5, 0, 1),
        "swish": x / (1 + np.exp(-x)),
        "gelu": np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.ravel()]).reshape(x.shape),
        "selu": 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
        "softplus": np.log1p(np.exp(x)),
        "softsign": x / (1 + np.abs(x)),
        "mish": x * np.tanh(np.log1p(np.exp(x))),
        "elu": np.where(x > 0, x, np.exp(x) - 1),
    }
    for name, expected in definitions.items():
        np.testing.assert_allclose(ACTIVATIONS[name](t).numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_normalizations_and_per_channel_rescaling():
    x = RNG.normal(2, 3, size=(2, 4, 4, 3)).astype(np.float32)
    mean, var = [1.0, -1.0, 0.5], [4.0, 0.25, 1e-20]
    np.testing.assert_allclose(
        run(Normalization(mean, var), x), (x - mean) / np.maximum(np.sqrt(var), 1e-7), rtol=1e-5
    )  # Keras divides by max(sqrt(variance), epsilon)
    ln = LayerNormalization(epsilon=1e-3)
    mu, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(run(ln, x), (x - mu) / np.sqrt(v + 1e-3), atol=1e-5)
    np.testing.assert_allclose(run(Rescaling([1, 2, 3], offset=[0, 1, -1]), x), x * [1, 2, 3] + [0, 1, -1], rtol=1e-6)
    prelu = PReLU(shared_axes=[1, 2])
    m = Sequential([Input((4, 4, 3)), prelu])
    with torch.no_grad():
        prelu.alpha.copy_(torch.tensor([[[0.1, -0.5, 2.0]]]))
    want = np.where(x > 0, x, np.array([0.1, -0.5, 2.0]) * x)
    with torch.no_grad():
        got = m(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert prelu.alpha.shape == (1, 1, 3)  # one alpha a channel, in Keras's (H, W, C) layout
    np.testing.assert_allclose(run(GlobalAveragePooling2D(keepdims=True), x), x.mean((1, 2), keepdims=True), rtol=1e-5)


def test_filters_of_depthwise_separable_and_transposed_layers_are_one_kernel_an_output_channel():
    from cnnlab.inspect import filters

    m = Sequential(
        [
            Input((8, 8, 3)),
            DepthwiseConv2D(3, depth_multiplier=2, name="dw"),
            SeparableConv2D(4, 3, name="sep"),
            Conv2DTranspose(5, 3, strides=2, name="up"),
        ]
    )
    dw = filters(m, "dw").kernels
    keras_dw = keras_kernel(m.layer("dw"))  # (3, 3, 3 channels, 2 multipliers)
    assert dw.shape == (3, 3, 1, 6)
    np.testing.assert_array_equal(dw[:, :, 0, 2 * 1 + 1], keras_dw[:, :, 1, 1])  # channel c * M + m
    assert filters(m, "sep").kernels.shape == (3, 3, 1, 6)  # its depthwise kernels, one a channel of dw
    up = filters(m, "up").kernels  # each of the 5 filters over the 4 input channels
    np.testing.assert_array_equal(up.transpose(0, 1, 3, 2), keras_kernel(m.layer("up")))  # Keras: (kh, kw, 5, 4)
