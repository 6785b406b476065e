"""Atomic file writes: a crash at any moment leaves the previous good file in place.

Write to a temporary file in the same folder, flush, fsync, then rename over the
target (``os.replace`` is atomic on POSIX and Windows within one file system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cnnlab.errors import OutputError


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: done once, at import, before any thread writes
    os.umask(mask)
    return mask


UMASK = _read_umask()


def default_permissions(path, directory: bool = False) -> None:
    """Give a file (0666) or folder (0777) made by tempfile the permissions umask allows, not 0600/0700."""
    os.chmod(path, (0o777 if directory else 0o666) & ~UMASK)


def _cannot_write(path, e: OSError) -> OutputError:
    return OutputError(f"Cannot write {path}: {e.strerror or e}. Choose a folder you can write to.")


def make_folder(path) -> Path:
    """``mkdir -p``, with a folder that cannot be made (no permission, a file in the way) one clear error."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cannot_write(path, e) from None
    return path


@contextlib.contextmanager
def atomic_writer(path, mode: str = "wb"):
    """``with atomic_writer("a.json", "w") as f: f.write(...)`` -> ``a.json`` appears whole or not at all."""
    path = Path(path)
    if path.name in ("", ".", "..") or path.is_dir():  # "" is the current folder
        raise OutputError(f"Cannot write {str(path) or repr('')}: it is a folder. Name a file.")
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _cannot_write(path, e) from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        default_permissions(tmp)
        os.replace(tmp, path)
    except IsADirectoryError:
        os.unlink(tmp)
        raise OutputError(f"Cannot write {path}: it is a folder. Name a file.") from None
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise _cannot_write(path, e) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> Path:
    with atomic_writer(path, "w") as f:
        f.write(text)
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    with atomic_writer(path, "wb") as f:
        f.write(data)
    return Path(path)
