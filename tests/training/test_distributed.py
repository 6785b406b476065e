"""Issue 17: `cnnlab train --nproc N` through torch.distributed's elastic launcher, on this machine's CPU (gloo).

The workers are real processes started by the real launcher; each test reads what they wrote."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import cnnlab
from cnnlab.training.distributed import World, loss_weight, shard

pytestmark = pytest.mark.slow
CNNLAB = str(Path(sys.executable).parent / "cnnlab")
BN_SPEC = {  # no dropout, so that one process and several draw nothing different
    "name": "bn-tiny",
    "layers": [
        {"type": "Conv2D", "filters": 6, "kernel_size": 3, "padding": "same", "use_bias": False},
        {"type": "BatchNormalization"},
        {"type": "ReLU"},
        {"type": "MaxPooling2D"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 10},
    ],
}
# Installed first in every worker (PYTHONPATH): logs each file the process opens for writing, renames or
# deletes under WATCH_DIR, one log per rank, so a test can see who wrote the run directory.
AUDIT = """
import os, sys
if os.environ.get("WATCH_DIR") and os.environ.get("RANK") is not None:
    _watch, _log = os.environ["WATCH_DIR"], os.environ["WRITES_LOG"] + "." + os.environ["RANK"]
    _writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _hook(event, args):
        paths = []
        if event == "open" and args and isinstance(args[0], (str, os.PathLike)):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writes = isinstance(mode, str) and any(c in mode for c in "wax+")
            if writes or (isinstance(flags, int) and flags & _writes):
                paths = [args[0]]
        elif event in ("os.rename", "os.replace", "os.remove", "os.unlink", "os.mkdir"):
            paths = [a for a in args[:2] if isinstance(a, (str, os.PathLike))]
        for p in paths:
            p = os.path.abspath(os.fspath(p))
            if p.startswith(_watch):
                with open(_log, "a") as f:  # outside WATCH_DIR: not logged again
                    f.write(event + " " + p + "\\n")

    sys.addaudithook(_hook)
"""


def _cli(*args, env=None, **kw):
    return subprocess.run([CNNLAB, "train", *args], capture_output=True, text=True, env=env, timeout=600, **kw)


def _env(home, **extra):
    return {**os.environ, "CNNLAB_HOME": str(home), "COLUMNS": "200", **extra}


def _metrics(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("n", [1, 7, 63, 64, 1000])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_disjoint_and_cover_every_batch(n, world):
    """The loop's own split: every global batch of the epoch's order is cut into disjoint parts, one per rank,
    that together are the batch; the weights make DDP's mean of the ranks' mean losses the batch's mean."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    losses = torch.rand(n, dtype=torch.float64)
    for b in range(0, n, 64):
        batch = order[b : b + 64]
        parts = [shard(batch, World(rank, world)) for rank in range(world)]
        weights = [loss_weight(batch, World(rank, world)) for rank in range(world)]
        counted = [p for p, w in zip(parts, weights, strict=True) if w]  # a weight-0 stand-in counts for nothing
        assert sorted(torch.cat(counted).tolist()) == sorted(batch.tolist())
        assert sum(len(p) for p in counted) == len(batch)
        mean_of_means = sum(w * losses[p].mean() for p, w in zip(parts, weights, strict=True)) / world
        assert float(mean_of_means) == pytest.approx(float(losses[batch].mean()), rel=1e-12)


@pytest.mark.parametrize("model", ["bn-spec", "cnnlab-res"])
def test_two_processes_train_the_weights_one_process_trains(tmp_path, model):
    """DDP's averaged gradients of the shards, each loss weighted by its share, and BatchNormalization's
    statistics added over the ranks give the single-process step: after an epoch of digits (45 steps, Adam,
    float32) the weights and BatchNorm's moving statistics of --nproc 2 are those of one process, for a
    chain and for the zoo's ResNet (a graph; with SGD, as Adam's step turns the last bits of a gradient that is
    almost 0 into a whole step of the learning rate either way)."""
    spec = tmp_path / "bn.json"
    spec.write_text(json.dumps(BN_SPEC))
    optimizer = [] if model == "bn-spec" else ["--optimizer", "sgd", "--momentum", "0.9"]
    model = str(spec) if model == "bn-spec" else model
    common = ["--data", "digits", "--model", model, "--epochs", "1", "--batch-size", "32", "--lr", "3e-3", *optimizer]
    common += ["--seed", "1", "--precision", "fp32"]
    env = _env(tmp_path / "home")
    one = _cli(*common, "--out", str(tmp_path / "one"), env=env)
    two = _cli(*common, "--out", str(tmp_path / "two"), "--nproc", "2", env=env)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    a, b = (
        load_file(str(tmp_path / "one" / "model.safetensors")),
        load_file(str(tmp_path / "two" / "model.safetensors")),
    )
    assert a.keys() == b.keys() and any("running_var" in k for k in a)
    for k in a:
        np.testing.assert_allclose(b[k].numpy(), a[k].numpy(), rtol=1e-3, atol=1e-4, err_msg=k)
    m1, m2 = _metrics(tmp_path / "one")[0], _metrics(tmp_path / "two")[0]
    assert m2["world_size"] == 2 and m1["world_size"] == 1
    for key in ("loss", "accuracy", "test_loss", "test_accuracy"):  # reduced over the ranks before written
        assert m2[key] == pytest.approx(m1[key], abs=2e-3), key
    assert two.stdout.count("test accuracy") == 1  # rank 0 speaks for the job
    _same_statistics(tmp_path / "one", tmp_path / "two")


