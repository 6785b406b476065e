"""The cats-and-dogs tutorial at Kaggle's size: a generated folder of PHOTOS JPEGs (two classes, 250-500 px a
side, as Dogs vs. Cats is), read and trained on by cnnlab and by Keras on the same machine in one run.

- cnnlab's first load: ``cnnlab.data.load(folder, size=(100, 100), mode="rgb")`` in a fresh ``CNNLAB_HOME``
  (parallel decode, JPEG drafted, the cache written); cached: the same call again.
- Keras's pass: ``image_dataset_from_directory(folder, image_size=(100, 100))`` and one pass over it.
- First loads and Keras passes alternate ``LOAD_ROUNDS`` times, each after ``os.sync()`` (the disk done with
  the writes before it); the medians are compared, of the seconds and of the CPU seconds (all processes and
  threads: the work done, which a busy or noisy machine changes far less than the seconds).
- One epoch of seed-catdog on the training split: ``cnnlab train --model seed-catdog --size 100,100`` (the
  epoch's seconds from metrics.jsonl, the folder already cached as a user's second command finds it) against
  ``model.fit`` of the same model on ``image_dataset_from_directory(validation_split=0.2, subset="training")``;
  cnnlab's at its default precision (bf16 where the CPU runs it natively, recorded as ``auto_precision``) and
  again with ``--precision fp32``, the epoch of a CPU without native bf16.

Each measurement is a process of its own (its peak resident memory read from ``wait4``, see ``LAUNCH``);
cnnlab and Keras alternate, quiet and then beside one busy process (benchmarks/process.py). Ratios are cnnlab / Keras.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.process import CNNLAB, busy_process
from benchmarks.train import PEER_ENV, PEER_PYTHON
from cnnlab.data.folder_cache import RACY_NS

PEER = Path(__file__).resolve().parent / "peers" / "keras_folder_speed.py"
PHOTOS = int(os.environ.get("CNNLAB_BENCH_PHOTOS", "25000"))
TITLE = (
    f"A {PHOTOS:,}-photo cats-and-dogs folder (JPEG, 250-500 px) at 100x100: cnnlab vs Keras's "
    "image_dataset_from_directory (ratio = cnnlab / Keras; peak = the process's resident memory)"
)
# the CPU seconds of the load: this process's and those of its decoding workers (reaped before it returns)
LOAD = (
    "import json, resource, sys, time; import cnnlab; "
    "cpu = lambda: sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, "
    "resource.RUSAGE_CHILDREN) for f in ('ru_utime', 'ru_stime')); t1, c1 = time.perf_counter(), cpu(); "
    "ds = cnnlab.data.load(sys.argv[1], size=(100, 100), mode='rgb'); "
    "print(json.dumps({'s': time.perf_counter() - t1, 'cpu_s': cpu() - c1, 'files': len(ds.train) + len(ds.test)}))"
)


def _photos(args) -> None:
    root, first, count, seed = args
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(first, first + count):
        w, h = (int(v) for v in rng.integers(250, 501, 2))
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)  # a smooth photo-like field, then grain
        im = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
        a = np.asarray(im, np.int16) + rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
        name = ("cats", "dogs")[i % 2]
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(root / name / f"{name[:-1]}.{i}.jpg", quality=90)


def make_folder(root: Path, n: int = PHOTOS) -> Path:
    """``n`` JPEGs under cats/ and dogs/, written by one process a core."""
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True, exist_ok=True)
    chunk = 500
    jobs = [(root, i, min(chunk, n - i), i) for i in range(0, n, chunk)]
    with concurrent.futures.ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        list(pool.map(_photos, jobs))
    return root


# Starts the measured command and reports its peak. A process forked from a large one starts with that one's
# resident size as its own peak (Linux keeps it across fork and exec), so the command is started by this small
# process, and its peak is what wait4 reports for it here.
LAUNCH = (
    "import os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, status, usage = os.wait4(p.pid, 0); "
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); sys.exit(os.waitstatus_to_exitcode(status))"
)


def _run(cmd: list[str], env: dict) -> tuple[dict, float]:
    """Run ``cmd`` to the end: the JSON object of its last line and its own peak resident memory (MB), read
    from ``wait4`` as the process is reaped by a small launcher (:data:`LAUNCH`)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, tempfile.TemporaryDirectory() as d:
        peak = Path(d) / "peak"
        code = subprocess.run([sys.executable, "-c", LAUNCH, str(peak), *cmd], stdout=out, stderr=err, env=env)
        out.seek(0)
        err.seek(0)
        if code.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
        lines = out.read().strip().splitlines()
        kb = int(peak.read_text())
    return (json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}), kb / 1024


