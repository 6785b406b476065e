"""Decode a folder once: its decoded, resized images kept under ``$CNNLAB_HOME/folders``.

An entry is a folder per image folder (``<digest of its resolved path>/``) holding ``headers.json`` (each
file's mode and size, or why it is not an image) and a subfolder per way of loading it (``<mode>-<H>x<W>/``
with ``index.json`` and ``pixels-<token>.npy``). Every file is known by its path inside the folder, its size
and its modification time (ns): a file whose size or time changed, or that was added, is read again, a removed
one is dropped, and the rest are taken from the cache. Only the changed files are decoded again. The pixels
are written first under a new name and ``index.json`` names them, written atomically after, so a crash leaves
the previous entry whole (a first load decodes into that new file and finishes it in a thread:
:meth:`FolderCache._finish_later`). An entry whose pixels do not have the shape its index says is ignored and rebuilt.
``RULE`` names the resize rule the pixels were made with; another rule is another entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from cnnlab.atomic import atomic_writer, write_text
from cnnlab.data.cache import home
from cnnlab.data.rows import RowFile, RowWriter, npy_header
from cnnlab.errors import DataError
from cnnlab.limits import read_text

RULE = "cnnlab/4: EXIF upright, over white, antialiased bilinear (fast_image_resize), JPEG scaled 1/8-4/8"


def folders_dir() -> Path:
    return home() / "folders"


# a pixels file being written that has not changed for this long is a killed process's, not another's
STALE_S = 600
RACY_NS = 2 * 10**9  # a file changed this recently may change again within the clock's granularity


def stamp(path: Path) -> list[int]:
    """What says a file is unchanged: its size and modification time. A file modified in the last two seconds
    gets a stamp nothing matches (as git treats "racy" files), so a rewrite within the clock's resolution is
    never mistaken for the cached one."""
    return stamp_of(os.stat(path))


def stamp_of(st: os.stat_result) -> list[int]:
    """:func:`stamp` from a file's stat."""
    if time.time_ns() - st.st_mtime_ns < RACY_NS:
        return [-1, -1]
    return [st.st_size, st.st_mtime_ns]


def _same(saved, now) -> bool:
    return saved == now and now[0] >= 0


def _read(path: Path):
    """A JSON file of the cache, or None when it is missing or damaged (the cache is then rebuilt): read up to
    cnnlab's limit on text files, its nesting left to ``json`` (too deep is a RecursionError, a miss)."""
    try:
        return json.loads(read_text(path)) if path.is_file() else None
    except Exception:  # noqa: BLE001 - a damaged cache file is only a cache miss
        return None


def relative_name(path, root) -> str:
    """``path`` inside ``root`` as a POSIX string: ``Path.relative_to`` without its parsing (a string cut for
    the files a folder walk found under ``root``; anything else goes through pathlib)."""
    text, prefix = str(path), str(root).rstrip(os.sep) + os.sep
    if text.startswith(prefix) and os.sep + ".." + os.sep not in text:
        return text[len(prefix) :].replace(os.sep, "/")
    return Path(path).relative_to(root).as_posix()


def relative_names(paths, root) -> list[str]:
    """:func:`relative_name` of each of ``paths``."""
    prefix, inside = str(root).rstrip(os.sep) + os.sep, os.sep + ".." + os.sep
    out = []
    for path in paths:
        text = str(path)
        fast = text.startswith(prefix) and inside not in text
        out.append(text[len(prefix) :].replace(os.sep, "/") if fast else relative_name(path, root))
    return out


