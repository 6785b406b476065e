"""A finished run: a trained model with its class names and preprocessing, from a run directory or a Keras file,
and what it does with images (fit them to the model, predict)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.images import mode_for
from cnnlab.errors import InputError, RunError
from cnnlab.limits import MAX_INPUT_CELLS
from cnnlab.nn.graph import Model
from cnnlab.run.files import (
    CONFIG,
    FORMAT,
    METRICS,
    MODEL_JSON,
    STEPS,
    WEIGHTS,
    DamagedRun,
    confined,
    load_weights,
    read_json,
    read_metrics,
)
from cnnlab.run.inference import BATCH, probabilities_of
from cnnlab.shown import Shown, Table


def _checked_meta(meta: dict, path: Path) -> tuple[tuple[str, ...], dict]:
    """model.json's class names and preprocessing, or a RunError naming what is missing or malformed."""
    classes, prep = meta.get("classes"), meta.get("preprocessing")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DamagedRun(f"{path} has no 'classes' (a list of class names); it is damaged. Retrain the run.")
    shape = prep.get("input_shape") if isinstance(prep, dict) else None
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(n) is int and n > 0 for n in shape)):
        raise DamagedRun(
            f"{path} has no 'preprocessing' with an 'input_shape' [height, width, channels]; it is damaged."
        )
    if math.prod(shape) > MAX_INPUT_CELLS:
        raise DamagedRun(f"{path} declares the input {shape}, more than the {MAX_INPUT_CELLS:,} values cnnlab builds.")
    scale = prep.get("scale", 1 / 255)
    if type(scale) not in (int, float) or not 0 < scale < math.inf:
        raise DamagedRun(f"{path}: preprocessing.scale is {scale!r}; expected a positive number (1/255 for pixels).")
    for key, kinds in (("background", ("dark", "light")), ("named", (True, False))):
        if key in prep and prep[key] not in kinds:
            raise DamagedRun(f"{path}: preprocessing.{key} is {prep[key]!r}; expected one of {kinds}.")
    if not isinstance(prep.get("input_note", ""), str):
        raise DamagedRun(f"{path}: preprocessing.input_note is not text; the run is damaged.")
    return tuple(classes), prep


def _check_outputs(model: torch.nn.Module, classes: tuple[str, ...], prep: dict, path: Path) -> None:
    """The model must take the run's input and give one score a class: a cnnlab model's shapes say so, a
    custom module's one forward pass of a blank image."""
    h, w, c = prep["input_shape"]
    if isinstance(model, Model):
        if tuple(model.input_shape) != (h, w, c):
            raise DamagedRun(f"{path}: the model takes {tuple(model.input_shape)} input, not the run's {h}x{w}x{c}.")
        if tuple(model.output_shape) != (len(classes),):
            raise DamagedRun(
                f"{path} names {len(classes)} classes but the model gives {tuple(model.output_shape)} outputs an "
                "image; the run is damaged. Retrain it."
            )
        return
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, c, h, w).to(memory_format=torch.channels_last))
    except (RuntimeError, ValueError) as e:  # torch's shape errors, cnnlab's ShapeError
        raise RunError(f"{path}: the model does not take {h}x{w}x{c} input ({str(e).splitlines()[0]}).") from None
    if out.shape != (1, len(classes)):
        raise RunError(
            f"{path} names {len(classes)} classes but the model gives {tuple(out.shape[1:])} outputs an image; "
            "the run is damaged. Retrain it."
        )


