"""Accuracy, loss, per-class precision/recall/F1 and the confusion matrix, on an in-memory split."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.compute.device import pick_precision
from cnnlab.compute.outputs import ends_in_softmax, log_probabilities, probabilities
from cnnlab.data.images import mode_for
from cnnlab.data.registry import refuse_mirror
from cnnlab.run.inference import BATCH, outputs_of
from cnnlab.shown import Shown, Table


def loss_and_accuracy(output: torch.Tensor, y: torch.Tensor, softmaxed: bool = False) -> tuple[float, float]:
    loss = F.nll_loss(log_probabilities(output, softmaxed), y).item()
    acc = (output.argmax(1) == y).float().mean().item()
    return loss, acc


@dataclass(frozen=True, repr=False)
class Evaluation(Shown):
    """Printed: the accuracy and loss and a row per class (precision, recall, F1, support); in a notebook the
    same with the confusion matrix (:meth:`plot`)."""

    accuracy: float
    loss: float
    classes: tuple[str, ...]
    confusion: np.ndarray  # (true, predicted) counts
    labels: np.ndarray  # (N,) true class
    predictions: np.ndarray  # (N,) predicted class
    probabilities: np.ndarray  # (N, K)
    notes: tuple[str, ...] = ()  # how the test images were read (a folder's resize rule, skipped files)
    files: tuple[str, ...] = ()  # a folder's test files (relative paths), in the order of ``labels``

    _figure = "cnnlab.viz.train:evaluation_figure"

    def table(self) -> Table:
        n = len(self.labels)
        rows = tuple(
            (r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", f"{r['support']:,}")
            for r in self.per_class()
        )
        title = f"Evaluation on {n:,} images: accuracy {self.accuracy:.4f}, loss {self.loss:.4f}"
        header = ("class", "precision", "recall", "f1", "support")
        return Table(title, header, rows, frozenset({1, 2, 3, 4}), self.notes)

    def per_class(self) -> list[dict]:
        rows = []
        for k, name in enumerate(self.classes):
            tp = self.confusion[k, k]
            predicted, actual = self.confusion[:, k].sum(), self.confusion[k].sum()
            p = tp / predicted if predicted else 0.0
            r = tp / actual if actual else 0.0
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            rows.append(
                {
                    "class": name,
                    "precision": round(float(p), 4),
                    "recall": round(float(r), 4),
                    "f1": round(float(f1), 4),
                    "support": int(actual),
                }
            )
        return rows

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "per_class": self.per_class(),
            "confusion": self.confusion.tolist(),
            "classes": list(self.classes),
            "notes": list(self.notes),
            **({"files": self.file_predictions()} if self.files else {}),
        }

    def file_predictions(self) -> list[dict]:
        """Each test file with its true and predicted class (a folder's evaluation)."""
        names = self.classes
        return [
            {"file": f, "class": names[t], "predicted": names[p]}
            for f, t, p in zip(self.files, self.labels.tolist(), self.predictions.tolist(), strict=True)
        ]


def evaluate(
    model,
    x_u8: np.ndarray,
    y: np.ndarray,
    classes,
    device=torch.device("cpu"),
    precision: str = "fp32",
    scale: float = 1 / 255,
    optimize: bool = True,
    tta: str | None = None,
) -> Evaluation:
    """Accuracy, loss, confusion and probabilities of ``model`` on uint8 images (or float32 pixels 0..255, as
    Keras's resize gives them, scaled the same way). ``tta="flip"`` averages the probabilities of each image
    and its mirror image (test-time augmentation)."""

    def outputs(images):
        if images.dtype != np.uint8:  # float NHWC pixels: the model's float input, scaled here, never in place
            images = torch.from_numpy(np.asarray(images, np.float32) * np.float32(scale)).permute(0, 3, 1, 2)
        return outputs_of(model, images, device, precision, BATCH if optimize else 1000, scale, optimize)

    out = outputs(x_u8)
    softmaxed = ends_in_softmax(model)
    if tta == "flip":
        mirrored = outputs(np.ascontiguousarray(x_u8[:, :, ::-1]))
        out, softmaxed = (probabilities(out, softmaxed) + probabilities(mirrored, softmaxed)) / 2, True
    elif tta is not None:
        from cnnlab.errors import InputError

        raise InputError(f"Unknown test-time augmentation {tta!r}. Expected: flip.")
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    loss, acc = loss_and_accuracy(out, yt, softmaxed)
    probs = probabilities(out, softmaxed).numpy()
    pred = probs.argmax(1)
    k = len(classes)
    confusion = np.bincount(np.asarray(y) * k + pred, minlength=k * k).reshape(k, k)
    return Evaluation(acc, loss, tuple(classes), confusion, np.asarray(y), pred, probs)


def evaluate_run(
    run,
    data: str | None = None,
    precision: str = "auto",
    tta: str | None = None,
    resize: str | None = None,
    crop_to_aspect_ratio: bool | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
):
    """Evaluate a :class:`Run` on the test split of its own dataset (or of ``data``), with its preprocessing;
    ``tta="flip"`` adds each test image's mirror (refused for digits, whose mirror images are no digits).
    A folder is read with the run's resize rule (``resize`` and ``crop_to_aspect_ratio`` override it); a
    Keras file's rule is Keras's: ``image_dataset_from_directory``'s files, split (``test_fraction`` as its
    ``validation_split``, ``seed``) and float32 bilinear pixels, and the Evaluation's notes say so.

    Returns the Evaluation and the uint8 test images it saw.
    """
    from cnnlab import data as datalib
    from cnnlab.data.datasets import is_folder
    from cnnlab.errors import InputError

    cfg = run.train_config
    name = data or cfg.get("data")
    if not name:
        raise InputError(f"{run.path} does not say which dataset it was trained on; pass --data NAME|PATH.")
    h, w, c = run.input_shape
    keras = run.preprocessing.get("source") == "keras"
    folder = {}
    if is_folder(name):
        crop = cfg.get("crop_to_aspect_ratio", False) if crop_to_aspect_ratio is None else crop_to_aspect_ratio
        rule = resize or cfg.get("resize") or ("bilinear" if keras else None)
        folder = {"resize": rule, "crop_to_aspect_ratio": crop, "exact_test": keras, "test_fraction": test_fraction}
        folder["seed"] = seed
    ds = datalib.load(name, size=(h, w), mode=mode_for(c), **folder)
    if not run.preprocessing.get("named", True) and len(ds.classes) == len(run.classes):
        run = replace(run, classes=tuple(ds.classes))  # a Keras file without names: the dataset's, by position
    if tuple(ds.classes) != tuple(run.classes):
        raise InputError(
            f"{name} has classes {list(ds.classes)[:5]}... but the run was trained on {list(run.classes)[:5]}...; "
            "evaluate on a dataset with the same classes in the same order."
        )
    if tta == "flip":
        refuse_mirror(ds.name, "--tta flip", "Evaluate digits without it.")
    precision = pick_precision(precision)
    ev = evaluate(run.model, ds.test.x, ds.test.y, run.classes, precision=precision, scale=run.scale, tta=tta)
    ev = replace(ev, notes=tuple(ds.info.get("notes", ())), files=tuple(ds.info.get("files", {}).get("test", ())))
    x = ds.test.x
    return ev, x if x.dtype == np.uint8 else np.clip(np.rint(x), 0, 255).astype(np.uint8)
