"""Issue 27, the tutorial at full size: on a Dogs-vs-Cats-shaped folder (``catdog_folder``: 2,000 JPEGs of
250-500 px and the odd and broken files people have), ``cnnlab train --model seed-catdog --size 100,100``,
``eval``, ``inspect --layers`` of the tutorial's layers 0 and 6 and ``serve`` all work, every bad file is
named once and skipped, and nothing else is lost."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from catdog import CATDOG_BAD, CATDOG_SPECIAL

pytestmark = pytest.mark.slow

CNNLAB = str(Path(sys.executable).parent / "cnnlab")


def _cnnlab(*args, home):
    env = {**os.environ, "CNNLAB_HOME": str(home), "COLUMNS": "200"}
    done = subprocess.run([CNNLAB, *map(str, args)], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def tutorial(catdog_folder, tmp_path_factory):
    work = tmp_path_factory.mktemp("tutorial")
    home, run = work / "home", work / "runs" / "catdog"
    args = ["--data", catdog_folder, "--model", "seed-catdog", "--size", "100,100", "--epochs", "2"]
    done = _cnnlab("train", *args, "--batch-size", "64", "--out", run, home=home)
    log = done.stdout + done.stderr
    return catdog_folder, run, home, log, work


def test_train_names_each_bad_file_once_and_keeps_every_photo(tutorial):
    folder, run, _, log, _ = tutorial
    for bad in CATDOG_BAD:
        assert log.count(str(folder / bad)) == 1, (bad, log)
    assert ".DS_Store" not in log and "._5.jpg" not in log  # hidden files are not the user's photos
    dataset = json.loads((run / "config.json").read_text())["dataset"]
    assert dataset["train"] + dataset["validation"] + dataset["test"] == 2000 + len(CATDOG_SPECIAL)
    assert dataset["classes"] == ["cat", "dog"] and dataset["image_shape"] == [100, 100, 3]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[-1]["test_accuracy"] > 0.8  # the dogs are bluer: learnt in two epochs


def test_eval_reports_the_test_split_file_by_file(tutorial):
    folder, run, home, _, _ = tutorial
    got = json.loads(_cnnlab("eval", run, "--json", home=home).stdout)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    files = [f["file"] for f in got["files"]]
    assert len(files) == json.loads((run / "config.json").read_text())["dataset"]["test"] == len(set(files))
    assert not set(files) & set(CATDOG_BAD) and all((folder / f).is_file() for f in files)
    assert abs(got["accuracy"] - rows[-1]["test_accuracy"]) < 0.01  # bf16 here, fp32 in training
    right = sum(f["class"] == f["predicted"] for f in got["files"])
    assert right == round(got["accuracy"] * len(files))


def test_inspect_the_tutorial_layers_0_and_6(tutorial):
    folder, run, home, _, work = tutorial
    out = work / "inspect"
    _cnnlab("inspect", run, "--image", folder / "dog" / "turned.jpg", "--layers", "conv1,conv4", "-o", out, home=home)
    figures = json.loads((out / "index.json").read_text())["figures"]
    maps = [(f["layer"], f["shape"]) for f in figures if f["kind"] == "feature_maps"]
    assert maps == [("conv1", [96, 96, 32]), ("conv4", [5, 5, 64])]  # 100 - 5 + 1; (9 - 5 + 1) after 3 pools
    for figure in figures:
        with Image.open(out / figure["file"]) as im:
            assert im.width > 50 and im.height > 50


def test_serve_shows_the_folders_test_images_and_predicts_its_photos(tutorial, monkeypatch, tmp_path_factory):
    from cnnlab import data
    from cnnlab.web import create_app
    from servers import Server

    folder, run, home, _, work = tutorial
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    test = data.load(folder, size=(100, 100), mode="rgb").test
    served = tmp_path_factory.getbasetemp()  # holds both the run and the folder it was trained on
    api = f"/api/runs/{run.relative_to(served).as_posix()}"
    with Server(create_app(served)) as url:
        for i in (0, len(test) - 1):
            got = httpx.get(f"{url}{api}/sample/{i}", timeout=60).json()
            assert np.array_equal(np.array(got["pixels"], np.uint8), test.x[i])
            assert got["label"] == ("cat", "dog")[test.y[i]]
        evaluation = httpx.get(f"{url}{api}/evaluation", timeout=300).json()
        assert evaluation["total"] == len(test) and evaluation["accuracy"] > 0.8
        for name in CATDOG_SPECIAL:
            body = (folder / name).read_bytes()
            r = httpx.post(f"{url}{api}/predict", files={"file": (Path(name).name, body)}, timeout=60)
            assert r.status_code == 200, r.text
            assert abs(sum(r.json()["probabilities"]) - 1) < 1e-4
        r = httpx.post(
            f"{url}{api}/predict",
            files={"file": ("truncated.jpg", io.BytesIO((folder / CATDOG_BAD[0]).read_bytes()))},
            timeout=60,
        )
        assert r.status_code == 400 and "\n" not in r.json()["error"]  # a one-line refusal, not a crash
