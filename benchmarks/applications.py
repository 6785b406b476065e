"""keras.applications EfficientNetB0 (weights=None, 64x64, built by Keras in .venv-peers): loading its
.keras file and the feature maps of all its layers for one image, cnnlab (``cnnlab.load``,
``inspect.feature_maps``) against Keras (``keras.saving.load_model``, a multi-output probe model) in the same
run, idle and beside one busy process. Ratio = cnnlab / Keras time (lower is better); goals 0.2 and 0.5."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.process import busy_process
from benchmarks.train import PEER_ENV, PEER_PYTHON, ROOT, peer_json

ROUNDS = 5
PEERS = ROOT / "benchmarks" / "peers"
TITLE = (
    f"keras.applications EfficientNetB0 (64x64, weights=None): load and every layer's maps for one image, "
    f"median of {ROUNDS} (maps: {5 * ROUNDS}) (ratio = cnnlab / Keras; goals: load <= 0.2, maps <= 0.5)"
)


def _cnnlab(path: Path, x: np.ndarray) -> dict:
    import cnnlab
    from cnnlab.inspect import feature_maps

    loads = []
    for _ in range(ROUNDS + 1):
        t0 = time.perf_counter()
        run = cnnlab.load(path)
        loads.append(time.perf_counter() - t0)
    for _ in range(5):
        feature_maps(run, x)
    maps = []
    for _ in range(5 * ROUNDS):
        t0 = time.perf_counter()
        feature_maps(run, x)
        maps.append(time.perf_counter() - t0)
    return {"load_s": loads[1:], "maps_s": maps, "layers": len(feature_maps(run, x))}


def _keras(path: Path, npz: Path) -> dict:
    return peer_json(PEERS / "keras_app_speed.py", path, npz, ROUNDS)


def _rows(ours: dict, theirs: dict, beside: str) -> list[dict]:
    rows = []
    for key, what, goal in (("load_s", "load the .keras file", 0.2), ("maps_s", "feature maps of every layer", 0.5)):
        a, b = statistics.median(ours[key]), statistics.median(theirs[key])
        label = f"{what} ({ours['layers']} layers)" if key == "maps_s" else what
        rows.append(
            {
                "what": label + (f", {beside}" if beside else ""),
                "cnnlab_ms": round(a * 1000, 1),
                "keras_ms": round(b * 1000, 1),
                "ratio": round(a / b, 3),
                "goal": goal,
            }
        )
    return rows


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run(
            [str(PEER_PYTHON), "keras_apps.py", str(folder), "efficientnetb0"],
            cwd=PEERS,
            env=PEER_ENV,
            check=True,
            capture_output=True,
        )
        path, npz = folder / "efficientnetb0.keras", folder / "efficientnetb0.npz"
        x = np.load(npz)["x"][:1]
        rows = _rows(_cnnlab(path, x), _keras(path, npz), "")
        with busy_process():
            rows += _rows(_cnnlab(path, x), _keras(path, npz), "beside a busy process")
    return rows
