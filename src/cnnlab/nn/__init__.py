"""PyTorch side of cnnlab: tf.nn-style functional ops (layers and models build on them)."""

from cnnlab.nn import functional

__all__ = ["functional"]
