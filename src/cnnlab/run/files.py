"""The files of a run directory: everything a run produces, enough to rebuild, evaluate, inspect or serve its model.

    config.json        resolved configuration, command line, versions, dataset checksums, seed
    metrics.jsonl      one line per epoch
    steps.jsonl        the training loss and accuracy every few steps (about 50 lines an epoch)
    model.json         architecture spec, class names, preprocessing
    model.safetensors  weights (parameters and BatchNorm statistics)
    state.pt           the resume checkpoint: epoch, weights and optimizer state in one file
    curves.png         training curves

Every file is written atomically. Nothing is unpickled: weights are safetensors,
metadata is JSON, and state.pt is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from cnnlab.atomic import atomic_writer, write_bytes, write_text
from cnnlab.errors import RunError
from cnnlab.limits import MAX_WEIGHTS_BYTES, megabytes, parse, read_text, refuse_nonfinite

FORMAT = "cnnlab-run/1"
STATS = "stats.jsonl"  # training statistics (cnnlab.training.stats)
CONFIG, METRICS, STEPS, MODEL_JSON, WEIGHTS, STATE, CURVES = (
    "config.json",
    "metrics.jsonl",
    "steps.jsonl",
    "model.json",
    "model.safetensors",
    "state.pt",
    "curves.png",
)


class DamagedRun(RunError):
    """A run file that is there but malformed: too large, too deep, not JSON, values of the wrong kind (exit
    code 2: the file given was the problem)."""

    exit_code = 2


class OutsideRoot(RunError):
    """A run file that is a link leading out of the folder it may be read from."""


def confined(path: Path, root: Path | None) -> Path:
    """``path`` with its links resolved, refused when ``root`` is given and it leads outside ``root``:
    what a server reads from a run it reads through this, so a link to /etc is never followed."""
    if root is None:
        return path
    real = path.resolve()
    if real != root and root not in real.parents:
        raise OutsideRoot(f"{path.name} of run {path.parent.name!r} is a link out of the served folder; refused.")
    return real


def read_json(path: Path) -> dict:
    """A run file's JSON object, bounded in size and depth (:mod:`cnnlab.limits`), or a RunError saying it is
    missing or damaged and what to do."""
    if not path.is_file():
        raise RunError(f"{path} is missing. A run directory needs {MODEL_JSON} and {WEIGHTS}; is this a cnnlab run?")
    what = f"{path.parent.name}/{path.name}"
    value = parse(read_text(path, what, DamagedRun), what, error=DamagedRun)
    if not isinstance(value, dict):
        raise DamagedRun(f"{what} holds a JSON {type(value).__name__}, not an object; it is not a cnnlab run file.")
    return value


def state_dict_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_weights(path: Path, model: torch.nn.Module) -> None:
    write_bytes(path, st_save(state_dict_for_saving(model), metadata={"format": FORMAT}))


def load_weights(path: Path, model: torch.nn.Module, allow_nonfinite: bool = False) -> None:
    """model.safetensors into ``model``: every tensor the architecture's, and finite (else
    :func:`cnnlab.limits.refuse_nonfinite`)."""
    if not path.is_file():
        raise RunError(f"{path} is missing: the run has no saved weights yet (did its first epoch finish?).")
    own = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    size = path.stat().st_size
    if size > min(own + 2**24, MAX_WEIGHTS_BYTES):  # the architecture's numbers and a header of at most 16 MB
        raise DamagedRun(
            f"{path.parent.name}/{path.name} is {megabytes(size)}, but the architecture in {MODEL_JSON} holds "
            f"{megabytes(own)} of weights; refused before reading."
        )
    try:
        tensors = st_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise RunError(f"{path} is not a readable safetensors file ({e}). The weights are corrupt.") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise RunError(f"{path} does not fit the architecture in {MODEL_JSON}: {str(e).splitlines()[0]}") from None
    for name, value in tensors.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            refuse_nonfinite(f"{path.parent.name}/{path.name}: {name}", allow_nonfinite, DamagedRun)


def save_state(path: Path, epoch: int, model: torch.nn.Module, optimizer, run_id: str | None = None, ema=None) -> None:
    buf = io.BytesIO()
    state = {"epoch": epoch, "model": state_dict_for_saving(model), "optimizer": optimizer.state_dict()}
    if ema is not None:  # the moving average of the weights, which the run's model.safetensors holds
        state["ema"] = ema.state_dict()
    torch.save({**state, "run": run_id} if run_id else state, buf)
    write_bytes(path, buf.getvalue())


def load_state(path: Path, model: torch.nn.Module, optimizer, run_id: str | None = None, ema=None) -> int:
    """Put the checkpoint's weights and optimizer state into ``model`` and ``optimizer``; its epoch.
    A damaged file, or one that is not this run's checkpoint (``run_id``: config.json's), is a RunError."""
    if not path.is_file():
        raise RunError(f"{path} is missing: nothing to resume from (no epoch has finished yet).")
    if path.stat().st_size > 4 * MAX_WEIGHTS_BYTES:  # weights, their moving average and two optimizer moments
        raise DamagedRun(f"{path.name} is {megabytes(path.stat().st_size)}, too large for a cnnlab checkpoint.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or damaged archive
        raise RunError(f"{path} is corrupt ({type(e).__name__}); it cannot be resumed. Start a new run.") from None
    if not isinstance(state, dict):
        raise RunError(f"{path} holds a {type(state).__name__}, not a cnnlab checkpoint; it cannot be resumed.")
    epoch = state.get("epoch")
    lacking = [k for k in ("model", "optimizer") if not isinstance(state.get(k), dict)]
    lacking = (["epoch"] if not (isinstance(epoch, int) and epoch >= 1) else []) + lacking
    if lacking:
        raise RunError(
            f"{path} has no valid {', '.join(lacking)}: it is not a cnnlab checkpoint and cannot be resumed."
        )
    if run_id and state.get("run", run_id) != run_id:
        raise RunError(f"{path} is another run's checkpoint (copied here?); it cannot resume this run.")
    try:
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunError(
            f"{path} is the checkpoint of a different model or optimizer ({str(e).splitlines()[0][:200]}); "
            "it cannot resume this run. Start a new run."
        ) from None
    return epoch


def write_metrics(path: Path, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    what = f"{path.parent.name}/{path.name}"
    rows = []
    for i, line in enumerate(read_text(path, what, DamagedRun).splitlines(), 1):
        if line.strip():
            row = parse(line, f"{what} line {i}", error=DamagedRun)
            if not isinstance(row, dict):
                raise DamagedRun(f"{what} line {i} is not a JSON object; the metrics file is corrupt.")
            rows.append(row)
    return rows


def write_json(path: Path, obj: dict) -> None:
    with atomic_writer(path, "w") as f:
        json.dump(obj, f, indent=2)
