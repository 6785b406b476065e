"""Training's reporter inside a Jupyter kernel: one output area, updated in place through IPython's display
handles (never printed lines): the run's start, a bar within the epoch (steps, images/s, loss, accuracy, time
left), a line per finished epoch, and with ``live`` the curves redrawn after each epoch. When the cell is
interrupted the bar is taken away; what finished stays, and the checkpoint rules are training's own."""

from __future__ import annotations

import html
import time

from cnnlab.shown import picture
from cnnlab.training.progress import epoch_line
from cnnlab.viz.train import curves

REDRAW_S = 0.25  # the bar is redrawn at most this often


class NotebookReporter:
    def __init__(self, live: bool = False, display=None):
        from IPython.display import HTML
        from IPython.display import display as show

        self.HTML, self.live = HTML, live
        self.lines: list[str] = []  # messages and finished epochs, in order
        self.bar = self.chart = ""
        self.rows: list[dict] = []
        self.handle = (display or show)(HTML(""), display_id=True)
        self.shown_at = 0.0

    def _draw(self) -> None:
        text = "".join(f"<div>{html.escape(line)}</div>" for line in self.lines)
        self.handle.update(
            self.HTML(f'<div class="cnnlab-training" style="font-family:monospace">{text}{self.bar}{self.chart}</div>')
        )

    def message(self, text: str) -> None:
        self.lines.append(text)
        self._draw()

    def start_epoch(self, epoch: int, epochs: int, batches: int, images: int | None = None) -> None:
        self.epoch, self.epochs, self.batches, self.images = epoch, epochs, batches, images
        self.t0 = time.perf_counter()
        self.update(0, float("nan"), float("nan"))

    def update(self, done: int, loss: float, accuracy: float) -> None:
        now = time.perf_counter()
        if 0 < done < self.batches and now - self.shown_at < REDRAW_S:
            return
        self.shown_at, took = now, now - self.t0
        rate = ""
        if done and took > 0 and self.images:
            rate = f" · {min(done / self.batches, 1) * self.images / took:,.0f} img/s"
        left = f" · {took / done * (self.batches - done):.0f} s left" if done else ""
        stats = f" · loss {loss:.4f} · acc {accuracy:.4f}" if done else ""
        self.bar = (
            f'<div><progress value="{done}" max="{self.batches}" style="width:18em"></progress> '
            f"epoch {self.epoch}/{self.epochs} · {done}/{self.batches} steps{rate}{stats}{left}</div>"
        )
        self._draw()

    def end_epoch(self, row: dict) -> None:
        self.lines.append(epoch_line(row))
        self.rows.append(row)
        self.bar = ""
        if self.live:
            self.chart = picture(curves(self.rows, None), "training curves")
        self._draw()

    def stop(self) -> None:
        self.bar = ""
        self._draw()
