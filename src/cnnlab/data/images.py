"""Decoding and converting images with Pillow: one mode (gray/rgb), one size, uint8 HWC."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.errors import DataError, InputError

MAX_PIXELS = 40_000_000  # larger images are refused as possible decompression bombs
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
MODES = ("gray", "rgb")


def mode_of(pil_mode: str) -> str:
    return "gray" if pil_mode in GRAY_MODES else "rgb"


def check_mode(mode: str | None) -> str | None:
    if mode is None:
        return None
    m = mode.lower()
    if m not in MODES:
        raise InputError(f"Unknown image mode {mode!r}. Expected 'gray' or 'rgb'.")
    return m


def check_size(size) -> tuple[int, int] | None:
    """``28`` or ``(H, W)`` -> (H, W)."""
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"size={size!r} is not (height, width). Expected e.g. size=(32, 32).") from None
    if h < 1 or w < 1:
        raise InputError(f"size={size!r} must be at least 1x1. Expected e.g. size=(32, 32).")
    return h, w


def open_header(path: Path) -> tuple[str, tuple[int, int]]:
    """(pil_mode, (height, width)) from the file header, without decoding; DataError if not an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                mode = im.mode
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path} is too large to decode safely ({e}).") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path} is not a readable image ({type(e).__name__}: {e}).") from None
    if w * h > MAX_PIXELS:
        raise DataError(
            f"{path} is {w}x{h} = {w * h:,} pixels, above the limit of {MAX_PIXELS:,} "
            "(a guard against decompression bombs). Resize it first."
        )
    return mode, (h, w)


def decode(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """Decode fully and convert to ``mode`` and ``size`` (H, W) -> uint8 (H, W, C)."""
    open_header(path)  # refuses bombs before any pixel is decoded
    try:
        with Image.open(path) as im:
            im.load()
            return to_array(im, mode, size)
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path} could not be decoded ({type(e).__name__}: {e}).") from None


def to_array(im: Image.Image, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # transparent pixels over white, as an image viewer shows them
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    im = im.convert("L" if mode == "gray" else "RGB")
    if size is not None and (im.height, im.width) != size:
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a  # (H, W, C)


def convert(x: np.ndarray, size=None, mode: str | None = None) -> np.ndarray:
    """Convert a uint8 NHWC batch to another size and/or mode (gray <-> rgb)."""
    size, mode = check_size(size), check_mode(mode)
    if size is None and mode is None:
        return x
    target_mode = mode or ("gray" if x.shape[3] == 1 else "rgb")
    out = [to_array(Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img), target_mode, size) for img in x]
    return np.stack(out)


def save_image(img: np.ndarray, path) -> None:
    """Write a uint8 (H, W, C) image as PNG, atomically."""
    from cnnlab.atomic import atomic_writer

    arr = img[:, :, 0] if img.shape[2] == 1 else img
    with atomic_writer(path) as f:
        Image.fromarray(arr).save(f, format="PNG")
