"""JPEGs by libjpeg-turbo alone (simplejpeg): which files it may decode without Pillow, and a decode at a
reduced scale in the DCT domain. A JPEG that may be turned (an EXIF block or an XMP orientation before its
first scan), CMYK, or over ``PLAIN_BYTES`` is left to Pillow (images.decode)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

START, PLAIN_BYTES = b"\xff\xd8\xff", 16 * 2**20  # a larger JPEG is opened by Pillow (read in parts)
_EXIF, _XMP_TURN = b"Exif\x00\x00", b"tiff:Orientation"  # where a JPEG may say it is turned
_NO_LENGTH = {0x01, *range(0xD0, 0xD9)}  # markers without a length: TEM, RST0-7, SOI


def says_upright(data: bytes) -> bool:
    """Whether a JPEG's segments before its first scan (what Pillow reads) hold no EXIF block (APP1 starting
    ``Exif\\0\\0``) and no XMP orientation (APP1 holding ``tiff:Orientation``); False if not well-formed."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF or marker in _NO_LENGTH:  # a fill byte, or a marker without a length
            i += 1 if marker == 0xFF else 2
        elif marker == 0xDA:  # the first scan: no header after it
            return True
        else:
            end = i + 2 + ((data[i + 2] << 8) | data[i + 3])
            if marker == 0xE1 and (data.startswith(_EXIF, i + 4) or data.find(_XMP_TURN, i + 4, end) >= 0):
                return False
            i = end
    return False


def plain(path: Path, max_pixels: int) -> tuple[bytes, bool] | None:
    """(the file's bytes, whether it is gray) of a gray or colour JPEG of at most ``max_pixels`` that says
    nothing of its orientation; None for anything else (another format, CMYK, EXIF or XMP, over
    ``PLAIN_BYTES``, a header libjpeg-turbo cannot read, a file that cannot be read)."""
    import simplejpeg

    try:
        with open(path, "rb", buffering=0) as f:
            length = os.fstat(f.fileno()).st_size
            data = f.read(length + 1) if len(START) <= length <= PLAIN_BYTES else b""
    except OSError:
        return None
    if not data.startswith(START) or len(data) > PLAIN_BYTES or not says_upright(data):
        return None
    try:
        height, width, space, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    return (data, space == "Gray") if space in ("Gray", "YCbCr") and width * height <= max_pixels else None


def scaled(data: bytes, gray: bool, h: int, w: int) -> Image.Image:
    """A gray ("L") or colour JPEG decoded at the smallest of libjpeg-turbo's scales 1/8-4/8 that is at least
    h x w, else whole; a damaged file is a ValueError."""
    import simplejpeg

    height, width = simplejpeg.decode_jpeg_header(data)[:2]
    # a side at scale M/8 is ceil(side * M / 8); 5/8-7/8 take longer than the whole decode (a 400 px photo
    # 0.82-1.04 ms, whole 0.81, 1/8-4/8 0.50-0.66), so a size above half the file's is decoded whole
    half = -(-height // 2) >= h and -(-width // 2) >= w
    limits = {"min_height": h, "min_width": w} if half else {}
    a = simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB", **limits)
    return Image.fromarray(a[:, :, 0] if gray else a)
