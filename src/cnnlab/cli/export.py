"""``cnnlab export``: a run as a file other tools read."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cnnlab.cli import app
from cnnlab.errors import InputError

console = Console(highlight=False)
FORMATS = ("keras",)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory (or a Keras file, to rewrite it)."),
    format: str = typer.Option("keras", "--format", help="keras: a Keras 3 .keras file (keras.saving.load_model)."),
    out: Path = typer.Option(..., "--out", "-o", help="The file to write (atomically)."),
) -> None:
    """Write a run's model as a Keras 3 .keras file: the same layers, names and weights, for Keras on TensorFlow.
    The model takes float NHWC images in [0, 1], as cnnlab feeds it (uint8 / 255)."""
    from cnnlab.nn.keras_file import write_keras
    from cnnlab.train.run import load

    if format not in FORMATS:
        raise InputError(f"Unknown format {format!r}. Expected one of: {', '.join(FORMATS)} (ONNX is not written yet).")
    run = load(run_dir)
    path = write_keras(run.model, out)
    console.print(
        f"wrote {path} ({path.stat().st_size:,} bytes): {run.model.name}, input {run.input_shape}, "
        f"{len(run.classes)} classes; it takes float images in [0, 1]"
    )
