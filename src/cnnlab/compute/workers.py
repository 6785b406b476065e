"""Threads that each compute on one core and take the next batch as soon as they are done.

Inference is a stream of independent batches. Split over the cores one batch at a time (torch's intra-op
threads), every layer of every batch waits for the slowest core; on a laptop that is never idle one core is
often half taken by another process, and then both wait for it: seed-fashion's prediction on this project's
2-core machine fell from about 22,000 to 7,900 images/s with one busy process beside it. Here each worker
thread runs whole batches on one core of its own (one intra-op thread), and a worker whose core is shared
simply takes fewer batches: 22,800 images/s idle, 19,400 with the busy process.

The workers are made once per process. A thread's number of intra-op threads is its own (OpenMP's
per-thread setting), taken from a process-wide default when torch first looks at it in that thread; that
default is set to 1 while the workers start and restored at once, under a lock. (A worker must never run
with more: its OpenMP team would stay alive beside the caller's, and one image's feature maps in the calling
thread took 0.98 ms instead of 0.31 ms here.)
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

import torch

_LOCK = threading.Lock()
_POOL: concurrent.futures.ThreadPoolExecutor | None = None
_SIZE = 0


def _one_core(started: threading.Barrier) -> None:
    torch.get_num_threads()  # torch's first look at this thread: it takes the process default, 1 just now
    started.wait()


def workers() -> tuple[concurrent.futures.ThreadPoolExecutor, int]:
    """The process's inference workers and how many there are: one a core that torch computes on."""
    global _POOL, _SIZE
    if _POOL is not None:
        return _POOL, _SIZE
    with _LOCK:
        if _POOL is None:
            before = torch.get_num_threads()  # this thread's own, as it is again once the workers started
            size = max(1, min(before, len(os.sched_getaffinity(0))))
            started = threading.Barrier(size + 1)
            pool = concurrent.futures.ThreadPoolExecutor(size, "cnnlab-infer", _one_core, (started,))
            torch.set_num_threads(1)  # the default each worker takes when it starts
            try:
                for _ in range(size):  # a task each, so that every worker thread starts now
                    pool.submit(int)
                started.wait(timeout=60)
            finally:
                torch.set_num_threads(before)  # the process-wide default (and this thread's) as it was
            _POOL, _SIZE = pool, size
    return _POOL, _SIZE


def map_batches(fn, batches: list) -> list:
    """``[fn(b) for b in batches]``, computed by the workers in any order, returned in order; the first
    error raised by any call is raised here. Alone (one core), in the calling thread."""
    pool, size = workers()
    if size == 1 or len(batches) == 1:
        return [fn(b) for b in batches]
    return list(pool.map(fn, batches))
