"""`make bench`: run every benchmark, write JSON and a short table to --out."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import data, inspect_speed, ops, serve_load, train  # noqa: E402
from cnnlab.atomic import write_text  # noqa: E402


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]

    def line(vals) -> str:
        return "| " + " | ".join(str(v).ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"

    return "\n".join(
        [line(keys), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r.values()) for r in rows)]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    out = Path(args.out)
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }
    train_rows, train_raw = train.run()
    serve_rows, page_rows = serve_load.run()
    results = {
        "meta": meta,
        "ops": ops.run(),
        "data": data.run(),
        "inspect": inspect_speed.run(),
        "serve": serve_rows,
        "page": page_rows,
        "train": train_rows,
        "train_raw": train_raw,
    }
    text = "## TF-exact ops vs plain PyTorch (ratio = cnnlab / PyTorch, lower is better)\n\n" + table(results["ops"])
    text += "\n\n## Loading a dataset (first: fetch + verify + cache; cached: median of 5, verified)\n\n"
    text += table(results["data"])
    text += "\n\n## Inspecting one 28x28 image through seed-fashion (median)\n\n" + table(results["inspect"])
    text += "\n\n## cnnlab serve under load: 32 clients, 20 s, /predict, loopback\n\n" + table(results["serve"])
    text += "\n\n## The page while drawing (headless chromium, 5 s stroke)\n\n" + table(results["page"])
    text += "\n\n## seed-fashion on Fashion-MNIST: cnnlab vs Keras, seconds per steady-state epoch over"
    text += f" {train.ROUNDS} alternating rounds (ratio = cnnlab/Keras time; for inference, cnnlab/Keras"
    text += " throughput)\n\n" + table(train_rows)
    if train_raw["keras"] is None:
        text += "\n\n(Keras peer skipped: .venv-peers is missing; `make bench` creates it.)"
    write_text(out / "results.json", json.dumps(results, indent=2))
    write_text(out / "results.md", text + "\n")
    print(text)
    print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}")


if __name__ == "__main__":
    main()