class FolderCache:
    """The cache entry of one image folder."""

    def __init__(self, root: Path):
        self.given, self.root = Path(root), Path(root).resolve()
        self.dir = folders_dir() / hashlib.sha256(str(self.root).encode()).hexdigest()[:20]
        saved = _read(self.dir / "headers.json")
        ok = isinstance(saved, dict) and saved.get("root") == str(self.root) and isinstance(saved.get("files"), dict)
        self.headers: dict = saved["files"] if ok else {}
        self.stamps: dict[str, list[int]] = {}  # each file's stamp, taken once a load
        self.changed = False

    def rel(self, path: Path) -> str:
        return relative_name(path, self.given)

    def header(self, path: Path, read) -> tuple[str, tuple[int, int]]:
        """``read(path)`` -> (PIL mode, (H, W)), or the DataError it raised; from the cache when the file is
        unchanged."""
        rel = self.rel(path)
        now = self.stamps.get(rel) or stamp(path)
        self.stamps[rel] = now
        known = self.headers.get(rel)
        if isinstance(known, list) and len(known) == 3 and _same(known[0], now):
            if known[1] == "bad":
                raise DataError(str(known[2]))
            return str(known[1]), tuple(known[2])
        try:
            mode, size = read(path)
        except DataError as e:
            self.headers[rel], self.changed = [now, "bad", str(e)], True
            raise
        self.headers[rel], self.changed = [now, mode, list(size)], True
        return mode, tuple(size)

    def save_headers(self) -> None:
        """Keep the headers of the files stamped this load (the folder's files now), when any was read or has
        gone."""
        wanted = self.stamps
        files = {k: v for k, v in self.headers.items() if k in wanted}
        if not self.changed and len(files) == len(self.headers):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text(self.dir / "headers.json", json.dumps({"root": str(self.root), "files": files}))

    def decode(self, paths, mode, size, decode_all, progress=None, rule=None, budget=None, names=None):
        """``decode_all(paths, mode, size, progress)`` for the files the entry does not hold as they are now
        (with ``out=`` a :class:`~cnnlab.data.rows.RowWriter` of the new pixels file, or None, when it holds none);
        the rest from the entry. Returns what ``decode_all`` returns, for all ``paths``, and the entry is
        updated when anything was decoded. ``rule``: the name of another resize rule than cnnlab's (Keras's
        "bilinear", say), kept in an entry of its own. ``budget``: the bytes of pixels to hold in memory; a
        folder larger than that is written to the entry a part at a time and returned as a
        :class:`~cnnlab.data.rows.RowFile` of it, read a batch at a time. ``names``: each path inside the
        folder, when the caller has them."""
        sub = self.dir / (f"{mode}-{size[0]}x{size[1]}" + (f"-{rule}" if rule else ""))
        _wait(sub)
        index = _read(sub / "index.json")
        channels = 1 if mode == "gray" else 3
        rows, pixels = {}, None
        made_by = f"{RULE}; {rule}" if rule else RULE
        if isinstance(index, dict) and index.get("rule") == made_by and isinstance(index.get("files"), dict):
            try:
                pixels = RowFile(sub / str(index["pixels"]))
            except Exception:  # noqa: BLE001 - damaged, cut short or missing: rebuilt
                pixels = None
            if pixels is not None and (pixels.dtype != np.uint8 or pixels.row_shape != (*size, channels)):
                pixels = None
            if pixels is not None:
                rows = index["files"]
        rels = names if names is not None else relative_names(paths, self.given)
        stamps = [self.stamps.get(r) or stamp(p) for r, p in zip(rels, paths, strict=True)]
        known = [rows.get(r) for r in rels]
        fresh = [
            isinstance(k, list)
            and len(k) == 3
            and _same(k[0], s)
            and (k[1] is None or (isinstance(k[1], int) and 0 <= k[1] < len(pixels)))
            for k, s in zip(known, stamps, strict=True)
        ]
        failed = [(paths[i], known[i][2]) for i, f in enumerate(fresh) if f and known[i][1] is None]
        at = [known[i][1] if f else None for i, f in enumerate(fresh)]  # the entry's row of each file
        big = budget is not None and len(paths) * int(np.prod(size)) * channels > budget
        if all(fresh) and len(rows) == len(paths):  # unchanged: nothing to write
            kept = np.array([i for i, r in enumerate(at) if r is not None], np.int64)
            on_disk = pixels.view(np.array([at[i] for i in kept], np.int64))
            if not big:  # mapped when its rows are the file's, in order (as this entry wrote them), else read
                mapped = on_disk.mapped()
                on_disk = on_disk[:] if mapped is None else mapped
            return on_disk, kept, sorted(failed, key=lambda b: str(b[0]))
        load = (at, fresh, pixels, paths, mode, size, decode_all)  # what _assemble reads rows with
        if big:
            return self._stream(sub, rels, stamps, failed, load, progress, made_by, budget)
        sub.mkdir(parents=True, exist_ok=True)
        name, writer = f"pixels-{uuid.uuid4().hex[:12]}.npy", None
        if not any(fresh):  # nothing cached: decoded straight into the entry's new file, else into memory
            writer = _writer(sub / f".{name}.{uuid.uuid4().hex[:8]}.tmp", (len(paths), *size, channels))
            try:
                out, kept, bad = decode_all(paths, mode, size, progress, out=writer)
            except BaseException:
                if writer is not None:
                    writer.discard()
                raise
            ok = np.zeros(len(paths), bool)
            ok[kept] = True
        else:
            x, ok, bad = _assemble(range(len(paths)), *load, progress)
            kept = np.flatnonzero(ok)
            out = x if len(kept) == len(paths) else x[kept]
        failed += list(bad)
        row = np.cumsum(ok) - 1
        row = [int(row[i]) if ok[i] else None for i in range(len(paths))]
        index = (rels, stamps, row, failed, paths, made_by)
        if writer is not None:
            self._finish_later(writer, sub, name, index)
        else:
            with atomic_writer(sub / name) as f:
                np.save(f, out, allow_pickle=False)
            self._index(sub, name, *index)
        return out, kept, sorted(failed, key=lambda b: str(b[0]))

    def _finish_later(self, writer, sub, name, index) -> None:
        """The pixels ``writer`` holds made the entry's, by a thread of this process while the caller goes on
        with them: synced to disk, renamed to ``name`` and named by ``index.json`` (:meth:`_index`); until then
        the previous entry stands. A later load of the same entry, :func:`entries` and :func:`clear` wait for
        it (:func:`_wait`), and so does the interpreter's exit; a crash before it leaves the previous entry."""

        def finish():
            try:
                writer.close()
                os.replace(writer.path, sub / name)
                self._index(sub, name, *index)
            except OSError:  # the entry is not written: the next load decodes again
                writer.discard()
            finally:
                with _PENDING_LOCK:
                    _PENDING[sub].remove(thread)
                    if not _PENDING[sub]:
                        del _PENDING[sub]

        thread = threading.Thread(target=finish, name=f"cnnlab-cache-{sub.name}")
        with _PENDING_LOCK:
            _PENDING.setdefault(sub, []).append(thread)
        thread.start()

    def _stream(self, sub, rels, stamps, failed, load, progress, made_by, budget):
        """:meth:`decode` past the memory budget: the folder's rows written to a new pixels file a part at a
        time (each at most a quarter of the budget), a file that fails left as a zero row nothing points to."""
        _, fresh, _, paths, mode, size, _ = load
        shape = (len(paths), *size, 1 if mode == "gray" else 3)
        step = max(1, budget // 4 // int(np.prod(shape[1:])))
        changed = fresh.count(False)
        bar = _OneBar(progress, changed) if progress and changed else None
        ok = np.zeros(len(paths), bool)
        name = f"pixels-{uuid.uuid4().hex[:12]}.npy"
        try:
            with atomic_writer(sub / name) as f:
                f.write(npy_header(shape, np.uint8))
                for start in range(0, len(paths), step):
                    rows = range(start, min(start + step, len(paths)))
                    x, ok[rows.start : rows.stop], bad = _assemble(rows, *load, bar)
                    failed += list(bad)
                    f.write(memoryview(x))
                    del x
        finally:
            if bar is not None:
                bar.finish()
        self._index(sub, name, rels, stamps, [i if ok[i] else None for i in range(len(paths))], failed, paths, made_by)
        kept = np.flatnonzero(ok)
        return RowFile(sub / name, kept), kept, sorted(failed, key=lambda b: str(b[0]))

    def _index(self, sub, name, rels, stamps, row, failed, paths, made_by) -> None:
        """index.json of the pixels file ``name`` (``row``: each file's row in it, None for a failed one),
        written after the file; older pixels files are removed."""
        why = {str(p): w for p, w in failed}
        files = {}
        for i, rel in enumerate(rels):
            if row[i] is not None:
                files[rel] = [stamps[i], row[i], None]
            else:
                files[rel] = [stamps[i], None, why.get(str(paths[i]), "could not be decoded")]
        index = {"rule": made_by, "root": str(self.root), "pixels": name, "files": files, "written": time.time()}
        write_text(sub / "index.json", json.dumps(index))
        for old in sub.glob("pixels-*.npy"):
            if old.name != name:
                old.unlink(missing_ok=True)
        for left in sub.glob(".pixels-*.tmp"):  # a process killed while writing its pixels left them
            with contextlib.suppress(OSError):
                if time.time() - left.stat().st_mtime > STALE_S:
                    left.unlink()


_PENDING: dict[Path, list[threading.Thread]] = {}  # each entry's pixels still being written (_finish_later)
_PENDING_LOCK = threading.Lock()


def _forget_pending() -> None:  # a forked process has none of its parent's threads
    global _PENDING_LOCK
    _PENDING.clear()
    _PENDING_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pending)


