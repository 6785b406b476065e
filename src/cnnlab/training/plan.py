"""The plan of a run: every training option resolved once (:class:`TrainConfig`, one dataclass that owns every
default), where the run writes and whether it resumes (:class:`Plan`).

:func:`make_plan` is the one place options become a plan: keyword arguments of ``cnnlab.train``, a config file
and the command line are merged by the caller, the recipe is filled in here, the options are checked once,
and a resumed run is checked against its saved config.json. The plan is then handed as it is to the loop,
saved in config.json, and passed to ``--nproc`` workers as a file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from cnnlab.atomic import write_text
from cnnlab.compute.device import check_precision
from cnnlab.data.keras_rule import RESIZE_HELP, check_rule
from cnnlab.errors import InputError, RunError
from cnnlab.limits import read_parsed
from cnnlab.run.files import CONFIG, read_json
from cnnlab.training import recipes

EXPECTED = {"int": "a whole number", "float": "a finite number", "str": "text", "bool": "true or false"}
EXPECTED["list[int]"] = "a list of whole numbers"
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCHEDULES = ("constant", "cosine", "onecycle")
# one-cycle (Smith & Topin, 2018, as torch's OneCycleLR has it): the first ONECYCLE_RISE of the steps rise
# from lr / ONECYCLE_START to lr along a half cosine, the rest fall along a half cosine to lr / ONECYCLE_END
ONECYCLE_RISE, ONECYCLE_START, ONECYCLE_END = 0.3, 25.0, 1e4


def option(default, help: str = ""):
    """A field of :class:`TrainConfig`; ``help`` is what ``cnnlab train --help`` says of it (the CLI's options are
    made from these fields, so an option is added here and nowhere else)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Every training option with its default. Built from keyword arguments, a config file, a recipe or the
    command line, checked once when built (an unknown key or a bad value is an InputError), and never changed."""

    data: str = option("mnist", "Dataset name (mnist, fashion-mnist, digits) or image folder.")
    model: str = option("seed-fashion", "Zoo name or .json/.toml spec.")
    epochs: int = option(3, "Passes over the training set.")
    batch_size: int = option(64, "Images per optimizer step (the global batch, also with --nproc).")
    lr: float = option(1e-3, "Learning rate.")
    lr_schedule: str = option(
        "constant",
        "constant; cosine: decay to 0 over the run (Keras's CosineDecay); or onecycle: up from lr/25 to "
        "--lr over the first 30% of the steps, then down to lr/250,000 (torch's OneCycleLR).",
    )
    optimizer: str = option("adam", "adam, adamw, sgd or rmsprop.")
    momentum: float = option(0.9, "Momentum of sgd and rmsprop.")
    weight_decay: float = option(
        0.0,
        "With adamw: decoupled decay, each step scales the weights by 1 - lr x this (e.g. 0.05); "
        "with the others: an L2 term in the gradient.",
    )
    seed: int = option(0, "Seed of the initial weights, the shuffle, dropout and augmentation.")
    validation_split: float = option(0.0, "Hold out the last fraction of the training set, as Keras's fit() does.")
    device: str = option("auto", "auto, cpu, cuda or mps.")
    precision: str = option("auto", "auto (bf16 autocast where the CPU has native bf16, else fp32), bf16 or fp32.")
    size: list[int] | None = option(None, "Resize images to H,W (folders with mixed sizes need it).")
    mode: str | None = option(None, "gray or rgb.")
    resize: str | None = option(None, RESIZE_HELP + " Default: cnnlab's (EXIF upright, Pillow's bilinear).")
    crop_to_aspect_ratio: bool = option(False, "With a Keras --resize rule: crop to the size's aspect ratio first.")
    augment: str | None = option(
        None, "Per-batch augmentation: shift=S (pixels), flip, erase=P, rotate=D (degrees), e.g. shift=2,erase=0.5."
    )
    label_smoothing: float = option(0.0, "Spread this much of each target over all classes (Keras's), e.g. 0.1.")
    ema: float = option(
        0.0, "Keep a moving average of the weights with this decay (e.g. 0.999); it is evaluated and saved."
    )
    warmup: float = option(0.0, "Epochs of linear learning-rate warm-up before the schedule (e.g. 1).")
    recipe: str | None = option(
        None, "A named set of options for the dataset (see cnnlab models recipes); options you give win."
    )
    compile: bool = option(False, "Run the training step through torch.compile (for GPUs; slower on most CPUs).")
    stats: str = option(
        "on",
        "on: watch every layer about 20 times an epoch (activations, dead units, weights, gradients, "
        "updates) into stats.jsonl; off.",
    )
    tensorboard: str | None = option(
        None, "Also write TensorBoard event files to this folder: scalars, weight histograms, test predictions."
    )
    out: str | None = option(None, "Run directory (default runs/<model>-<data>-<time>).")

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        def need(cond, msg):
            if not cond:
                raise InputError(msg)

        for f in fields(self):  # each value of its field's kind first: a config file may hold anything
            value, kind = getattr(self, f.name), f.type.removesuffix(" | None")
            if value is None and f.type.endswith("| None"):
                continue
            fits = {
                "int": type(value) is int,
                "float": type(value) in (int, float) and math.isfinite(value),
                "str": isinstance(value, str),
                "bool": isinstance(value, bool),
                "list[int]": isinstance(value, (list, tuple)),
            }[kind]
            need(fits, f"{f.name}={value!r}. Expected {EXPECTED[kind]}.")
        need(0 <= self.seed < 2**32, f"seed={self.seed!r}. Expected a whole number 0 <= seed < 2**32.")
        need(0 <= self.momentum < 1, f"momentum={self.momentum!r}. Expected 0 <= value < 1, e.g. 0.9.")

        need(
            isinstance(self.epochs, int) and self.epochs >= 1, f"epochs={self.epochs!r}. Expected a whole number >= 1."
        )
        need(
            isinstance(self.batch_size, int) and self.batch_size >= 1,
            f"batch_size={self.batch_size!r}. Expected a whole number >= 1, e.g. 64.",
        )
        need(self.lr > 0, f"lr={self.lr!r}. Expected a positive learning rate, e.g. 1e-3.")
        need(self.stats in ("on", "off"), f"stats={self.stats!r}. Expected on or off.")
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
        check_precision(self.precision)
        from cnnlab.training.augment import parse

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
        if self.size is not None:
            size = self.size
            need(
                isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(n, int) and n >= 1 for n in size),
                f"size={size!r}. Expected [height, width], two whole numbers >= 1.",
            )
        check_rule(self.resize)  # a clear error for an unknown rule, before anything runs
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
    values = read_parsed(path, f"Config file {path}")
    if not isinstance(values, dict):
        raise InputError(f"Config file {path} holds a {type(values).__name__}; expected an object of options.")
    return {k.replace("-", "_"): v for k, v in values.items()}


def differences(saved: dict, asked: dict, ignore=("epochs", "out", "device", "compile")) -> list[str]:
    """Lines 'key: saved -> asked' for every option that differs (used to refuse a mismatched --resume)."""
    return [
        f"{k}: {saved.get(k)!r} (saved) vs {v!r} (asked)"
        for k, v in asked.items()
        if k not in ignore and saved.get(k) != v
    ]


@dataclass(frozen=True)
class Plan:
    """A run before it starts: its options, its folder, and whether it continues a saved run (whose id its
    checkpoint must repeat). Built by :func:`make_plan`; every process of a run trains the same plan."""

    config: TrainConfig
    out: Path
    resuming: bool = False
    run_id: str | None = None
    recipe_line: str | None = None  # what the recipe chose, said at the start
    threads: int | None = None  # a resumed run's own (config.json's); a new run takes the cores free now

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "out": str(self.out),
            "resuming": self.resuming,
            "run_id": self.run_id,
            "recipe_line": self.recipe_line,
            "threads": self.threads,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        config, out = TrainConfig.from_dict(d["config"]), Path(d["out"])
        return cls(config, out, d["resuming"], d["run_id"], d["recipe_line"], d.get("threads"))

    def save(self, path) -> Path:
        return write_text(Path(path), json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path) -> Plan:
        try:
            return cls.from_dict(read_parsed(Path(path), f"--plan {path}"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"--plan {path} is not a plan that cnnlab train wrote ({e}).") from None


def default_folder(cfg: TrainConfig) -> Path:
    """runs/<model>-<data>-<time>, where a run without ``out`` writes."""
    return Path(f"runs/{Path(cfg.model).stem}-{Path(str(cfg.data)).name}-{time.strftime('%Y%m%d-%H%M%S')}")


def make_plan(options: dict, resume=None) -> Plan:
    """The plan for ``options`` (TrainConfig's fields; the recipe's fill in the rest), or for continuing the
    run in ``resume`` with the options saved there (of ``options``, only epochs, device and compile may
    differ from the saved ones, and epochs only with a constant learning rate)."""
    if resume is not None:
        return _resumed(Path(resume), options)
    expanded, line = recipes.expand(options)
    cfg = TrainConfig.from_dict(expanded)
    out = Path(cfg.out) if cfg.out else default_folder(cfg)
    _check_new_folder(out)
    return Plan(replace(cfg, out=str(out)), out, False, uuid.uuid4().hex, line)


def _check_new_folder(out: Path) -> None:
    if (out / CONFIG).exists():
        raise RunError(f"{out} already holds a run. Use --resume {out} to continue it, or choose another --out.")
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file. Expected a new or empty folder for the run directory.")
    if out.is_dir() and any(out.iterdir()):
        found = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise RunError(
            f"--out {out} already holds other files ({found}); a run would write over them. "
            "Choose a new or empty folder."
        )


def _resumed(out: Path, options: dict) -> Plan:
    header = read_json(out / CONFIG)
    saved = header.get("config")
    if not isinstance(saved, dict):
        raise RunError(f"{out / CONFIG} has no 'config' with the run's options; the run cannot be resumed.")
    asked = TrainConfig.from_dict({**saved, **options, "out": str(out)})
    diff = differences(saved, {k: getattr(asked, k) for k in options})
    if saved.get("lr_schedule", "constant") != "constant" and asked.epochs != saved["epochs"]:
        diff.append(
            f"epochs: {saved['epochs']!r} (saved) vs {asked.epochs!r} (asked): the {saved['lr_schedule']} "
            f"learning-rate schedule was laid out over the saved {saved['epochs']} epochs"
        )
    if diff:
        raise RunError(
            f"--resume {out} asks for a different configuration than the saved one:\n  "
            + "\n  ".join(diff)
            + "\nResume with the saved options (only --epochs may grow, and only with a constant learning rate),"
            " or start a new run."
        )
    threads = header.get("threads")
    return Plan(asked, out, True, header.get("run_id"), threads=threads if isinstance(threads, int) else None)
