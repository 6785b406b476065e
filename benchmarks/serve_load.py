"""A bounded load test of `cnnlab serve`, loopback only: 32 concurrent clients for 20 s against /predict.

The server runs as its own process (`cnnlab serve` on 127.0.0.1) over a seed-fashion run trained for one
epoch; each request uploads a 28x28 PNG as multipart form data. The clients are Debian's `wrk` (32
connections, one thread) when it is installed -- a C client leaves the 2 cores to the server -- else
32 Python threads, which take a good share of the CPU themselves (the table says which ran).
Reports requests/s, p50/p99 latency and errors.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

import cnnlab

CLIENTS, SECONDS = 32, 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page_updates(base_url: str) -> dict:
    """The page's live updates while drawing (needs chromium; skipped with a note without it)."""
    try:
        from benchmarks.page_updates import measure

        return measure(base_url)
    except Exception as e:  # no chromium or playwright on this machine
        return {"what": "prediction updates while drawing", "skipped": f"{type(e).__name__}: {e}"[:200]}


def _wrk(url: str, png: bytes, tmp: Path) -> dict:
    boundary = "cnnlabbench"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    (tmp / "body.bin").write_bytes(body)
    (tmp / "post.lua").write_text(
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"\n'
        f'local f = io.open("{tmp / "body.bin"}", "rb"); wrk.body = f:read("*all"); f:close()\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %d %d %.0f %.0f\\n", summary.requests, summary.errors.status,'
        " summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,"
        " summary.duration, latency:percentile(50), latency:percentile(99)))\n"
        "end\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CLIENTS}", f"-d{int(SECONDS)}s", "-s", str(tmp / "post.lua"), url],
        capture_output=True,
        text=True,
        timeout=SECONDS + 30,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    n, bad_status, socket_errors, micros, p50, p99 = (float(v) for v in line.split()[1:])
    seconds = micros / 1e6
    return {
        "client": "wrk",
        "clients": CLIENTS,
        "seconds": round(seconds, 1),
        "requests": int(n),
        "errors": int(bad_status + socket_errors),
        "requests_per_s": round(n / seconds, 1),
        "p50_ms": round(p50 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "goal_p99_ms": 50,
    }


def run() -> tuple[list[dict], list[dict]]:
    """(the load test's row, the page's live-update row)."""
    with tempfile.TemporaryDirectory() as tmp:
        cnnlab.train(data="fashion-mnist", model="seed-fashion", epochs=1, out=f"{tmp}/runs/fashion", verbose=False)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "cnnlab", "serve", f"{tmp}/runs", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/api/runs/fashion/predict"
        try:
            for _ in range(200):  # wait for it to listen (at most 20 s)
                try:
                    httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            buf = io.BytesIO()
            Image.fromarray(cnnlab.data.load("fashion-mnist").test.x[0, :, :, 0]).save(buf, format="PNG")
            png = buf.getvalue()
            latencies, errors, lock = [], [0], threading.Lock()
            stop = time.perf_counter() + SECONDS

            def client():
                with httpx.Client(timeout=10) as c:
                    while time.perf_counter() < stop:
                        t0 = time.perf_counter()
                        try:
                            ok = c.post(url, files={"file": ("x.png", png, "image/png")}).status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        with lock:
                            latencies.append(time.perf_counter() - t0) if ok else None
                            errors[0] += 0 if ok else 1

            page = [_page_updates(f"http://127.0.0.1:{port}")]
            if shutil.which("wrk"):
                return [_wrk(url, png, Path(tmp))], page
            threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=10)
    ms = np.array(latencies) * 1000
    return [
        {
            "client": "python threads",
            "clients": CLIENTS,
            "seconds": round(elapsed, 1),
            "requests": len(latencies),
            "errors": errors[0],
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "goal_p99_ms": 50,
        }
    ], page


if __name__ == "__main__":
    print(run())
