"""Issue 29, Deliver 2 (in part): dead units. On a trained run no layer is dead; on the same model with one
layer's bias pushed far below zero that layer is named, by the library and by ``cnnlab inspect --dead``. The
counts equal a NumPy computation over the same activations."""

import copy
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cnnlab.cli import app
from cnnlab.inspect import dead_units, feature_maps
from cnnlab.run.files import WEIGHTS, save_weights


def killed(run, layer: str):
    """The run's model with ``layer``'s bias at -1000: its ReLU gives 0 for every image."""
    model = copy.deepcopy(run.model)
    with torch.no_grad():
        dict(model.named_modules())[f"body.{[n for n, _ in model.walk()].index(layer)}"].bias.fill_(-1000.0)
    return dataclasses.replace(run, model=model)


def test_a_trained_run_has_no_dead_layer_and_the_counts_are_numpys(digits_loaded, monkeypatch, digits_run):
    monkeypatch.setenv("CNNLAB_HOME", str(digits_run[1]))
    run, ds = digits_loaded
    found = dead_units(run)  # the run's own test set
    assert found.images == len(ds.test) and found.dead_layers == []
    assert [h.layer for h in found.layers] == ["conv1", "conv2", "dense1"]  # the layers that end in a ReLU
    maps = feature_maps(run, ds.test.x, layers=["conv1", "conv2", "dense1"])
    for h in found.layers:
        a = maps[h.layer]
        never = np.flatnonzero(a.reshape(-1, a.shape[-1]).max(axis=0) <= 0)
        assert h.dead == tuple(never) and h.channels == a.shape[-1]
        assert h.zero_fraction == pytest.approx((a == 0).mean())
    assert repr(found).splitlines()[0] == f"Dead units over {len(ds.test):,} images: no layer is dead"


def test_a_layer_made_to_die_is_named(digits_loaded):
    run, ds = digits_loaded
    found = dead_units(killed(run, "conv2"), ds.test.x[:100])
    assert found.dead_layers == ["conv2"]
    conv2 = next(h for h in found.layers if h.layer == "conv2")
    assert conv2.dead == tuple(range(64)) and conv2.zero_fraction == 1.0
    assert [ax.get_title() for ax in found.plot().axes][0] == "dead units over 100 images: conv2 dead"


def test_cnnlab_inspect_dead_names_the_dead_layer_and_only_it(digits_loaded, digits_run, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(digits_run[1]))
    run, _ = digits_loaded
    dead_dir = tmp_path / "dead-run"
    shutil.copytree(run.path, dead_dir)
    save_weights(dead_dir / WEIGHTS, killed(run, "conv1").model)
    result = CliRunner().invoke(app, ["inspect", str(dead_dir), "--dead", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "dead layers: conv1" in result.output and (tmp_path / "out" / "dead.png").is_file()
    healthy = CliRunner().invoke(app, ["inspect", str(run.path), "--dead", "-o", str(tmp_path / "out2")])
    assert healthy.exit_code == 0 and "no layer is dead" in healthy.output


def test_training_health_reads_the_runs_statistics(digits_run, dead_digits_run, tmp_path):
    from cnnlab.errors import InputError
    from cnnlab.inspect.health import training_health
    from cnnlab.run.run import load

    healthy = training_health(load(digits_run[0]))
    assert healthy.died == {} and healthy.verdict.startswith("No layer died")
    layers = list(healthy.steps[-1]["layers"])
    axes = healthy.plot().axes  # zeros, gradient norms, a heat map a layer, its colour bar
    assert len(axes) == 2 + len(layers) + 1
    assert [ax.get_title() for ax in axes[2:-1]] == [f"{n}: activations" for n in layers]
    rows = healthy.table().rows
    assert [r[0] for r in rows] == layers
    assert rows[0][1] == f"{healthy.steps[-1]['layers'][layers[0]]['mean']:.4g}"
    dead = training_health(load(dead_digits_run[0]))
    assert dead.died["conv2"] == 64 and "conv1" not in dead.died
    assert (
        repr(dead)
        .splitlines()[0]
        .endswith("Dead layers: conv2 (all 64 channels never fired), dense1 (all 128 channels never fired)")
    )
    bare = tmp_path / "bare"
    shutil.copytree(digits_run[0], bare)
    (bare / "stats.jsonl").unlink()
    with pytest.raises(InputError, match="recorded no training statistics"):
        training_health(load(bare))


def test_cnnlab_inspect_check_explanations_prints_and_saves_the_checks(digits_run, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(digits_run[1]))
    out = tmp_path / "out"
    argv = ["inspect", str(digits_run[0]), "--check-explanations", "--images", "4", "--method", "gradcam"]
    result = CliRunner().invoke(app, [*argv, "--method", "occlusion", "-o", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "explanation-checks.json").read_text())
    assert saved["images"] == 4 and [m["method"] for m in saved["methods"]] == ["gradcam", "occlusion"]
    for m in saved["methods"]:  # the printed table is the saved numbers
        assert f"{m['deletion']:.3f}" in result.output and f"{m['randomization_rho']:.2f}" in result.output
    assert (out / "explanation-checks.png").stat().st_size > 10_000
    bad = CliRunner().invoke(app, [*argv, "--images", "0", "-o", str(out)])
    assert bad.exit_code != 0 and "--images 0" in bad.output
