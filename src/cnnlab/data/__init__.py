"""Datasets as NumPy arrays: uint8 images (N, H, W, C), int64 labels, class names. No torch here."""

from cnnlab.data.datasets import Dataset, Split, get, load, sample
from cnnlab.data.registry import REGISTRY, DatasetSpec

__all__ = ["REGISTRY", "Dataset", "DatasetSpec", "Split", "get", "load", "sample"]
