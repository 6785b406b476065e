"""What the data layer returns: splits of uint8 NHWC images with int64 labels, and a dataset of two splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.errors import DataError


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # uint8 (N, H, W, C)
    y: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)

    def counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.y, minlength=num_classes).tolist()


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    info: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Split:
        if name not in ("train", "test"):
            raise DataError(f"Unknown split {name!r}. Expected 'train' or 'test'.")
        return self.train if name == "train" else self.test
