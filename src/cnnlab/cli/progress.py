"""Rich progress bars the library's long-running calls can drive (they never import rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

console = Console(stderr=True)


class DownloadBar:
    """The object pooch drives: ``total``, ``update(n)``, ``reset()``, ``close()``."""

    def __init__(self, description: str):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(description, total=None)
        self.progress.start()
        self.n = 0

    @property
    def total(self):
        return self.progress.tasks[0].total

    @total.setter
    def total(self, value):
        self.progress.update(self.task, total=value)

    def update(self, n: int) -> None:
        self.n += n
        self.progress.update(self.task, advance=n)

    def reset(self) -> None:
        self.n = 0
        self.progress.reset(self.task, total=self.total)

    def close(self) -> None:
        self.progress.stop()


def download_progress(description: str, indeterminate: bool = False):
    """Factory passed to ``cnnlab.data.get/load(progress=...)``."""
    if indeterminate:
        console.print(f"[dim]{description} ...[/]")
        return None
    return DownloadBar(description)
