"""Rich progress bars the library's long-running calls can drive (they never import rich)."""

from __future__ import annotations

import contextlib

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from cnnlab.training.progress import epoch_line

console = Console(stderr=True)


class DownloadBar:
    """The object pooch drives: ``total``, ``update(n)``, ``reset()``, ``close()``; of bytes, or of files."""

    def __init__(self, description: str, files: bool = False):
        counted = (MofNCompleteColumn(), FilesPerSecond()) if files else (DownloadColumn(), TransferSpeedColumn())
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            *counted,
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


class FilesPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:,.0f} files/s" if task.speed else "")


def download_progress(description: str, indeterminate: bool = False, unit: str = "bytes"):
    """Factory passed to ``cnnlab.data.get/load(progress=...)``: a bar of bytes, or of files (``unit``)."""
    if indeterminate:
        console.print(f"[dim]{description} ...[/]")
        return None
    return DownloadBar(description, files=unit == "files")


class RichReporter:
    """A bar per epoch with the running loss and accuracy, then the epoch's line (training's reporter); its
    ``bars`` draw the loading of the data (an image folder's files)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.progress = None
        self.bars = download_progress

    def message(self, text: str) -> None:
        self.console.print(text, soft_wrap=True)

    def start_epoch(self, epoch: int, epochs: int, batches: int, images: int | None = None) -> None:
        self.progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task = self.progress.add_task("train", total=batches, stats="")
        self.progress.start()

    def update(self, done: int, loss: float, accuracy: float) -> None:
        self.progress.update(self.task, completed=done, stats=f"loss {loss:.4f} acc {accuracy:.4f}")

    def end_epoch(self, row: dict) -> None:
        if self.progress:
            self.progress.stop()
        self.console.print(epoch_line(row), soft_wrap=True)

    def stop(self) -> None:
        if self.progress:
            self.progress.stop()


@contextlib.contextmanager
def bar(description: str):
    """A bar for a library call that reports ``progress(done, total)``: yields that callback."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    task = progress.add_task(description, total=None)
    with progress:
        yield lambda done, total: progress.update(task, completed=done, total=total)