@dataclass(repr=False)
class Run(Shown):
    """A trained model with its class names and preprocessing, loaded from a run directory. Printed: the
    model, the dataset, a row per epoch (its losses and accuracies) and the classes; in a notebook the same
    with the training curves (:meth:`plot`)."""

    path: Path
    model: torch.nn.Module
    classes: tuple[str, ...]
    preprocessing: dict
    config: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    within: Path | None = None  # the folder every file of the run must lie in (a served folder)
    steps: list[dict] = field(default_factory=list)  # steps.jsonl: the loss every few steps

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.preprocessing["input_shape"])

    @property
    def _figure(self) -> str:
        return "cnnlab.viz.train:run_figure" if self.metrics else ""

    def table(self) -> Table:
        cfg = self.train_config
        name = getattr(self.model, "name", type(self.model).__name__)
        params = sum(p.numel() for p in self.model.parameters())
        where = f" on {cfg['data']}" if cfg.get("data") else ""
        h, w, c = self.input_shape
        title = f"Run {self.path}: {name} ({params:,} parameters, input {h}x{w}x{c}){where}"
        held = "val" if self.metrics and "val_loss" in self.metrics[0] else "test"
        keys = ("loss", "accuracy", f"{held}_loss", f"{held}_accuracy")
        rows = tuple(
            (
                str(r["epoch"]),
                *(f"{r[k]:.4f}" if isinstance(r.get(k), int | float) else "" for k in keys),
                f"{r['seconds']:.1f}" if isinstance(r.get("seconds"), int | float) else "",
            )
            for r in self.metrics
        )
        shown = ", ".join(self.classes[:10]) + (f", ... ({len(self.classes)} in all)" if len(self.classes) > 10 else "")
        lines = (f"classes: {shown}",) if rows else (f"classes: {shown}", "no epochs recorded (a model file)")
        header = ("epoch", *keys, "seconds") if rows else ()
        return Table(title, header, rows, frozenset(range(1, 6)), lines)

    @classmethod
    def load(
        cls, path, model: torch.nn.Module | None = None, within: Path | None = None, allow_nonfinite: bool = False
    ) -> Run:
        """Rebuild the model from model.json (or take ``model`` for a custom nn.Module) and load its weights.
        ``within``: every file read must lie inside this folder, links resolved (what a server shows).
        NaN or infinite weights are refused unless ``allow_nonfinite`` (then a warning)."""
        from cnnlab.nn.spec import from_spec

        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{path} is not a run directory. Expected the --out folder of cnnlab train.")
        meta = read_json(confined(path / MODEL_JSON, within))
        if meta.get("format") != FORMAT:
            raise RunError(f"{path / MODEL_JSON} has format {meta.get('format')!r}; expected {FORMAT!r}.")
        classes, prep = _checked_meta(meta, path / MODEL_JSON)
        if model is None:
            if not meta.get("spec"):
                raise RunError(f"{path} holds a custom model; pass it: Run.load(path, model=MyNet()).")
            model = from_spec(meta["spec"], what=f"The spec in {path.name}/{MODEL_JSON}")
        load_weights(confined(path / WEIGHTS, within), model, allow_nonfinite)
        model = model.to(memory_format=torch.channels_last).eval()  # the fast layout for oneDNN
        _check_outputs(model, classes, prep, path / MODEL_JSON)
        config = read_json(confined(path / CONFIG, within)) if (path / CONFIG).is_file() else {}
        metrics = read_metrics(confined(path / METRICS, within))
        run = cls(path, model, classes, prep, config, metrics, within)
        run.steps = read_metrics(confined(path / STEPS, within))
        return run

    @classmethod
    def from_keras(cls, path, classes=None, within: Path | None = None, allow_nonfinite: bool = False) -> Run:
        """A Keras 3 ``.keras`` file as a Run (read without TensorFlow; no code from the file runs).
        ``classes``: the class names; default ``classes.txt`` beside the file (one a line), else 0..N-1.
        Images go in as the Keras tutorials feed them: floats in [0, 1], or uint8 scaled by 1/255."""
        from cnnlab.nn.keras_file import KerasFileError, read_keras

        path = Path(path)
        model, meta = read_keras(path, allow_nonfinite)
        if tuple(model.output_shape) == (1,):  # a binary head: two classes (TwoClasses)
            from cnnlab.nn.layers import TwoClasses
            from cnnlab.nn.model import appended

            last = model._outputs[0].node.layer
            of = "probability" if getattr(last, "activation", None) == "sigmoid" else "logit"
            model = appended(model, TwoClasses(of, name="two_classes"))
        outputs = model.output_shape[0] if len(model.output_shape) == 1 else None
        if outputs is None:
            raise KerasFileError(f"{path} ends in {model.output_shape}; expected one score a class.")
        names = classes
        beside = path.with_name("classes.txt")
        if names is None and beside.is_file():
            text = confined(beside, within).read_text(errors="replace")
            names = [line.strip() for line in text.splitlines() if line.strip()]
        named = names is not None
        names = tuple(str(c) for c in (names if named else range(outputs)))
        if len(names) != outputs:
            raise KerasFileError(f"{len(names)} class names for a model with {outputs} outputs ({path}).")
        h, w, c = meta["input_shape"]
        first = model.first_computing()  # past an augmentation Sequential, as in the transfer tutorial
        rescales = first is not None and first[1].kind == "Rescaling"
        assumed = (
            f"uint8 pixels go in as they are: the model's first layer '{first[0]}' rescales them"
            if rescales
            else "uint8 pixels are scaled by 1/255 (the model has no Rescaling layer), as the Keras tutorials feed them"
        )
        prep = {"input_shape": [h, w, c], "mode": mode_for(c), "source": "keras", "input_note": assumed}
        prep["scale"] = 1.0 if rescales else 1 / 255
        prep["named"] = named  # unnamed: a dataset's class names are taken where the counts agree (eval)
        model = model.to(memory_format=torch.channels_last).eval()
        return cls(path, model, names, prep, {"config": {"model": path.name}}, [])

    def file(self, name: str) -> Path | None:
        """One of the run's files (``CURVES``, say) if it exists, with the same confinement as ``load``."""
        path = self.path / name
        return confined(path, self.within) if path.is_file() else None

    @property
    def train_config(self) -> dict:
        """The options the run was trained with (config.json's "config"), or {} for a run without one."""
        return self.config.get("config", {})

    @property
    def scale(self) -> float:
        """What a uint8 pixel is multiplied by on its way into the model."""
        return self.preprocessing.get("scale", 1 / 255)

    def _converted(self, images) -> tuple[np.ndarray, bool, list[str]]:
        """Images in the run's size and mode: (uint8 or float NHWC array, is uint8, notes)."""
        from cnnlab.compute.tensors import as_uint8_or_float
        from cnnlab.data.images import convert

        a, is_u8 = as_uint8_or_float(images)
        h, w, c = self.input_shape
        notes = [self.preprocessing["input_note"]] if is_u8 and "input_note" in self.preprocessing else []
        if a.shape[1:3] != (h, w) or a.shape[3] != c:
            if a.shape[3] not in (1, 3):
                raise InputError(f"Images have {a.shape[3]} channels; expected 1 (gray) or 3 (rgb).")
            notes.append(f"converted {a.shape[1]}x{a.shape[2]}x{a.shape[3]} to the model's {h}x{w}x{c}")
            u8 = a if is_u8 else np.clip(np.round(a * 255), 0, 255).astype(np.uint8)
            a, is_u8 = convert(u8, (h, w), mode_for(c)), True
        return a, is_u8, notes

    def fit_image(self, img: np.ndarray, invert: str = "auto", name: str = "the image") -> tuple[np.ndarray, list[str]]:
        """One decoded uint8 image (H, W, C) -> the run's size and mode, inverted when it is dark-on-light and
        the model was trained on light-on-dark (``invert="auto"``), or as told (``"yes"``, ``"no"``).

        The one rule for every way an image arrives: a file (predict, inspect), an upload (the server)."""
        from cnnlab.data.images import border_mean, convert, is_blank

        if invert not in ("auto", "yes", "no"):
            raise InputError(f"invert={invert!r}. Expected auto, yes or no.")
        h, w, c = self.input_shape
        mode = mode_for(c)
        notes = []
        if img.shape[:2] != (h, w) or img.shape[2] != c:
            was = mode_for(img.shape[2])
            notes.append(f"{name} is {img.shape[0]}x{img.shape[1]} {was}; converted to {h}x{w} {mode}")
        img = convert(img[None], (h, w), mode)[0]
        light = border_mean(img) > 127
        if invert == "yes":
            img = 255 - img
            notes.append("inverted (as asked)")
        elif invert == "auto" and self.preprocessing.get("background", "dark") == "dark" and light:
            img = 255 - img
            notes.append("inverted (dark-on-light image; the model was trained on light-on-dark)")
        if is_blank(img):
            notes.append(f"{name} is blank (every pixel {int(img.flat[0])}): there is nothing to recognise")
        return img, notes

    def prepare(self, images) -> tuple[torch.Tensor, list[str]]:
        """uint8 or float NHWC images -> model input, converted to the run's size and mode (with notes)."""
        from cnnlab.compute.tensors import from_numpy, to_input

        a, is_u8, notes = self._converted(images)
        t = from_numpy(a)
        return (to_input(t, self.scale) if is_u8 else t.float().permute(0, 3, 1, 2)), notes

    def to(self, device) -> Run:
        """Move the model to ``device`` ("cuda", "cpu", ...) for the calls that follow (predict, eval): one
        model, moved for everyone who holds this Run. Returns the Run."""
        from cnnlab.compute.device import pick_device

        self.model.to(pick_device(str(device)))
        return self

    def predict(self, images, batch_size: int = BATCH, precision: str = "auto") -> np.ndarray:
        """Class probabilities (N, classes) for uint8 or float NHWC images.

        Runs the fast path (:mod:`cnnlab.run.inference`: a copy of the model in bfloat16 where the CPU has it
        natively, its batches shared out to one worker a core); ``precision="fp32"`` keeps float32 throughout,
        for exact comparisons."""
        return self.predict_with_notes(images, batch_size, precision)[0]

    def predict_with_notes(
        self, images, batch_size: int = BATCH, precision: str = "auto"
    ) -> tuple[np.ndarray, list[str]]:
        """Probabilities, and what was converted to fit the model (size, mode)."""
        a, is_u8, notes = self._converted(images)
        x = a if is_u8 else self.prepare(a)[0]  # uint8 is scaled one batch at a time, on the way in
        return probabilities_of(self.model, x, precision, batch_size, self.scale), notes


KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def load(path, classes=None, within: Path | None = None, allow_nonfinite: bool = False) -> Run:
    """A run directory, a Keras 3 ``.keras`` file or a Keras 2 full-model ``.h5`` file, as a :class:`Run`.
    ``within``: every file read must lie inside this folder (what a server shows). NaN or infinite weights are
    refused unless ``allow_nonfinite`` (then a warning)."""
    p = Path(path)
    if p.suffix.lower() in KERAS_SUFFIXES and p.is_file():
        return Run.from_keras(confined(p, within), classes, within, allow_nonfinite)
    if p.is_file():
        raise InputError(f"{p} is a file cnnlab cannot load. Expected a run directory, a .keras or an .h5 file.")
    return Run.load(p, within=within, allow_nonfinite=allow_nonfinite)
