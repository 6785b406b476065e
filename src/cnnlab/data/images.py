"""Decoding and converting images with Pillow: one mode (gray/rgb), one size, uint8 HWC."""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.atomic import atomic_writer
from cnnlab.data import jpeg
from cnnlab.errors import DataError, InputError
from cnnlab.limits import physical_memory

MAX_PIXELS = 40_000_000  # larger images are refused as possible decompression bombs
# the largest image the server takes by default (an upload, pixels, a served sample's size), and the largest
# input a Keras file may declare (times 4 channels)
MAX_UPLOAD_PIXELS = 4096 * 4096
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
MODES = ("gray", "rgb")


def border_mean(x: np.ndarray) -> float:
    """Mean of the outermost rows and columns of an image (H, W, C) or a batch (N, H, W, C): above 127,
    the background is light (a photo of a digit on paper), below, dark (MNIST's white-on-black)."""
    a = np.asarray(x)
    a = a[None] if a.ndim == 3 else a  # (N, H, W, C)
    edges = [a[:, 0], a[:, -1], a[:, :, 0], a[:, :, -1]]
    return float(np.concatenate([e.ravel() for e in edges]).mean())


def is_blank(img: np.ndarray) -> bool:
    """Every pixel the same (an empty canvas, an all-black or all-white image): nothing to recognise."""
    a = np.asarray(img)
    return a.size == 0 or bool(a.min() == a.max())


def mode_of(pil_mode: str) -> str:
    return "gray" if pil_mode in GRAY_MODES else "rgb"


def mode_for(channels: int) -> str:
    """The image mode of an image or model with ``channels`` channels: 1 is "gray", 3 "rgb"."""
    return "gray" if channels == 1 else "rgb"


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
    if h * w > MAX_PIXELS:
        raise InputError(
            f"size={h}x{w} is {h * w:,} pixels an image, above the limit of {MAX_PIXELS:,}. "
            "Expected e.g. size=(32, 32)."
        )
    return h, w


