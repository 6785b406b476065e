"""``cnnlab train``, ``cnnlab eval``, ``cnnlab predict``."""

from __future__ import annotations

import inspect
import json
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cnnlab.cli import app
from cnnlab.cli.options import ALLOW_NONFINITE, command, dataclass_options, given_options, print_table
from cnnlab.data.keras_rule import RESIZE_HELP
from cnnlab.ranks import is_main_process
from cnnlab.training.plan import TrainConfig, read_config_file

console = Console(highlight=False)


PRECISION_HELP = "auto (bf16 where the CPU has it natively, else fp32), bf16, or fp32 for exact comparisons."
_PLAN_OPTIONS, _PARSERS = dataclass_options(TrainConfig)
_RUN_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in (
        ("config", Path | None, typer.Option(None, "--config", help="JSON/TOML file whose keys match these options.")),
        ("resume", Path | None, typer.Option(None, "--resume", help="Continue the run in this directory.")),
        (
            "nproc",
            int,
            typer.Option(
                1,
                "--nproc",
                help="Train in N processes on this machine through torch.distributed (gloo on CPU, nccl on CUDA); "
                "the global batch stays --batch-size. Several machines: torchrun ... -m cnnlab train.",
            ),
        ),
        ("plan", Path | None, typer.Option(None, "--plan", hidden=True)),  # what --nproc hands its workers
    )
]


def train(config: Path | None, resume: Path | None, nproc: int, plan: Path | None, **values) -> None:
    """Train a CNN into a run directory, with a progress bar, one line per epoch and a checkpoint after each.

    Example: cnnlab train --data mnist --model seed-fashion --epochs 3 --batch-size 64 --out runs/first
    """
    from cnnlab.training import distributed
    from cnnlab.training.plan import Plan, make_plan

    if plan is not None:  # a worker of --nproc: the plan its launcher made
        _fit(Plan.load(plan))
        return distributed.end_worker()
    options = {**(read_config_file(config) if config else {}), **given_options(values, _PARSERS)}
    if nproc == 1:
        _fit(None, resume, options)
        return distributed.end_worker()  # a worker that torchrun started
    made = make_plan(options, resume)  # checked once, here, before any worker starts
    with tempfile.TemporaryDirectory(prefix="cnnlab-plan-") as folder:
        code = distributed.launch(nproc, ["--plan", str(made.save(Path(folder) / "plan.json"))], made.out, sys.argv)
    if code:
        raise typer.Exit(code)


def _fit(plan, resume=None, options=None) -> None:
    """Train with a rich progress bar and curves.png, and say where the run is."""
    from cnnlab.cli.progress import RichReporter
    from cnnlab.training import distributed
    from cnnlab.training import train as fit
    from cnnlab.viz.train import curves_callback

    command_line = distributed.command_line() or sys.argv
    run = fit(
        resume=resume,
        plan=plan,
        command_line=command_line,
        reporter=RichReporter(),
        callbacks=[curves_callback],
        **(options or {}),
    )
    if run is None:  # a worker other than rank 0: rank 0 reports
        return
    last = run.metrics[-1]
    held = "val" if "val_accuracy" in last else "test"
    if is_main_process():
        console.print(f"[bold]{held} accuracy {last[f'{held}_accuracy']:.4f}[/]  run directory: {run.path}")


command(app, "train", train, [*_PLAN_OPTIONS, *_RUN_OPTIONS])


