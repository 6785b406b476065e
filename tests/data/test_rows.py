"""Issue 27, past memory: a folder whose decoded images exceed the memory budget is read from its cache file a
batch at a time. RowFile reads what NumPy's indexing gives; a folder past its budget loads, trains and
evaluates to the same numbers as in memory, and the training process holds far less than the folder."""

import json
import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab import data
from cnnlab.data import folder_cache
from cnnlab.data.rows import RowFile, RowWriter, parse_bytes
from cnnlab.errors import InputError

# cnnlab's CLI in a process that prints its peak resident memory at the end: VmHWM, the high-water mark of this
# process's own memory (getrusage's ru_maxrss would start at the pytest process's size, kept across fork and exec)
CNNLAB_PEAK = (
    "import re, sys\n"
    "from cnnlab.cli import main\n"
    "sys.argv = ['cnnlab', *sys.argv[1:]]\n"
    "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\nelse:\n    code = 0\n"
    "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
    "print('PEAK_KB', hwm)\n"
    "sys.exit(code)\n"
)


def test_rowfile_reads_what_numpy_indexing_gives(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (50, 4, 3, 2), dtype=np.uint8)
    np.save(tmp_path / "a.npy", a)
    f = RowFile(tmp_path / "a.npy")
    assert f.shape == a.shape and f.dtype == a.dtype and len(f) == 50 and f.nbytes == a.nbytes
    mask = np.arange(50) % 3 == 0
    keys = [7, -1, slice(None), slice(3, 40, 4), np.array([9, 2, 2, 3, 4, 5, 49]), mask, [], torch.tensor([5, 1])]
    for key in keys:
        want = a[key.numpy() if isinstance(key, torch.Tensor) else key]
        np.testing.assert_array_equal(f[key], want)
    np.testing.assert_array_equal(f[:, :, ::-1], a[:, :, ::-1])
    view = f.view(~mask)  # picked, not read
    assert isinstance(view, RowFile) and len(view) == (~mask).sum()
    np.testing.assert_array_equal(view[np.array([3, 0, 1])], a[~mask][[3, 0, 1]])
    np.testing.assert_array_equal(np.asarray(view.view(slice(2, None, 5))), a[~mask][2::5])
    again = pickle.loads(pickle.dumps(view))  # another process opens the file itself
    np.testing.assert_array_equal(again[:], a[~mask])
    kept = f.view([4, 2])
    (tmp_path / "a.npy").unlink()  # as a newer cache entry removes the old pixels: what is open still reads
    np.testing.assert_array_equal(kept[:], a[[4, 2]])
    np.save(tmp_path / "a.npy", a)
    (tmp_path / "short.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-10])
    with pytest.raises(OSError, match="damaged"):
        RowFile(tmp_path / "short.npy")[49]


def test_rowfile_maps_a_run_of_rows_copy_on_write(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (40, 3, 5, 3), dtype=np.uint8)
    np.save(tmp_path / "a.npy", a)
    f = RowFile(tmp_path / "a.npy")
    np.testing.assert_array_equal(f.mapped(), a)
    run = f.view(slice(7, 33)).mapped()  # not at a page boundary in the file
    np.testing.assert_array_equal(run, a[7:33])
    assert f.view([3, 5, 4]).mapped() is None and f.view([]).mapped() is None  # not one run in order: read
    run[:] = 0  # stays in this process
    np.testing.assert_array_equal(RowFile(tmp_path / "a.npy")[:], a)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), a)


def test_memory_budget_sizes():
    assert parse_bytes("800MB") == 800_000_000
    assert parse_bytes("2GiB") == 2 * 2**30
    assert parse_bytes(" 1.5 kb ") == 1500
    assert parse_bytes("123456") == 123456
    for bad in ("", "lots", "0", "12 parsecs", "-5MB"):
        with pytest.raises(InputError, match="CNNLAB_MEMORY_BUDGET"):
            parse_bytes(bad)


def _folder(root: Path, n: int, size=(60, 80)) -> Path:
    """Two classes of JPEGs, the dogs brighter, one file that is no image."""
    rng = np.random.default_rng(1)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
    for i in range(n):
        label = i % 2
        base = rng.integers(0, 120, (*size, 3)) + 100 * label
        Image.fromarray(base.clip(0, 255).astype(np.uint8)).save(root / ("cat", "dog")[label] / f"{i}.jpg")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    old = os.stat(root / "cat" / "0.jpg").st_mtime - 10  # older than the two "racy" seconds of the cache
    for p in root.rglob("*.jpg"):
        os.utime(p, (old, old))
    return root


