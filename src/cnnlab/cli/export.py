"""``cnnlab export``: a run as a file other tools read."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cnnlab.cli import app
from cnnlab.cli.options import ALLOW_NONFINITE

console = Console(highlight=False)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory (or a Keras file, to rewrite it)."),
    format: str = typer.Option(
        "keras",
        "--format",
        help="keras: a Keras 3 .keras file (keras.saving.load_model); onnx: an ONNX model. Both take float NHWC "
        "images in [0, 1] (uint8 / 255) and output class probabilities (a model ending in logits gets a last "
        "Softmax layer).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The file to write (atomically)."),
    allow_nonfinite: bool = ALLOW_NONFINITE,
) -> None:
    """Write a run's model for other tools: Keras 3 (same layers, names, weights) or ONNX (dynamic batch)."""
    from cnnlab.run.export import export as write
    from cnnlab.run.run import load

    console.print(write(load(run_dir, allow_nonfinite=allow_nonfinite), out, format))
