"""The README's two commands from a clean clone, with an empty HOME: what a new user meets first.

This clones the checkout's committed state (uncommitted edits are not part of a clone), so it checks
what CI and a new user get. It installs into the clone's own .venv and fetches the datasets into the
empty HOME's cache, as a new machine would.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parent.parent


def _run(cmd, cwd, env, timeout=900):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    )
    return r.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    home = root / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "-q", str(CHECKOUT), str(root / "cnnlab")], check=True)
    # a new user of this machine: its environment (pip's settings included) with an empty HOME, and nothing
    # of this test session's (no CNNLAB_HOME, no activated venv, no pytest variables)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNNLAB_", "PYTEST_", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if ".venv" not in p)
    return root / "cnnlab", env


def test_make_demo_from_a_clean_clone(clone):
    repo, env = clone
    out = _run(["make", "demo"], repo, env)
    cache = Path(env["HOME"]) / ".cache" / "cnnlab" / "datasets" / "mnist"
    assert (cache / "info.json").is_file()  # fetched into the new user's own cache
    assert "verified train-images-idx3-ubyte" in out
    accuracy = float(re.search(r"Test accuracy:\S* ([0-9.]+)", out).group(1))
    assert accuracy >= 0.98  # seed-mnist5x5 after 2 epochs (0.99 at seed 0)
    figures = re.findall(r"^  (/\S+\.png)$", out, flags=re.M)
    assert len(figures) == 8 and all(Path(f).is_file() for f in figures)
    report = re.search(r"Report:\S* (\S+\.html)", out).group(1)
    assert Path(report).stat().st_size > 50_000
    assert not subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    # the run's config.json says how it was made: the command line, the versions, the data's checksums
    config = json.loads((repo / "out/demo/run-mnist/config.json").read_text())
    assert config["command_line"][1:] == [
        "train", "--data", "mnist", "--model", "seed-mnist5x5", "--epochs", "2", "--batch-size", "64", "--seed", "0",
        "--out", "out/demo/run-mnist",
    ]  # fmt: skip
    assert Path(config["command_line"][0]).name == "cnnlab"
    import torch

    from cnnlab.data import registry

    assert config["versions"]["torch"] == torch.__version__ == "2.13.0+cpu"  # the CPU wheel, as constraints.txt pins
    assert config["versions"]["cnnlab"]
    files = registry.get("mnist").files
    assert config["dataset"]["sha256"] == {f.name: f.sha256 for f in files}  # the published files' SHA-256


def test_make_test_set_up_from_the_same_clone(clone):
    """make test's own set-up (test dependencies, system pieces) then the suite collects every test."""
    repo, env = clone
    _run(["make", ".venv/.installed-test"], repo, env)
    notes = _run(["bash", "scripts/system-deps.sh"], repo, env)
    assert "will fail" not in notes  # as root it installs what is missing; as another user it says what to run
    listed = _run([str(repo / ".venv" / "bin" / "python"), "-m", "pytest", "--collect-only", "-q"], repo, env)
    assert re.search(r"^(\d+) tests collected", listed, flags=re.M), listed[-500:]
    fashion = _run([str(repo / ".venv" / "bin" / "cnnlab"), "data", "get", "fashion-mnist"], repo, env)
    assert "verified t10k-labels-idx1-ubyte" in fashion
    info = json.loads((Path(env["HOME"]) / ".cache/cnnlab/datasets/fashion-mnist/info.json").read_text())
    assert info["source"]
