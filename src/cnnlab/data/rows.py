"""Images past memory: a folder's decoded pixels read from their cache file a batch at a time.

A decoded folder larger than the memory budget (``$CNNLAB_MEMORY_BUDGET``: bytes, or with a unit ``800MB``,
``2GiB``; default half of this machine's memory) is not loaded into one array: its split is a
:class:`RowFile`, the rows of a ``.npy`` file on disk, read with ``os.preadv`` straight into each batch's own
array. What is read belongs to the batch and is freed with it, so a pass over the file never holds more than
a batch of it (a memory map would keep every page it touched in the process's resident memory). Rows are
indexed as NumPy rows are (an int, a slice, an array of indices or a boolean mask, a tensor of indices) and
come back as arrays; :meth:`RowFile.view` picks rows without reading them, and :func:`part` does either,
whichever the images are.

A folder within the budget is :meth:`RowFile.mapped` instead: its cache file mapped copy-on-write, so a cached
load reads nothing until a row is used, its pages are the system's file cache (shared by every process on the
same folder), and a write to the array stays in the process. cnnlab never rewrites a pixels file in place (a
new entry is a new file, the old one unlinked), so a mapping stays whole; a file cut short behind cnnlab's back
while mapped is the one thing that would crash a reader. A new pixels file is made by a :class:`RowWriter`:
its space reserved, its rows written in any order (by forked decode workers too), then mapped as above.
"""

from __future__ import annotations

import contextlib
import errno
import io
import mmap
import os
import re
import threading
from pathlib import Path

import numpy as np

from cnnlab.errors import InputError

BUDGET_ENV = "CNNLAB_MEMORY_BUDGET"
_OPENING = threading.Lock()  # an unpickled RowFile shared by threads opens its file once
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str, what: str = BUDGET_ENV) -> int:
    """``"800MB"``, ``"2GiB"``, ``"123456"`` -> bytes (at least 1)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m and m.group(2).lower()
    if not m or unit not in _UNITS or float(m.group(1)) * _UNITS[unit] < 1:
        raise InputError(f"{what}={text!r}. Expected a size in bytes, e.g. 800MB, 2GiB or 500000000.")
    return int(float(m.group(1)) * _UNITS[unit])


def budget() -> int:
    """The bytes of decoded images cnnlab keeps in memory: ``$CNNLAB_MEMORY_BUDGET``, else half the RAM."""
    from cnnlab.limits import physical_memory

    given = os.environ.get(BUDGET_ENV, "").strip()
    return parse_bytes(given) if given else physical_memory() // 2


class _Open:
    """An open file, closed when the last RowFile reading it is gone."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)

    def __del__(self):
        with contextlib.suppress(OSError, AttributeError, TypeError):
            os.close(self.fd)


