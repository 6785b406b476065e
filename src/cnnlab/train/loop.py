"""``cnnlab.train(...)``: fit a model on a dataset into a run directory, resumable epoch by epoch.

Speed without tricks a user must know: the data stays uint8 in memory and is
converted per batch (no DataLoader, no worker processes), tensors are channels_last,
every core is used once, and on a CPU with native bfloat16 the forward pass runs
under bf16 autocast (weights and optimizer stay float32).

Reproducibility: each epoch reseeds the shuffle and dropout from (seed, epoch), and
the checkpoint after each epoch holds the weights and the optimizer state together,
so an interrupted run resumed on the CPU ends with the same weights as one that was
never interrupted.
"""

from __future__ import annotations

import math
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab import data as datalib
from cnnlab.atomic import make_folder
from cnnlab.data.images import border_mean
from cnnlab.errors import InputError, RunError, TrainingError
from cnnlab.nn.model import Sequential
from cnnlab.nn.resolve import resolve
from cnnlab.train import run as rundir
from cnnlab.train.config import TrainConfig, differences
from cnnlab.train.engine import autocast, from_numpy, pick_device, pick_precision, set_threads, to_input
from cnnlab.train.evaluate import loss_and_accuracy
from cnnlab.train.inference import outputs_of
from cnnlab.train.progress import LineReporter, SilentReporter


class TrainingInterrupted(TrainingError):
    exit_code = 130


