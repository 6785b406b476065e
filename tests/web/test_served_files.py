"""What the server reads from a served folder: only files inside it, always the current ones."""

import io
import json
import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from cnnlab.web import create_app
from cnnlab.web import store as store_module
from servers import Server


@pytest.fixture
def served(tmp_path, runs_root):
    """A fresh served folder holding a copy of the real MNIST run, and a secret file outside it."""
    root = tmp_path / "served"
    shutil.copytree(runs_root / "mnist", root / "mnist")
    secret = tmp_path / "secret.txt"
    secret.write_text("the contents of a private file")
    return root, secret


def digit_png() -> bytes:
    buf = io.BytesIO()
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 12:16] = 255  # a bar: a 1
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def predict(url: str):
    return httpx.post(f"{url}/api/runs/mnist/predict", files={"file": ("d.png", digit_png())}, timeout=10)


def test_a_file_linked_out_of_the_served_folder_is_never_sent(served):
    root, secret = served
    (root / "mnist" / "curves.png").symlink_to(secret)
    with Server(create_app(root)) as url:
        r = httpx.get(f"{url}/api/runs/mnist/curves.png")
        assert r.status_code == 403 and b"private" not in r.content
        assert "curves.png of run 'mnist' is a link out of the served folder" in r.json()["error"]
        assert predict(url).status_code == 200  # the rest of the run is still served


@pytest.mark.parametrize("name", ["model.json", "model.safetensors", "metrics.jsonl", "config.json"])
def test_a_run_whose_files_link_out_of_the_served_folder_is_not_loaded(served, tmp_path, name):
    root, _ = served
    moved = tmp_path / f"moved-{name}"
    shutil.move(root / "mnist" / name, moved)
    (root / "mnist" / name).symlink_to(moved)
    with Server(create_app(root)) as url:
        r = predict(url)
        assert r.status_code == 403 and f"{name} of run 'mnist' is a link out" in r.json()["error"]


def test_a_link_that_stays_inside_the_served_folder_is_followed(served):
    root, _ = served
    shutil.move(root / "mnist" / "model.safetensors", root / "weights.safetensors")
    (root / "mnist" / "model.safetensors").symlink_to(root / "weights.safetensors")
    with Server(create_app(root)) as url:
        assert predict(url).status_code == 200


def test_a_retrained_run_is_reloaded_and_a_deleted_one_is_gone(served):
    root, _ = served
    weights = root / "mnist" / "model.safetensors"
    with Server(create_app(root)) as url:
        before = predict(url).json()["probabilities"]
        tensors = load_file(weights)
        last = [k for k in tensors if k.endswith("bias")][-1]
        tensors[last] = tensors[last] + 50 * (torch.arange(10) == 3)  # class 3 favoured: a visibly different model
        save_file(tensors, str(weights) + ".new", metadata={"format": "cnnlab-run/1"})
        os.replace(str(weights) + ".new", weights)  # how cnnlab writes it: atomically
        after = predict(url).json()["probabilities"]
        assert after != before and np.argmax(after) == 3
        shutil.rmtree(root / "mnist")
        r = predict(url)
        assert r.status_code == 404 and "No run 'mnist' here" in r.json()["error"]
        assert httpx.get(f"{url}/api/runs").json()["runs"] == []


def test_a_folder_that_vanishes_during_a_scan_is_skipped(served, monkeypatch):
    root, _ = served
    (root / "gone" / "deeper").mkdir(parents=True)
    real_scandir = os.scandir

    def vanishing(path):
        if not isinstance(path, int) and os.path.basename(path) == "gone":
            shutil.rmtree(path)  # removed between being listed and being read
        return real_scandir(path)

    monkeypatch.setattr(store_module.os, "scandir", vanishing)
    assert list(store_module.RunStore(root).ids()) == ["mnist"]


def _with_data(root, run_id, data):
    config = root / run_id / "config.json"
    meta = json.loads(config.read_text())
    meta["config"]["data"] = str(data)
    config.write_text(json.dumps(meta))


def _folder_dataset(where, images_per_class=3):
    for digit in range(10):
        (where / str(digit)).mkdir(parents=True)
        for i in range(images_per_class):
            Image.fromarray(np.full((28, 28), 20 * digit + i, np.uint8)).save(where / str(digit) / f"{i}.png")


