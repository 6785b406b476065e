"""seed-fashion on Fashion-MNIST: cnnlab against the same model in Keras, in one run on one machine.

Epoch wall time at batch 64 and 256 (epoch 1 includes warm-up; epoch 2 is steady state), test accuracy,
and test-set inference throughput. The Keras peer runs from .venv-peers (tensorflow-cpu) on the very
arrays cnnlab loaded, exported to a temporary .npz.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import cnnlab
from cnnlab.train.engine import pick_precision, set_threads
from cnnlab.train.evaluate import logits_of

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEER_SCRIPT = ROOT / "benchmarks" / "peers" / "keras_seed_fashion.py"
EPOCHS, BATCHES = 2, (64, 256)


def inference_images_per_s(model, x, precision: str) -> float:
    device = torch.device("cpu")
    logits_of(model, x[:2000], device, precision)  # warm up
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()  # tracing and freezing the graph is part of the measured time
        logits_of(model, x, device, precision, optimize=True)
        runs.append(time.perf_counter() - t0)
    return len(x) / sorted(runs)[1]


def run_cnnlab(tmp: Path) -> dict:
    set_threads()
    result = {"train": {}}
    for bs in BATCHES:
        run = cnnlab.train(
            data="fashion-mnist",
            model="seed-fashion",
            epochs=EPOCHS,
            batch_size=bs,
            seed=0,
            out=str(tmp / f"cnnlab-{bs}"),
            verbose=False,
        )
        result["train"][str(bs)] = {
            "epoch_s": [m["seconds"] for m in run.metrics],
            "test_accuracy": run.metrics[-1]["test_accuracy"],
        }
    ds = cnnlab.data.load("fashion-mnist")
    precision = pick_precision("auto", torch.device("cpu"))
    result["precision"] = precision
    result["inference_images_per_s"] = inference_images_per_s(run.model, ds.test.x, precision)
    result["inference_fp32_images_per_s"] = inference_images_per_s(run.model, ds.test.x, "fp32")
    return result


def run_keras(tmp: Path) -> dict | None:
    if not PEER_PYTHON.exists():
        return None
    ds = cnnlab.data.load("fashion-mnist")
    npz = tmp / "fashion.npz"
    np.savez(npz, x_train=ds.train.x, y_train=ds.train.y, x_test=ds.test.x, y_test=ds.test.y)
    r = subprocess.run(
        [str(PEER_PYTHON), str(PEER_SCRIPT), str(npz), str(EPOCHS), ",".join(map(str, BATCHES))],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    if r.returncode != 0:
        raise RuntimeError(f"the Keras peer failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run() -> tuple[list[dict], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_cnnlab(Path(tmp))
        peer = run_keras(Path(tmp))
    rows = []
    for bs in BATCHES:
        a = ours["train"][str(bs)]
        row = {
            "what": f"epoch, batch {bs}",
            "cnnlab_s": round(a["epoch_s"][-1], 2),
            "cnnlab_first_s": round(a["epoch_s"][0], 2),
            "cnnlab_acc": round(a["test_accuracy"], 4),
        }
        if peer:
            k = peer["train"][str(bs)]
            row |= {
                "keras_s": round(k["epoch_s"][-1], 2),
                "keras_first_s": round(k["epoch_s"][0], 2),
                "keras_acc": round(k["test_accuracy"], 4),
                "ratio": round(a["epoch_s"][-1] / k["epoch_s"][-1], 2),
            }
        rows.append(row)
    inf = {
        "what": f"test-set inference img/s ({ours['precision']})",
        "cnnlab_s": round(ours["inference_images_per_s"]),
        "cnnlab_first_s": "",
        "cnnlab_acc": "",
    }
    if peer:
        inf |= {
            "keras_s": round(peer["inference_images_per_s"]),
            "keras_first_s": "",
            "keras_acc": "",
            "ratio": round(ours["inference_images_per_s"] / peer["inference_images_per_s"], 2),
        }
    rows.append(inf)
    return rows, {"cnnlab": ours, "keras": peer}
