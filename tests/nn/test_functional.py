"""cnnlab.nn.functional against the NumPy reference, and differentiability."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from cnnlab import arith
from cnnlab.errors import ShapeError
from cnnlab.nn import functional as cf
from strategies import conv_cases


def cases(pooling=False):
    return conv_cases(pooling=pooling, dtype=np.float32, words=("same", "valid", "SAME"))


@given(cases(), st.booleans())
def test_conv2d_matches_reference(case, with_bias):
    x, k, strides, padding, dilation = case
    bias = np.random.default_rng(0).normal(size=k.shape[3]).astype(np.float32) if with_bias else None
    got = cf.conv2d(
        torch.from_numpy(x),
        torch.from_numpy(k),
        None if bias is None else torch.from_numpy(bias),
        strides,
        padding,
        dilation,
    )
    want = arith.conv2d(x, k, strides, padding, dilation) + (0 if bias is None else bias)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


@given(cases(pooling=True), st.sampled_from(["max", "avg"]))
def test_pooling_matches_reference(case, mode):
    x, k, strides, padding, _ = case
    size = k.shape[:2]
    ours = {"max": cf.max_pool2d, "avg": cf.avg_pool2d}[mode]
    ref = {"max": arith.max_pool2d, "avg": arith.avg_pool2d}[mode]
    got = ours(torch.from_numpy(x), size, strides, padding)
    np.testing.assert_allclose(got.numpy(), ref(x, size, strides, padding), rtol=1e-5, atol=1e-5)


def test_exact_issue_numbers_in_float32():
    x = torch.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    k = torch.ones(2, 2, 1, 3) * torch.tensor([1.0, 10.0, -1.0])
    v = cf.conv2d(x, k, padding="valid")
    p = cf.max_pool2d(v, 2, 1, "same")
    assert p[0].tolist() == [[[28, 280, -12], [28, 280, -16]], [[28, 280, -24], [28, 280, -28]]]
    same = cf.conv2d(x, torch.ones(2, 2, 1, 1), padding="same")
    assert same[0, :, :, 0].tolist() == [[12, 16, 9], [24, 28, 15], [15, 17, 9]]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_agrees_with_torch_same_at_stride_one():
    x = torch.randn(2, 7, 6, 3)
    k = torch.randn(4, 2, 3, 5)
    ours = cf.conv2d(x, k, padding="same")
    theirs = F.conv2d(x.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), padding="same").permute(0, 2, 3, 1)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("op", ["conv", "max", "avg"])
def test_gradients_match_finite_differences_with_uneven_padding(op):
    torch.manual_seed(0)
    x = torch.randn(1, 5, 4, 2, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    if op == "conv":
        assert torch.autograd.gradcheck(lambda a, b: cf.conv2d(a, b, strides=2, padding="same"), (x, k))
    elif op == "max":
        assert torch.autograd.gradcheck(lambda a: cf.max_pool2d(a, (2, 3), 2, "same"), (x,))
    else:
        assert torch.autograd.gradcheck(lambda a: cf.avg_pool2d(a, (2, 3), 2, "same"), (x,))


def test_output_keeps_channels_last_memory():
    x = torch.randn(2, 9, 9, 3)
    y = cf.conv2d(x, torch.randn(3, 3, 3, 8), strides=2, padding="same")
    assert y.shape == (2, 5, 5, 8) and y.is_contiguous()  # NHWC contiguous == NCHW channels_last


def test_bad_rank_and_channels():
    with pytest.raises(ShapeError, match=r"Expected a 4-D NHWC batch.*received shape \(3, 3, 1\)"):
        cf.conv2d(torch.zeros(3, 3, 1), torch.zeros(2, 2, 1, 1))
    with pytest.raises(ShapeError, match=r"kernel has 2 input channel\(s\) but the input has 1"):
        cf.conv2d(torch.zeros(1, 3, 3, 1), torch.zeros(2, 2, 2, 1))


@pytest.mark.parametrize("size,k,s", [(7, 2, 2), (5, 2, 2), (11, 3, 3), (8, 3, 2)])
def test_ceil_mode_path_equals_reference(size, k, s):
    # total SAME padding 1 -> 0 before, 1 after: PyTorch's ceil mode reads the same windows
    from cnnlab.arith import padding_for
    from cnnlab.nn.functional import _ceil_mode_matches

    ax = padding_for(size, k, s, 1, "same")
    assert _ceil_mode_matches(ax, ax)
    x = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype(np.float32)
    for ours, ref in ((cf.max_pool2d, arith.max_pool2d), (cf.avg_pool2d, arith.avg_pool2d)):
        got = ours(torch.from_numpy(x), k, s, "same").numpy()
        np.testing.assert_allclose(got, ref(x, k, s, "same"), rtol=1e-5, atol=1e-6)


def test_ceil_mode_not_used_when_padding_goes_before():
    from cnnlab.arith import padding_for
    from cnnlab.nn.functional import _ceil_mode_matches

    ax = padding_for(5, 3, 2, 1, "same")  # total 2: 1 before, 1 after
    assert not _ceil_mode_matches(ax, ax)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "size,k,s,padding", [(28, 2, 2, "valid"), (7, 2, 2, "same"), (9, 3, 3, "same"), (6, 3, 2, "valid")]
)
def test_max_pool_gradient_is_pytorchs_even_with_ties(dtype, size, k, s, padding):
    # Few distinct values, so most windows hold ties: the gradient must reach the same cell as
    # PyTorch's own max pooling picks (the first maximum), whichever backward cnnlab uses.
    g = torch.Generator().manual_seed(size)
    x = torch.randint(0, 3, (3, 4, size, size), generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours = cf.max_pool2d_nchw(a, k, s, padding)
    pads = arith.padding_for(size, k, s, 1, padding)
    padded = F.pad(b, (pads.before, pads.after, pads.before, pads.after), value=float("-inf"))
    theirs = F.max_pool2d(padded, k, s)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    upstream = torch.randn(theirs.shape, generator=g).to(dtype)
    ours.backward(upstream)
    theirs.backward(upstream)
    torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_max_pool_gradient_of_non_overlapping_windows_matches_finite_differences():
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: cf.max_pool2d_nchw(a, 2, 2, "same"), (x,))
