"""A folder's images decoded in parallel: worker processes (the GIL would serialize Pillow's Python side), each
taking a slice of the files and writing them into one preallocated (N, H, W, C) array, so the pixels are held
once: forked workers write into it directly (it is shared memory, or the cache's new file through a
:class:`~cnnlab.data.rows.RowWriter`; only problems come back), spawned ones send their arrays back. A JPEG
larger than the target is decoded at a reduced scale in the DCT domain (:func:`cnnlab.data.images.decode`
with ``draft``), which is most of the speed on photos.

Workers are forked where the system can (as PyTorch's DataLoader does): a fork re-imports nothing, so a script
without an ``if __name__ == "__main__":`` guard, a notebook or ``python -`` work as they are; the workers only
run Pillow and NumPy, never torch. Elsewhere they are spawned. A small folder is decoded in this process:
starting workers costs more than it saves.
"""

from __future__ import annotations

import concurrent.futures
import mmap
import multiprocessing
import os
from pathlib import Path

import numpy as np

from cnnlab.data import images, keras_rule
from cnnlab.errors import DataError

PARALLEL_FROM = 256  # fewer files than this are decoded here
CHUNK = 64  # files a worker decodes per task: few enough messages, small enough to balance the cores


def workers() -> int:
    return len(os.sched_getaffinity(0))


def _decode_one(path: Path, mode: str, size: tuple[int, int], rule: str | None, crop: bool, exact: bool):
    if rule is None:
        return images.decode(path, mode, size, draft=True)
    a = keras_rule.decode(path, mode, size, rule, crop)
    return a if exact or a.dtype == np.uint8 else np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _decode_chunk(paths: list[str], mode, size, rule=None, crop=False, exact=False, into=None) -> list[tuple]:
    """Each file's (array, None) or (None, problem). ``into``: (token, rows) of an array shared with the
    parent (:data:`_SHARED`): the pixels are written into those rows and (True, None) comes back instead."""
    out, target = [], _SHARED[into[0]] if into else None
    for j, p in enumerate(paths):
        try:
            a = _decode_one(Path(p), mode, size, rule, crop, exact)
        except DataError as e:
            out.append((None, str(e)))
            continue
        if target is not None:
            target[into[1][j]] = a
            a = True
        out.append((a, None))
    return out


_SHARED: dict = {}  # arrays in shared memory (or RowWriters) that forked workers write decoded rows into


def decode_all(
    paths: list[Path],
    mode: str,
    size: tuple[int, int],
    progress=None,
    processes: int | None = None,
    rule: str | None = None,
    crop: bool = False,
    exact: bool = False,
    out=None,
):
    """Every file of ``paths`` as uint8 ``mode`` images of ``size`` (H, W): (the decoded array in the order of
    ``paths`` with the failed files left out, the indices decoded, [(path, problem)] of the failed).
    ``progress`` (a factory as for downloads, called with ``unit="files"``) gets a bar for the files.
    ``rule``: one of Keras's (:mod:`cnnlab.data.keras_rule`, with ``crop`` to the aspect ratio) instead of
    cnnlab's; its float pixels are rounded to uint8 unless ``exact``, which keeps TensorFlow's float32.
    ``out``: a :class:`~cnnlab.data.rows.RowWriter` of ``len(paths)`` rows the pixels are written to (forked
    workers write it themselves) instead of memory; the array returned is then its rows mapped
    (:meth:`~cnnlab.data.rows.RowWriter.keep`)."""
    n, channels = len(paths), 1 if mode == "gray" else 3
    dtype = np.float32 if exact and rule not in (None, "nearest") else np.uint8
    processes = processes or workers()
    start = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    parallel = n >= PARALLEL_FROM and processes > 1
    if out is not None:
        if out.shape != (n, *size, channels) or out.dtype != dtype:
            raise ValueError(f"out holds rows of {out.shape} {out.dtype}, not ({n}, {size}, {channels}) {dtype}")
        x = out
    elif parallel and start == "fork":  # the workers write into shared memory: no pixels pickled back
        shape = (n, *size, channels)
        x = np.frombuffer(mmap.mmap(-1, max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)), dtype)
        x = x[: int(np.prod(shape))].reshape(shape)
    else:
        x = np.empty((n, *size, channels), dtype)
    ok, bad = np.zeros(n, bool), []
    bar = progress(f"decoding {n:,} images", unit="files") if progress and n else None
    if bar is not None:
        bar.total = n
    chunks = [list(range(i, min(i + CHUNK, n))) for i in range(0, n, CHUNK)]
    how = (mode, size, rule, crop, exact)

    def take(chunk, results):
        for i, (a, problem) in zip(chunk, results, strict=True):
            if a is None:
                bad.append((paths[i], problem))
            else:
                if a is not True:
                    x[i] = a
                ok[i] = True
        if bar is not None:
            bar.update(len(chunk))

    try:
        if not parallel:
            for chunk in chunks:
                take(chunk, _decode_chunk([str(paths[i]) for i in chunk], *how))
        else:
            token = id(x)
            _SHARED[token] = x
            shared = start == "fork"
            context = multiprocessing.get_context(start)
            with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
                jobs = {
                    pool.submit(_decode_chunk, [str(paths[i]) for i in c], *how, (token, c) if shared else None): c
                    for c in chunks
                }
                for job in concurrent.futures.as_completed(jobs):
                    take(jobs[job], job.result())
    finally:
        _SHARED.pop(id(x), None)
        if bar is not None:
            bar.close()
    kept = np.flatnonzero(ok)
    if out is not None:
        return out.keep(kept), kept, sorted(bad, key=lambda b: str(b[0]))
    return (x if len(kept) == n else x[kept]), kept, sorted(bad, key=lambda b: str(b[0]))
