"""A run trains on the cores that no other process keeps busy (PyTorch's threads wait for each other at every
operation, so one on a shared core holds them all back), records the count in config.json, and a resumed run
takes that count again whatever the machine is doing then: the weights depend on it. The caller's number of
torch threads is restored after a run."""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import torch

import cnnlab
from cnnlab.compute.device import busy_elsewhere

CORES = len(os.sched_getaffinity(0))


@contextlib.contextmanager
def busy_process():
    """One other process spinning on a core, scheduled before the block starts."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def test_a_core_another_process_keeps_busy_is_counted_and_this_processs_own_work_is_not():
    assert CORES >= 2, "the machine this suite runs on has 2 cores or more"
    with busy_process():
        assert 1 <= busy_elsewhere(0.3) <= CORES
    t0 = time.process_time()
    done = []

    def spin():  # this process's own thread keeps a core busy: not another process's
        while time.process_time() - t0 < 0.6:
            pass
        done.append(True)

    worker = threading.Thread(target=spin)
    worker.start()
    assert busy_elsewhere(0.3) == 0
    worker.join()
    assert done


def test_a_run_beside_a_busy_process_trains_on_the_free_cores_and_its_resume_takes_that_count(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    out, seen = tmp_path / "run", []
    caller = torch.get_num_threads()

    def during(run_dir, rows):  # after each epoch's checkpoint, inside the run
        seen.append(torch.get_num_threads())

    options = dict(data="digits", model="seed-fashion", batch_size=64, verbose=False, callbacks=[during])
    with busy_process():
        cnnlab.train(epochs=1, out=str(out), **options)
    assert seen == [CORES - 1] and json.loads((out / "config.json").read_text())["threads"] == CORES - 1
    assert torch.get_num_threads() == caller
    options.pop("data"), options.pop("model"), options.pop("batch_size")
    config = json.loads((out / "config.json").read_text())
    config["config"]["epochs"] = 2
    (out / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr("cnnlab.compute.device.busy_elsewhere", lambda *a: 0)  # a count now would be all cores
    cnnlab.train(resume=str(out), **options)
    assert seen == [CORES - 1, CORES - 1] and torch.get_num_threads() == caller
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's word goes first
    cnnlab.train(epochs=1, out=str(tmp_path / "one"), data="digits", model="seed-fashion", **options)
    assert seen[-1] == 1
