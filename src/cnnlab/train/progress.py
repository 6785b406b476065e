"""Progress of a training run: a rich bar per epoch with running loss and accuracy, one line per epoch."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichReporter:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.progress = None

    def message(self, text: str) -> None:
        self.console.print(text, soft_wrap=True)

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
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
        held = "val" if "val_loss" in row else "test"
        self.console.print(
            f"epoch {row['epoch']}/{row['epochs']}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"{held}_loss {row[f'{held}_loss']:.4f}  {held}_acc {row[f'{held}_accuracy']:.4f}  "
            f"{row['seconds']:.1f}s ({row['images_per_s']:,.0f} img/s)  lr {row['lr']:.2g}",
            soft_wrap=True,
        )

    def stop(self) -> None:
        if self.progress:
            self.progress.stop()


class SilentReporter:
    def message(self, text): ...
    def start_epoch(self, *a): ...
    def update(self, *a): ...
    def end_epoch(self, row): ...
    def stop(self): ...