class RowFile:
    """Rows of a C-ordered ``.npy`` file (the file's rows ``rows``, in that order), read on demand."""

    def __init__(self, path, rows=None):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if fortran or not shape:
            raise InputError(f"{self.path} holds a Fortran-ordered or 0-d array. Expected rows in C order.")
        self.dtype, self.row_shape = np.dtype(dtype), tuple(shape[1:])
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.rows = np.arange(shape[0], dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        self._open = _Open(self.path)  # open from the start: a newer cache entry may remove the file later
        if os.fstat(self._open.fd).st_size < self.offset + shape[0] * self.row_bytes:
            raise OSError(f"{self.path} is shorter than its header says: the cache file is damaged")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self.rows) * self.row_bytes

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"RowFile({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def __getstate__(self):  # a process of its own opens the file again
        return {**self.__dict__, "_open": None}

    def _file(self) -> int:
        """The open file (read with pread, so threads and forked processes share it)."""
        if self._open is None:
            with _OPENING:
                if self._open is None:
                    self._open = _Open(self.path)
        return self._open.fd

    def _pick(self, key) -> np.ndarray:
        if hasattr(key, "detach"):  # a torch tensor of indices, maybe on a GPU
            key = key.detach().cpu().numpy()
        return self.rows[key]

    def view(self, key) -> RowFile:
        """The rows ``key`` picks, not read."""
        out = RowFile.__new__(RowFile)
        out.__dict__.update(self.__dict__)  # the same open file
        out.rows = np.atleast_1d(self._pick(key))
        return out

    def mapped(self) -> np.ndarray | None:
        """The rows as an array mapped from the file copy-on-write (nothing read until a row is used; writes
        stay in this process), when they are one run of consecutive rows in order; else None."""
        r = self.rows
        if len(r) == 0 or int(r[-1]) - int(r[0]) != len(r) - 1 or np.any(np.diff(r) != 1):
            return None
        start = self.offset + int(r[0]) * self.row_bytes
        base = start - start % mmap.ALLOCATIONGRANULARITY
        m = mmap.mmap(self._file(), start - base + len(r) * self.row_bytes, access=mmap.ACCESS_COPY, offset=base)
        count = len(r) * (self.row_bytes // self.dtype.itemsize)
        return np.frombuffer(m, self.dtype, count, start - base).reshape(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            return self[key[0]][(slice(None), *key[1:])]
        picked = self._pick(key)
        one = np.ndim(picked) == 0
        picked = np.atleast_1d(picked)
        out = np.empty((len(picked), *self.row_shape), self.dtype)
        fd, flat = self._file(), out.reshape(-1).view(np.uint8).reshape(len(picked), self.row_bytes)
        # one read per run of consecutive rows
        starts = np.flatnonzero(np.diff(picked, prepend=-2) != 1)
        for a, b in zip(starts, [*starts[1:], len(picked)][: len(starts)], strict=True):
            want = memoryview(flat[a:b]).cast("B")
            at, done = self.offset + int(picked[a]) * self.row_bytes, 0
            while done < len(want):
                got = os.preadv(fd, [want[done:]], at + done)
                if got <= 0:
                    raise OSError(f"{self.path} ended before row {picked[a]}: the cache file is damaged")
                done += got
        return out[0] if one else out

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a if dtype is None else a.astype(dtype, copy=False)


def npy_header(shape: tuple[int, ...], dtype) -> bytes:
    """The header of a C-ordered ``.npy`` file (format 2.0) of ``shape`` and ``dtype``: its rows follow it."""
    out = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    np.lib.format.write_array_header_2_0(out, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return out.getvalue()


def part(x, key):
    """``x[key]``: for a :class:`RowFile` the rows picked but not read."""
    return x.view(key) if isinstance(x, RowFile) else x[key]


class RowWriter:
    """A new C-ordered ``.npy`` file of ``shape``, its space reserved up front and its rows written one at a time
    with ``os.pwrite``, in any order, by this process or by processes forked from it (which share the open
    file): ``writer[i] = row``. :meth:`keep` then gives the rows back mapped copy-on-write, as a cached load
    does, and :meth:`close` syncs the file to disk. OSError when the file cannot be made or its space reserved
    (a full disk), the file removed."""

    def __init__(self, path, shape: tuple[int, ...], dtype=np.uint8):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        header = npy_header(self.shape, self.dtype)
        self.offset = len(header)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            self._write(header, 0)
            end = self.offset + self.shape[0] * self.row_bytes
            try:  # a full disk fails here, not half-way through
                os.posix_fallocate(self.fd, 0, end)
            except (AttributeError, OSError) as e:  # no posix_fallocate here, or not on this file system
                if isinstance(e, OSError) and e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                os.ftruncate(self.fd, end)  # the file only sized
        except BaseException:
            self.discard()
            raise

    def _write(self, data, at: int) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            done = os.pwrite(self.fd, view, at)
            view, at = view[done:], at + done

    def __setitem__(self, i: int, row) -> None:
        a = np.ascontiguousarray(row, self.dtype)
        if a.nbytes != self.row_bytes:
            raise ValueError(f"a row of {a.shape} does not fit rows of {self.shape[1:]}")
        self._write(a, self.offset + int(i) * self.row_bytes)

    def keep(self, rows) -> np.ndarray:
        """Rows ``rows`` (ascending) moved to the front of the file, in order, and returned as an array mapped
        from it copy-on-write; the rows after them are left as they are."""
        rows = np.asarray(rows, np.int64)
        at = self.offset
        for j in np.flatnonzero(rows != np.arange(len(rows))).tolist():  # the rows after the first that failed
            i = int(rows[j])
            data = os.pread(self.fd, self.row_bytes, at + i * self.row_bytes)
            if len(data) != self.row_bytes:
                raise OSError(f"{self.path} ended before row {i}")
            self._write(data, at + j * self.row_bytes)
        mapped = RowFile(self.path, np.arange(len(rows))).mapped()
        return np.empty((0, *self.shape[1:]), self.dtype) if mapped is None else mapped

    def close(self) -> None:
        """The file synced to disk and closed."""
        try:
            os.fsync(self.fd)
        finally:
            self._close()

    def _close(self) -> None:
        fd, self.fd = self.fd, -1  # closed once: the number may be another file's afterwards
        if fd >= 0:
            os.close(fd)

    def discard(self) -> None:
        """The file closed and removed."""
        with contextlib.suppress(OSError):
            self._close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
