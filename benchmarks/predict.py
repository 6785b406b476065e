"""What a user calls after training, against the Keras peer, alternating in one run on one machine.

- ``Run.predict`` on the Fashion-MNIST test set (10,000 images) against Keras's ``model.predict`` at
  each batch size tried; each side's best batch size counts. Steady state: the median of 3 calls after
  a warm-up call (Keras builds its predict function on the first call, cnnlab its inference copy). Then
  the same again with one other busy process on the machine (:func:`benchmarks.process.busy_process`).
- ``cnnlab.inspect.feature_maps`` of one image, every layer, against a Keras model whose outputs are
  every layer's outputs (median of 200 calls).
- The Keras peer's own seed-fashion saved by ``model.save`` as ``.keras``: ``cnnlab.load`` against
  ``keras.saving.load_model`` (median of 5), and ``feature_maps`` of one image from the loaded file
  against the same Keras multi-output model; the largest relative difference of any layer's maps is kept.
- ``cnnlab train`` as a whole process (start-up, data from the cache, 2 epochs, the test evaluation,
  the run directory written) against a Keras script doing the same fit and evaluation.

The machine's speed drifts, so the two sides alternate over ROUNDS rounds; each side's best round
counts (noise only adds time), with the median beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import cnnlab
from benchmarks.process import CNNLAB, busy_process, whole_process
from benchmarks.train import PEER_ENV, PEER_PYTHON, ROOT, peer_arrays

ROUNDS = 3
BATCHES = (128, 256, 1000)  # Run.predict batch sizes tried (256 is its default)
KERAS_BATCHES = "32,256,1000,10000"  # 32 is model.predict's default
EPOCHS, FIT_BATCH = 2, 64
PEERS = ROOT / "benchmarks" / "peers"


def _median_s(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def predict_rates(run, x) -> dict:
    """Run.predict's images/s on ``x`` at each batch size tried."""
    per_batch = {}
    for bs in BATCHES:
        run.predict(x[: 2 * bs], batch_size=bs)  # warm up (makes the inference copy once)
        per_batch[str(bs)] = len(x) / _median_s(lambda bs=bs: run.predict(x, batch_size=bs), 3)
    return per_batch


def cnnlab_round(run, x) -> dict:
    per_batch = predict_rates(run, x)
    one = x[:1]
    for _ in range(20):
        cnnlab.inspect.feature_maps(run, one)
    ms = _median_s(lambda: cnnlab.inspect.feature_maps(run, one), 200) * 1000
    return {"predict_images_per_s": per_batch, "feature_maps_ms": ms}


def from_keras_file(folder: Path) -> dict:
    """cnnlab on the .keras file the peer saved: load time, feature-map time, worst relative difference."""
    path = folder / "seed-fashion.keras"
    load_ms = _median_s(lambda: cnnlab.load(path), 5) * 1000
    run = cnnlab.load(path)
    reference = np.load(folder / "seed-fashion-maps.npz")
    one = reference["x"]
    for _ in range(20):
        cnnlab.inspect.feature_maps(run, one)
    ms = _median_s(lambda: cnnlab.inspect.feature_maps(run, one), 200) * 1000
    maps = cnnlab.inspect.feature_maps(run, one)
    worst = max(
        float(np.abs(maps[name] - reference[name]).max() / max(np.abs(reference[name]).max(), 1e-12))
        for name in reference.files
        if name != "x"
    )
    return {"keras_file_load_ms": load_ms, "keras_file_feature_maps_ms": ms, "keras_file_max_rel_diff": worst}