def test_a_folder_past_its_budget_is_the_same_data_read_from_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    root = _folder(tmp_path / "pets", 60)
    memory = data.load(root, size=(20, 30), cache=False)
    monkeypatch.setenv("CNNLAB_MEMORY_BUDGET", "20kB")  # 59 images of 20x30x3 are 106 kB
    for _ in range(2):  # decoded to disk part by part, then read from the cache as it is
        disk = data.load(root, size=(20, 30))
        for name in ("train", "test"):
            a, b = memory.split(name), disk.split(name)
            assert isinstance(b.x, RowFile) and b.x.shape == a.x.shape
            np.testing.assert_array_equal(b.x[:], a.x)
            np.testing.assert_array_equal(b.y, a.y)
        assert any("above the memory budget" in n for n in disk.info["notes"])
        assert [b["path"] for b in disk.info["bad_files"]] == [str(root / "dog" / "broken.jpg")]
    monkeypatch.setenv("CNNLAB_MEMORY_BUDGET", "10GB")  # the same entry, now loaded into memory
    whole = data.load(root, size=(20, 30))
    assert isinstance(whole.train.x, np.ndarray)
    np.testing.assert_array_equal(whole.train.x, memory.train.x)


SIDE = 150  # the training test's images: 6,000 of 150x150 are 405 MB, far above the noise of a process's peak


