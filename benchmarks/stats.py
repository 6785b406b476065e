"""What --stats costs: seed-fashion on Fashion-MNIST with the training statistics on (the default) and off,
alternating, quiet and then beside one busy process. Each is ``cnnlab train`` as a user runs it, summarized by
its steady-state epochs (after the first). Two numbers: the ratio of the epochs' medians (on / off), which
this machine's drift between runs blurs by several percent, and the share of each "on" epoch that its own
recording took (stats.jsonl's ``recording_seconds`` over the epoch's seconds), measured inside the run. Goal:
<= 5%."""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.process import busy_process, cnnlab_train

EPOCHS, ROUNDS = 3, 4
TITLE = (
    f"--stats on against --stats off: seed-fashion on Fashion-MNIST, seconds per steady-state epoch over {ROUNDS} "
    "alternating rounds (ratio = on / off; recording = the share of an 'on' epoch spent recording; goal <= 5%)"
)


def _epochs(work: Path, tag: str, stats: str, data: str, epochs: int) -> tuple[list[float], list[float]]:
    """The steady-state epochs' seconds, and (with the statistics on) the share of each spent recording them."""
    args = ["--data", data, "--model", "seed-fashion", "--epochs", str(epochs), "--seed", "0", "--stats", stats]
    out = work / f"{tag}-{stats}"
    rows, _ = cnnlab_train(out, *args)
    seconds = [r["seconds"] for r in rows[1:]]
    if stats == "off":
        return seconds, []
    lines = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    spent = {r["epoch"]: r["recording_seconds"] for r in lines if r["kind"] == "epoch"}
    return seconds, [spent[r["epoch"]] / r["seconds"] for r in rows[1:]]


def run(data: str = "fashion-mnist", epochs: int = EPOCHS, rounds: int = ROUNDS) -> tuple[list[dict], dict]:
    """(a row a machine, {machine: {"on": epoch seconds, "off": epoch seconds, "recording": shares}}): the
    rows' seconds and share are the medians rounded, their ratio is of the medians themselves."""
    out, raw = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for machine in ("quiet", "busy"):
            times = {"on": [], "off": [], "recording": []}
            with busy_process() if machine == "busy" else contextlib.nullcontext():
                for r in range(rounds):
                    for stats in ("off", "on") if r % 2 == 0 else ("on", "off"):
                        seconds, shares = _epochs(work, f"{machine}{r}", stats, data, epochs)
                        times[stats] += seconds
                        times["recording"] += shares
            raw[machine] = times
            on, off = statistics.median(times["on"]), statistics.median(times["off"])
            out.append(
                {
                    "machine": machine,
                    "stats_on_s": round(on, 2),
                    "stats_off_s": round(off, 2),
                    "ratio": round(on / off, 3),
                    "recording": f"{statistics.median(times['recording']):.1%}",
                }
            )
    return out, raw
