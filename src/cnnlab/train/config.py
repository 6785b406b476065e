"""The training configuration: one dataclass owns every default; unknown keys are errors."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from cnnlab.errors import InputError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")
LR_SCHEDULES = ("constant", "cosine", "onecycle")
# one-cycle (Smith & Topin, 2018, as torch's OneCycleLR has it): the first ONECYCLE_RISE of the steps rise
# from lr / ONECYCLE_START to lr along a half cosine, the rest fall along a half cosine to lr / ONECYCLE_END
ONECYCLE_RISE, ONECYCLE_START, ONECYCLE_END = 0.3, 25.0, 1e4


@dataclass
class TrainConfig:
    data: str = "mnist"  # dataset name or image folder
    model: str = "seed-fashion"  # zoo name or .json/.toml spec
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "cosine": Keras's CosineDecay over all steps of the run; or "onecycle"
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd and rmsprop only
    weight_decay: float = 0.0  # adamw: decoupled (weights *= 1 - lr * wd each step); others: L2 in the gradient
    seed: int = 0
    validation_split: float = 0.0  # the last fraction of the training set, as Keras's fit() takes it
    device: str = "auto"
    precision: str = "auto"  # bf16 autocast where the CPU has native bf16, else fp32
    size: list[int] | None = None  # resize images to (H, W); folders with mixed sizes need it
    mode: str | None = None  # "gray" or "rgb"
    augment: str | None = None  # per-batch augmentation, e.g. "shift=2,flip,erase=0.5" (cnnlab.train.augment)
    label_smoothing: float = 0.0  # the target puts this much weight evenly over all classes
    ema: float = 0.0  # decay of an exponential moving average of the weights, evaluated and saved (0: none)
    warmup: float = 0.0  # epochs of linear learning-rate warm-up from 0 before the schedule
    recipe: str | None = None  # the named option set the run started from (cnnlab.train.recipes)
    compile: bool = False  # run the training step's model through torch.compile (pays on GPUs, not on this CPU)
    out: str | None = None  # run directory; default runs/<model>-<data>-<time>

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        def need(cond, msg):
            if not cond:
                raise InputError(msg)

        need(
            isinstance(self.epochs, int) and self.epochs >= 1, f"epochs={self.epochs!r}. Expected a whole number >= 1."
        )
        need(
            isinstance(self.batch_size, int) and self.batch_size >= 1,
            f"batch_size={self.batch_size!r}. Expected a whole number >= 1, e.g. 64.",
        )
        need(self.lr > 0, f"lr={self.lr!r}. Expected a positive learning rate, e.g. 1e-3.")
        need(
            self.lr_schedule in LR_SCHEDULES,
            f"Unknown lr_schedule {self.lr_schedule!r}. Expected one of: {', '.join(LR_SCHEDULES)}.",
        )
        need(
            self.optimizer in OPTIMIZERS,
            f"Unknown optimizer {self.optimizer!r}. Expected one of: {', '.join(OPTIMIZERS)}.",
        )
        need(
            isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0,
            f"weight_decay={self.weight_decay!r}. Expected a value >= 0, e.g. 0.05 with optimizer adamw.",
        )
        need(self.device in DEVICES, f"Unknown device {self.device!r}. Expected one of: {', '.join(DEVICES)}.")
        need(
            self.precision in PRECISIONS,
            f"Unknown precision {self.precision!r}. Expected one of: {', '.join(PRECISIONS)}.",
        )
        from cnnlab.train.augment import parse

        parse(self.augment)  # a clear error for a bad --augment, before anything runs
        need(
            isinstance(self.label_smoothing, (int, float)) and 0 <= self.label_smoothing < 1,
            f"label_smoothing={self.label_smoothing!r}. Expected 0 <= value < 1, e.g. 0.1.",
        )
        need(
            isinstance(self.ema, (int, float)) and 0 <= self.ema < 1,
            f"ema={self.ema!r}. Expected 0 <= value < 1, e.g. 0.999.",
        )
        need(
            isinstance(self.warmup, (int, float)) and 0 <= self.warmup < self.epochs,
            f"warmup={self.warmup!r}. Expected epochs of warm-up, 0 <= value < epochs ({self.epochs}).",
        )
        need(
            0 <= self.validation_split < 1,
            f"validation_split={self.validation_split!r}. Expected 0 <= value < 1, e.g. 0.1.",
        )

    def lr_at(self, step: int, steps: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based) in a run of ``steps`` steps. "cosine" is
        Keras's ``CosineDecay(lr, decay_steps=steps)``: lr * (1 + cos(pi * step / steps)) / 2, from lr to 0.
        With ``warmup`` epochs, the first W = steps * warmup / epochs steps rise linearly to lr
        (lr * (step + 1) / W) and the schedule runs over the steps after them.
        "onecycle" rises over the first ONECYCLE_RISE of the steps from lr / ONECYCLE_START to lr and falls
        over the rest to lr / ONECYCLE_END, both along half cosines: a + (b - a) * (1 - cos(pi * t)) / 2 for
        t from 0 to 1 (the rise ends at step R = ONECYCLE_RISE * steps - 1 and the fall at step steps - 1).
        A function of the step alone, so a resumed run continues on the same curve."""
        warm = int(round(steps * self.warmup / self.epochs))
        if step < warm:
            return self.lr * (step + 1) / warm
        step, steps = min(step - warm, steps - warm), steps - warm
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        if self.lr_schedule == "onecycle":
            low, top, end = self.lr / ONECYCLE_START, self.lr, self.lr / ONECYCLE_START / ONECYCLE_END
            peak = max(ONECYCLE_RISE * steps - 1, 0.0)  # a run of under 4 steps starts at the top
            if peak > 0 and step <= peak:
                a, b, t = low, top, step / peak
            else:
                a, b, t = top, end, (step - peak) / max(steps - 1 - peak, 1)
            return a + (b - a) * 0.5 * (1 - math.cos(math.pi * t))
        return self.lr

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"Unknown training option(s): {', '.join(unknown)}. Expected some of: {', '.join(sorted(known))}."
            )
        return cls(**values)


def read_config_file(path) -> dict:
    """A JSON or TOML file whose keys are the options of ``cnnlab train`` (dashes or underscores)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Config file {path} does not exist.")
    try:
        values = tomllib.loads(path.read_text()) if path.suffix.lower() == ".toml" else json.loads(path.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"Config file {path} could not be read: {e}") from None
    return {k.replace("-", "_"): v for k, v in values.items()}


def differences(saved: dict, asked: dict, ignore=("epochs", "out", "device", "compile")) -> list[str]:
    """Lines 'key: saved -> asked' for every option that differs (used to refuse a mismatched --resume)."""
    return [
        f"{k}: {saved.get(k)!r} (saved) vs {v!r} (asked)"
        for k, v in asked.items()
        if k not in ignore and saved.get(k) != v
    ]
