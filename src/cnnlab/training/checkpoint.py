"""Checkpoints: after every epoch the metrics, the weights and the resume state, in an order that a kill at any
moment cannot break; and the state read back on resume."""

from __future__ import annotations

from cnnlab.run import files as rundir
from cnnlab.training.setup import Setup, held_model


def restore(s: Setup) -> tuple[int, list[dict]]:
    """Weights and optimizer state of the last checkpoint; returns (its epoch, the metrics rows up to it).
    A run stopped before its first checkpoint starts again from epoch 1 with its saved options. Rank 0 reads
    the run directory and sends what it read to the other ranks, which need no copy of it (other machines)."""
    found = s.world.decide(lambda: _read_checkpoint(s))
    epoch, model, optimizer, ema, s.steps, rows, s.stats = found
    if epoch and not s.world.main:
        s.net.load_state_dict(model)
        s.optimizer.load_state_dict(optimizer)
        if s.ema is not None:
            s.ema.load_state_dict(ema)
    return epoch, rows


def _read_checkpoint(s: Setup) -> tuple:
    for stale in s.out.glob(".*.tmp"):  # what a kill -9 in the middle of an atomic write leaves behind
        stale.unlink(missing_ok=True)
    if not (s.out / rundir.STATE).is_file():
        return 0, None, None, None, [], [], []
    epoch = rundir.load_state(s.out / rundir.STATE, s.net, s.optimizer, s.run_id, s.ema)
    steps = [r for r in rundir.read_metrics(s.out / rundir.STEPS) if r.get("epoch", 0) <= epoch]
    rows = [r for r in rundir.read_metrics(s.out / rundir.METRICS) if r.get("epoch", 0) <= epoch]
    stats = [r for r in rundir.read_metrics(s.out / rundir.STATS) if r.get("epoch", 0) <= epoch]
    if not s.world.active:
        return epoch, None, None, None, steps, rows, stats
    ema = s.ema.state_dict() if s.ema is not None else None
    return epoch, s.net.state_dict(), s.optimizer.state_dict(), ema, steps, rows, stats


def checkpoint(s: Setup, epoch: int, rows: list[dict]) -> None:
    """The metrics of every epoch so far, the weights, then the resume state, in that order: a kill between
    two writes leaves a state that is at most one epoch older than the metrics, and restore() keeps only
    the rows up to the state's epoch, so no finished epoch's row is ever lost. Rank 0 alone writes."""
    if not s.world.main:
        return
    rundir.write_metrics(s.out / rundir.STEPS, s.steps)  # restore() keeps the steps up to the state's epoch too
    if s.cfg.stats == "on":
        rundir.write_metrics(s.out / rundir.STATS, s.stats)
    rundir.write_metrics(s.out / rundir.METRICS, rows)
    rundir.save_weights(s.out / rundir.WEIGHTS, held_model(s))
    rundir.save_state(s.out / rundir.STATE, epoch, s.net, s.optimizer, s.run_id, s.ema)