def _optimizer(cfg: TrainConfig, params):
    params = list(params)
    if cfg.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        try:  # one fused kernel for the whole update: about 4% of a seed-fashion step on this CPU
            return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
            return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def _versions() -> dict:
    import numpy

    return {
        "cnnlab": cnnlab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def _resolve(resume, options: dict) -> tuple[TrainConfig, Path, bool, str | None]:
    if resume is None:
        cfg = TrainConfig.from_dict(options)
        out = Path(
            cfg.out or f"runs/{Path(cfg.model).stem}-{Path(str(cfg.data)).name}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if (out / rundir.CONFIG).exists():
            raise RunError(f"{out} already holds a run. Use --resume {out} to continue it, or choose another --out.")
        if out.exists() and not out.is_dir():
            raise RunError(f"--out {out} is a file. Expected a new or empty folder for the run directory.")
        if out.is_dir() and any(out.iterdir()):
            found = ", ".join(sorted(p.name for p in out.iterdir())[:5])
            raise RunError(
                f"--out {out} already holds other files ({found}); a run would write over them. "
                "Choose a new or empty folder."
            )
        cfg.out = str(out)
        return cfg, out, False, uuid.uuid4().hex
    out = Path(resume)
    header = rundir.read_json(out / rundir.CONFIG)
    saved = header.get("config")
    if not isinstance(saved, dict):
        raise RunError(f"{out / rundir.CONFIG} has no 'config' with the run's options; the run cannot be resumed.")
    asked = TrainConfig.from_dict({**saved, **options}).to_dict()
    diff = differences(saved, {k: asked[k] for k in options})
    if saved.get("lr_schedule", "constant") != "constant" and asked["epochs"] != saved["epochs"]:
        diff.append(
            f"epochs: {saved['epochs']!r} (saved) vs {asked['epochs']!r} (asked): the {saved['lr_schedule']} "
            f"learning-rate schedule was laid out over the saved {saved['epochs']} epochs"
        )
    if diff:
        raise RunError(
            f"--resume {out} asks for a different configuration than the saved one:\n  "
            + "\n  ".join(diff)
            + "\nResume with the saved options (only --epochs may grow, and only with a constant learning rate),"
            " or start a new run."
        )
    resumed = TrainConfig.from_dict({**saved, "epochs": asked["epochs"], "out": str(out)})
    return resumed, out, True, header.get("run_id")


@dataclass
class Setup:
    """Everything one run trains with, resolved once: where, on what, with which data and model."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    precision: str
    ds: datalib.Dataset
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    x_fit: torch.Tensor  # uint8 (N, H, W, C), shared with NumPy
    y_fit: torch.Tensor  # int64 (N,)
    held: tuple[str, np.ndarray, np.ndarray]  # ("val" or "test", uint8 images, labels)
    run_id: str | None = None  # config.json's: the checkpoint names it, so another run's is refused
    steps: list[dict] = field(default_factory=list)  # the loss every few steps, written with each checkpoint

    @property
    def n_fit(self) -> int:
        return len(self.y_fit)

    @property
    def ends_in_softmax(self) -> bool:
        return getattr(self.net, "outputs_probabilities", False)


def build(cfg: TrainConfig, out: Path, module: torch.nn.Module | None = None) -> Setup:
    """Threads, device and precision; the dataset and its fit/held-out split; the model and its optimizer."""
    set_threads()
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)
    ds = datalib.load(cfg.data, size=cfg.size, mode=cfg.mode)
    torch.manual_seed(cfg.seed)
    net = module if module is not None else resolve(cfg.model, ds.image_shape, ds.num_classes)
    net = net.to(device).to(memory_format=torch.channels_last)
    n_val = int(round(len(ds.train) * cfg.validation_split))
    n_fit = len(ds.train) - n_val
    if n_fit < 1:
        raise InputError(f"validation_split={cfg.validation_split} leaves no training images.")
    held = ("val", ds.train.x[n_fit:], ds.train.y[n_fit:]) if n_val else ("test", ds.test.x, ds.test.y)
    return Setup(
        cfg,
        out,
        device,
        precision,
        ds,
        net,
        _optimizer(cfg, net.parameters()),
        from_numpy(ds.train.x[:n_fit]),
        from_numpy(ds.train.y[:n_fit]),
        held,
    )


def write_header(s: Setup, command_line: list[str] | None) -> None:
    """config.json (how the run was made) and model.json (what it needs to load), before the first epoch."""
    ds = s.ds
    make_folder(s.out)
    dataset = {
        "name": ds.name,
        "classes": list(ds.classes),
        "image_shape": list(ds.image_shape),
        "train": s.n_fit,
        "validation": len(ds.train) - s.n_fit,
        "test": len(ds.test),
        **{k: v for k, v in ds.info.items() if k in ("source", "sha256", "splits", "counts")},
    }
    rundir.write_json(
        s.out / rundir.CONFIG,
        {
            "config": s.cfg.to_dict(),
            "run_id": s.run_id,
            "command_line": command_line or sys.argv,
            "versions": _versions(),
            "device": str(s.device),
            "precision": s.precision,
            "threads": torch.get_num_threads(),
            "dataset": dataset,
        },
    )
    preprocessing = {
        "input_shape": list(ds.image_shape),
        "mode": "gray" if ds.image_shape[2] == 1 else "rgb",
        "size": list(ds.image_shape[:2]),
        "scale": 1 / 255,
        "layout": "uint8 NHWC -> float NCHW / 255",
        # what predict --invert auto compares a user's image against
        "background": "light" if border_mean(ds.train.x[:1000]) > 127 else "dark",
    }
    spec = s.net.spec() if isinstance(s.net, Sequential) else None
    rundir.write_json(
        s.out / rundir.MODEL_JSON,
        {"format": rundir.FORMAT, "spec": spec, "classes": list(ds.classes), "preprocessing": preprocessing},
    )


def restore(s: Setup) -> tuple[int, list[dict]]:
    """Weights and optimizer state of the last checkpoint; returns (its epoch, the metrics rows up to it).
    A run stopped before its first checkpoint starts again from epoch 1 with its saved options."""
    for stale in s.out.glob(".*.tmp"):  # what a kill -9 in the middle of an atomic write leaves behind
        stale.unlink(missing_ok=True)
    if not (s.out / rundir.STATE).is_file():
        return 0, []
    epoch = rundir.load_state(s.out / rundir.STATE, s.net, s.optimizer, s.run_id)
    s.steps = [r for r in rundir.read_metrics(s.out / rundir.STEPS) if r.get("epoch", 0) <= epoch]
    return epoch, [r for r in rundir.read_metrics(s.out / rundir.METRICS) if r.get("epoch", 0) <= epoch]


STEP_POINTS = 50  # training-loss points recorded an epoch (steps.jsonl)


def fit_epoch(s: Setup, epoch: int, reporter) -> dict:
    """One pass over the training split in the epoch's own shuffled order; the row of training metrics."""
    cfg, net, device = s.cfg, s.net, s.device
    batches = math.ceil(s.n_fit / cfg.batch_size)
    order = torch.randperm(s.n_fit, generator=_epoch_generator(cfg.seed, epoch))
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout draws of this epoch
    net.train()
    reporter.start_epoch(epoch, cfg.epochs, batches)
    t0 = time.perf_counter()
    seen, loss_sum, correct, lr = 0, 0.0, 0, cfg.lr
    every = max(1, batches // STEP_POINTS)  # about STEP_POINTS points an epoch, so one epoch has a curve too
    window = [0, 0.0, 0]  # images, loss sum, correct since the last point
    for b in range(batches):
        idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        xb = to_input(s.x_fit[idx].to(device, non_blocking=True))  # (n, C, H, W) float, channels_last
        yb = s.y_fit[idx].to(device, non_blocking=True)
        with autocast(device, s.precision):
            output = net(xb)
        output = output.float()
        if s.ends_in_softmax:
            loss = F.nll_loss(torch.log(output.clamp_min(1e-12)), yb)
        else:
            loss = F.cross_entropy(output, yb)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"The loss became {loss.item()} at epoch {epoch}, batch {b + 1}. Training stopped; the last "
                f"good checkpoint (epoch {epoch - 1}) is kept in {s.out}. Try a lower --lr (now {cfg.lr})."
            )
        optimizer = s.optimizer
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = cfg.lr_at((epoch - 1) * batches + b, cfg.epochs * batches)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        seen += len(yb)
        batch_loss, batch_correct = loss.item() * len(yb), (output.argmax(1) == yb).sum().item()
        loss_sum += batch_loss
        correct += batch_correct
        window = [window[0] + len(yb), window[1] + batch_loss, window[2] + batch_correct]
        if (b + 1) % every == 0 or b == batches - 1:
            step = (epoch - 1) * batches + b + 1
            s.steps.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "of": batches,
                    "loss": window[1] / window[0],
                    "accuracy": window[2] / window[0],
                }
            )
            window = [0, 0.0, 0]
        if b % 10 == 0 or b == batches - 1:
            reporter.update(b + 1, loss_sum / seen, correct / seen)
    seconds = time.perf_counter() - t0
    return {
        "epoch": epoch,
        "epochs": cfg.epochs,
        "loss": loss_sum / seen,
        "accuracy": correct / seen,
        "seconds": round(seconds, 3),
        "images_per_s": round(seen / seconds, 1),
        "lr": lr,  # of the epoch's last step
    }