def run() -> tuple[list[dict], dict]:
    ds = cnnlab.data.load("fashion-mnist")  # cached before any timing
    ours, peer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        npz = peer_arrays(ds, tmp / "fashion.npz")
        trained = cnnlab.train(
            data="fashion-mnist", model="seed-fashion", epochs=1, seed=0, out=str(tmp / "run"), verbose=False
        )
        run = cnnlab.Run.load(trained.path)  # what a user does: load the run directory, then predict
        cli = [CNNLAB, "train", "--data", "fashion-mnist"]
        cli += ["--model", "seed-fashion", "--epochs", str(EPOCHS), "--batch-size", str(FIT_BATCH), "--seed", "0"]
        busy_ours, busy_peer = [], []
        with busy_process():
            for _ in range(ROUNDS):
                busy_ours.append({"predict_images_per_s": predict_rates(run, ds.test.x)})
                if PEER_PYTHON.exists():
                    busy_peer.append(_keras_inference(npz, tmp))
        for r in range(ROUNDS):
            ours.append(cnnlab_round(run, ds.test.x))
            ours[-1]["train_process_s"] = whole_process([*cli, "--out", str(tmp / f"cli-{r}")])[1]
            if PEER_PYTHON.exists():
                peer.append(_keras_inference(npz, tmp))
                ours[-1] |= from_keras_file(tmp)
                fit = [str(PEER_PYTHON), str(PEERS / "keras_seed_fashion.py"), str(npz), str(EPOCHS), "--fit-only"]
                peer[-1]["train_process_s"] = whole_process([*fit, str(FIT_BATCH)], PEER_ENV)[1]
    busy = _predict_row(busy_ours, busy_peer, "with one other busy process")
    raw = {"cnnlab": ours, "keras": peer or None, "busy": {"cnnlab": busy_ours, "keras": busy_peer or None}}
    return [*rows(ours, peer), busy], raw


def _keras_inference(npz: Path, folder: Path) -> dict:
    """The Keras peer's model.predict rates and feature-map time (benchmarks/peers/keras_inference.py)."""
    out = subprocess.run(
        [str(PEER_PYTHON), str(PEERS / "keras_inference.py"), str(npz), KERAS_BATCHES, str(folder)],
        capture_output=True,
        text=True,
        env={**PEER_ENV, "PYTHONPATH": str(PEERS)},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _at_best_batch(rounds: list[dict]) -> tuple[list[float], str]:
    """Throughput of every round at the batch size whose best round was fastest, and that batch size."""
    by_batch = {bs: [r["predict_images_per_s"][bs] for r in rounds] for bs in rounds[0]["predict_images_per_s"]}
    bs = max(by_batch, key=lambda b: max(by_batch[b]))
    return by_batch[bs], bs


def _row(what: str, ours: list[float], theirs: list[float], best, digits: int) -> dict:
    """Best and median of each side; ratio = cnnlab / Keras (of times: lower is better; of rates: higher)."""

    def fmt(v: float):
        return round(v, digits) if digits else round(v)

    row = {"what": what, "cnnlab_best": fmt(best(ours)), "cnnlab_median": fmt(statistics.median(ours))}
    if theirs:
        row |= {"keras_best": fmt(best(theirs)), "keras_median": fmt(statistics.median(theirs))}
        row |= {"ratio_best": round(best(ours) / best(theirs), 2)}
        row |= {"ratio_median": round(statistics.median(ours) / statistics.median(theirs), 2)}
    return row


def _predict_row(ours: list[dict], peer: list[dict], beside: str = "") -> dict:
    rates, bs = _at_best_batch(ours)
    peer_rates, peer_bs = _at_best_batch(peer) if peer else ([], "")
    what = f"Run.predict, test set, images/s (batch {bs}; Keras {peer_bs})" + (f", {beside}" if beside else "")
    return _row(what, rates, peer_rates, max, 0)


def rows(ours: list[dict], peer: list[dict]) -> list[dict]:
    return [
        _predict_row(ours, peer),
        _row(
            "feature maps of every layer, one image, ms",
            [r["feature_maps_ms"] for r in ours],
            [p["feature_maps_ms"] for p in peer],
            min,
            3,
        ),
        *(
            [
                _row(
                    "load the Keras peer's seed-fashion.keras, ms",
                    [r["keras_file_load_ms"] for r in ours],
                    [p["load_ms"] for p in peer],
                    min,
                    1,
                ),
                _row(
                    "feature maps of every layer from that .keras file, one image, ms "
                    f"(max relative difference {max(r['keras_file_max_rel_diff'] for r in ours):.1e})",
                    [r["keras_file_feature_maps_ms"] for r in ours],
                    [p["feature_maps_ms"] for p in peer],
                    min,
                    3,
                ),
            ]
            if peer
            else []
        ),
        _row(
            f"cnnlab train, whole process, {EPOCHS} epochs, s",
            [r["train_process_s"] for r in ours],
            [p["train_process_s"] for p in peer],
            min,
            1,
        ),
    ]
