"""Reading small matrices a person types: ``"1 2 3; 4 5 6"`` or a ``.npy`` / ``.txt`` file.

Rows are separated by ``;`` (or new lines in a file), numbers by spaces or commas.
The CLI and the web API both read their inputs through these functions.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from cnnlab.errors import InputError, ParseError, ShapeError

_SPLIT = re.compile(r"[\s,]+")


def parse_matrix(text: str, name: str = "matrix") -> np.ndarray:
    """``"1 2 3; 4 5 6"`` -> float64 array of shape (2, 3)."""
    rows = [r.strip() for r in re.split(r"[;\n]", text.strip().strip("[]"))]
    rows = [r for r in rows if r]
    if not rows:
        raise ParseError(f"{name} is empty. Expected rows of numbers separated by ';', e.g. \"1 2 3; 4 5 6\".")
    values = []
    for i, row in enumerate(rows, 1):
        cells = [c for c in _SPLIT.split(row.strip("[] ")) if c]
        parsed = []
        for cell in cells:
            try:
                parsed.append(float(cell))
            except ValueError:
                raise ParseError(
                    f"{name} row {i} holds {cell!r}, which is not a number. "
                    "Expected numbers separated by spaces or commas, rows by ';', e.g. \"1 2; 3 4\"."
                ) from None
        values.append(parsed)
    widths = [len(r) for r in values]
    if len(set(widths)) > 1:
        bad = next(i for i, w in enumerate(widths, 1) if w != widths[0])
        raise ParseError(
            f"{name} has ragged rows: row 1 has {widths[0]} numbers but row {bad} has {widths[bad - 1]}. "
            "Expected every row to have the same number of values."
        )
    arr = np.array(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ParseError(f"{name} holds nan or inf. Expected finite numbers.")
    return arr


def load_array(spec: str, name: str = "matrix") -> np.ndarray:
    """Inline text, or the path of a ``.npy`` file (any rank) or a ``.txt`` file (a 2-D matrix)."""
    path = Path(spec)
    looks_like_file = path.suffix.lower() in (".npy", ".txt")
    if looks_like_file and not path.is_file():
        raise InputError(f"{name} file {spec!r} does not exist. Expected an existing .npy or .txt file.")
    if looks_like_file and path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ParseError(f"{name} file {spec!r} is not a readable .npy array ({e}).") from None
        if arr.dtype.kind not in "biuf":
            raise ParseError(f"{name} file {spec!r} holds {arr.dtype} values. Expected numbers.")
        if arr.size == 0:
            raise ParseError(f"{name} file {spec!r} is empty (shape {arr.shape}).")
        return arr.astype(np.float64)
    if looks_like_file:
        return parse_matrix(path.read_text(), f"{name} file {spec!r}")
    return parse_matrix(spec, name)


def as_batch(arr: np.ndarray, name: str = "input") -> np.ndarray:
    """A matrix (H, W) -> (1, H, W, 1); an image (H, W, C) -> (1, H, W, C); a batch stays."""
    if arr.ndim == 2:
        return arr[None, :, :, None]  # (1, H, W, 1)
    if arr.ndim == 3:
        return arr[None]  # (1, H, W, C)
    if arr.ndim == 4:
        return arr
    raise ShapeError(
        f"{name} has shape {arr.shape}. Expected a matrix (H, W), an image (H, W, C) or a batch (N, H, W, C)."
    )


def stack_kernels(arrays: list[np.ndarray]) -> np.ndarray:
    """Kernels as given on the command line -> one HWIO kernel.

    Several 2-D kernels are one output channel each: (kh, kw, 1, O). A single
    array may also be (kh, kw) or already (kh, kw, C, O).
    """
    if not arrays:
        raise InputError('No kernel given. Expected --kernel "1 1; 1 1" (repeat it for more output channels).')
    if len(arrays) == 1 and arrays[0].ndim == 4:
        return arrays[0]
    shapes = {a.shape for a in arrays}
    if any(a.ndim != 2 for a in arrays):
        raise ShapeError(
            f"Kernels of shapes {sorted(shapes)} cannot be combined. Expected 2-D (kh, kw) kernels, one per "
            "output channel, or a single (kh, kw, in_channels, out_channels) .npy file."
        )
    if len(shapes) > 1:
        raise ShapeError(
            f"The kernels have different shapes {sorted(shapes)}. Expected every output channel's kernel "
            "to have the same (kh, kw)."
        )
    return np.stack(arrays, axis=-1)[:, :, None, :]  # (kh, kw, 1, O)
