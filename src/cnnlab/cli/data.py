"""``cnnlab data list | get | show | check | cache``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cnnlab import data
from cnnlab.cli import app
from cnnlab.cli.options import parse_pair, print_table
from cnnlab.cli.progress import download_progress
from cnnlab.data import cache, folder
from cnnlab.data.keras_rule import RESIZE_HELP
from cnnlab.errors import InputError

console = Console(highlight=False)
data_app = typer.Typer(
    help="Datasets: list them, fetch and verify, look at samples, check an image folder.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


@data_app.command("list")
def list_() -> None:
    """Registered datasets: image shape, classes, train/test counts, whether cached and from where."""
    table = Table("name", "image", "classes", "train / test", "cached (source)")
    for spec in data.REGISTRY.values():
        info = cache.peek(spec.name)
        counts = f"{spec.counts[0]:,} / {spec.counts[1]:,}" if spec.counts else "split on load"
        cached = f"yes ({info['source']})" if info else ("bundled" if not spec.files else "no")
        table.add_row(spec.name, "x".join(map(str, spec.image_shape)), str(len(spec.classes)), counts, cached)
    print_table(console, table)
    console.print(f"cache: {cache.home() / 'datasets'}  (set CNNLAB_HOME to move it); any folder path is a dataset too")


@data_app.command()
def get(name: str = typer.Argument(..., help="mnist, fashion-mnist or digits.")) -> None:
    """Fetch a dataset and verify every file's SHA-256; says which source it came from."""
    info = data.get(name, progress=download_progress)
    where = "already cached" if info.get("cache") == "hit" else "fetched"
    console.print(f"{name}: {where}, source: [bold]{info['source']}[/]")
    for file, digest in info.get("sha256", {}).items():
        console.print(f"  verified {file}  sha256 {digest[:16]}...")
    if info.get("sha256"):
        console.print(f"cached in {cache.dataset_dir(info['name'])}")


def _load(name_or_path: str, size: str | None, mode: str | None, resize: str | None = None):
    size_ = parse_pair(size, "--size") if size else None
    return data.load(name_or_path, size=size_, mode=mode, progress=download_progress, resize=resize)


@data_app.command()
def show(
    name_or_path: str = typer.Argument(..., help="A dataset name or an image folder."),
    split: str = typer.Option("test", "--split", help="train or test."),
    n: int = typer.Option(32, "--n", help="How many samples in the grid."),
    index: int | None = typer.Option(None, "--index", help="Show this one image large instead."),
    out: Path = typer.Option(Path("grid.png"), "--out", "-o", help="PNG to write."),
    size: str | None = typer.Option(None, "--size", help="Resize to H,W (folders with mixed sizes)."),
    mode: str | None = typer.Option(None, "--mode", help="gray or rgb."),
    resize: str | None = typer.Option(None, "--resize", help=RESIZE_HELP),
    raw: bool = typer.Option(False, "--raw", help="With --index: write the image's own pixels (to try predict on)."),
    augment: str | None = typer.Option(
        None, "--augment", help="Show the samples as training would augment them (as cnnlab train --augment)."
    ),
    seed: int = typer.Option(0, "--seed", help="With --augment: the draws' seed."),
) -> None:
    """Draw a grid of samples with their class names, or one image large with --index."""
    from cnnlab.viz.data import sample_grid, single_image

    ds = _load(name_or_path, size, mode, resize)
    part = ds.split(split)
    if index is not None:
        if not 0 <= index < len(part):
            raise InputError(f"--index {index} is outside the {split} split (0..{len(part) - 1}).")
        if raw:
            from cnnlab.data.images import save_image

            save_image(part.x[index], out)
        else:
            single_image(part.x[index], ds.classes[part.y[index]], out, f"{ds.name} {split}[{index}]")
    else:
        if raw:
            raise InputError("--raw writes one image; give --index too.")
        if n < 1:
            raise InputError(f"--n {n} must be at least 1.")
        k = min(n, len(part))
        title = f"{ds.name}: first {k} of {len(part):,} {split} images"
        x = part.x[:k]
        if augment:
            import torch

            from cnnlab.compute.tensors import from_numpy
            from cnnlab.training import augment as aug

            chosen = aug.parse(augment)
            aug.check_for(chosen, ds.name)
            x = aug.apply(from_numpy(x), chosen, torch.Generator().manual_seed(seed)).numpy()
            title += f", augmented ({chosen.text()}, seed {seed})"
        sample_grid(x, part.y[:k], ds.classes, out, title)
    console.print(f"written {out}")


@data_app.command()
def check(path: Path = typer.Argument(..., help="An image folder: root/<class>/<image>.")) -> None:
    """Check an image folder: counts per class, bad files, mixed modes and sizes, duplicates.

    Exits 1 if the folder would not load.
    """
    report = folder.check_folder(path, progress=download_progress)
    s = report.scan
    table = Table("class", *(["train", "test"] if s.has_splits else ["images"]))
    for i, name in enumerate(s.classes):
        cells = [str(s.counts(sp)[i]) for sp in ("train", "test")] if s.has_splits else [str(s.counts()[i])]
        table.add_row(name, *cells)
    print_table(console, table)
    console.print(
        f"modes: {dict(s.modes)}  sizes (HxW): " + ", ".join(f"{h}x{w}: {k}" for (h, w), k in s.sizes.items())
    )
    for p, why in report.bad:
        console.print(f"[yellow]bad file[/] {p}: {why}", soft_wrap=True)
    for group in report.duplicates:
        console.print("[yellow]identical files[/] " + ", ".join(map(str, group)), soft_wrap=True)
    for w in report.warnings:
        console.print(f"[yellow]warning[/] {w}", soft_wrap=True)
    for p in report.problems:
        console.print(f"[red]would not load[/] {p}", soft_wrap=True)
    if not report.loads:
        raise typer.Exit(1)
    console.print(
        f"[green]loads[/]: {len(s.records)} images in {len(s.classes)} classes"
        + (f", {len(report.bad)} file(s) would be skipped" if report.bad else "")
    )


@data_app.command("cache")
def cache_(
    clear: bool = typer.Option(False, "--clear", help="Remove the decoded images (of FOLDER, or of every folder)."),
    folder_: Path | None = typer.Argument(None, metavar="[FOLDER]", help="An image folder (default: all)."),
) -> None:
    """The image folders decoded once and kept under $CNNLAB_HOME/folders: each way of loading them, with its
    files and size; --clear removes them."""
    from cnnlab.data import folder_cache

    if clear:
        freed = folder_cache.clear(folder_)
        console.print(f"cleared {freed / 1e6:,.1f} MB of decoded images from {folder_cache.folders_dir()}")
        return
    rows = [e for e in folder_cache.entries() if folder_ is None or e["root"] == str(Path(folder_).resolve())]
    table = Table("folder", "loaded as", "files", "size")
    for e in rows:
        table.add_row(e["root"], e["load"], f"{e['files']:,}", f"{e['bytes'] / 1e6:,.1f} MB")
    print_table(console, table)
    console.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'} in {folder_cache.folders_dir()}")
