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

import contextlib
import math
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

import cnnlab
from cnnlab import data as datalib
from cnnlab.atomic import make_folder
from cnnlab.data.images import border_mean
from cnnlab.errors import CnnlabError, InputError, RunError, TrainingError
from cnnlab.nn.model import Sequential
from cnnlab.nn.resolve import resolve
from cnnlab.train import augment, distributed, recipes
from cnnlab.train import run as rundir
from cnnlab.train.config import TrainConfig, differences
from cnnlab.train.distributed import ALONE, World
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


def run_folder(options: dict, resume=None) -> Path:
    """Where a run with these options writes: the resumed folder, ``out``, or runs/<model>-<data>-<time>."""
    if resume is not None:
        return Path(resume)
    cfg = TrainConfig.from_dict(recipes.expand(options)[0])
    return Path(cfg.out or f"runs/{Path(cfg.model).stem}-{Path(str(cfg.data)).name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _resolve(resume, options: dict) -> tuple[TrainConfig, Path, bool, str | None]:
    if resume is None:
        cfg = TrainConfig.from_dict(options)
        out = run_folder(options)
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
    held: tuple[str, torch.Tensor, torch.Tensor]  # ("val" or "test", uint8 images, labels), on the device
    world: World = ALONE  # this process's rank among the training processes
    step_net: torch.nn.Module | None = None  # what a training step calls: net, or DDP around it
    ema: torch.nn.Module | None = None  # AveragedModel: the moving average of net's weights (--ema)
    run_id: str | None = None  # config.json's: the checkpoint names it, so another run's is refused
    steps: list[dict] = field(default_factory=list)  # the loss every few steps, written with each checkpoint

    @property
    def n_fit(self) -> int:
        return len(self.y_fit)

    @property
    def ends_in_softmax(self) -> bool:
        return getattr(self.net, "outputs_probabilities", False)


def build(cfg: TrainConfig, out: Path, module: torch.nn.Module | None = None, world: World = ALONE) -> Setup:
    """Threads, device and precision; the dataset and its fit/held-out split, on the device for the whole run
    (uint8: 47 MB for MNIST's 60,000 images); the model (wrapped for several processes) and its optimizer."""
    set_threads()
    device = distributed.device_for(pick_device(cfg.device), world)
    precision = pick_precision(cfg.precision, device)
    with world.main_first():  # a dataset is fetched once, then read from the cache
        ds = datalib.load(cfg.data, size=cfg.size, mode=cfg.mode)
    augment.check_for(augment.parse(cfg.augment), ds.name)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also sends rank 0's)
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
        from_numpy(ds.train.x[:n_fit]).to(device),
        from_numpy(ds.train.y[:n_fit]).to(device),
        (held[0], from_numpy(held[1]).to(device), from_numpy(held[2]).to(device)),
        world,
        _compiled(distributed.wrap(net, device, world), cfg.compile),
        _averaged(net, cfg.ema),
    )


