"""seed-fashion on Fashion-MNIST: cnnlab against the same model in Keras, in one run on one machine.

Epoch wall time at batch 64 and 256 and test accuracy (inference is benchmarks/predict.py's). The Keras peer
runs from .venv-peers (tensorflow-cpu) on the very arrays cnnlab loaded, exported to a temporary .npz.

The machine is shared and its speed drifts by tens of percent within minutes, so the two frameworks
alternate over ROUNDS rounds of EPOCHS epochs each, and each side is summarized by its fastest
steady-state epoch (epochs after the first; noise only ever adds time), with the median beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import cnnlab
from cnnlab.compute.device import set_threads

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEER_SCRIPT = ROOT / "benchmarks" / "peers" / "keras_seed_fashion.py"
PEER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}  # what the Keras peer runs with
EPOCHS, BATCHES, ROUNDS = 2, (64, 256), 3


def peer_arrays(ds, path: Path) -> Path:
    """The dataset as the Keras peers read it: one .npz of uint8 NHWC images and int64 labels."""
    np.savez(path, x_train=ds.train.x, y_train=ds.train.y, x_test=ds.test.x, y_test=ds.test.y)
    return path


def fashion_epochs(model: str, epochs: int, batch_size: int, out: Path) -> dict:
    """``cnnlab.train`` of ``model`` on Fashion-MNIST (seed 0): each epoch's seconds and the test accuracy."""
    set_threads()
    run = cnnlab.train(
        data="fashion-mnist", model=model, epochs=epochs, batch_size=batch_size, seed=0, out=str(out), verbose=False
    )
    return {"epoch_s": [m["seconds"] for m in run.metrics], "test_accuracy": run.metrics[-1]["test_accuracy"]}


def train_cnnlab(tmp: Path, round_: int):
    return {str(bs): fashion_epochs("seed-fashion", EPOCHS, bs, tmp / f"cnnlab-{bs}-{round_}") for bs in BATCHES}


def run_keras(npz: Path) -> dict | None:
    if not PEER_PYTHON.exists():
        return None
    return peer_json(PEER_SCRIPT, npz, EPOCHS, ",".join(map(str, BATCHES)))


def peer_json(script: Path, *args) -> dict:
    """Run a Keras peer script in .venv-peers with ``args``: the JSON object its last line prints."""
    r = subprocess.run([str(PEER_PYTHON), str(script), *map(str, args)], capture_output=True, text=True, env=PEER_ENV)
    if r.returncode != 0:
        raise RuntimeError(f"the Keras peer {script.name} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _steady(rounds: list[dict], bs: int) -> list[float]:
    return [t for r in rounds for t in r[str(bs)]["epoch_s"][1:]]


def run() -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds = cnnlab.data.load("fashion-mnist")
        npz = peer_arrays(ds, tmp / "fashion.npz")
        ours, peer = [], []
        for round_ in range(ROUNDS):  # alternate, so that drifts in machine speed hit both sides alike
            ours.append(train_cnnlab(tmp, round_))
            keras = run_keras(npz)
            if keras:
                peer.append(keras["train"])
    rows = []
    for bs in BATCHES:
        a = _steady(ours, bs)
        row = {
            "what": f"epoch, batch {bs}",
            "cnnlab_best": round(min(a), 2),
            "cnnlab_median": round(statistics.median(a), 2),
            "cnnlab_acc": round(ours[-1][str(bs)]["test_accuracy"], 4),
        }
        if peer:
            k = _steady(peer, bs)
            row |= {
                "keras_best": round(min(k), 2),
                "keras_median": round(statistics.median(k), 2),
                "keras_acc": round(peer[-1][str(bs)]["test_accuracy"], 4),
                "ratio_best": round(min(a) / min(k), 2),
                "ratio_median": round(statistics.median(a) / statistics.median(k), 2),
            }
        rows.append(row)
    return rows, {"cnnlab": ours, "keras": peer or None}
