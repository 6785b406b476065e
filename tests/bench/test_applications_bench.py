"""The applications section of make bench, end to end on a small Keras-built model: both sides load the same
file and compute the same layers' maps. Nothing is timed against a limit; the numbers are for the README."""

import subprocess

import numpy as np
import pytest
from benchmarks import applications

pytestmark = pytest.mark.slow


def test_both_sides_load_the_same_file_and_map_the_same_layers(tmp_path, monkeypatch):
    monkeypatch.setattr(applications, "ROUNDS", 1)
    subprocess.run(
        [str(applications.PEER_PYTHON), "keras_apps.py", str(tmp_path), "layers"],
        cwd=applications.PEERS,
        env=applications.PEER_ENV,
        check=True,
        capture_output=True,
    )
    path, npz = tmp_path / "layers.keras", tmp_path / "layers.npz"
    ours = applications._cnnlab(path, np.load(npz)["x"][:1])
    theirs = applications._keras(path, npz)
    assert ours["layers"] == theirs["layers"] == len([k for k in np.load(npz).files if k not in ("x", "keras_params")])
    assert len(ours["load_s"]) == len(theirs["load_s"]) == 1 and len(ours["maps_s"]) == len(theirs["maps_s"]) == 5
    load, maps = applications._rows(ours, theirs, "")
    assert load["ratio"] == pytest.approx(load["cnnlab_ms"] / load["keras_ms"], rel=0.05)
    assert maps["what"] == f"feature maps of every layer ({ours['layers']} layers)" and maps["goal"] == 0.5
