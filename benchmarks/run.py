"""`make bench`: run every benchmark (or those named by --only), write JSON and a short table to --out."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (  # noqa: E402
    applications,
    data,
    folders,
    gpu,
    inspect_speed,
    ops,
    predict,
    processes,
    recipes,
    residual,
    serve_load,
    stats,
    train,
    zoo,
)
from cnnlab.atomic import write_text  # noqa: E402


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]

    def line(vals) -> str:
        return "| " + " | ".join(str(v).ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"

    return "\n".join(
        [line(keys), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r.values()) for r in rows)]
    )


def _serve(out: Path) -> dict:
    serve_rows, page_rows = serve_load.run()
    return {"serve": serve_rows, "page": page_rows}


def _train(out: Path) -> dict:
    rows, raw = train.run()
    return {"train": rows, "train_raw": raw}


def _recipes(out: Path, only: tuple[str, ...] = (), previous: dict | None = None) -> dict:
    """Every recipe and the Keras curves; or, with ``only``, those recipes rerun beside the previous rows."""
    if not only:
        rows, raw = recipes.run()
        return {"recipes": rows, "recipes_raw": raw}
    rows, raw = recipes.run(recipes=only, keras_epochs=0)
    before = previous or {}
    kept = before.get("recipes_raw", {})
    raw = {**kept, **raw, "runs": {**kept.get("runs", {}), **raw["runs"]}, "keras": kept.get("keras", {})}
    return {"recipes": recipes.merged(before.get("recipes", []), rows), "recipes_raw": raw}


def _folders(out: Path) -> dict:
    rows, raw = folders.run()
    return {"folders": rows, "folders_raw": raw}


def _stats(out: Path) -> dict:
    rows, raw = stats.run()
    return {"stats": rows, "stats_raw": raw}


def _predict(out: Path) -> dict:
    rows, raw = predict.run()
    return {"predict": rows, "predict_raw": raw}


# name -> what it adds to results.json (given the output folder); training first, while the machine is coolest
SECTIONS = {
    "train": _train,
    "predict": _predict,
    "zoo": lambda out: {"zoo": zoo.run(out / "zoo.png")},
    "recipes": _recipes,
    "serve": _serve,
    "ops": lambda out: {"ops": ops.run()},
    "data": lambda out: {"data": data.run()},
    "folders": _folders,
    "inspect": lambda out: {"inspect": inspect_speed.run()},
    "applications": lambda out: {"applications": applications.run()},
    "residual": lambda out: {"residual": residual.run()},
    "processes": lambda out: {"processes": processes.run()},
    "gpu": lambda out: {"gpu": gpu.run()},
    "stats": _stats,
}

TITLES = [
    ("ops", "TF-exact ops vs plain PyTorch (ratio = cnnlab / PyTorch, lower is better)"),
    ("data", "Loading a dataset (first: fetch + verify + cache; cached: median of 5, verified)"),
    ("folders", folders.TITLE),
    ("inspect", "Inspecting one 28x28 image through seed-fashion (median)"),
    ("applications", applications.TITLE),
    ("residual", residual.TITLE),
    ("stats", stats.TITLE),
    ("serve", "cnnlab serve under load: 32 clients, 20 s, /predict, loopback"),
    ("page", "The page while drawing (headless chromium, 5 s stroke)"),
    (
        "train",
        f"seed-fashion on Fashion-MNIST: cnnlab vs Keras, seconds per steady-state epoch over {train.ROUNDS} "
        "alternating rounds (ratio = cnnlab/Keras time)",
    ),
    (
        "predict",
        f"What a user calls, against Keras, best and median of {predict.ROUNDS} alternating rounds "
        "(ratio = cnnlab / Keras)",
    ),
    ("zoo", zoo.TITLE),
    ("recipes", recipes.TITLE),
    (
        "processes",
        f"cnnlab train --nproc N: seed-mnist5x5 on MNIST, batch 64, steady-state epoch, best and median of "
        f"{processes.ROUNDS} alternating rounds (efficiency = rate / (N x one process's rate))",
    ),
    ("gpu", f"On a CUDA GPU (mean of {len(gpu.SEEDS)} seeds where it says so; None: target not reached)"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--only", default="", help=f"comma-separated sections to rerun, of: {', '.join(SECTIONS)}")
    ap.add_argument("--recipes", default="", help=f"with --only recipes: rerun these, of {', '.join(recipes.RECIPES)}")
    args = ap.parse_args()
    out = Path(args.out)
    only = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        sys.exit(f"Unknown section(s) {', '.join(unknown)}. Expected some of: {', '.join(SECTIONS)}.")
    previous = out / "results.json"
    results = json.loads(previous.read_text()) if args.only and previous.exists() else {}
    results["meta"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }
    chosen = tuple(r for r in args.recipes.split(",") if r)
    if set(chosen) - set(recipes.RECIPES):
        sys.exit(f"Unknown recipe(s) {args.recipes}. Expected some of: {', '.join(recipes.RECIPES)}.")
    for name in only:
        results |= _recipes(out, chosen, results) if name == "recipes" else SECTIONS[name](out)
    if results.get("recipes") and {"recipes", "zoo"} & set(only):
        recipes.plot(results, out / "frontier.png")  # the recipes with the zoo's rows, whichever is newer
    text = "\n\n".join(f"## {title}\n\n{table(results[key])}" for key, title in TITLES if results.get(key))
    if "train_raw" in results and results["train_raw"]["keras"] is None:
        text += "\n\n(Keras peer skipped: .venv-peers is missing; `make bench` creates it.)"
    write_text(out / "results.json", json.dumps(results, indent=2))
    write_text(out / "results.md", text + "\n")
    print(text)
    print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}")


if __name__ == "__main__":
    main()