def _wait(sub: Path | None = None) -> None:
    """Wait for the pixels of the entry ``sub`` (of every entry: None) this process is still writing."""
    with _PENDING_LOCK:
        threads = [t for s, ts in _PENDING.items() if sub is None or s == sub for t in ts]
    for t in threads:
        t.join()


def _writer(path: Path, shape) -> RowWriter | None:
    """A new pixels file to decode into, or None where it cannot be made here (no ``os.pwrite``, a full disk):
    the pixels are then decoded into memory and saved after."""
    if not hasattr(os, "pwrite"):
        return None
    try:
        return RowWriter(path, shape)
    except OSError:
        return None


def _assemble(idx, at, fresh, pixels, paths, mode, size, decode_all, progress):
    """Rows ``idx`` of a load: the files the entry holds as they are now read from it (``at``: each file's row
    there, ``pixels``: its RowFile), the changed ones (not ``fresh``) decoded. Returns the uint8 rows (a file
    that failed is a zero row), which of them hold an image, and [(path, problem)] of the failed."""
    x = np.zeros((len(idx), *size, 1 if mode == "gray" else 3), np.uint8)
    ok = np.zeros(len(idx), bool)
    cached = np.array([j for j, i in enumerate(idx) if at[i] is not None], np.int64)
    if len(cached):  # one read of the entry's file
        x[cached], ok[cached] = pixels[[at[idx[j]] for j in cached]], True
    todo, bad = np.array([j for j, i in enumerate(idx) if not fresh[i]], np.int64), []
    if len(todo):
        new, kept, bad = decode_all([paths[idx[j]] for j in todo], mode, size, progress)
        x[todo[kept]], ok[todo[kept]] = new, True
    return x, ok, bad


