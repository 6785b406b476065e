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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab import data as datalib
from cnnlab.data.images import border_mean
from cnnlab.errors import InputError, RunError, TrainingError
from cnnlab.nn import zoo
from cnnlab.nn.model import Sequential
from cnnlab.nn.spec import from_spec, read_spec
from cnnlab.train import run as rundir
from cnnlab.train.config import TrainConfig, differences
from cnnlab.train.engine import autocast, from_numpy, pick_device, pick_precision, set_threads, to_input
from cnnlab.train.evaluate import loss_and_accuracy
from cnnlab.train.inference import logits_of
from cnnlab.train.progress import RichReporter, SilentReporter


class TrainingInterrupted(TrainingError):
    exit_code = 130


def build_model(name: str, input_shape, num_classes: int) -> Sequential:
    """A zoo model by name, or a spec file, fitted to the dataset's input shape and class count."""
    if name in zoo.ZOO:
        return zoo.build(name, input_shape=input_shape, num_classes=num_classes)
    if Path(name).suffix.lower() in (".json", ".toml"):
        spec = read_spec(name)
        declared = spec.get("input_shape")
        if declared and tuple(declared) != tuple(input_shape):
            raise InputError(
                f"{name} declares input_shape {tuple(declared)} but the dataset's images are {tuple(input_shape)}. "
                "Remove input_shape from the spec, or pass --size/--mode to convert the images."
            )
        model = from_spec(spec, input_shape=input_shape)
        if model.output_shape != (num_classes,):
            raise InputError(
                f"{name} ends in {model.output_shape} outputs but the dataset has {num_classes} classes. "
                f"Make the last layer Dense({num_classes})."
            )
        return model
    raise InputError(f"Unknown model {name!r}. Expected one of: {', '.join(zoo.ZOO)}, or a .json/.toml spec file.")


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


