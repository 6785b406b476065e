"""``cnnlab train``, ``cnnlab eval``, ``cnnlab predict``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cnnlab.cli import app
from cnnlab.cli.options import parse_pair, print_table
from cnnlab.ranks import is_main_process
from cnnlab.train.config import read_config_file

console = Console(highlight=False)


PRECISION_HELP = "auto (bf16 where the CPU has it natively, else fp32), bf16, or fp32 for exact comparisons."


@app.command()
def train(
    data: str | None = typer.Option(
        None, "--data", help="Dataset name (mnist, fashion-mnist, digits) or image folder."
    ),
    model: str | None = typer.Option(None, "--model", help="Zoo name or .json/.toml spec."),
    recipe: str | None = typer.Option(
        None, "--recipe", help="A named set of options for the dataset (see cnnlab models recipes); yours win."
    ),
    epochs: int | None = typer.Option(None, "--epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate."),
    lr_schedule: str | None = typer.Option(
        None,
        "--lr-schedule",
        help="constant; cosine: decay to 0 over the run (Keras's CosineDecay); or onecycle: up from lr/25 to "
        "--lr over the first 30% of the steps, then down to lr/250,000 (torch's OneCycleLR).",
    ),
    optimizer: str | None = typer.Option(None, "--optimizer", help="adam, adamw, sgd or rmsprop."),
    weight_decay: float | None = typer.Option(
        None,
        "--weight-decay",
        help="With adamw: decoupled decay, each step scales the weights by 1 - lr x this (e.g. 0.05); "
        "with the others: an L2 term in the gradient.",
    ),
    augment: str | None = typer.Option(
        None,
        "--augment",
        help="Per-batch augmentation: shift=S (pixels), flip, erase=P, rotate=D (degrees), e.g. shift=2,erase=0.5.",
    ),
    label_smoothing: float | None = typer.Option(
        None, "--label-smoothing", help="Spread this much of each target over all classes (Keras's), e.g. 0.1."
    ),
    ema: float | None = typer.Option(
        None,
        "--ema",
        help="Keep a moving average of the weights with this decay (e.g. 0.999); it is evaluated and saved.",
    ),
    warmup: float | None = typer.Option(
        None, "--warmup", help="Epochs of linear learning-rate warm-up before the schedule (e.g. 1)."
    ),
    seed: int | None = typer.Option(None, "--seed"),
    validation_split: float | None = typer.Option(None, "--validation-split", help="Hold out the last fraction."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or mps."),
    precision: str | None = typer.Option(None, "--precision", help="auto, fp32 or bf16."),
    size: str | None = typer.Option(None, "--size", help="Resize images to H,W."),
    mode: str | None = typer.Option(None, "--mode", help="gray or rgb."),
    out: str | None = typer.Option(None, "--out", help="Run directory (default runs/<model>-<data>-<time>)."),
    config: Path | None = typer.Option(None, "--config", help="JSON/TOML file whose keys match these options."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this directory."),
    compile: bool = typer.Option(
        False, "--compile", help="Run the training step through torch.compile (for GPUs; slower on most CPUs)."
    ),
    nproc: int = typer.Option(
        1,
        "--nproc",
        help="Train in N processes on this machine through torch.distributed (gloo on CPU, nccl on CUDA); "
        "the global batch stays --batch-size. Several machines: torchrun ... -m cnnlab train.",
    ),
) -> None:
    """Train a CNN into a run directory, with a progress bar, one line per epoch and a checkpoint after each.

    Example: cnnlab train --data mnist --model seed-fashion --epochs 3 --batch-size 64 --out runs/first
    """
    from cnnlab.train import distributed
    from cnnlab.train import train as fit

    options = read_config_file(config) if config else {}
    given = {
        "data": data,
        "model": model,
        "recipe": recipe,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "lr_schedule": lr_schedule,
        "optimizer": optimizer,
        "weight_decay": weight_decay,
        "augment": augment,
        "label_smoothing": label_smoothing,
        "ema": ema,
        "warmup": warmup,
        "seed": seed,
        "validation_split": validation_split,
        "device": device,
        "precision": precision,
        "size": list(parse_pair(size, "--size")) if size else None,
        "mode": mode,
        "out": out,
        "compile": True if compile else None,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if nproc != 1:
        from cnnlab.train.loop import run_folder

        out_dir = run_folder(options, resume)
        args = [*(["--config", str(config)] if config else []), *(["--resume", str(resume)] if resume else [])]
        for key, value in {**given, "out": None if resume else str(out_dir)}.items():
            if value is True:
                args.append(f"--{key}")
            elif value is not None:
                args += [f"--{key.replace('_', '-')}", ",".join(map(str, value)) if key == "size" else str(value)]
        code = distributed.launch(nproc, args, out_dir, sys.argv)
        if code:
            raise typer.Exit(code)
        return
    from cnnlab.cli.progress import RichReporter
    from cnnlab.viz.train import curves_callback

    command_line = distributed.command_line() or sys.argv
    run = fit(resume=resume, command_line=command_line, reporter=RichReporter(), callbacks=[curves_callback], **options)
    if run is None:  # a worker other than rank 0: rank 0 reports
        return
    last = run.metrics[-1]
    held = "val" if "val_accuracy" in last else "test"
    if is_main_process():
        console.print(f"[bold]{held} accuracy {last[f'{held}_accuracy']:.4f}[/]  run directory: {run.path}")


@app.command("eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run directory, or a Keras .keras file (with --data)."),
    data: str | None = typer.Option(None, "--data", help="Evaluate on another dataset or folder (same classes)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Where to write figures (default: the run directory)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP),
    tta: str | None = typer.Option(None, "--tta", help="flip: average each test image's and its mirror's output."),
) -> None:
    """Accuracy and loss, per-class precision/recall/F1, the confusion matrix and misclassified images."""
    from cnnlab.atomic import write_text
    from cnnlab.train.evaluate import evaluate_run
    from cnnlab.train.run import load
    from cnnlab.viz.train import confusion, misclassified

    run = load(run_dir)
    ev, x = evaluate_run(run, data, precision, tta)
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
) -> None:
    """Top classes with probabilities for each image, using the run's preprocessing."""
    from cnnlab.train.predict import predict_files
    from cnnlab.train.run import load

    run = load(run_dir, [c.strip() for c in classes.split(",")] if classes else None)
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
