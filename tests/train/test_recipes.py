"""Recipes on the real thing: `cnnlab train --recipe gpu-speed` on real MNIST reaches the 99% it is for."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_gpu_speed_recipe_reaches_99_percent_on_real_mnist(tmp_path, real_data):
    out = tmp_path / "speed"
    cmd = [str(Path(sys.executable).parent / "cnnlab"), "train", "--recipe", "gpu-speed", "--data", "mnist"]
    r = subprocess.run([*cmd, "--seed", "0", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert "recipe gpu-speed for mnist: model=cnnlab-fast, epochs=3, batch_size=128" in said  # printed at the start
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["recipe"], config["model"], config["batch_size"], config["epochs"]) == (
        "gpu-speed",
        "cnnlab-fast",
        128,
        3,
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["test_accuracy"] >= 0.99, rows[-1]


def test_the_best_recipe_trains_fashion_mnist_with_its_augmentation(tmp_path, real_data):
    """--recipe best fills in cnnlab-fast, the augmentation and label smoothing; an explicit --epochs 1 wins
    (the whole recipe takes minutes: make bench and the README report it)."""
    out = tmp_path / "best"
    cmd = [str(Path(sys.executable).parent / "cnnlab"), "train", "--recipe", "best", "--data", "fashion-mnist"]
    r = subprocess.run([*cmd, "--epochs", "1", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert "augment=shift=1,flip, label_smoothing=0.1 (epochs given explicitly)" in said
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["model"], config["epochs"], config["augment"], config["label_smoothing"]) == (
        "cnnlab-fast",
        1,
        "shift=1,flip",
        0.1,
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["test_accuracy"] > 0.85
    r = subprocess.run([*cmd[:-1], "mnist", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "Recipe 'best' has no options for data 'mnist'" in " ".join(r.stderr.split())
