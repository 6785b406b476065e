import gzip
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import idx
from cnnlab.data.registry import DatasetSpec, IdxFile
from cnnlab.data.sources import sha256


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty CNNLAB_HOME."""
    h = tmp_path / "home"
    monkeypatch.setenv("CNNLAB_HOME", str(h))
    return h


@pytest.fixture
def tiny():
    """A small MNIST-shaped dataset: its spec (with real checksums) and its four IDX payloads."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_x": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train_y": np.arange(12, dtype=np.uint8) % 3,
        "test_x": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "test_y": np.arange(6, dtype=np.uint8) % 3,
    }
    names = {
        "train_x": "train-images-idx3-ubyte",
        "train_y": "train-labels-idx1-ubyte",
        "test_x": "t10k-images-idx3-ubyte",
        "test_y": "t10k-labels-idx1-ubyte",
    }
    payloads = {k: idx.encode(a) for k, a in arrays.items()}
    spec = DatasetSpec(
        name="tiny",
        description="test",
        image_shape=(28, 28, 1),
        classes=("a", "b", "c"),
        counts=(12, 6),
        files=tuple(IdxFile(k, names[k], sha256(payloads[k]), len(payloads[k])) for k in names),
    )
    return spec, payloads, arrays


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.lstrip("/")
        if "/halfway/" in self.path and path.is_file():
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # then hang up
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, tiny):
    """A real HTTP server on 127.0.0.1 serving good/, corrupt/ and halfway/ copies of the tiny files."""
    spec, payloads, _ = tiny
    root = tmp_path / "www"
    for sub in ("good", "corrupt", "halfway", "badmagic"):
        (root / sub).mkdir(parents=True)
    for f in spec.files:
        data = gzip.compress(payloads[f.key])
        (root / "good" / f"{f.name}.gz").write_bytes(data)
        (root / "halfway" / f"{f.name}.gz").write_bytes(data)
        flipped = bytearray(payloads[f.key])
        flipped[-1] ^= 0xFF  # one value changed: a valid gzip whose content does not verify
        (root / "corrupt" / f"{f.name}.gz").write_bytes(gzip.compress(bytes(flipped)))
        (root / "badmagic" / f"{f.name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x09" + payloads[f.key][4:]))

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