def _resolve(resume, options: dict) -> tuple[TrainConfig, Path, bool]:
    if resume is None:
        cfg = TrainConfig.from_dict(options)
        out = Path(
            cfg.out or f"runs/{Path(cfg.model).stem}-{Path(str(cfg.data)).name}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if (out / rundir.CONFIG).exists():
            raise RunError(f"{out} already holds a run. Use --resume {out} to continue it, or choose another --out.")
        cfg.out = str(out)
        return cfg, out, False
    out = Path(resume)
    saved = rundir._read_json(out / rundir.CONFIG)["config"]
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
    return TrainConfig.from_dict({**saved, "epochs": asked["epochs"], "out": str(out)}), out, True


def train(
    resume=None,
    module: torch.nn.Module | None = None,
    reporter=None,
    verbose: bool = True,
    command_line: list[str] | None = None,
    **options,
) -> rundir.Run:
    """Train and return the :class:`Run`. Options are :class:`TrainConfig`'s fields, e.g.
    ``train(data="mnist", model="seed-fashion", epochs=3, batch_size=64, lr=1e-3, out="runs/a")``.
    ``module`` may be any ``nn.Module`` mapping NCHW float images to logits, used instead of
    ``model`` (its run then needs it again to load). ``resume`` is a run directory to continue.
    """
    cfg, out, resuming = _resolve(resume, options)
    reporter = reporter or (RichReporter() if verbose else SilentReporter())
    set_threads()
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)

    ds = datalib.load(cfg.data, size=cfg.size, mode=cfg.mode)
    torch.manual_seed(cfg.seed)
    net = module if module is not None else build_model(cfg.model, ds.image_shape, ds.num_classes)
    net = net.to(device).to(memory_format=torch.channels_last)
    optimizer = _optimizer(cfg, net.parameters())
    ends_in_softmax = getattr(net, "outputs_probabilities", False)

    n_val = int(round(len(ds.train) * cfg.validation_split))
    n_fit = len(ds.train) - n_val
    x_fit = from_numpy(ds.train.x[:n_fit])  # uint8 (N, H, W, C), shared with NumPy
    y_fit = from_numpy(ds.train.y[:n_fit])
    held = ("val", ds.train.x[n_fit:], ds.train.y[n_fit:]) if n_val else ("test", ds.test.x, ds.test.y)
    if n_fit < 1:
        raise InputError(f"validation_split={cfg.validation_split} leaves no training images.")

    preprocessing = {
        "input_shape": list(ds.image_shape),
        "mode": "gray" if ds.image_shape[2] == 1 else "rgb",
        "size": list(ds.image_shape[:2]),
        "scale": 1 / 255,
        "layout": "uint8 NHWC -> float NCHW / 255",
        # what predict --invert auto compares a user's image against
        "background": "light" if border_mean(ds.train.x[:1000]) > 127 else "dark",
    }
    start_epoch, rows = 0, []
    if resuming:
        state = rundir.load_state(out / rundir.STATE)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
        rows = [r for r in rundir.read_metrics(out / rundir.METRICS) if r["epoch"] <= start_epoch]
        reporter.message(f"resuming {out} after epoch {start_epoch} of {cfg.epochs}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        rundir.write_json(
            out / rundir.CONFIG,
            {
                "config": cfg.to_dict(),
                "command_line": command_line or sys.argv,
                "versions": _versions(),
                "device": str(device),
                "precision": precision,
                "threads": torch.get_num_threads(),
                "dataset": {
                    "name": ds.name,
                    "classes": list(ds.classes),
                    "image_shape": list(ds.image_shape),
                    "train": n_fit,
                    "validation": n_val,
                    "test": len(ds.test),
                    **{k: v for k, v in ds.info.items() if k in ("source", "sha256", "splits", "counts")},
                },
            },
        )
        rundir.write_json(
            out / rundir.MODEL_JSON,
            {
                "format": rundir.FORMAT,
                "spec": net.spec() if isinstance(net, Sequential) else None,
                "classes": list(ds.classes),
                "preprocessing": preprocessing,
            },
        )
        reporter.message(
            f"training {cfg.model} on {ds.name} ({n_fit:,} images, {precision} on {device}, "
            f"{torch.get_num_threads()} threads) -> {out}"
        )

    batches = math.ceil(n_fit / cfg.batch_size)
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            gen = _epoch_generator(cfg.seed, epoch)
            torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout draws of this epoch
            order = torch.randperm(n_fit, generator=gen)
            net.train()
            reporter.start_epoch(epoch, cfg.epochs, batches)
            t0 = time.perf_counter()
            seen, loss_sum, correct = 0, 0.0, 0
            for b in range(batches):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                xb = to_input(x_fit[idx].to(device, non_blocking=True))
                yb = y_fit[idx].to(device, non_blocking=True)
                with autocast(device, precision):
                    output = net(xb)
                output = output.float()
                loss = (
                    F.nll_loss(torch.log(output.clamp_min(1e-12)), yb)
                    if ends_in_softmax
                    else F.cross_entropy(output, yb)
                )
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"The loss became {loss.item()} at epoch {epoch}, batch {b + 1}. Training stopped; the last "
                        f"good checkpoint (epoch {epoch - 1}) is kept in {out}. Try a lower --lr (now {cfg.lr})."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                lr = cfg.lr_at((epoch - 1) * batches + b, cfg.epochs * batches)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                n = len(yb)
                seen += n
                loss_sum += loss.item() * n
                correct += (output.argmax(1) == yb).sum().item()
                if b % 10 == 0 or b == batches - 1:
                    reporter.update(b + 1, loss_sum / seen, correct / seen)
            seconds = time.perf_counter() - t0
            name, hx, hy = held
            h_out = logits_of(net, hx, device, precision)
            h_loss, h_acc = loss_and_accuracy(h_out, torch.from_numpy(np.asarray(hy)), ends_in_softmax)
            row = {
                "epoch": epoch,
                "epochs": cfg.epochs,
                "loss": loss_sum / seen,
                "accuracy": correct / seen,
                f"{name}_loss": h_loss,
                f"{name}_accuracy": h_acc,
                "seconds": round(seconds, 3),
                "images_per_s": round(seen / seconds, 1),
                "lr": lr,  # of the epoch's last step
            }
            rows.append(row)
            rundir.save_state(out / rundir.STATE, epoch, net, optimizer)
            rundir.save_weights(out / rundir.WEIGHTS, net)
            rundir.write_metrics(out / rundir.METRICS, rows)
            reporter.end_epoch(row)
            _draw_curves(out, rows)
    except KeyboardInterrupt:
        reporter.stop()
        done = rows[-1]["epoch"] if rows else 0
        raise TrainingInterrupted(
            f"Interrupted during epoch {done + 1}. The checkpoint of epoch {done} is kept in {out}; "
            f"continue with: cnnlab train --resume {out}"
        ) from None
    except BaseException:
        reporter.stop()
        raise
    return rundir.Run.load(out, model=None if isinstance(net, Sequential) else net.cpu())


def _draw_curves(out: Path, rows: list[dict]) -> None:
    from cnnlab.viz.train import curves

    curves(rows, out / rundir.CURVES)
