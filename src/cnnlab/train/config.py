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
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    data: str = "mnist"  # dataset name or image folder
    model: str = "seed-fashion"  # zoo name or .json/.toml spec
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine": Keras's CosineDecay(lr, decay_steps=all steps of the run)
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd and rmsprop only
    weight_decay: float = 0.0
    seed: int = 0
    validation_split: float = 0.0  # the last fraction of the training set, as Keras's fit() takes it
    device: str = "auto"
    precision: str = "auto"  # bf16 autocast where the CPU has native bf16, else fp32
    size: list[int] | None = None  # resize images to (H, W); folders with mixed sizes need it
    mode: str | None = None  # "gray" or "rgb"
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
        need(self.device in DEVICES, f"Unknown device {self.device!r}. Expected one of: {', '.join(DEVICES)}.")
        need(
            self.precision in PRECISIONS,
            f"Unknown precision {self.precision!r}. Expected one of: {', '.join(PRECISIONS)}.",
        )
        need(
            0 <= self.validation_split < 1,
            f"validation_split={self.validation_split!r}. Expected 0 <= value < 1, e.g. 0.1.",
        )

    def lr_at(self, step: int, steps: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based) in a run of ``steps`` steps. "cosine" is
        Keras's ``CosineDecay(lr, decay_steps=steps)``: lr * (1 + cos(pi * step / steps)) / 2, from lr to 0.
        A function of the step alone, so a resumed run continues on the same curve."""
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
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
