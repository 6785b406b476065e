"""Keras's way of reading an image folder (``keras.utils.image_dataset_from_directory``), for a model that was
trained on it: which files, in which order, in which split, and the pixels as TensorFlow decodes and resizes
them.

- **Files**: the class folders are the root's subfolders not starting with ".", in sorted order; a class's
  files are every ``.bmp .gif .jpeg .jpg .png`` below it (any case, hidden ones too), directory by directory
  in sorted order and sorted within one.
- **Split**: the list is shuffled with ``numpy.random.RandomState(seed)``; the last ``int(fraction * n)`` are
  the validation subset (cnnlab's test split), the rest the training subset, in that order. A file that
  fails to decode is dropped after the split, so the others stay where Keras puts them.
- **Pixels**: decoded as stored (no EXIF turn, alpha dropped, gray repeated to three channels), optionally
  cropped to the target's aspect ratio around the centre (``crop_to_aspect_ratio``), and resized as
  ``tf.image.resize`` does without antialiasing: float32 values, which may overshoot 0..255 with lanczos.
  ``nearest`` keeps uint8.

Every rule is separable, so a resize is two small matrix products whose weights follow TensorFlow's kernels
(``ResizeBilinear`` with half-pixel centres, ``ResizeNearestNeighbor``, ``ResizeArea`` and
``ScaleAndTranslate`` with a Lanczos kernel).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.errors import DataError, InputError

SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras indexes
RULES = ("bilinear", "nearest", "area", "lanczos3", "lanczos5")
ALIASES = {"lanczos": "lanczos3"}
CNNLAB = "cnnlab"  # cnnlab's own rule: EXIF upright, alpha over white, antialiased bilinear, JPEG scaled
# what --resize says, wherever a command has it (train, eval, data show)
RESIZE_HELP = (
    "How a folder is read and resized: cnnlab's rule, or Keras's image_dataset_from_directory with "
    "interpolation bilinear, nearest, area, lanczos3 or lanczos5 (its files, split and pixels)."
)


def check_rule(rule: str | None) -> str | None:
    """A resize rule's canonical name (None: cnnlab's own), or an InputError naming the choices."""
    if rule is None or rule == CNNLAB:
        return None
    name = ALIASES.get(str(rule).lower(), str(rule).lower())
    if name not in RULES:
        raise InputError(f"Unknown resize rule {rule!r}. Expected one of: {CNNLAB}, {', '.join(RULES)}, lanczos.")
    return name


def index(root: Path) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """(files, labels, class names) in Keras's order, before its shuffle."""
    classes = tuple(n for n in sorted(os.listdir(root)) if (root / n).is_dir() and not n.startswith("."))
    files, labels = [], []
    for label, name in enumerate(classes):
        for top, _, names in sorted(os.walk(root / name), key=lambda walked: walked[0]):
            for file in sorted(names):
                if file.lower().endswith(SUFFIXES):
                    files.append(Path(top) / file)
                    labels.append(label)
    return files, labels, classes


