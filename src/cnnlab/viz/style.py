"""Shared matplotlib setup: a non-interactive backend and atomic PNG saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from cnnlab.atomic import atomic_writer  # noqa: E402


def save(fig, path, dpi: int = 110):
    """Save ``fig`` as PNG and close it: atomically to a path, or into a binary buffer (for inlining in HTML)."""
    try:
        if hasattr(path, "write"):
            fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight")
            return path
        path = Path(path)
        with atomic_writer(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
        return path
    finally:
        plt.close(fig)