@contextlib.contextmanager
def _open(path: Path):
    """Image.open with Pillow's decompression-bomb warning turned into an error and cnnlab's pixel limit
    checked, before any pixel is decoded; every failure is a DataError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path} is too large to decode safely ({e}).") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path} is not a readable image ({type(e).__name__}: {e}).") from None
    with im:
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise DataError(
                f"{path} is {w}x{h} = {w * h:,} pixels, above the limit of {MAX_PIXELS:,} "
                "(a guard against decompression bombs). Resize it first."
            )
        yield im


EXIF_ORIENTATION = 0x0112  # 1: upright; 2-8: mirrored and/or turned, as a phone camera records it
HIGH_DEPTH = {"I": "32-bit", "I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit", "I;16N": "16-bit", "F": "float"}


def _orientation(im: Image.Image) -> int:
    if im.format == "JPEG" and "exif" not in im.info and "xmp" not in im.info:  # nothing says it is turned
        return 1
    try:
        return int(im.getexif().get(EXIF_ORIENTATION, 1))
    except (TypeError, ValueError, SyntaxError, OSError):  # a damaged EXIF block: taken as upright
        return 1


def open_header(path: Path) -> tuple[str, tuple[int, int]]:
    """(pil_mode, (height, width)) from the file header, without decoding, as the image stands upright
    (EXIF orientation applied); DataError if not an image."""
    with _open(path) as im:
        turned = _orientation(im) in (5, 6, 7, 8)  # a quarter turn swaps height and width
        return im.mode, ((im.width, im.height) if turned else (im.height, im.width))


def decode(
    path: Path, mode: str | None = None, size: tuple[int, int] | None = None, notes=None, draft: bool = False
) -> np.ndarray:
    """Decode fully and convert to ``mode`` (default: the file's own, gray or rgb) and ``size`` (H, W) -> uint8
    (H, W, C); the file is opened once. What was done to it besides (see :func:`to_array`) goes to ``notes``.
    ``draft``: a gray or colour JPEG at least twice the size asked for is decoded by libjpeg-turbo at the
    smallest of its scales 1/8-4/8 that is no less than that size, in the DCT domain, and then resized (on
    average within 2 of 255 levels of the full decode); a CMYK one at 1/2, 1/4 or 1/8 scale by Pillow."""
    if draft and size is not None:
        a = _plain_jpeg(path, mode, size, notes)
        if a is not None:
            return a
    with _open(path) as im:
        try:
            orientation = _orientation(im)
            if draft and size is not None and im.format == "JPEG":
                turned = orientation in (5, 6, 7, 8)  # the file's own width and height, before turning
                h, w = (size[1], size[0]) if turned else size
                if im.mode in ("L", "RGB"):
                    im = jpeg.scaled(path.read_bytes(), im.mode == "L", h, w)
                else:
                    im.draft(im.mode, (w, h))
            im.load()
            return to_array(im, mode or mode_of(im.mode), size, notes, path.name, orientation)
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"{path} could not be decoded ({type(e).__name__}: {e}).") from None


def _plain_jpeg(path: Path, mode, size, notes) -> np.ndarray | None:
    """:func:`decode` of a gray or colour JPEG that says nothing of its orientation, by libjpeg-turbo alone
    (header, pixel limit, a scaled decode). None for anything else (see :func:`jpeg.plain`): :func:`decode`
    then opens it with Pillow."""
    found = jpeg.plain(path, MAX_PIXELS)
    if found is None:
        return None
    try:
        im = jpeg.scaled(*found, *size)
    except ValueError as e:
        raise DataError(f"{path} could not be decoded ({type(e).__name__}: {e}).") from None
    return to_array(im, mode or mode_of(im.mode), size, notes, path.name, 1)


def _to_8bit(im: Image.Image, notes: list, name: str) -> Image.Image:
    """A 16-bit, 32-bit or float gray image as 8-bit "L". Values already within 0..255 are kept, floats
    within [0, 1] are scaled by 255 (the convention of float pixels everywhere in cnnlab), and anything
    else is stretched from its own range [min, max] to 0..255, with a note: clipping at 255 would turn
    a 12- or 16-bit image white."""
    a = np.asarray(im, dtype=np.float64)
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
    depth = HIGH_DEPTH[im.mode]
    if lo >= 0 and hi <= 255 and (im.mode != "F" or hi > 1):
        out = a
    elif im.mode == "F" and lo >= 0 and hi <= 1:
        out = a * 255
        notes.append(f"{name} is a float image with values in [0, 1]; scaled by 255")
    else:
        out = (a - lo) * (255 / (hi - lo)) if hi > lo else np.zeros_like(a)
        notes.append(f"{name} is a {depth} image (values {lo:g}..{hi:g}); scaled to 0..255")
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "L")


# how to turn an image upright for each EXIF orientation (TIFF/EXIF 2.3, tag 0x0112)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def to_array(im: Image.Image, mode: str, size, notes=None, name: str = "the image", orientation: int | None = None):
    """A Pillow image as uint8 (H, W, C) in ``mode`` and ``size``: turned upright as its EXIF orientation
    (or ``orientation``, the file's when ``im`` was decoded apart from it) says, 16-bit/32-bit/float values
    scaled to 8 bits (:func:`_to_8bit`), transparency over white. ``notes`` (a list), when given, receives
    a line for each change a user would want to know about."""
    notes = notes if notes is not None else []
    orientation = _orientation(im) if orientation is None else orientation
    if orientation in _UPRIGHT:
        im = im.transpose(_UPRIGHT[orientation])
        notes.append(f"{name} turned upright, as its EXIF orientation ({orientation}) says")
    if im.mode in HIGH_DEPTH:
        im = _to_8bit(im, notes, name)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # transparent pixels over white, as an image viewer shows them
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    target = "L" if mode == "gray" else "RGB"
    a = np.asarray(im if im.mode == target else im.convert(target), dtype=np.uint8)
    a = a[:, :, None] if a.ndim == 2 else a  # (H, W, C)
    return a if size is None or a.shape[:2] == tuple(size) else resize(a, size)


def resize(a: np.ndarray, size) -> np.ndarray:
    """A uint8 (H, W, C) image (C = 1 or 3) at ``size`` (H, W) by cnnlab's rule: bilinear interpolation with
    Pillow's antialiasing (its triangle filter widened by the scale where the image shrinks), computed by
    fast_image_resize's SIMD kernels (cykooz-resizer); it stays within 1 of 255 levels of Pillow's own."""
    from cykooz_resizer import FilterType, ImageData, PixelType, ResizeAlg, ResizeOptions, Resizer

    (h, w), kind = size, PixelType.U8 if a.shape[2] == 1 else PixelType.U8x3
    out, bilinear = ImageData(w, h, kind), ResizeOptions(ResizeAlg.convolution(FilterType.bilinear))
    Resizer().resize(ImageData(a.shape[1], a.shape[0], kind, np.ascontiguousarray(a).tobytes()), out, bilinear)
    return np.frombuffer(out.get_buffer(), np.uint8).reshape(h, w, a.shape[2])


def convert(x: np.ndarray, size=None, mode: str | None = None) -> np.ndarray:
    """Convert a uint8 NHWC batch to another size and/or mode (gray <-> rgb); unchanged if it already fits."""
    size, mode = check_size(size), check_mode(mode)
    current_mode = mode_for(x.shape[3])
    if (size is None or size == tuple(x.shape[1:3])) and (mode is None or mode == current_mode):
        return x
    target_mode = mode or current_mode
    h, w = size or x.shape[1:3]
    need = len(x) * h * w * (1 if target_mode == "gray" else 3)
    if need > physical_memory() // 2:
        raise InputError(
            f"{len(x):,} images at {h}x{w} {target_mode} take {need / 1e9:,.1f} GB, more than half of this "
            f"machine's {physical_memory() / 1e9:.1f} GB. Choose a smaller size."
        )
    out = [to_array(Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img), target_mode, size) for img in x]
    return np.stack(out)


def save_image(img: np.ndarray, path) -> None:
    """Write a uint8 (H, W, C) image as PNG, atomically."""
    arr = img[:, :, 0] if img.shape[2] == 1 else img
    with atomic_writer(path) as f:
        Image.fromarray(arr).save(f, format="PNG")


def mnist_style(gray: np.ndarray, threshold: int = 10) -> np.ndarray:
    """A drawing (H, W) or (H, W, 1), light ink on dark, prepared the way MNIST's digits were made.

    LeCun, Cortes and Burges describe it: each digit was size-normalized to fit a 20x20 box
    while preserving its aspect ratio, then centered in a 28x28 image by its center of mass.
    Here: crop to the ink's bounding box (pixels above ``threshold``), scale the longer side
    to 20 pixels, and shift so that the intensity-weighted center lands on (14, 14).
    An empty drawing gives an empty (all-zero) image. Returns uint8 (28, 28, 1).
    """
    a = np.asarray(gray)
    if a.ndim == 3:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise InputError(f"A drawing must be (H, W) gray; received shape {np.asarray(gray).shape}.")
    a = a.astype(np.uint8)
    rows = np.flatnonzero((a > threshold).any(axis=1))
    cols = np.flatnonzero((a > threshold).any(axis=0))
    out = np.zeros((28, 28), np.uint8)
    if rows.size == 0:
        return out[:, :, None]
    crop = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = 20 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.LANCZOS), dtype=np.float64)
    small = np.clip(small, 0, 255)
    total = small.sum()
    if total == 0:
        return out[:, :, None]
    ys, xs = np.indices(small.shape)
    cy, cx = (ys * small).sum() / total, (xs * small).sum() / total  # center of mass in the small image
    top, left = int(round(14 - cy)), int(round(14 - cx))
    top, left = min(max(top, 0), 28 - nh), min(max(left, 0), 28 - nw)  # keep the whole digit inside
    out[top : top + nh, left : left + nw] = np.round(small).astype(np.uint8)
    return out[:, :, None]


def decode_bytes(data: bytes, name: str = "upload", max_pixels: int = MAX_UPLOAD_PIXELS, notes=None) -> np.ndarray:
    """Decode an uploaded image with Pillow only, refusing anything that is not an image or is larger than
    ``max_pixels``; returns uint8 (H, W, C) in its own mode (gray -> C=1, else RGB)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(
                        f"{name} is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}. Send a smaller image."
                    )
                im.load()
                return to_array(im, mode_of(im.mode), None, notes, name)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{name} is too large to decode safely ({e}).") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError(
            f"{name} is not an image Pillow can read ({type(e).__name__}). "
            "Send a PNG, JPEG, BMP, GIF, TIFF or WebP file."
        ) from None


def decode_base64(text: str, name: str = "image", max_pixels: int = MAX_UPLOAD_PIXELS, notes=None) -> np.ndarray:
    """A base64 image (a data: URL too) decoded as :func:`decode_bytes` decodes a file."""
    try:
        data = base64.b64decode(str(text).split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"'{name}' is not valid base64.") from None
    return decode_bytes(data, name, max_pixels, notes)


def from_pixels(values, name: str = "pixels", max_pixels: int = MAX_UPLOAD_PIXELS) -> np.ndarray:
    """Nested lists of numbers, H x W or H x W x C, as uint8 (H, W, C): 0-255, or floats in [0, 1] (scaled)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"'{name}' must be nested lists of numbers (H x W or H x W x C).") from None
    if arr.ndim not in (2, 3) or arr.size == 0 or arr.shape[0] * arr.shape[1] > max_pixels:
        raise InputError(f"'{name}' has shape {arr.shape}; expected H x W or H x W x C within limits.")
    if arr.max() <= 1.0:
        arr = arr * 255  # floats in [0, 1]
    img = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    return img[:, :, None] if img.ndim == 2 else img  # (H, W, C)


def prepare_drawing(img: np.ndarray, preprocess) -> np.ndarray:
    """``preprocess="mnist"``: a drawing made gray and prepared as MNIST's digits were (:func:`mnist_style`)."""
    if preprocess == "mnist":
        gray = img if img.shape[2] == 1 else convert(img[None], mode="gray")[0]
        return mnist_style(gray)
    if preprocess not in (None, "", "none"):
        raise InputError(f"Unknown preprocess {preprocess!r}. Expected 'mnist' or none.")
    return img