class _OneBar:
    """One progress bar over the parts :meth:`FolderCache._stream` decodes: a bar factory that hands
    ``decode_all`` the same bar every time and keeps it open until :meth:`finish`."""

    def __init__(self, progress, n: int):
        self.bar = progress(f"decoding {n:,} images", unit="files")
        self.bar.total = n

    def __call__(self, *args, **kwargs):
        return self

    @property
    def total(self):
        return self.bar.total

    @total.setter
    def total(self, _n):  # decode_all sets a part's count; the bar keeps the whole
        pass

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        pass

    def finish(self) -> None:
        self.bar.close()


def entries() -> list[dict]:
    """Every cached folder and way of loading it: {"root", "load", "files", "bytes", "path"}."""
    _wait()
    out = []
    for entry in sorted(folders_dir().glob("*/")) if folders_dir().is_dir() else []:
        for sub in sorted(p for p in entry.iterdir() if p.is_dir()):
            index = _read(sub / "index.json") or {}
            size = sum(f.stat().st_size for f in sub.iterdir() if f.is_file())
            files = index.get("files") if isinstance(index.get("files"), dict) else {}
            out.append(
                {"root": index.get("root", "?"), "load": sub.name, "files": len(files), "bytes": size, "path": sub}
            )
    return out


def clear(root=None) -> int:
    """Remove the cache of ``root`` (an image folder), or of every folder; the bytes freed."""
    _wait()
    targets = [FolderCache(root).dir] if root is not None else ([folders_dir()] if folders_dir().is_dir() else [])
    freed = 0
    for target in targets:
        if target.is_dir():
            freed += sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
            shutil.rmtree(target)
    return freed
