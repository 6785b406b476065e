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
import time

import torch
import torch.nn.functional as F

from cnnlab.compute.device import autocast, pick_device
from cnnlab.compute.outputs import log_probabilities
from cnnlab.compute.tensors import rows_of, to_input
from cnnlab.data.rows import part
from cnnlab.errors import TrainingError
from cnnlab.run import files as rundir
from cnnlab.run.evaluate import loss_and_accuracy
from cnnlab.run.inference import outputs_of
from cnnlab.run.run import Run
from cnnlab.training import augment, distributed
from cnnlab.training.checkpoint import checkpoint, restore
from cnnlab.training.distributed import World
from cnnlab.training.plan import Plan, make_plan
from cnnlab.training.progress import SilentReporter, default_reporter
from cnnlab.training.setup import Setup, build, held_model, write_header
from cnnlab.training.stats import Recorder


class TrainingInterrupted(TrainingError):
    exit_code = 130


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


STEP_POINTS = 50  # training-loss points recorded an epoch (steps.jsonl)


HELD_BATCH = 256  # images per forward pass of the held-out evaluation: seed-catdog's conv1 output for 1,000
# 100x100 images is 1.18 GB of float32, for 256 a quarter of it, and the numbers are the same

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
    watch = Recorder(s.net, s.stats, hooks=not cfg.compile, world=world) if cfg.stats == "on" else None
    watch_every = Recorder.every(batches)
    reporter.start_epoch(epoch, cfg.epochs, batches, s.n_fit)
    t0 = time.perf_counter()
    lr = cfg.lr
    every = max(1, batches // STEP_POINTS)  # about STEP_POINTS points an epoch, so one epoch has a curve too
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # images, loss sum, correct: this rank, this epoch
    window = torch.zeros_like(sums)  # the same since the last steps.jsonl point
    first_bad = torch.full((), math.inf, device=device)  # the first batch whose loss was not finite
    for b in range(batches):
        batch = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        idx, weight = distributed.shard(batch, world), distributed.loss_weight(batch, world)
        xb = to_input(augment.apply(rows_of(s.x_fit, idx), aug, draws))  # (n, C, H, W) float, channels_last
        yb = s.y_fit[idx]
        watched = watch is not None and (b + 1) % watch_every == 0
        with watch.watching() if watched else contextlib.nullcontext(), autocast(device, s.precision):
            output = net(xb)
        loss = loss_of(output.float(), yb, s.ends_in_softmax, cfg.label_smoothing)
        optimizer = s.optimizer
        optimizer.zero_grad(set_to_none=True)
        (loss * weight if weight != 1 else loss).backward()
        lr = cfg.lr_at((epoch - 1) * batches + b, cfg.epochs * batches)
        for group in optimizer.param_groups:
            group["lr"] = lr
        before = watch.after_backward() if watched else None
        optimizer.step()
        if watched:
            watch.after_step(before, epoch, (epoch - 1) * batches + b + 1)
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
            _record_point(s, window, epoch, (epoch - 1) * batches + b + 1, batches)
        if b % CHECK_EVERY == 0 or last:
            _stop_if_not_finite(s, first_bad, epoch)
            seen, loss_sum, correct = sums.tolist()
            reporter.update(b + 1, loss_sum / seen, correct / seen)
    if watch is not None:
        watch.end_epoch(epoch)
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


def _record_point(s: Setup, window: torch.Tensor, epoch: int, step: int, batches: int) -> None:
    """A steps.jsonl point: the mean loss and accuracy of the steps since the last one, over all ranks."""
    points = s.world.sum(window)  # images, loss sum, correct
    s.steps.append(
        {
            "epoch": epoch,
            "step": step,
            "of": batches,
            "loss": (points[1] / points[0]).item(),
            "accuracy": (points[2] / points[0]).item(),
        }
    )
    window.zero_()


def _stop_if_not_finite(s: Setup, first_bad: torch.Tensor, epoch: int) -> None:
    """A TrainingError naming the first batch (on any rank) whose loss was not finite, if there was one."""
    bad = s.world.least(first_bad).item()
    if bad < math.inf:
        raise TrainingError(
            f"The loss became nan at epoch {epoch}, batch {int(bad)}. Training stopped; the last "
            f"good checkpoint (epoch {epoch - 1}) is kept in {s.out}. Try a lower --lr (now {s.cfg.lr})."
        )


def loss_of(output: torch.Tensor, y: torch.Tensor, softmaxed: bool, smoothing: float = 0.0) -> torch.Tensor:
    """The mean cross-entropy of logits (or of probabilities, for a model that ends in softmax) against the
    labels; with ``smoothing`` e, against (1 - e) * one-hot + e / classes, as Keras's label_smoothing."""
    logp = log_probabilities(output, softmaxed)
    nll = F.nll_loss(logp, y)
    return nll if not smoothing else (1 - smoothing) * nll - smoothing * logp.mean(1).mean()


def evaluate_held(s: Setup) -> dict:
    """Loss and accuracy on the held-out split (validation, else test), keyed val_* or test_*; each rank
    evaluates its share of the images and the sums are added over the ranks."""
    name, x, y = s.held
    world = s.world
    x, y = part(x, slice(world.rank, None, world.size)), y[world.rank :: world.size]
    out = outputs_of(held_model(s), x, s.device, s.precision, HELD_BATCH)
    loss, acc = loss_and_accuracy(out, y.to(out.device), s.ends_in_softmax)
    counts = torch.tensor([len(y), loss * len(y), acc * len(y)], dtype=torch.float64, device=s.device)
    n, loss_sum, correct = world.sum(counts)
    return {f"{name}_loss": (loss_sum / n).item(), f"{name}_accuracy": (correct / n).item()}


def train(
    resume=None,
    module: torch.nn.Module | None = None,
    reporter=None,
    verbose: bool = True,
    command_line: list[str] | None = None,
    callbacks=(),
    plan: Plan | None = None,
    live: bool = False,
    **options,
) -> Run | None:
    """Train and return the :class:`Run`. Options are :class:`TrainConfig`'s fields, e.g.
    ``train(data="mnist", model="seed-fashion", epochs=3, batch_size=64, lr=1e-3, out="runs/a")``.
    ``module`` may be any ``nn.Module`` mapping NCHW float images to logits, used instead of
    ``model`` (its run then needs it again to load). ``resume`` is a run directory to continue.
    ``reporter`` receives the progress (default: one plain line per epoch, or nothing if not
    ``verbose``; in a Jupyter notebook one output updated in place, with a bar within each epoch and,
    with ``live``, the curves redrawn after every epoch), and its ``bars``, when it has them, draw a long
    load (an image folder's decoding); each of ``callbacks`` is called as ``callback(run_dir, rows)`` after
    every epoch's checkpoint (``cnnlab train`` passes the one that draws curves.png). ``plan`` is a :class:`Plan` made
    already (by :func:`make_plan`), instead of ``resume`` and ``options``.

    In a process that a launcher started as one of several (``cnnlab train --nproc N``, ``torchrun``), it
    trains its rank's part of every batch (:mod:`cnnlab.training.distributed`); rank 0 writes the run and
    returns it, the other ranks return None.
    """
    device = plan.config.device if plan is not None else options.get("device") or "auto"
    world = distributed.join(pick_device(device))
    if world.main:
        reporter = reporter or default_reporter(verbose, live)
    else:
        reporter = SilentReporter()  # rank 0 reports for all
    try:
        with _cudnn_benchmark(), _threads_restored():
            # rank 0's plan is every rank's: made there (torchrun's workers), or the one --nproc handed to all
            given = plan
            plan = world.decide(lambda: given or make_plan(options, resume))
            return _train(world, plan, module, reporter, command_line, callbacks)
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


@contextlib.contextmanager
def _threads_restored():
    """The run takes the cores free at its start (:func:`~cnnlab.compute.device.set_threads`); the caller's
    number of torch threads is restored after it."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _start(s: Setup, plan: Plan, reporter, command_line, module) -> tuple[int, list[dict]]:
    """The epoch the run continues after and the metrics rows so far: the checkpoint's when resuming, else
    (0, []) once config.json and model.json are written. Says what starts."""
    world, out, cfg = s.world, plan.out, plan.config
    if plan.resuming:
        start_epoch, rows = restore(s)
        if start_epoch:
            reporter.message(f"resuming {out} after epoch {start_epoch} of {cfg.epochs}{_processes(world)}")
        else:
            reporter.message(f"{out} has no finished epoch: training it from epoch 1 with its saved options")
        return start_epoch, rows
    if world.main:
        write_header(s, command_line)
    if plan.recipe_line:
        reporter.message(plan.recipe_line)
    model = cfg.model if module is None else _name_of(module)
    reporter.message(
        f"training {model} on {s.ds.name} ({s.n_fit:,} images, {s.precision} on {s.device}, "
        f"{_threads()}{_processes(world)}) -> {out}"
    )
    return 0, []


def _train(world: World, plan: Plan, module, reporter, command_line, callbacks) -> Run | None:
    s = build(plan, module, world, getattr(reporter, "bars", None))
    if world.main:  # how the data was read: a folder's skipped files, its images read from disk
        for note in s.ds.info.get("notes", ()):
            reporter.message(f"data: {note}")
    start_epoch, rows = _start(s, plan, reporter, command_line, module)
    out = plan.out
    board = None
    if plan.config.tensorboard and world.main:
        from cnnlab.training.tensorboard import TensorBoardLog

        board = TensorBoardLog(plan.config.tensorboard)
    try:
        for epoch in range(start_epoch + 1, plan.config.epochs + 1):
            row = fit_epoch(s, epoch, reporter)
            rows.append({**row, **evaluate_held(s)})
            checkpoint(s, epoch, rows)
            if board is not None:
                board.epoch(s, rows[-1], held_model(s))
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
    finally:
        if board is not None:
            board.close()
    world.barrier()  # every rank is done before any leaves the process group
    if not world.main:
        return None  # the run directory is rank 0's (on another machine, maybe)
    saved = rundir.read_json(out / rundir.MODEL_JSON).get("spec")  # else the run needs its module to load
    return Run.load(out, model=None if saved else s.net.cpu())


def _name_of(module: torch.nn.Module) -> str:
    """What the start of training calls a model passed as ``module``: its name, else its class."""
    return str(getattr(module, "name", None) or type(module).__name__)


def _threads() -> str:
    n = torch.get_num_threads()
    return f"{n} thread{'s' if n != 1 else ''}"


def _processes(world: World) -> str:
    return f" in each of {world.size} processes, {world.backend}" if world.active else ""
