"""Training in several processes, on PyTorch's own machinery.

``cnnlab train --nproc N`` starts N workers through ``torch.distributed.run``'s elastic launcher (the same
launcher ``torchrun`` is), and ``torchrun --nnodes M --nproc-per-node N ... -m cnnlab train`` starts the
same workers on several machines. Each worker joins the process group (gloo on CPU, nccl on CUDA) from the
launcher's environment, and ``DistributedDataParallel`` averages the gradients. The rules cnnlab adds live
here:

- every rank takes its own part of each global batch of the epoch's shuffled order (:func:`shard`), so the
  parts are disjoint and cover the epoch, and the global batch stays ``batch_size``;
- each rank's loss is weighted by its share of the global batch (:func:`loss_weight`), so the averaged
  gradient is the single-process gradient of the whole batch;
- sums (loss, correct answers, images) are added across ranks before anything is reported or written;
- only rank 0 writes the run directory; BatchNormalization adds its batch statistics across ranks
  (``cnnlab.nn.layers``), as one process would compute them over the whole batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from cnnlab.compute.quiet import quiet_loggers
from cnnlab.errors import CnnlabError, InputError, TrainingError
from cnnlab.limits import check_workers
from cnnlab.ranks import launched


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: rank ``rank`` of ``size`` (rank 0 of 1 alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` added over all ranks (the same tensor back when alone)."""
        if self.active:
            values = values.clone()
            dist.all_reduce(values)
        return values

    def least(self, value: torch.Tensor) -> torch.Tensor:
        """The smallest ``value`` over all ranks."""
        if self.active:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return value

    def from_main(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def decide(self, decision):
        """Rank 0 calls ``decision()`` and every rank returns its result; a CnnlabError it raises is raised on
        every rank (the others stop with rank 0's error instead of waiting for it). Alone, just the call."""
        if not self.active:
            return decision()
        result = None
        if self.main:
            try:
                result = decision()
            except CnnlabError as e:
                result = e
        result = self.from_main(result)
        if isinstance(result, CnnlabError):
            raise result
        return result

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block, then the others do (a dataset fetched once, then read from the cache)."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()


ALONE = World()


def join(device: torch.device) -> World:
    """The world of this process: alone, or (in a launched worker) its rank in the process group, which is
    joined here with gloo on CPU and nccl on CUDA."""
    if not launched():
        return ALONE
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_backend())


def leave(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def end_worker(code: int = 0) -> None:
    """End a launched worker process once its work is done and its output flushed, without the interpreter's
    and torch's own teardown: a worker's gloo threads can still be joinable then, and their destruction
    aborted rank 1 now and then ("terminate called without an active exception", SIGABRT) after a run had
    finished and been written. Does nothing in a process that no launcher started."""
    if not launched():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def shard(batch: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's part of one global batch of indices: every ``size``-th from position ``rank``. The parts
    of all ranks are disjoint and together are the whole batch. A rank whose part would be empty (a last
    batch smaller than the number of ranks) gets the batch's first index, weighted 0 by
    :func:`loss_weight`, so that every rank still takes the step together."""
    part = batch[world.rank :: world.size]
    return part if len(part) else batch[:1]


def loss_weight(batch: torch.Tensor, world: World) -> float:
    """The factor on this rank's mean loss that makes DDP's average of the ranks' gradients the gradient of
    the mean loss over the whole global batch: local count * ranks / global count."""
    local = len(batch[world.rank :: world.size])
    return local * world.size / len(batch)


def device_for(device: torch.device, world: World) -> torch.device:
    """A CUDA worker uses the GPU of its local rank."""
    if world.active and device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def wrap(net: torch.nn.Module, device: torch.device, world: World) -> torch.nn.Module:
    """The module a training step calls: ``net`` itself alone, else ``DistributedDataParallel`` around it."""
    if not world.active:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids)


# What ``--nproc`` adds around the workers ------------------------------------------------------------------


def _describe(failure) -> str:
    if failure.exitcode < 0:
        try:
            name = signal.Signals(-failure.exitcode).name
        except ValueError:
            name = f"signal {-failure.exitcode}"
        return f"was killed by {name}"
    return f"exited with code {failure.exitcode}"


def _kept(out: Path, nproc: int) -> str:
    from cnnlab.run import files as rundir

    rows = rundir.read_metrics(out / rundir.METRICS) if (out / rundir.METRICS).is_file() else []
    done = rows[-1].get("epoch", 0) if rows else 0
    if not done:
        return f"No epoch of {out} had finished."
    return (
        f"The checkpoint of epoch {done} is kept in {out}; continue with: cnnlab train --resume {out} --nproc {nproc}"
    )


COMMAND_LINE = "CNNLAB_COMMAND_LINE"  # the user's command, which config.json records, passed to the workers


def command_line() -> list[str] | None:
    """The command the user typed, in a worker that ``--nproc`` started (None elsewhere)."""
    text = os.environ.get(COMMAND_LINE)
    return json.loads(text) if text and launched() else None


def launch(nproc: int, args: list[str], out: Path, typed: list[str] | None = None) -> int:
    """Run ``cnnlab train *args`` as ``nproc`` workers on this machine through PyTorch's elastic launcher
    and wait for them. A worker that fails stops them all (no restarts): the exit code is the worker's
    (2 for bad options, 130 for Ctrl-C, whose messages rank 0 printed), or 1 with one line naming the rank
    when a worker died some other way."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if launched():
        raise InputError("--nproc was given inside a launched worker (torchrun starts the workers itself).")
    cores = len(os.sched_getaffinity(0))
    check_workers(nproc, cores)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",  # a free port, as torchrun --standalone
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", COMMAND_LINE)}
    if not saved["OMP_NUM_THREADS"]:  # the cores shared out between the workers, none oversubscribed
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // nproc))
    os.environ[COMMAND_LINE] = json.dumps(typed or ["cnnlab", "train", *args, "--nproc", str(nproc)])
    try:
        # the elastic agent's own lines (rendezvous, closing signals, its failure banner) give way to the
        # one line raised below
        with quiet_loggers("torch.distributed.elastic", "torch.distributed.launcher", level=logging.CRITICAL):
            elastic_launch(config, sys.executable)("-m", "cnnlab", "train", *args)
        return 0
    except ChildFailedError as e:
        rank, failure = min(e.failures.items(), key=lambda item: item[1].timestamp)
        if failure.exitcode in (2, 130):
            return failure.exitcode  # rank 0 said what happened
        raise TrainingError(
            f"Worker rank {rank} (pid {failure.pid}) {_describe(failure)}; all {nproc} workers were stopped. "
            + _kept(out, nproc)
        ) from None
    except SignalException as e:
        if e.sigval == signal.SIGINT:
            return 130  # the workers were interrupted too, and rank 0 said where the run stands
        raise TrainingError(
            f"Stopped by {signal.Signals(e.sigval).name}: all {nproc} workers were stopped. " + _kept(out, nproc)
        ) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
