"""The IDX format of MNIST and Fashion-MNIST: big-endian header, then raw values.

    magic: 0x00 0x00 <type> <ndim>   type 0x08 = unsigned byte
    ndim big-endian uint32 sizes, then prod(sizes) values

Images are magic 2051 (0x00000803, 3 dims), labels 2049 (0x00000801, 1 dim).
"""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np

from cnnlab.errors import DataError

UBYTE = 0x08


def gunzip(data: bytes, name: str) -> bytes:
    """Decompress ``data`` (a whole .gz file); a corrupt or truncated file is a DataError naming it."""
    try:
        return gzip.decompress(data)
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as e:
        raise DataError(
            f"{name} is not a complete gzip file ({e}). It is corrupt or was cut off during download; "
            "delete it and fetch again (cnnlab data get NAME)."
        ) from None


def parse(data: bytes, name: str, ndim: int) -> np.ndarray:
    """IDX bytes -> uint8 array, checking the magic number, the rank and the length."""
    if len(data) < 4:
        raise DataError(f"{name} is too short to be an IDX file ({len(data)} bytes).")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    magic = int.from_bytes(data[:4], "big")
    expected = (UBYTE << 8) | ndim
    if zero != 0 or dtype != UBYTE or dims != ndim:
        raise DataError(
            f"{name} has IDX magic number {magic} (0x{magic:08x}); expected {expected} (0x{expected:08x}) "
            f"for unsigned bytes with {ndim} dimension(s). It is not an MNIST-style "
            f"{'image' if ndim == 3 else 'label'} file."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name} ends inside its IDX header ({len(data)} bytes, expected at least {header}).")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise DataError(
            f"{name} holds {len(data) - header} values after its header, but the header promises "
            f"{'x'.join(map(str, shape))} = {size}. The file is truncated or damaged."
        )
    return np.frombuffer(data, np.uint8, size, header).reshape(shape)


def header(shape: tuple[int, ...]) -> bytes:
    """The IDX header of a uint8 array of this shape."""
    return struct.pack(">HBB", 0, UBYTE, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def encode(array: np.ndarray) -> bytes:
    """uint8 array -> IDX bytes (the inverse of :func:`parse`)."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    return header(a.shape) + a.tobytes()
