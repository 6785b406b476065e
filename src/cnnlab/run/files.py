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

FORMAT = "cnnlab-run/1"
CONFIG, METRICS, STEPS, MODEL_JSON, WEIGHTS, STATE, CURVES = (
    "config.json",
    "metrics.jsonl",
    "steps.jsonl",
    "model.json",
    "model.safetensors",
    "state.pt",
    "curves.png",
)


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
    """A run file's JSON, or a RunError saying it is missing or corrupt and what to do."""
    if not path.is_file():
        raise RunError(f"{path} is missing. A run directory needs {MODEL_JSON} and {WEIGHTS}; is this a cnnlab run?")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is corrupt ({e}). Restore it, or retrain into a new directory.") from None
    if not isinstance(value, dict):
        raise RunError(f"{path} holds a JSON {type(value).__name__}, not an object; it is not a cnnlab run file.")
    return value


def state_dict_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_weights(path: Path, model: torch.nn.Module) -> None:
    write_bytes(path, st_save(state_dict_for_saving(model), metadata={"format": FORMAT}))


def load_weights(path: Path, model: torch.nn.Module) -> None:
    if not path.is_file():
        raise RunError(f"{path} is missing: the run has no saved weights yet (did its first epoch finish?).")
    try:
        tensors = st_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise RunError(f"{path} is not a readable safetensors file ({e}). The weights are corrupt.") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise RunError(f"{path} does not fit the architecture in {MODEL_JSON}: {str(e).splitlines()[0]}") from None


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
    rows = []
    for i, line in enumerate(path.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line.decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                row = None
            if not isinstance(row, dict):
                raise RunError(f"{path} line {i} is not a JSON object; the metrics file is corrupt.")
            rows.append(row)
    return rows


def write_json(path: Path, obj: dict) -> None:
    with atomic_writer(path, "w") as f:
        json.dump(obj, f, indent=2)
