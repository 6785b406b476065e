"""``cnnlab inspect``: every figure for one image through a trained run, or the random-filters experiment."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from cnnlab.cli import app
from cnnlab.cli.options import ALLOW_NONFINITE
from cnnlab.errors import InputError

console = Console(highlight=False)


def _maximize_specs(values: list[str]) -> list[tuple[str, int]]:
    specs = []
    for v in values:
        layer, _, channel = v.rpartition(":")
        if not layer or not channel.isdigit():
            raise InputError(f"--maximize {v!r} is not layer:channel. Expected e.g. --maximize conv2:5.")
        specs.append((layer, int(channel)))
    return specs


@app.command()
def inspect(
    run_dir: Path | None = typer.Argument(None, help="A run directory (not needed with --random-filters)."),
    image: str | None = typer.Option(None, "--image", help="An image file, or dataset:split:index like mnist:test:3."),
    layers: str | None = typer.Option(None, "--layers", help="Comma-separated layer names (default: all)."),
    channels: int = typer.Option(8, "--channels", help="Feature maps shown per layer."),
    method: list[str] = typer.Option(
        [],
        "--method",
        help="saliency, smoothgrad, gradcam, gradcam++, layercam, integrated_gradients or occlusion "
        "(default: gradcam; with --check-explanations, all of them).",
    ),
    maximize: list[str] = typer.Option([], "--maximize", help="layer:channel to visualize by gradient ascent."),
    random_filters: int | None = typer.Option(None, "--random-filters", help="Run N random 3x3 filters instead."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random filters."),
    out: Path = typer.Option(Path("inspect-out"), "--out", "-o", help="Folder for the PNGs and index.json."),
    dead: bool = typer.Option(False, "--dead", help="Name the dead channels of every ReLU layer on the test set."),
    check_explanations: bool = typer.Option(
        False,
        "--check-explanations",
        help="Score every method (or each --method) on test images: deletion and insertion areas, and the "
        "model-randomization check, which flags a map that ignores the weights.",
    ),
    images: int = typer.Option(16, "--images", help="Test images for --check-explanations."),
    allow_nonfinite: bool = ALLOW_NONFINITE,
) -> None:
    """Feature maps of every layer, first-layer filters, probabilities and heat maps for one image.

    Example: cnnlab inspect runs/mnist --image mnist:test:3 --layers conv1,pool1 --method saliency -o out/
    """
    from cnnlab.inspect import inspect_image, load_image
    from cnnlab.viz.inspect_folder import write_inspection, write_random_filters

    if dead:
        if run_dir is None:
            raise InputError("--dead needs a run directory: cnnlab inspect RUN --dead.")
        from cnnlab.inspect import dead_units
        from cnnlab.run.run import load
        from cnnlab.viz.style import save

        found = dead_units(load(run_dir, allow_nonfinite=allow_nonfinite))
        print(found.table().text())
        console.print(f"{save(found.plot(), out / 'dead.png')}  [dim]dead channels and zero outputs per layer[/]")
        return
    if check_explanations:
        if run_dir is None:
            raise InputError("--check-explanations needs a run directory: cnnlab inspect RUN --check-explanations.")
        _check_explanations(run_dir, method, images, out, allow_nonfinite)
        return
    if image is None:
        raise InputError(
            "Give --image FILE or --image dataset:split:index (or --dead, or --check-explanations, for the test set)."
        )
    if random_filters is not None:
        from cnnlab.inspect import random_filters as compute_random_filters

        img, desc, notes = load_image(image)
        index = write_random_filters(compute_random_filters(img, random_filters, seed), img, out, desc)
    else:
        if run_dir is None:
            raise InputError("Give a run directory (cnnlab inspect RUN --image ...), or use --random-filters N.")
        from cnnlab.run.run import load

        run = load(run_dir, allow_nonfinite=allow_nonfinite)
        img, desc, notes = load_image(image, run)
        chosen = [s.strip() for s in layers.split(",") if s.strip()] if layers else None
        # every name checked first
        ins = inspect_image(run, img, chosen, method or ["gradcam"], _maximize_specs(maximize))
        index = write_inspection(ins, out, channels, desc)
    for note in notes:
        console.print(f"note: {note}")
    for entry in index:
        console.print(f"{out / entry['file']}  [dim]{entry['meaning']}[/]", soft_wrap=True)
    console.print(f"index: {out / 'index.json'}")


def _check_explanations(run_dir: Path, methods: list[str], images: int, out: Path, allow_nonfinite: bool) -> None:
    """The table of :func:`cnnlab.inspect.check_explanations`, its figure and its numbers as JSON, under ``out``."""
    from cnnlab.atomic import write_text
    from cnnlab.cli.progress import bar
    from cnnlab.inspect import check_explanations
    from cnnlab.run.run import load
    from cnnlab.viz.style import save

    if images < 1:
        raise InputError(f"--images {images}: expected 1 or more test images.")
    run = load(run_dir, allow_nonfinite=allow_nonfinite)
    with bar("checking the explanations (methods)") as advance:
        checks = check_explanations(run, methods=methods or None, n=images, progress=advance)
    print(checks.table().text())
    figure = save(checks.plot(), out / "explanation-checks.png")
    numbers = out / "explanation-checks.json"
    write_text(numbers, json.dumps(checks.as_dict(), indent=1) + "\n")
    console.print(f"{figure}  [dim]deletion and insertion curves, randomization scores[/]")
    console.print(f"{numbers}  [dim]the same numbers[/]")