def _train(root: Path, out: Path, home: Path, budget: str | None):
    env = {**os.environ, "CNNLAB_HOME": str(home)}
    env.pop("CNNLAB_MEMORY_BUDGET", None)
    if budget:
        env["CNNLAB_MEMORY_BUDGET"] = budget
    spec = out.parent / "small.json"  # a model whose activations are small beside the images
    layers = [{"type": "AveragePooling2D", "pool_size": 10}, {"type": "Flatten"}, {"type": "Dense", "units": 2}]
    spec.write_text(json.dumps({"input_shape": [SIDE, SIDE, 3], "layers": layers}))
    args = ["train", "--data", str(root), "--model", str(spec), "--size", f"{SIDE},{SIDE}", "--epochs", "2"]
    args += ["--augment", "flip", "--batch-size", "64", "--out", str(out), "--device", "cpu", "--precision", "fp32"]
    proc = subprocess.run(
        [sys.executable, "-c", CNNLAB_PEAK, *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    peak = int(proc.stdout.rsplit("PEAK_KB", 1)[1]) * 1024
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return proc.stdout + proc.stderr, peak, rows


def test_training_past_the_budget_reads_batches_from_disk_and_holds_far_less(tmp_path, monkeypatch):
    home = tmp_path / "home"
    root = _folder(tmp_path / "photos", 6000, size=(120, 150))
    cache_bytes = 6000 * SIDE * SIDE * 3  # 405 MB of decoded images
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    data.load(root, size=(SIDE, SIDE))  # decoded once here: both runs below read the same cache entry
    folder_cache._wait()  # once this process has finished writing it (a thread does, after the load returns)
    log_disk, peak_disk, rows_disk = _train(root, tmp_path / "disk", home, "8MB")  # a batch at a time
    log_mem, peak_mem, rows_mem = _train(root, tmp_path / "memory", home, None)  # the whole entry, into memory
    assert "above the memory budget" in log_disk and "above the memory budget" not in log_mem
    assert "broken.jpg" in log_disk  # the bad file named, and skipped
    keys = ("loss", "accuracy", "test_loss", "test_accuracy")
    assert rows_disk and [[r[k] for k in keys] for r in rows_disk] == [[r[k] for k in keys] for r in rows_mem]
    assert peak_mem - peak_disk > 0.5 * cache_bytes, (peak_mem, peak_disk)
    from cnnlab.run import load
    from cnnlab.run.evaluate import evaluate_run

    run = load(tmp_path / "disk")
    monkeypatch.setenv("CNNLAB_MEMORY_BUDGET", "8MB")
    on_disk, x = evaluate_run(run, str(root), precision="fp32")
    assert isinstance(x, RowFile)
    monkeypatch.delenv("CNNLAB_MEMORY_BUDGET")
    in_memory, _ = evaluate_run(run, str(root), precision="fp32")
    assert on_disk.accuracy == in_memory.accuracy == rows_disk[-1]["test_accuracy"]
    np.testing.assert_array_equal(on_disk.predictions, in_memory.predictions)

    import httpx

    from cnnlab.web import create_app
    from servers import Server

    monkeypatch.setenv("CNNLAB_MEMORY_BUDGET", "8MB")  # the server, too, reads the folder's images from disk
    test_x = data.load(root, size=(SIDE, SIDE), cache=False).test.x
    with Server(create_app(tmp_path)) as url:
        for i in (0, 17, len(test_x) - 1):
            got = httpx.get(f"{url}/api/runs/disk/sample/{i}", timeout=60).json()
            assert got["pixels"] == test_x[i].tolist()
        served = httpx.get(f"{url}/api/runs/disk/evaluation", timeout=120).json()
    assert served["accuracy"] == round(in_memory.accuracy, 6) and served["total"] == len(test_x)


def test_past_the_budget_nproc_and_resume_give_the_numbers_of_memory(tmp_path):
    """--nproc 2 shards the batches of a folder read from disk as it shards them in memory, and a run resumed
    past the budget ends where an uninterrupted run in memory ends."""
    root, home = _folder(tmp_path / "photos", 600, size=(120, 150)), tmp_path / "home"  # 18 MB at 100x100
    spec = tmp_path / "small.json"
    layers = [{"type": "AveragePooling2D", "pool_size": 10}, {"type": "Flatten"}, {"type": "Dense", "units": 2}]
    spec.write_text(json.dumps({"input_shape": [100, 100, 3], "layers": layers}))
    common = ["--data", root, "--model", spec, "--size", "100,100", "--augment", "flip", "--batch-size", "32"]
    common += ["--device", "cpu", "--precision", "fp32"]

    def train(*args, budget=None):
        env = {**os.environ, "CNNLAB_HOME": str(home)}
        env.pop("CNNLAB_MEMORY_BUDGET", None)
        env |= {"CNNLAB_MEMORY_BUDGET": budget} if budget else {}
        cmd = [str(Path(sys.executable).parent / "cnnlab"), "train", *map(str, args)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    def metrics(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [[r[k] for k in ("loss", "accuracy", "test_loss", "test_accuracy")] for r in rows]

    assert "above the memory budget" in train(
        *common, "--epochs", "2", "--nproc", "2", "--out", tmp_path / "a", budget="4MB"
    )
    train(*common, "--epochs", "2", "--nproc", "2", "--out", tmp_path / "b")
    assert metrics(tmp_path / "a") == metrics(tmp_path / "b") and len(metrics(tmp_path / "a")) == 2
    train(*common, "--epochs", "1", "--out", tmp_path / "c", budget="4MB")
    assert "above the memory budget" in train("--resume", tmp_path / "c", "--epochs", "2", budget="4MB")
    train(*common, "--epochs", "2", "--out", tmp_path / "d")
    assert metrics(tmp_path / "c") == metrics(tmp_path / "d")


def test_rows_written_in_any_order_by_forked_processes_make_the_npy_file(tmp_path):
    a = np.random.default_rng(2).integers(0, 256, (30, 4, 5, 3), dtype=np.uint8)
    w = RowWriter(tmp_path / "w.npy", a.shape)
    with pytest.raises(FileExistsError):  # never over a file that is there
        RowWriter(tmp_path / "w.npy", a.shape)

    def write(rows):
        for i in rows:
            w[i] = a[i]

    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=write, args=(range(start, 30, 2),)) for start in (1, 0)]
    for p in workers:
        p.start()
    for p in workers:
        p.join()
        assert p.exitcode == 0
    kept = [0, 3, 4, 9, 29]  # as the files that decoded: moved up, in order
    x = w.keep(kept)
    np.testing.assert_array_equal(x, a[kept])
    w.close()
    on_disk = np.load(tmp_path / "w.npy")  # a .npy of the whole shape, read by NumPy's own reader
    assert on_disk.shape == a.shape
    np.testing.assert_array_equal(on_disk[:5], a[kept])
    x[:] = 0  # mapped copy-on-write: the file keeps its rows
    np.testing.assert_array_equal(RowFile(tmp_path / "w.npy")[:5], a[kept])
    v = RowWriter(tmp_path / "v.npy", a.shape)
    with pytest.raises(ValueError, match="does not fit"):
        v[0] = a[0, :2]
    v.discard()
    assert not (tmp_path / "v.npy").exists()
