import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from cnnlab.cli import app

runner = CliRunner()


@pytest.fixture
def run_dir(digits_run, monkeypatch):
    path, home = digits_run
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    return path


def test_inspect_writes_every_figure_and_an_index(run_dir, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(
        app,
        [
            "inspect",
            str(run_dir),
            "--image",
            "digits:test:3",
            "--layers",
            "conv1,pool1",
            "--channels",
            "4",
            "--method",
            "saliency",
            "--method",
            "occlusion",
            "--maximize",
            "conv2:5",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    index = json.loads((out / "index.json").read_text())
    kinds = [e["kind"] for e in index["figures"]]
    assert kinds == [
        "probabilities",
        "feature_maps",
        "feature_maps",
        "filters",
        "attribution",
        "attribution",
        "maximize",
    ]
    assert [e["layer"] for e in index["figures"] if e["kind"] == "feature_maps"] == ["conv1", "pool1"]
    assert index["figures"][2]["shape"] == [4, 4, 32]  # pool1 of an 8x8 digit
    for e in index["figures"]:
        with Image.open(out / e["file"]) as im:
            assert im.width > 100


def test_inspect_an_image_file_and_bad_layer(run_dir, tmp_path):
    Image.new("L", (40, 40), 255).save(tmp_path / "white.png")  # blank: looked at, but nothing to explain
    r = runner.invoke(app, ["inspect", str(run_dir), "--image", str(tmp_path / "white.png"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "note: white.png is 40x40 gray; converted to 8x8 gray" in r.stdout
    assert "white.png is blank (every pixel 0): there is nothing to recognise" in r.stdout
    index = json.loads((tmp_path / "o" / "index.json").read_text())
    assert [e for e in index["figures"] if e["kind"] == "attribution"] == []
    bad = tmp_path / "bad"
    for option, value, message in [
        ("--layers", "conv1,conv9", "No layer named 'conv9'. Expected one of: conv1, pool1"),
        ("--maximize", "conv7:1", "No layer named 'conv7'. Expected one of: conv1, pool1"),
        ("--method", "lime", "Unknown method 'lime'. Expected one of: saliency, "),
    ]:
        r = runner.invoke(app, ["inspect", str(run_dir), "--image", "digits:test:0", option, value, "-o", str(bad)])
        assert r.exit_code == 2 and message in r.stderr
        assert not bad.exists()  # checked before the first file is written
    r = runner.invoke(app, ["inspect", str(run_dir), "--image", str(tmp_path / "nope.png")])
    assert r.exit_code == 2 and "nope.png does not exist" in r.stderr


@pytest.mark.slow
def test_random_filters_on_a_real_digit_without_a_run(tmp_path, real_data):
    r = runner.invoke(app, ["inspect", "--random-filters", "5", "--image", "mnist:test:0", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    entry = json.loads((tmp_path / "index.json").read_text())["figures"][0]
    assert entry["shape"] == [7, 7, 5] and "(14, 14, 5)" in entry["meaning"]
