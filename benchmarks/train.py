"""seed-fashion on Fashion-MNIST: cnnlab against the same model in Keras, in one run on one machine.

Epoch wall time at batch 64 and 256, test accuracy, and test-set inference throughput. The Keras peer
runs from .venv-peers (tensorflow-cpu) on the very arrays cnnlab loaded, exported to a temporary .npz.

The machine is shared and its speed drifts by tens of percent within minutes, so the two frameworks
alternate over ROUNDS rounds of EPOCHS epochs each, and each side is summarized by its fastest
steady-state epoch (epochs after the first; noise only ever adds time), with the median beside it.
Inference is the steady state of each side's prediction path (Keras's predict() builds its graph on
the first call; cnnlab's frozen graph is built on the first call and cached).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import cnnlab
from cnnlab.train.engine import pick_precision, set_threads
from cnnlab.train.inference import logits_of

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEER_SCRIPT = ROOT / "benchmarks" / "peers" / "keras_seed_fashion.py"
EPOCHS, BATCHES, ROUNDS = 2, (64, 256), 3


def inference_images_per_s(model, x, precision: str) -> float:
    device = torch.device("cpu")
    logits_of(model, x[:2000], device, precision, optimize=True)  # warm up (and build the frozen graph)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        logits_of(model, x, device, precision, optimize=True)
        runs.append(time.perf_counter() - t0)
    return len(x) / sorted(runs)[1]


def train_cnnlab(tmp: Path, round_: int):
    set_threads()
    result, run = {}, None
    for bs in BATCHES:
        run = cnnlab.train(
            data="fashion-mnist",
            model="seed-fashion",
            epochs=EPOCHS,
            batch_size=bs,
            seed=0,
            out=str(tmp / f"cnnlab-{bs}-{round_}"),
            verbose=False,
        )
        result[str(bs)] = {
            "epoch_s": [m["seconds"] for m in run.metrics],
            "test_accuracy": run.metrics[-1]["test_accuracy"],
        }
    return result, run


def run_keras(npz: Path) -> dict | None:
    if not PEER_PYTHON.exists():
        return None
    r = subprocess.run(
        [str(PEER_PYTHON), str(PEER_SCRIPT), str(npz), str(EPOCHS), ",".join(map(str, BATCHES))],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    if r.returncode != 0:
        raise RuntimeError(f"the Keras peer failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _steady(rounds: list[dict], bs: int) -> list[float]:
    return [t for r in rounds for t in r[str(bs)]["epoch_s"][1:]]


def run() -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds = cnnlab.data.load("fashion-mnist")
        npz = tmp / "fashion.npz"
        np.savez(npz, x_train=ds.train.x, y_train=ds.train.y, x_test=ds.test.x, y_test=ds.test.y)
        ours, peer, run = [], [], None
        for round_ in range(ROUNDS):  # alternate, so that drifts in machine speed hit both sides alike
            result, run = train_cnnlab(tmp, round_)
            ours.append(result)
            keras = run_keras(npz)
            if keras:
                peer.append({**keras["train"], "inference": keras["inference_images_per_s"]})
        precision = pick_precision("auto", torch.device("cpu"))
        inference = inference_images_per_s(run.model, ds.test.x, precision)
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
    inf = {
        "what": f"test-set inference img/s ({precision})",
        "cnnlab_best": round(inference),
        "cnnlab_median": "",
        "cnnlab_acc": "",
    }
    if peer:
        best_peer = max(p["inference"] for p in peer)
        inf |= {
            "keras_best": round(best_peer),
            "keras_median": "",
            "keras_acc": "",
            "ratio_best": round(inference / best_peer, 2),
            "ratio_median": "",
        }
    rows.append(inf)
    return rows, {"cnnlab": ours, "cnnlab_inference": inference, "keras": peer or None}