@app.command("eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run directory, or a Keras .keras file (with --data)."),
    data: str | None = typer.Option(None, "--data", help="Evaluate on another dataset or folder (same classes)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Where to write figures (default: the run directory)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP),
    tta: str | None = typer.Option(None, "--tta", help="flip: average each test image's and its mirror's output."),
    resize: str | None = typer.Option(
        None, "--resize", help=RESIZE_HELP + " Default: the run's; for a .keras file Keras's bilinear."
    ),
    crop_to_aspect_ratio: bool | None = typer.Option(
        None, "--crop-to-aspect-ratio/--no-crop-to-aspect-ratio", help="With a Keras rule: as Keras's option."
    ),
    test_fraction: float = typer.Option(
        0.2, "--test-fraction", help="A folder without train/ and test/: the share held out (Keras's validation_split)."
    ),
    split_seed: int = typer.Option(0, "--split-seed", help="A folder without train/ and test/: the split's seed."),
    allow_nonfinite: bool = ALLOW_NONFINITE,
) -> None:
    """Accuracy and loss, per-class precision/recall/F1, the confusion matrix and misclassified images.

    A .keras model on a folder reads it as Keras's image_dataset_from_directory(validation_split=
    --test-fraction, seed=--split-seed, subset="validation") does; --json lists each test file's prediction."""
    from cnnlab.atomic import write_text
    from cnnlab.run.evaluate import evaluate_run
    from cnnlab.run.run import load
    from cnnlab.viz.train import confusion, misclassified

    run = load(run_dir, allow_nonfinite=allow_nonfinite)
    ev, x = evaluate_run(run, data, precision, tta, resize, crop_to_aspect_ratio, test_fraction, split_seed)
    folder = out or (run.path if run.path.is_dir() else run.path.parent)  # beside a .keras file
    write_text(folder / "confusion.json", json.dumps({"classes": list(ev.classes), "confusion": ev.confusion.tolist()}))
    confusion(ev.confusion, ev.classes, folder / "confusion.png")
    misclassified(x, ev.labels, ev.predictions, ev.probabilities, ev.classes, folder / "misclassified.png")
    if json_out:
        print(json.dumps(ev.to_dict()))
        return
    table = Table("class", "precision", "recall", "f1", "support")
    for r in ev.per_class():
        table.add_row(r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", str(r["support"]))
    print_table(console, table)
    for note in ev.notes:
        console.print(f"note: {note}")
    console.print(f"[bold]accuracy {ev.accuracy:.4f}[/]  loss {ev.loss:.4f}  ({int(ev.confusion.sum()):,} test images)")
    console.print(f"written {folder / 'confusion.png'}, {folder / 'confusion.json'}, {folder / 'misclassified.png'}")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run directory, or a Keras .keras file."),
    images: list[Path] = typer.Argument(..., help="Image files."),
    classes: str | None = typer.Option(
        None, "--classes", help='Class names of a .keras file, "a,b,c" (default: classes.txt beside it, else 0..N-1).'
    ),
    top: int = typer.Option(3, "--top", help="How many classes to show."),
    invert: str = typer.Option("auto", "--invert", help="auto, yes or no: for dark-on-light photos of digits."),
    json_out: bool = typer.Option(False, "--json", help="One JSON list, an entry per file."),
    figure: Path | None = typer.Option(None, "--figure", help="Probability bar chart (first image) to this PNG."),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP),
    allow_nonfinite: bool = ALLOW_NONFINITE,
) -> None:
    """Top classes with probabilities for each image, using the run's preprocessing."""
    from cnnlab.run.predict import predict_files
    from cnnlab.run.run import load

    run = load(run_dir, [c.strip() for c in classes.split(",")] if classes else None, allow_nonfinite=allow_nonfinite)
    preds = predict_files(run, images, invert, precision)
    if figure is not None:
        from cnnlab.viz.train import probability_bars

        probability_bars(
            preds[0].probabilities,
            run.classes,
            figure,
            f"{Path(preds[0].file).name}: {preds[0].top(1)[0][0]} ({preds[0].top(1)[0][1]:.1%})",
        )
    if json_out:
        print(json.dumps([p.to_dict(top) for p in preds]))
        return
    for p in preds:
        ranked = "  ".join(f"{c} {prob:.1%}" for c, prob in p.top(top))
        console.print(f"{p.file}: [bold]{ranked}[/]")
        for note in p.notes:
            console.print(f"  note: {note}")
    if figure is not None:
        console.print(f"written {figure}")
