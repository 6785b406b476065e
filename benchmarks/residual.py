"""cnnlab-res (the zoo's ResNet in the functional API) on Fashion-MNIST: one epoch of cnnlab against the same
model in Keras, in one run on one machine, idle and beside one busy process. The Keras model is the very
architecture: cnnlab writes the untrained model as a .keras file, and Keras builds its own layers from it.

Each side trains EPOCHS epochs in each of ROUNDS alternating rounds at batch 64 and is summarized by its
steady-state epochs (after the first): best and median. Ratio = cnnlab / Keras time (goal: <= 0.5)."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from pathlib import Path

import cnnlab
from benchmarks.process import busy_process
from benchmarks.train import ROOT, fashion_epochs, peer_arrays, peer_json

EPOCHS, ROUNDS, BATCH = 2, 2, 64
PEER = ROOT / "benchmarks" / "peers" / "keras_fit_file.py"
TITLE = (
    f"cnnlab-res on Fashion-MNIST, batch {BATCH}: seconds per steady-state epoch over {ROUNDS} alternating "
    "rounds, cnnlab against the same model in Keras (ratio = cnnlab / Keras time; goal <= 0.5)"
)


def _keras(model_file: Path, npz: Path) -> dict:
    return peer_json(PEER, model_file, npz, EPOCHS, BATCH)


def _row(ours: list[dict], theirs: list[dict], beside: str) -> dict:
    a = [t for r in ours for t in r["epoch_s"][1:]]
    k = [t for r in theirs for t in r["epoch_s"][1:]]
    return {
        "what": f"epoch, batch {BATCH}" + (f", {beside}" if beside else ""),
        "cnnlab_best": round(min(a), 2),
        "cnnlab_median": round(statistics.median(a), 2),
        "cnnlab_acc": round(ours[-1]["test_accuracy"], 4),
        "keras_best": round(min(k), 2),
        "keras_median": round(statistics.median(k), 2),
        "keras_acc": round(theirs[-1]["test_accuracy"], 4),
        "ratio_best": round(min(a) / min(k), 2),
        "ratio_median": round(statistics.median(a) / statistics.median(k), 2),
    }


def run() -> list[dict]:
    from cnnlab.nn import zoo
    from cnnlab.nn.keras_write import write_keras

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        npz = peer_arrays(cnnlab.data.load("fashion-mnist"), tmp / "fashion.npz")
        model_file = write_keras(zoo.build("cnnlab-res"), tmp / "cnnlab-res.keras")
        rows = []
        for beside in ("", "beside a busy process"):
            ours, theirs = [], []
            with busy_process() if beside else contextlib.nullcontext():
                for i in range(ROUNDS):  # alternate, so that drifts in machine speed hit both sides alike
                    ours.append(fashion_epochs("cnnlab-res", EPOCHS, BATCH, tmp / f"res-{bool(beside)}-{i}"))
                    theirs.append(_keras(model_file, npz))
            rows.append(_row(ours, theirs, beside))
    return rows
