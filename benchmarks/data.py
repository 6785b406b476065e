"""How long loading a registered dataset takes: first (fetch + verify + cache) and second (cache hit)."""

from __future__ import annotations

import os
import tempfile
import time

from cnnlab import data


def run(names=("mnist", "fashion-mnist")) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as home:
        old = os.environ.get("CNNLAB_HOME")
        os.environ["CNNLAB_HOME"] = home
        try:
            for name in names:
                t0 = time.perf_counter()
                ds = data.load(name)
                first = time.perf_counter() - t0
                seconds = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    data.load(name)
                    seconds.append(time.perf_counter() - t0)
                rows.append(
                    {
                        "dataset": name,
                        "source": ds.info["source"],
                        "first_load_s": round(first, 2),
                        "cached_load_ms": round(sorted(seconds)[2] * 1000, 1),
                    }
                )
        finally:
            if old is None:
                os.environ.pop("CNNLAB_HOME", None)
            else:
                os.environ["CNNLAB_HOME"] = old
    return rows
