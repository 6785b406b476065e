"""What the data layer returns: splits of uint8 NHWC images with int64 labels, and a dataset of two splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.errors import DataError
from cnnlab.shown import Shown, Table


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # uint8 (N, H, W, C)
    y: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)

    def counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.y, minlength=num_classes).tolist()


@dataclass(frozen=True, repr=False)
class Dataset(Shown):
    """Printed: its name, image shape and a row per class with its train and test counts, where it came from
    and its notes; in a notebook the same with a labelled grid of training images (:meth:`plot`)."""

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

    _figure = "cnnlab.viz.data:dataset_figure"

    def table(self) -> Table:
        h, w, c = self.image_shape
        train, test = self.train.counts(self.num_classes), self.test.counts(self.num_classes)
        rows = tuple((str(k), f"{a:,}", f"{b:,}") for k, a, b in zip(self.classes, train, test, strict=True))
        rows += (("all", f"{len(self.train):,}", f"{len(self.test):,}"),)
        title = f'Dataset "{self.name}": {h}x{w}x{c} {self.train.x.dtype} images, {self.num_classes} classes'
        info = self.info
        lines = tuple(f"{k}: {info[k]}" for k in ("source", "splits") if info.get(k))
        lines += tuple(f"note: {n}" for n in info.get("notes", ()))
        return Table(title, ("class", "train", "test"), rows, frozenset({1, 2}), lines)

    def split(self, name: str) -> Split:
        if name not in ("train", "test"):
            raise DataError(f"Unknown split {name!r}. Expected 'train' or 'test'.")
        return self.train if name == "train" else self.test
