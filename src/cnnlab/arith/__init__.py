"""Exact convolution and pooling arithmetic in NumPy, with TensorFlow's padding rules."""

from cnnlab.arith.explain import CellTrace, Explanation, Limits, Term, beside_pytorch, explain_conv, explain_pool
from cnnlab.arith.matrix import load_array, parse_matrix
from cnnlab.arith.padding import AxisPadding, normalize_padding, padding_for
from cnnlab.arith.reference import avg_pool2d, conv2d, max_pool2d

__all__ = [
    "AxisPadding",
    "CellTrace",
    "Explanation",
    "Limits",
    "Term",
    "avg_pool2d",
    "conv2d",
    "beside_pytorch",
    "explain_conv",
    "explain_pool",
    "load_array",
    "max_pool2d",
    "normalize_padding",
    "padding_for",
    "parse_matrix",
]
