"""Hypothesis strategies shared by the tests of the NumPy reference and of the torch ops."""

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st


def tf_pads(n: int, k: int, stride: int, dilation: int, padding, axis: int) -> tuple[int, int]:
    """(before, after) padding of one axis, written here from TensorFlow's documented rule, independently of
    cnnlab: SAME gives out = ceil(n / stride) and total = max((out - 1) * stride + k_eff - n, 0), of which
    total // 2 goes before (top/left) and the rest after; VALID pads nothing; explicit is as given."""
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return 0, 0
        k_eff = (k - 1) * dilation + 1
        out = -(-n // stride)
        total = max((out - 1) * stride + k_eff - n, 0)
        return total // 2, total - total // 2
    return tuple(padding[axis])


@st.composite
def conv_cases(draw, pooling=False, dtype=np.float64, words=("same", "valid"), explicit=True):
    """(x NHWC, kernel HWIO, strides, padding, dilation) over sizes 1-12, kernels 1-5, strides 1-3,
    dilations 1-2 (1 for pooling), channels 1-4, padding a word or explicit ((top, bottom), (left, right))
    of 0-3 cells a side (below the window size for pooling, so that no window holds padding alone);
    only cases where the kernel fits the padded input."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if pooling else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(words + (("explicit",) if explicit else ())))
    if padding == "explicit":
        top, bottom = (draw(st.integers(0, min(3, kh - 1) if pooling else 3)) for _ in range(2))
        left, right = (draw(st.integers(0, min(3, kw - 1) if pooling else 3)) for _ in range(2))
        padding = ((top, bottom), (left, right))
    if not isinstance(padding, str) or padding.lower() == "valid":
        (top, bottom), (left, right) = tf_pads(0, 0, 1, 1, padding, 0), tf_pads(0, 0, 1, 1, padding, 1)
        assume((kh - 1) * dilation[0] + 1 <= h + top + bottom and (kw - 1) * dilation[1] + 1 <= w + left + right)
    c, o, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    k = rng.normal(size=(kh, kw, c, o)).astype(dtype)
    return x, k, strides, padding, dilation
