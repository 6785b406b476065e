"""The NumPy reference: the issue's exact numbers, and agreement with torch.nn.functional."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from cnnlab.arith import avg_pool2d, conv2d, max_pool2d, padding_for
from cnnlab.errors import InputError, ShapeError
from strategies import conv_cases, tf_pads

IMAGE = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
TAPS = np.ones((2, 2, 1, 3)) * np.array([1.0, 10.0, -1.0])  # every tap is [1, 10, -1]


def test_valid_and_same_on_the_3x3_image():
    ones = np.ones((2, 2, 1, 1))
    np.testing.assert_array_equal(conv2d(IMAGE, ones, 1, "valid")[0, :, :, 0], [[12, 16], [24, 28]])
    np.testing.assert_array_equal(conv2d(IMAGE, ones, 1, "same")[0, :, :, 0], [[12, 16, 9], [24, 28, 15], [15, 17, 9]])


def test_three_output_channels_then_max_pool_same():
    v = conv2d(IMAGE, TAPS, 1, "VALID")
    assert v.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(v[0], [[[12, 120, -12], [16, 160, -16]], [[24, 240, -24], [28, 280, -28]]])
    p = max_pool2d(v, 2, 1, "SAME")
    np.testing.assert_array_equal(p[0], [[[28, 280, -12], [28, 280, -16]], [[28, 280, -24], [28, 280, -28]]])


def test_avg_pool_divides_by_real_cells():
    v = conv2d(IMAGE, TAPS, 1, "valid")[..., :1]  # [[12, 16], [24, 28]]
    p = avg_pool2d(v, 2, 1, "same")[0, :, :, 0]
    np.testing.assert_allclose(p, [[(12 + 16 + 24 + 28) / 4, (16 + 28) / 2], [(24 + 28) / 2, 28]])


def test_single_image_in_single_image_out():
    out = conv2d(IMAGE[0], np.ones((2, 2, 1, 1)), padding="valid")
    assert out.shape == (2, 2, 1)


def test_28x28_shapes_through_conv_and_pool():
    x = np.random.default_rng(0).random((1, 28, 28, 1))
    y = conv2d(x, np.ones((3, 3, 1, 2)), 2, "same")
    assert y.shape == (1, 14, 14, 2)
    assert max_pool2d(y, 2, 2, "same").shape == (1, 7, 7, 2)
    assert max_pool2d(np.ones((1, 7, 7, 1)), 2, 2, "same").shape == (1, 4, 4, 1)


def test_channel_mismatch_names_both_counts():
    with pytest.raises(ShapeError, match=r"kernel has 2 input channel\(s\).*input has 1"):
        conv2d(IMAGE, np.ones((2, 2, 2, 1)))


def test_empty_input():
    with pytest.raises(ShapeError, match="empty"):
        conv2d(np.zeros((1, 0, 3, 1)), np.ones((1, 1, 1, 1)))


def test_kernel_larger_than_input_valid():
    with pytest.raises(ShapeError, match="larger than the VALID input"):
        conv2d(IMAGE, np.ones((4, 4, 1, 1)))


def test_stride_below_one():
    with pytest.raises(InputError, match=r"strides=\(0, 1\) is below 1"):
        conv2d(IMAGE, np.ones((2, 2, 1, 1)), strides=(0, 1))


# --- agreement with PyTorch, padding made explicit -------------------------------------------------------


def torch_conv(x, k, strides, padding, dilation):
    """torch.nn.functional.conv2d after F.pad with the per-side padding of TensorFlow's rule, computed by the
    test's own tf_pads (not cnnlab's padding_for, so a wrong before/after split in cnnlab is caught)."""
    top, bottom = tf_pads(x.shape[1], k.shape[0], strides[0], dilation[0], padding, 0)
    left, right = tf_pads(x.shape[2], k.shape[1], strides[1], dilation[1], padding, 1)
    xt = F.pad(torch.from_numpy(x).permute(0, 3, 1, 2), (left, right, top, bottom))
    wt = torch.from_numpy(k).permute(3, 2, 0, 1)
    return F.conv2d(xt, wt, stride=strides, dilation=dilation).permute(0, 2, 3, 1).numpy()


def torch_pool(x, size, strides, padding, mode):
    top, bottom = tf_pads(x.shape[1], size[0], strides[0], 1, padding, 0)
    left, right = tf_pads(x.shape[2], size[1], strides[1], 1, padding, 1)
    pads = (left, right, top, bottom)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    if mode == "max":
        out = F.max_pool2d(F.pad(xt, pads, value=float("-inf")), size, strides)
    else:
        total = F.avg_pool2d(F.pad(xt, pads), size, strides, divisor_override=1)
        count = F.avg_pool2d(F.pad(torch.ones_like(xt), pads), size, strides, divisor_override=1)
        out = total / count
    return out.permute(0, 2, 3, 1).numpy()


@given(conv_cases())
def test_conv2d_matches_torch(case):
    x, k, strides, padding, dilation = case
    np.testing.assert_allclose(
        conv2d(x, k, strides, padding, dilation),
        torch_conv(x, k, strides, padding, dilation),
        rtol=1e-10,
        atol=1e-10,
    )


@given(conv_cases(pooling=True), st.sampled_from(["max", "avg"]))
def test_pooling_matches_torch(case, mode):
    x, k, strides, padding, _ = case
    size = k.shape[:2]
    fn = max_pool2d if mode == "max" else avg_pool2d
    np.testing.assert_allclose(
        fn(x, size, strides, padding), torch_pool(x, size, strides, padding, mode), rtol=1e-10, atol=1e-10
    )


@given(conv_cases(pooling=True))
def test_max_pool_never_sees_a_zero_that_was_not_there(case):
    x, k, strides, padding, _ = case
    neg = -np.abs(x) - 1.0  # all inputs strictly negative
    out = max_pool2d(neg, k.shape[:2], strides, padding)
    assert (out < 0).all()


def test_padding_for_splits_as_tensorflow_documents():
    """cnnlab's padding_for against the test's own statement of TensorFlow's rule, over every small case."""
    for n in range(1, 30):
        for k in range(1, 8):
            for s in range(1, 5):
                for d in (1, 2):
                    a = padding_for(n, k, s, d, "same")
                    assert (a.before, a.after) == tf_pads(n, k, s, d, "same", 0), (n, k, s, d)
                    assert a.out == -(-n // s)
