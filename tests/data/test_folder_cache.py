"""Issue 27, second part: a folder is decoded once. The cached load equals a fresh decode, a changed, added or
removed file is read again (and only it), a damaged entry is rebuilt, and ``cnnlab data cache`` lists and
clears the entries."""

import errno
import json
import mmap
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cnnlab import data
from cnnlab.cli import app
from cnnlab.data import decoding, folder_cache

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))


def _photo(path, seed, size=(40, 60)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    old = os.stat(path).st_mtime - 10  # older than the two seconds in which a file counts as still changing
    os.utime(path, (old, old))


@pytest.fixture
def pets(tmp_path):
    root = tmp_path / "pets"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
    for i in range(12):
        _photo(root / ("cat", "dog")[i % 2] / f"{i}.png", i)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def counting(monkeypatch):
    """decode_all wrapped: the files it was asked to decode, call by call."""
    calls, real = [], decoding.decode_all
    monkeypatch.setattr(
        "cnnlab.data.folder.decode_all",
        lambda paths, *a, **k: calls.append(sorted(p.name for p in paths)) or real(paths, *a, **k),
    )
    return calls


def test_a_cached_load_is_the_fresh_decode_and_decodes_nothing(pets, monkeypatch):
    fresh = data.load(pets, size=(16, 16), cache=False)
    calls = counting(monkeypatch)
    first = data.load(pets, size=(16, 16))
    second = data.load(pets, size=(16, 16))
    for ds in (first, second):
        np.testing.assert_array_equal(ds.train.x, fresh.train.x)
        np.testing.assert_array_equal(ds.test.y, fresh.test.y)
        assert [b["path"] for b in ds.info["bad_files"]] == [b["path"] for b in fresh.info["bad_files"]]
    assert len(calls) == 1 and len(calls[0]) == 12  # the broken file fails at the header, once, and is remembered


def test_a_cached_load_maps_its_entry_and_a_write_to_it_stays_in_the_process(pets):
    first = data.load(pets, size=(16, 16))
    second = data.load(pets, size=(16, 16))
    base = second.train.x
    while isinstance(base, np.ndarray | memoryview):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    assert isinstance(base, mmap.mmap)  # the cache file mapped: nothing was read to load it
    np.testing.assert_array_equal(second.test.x, first.test.x)
    second.train.x[:] = 255  # copy-on-write: neither the entry nor a later load sees it
    third = data.load(pets, size=(16, 16))
    np.testing.assert_array_equal(third.train.x, first.train.x)
    assert third.train.x.min() < 255


def test_only_a_changed_or_added_file_is_decoded_again_and_a_removed_one_is_gone(pets, monkeypatch):
    data.load(pets, size=(16, 16))
    calls = counting(monkeypatch)
    _photo(pets / "cat" / "0.png", 99)  # changed: other pixels, new time
    _photo(pets / "dog" / "new.png", 100)  # added
    (pets / "cat" / "2.png").unlink()  # removed
    ds = data.load(pets, size=(16, 16))
    assert calls == [["0.png", "new.png"]]
    fresh = data.load(pets, size=(16, 16), cache=False)
    np.testing.assert_array_equal(ds.train.x, fresh.train.x)
    np.testing.assert_array_equal(ds.test.x, fresh.test.x)
    assert len(ds.train) + len(ds.test) == 12


def test_a_file_rewritten_within_two_seconds_is_never_taken_from_the_cache(pets, monkeypatch):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(pets / "cat" / "0.png")  # just now: "racy"
    data.load(pets, size=(16, 16))
    calls = counting(monkeypatch)
    data.load(pets, size=(16, 16))
    assert calls == [["0.png"]]


def test_a_damaged_entry_is_rebuilt(pets, monkeypatch):
    data.load(pets, size=(16, 16))
    entry = folder_cache.entries()[0]["path"]
    index = json.loads((entry / "index.json").read_text())
    (entry / index["pixels"]).write_bytes(b"garbage")
    calls = counting(monkeypatch)
    ds = data.load(pets, size=(16, 16))
    assert len(calls) == 1 and len(calls[0]) == 12
    np.testing.assert_array_equal(ds.train.x, data.load(pets, size=(16, 16), cache=False).train.x)
    (entry / "index.json").write_text("[" * 5000)
    assert len(data.load(pets, size=(16, 16)).train) == len(ds.train)


def test_cnnlab_data_cache_lists_and_clears_the_entries(pets):
    data.load(pets, size=(16, 16))
    data.load(pets, size=(8, 8), mode="gray")
    r = runner.invoke(app, ["data", "cache"], terminal_width=200)
    assert r.exit_code == 0 and "gray-8x8" in r.stdout and "rgb-16x16" in r.stdout and "2 entries" in r.stdout
    assert str(pets.resolve()) in r.stdout
    r = runner.invoke(app, ["data", "cache", "--clear", str(pets)])
    assert r.exit_code == 0 and "cleared" in r.stdout
    assert folder_cache.entries() == []


def _entry_files(pets):
    return sorted(p.name for p in folder_cache.FolderCache(pets).dir.glob("*/*"))


def test_a_first_load_is_mapped_from_its_new_entry_and_a_write_to_it_stays_in_the_process(pets, monkeypatch):
    fresh = data.load(pets, size=(16, 16), cache=False)
    first = data.load(pets, size=(16, 16))
    base = first.train.x
    while isinstance(base, np.ndarray | memoryview):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    assert isinstance(base, mmap.mmap)  # decoded into the entry's file, not into memory and saved after
    np.testing.assert_array_equal(first.train.x, fresh.train.x)
    first.train.x[:] = 255  # copy-on-write: the entry keeps what was decoded
    calls = counting(monkeypatch)
    second = data.load(pets, size=(16, 16))
    assert calls == []
    np.testing.assert_array_equal(second.train.x, fresh.train.x)
    files = _entry_files(pets)
    assert len(files) == 2 and "index.json" in files and files[-1].startswith("pixels-"), files  # no temp file


SCRIPT = "import sys, cnnlab\n{before}\ncnnlab.data.load(sys.argv[1], size=(16, 16))\n"


def test_a_script_that_exits_right_after_its_first_load_leaves_the_entry_whole(pets, monkeypatch):
    run = subprocess.run([sys.executable, "-c", SCRIPT.format(before=""), str(pets)], capture_output=True)
    assert run.returncode == 0, run.stderr
    calls = counting(monkeypatch)
    ds = data.load(pets, size=(16, 16))
    assert calls == []  # the entry was finished before the interpreter exited
    np.testing.assert_array_equal(ds.train.x, data.load(pets, size=(16, 16), cache=False).train.x)


def test_a_process_killed_while_its_entry_is_written_leaves_none_and_its_file_is_cleaned_later(pets, monkeypatch):
    crash = "import os\nfrom cnnlab.data import rows\nrows.RowWriter.close = lambda self: os._exit(3)"
    run = subprocess.run([sys.executable, "-c", SCRIPT.format(before=crash), str(pets)], capture_output=True)
    assert run.returncode == 3, run.stderr
    left = list(folder_cache.FolderCache(pets).dir.glob("*/.pixels-*.tmp"))
    assert len(left) == 1 and not (left[0].parent / "index.json").exists()  # no entry, its pixels half-made
    calls = counting(monkeypatch)
    ds = data.load(pets, size=(16, 16))
    assert len(calls) == 1 and len(calls[0]) == 12
    np.testing.assert_array_equal(ds.train.x, data.load(pets, size=(16, 16), cache=False).train.x)
    assert left[0].exists()  # it might be another process's, still being written
    old = time.time() - 2 * folder_cache.STALE_S
    os.utime(left[0], (old, old))
    (pets / "cat" / "0.png").unlink()  # a new entry is written: a long-untouched temp file goes with the old
    data.load(pets, size=(16, 16))
    assert not left[0].exists()
    assert len(_entry_files(pets)) == 2


def test_where_the_new_file_cannot_be_made_the_first_load_decodes_into_memory_and_saves(pets, monkeypatch):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(folder_cache, "RowWriter", full)
    first = data.load(pets, size=(16, 16))
    calls = counting(monkeypatch)
    second = data.load(pets, size=(16, 16))
    assert calls == []
    np.testing.assert_array_equal(second.train.x, first.train.x)
    np.testing.assert_array_equal(first.train.x, data.load(pets, size=(16, 16), cache=False).train.x)