def _same_statistics(one, two):
    """stats.jsonl of --nproc 2 is reduced over the ranks: its first watched step (before the weights part by
    rounding) holds each layer's numbers over the whole global batch, as one process's does, and its
    epoch line the same never-fired channels."""
    a = [json.loads(line) for line in (one / "stats.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (two / "stats.jsonl").read_text().splitlines()]
    assert [(r["kind"], r.get("step")) for r in a] == [(r["kind"], r.get("step")) for r in b]
    first_a, first_b = a[0]["layers"], b[0]["layers"]
    assert first_a.keys() == first_b.keys()
    for name, x in first_a.items():
        y = first_b[name]
        assert sum(y["hist"]) == sum(x["hist"]), name  # every rank's outputs counted, once
        for key in ("mean", "std", "min", "max", "zeros"):
            if key in x:
                assert y[key] == pytest.approx(x[key], rel=1e-4, abs=1e-5), (name, key)
        assert np.abs(np.subtract(y["hist"], x["hist"])).sum() <= 0.001 * sum(x["hist"]) + 2, name
    assert b[-1]["kind"] == "epoch" and b[-1]["channels"] == a[-1]["channels"]


def test_two_processes_on_real_mnist_reach_one_process_accuracy_and_only_rank_0_writes(tmp_path, runs_root, real_home):
    """The same options as the session's one-process MNIST run (seed-mnist5x5, 1 epoch, batch 64, seed 0),
    in 2 processes: test accuracy within half a point of it; the run directory written by rank 0 alone."""
    single = _metrics(runs_root / "mnist")[-1]["test_accuracy"]
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT)
    out = tmp_path / "mnist2"
    env = _env(real_home, PYTHONPATH=str(hook), WATCH_DIR=str(out), WRITES_LOG=str(tmp_path / "writes"))
    r = _cli("--data", "mnist", "--model", "seed-mnist5x5", "--epochs", "1", "--batch-size", "64", "--seed", "0",
             "--out", str(out), "--nproc", "2", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "in each of 2 processes, gloo" in r.stdout + r.stderr
    row = _metrics(out)[-1]
    assert row["world_size"] == 2 and row["test_accuracy"] >= single - 0.005, (row, single)
    config = json.loads((out / "config.json").read_text())
    assert (config["world_size"], config["backend"]) == (2, "gloo")
    assert config["command_line"][-2:] == ["--nproc", "2"]  # the user's command, not the workers'
    rank0 = (tmp_path / "writes.0").read_text()
    assert "model.safetensors" in rank0 and "state.pt" in rank0  # the hook sees rank 0's writes...
    assert not (tmp_path / "writes.1").exists()  # ...and none by rank 1
    assert cnnlab.Run.load(out).predict(np.zeros((1, 28, 28, 1), np.uint8)).shape == (1, 10)


def test_resume_across_world_sizes(tmp_path):
    """A 2-process run resumed by 1 process, then by 2 again, continues from each checkpoint: three epochs in
    all, each row saying how many processes trained it, ending where one uninterrupted process ends."""
    spec = tmp_path / "bn.json"
    spec.write_text(json.dumps(BN_SPEC))
    common = ["--data", "digits", "--model", str(spec), "--batch-size", "32", "--seed", "1", "--precision", "fp32"]
    env = _env(tmp_path / "home")
    out = str(tmp_path / "r")
    first = _cli(*common, "--epochs", "1", "--out", out, "--nproc", "2", env=env)
    assert first.returncode == 0, first.stderr
    r = _cli("--resume", out, "--epochs", "2", env=env)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout + r.stderr and "after epoch 1 of 2" in r.stdout + r.stderr
    r = _cli("--resume", out, "--epochs", "3", "--nproc", "2", env=env)
    assert r.returncode == 0, r.stderr
    assert "after epoch 2 of 3 in each of 2 processes" in r.stdout + r.stderr
    assert [(m["epoch"], m["world_size"]) for m in _metrics(out)] == [(1, 2), (2, 1), (3, 2)]
    straight = _cli(*common, "--epochs", "3", "--out", str(tmp_path / "straight"), env=env)
    assert straight.returncode == 0, straight.stderr
    a, b = load_file(str(tmp_path / "straight" / "model.safetensors")), load_file(out + "/model.safetensors")
    for k in a:
        np.testing.assert_allclose(b[k].numpy(), a[k].numpy(), rtol=1e-2, atol=1e-3, err_msg=k)


def _worker_pids(parent: int) -> dict[int, int]:
    """rank -> pid of the workers the launcher started (their environment names the rank)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        ranks = [e.split(b"=", 1)[1] for e in environ if e.startswith(b"RANK=")]
        if ppid == parent and ranks:
            found[int(ranks[0])] = int(entry.name)
    return found


def _start_long_run(tmp_path, epochs=400):
    out = tmp_path / "long"
    cmd = [CNNLAB, "train", "--data", "digits", "--model", "seed-fashion", "--epochs", str(epochs), "--batch-size",
           "64", "--out", str(out), "--nproc", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path / "home"), start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while not (out / "state.pt").exists() or len(_metrics(out)) < 2:  # two finished epochs
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.2)
    return proc, out


def _checkpoint_intact(out):
    state = torch.load(out / "state.pt", weights_only=True)
    rows = _metrics(out)
    assert state["epoch"] >= 2 and rows[-1]["epoch"] >= state["epoch"]
    load_file(str(out / "model.safetensors"))  # whole
    return state["epoch"]


def test_a_killed_worker_stops_the_job_naming_its_rank(tmp_path):
    proc, out = _start_long_run(tmp_path)
    workers = _worker_pids(proc.pid)
    assert sorted(workers) == [0, 1], workers
    os.kill(workers[1], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=60)  # no hang: the launcher stops the other worker
    assert proc.returncode == 1
    assert "Worker rank 1" in stderr and "was killed by SIGKILL" in stderr and "all 2 workers were stopped" in stderr
    assert f"continue with: cnnlab train --resume {out} --nproc 2" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    assert not _worker_pids(proc.pid) and all(
        not p.exists() for p in map(Path, [f"/proc/{w}" for w in workers.values()])
    )
    _checkpoint_intact(out)


def test_ctrl_c_stops_every_worker_and_keeps_the_checkpoint(tmp_path):
    proc, out = _start_long_run(tmp_path)
    workers = _worker_pids(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: the whole foreground group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    said = " ".join((stdout + stderr).split())
    assert "Interrupted during epoch" in said and f"continue with: cnnlab train --resume {out} --nproc 2" in said
    assert said.count("Interrupted during epoch") == 1 and "Traceback" not in said
    assert all(not Path(f"/proc/{w}").exists() for w in workers.values())
    epoch = _checkpoint_intact(out)
    r = _cli("--resume", str(out), "--epochs", str(epoch + 1), env=_env(tmp_path / "home"))
    assert r.returncode == 0, r.stderr  # it continues, here in one process


def test_torchrun_on_two_nodes_as_the_readme_says(tmp_path):
    """The README's multi-node command, as two nodes of one worker each on this machine: two torchrun
    launchers meet at one rendezvous endpoint; global rank 0 writes the run and reports."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "multi"
    nodes = [
        subprocess.Popen(
            [
                torchrun,
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                f"127.0.0.1:{port}",
                "--rdzv-id",
                "readme",
                "-m",
                "cnnlab",
                "train",
                "--data",
                "digits",
                "--model",
                "seed-fashion",
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(tmp_path / "home"),
        )  # fmt: skip
        for _ in range(2)  # the same command on each "machine"
    ]
    results = [node.communicate(timeout=300) for node in nodes]
    for node, (_, stderr) in zip(nodes, results, strict=True):
        assert node.returncode == 0, stderr[-3000:]
    assert sum("test accuracy" in stdout for stdout, _ in results) == 1  # the node of global rank 0 reports
    config = json.loads((out / "config.json").read_text())
    assert (config["world_size"], config["backend"]) == (2, "gloo")
    assert [(m["epoch"], m["world_size"]) for m in _metrics(out)] == [(1, 2), (2, 2)]
