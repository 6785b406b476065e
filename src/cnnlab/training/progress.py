"""What a training run reports, and the reporters the library itself provides (no rich here: ``cnnlab train``
passes :class:`cnnlab.cli.progress.RichReporter`, with a bar per epoch).

A reporter has ``message(text)``, ``start_epoch(epoch, epochs, batches)``, ``update(done, loss, accuracy)``,
``end_epoch(row)`` and ``stop()``.
"""

from __future__ import annotations

import importlib
import sys


def epoch_line(row: dict) -> str:
    """One line per epoch, as Keras's fit() prints them: training and held-out loss and accuracy, time, rate."""
    held = "val" if "val_loss" in row else "test"
    return (
        f"epoch {row['epoch']}/{row['epochs']}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
        f"{held}_loss {row[f'{held}_loss']:.4f}  {held}_acc {row[f'{held}_accuracy']:.4f}  "
        f"{row['seconds']:.1f}s ({row['images_per_s']:,.0f} img/s)  lr {row['lr']:.2g}"
    )


def in_notebook() -> bool:
    """Running in a Jupyter kernel (IPython with a kernel behind it), not a terminal's Python or IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def default_reporter(verbose: bool = True, live: bool = False):
    """Nothing unless ``verbose``; in a notebook cnnlab.viz's reporter (found by name: training draws
    nothing itself), else a line per epoch."""
    if not verbose:
        return SilentReporter()
    if in_notebook():
        return importlib.import_module("cnnlab.viz.notebook").NotebookReporter(live)
    return LineReporter()


class SilentReporter:
    def message(self, text): ...
    def start_epoch(self, *a): ...
    def update(self, *a): ...
    def end_epoch(self, row): ...
    def stop(self): ...


class LineReporter(SilentReporter):
    """Plain lines on stderr: the start, then one line per epoch."""

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def end_epoch(self, row: dict) -> None:
        self.message(epoch_line(row))