def evaluate_held(s: Setup) -> dict:
    """Loss and accuracy on the held-out split (validation, else test), keyed val_* or test_*."""
    name, x, y = s.held
    out = outputs_of(s.net, x, s.device, s.precision)
    loss, acc = loss_and_accuracy(out, torch.from_numpy(np.asarray(y)), s.ends_in_softmax)
    return {f"{name}_loss": loss, f"{name}_accuracy": acc}


def checkpoint(s: Setup, epoch: int, rows: list[dict]) -> None:
    """The metrics of every epoch so far, the weights, then the resume state, in that order: a kill between
    two writes leaves a state that is at most one epoch older than the metrics, and restore() keeps only
    the rows up to the state's epoch, so no finished epoch's row is ever lost."""
    rundir.write_metrics(s.out / rundir.STEPS, s.steps)  # restore() keeps the steps up to the state's epoch too
    rundir.write_metrics(s.out / rundir.METRICS, rows)
    rundir.save_weights(s.out / rundir.WEIGHTS, s.net)
    rundir.save_state(s.out / rundir.STATE, epoch, s.net, s.optimizer, s.run_id)


def train(
    resume=None,
    module: torch.nn.Module | None = None,
    reporter=None,
    verbose: bool = True,
    command_line: list[str] | None = None,
    callbacks=(),
    **options,
) -> rundir.Run:
    """Train and return the :class:`Run`. Options are :class:`TrainConfig`'s fields, e.g.
    ``train(data="mnist", model="seed-fashion", epochs=3, batch_size=64, lr=1e-3, out="runs/a")``.
    ``module`` may be any ``nn.Module`` mapping NCHW float images to logits, used instead of
    ``model`` (its run then needs it again to load). ``resume`` is a run directory to continue.
    ``reporter`` receives the progress (default: one plain line per epoch, or nothing if not
    ``verbose``); each of ``callbacks`` is called as ``callback(run_dir, rows)`` after every epoch's
    checkpoint (``cnnlab train`` passes the one that draws curves.png).
    """
    cfg, out, resuming, run_id = _resolve(resume, options)
    reporter = reporter or (LineReporter() if verbose else SilentReporter())
    s = build(cfg, out, module)
    s.run_id = run_id
    start_epoch, rows = 0, []
    if resuming:
        start_epoch, rows = restore(s)
        if start_epoch:
            reporter.message(f"resuming {out} after epoch {start_epoch} of {cfg.epochs}")
        else:
            reporter.message(f"{out} has no finished epoch: training it from epoch 1 with its saved options")
    else:
        write_header(s, command_line)
        reporter.message(
            f"training {cfg.model} on {s.ds.name} ({s.n_fit:,} images, {s.precision} on {s.device}, "
            f"{torch.get_num_threads()} threads) -> {out}"
        )
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            row = fit_epoch(s, epoch, reporter)
            rows.append({**row, **evaluate_held(s)})
            checkpoint(s, epoch, rows)
            reporter.end_epoch(rows[-1])
            for callback in callbacks:
                callback(out, rows)
    except KeyboardInterrupt:
        reporter.stop()
        done = rows[-1]["epoch"] if rows else 0
        kept = f"The checkpoint of epoch {done} is kept in {out}" if done else f"No epoch of {out} had finished"
        raise TrainingInterrupted(
            f"Interrupted during epoch {done + 1}. {kept}; continue with: cnnlab train --resume {out}"
        ) from None
    except BaseException:
        reporter.stop()
        raise
    return rundir.Run.load(out, model=None if isinstance(s.net, Sequential) else s.net.cpu())
