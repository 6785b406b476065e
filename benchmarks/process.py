"""Whole processes, as a user starts them: one place that runs a command, times it and reads what it left."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CNNLAB = str(Path(sys.executable).parent / "cnnlab")


def whole_process(cmd: list[str], env: dict | None = None) -> tuple[str, float]:
    """Run ``cmd`` to the end: its standard output and its wall time in seconds (start-up included)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return r.stdout, seconds


def cnnlab_train(out: Path, *args: str) -> tuple[list[dict], float]:
    """``cnnlab train --out OUT ARGS...`` as one whole process: its metrics.jsonl rows and its wall time."""
    _, seconds = whole_process([CNNLAB, "train", "--out", str(out), *args], {**os.environ, "COLUMNS": "200"})
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()], seconds


@contextlib.contextmanager
def busy_process():
    """One other process keeping a core busy for the block, as on any laptop (a browser, an editor's indexer):
    both sides of a comparison are measured beside it."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # scheduled and spinning before the first measurement
        yield
    finally:
        spinner.kill()
        spinner.wait()