def split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(the order Keras shuffles n files into, a boolean mask of those in the validation subset)."""
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    test = np.zeros(n, bool)
    k = int(fraction * n)
    if k:
        test[n - k :] = True
    return order, test


def _kernel_weights(n_in: int, n_out: int, rule: str) -> np.ndarray:
    """The (n_out, n_in) matrix that resizes one axis as TensorFlow does."""
    w = np.zeros((n_out, n_in), np.float64)
    out = np.arange(n_out)
    if rule == "nearest":
        scale = np.float32(n_in) / np.float32(n_out)
        src = np.minimum(np.floor((out + np.float32(0.5)) * scale).astype(np.int64), n_in - 1)
        w[out, np.maximum(src, 0)] = 1.0
    elif rule == "bilinear":
        scale = np.float32(n_in) / np.float32(n_out)
        src = (out.astype(np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
        lower = np.maximum(np.floor(src), 0).astype(np.int64)
        upper = np.minimum(np.ceil(src), n_in - 1).astype(np.int64)
        lerp = (src - np.floor(src)).astype(np.float64)
        np.add.at(w, (out, lower), 1 - lerp)
        np.add.at(w, (out, upper), lerp)
    elif rule == "area":
        scale = np.float32(n_in) / np.float32(n_out)
        for o in out:
            lo, hi = float(np.float32(o) * scale), float(np.float32(o + 1) * scale)
            for i in range(int(math.floor(lo)), int(math.ceil(hi))):
                w[o, min(i, n_in - 1)] += (min(i + 1, hi) - max(i, lo)) / float(scale)
    else:  # lanczos3 / lanczos5: ScaleAndTranslate, no antialiasing (the kernel is not widened)
        radius = int(rule[-1])
        inv_scale = 1 / (np.float32(n_out) / np.float32(n_in))
        for o in out:
            centre = (o + 0.5) * inv_scale
            if centre < 0 or centre > n_in:
                continue
            start = min(max(math.ceil(centre - radius - 0.5), 0), n_in - 1)
            end = min(max(math.floor(centre + radius - 0.5), 0), n_in - 1) + 1
            x = np.abs(np.arange(start, end) + 0.5 - centre)
            safe = np.maximum(x, 1e-3)
            k = radius * np.sin(np.pi * safe) * np.sin(np.pi * safe / radius) / (np.pi**2 * safe**2)
            k = np.where(x <= 1e-3, 1.0, np.where(x > radius, 0.0, k))
            if abs(k.sum()) > 0:
                w[o, start:end] = k / k.sum()
    return w


def resize(a: np.ndarray, size: tuple[int, int], rule: str, crop_to_aspect_ratio: bool = False) -> np.ndarray:
    """uint8 (H, W, C) -> (h, w, C) as ``tf.image.resize`` (through ``smart_resize`` when cropping): float32,
    uint8 for ``nearest``."""
    height, width = a.shape[:2]
    th, tw = size
    if crop_to_aspect_ratio:
        ch = max(min(height, int(float(width * th) / tw)), 1)
        cw = max(min(width, int(float(height * tw) / th)), 1)
        top, left = int(float(height - ch) / 2), int(float(width - cw) / 2)
        a = a[top : top + ch, left : left + cw]
        height, width = ch, cw
    wy, wx = _kernel_weights(height, th, rule), _kernel_weights(width, tw, rule)
    out = np.einsum("oh,hwc,pw->opc", wy, a.astype(np.float64), wx, optimize=True)
    if rule == "nearest":
        return np.rint(out).astype(np.uint8)
    return out.astype(np.float32)


def _jpeg(data: bytes, gray: bool, cmyk: bool) -> np.ndarray:
    """A JPEG as TensorFlow's ``decode_image`` gives it: libjpeg-turbo's fast integer DCT with fancy
    upsampling (simplejpeg's ``fastdct=True, fastupsample=False``); CMYK turned to RGB by TensorFlow's
    formula (Adobe's inverted ink when the file has Adobe's marker)."""
    import simplejpeg

    if not cmyk:
        return simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB", fastdct=True, fastupsample=False)
    c = simplejpeg.decode_jpeg(data, colorspace="CMYK", fastdct=True, fastupsample=False).astype(np.int32)
    ink, k = c[..., :3], c[..., 3:]
    rgb = (k * ink if b"Adobe" in data[:65536] else (255 - k) * (255 - ink)) // 255
    rgb = rgb.astype(np.uint8)
    return rgb if not gray else np.asarray(Image.fromarray(rgb).convert("L"))[..., None]


def decode(path: Path, mode: str, size: tuple[int, int], rule: str, crop_to_aspect_ratio: bool = False):
    """One file as TensorFlow's ``decode_image`` gives it (``channels`` 1 or 3), resized by ``rule``."""
    from cnnlab.data.images import _open

    gray = mode == "gray"
    with _open(path) as im:
        try:
            if im.format == "JPEG":
                a = _jpeg(Path(path).read_bytes(), gray, im.mode == "CMYK")
            else:
                im.seek(0)  # a GIF's first frame, as expand_animations=False
                im.load()
                a = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise DataError(f"{path} could not be decoded ({type(e).__name__}: {e}).") from None
    return resize(a[:, :, None] if a.ndim == 2 else a, size, rule, crop_to_aspect_ratio)