def _averaged(net: torch.nn.Module, decay: float) -> torch.nn.Module | None:
    """torch's AveragedModel keeping decay * average + (1 - decay) * weights after every step (and BatchNorm's
    moving statistics alike), or None without --ema."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def held_model(s: Setup) -> torch.nn.Module:
    """The model that is evaluated and saved: the moving average with --ema, else the trained weights."""
    return s.ema.module if s.ema is not None else s.net


def _compiled(step_net: torch.nn.Module, compile: bool) -> torch.nn.Module:
    """The module a training step calls, through torch.compile when asked (the saved weights stay net's)."""
    return torch.compile(step_net) if compile else step_net


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
            "world_size": s.world.size,  # training processes (each with the threads above)
            "backend": s.world.backend,  # torch.distributed's, or null for one process
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
    A run stopped before its first checkpoint starts again from epoch 1 with its saved options. Rank 0 reads
    the run directory and sends what it read to the other ranks, which need no copy of it (other machines)."""
    found = None
    if s.world.main:
        for stale in s.out.glob(".*.tmp"):  # what a kill -9 in the middle of an atomic write leaves behind
            stale.unlink(missing_ok=True)
        try:
            found = _read_checkpoint(s)
        except CnnlabError as e:
            s.world.from_main(e)
            raise
    found = s.world.from_main(found)
    if isinstance(found, CnnlabError):
        raise found
    epoch, model, optimizer, ema, s.steps, rows = found
    if epoch and not s.world.main:
        s.net.load_state_dict(model)
        s.optimizer.load_state_dict(optimizer)
        if s.ema is not None:
            s.ema.load_state_dict(ema)
    return epoch, rows


def _read_checkpoint(s: Setup) -> tuple:
    if not (s.out / rundir.STATE).is_file():
        return 0, None, None, None, [], []
    epoch = rundir.load_state(s.out / rundir.STATE, s.net, s.optimizer, s.run_id, s.ema)
    steps = [r for r in rundir.read_metrics(s.out / rundir.STEPS) if r.get("epoch", 0) <= epoch]
    rows = [r for r in rundir.read_metrics(s.out / rundir.METRICS) if r.get("epoch", 0) <= epoch]
    if not s.world.active:
        return epoch, None, None, None, steps, rows
    ema = s.ema.state_dict() if s.ema is not None else None
    return epoch, s.net.state_dict(), s.optimizer.state_dict(), ema, steps, rows


STEP_POINTS = 50  # training-loss points recorded an epoch (steps.jsonl)


CHECK_EVERY = 10  # steps between reads of the device's running sums (progress bar, NaN check)


def fit_epoch(s: Setup, epoch: int, reporter) -> dict:
    """One pass over the training split in the epoch's own shuffled order; the row of training metrics.

    Each rank takes its part of every global batch (:func:`distributed.shard`). The loop never waits for
    the device inside an epoch: loss, correct answers and images accumulate in a device tensor that is
    read every ``CHECK_EVERY`` steps (the progress bar, the NaN check) and at the ~50 points of steps.jsonl;
    the epoch's sums are added over the ranks at its end."""
    cfg, device, world = s.cfg, s.device, s.world
    net = s.step_net if s.step_net is not None else s.net
    batches = math.ceil(s.n_fit / cfg.batch_size)
    order = torch.randperm(s.n_fit, generator=_epoch_generator(cfg.seed, epoch)).to(device)
    torch.manual_seed(cfg.seed * 100_003 + epoch + 1_000_003 * world.rank)  # dropout draws of this epoch and rank
    aug = augment.parse(cfg.augment)
    draws = torch.Generator(device=device).manual_seed(cfg.seed * 100_003 + epoch + 7_000_003 * (world.rank + 1))
    net.train()
    reporter.start_epoch(epoch, cfg.epochs, batches)
    t0 = time.perf_counter()
    lr = cfg.lr
    every = max(1, batches // STEP_POINTS)  # about STEP_POINTS points an epoch, so one epoch has a curve too
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # images, loss sum, correct: this rank, this epoch
    window = torch.zeros_like(sums)  # the same since the last steps.jsonl point
    first_bad = torch.full((), math.inf, device=device)  # the first batch whose loss was not finite
    for b in range(batches):
        batch = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        idx, weight = distributed.shard(batch, world), distributed.loss_weight(batch, world)
        xb = to_input(augment.apply(s.x_fit[idx], aug, draws))  # (n, C, H, W) float, channels_last
        yb = s.y_fit[idx]
        with autocast(device, s.precision):
            output = net(xb)
        loss = loss_of(output.float(), yb, s.ends_in_softmax, cfg.label_smoothing)
        optimizer = s.optimizer
        optimizer.zero_grad(set_to_none=True)
        (loss * weight if weight != 1 else loss).backward()
        lr = cfg.lr_at((epoch - 1) * batches + b, cfg.epochs * batches)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        if s.ema is not None:
            s.ema.update_parameters(s.net)
        with torch.no_grad():
            n = len(yb) if weight else 0  # a stand-in of weight 0 counts for nothing
            step = torch.stack([loss.new_tensor(n), loss * n, (output.float().argmax(1) == yb).sum() * (n > 0)])
            sums += step
            window += step
            first_bad = torch.where(torch.isfinite(loss) | (first_bad < math.inf), first_bad, b + 1.0)
        last = b == batches - 1
        if (b + 1) % every == 0 or last:
            points = world.sum(window)
            s.steps.append(
                {
                    "epoch": epoch,
                    "step": (epoch - 1) * batches + b + 1,
                    "of": batches,
                    "loss": (points[1] / points[0]).item(),
                    "accuracy": (points[2] / points[0]).item(),
                }
            )
            window.zero_()
        if b % CHECK_EVERY == 0 or last:
            bad = world.least(first_bad).item()
            if bad < math.inf:
                raise TrainingError(
                    f"The loss became nan at epoch {epoch}, batch {int(bad)}. Training stopped; the last "
                    f"good checkpoint (epoch {epoch - 1}) is kept in {s.out}. Try a lower --lr (now {cfg.lr})."
                )
            seen, loss_sum, correct = sums.tolist()
            reporter.update(b + 1, loss_sum / seen, correct / seen)
    seen, loss_sum, correct = world.sum(sums).tolist()
    seconds = time.perf_counter() - t0
    return {
        "epoch": epoch,
        "epochs": cfg.epochs,
        "loss": loss_sum / seen,
        "accuracy": correct / seen,
        "seconds": round(seconds, 3),
        "images_per_s": round(seen / seconds, 1),
        "lr": lr,  # of the epoch's last step
        "world_size": world.size,
    }


def loss_of(output: torch.Tensor, y: torch.Tensor, ends_in_softmax: bool, smoothing: float = 0.0) -> torch.Tensor:
    """The mean cross-entropy of logits (or of probabilities, for a model that ends in softmax) against the
    labels; with ``smoothing`` e, against (1 - e) * one-hot + e / classes, as Keras's label_smoothing."""
    logp = torch.log(output.clamp_min(1e-12)) if ends_in_softmax else F.log_softmax(output, dim=1)
    nll = F.nll_loss(logp, y)
    return nll if not smoothing else (1 - smoothing) * nll - smoothing * logp.mean(1).mean()


def evaluate_held(s: Setup) -> dict:
    """Loss and accuracy on the held-out split (validation, else test), keyed val_* or test_*; each rank
    evaluates its share of the images and the sums are added over the ranks."""
    name, x, y = s.held
    world = s.world
    x, y = x[world.rank :: world.size], y[world.rank :: world.size]
    out = outputs_of(held_model(s), x, s.device, s.precision)
    loss, acc = loss_and_accuracy(out, y.to(out.device), s.ends_in_softmax)
    counts = torch.tensor([len(y), loss * len(y), acc * len(y)], dtype=torch.float64, device=s.device)
    n, loss_sum, correct = world.sum(counts)
    return {f"{name}_loss": (loss_sum / n).item(), f"{name}_accuracy": (correct / n).item()}


def checkpoint(s: Setup, epoch: int, rows: list[dict]) -> None:
    """The metrics of every epoch so far, the weights, then the resume state, in that order: a kill between
    two writes leaves a state that is at most one epoch older than the metrics, and restore() keeps only
    the rows up to the state's epoch, so no finished epoch's row is ever lost. Rank 0 alone writes."""
    if not s.world.main:
        return
    rundir.write_metrics(s.out / rundir.STEPS, s.steps)  # restore() keeps the steps up to the state's epoch too
    rundir.write_metrics(s.out / rundir.METRICS, rows)
    rundir.save_weights(s.out / rundir.WEIGHTS, held_model(s))
    rundir.save_state(s.out / rundir.STATE, epoch, s.net, s.optimizer, s.run_id, s.ema)


def train(
    resume=None,
    module: torch.nn.Module | None = None,
    reporter=None,
    verbose: bool = True,
    command_line: list[str] | None = None,
    callbacks=(),
    **options,
) -> rundir.Run | None:
    """Train and return the :class:`Run`. Options are :class:`TrainConfig`'s fields, e.g.
    ``train(data="mnist", model="seed-fashion", epochs=3, batch_size=64, lr=1e-3, out="runs/a")``.
    ``module`` may be any ``nn.Module`` mapping NCHW float images to logits, used instead of
    ``model`` (its run then needs it again to load). ``resume`` is a run directory to continue.
    ``reporter`` receives the progress (default: one plain line per epoch, or nothing if not
    ``verbose``); each of ``callbacks`` is called as ``callback(run_dir, rows)`` after every epoch's
    checkpoint (``cnnlab train`` passes the one that draws curves.png).

    In a process that a launcher started as one of several (``cnnlab train --nproc N``, ``torchrun``), it
    trains its rank's part of every batch (:mod:`cnnlab.train.distributed`); rank 0 writes the run and
    returns it, the other ranks return None.
    """
    world = distributed.join(pick_device(options.get("device") or "auto"))
    try:
        with _cudnn_benchmark():
            return _train(world, resume, module, reporter, verbose, command_line, callbacks, options)
    except RuntimeError as e:  # a collective failed: another rank died or was stopped
        if not world.active:
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrainingError(f"Rank {world.rank} lost the other training processes ({first}).") from None
    finally:
        distributed.leave(world)


@contextlib.contextmanager
def _cudnn_benchmark():
    """cuDNN picks the fastest convolution algorithm for the run's fixed shapes; the setting is restored."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _train(world: World, resume, module, reporter, verbose, command_line, callbacks, options) -> rundir.Run | None:
    resolved, recipe = None, None
    if world.main:
        try:
            if resume is None:
                options, recipe = recipes.expand(options)
            resolved = _resolve(resume, options)
        except CnnlabError as e:
            world.from_main(e)  # the other ranks stop with the same error instead of waiting
            raise
    resolved = world.from_main(resolved)
    if isinstance(resolved, CnnlabError):
        raise resolved
    cfg, out, resuming, run_id = resolved
    if not world.main:
        reporter = SilentReporter()
    reporter = reporter or (LineReporter() if verbose else SilentReporter())
    s = build(cfg, out, module, world)
    s.run_id = run_id
    start_epoch, rows = 0, []
    if resuming:
        start_epoch, rows = restore(s)
        if start_epoch:
            reporter.message(f"resuming {out} after epoch {start_epoch} of {cfg.epochs}{_processes(world)}")
        else:
            reporter.message(f"{out} has no finished epoch: training it from epoch 1 with its saved options")
    else:
        if world.main:
            write_header(s, command_line)
        if recipe:
            reporter.message(recipe)
        reporter.message(
            f"training {cfg.model} on {s.ds.name} ({s.n_fit:,} images, {s.precision} on {s.device}, "
            f"{torch.get_num_threads()} threads{_processes(world)}) -> {out}"
        )
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            row = fit_epoch(s, epoch, reporter)
            rows.append({**row, **evaluate_held(s)})
            checkpoint(s, epoch, rows)
            reporter.end_epoch(rows[-1])
            for callback in callbacks if world.main else ():
                callback(out, rows)
    except KeyboardInterrupt:
        reporter.stop()
        done = rows[-1]["epoch"] if rows else 0
        kept = f"The checkpoint of epoch {done} is kept in {out}" if done else f"No epoch of {out} had finished"
        raise TrainingInterrupted(
            f"Interrupted during epoch {done + 1}. {kept}; continue with: cnnlab train --resume {out}"
            + (f" --nproc {world.size}" if world.active else "")
        ) from None
    except BaseException:
        reporter.stop()
        raise
    world.barrier()  # every rank is done before any leaves the process group
    if not world.main:
        return None  # the run directory is rank 0's (on another machine, maybe)
    return rundir.Run.load(out, model=None if isinstance(s.net, Sequential) else s.net.cpu())


def _processes(world: World) -> str:
    return f" in each of {world.size} processes, {world.backend}" if world.active else ""