def test_samples_come_only_from_built_in_datasets_or_folders_inside_the_served_folder(served, tmp_path):
    root, _ = served
    shutil.copytree(root / "mnist", root / "inside")
    _folder_dataset(tmp_path / "outside-data")
    _folder_dataset(root / "inside-data")
    _with_data(root, "mnist", tmp_path / "outside-data")
    _with_data(root, "inside", root / "inside-data")
    with Server(create_app(root)) as url:
        r = httpx.get(f"{url}/api/runs/mnist/sample/0")
        assert r.status_code == 403 and "trained on a folder outside the served folder" in r.json()["error"]
        s = httpx.get(f"{url}/api/runs/inside/sample/0").json()
        assert s["label"] in [str(d) for d in range(10)] and np.array(s["pixels"]).shape == (28, 28)


def test_the_converted_test_split_is_kept_between_requests(served, monkeypatch):
    root, _ = served
    loads = []
    from cnnlab import data

    real_load = data.load
    monkeypatch.setattr(data, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    store = store_module.RunStore(root)
    first = [store.sample("mnist", "test", i) for i in range(5)]
    assert len(loads) == 1
    ds = real_load("mnist")
    for i, (img, label, desc) in enumerate(first):
        assert np.array_equal(img, ds.test.x[i]) and label == ds.classes[ds.test.y[i]] and desc == f"mnist test[{i}]"


def test_a_run_whose_class_names_do_not_match_its_outputs_is_a_409(served):
    root, _ = served
    meta_path = root / "mnist" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = meta["classes"][:9]
    meta_path.write_text(json.dumps(meta))
    with Server(create_app(root)) as url:
        r = predict(url)
        assert r.status_code == 409 and "names 9 classes but the model gives (10,) outputs" in r.json()["error"]


def test_keras_files_are_served_beside_runs(served):
    """A .keras and an .h5 file in the served folder are listed and answer like runs; their class names come
    from a classes.txt beside them, which is read through the same confinement."""
    root, secret = served
    fixtures = Path(__file__).parent.parent / "fixtures" / "keras"
    (root / "models").mkdir()
    shutil.copy(fixtures / "seq_bn.keras", root / "models" / "digits.keras")
    shutil.copy(fixtures / "seq_bn.h5", root / "models" / "digits.h5")
    (root / "models" / "classes.txt").write_text("\n".join("abcdefghij"))
    with Server(create_app(root)) as url:
        ids = [r["id"] for r in httpx.get(f"{url}/api/runs").json()["runs"]]
        assert ids == ["mnist", "models/digits.h5", "models/digits.keras"]
        for run_id in ids[1:]:
            r = httpx.post(f"{url}/api/runs/{run_id}/predict", files={"file": ("d.png", digit_png())})
            assert r.status_code == 200 and r.json()["classes"] == list("abcdefghij")
            r = httpx.get(f"{url}/api/runs/{run_id}/sample/0")
            assert r.status_code == 404 and "names no dataset" in r.json()["error"]
        (root / "models" / "classes.txt").unlink()
        (root / "models" / "classes.txt").symlink_to(secret)  # a link out: refused, never read
        r = httpx.post(f"{url}/api/runs/models/digits.keras/predict", files={"file": ("d.png", digit_png())})
        assert r.status_code == 403 and "private" not in r.text


def test_a_refused_file_is_refused_again_from_memory_until_it_changes(served, monkeypatch):
    """The second request for a damaged run does not read its files again; once they change, they are read."""
    root, _ = served
    (root / "mnist" / "model.json").write_text("[" * 1000 + "]" * 1000)
    loads = []
    real_load = store_module.load
    monkeypatch.setattr(store_module, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    with Server(create_app(root)) as url:
        first = predict(url)
        second = predict(url)
        assert first.status_code == second.status_code == 409 and "levels deep" in second.json()["error"]
        assert len(loads) == 1
        (root / "mnist" / "model.json").write_text("{}")
        third = predict(url)
        assert third.status_code == 409 and "has format None" in third.json()["error"] and len(loads) == 2
