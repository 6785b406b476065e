"""``cnnlab report``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cnnlab.cli import app
from cnnlab.cli.options import ALLOW_NONFINITE

console = Console(highlight=False)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
    data: str | None = typer.Option(None, "--data", help="Evaluate on another dataset or folder (same classes)."),
    allow_nonfinite: bool = ALLOW_NONFINITE,
) -> None:
    """One self-contained HTML page: summary, data, curves, metrics, mistakes with Grad-CAM, filters, feature maps."""
    from cnnlab.report import build_report
    from cnnlab.run.run import load

    path = build_report(load(run_dir, allow_nonfinite=allow_nonfinite), out, data)
    console.print(f"report written to {path.resolve()}")
