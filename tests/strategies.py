"""Hypothesis strategies shared by the tests of the NumPy reference and of the torch ops."""

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st


@st.composite
def conv_cases(draw, pooling=False, dtype=np.float64, words=("same", "valid")):
    """(x NHWC, kernel HWIO, strides, padding, dilation) over sizes 1-12, kernels 1-5, strides 1-3,
    dilations 1-2 (1 for pooling), channels 1-4; VALID only where the kernel fits."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if pooling else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(words))
    if padding.lower() == "valid":
        assume((kh - 1) * dilation[0] + 1 <= h and (kw - 1) * dilation[1] + 1 <= w)
    c, o, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    k = rng.normal(size=(kh, kw, c, o)).astype(dtype)
    return x, k, strides, padding, dilation
