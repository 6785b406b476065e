"""``cnnlab serve``: the local page and HTTP API over a run or a folder of runs."""

from __future__ import annotations

import gc
import ipaddress
from pathlib import Path

import typer
from rich.console import Console

from cnnlab.cli import app
from cnnlab.cli.options import ALLOW_NONFINITE
from cnnlab.data.images import MAX_UPLOAD_PIXELS

console = Console(highlight=False, stderr=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    runs: Path = typer.Argument(Path("runs"), help="A run directory, or a folder holding several."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port, 1-65535."),
    max_upload_mb: float = typer.Option(5.0, "--max-upload-mb", help="Largest accepted upload."),
    max_pixels: int = typer.Option(MAX_UPLOAD_PIXELS, "--max-pixels", help="Largest accepted image, in pixels."),
    allow_nonfinite: bool = ALLOW_NONFINITE,
) -> None:
    """Draw or upload an image and watch it flow through every layer; an HTTP API with docs at /docs."""
    import torch
    import uvicorn

    from cnnlab.compute.device import keep_freed_memory
    from cnnlab.web import create_app

    # One image per request: parallelism comes from serving requests side by side, one thread each;
    # several threads per tiny forward pass only spin and starve the event loop (p99 656 ms -> see README).
    torch.set_num_threads(1)
    keep_freed_memory()
    # on loopback, requests must name this machine (DNS rebinding); elsewhere any name may reach it
    hosts = ("127.0.0.1", "localhost", "::1", "[::1]", host) if is_loopback(host) else ("*",)
    application = create_app(runs, int(max_upload_mb * 1024 * 1024), max_pixels, hosts, allow_nonfinite)
    # Everything loaded so far lives as long as the server: keep the garbage collector from re-scanning it on
    # every collection, and collect less often (it cut the p99 latency from ~150-500 ms to ~80 ms here).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)

    if not is_loopback(host):
        console.print(
            f"[bold yellow]warning:[/] binding {host}, which is not a loopback address: anyone who can "
            "reach this machine can use the page and the API."
        )
    console.print(f"cnnlab serving {runs.resolve()} at [bold]http://{host}:{port}/[/]  (API docs: /docs; Ctrl-C stops)")
    uvicorn.run(application, host=host, port=port, log_level="warning")
