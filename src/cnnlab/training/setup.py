"""Everything one run trains with, resolved once from its plan: threads, device and precision, the dataset and
its split, the model and its optimizer; and the two files written before the first epoch."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

import cnnlab
from cnnlab import data as datalib
from cnnlab.atomic import make_folder
from cnnlab.compute.device import pick_device, pick_precision, set_threads
from cnnlab.compute.outputs import ends_in_softmax
from cnnlab.compute.tensors import from_numpy, on_device
from cnnlab.data.images import border_mean, mode_for
from cnnlab.data.rows import part
from cnnlab.errors import InputError
from cnnlab.nn.graph import Model
from cnnlab.nn.resolve import resolve
from cnnlab.run import files as rundir
from cnnlab.training import augment, distributed
from cnnlab.training.distributed import ALONE, World
from cnnlab.training.plan import Plan, TrainConfig


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


def _versions() -> dict:
    import numpy

    return {
        "cnnlab": cnnlab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


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
    x_fit: torch.Tensor  # uint8 (N, H, W, C), shared with NumPy; a RowFile past the memory budget
    y_fit: torch.Tensor  # int64 (N,)
    held: tuple[str, torch.Tensor, torch.Tensor]  # ("val" or "test", uint8 images, labels), on the device
    world: World = ALONE  # this process's rank among the training processes
    step_net: torch.nn.Module | None = None  # what a training step calls: net, or DDP around it
    ema: torch.nn.Module | None = None  # AveragedModel: the moving average of net's weights (--ema)
    run_id: str | None = None  # config.json's: the checkpoint names it, so another run's is refused
    steps: list[dict] = field(default_factory=list)  # the loss every few steps, written with each checkpoint
    stats: list[dict] = field(default_factory=list)  # stats.jsonl's lines (--stats on), written with it too

    @property
    def n_fit(self) -> int:
        return len(self.y_fit)

    @property
    def ends_in_softmax(self) -> bool:
        return ends_in_softmax(self.net)


def build(plan: Plan, module: torch.nn.Module | None = None, world: World = ALONE, bars=None) -> Setup:
    """Threads, device and precision; the dataset and its fit/held-out split, on the device for the whole run
    (uint8: 47 MB for MNIST's 60,000 images) or, past the memory budget, read from disk a batch at a time
    (:mod:`cnnlab.data.rows`); the model (wrapped for several processes) and its optimizer.
    ``bars``: a progress-bar factory (as ``cnnlab.data.load`` takes) for rank 0's load."""
    cfg, out = plan.config, plan.out
    set_threads(plan.threads)
    device = distributed.device_for(pick_device(cfg.device), world)
    precision = pick_precision(cfg.precision, device)
    with world.main_first():  # a dataset is fetched once, then read from the cache
        ds = datalib.load(
            cfg.data,
            size=cfg.size,
            mode=cfg.mode,
            progress=bars if world.main else None,
            resize=cfg.resize,
            crop_to_aspect_ratio=cfg.crop_to_aspect_ratio,
        )
    augment.check_for(augment.parse(cfg.augment), ds.name)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also sends rank 0's)
    net = module if module is not None else resolve(cfg.model, ds.image_shape, ds.num_classes)
    net = net.to(device).to(memory_format=torch.channels_last)
    n_val = int(round(len(ds.train) * cfg.validation_split))
    n_fit = len(ds.train) - n_val
    if n_fit < 1:
        raise InputError(f"validation_split={cfg.validation_split} leaves no training images.")
    x = ds.train.x  # past the memory budget, a file of rows: each split is a view of it, read a batch at a time
    held = ("val", part(x, slice(n_fit, None)), ds.train.y[n_fit:]) if n_val else ("test", ds.test.x, ds.test.y)
    return Setup(
        cfg,
        out,
        device,
        precision,
        ds,
        net,
        _optimizer(cfg, net.parameters()),
        on_device(part(x, slice(0, n_fit)), device),
        from_numpy(ds.train.y[:n_fit]).to(device),
        (held[0], on_device(held[1], device), from_numpy(held[2]).to(device)),
        world,
        _compiled(distributed.wrap(net, device, world), cfg.compile),
        _averaged(net, cfg.ema),
        plan.run_id,
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


def _spec_of(net: torch.nn.Module) -> dict | None:
    """model.json's spec of a cnnlab model, or None for a model that needs itself to load (a custom nn.Module,
    or a graph no spec can write: a layer called twice)."""
    if not isinstance(net, Model):
        return None
    try:
        return net.spec()
    except InputError:
        return None


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
        "mode": mode_for(ds.image_shape[2]),
        "size": list(ds.image_shape[:2]),
        "scale": 1 / 255,
        "layout": "uint8 NHWC -> float NCHW / 255",
        # what predict --invert auto compares a user's image against
        "background": "light" if border_mean(ds.train.x[:1000]) > 127 else "dark",
    }
    spec = _spec_of(s.net)
    rundir.write_json(
        s.out / rundir.MODEL_JSON,
        {"format": rundir.FORMAT, "spec": spec, "classes": list(ds.classes), "preprocessing": preprocessing},
    )
