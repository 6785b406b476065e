"""Shared matplotlib setup: a non-interactive backend and atomic PNG saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from cnnlab.atomic import atomic_writer  # noqa: E402


def save(fig, path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    path = Path(path)
    try:
        with atomic_writer(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