LOAD_ROUNDS = 5  # first loads and Keras passes, alternating: the median of each


def _settled(cmd: list[str], env: dict) -> tuple[dict, float]:
    """:func:`_run` once the disk has written what the last command left (the folder just generated, a cache
    just made): neither side pays for the other's writes."""
    os.sync()
    return _run(cmd, env)


def _median(results: list[tuple], at: int = 0) -> tuple[float, float]:
    """The median of item ``at`` (the seconds) of (seconds, peak, CPU seconds) results, and the largest peak."""
    return float(np.median([r[at] for r in results])), max(r[1] for r in results)


def one_round(folder: Path, work: Path, tag: str) -> dict:
    firsts, passes, files = [], [], set()
    for i in range(LOAD_ROUNDS):
        env = {**os.environ, "CNNLAB_HOME": str(work / f"home-{tag}-{i}"), "COLUMNS": "200"}
        first, first_peak = _settled([sys.executable, "-c", LOAD, str(folder)], env)
        keras, keras_peak = _settled([str(PEER_PYTHON), str(PEER), "pass", str(folder)], {**PEER_ENV})
        firsts.append((first["s"], first_peak, first["cpu_s"]))
        passes.append((keras["pass_s"], keras_peak, keras["pass_cpu_s"]))
        files |= {first["files"], keras["files"]}
    cached, cached_peak = _settled([sys.executable, "-c", LOAD, str(folder)], env)
    argv = ["train", "--data", str(folder), "--model", "seed-catdog", "--size", "100,100", "--epochs", "1"]
    epochs = {}
    for precision in ("auto", "fp32"):  # cnnlab's default, and float32 as a CPU without native bf16 runs it
        out = work / f"run-{tag}-{precision}"
        _, peak = _settled([CNNLAB, *argv, "--precision", precision, "--out", str(out)], env)
        seconds = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["seconds"]
        epochs[precision] = (seconds, peak, json.loads((out / "config.json").read_text())["precision"])
    fit, fit_peak = _settled([str(PEER_PYTHON), str(PEER), "fit", str(folder), "1"], {**PEER_ENV})
    assert files == {cached["files"]} == {PHOTOS}, (files, cached)
    return {
        "first": _median(firsts),
        "first_cpu": _median(firsts, 2),
        "cached": (cached["s"], cached_peak),
        "keras_pass": _median(passes),
        "keras_pass_cpu": _median(passes, 2),
        "epoch": epochs["auto"][:2],
        "epoch_fp32": epochs["fp32"][:2],
        "auto_precision": epochs["auto"][2],
        "keras_epoch": (fit["epoch_s"][0], fit_peak),
        "first_s": [r[0] for r in firsts],
        "keras_pass_s": [r[0] for r in passes],
        "first_cpu_s": [r[2] for r in firsts],
        "keras_pass_cpu_s": [r[2] for r in passes],
    }


def run() -> tuple[list[dict], dict]:
    raw = {"photos": PHOTOS, "rounds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        folder = make_folder(work / "catdog")
        raw["generate_s"] = round(time.perf_counter() - t0, 1)
        time.sleep(RACY_NS / 1e9 + 1)  # a user's photos are not seconds old: past the window the cache distrusts
        raw["rounds"]["quiet"] = one_round(folder, work, "quiet")
        with busy_process():
            raw["rounds"]["busy"] = one_round(folder, work, "busy")
    rows = []
    pairs = [("first load", "first", "keras_pass"), ("first load, CPU seconds", "first_cpu", "keras_pass_cpu")]
    pairs.append(("cached load", "cached", "keras_pass"))
    pairs.append(("seed-catdog epoch", "epoch", "keras_epoch"))
    pairs.append(("seed-catdog epoch, cnnlab in fp32", "epoch_fp32", "keras_epoch"))
    for what, ours, theirs in pairs:
        for machine, r in raw["rounds"].items():
            (s, peak), (ks, kpeak) = r[ours], r[theirs]
            rows.append(
                {
                    "what": what,
                    "machine": machine,
                    "cnnlab_s": round(s, 2),
                    "keras_s": round(ks, 2),
                    "ratio": round(s / ks, 3),
                    "cnnlab_peak_mb": round(peak),
                    "keras_peak_mb": round(kpeak),
                }
            )
    return rows, raw
