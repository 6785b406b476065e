"""The download path against a real HTTP server on 127.0.0.1, and the cache it fills."""

import os
import pickle

import numpy as np
import pytest

from cnnlab.data import cache, datasets, sources
from cnnlab.data.sources import DirectorySource, MirrorSource
from cnnlab.errors import ChecksumError, DataError, FetchError


def _leftovers(home):
    """Temporary fetch folders or files left anywhere under the cache root."""
    return [p for p in home.rglob("*") if "cnnlab-fetch-" in p.name or p.name.startswith(".")] if home.exists() else []


def test_download_verify_cache_then_hit(home, tiny, server):
    spec, _, arrays = tiny
    bars = []

    class Bar:  # the interface pooch drives
        def __init__(self, desc):
            self.desc, self.total, self.done, self.closed = desc, None, 0, False
            bars.append(self)

        def update(self, n):
            self.done += n

        def reset(self):
            self.done = 0

        def close(self):
            self.closed = True

    payloads, source = sources.fetch(spec, [MirrorSource(f"{server}/good/")], progress=lambda d, **k: Bar(d))
    assert source == f"mirror {server}/good/"
    assert len(bars) == 4 and all(b.closed and b.total == b.done > 0 for b in bars)
    stored = cache.write(spec, payloads, source)
    np.testing.assert_array_equal(stored["train_x"], arrays["train_x"])
    got, info = cache.read(spec)
    # a first load's arrays are as writable as a cached load's (torch.from_numpy warns on read-only ones)
    assert all(a.flags.writeable for a in stored.values()) and all(a.flags.writeable for a in got.values())
    assert info["source"] == source
    np.testing.assert_array_equal(got["test_y"], arrays["test_y"])
    assert _leftovers(home) == []


def test_corrupt_mirror_falls_through_to_the_next_source(home, tiny, server):
    spec, _, _ = tiny
    payloads, source = sources.fetch(spec, [MirrorSource(f"{server}/corrupt/"), MirrorSource(f"{server}/good/")])
    assert source.endswith("/good/")


@pytest.mark.parametrize(
    "mirror,message",
    [
        ("corrupt", r"train-images-idx3-ubyte from mirror .*/corrupt/ has SHA-256"),  # a corrupt file
        ("halfway", r"download of .*/halfway/train-images-idx3-ubyte.gz failed"),  # a download that stops halfway
    ],
)
def test_bad_download_is_never_cached(home, tiny, server, mirror, message):
    spec, _, _ = tiny
    with pytest.raises(FetchError, match=message):
        datasets._idx_dataset(spec, [MirrorSource(f"{server}/{mirror}/")])
    assert not cache.dataset_dir("tiny").exists()
    assert _leftovers(home) == []


def test_failed_fetch_leaves_the_cache_as_it_was(home, tiny, server):
    spec, payloads, _ = tiny
    cache.write(spec, payloads, "first")
    folder = cache.dataset_dir("tiny")
    (folder / "train_y.npy").write_bytes(b"damaged")  # cache no longer verifies -> a refetch is tried
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(FetchError):
        datasets._idx_dataset(spec, [MirrorSource(f"{server}/halfway/")])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_damaged_cache_is_refetched(home, tiny, server):
    spec, payloads, arrays = tiny
    cache.write(spec, payloads, "first")
    np.save(cache.dataset_dir("tiny") / "test_x.npy", np.zeros((6, 28, 28), np.uint8))  # wrong content
    got, info = datasets._idx_dataset(spec, [MirrorSource(f"{server}/good/")])
    assert info["cache"] == "written"
    np.testing.assert_array_equal(got["test_x"], arrays["test_x"])


def test_wrong_magic_from_a_server(home, tiny, server):
    spec, _, _ = tiny
    with pytest.raises(FetchError, match=r"has SHA-256"):  # verified before parsing: wrong bytes never parse
        sources.fetch(spec, [MirrorSource(f"{server}/badmagic/")])


def test_unreachable_mirror_reports_each_attempt(home, tiny):
    spec, _, _ = tiny
    with pytest.raises(FetchError) as e:
        sources.fetch(spec, [MirrorSource("http://127.0.0.1:9/"), DirectorySource(home / "nowhere", hint="try X")])
    text = str(e.value)
    assert "mirror http://127.0.0.1:9/: download of" in text
    assert "nowhere/train-images-idx3-ubyte.gz not found; try X" in text


def test_image_and_label_counts_that_differ(home, tiny):
    spec, payloads, arrays = tiny
    from cnnlab.data import idx

    bad = dict(payloads, train_y=idx.encode(arrays["train_y"][:-1]))
    with pytest.raises(DataError, match=r"holds 12 images but train-labels-idx1-ubyte holds 11 labels"):
        cache.write(spec, bad, "test")


def test_pickle_reader_refuses_anything_but_numpy():
    evil = pickle.dumps(os.system, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused to load posix.system"):
        sources._NumpyOnly(__import__("io").BytesIO(evil)).load()


def test_pickle_with_wrong_hash_is_not_unpickled():
    with pytest.raises(ChecksumError, match=r"mnist.pkl.gz from here has SHA-256"):
        sources.mnist_from_pickle(b"anything", "here")


@pytest.mark.parametrize(
    "damage",
    ["npy_header", "info_list", "info_not_utf8"],
)
def test_any_damaged_cache_entry_is_dropped_and_fetched_again(home, tiny, server, damage):
    """Damage a verifier cannot parse (a garbled .npy header, info.json a list or not UTF-8) is a cache miss:
    load fetches again, and listing the cache never crashes on it."""
    spec, payloads, arrays = tiny
    cache.write(spec, payloads, "first")
    folder = cache.dataset_dir("tiny")
    if damage == "npy_header":
        raw = bytearray((folder / "train_x.npy").read_bytes())
        raw[20:40] = b"(" * 20  # the header is a Python literal: this one never closes
        (folder / "train_x.npy").write_bytes(bytes(raw))
    elif damage == "info_list":
        (folder / "info.json").write_text("[1, 2]")
    else:
        (folder / "info.json").write_bytes(b"\xff\xfe{")
    assert cache.peek("tiny") is None or damage == "npy_header"
    got, info = datasets._idx_dataset(spec, [MirrorSource(f"{server}/good/")])
    assert info["cache"] == "written"
    np.testing.assert_array_equal(got["train_x"], arrays["train_x"])
