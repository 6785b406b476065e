"""What --stats costs: seed-fashion on Fashion-MNIST with the training statistics on (the default) and off,
alternating, quiet and then beside one busy process. Each is ``cnnlab train`` as a user runs it, summarized by
its steady-state epochs (after the first). Ratio = on / off (goal: <= 1.05)."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from pathlib import Path

from benchmarks.process import busy_process, cnnlab_train

EPOCHS, ROUNDS = 2, 2
TITLE = (
    f"--stats on against --stats off: seed-fashion on Fashion-MNIST, seconds per steady-state epoch over {ROUNDS} "
    "alternating rounds (ratio = on / off; goal <= 1.05)"
)


def _epochs(work: Path, tag: str, stats: str, data: str, epochs: int) -> list[float]:
    args = ["--data", data, "--model", "seed-fashion", "--epochs", str(epochs), "--seed", "0", "--stats", stats]
    rows, _ = cnnlab_train(work / f"{tag}-{stats}", *args)
    return [r["seconds"] for r in rows[1:]]


def run(data: str = "fashion-mnist", epochs: int = EPOCHS, rounds: int = ROUNDS) -> tuple[list[dict], dict]:
    """(a row a machine, {machine: {"on": epoch seconds, "off": epoch seconds}}): the rows' seconds are the
    medians rounded, their ratio is of the medians themselves."""
    out, raw = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for machine in ("quiet", "busy"):
            times = {"on": [], "off": []}
            with busy_process() if machine == "busy" else contextlib.nullcontext():
                for r in range(rounds):
                    for stats in ("off", "on") if r % 2 == 0 else ("on", "off"):
                        times[stats] += _epochs(work, f"{machine}{r}", stats, data, epochs)
            raw[machine] = times
            on, off = statistics.median(times["on"]), statistics.median(times["off"])
            out.append(
                {
                    "machine": machine,
                    "stats_on_s": round(on, 2),
                    "stats_off_s": round(off, 2),
                    "ratio": round(on / off, 3),
                }
            )
    return out, raw
