"""Shared matplotlib setup: figures made without pyplot, saved atomically as PNG.

A figure is a ``matplotlib.figure.Figure`` of its own (:func:`subplots`), never pyplot's: cnnlab draws from
threads (the server) and inside notebooks, and pyplot's global state (its list of open figures, its backend)
would be shared by them; a notebook's ``%matplotlib`` backend and its own plots are left as they are.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from cnnlab.atomic import atomic_writer


def figure(figsize=None) -> Figure:
    """``plt.figure`` without pyplot: an empty figure, for a layout of its own (``add_gridspec``)."""
    return Figure(figsize=figsize)


def subplots(rows: int = 1, cols: int = 1, figsize=None, **options):
    """``plt.subplots`` without pyplot: (figure, axes)."""
    fig = figure(figsize)
    return fig, fig.subplots(rows, cols, **options)


def save(fig, path, dpi: int = 110):
    """Save ``fig`` as PNG: atomically to a path, or into a binary buffer (for inlining in HTML)."""
    if hasattr(path, "write"):
        fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight")
        return path
    path = Path(path)
    with atomic_writer(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    return path


def finish(fig, path, dpi: int = 110):
    """A drawing's end: ``fig`` itself when no ``path`` is given (``.plot()``), else saved there."""
    return fig if path is None else save(fig, path, dpi)


def png(fig, dpi: int = 80) -> bytes:
    """``fig`` as PNG bytes, at a notebook's size."""
    buf = io.BytesIO()
    save(fig, buf, dpi)
    return buf.getvalue()
