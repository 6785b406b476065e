import socket
import threading
import time

import pytest
import uvicorn

import cnnlab
from cnnlab.web import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory, real_home):
    """A folder of runs: a real MNIST model (one epoch) under runs/mnist."""
    root = tmp_path_factory.mktemp("served")
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNLAB_HOME", str(real_home))
    cnnlab.train(
        data="mnist",
        model="seed-mnist5x5",
        epochs=1,
        batch_size=64,
        seed=0,
        out=str(root / "runs" / "mnist"),
        verbose=False,
    )
    yield root / "runs"
    mp.undo()


@pytest.fixture(scope="session")
def base_url(runs_root):
    with Server(create_app(runs_root, max_upload_bytes=200_000, max_pixels=1000 * 1000)) as url:
        yield url
