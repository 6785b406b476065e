"""Predicting image files with a run: its preprocessing (mode, size, scaling, inversion), top classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.data import images
from cnnlab.errors import InputError
from cnnlab.run.run import Run


@dataclass(frozen=True)
class Prediction:
    file: str
    probabilities: np.ndarray  # (classes,)
    classes: tuple[str, ...]
    image: np.ndarray  # the uint8 (H, W, C) the model saw
    notes: tuple[str, ...] = field(default=())

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities)[:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    def to_dict(self, k: int = 3) -> dict:
        return {
            "file": self.file,
            "top": [{"class": c, "probability": round(p, 6)} for c, p in self.top(k)],
            "notes": list(self.notes),
        }


def load_image_for(run: Run, path, invert: str = "auto") -> tuple[np.ndarray, list[str]]:
    """Decode ``path`` and fit it to the run (:meth:`Run.fit_image`: size, mode, inversion)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist. Expected an image file (PNG, JPEG, ...).")
    notes: list[str] = []
    img = images.decode(path, notes=notes)  # opened once, upright, in its own mode, then fitted
    fitted, more = run.fit_image(img, invert, path.name)
    return fitted, notes + more


def predict_files(run: Run, paths, invert: str = "auto", precision: str = "auto") -> list[Prediction]:
    loaded = [load_image_for(run, p, invert) for p in paths]
    if not loaded:
        raise InputError("No image given. Expected one or more image files.")
    batch = np.stack([img for img, _ in loaded])  # (N, H, W, C) uint8
    probs, shared = run.predict_with_notes(batch, precision=precision)  # e.g. how a Keras model's input is scaled
    return [
        Prediction(str(p), probs[i], run.classes, loaded[i][0], tuple(shared + loaded[i][1]))
        for i, p in enumerate(paths)
    ]
