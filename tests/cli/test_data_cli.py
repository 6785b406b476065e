import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cnnlab.cli import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_list_names_every_dataset(home):
    r = runner.invoke(app, ["data", "list"])
    assert r.exit_code == 0, r.output
    for name in ("mnist", "fashion-mnist", "digits"):
        assert name in r.stdout
    assert "60,000 / 10,000" in r.stdout


@pytest.mark.slow
def test_get_then_show_grid_and_one_image(real_data, tmp_path):
    r = runner.invoke(app, ["data", "get", "fashion-mnist"])
    assert r.exit_code == 0, r.output
    assert "source:" in r.stdout and "verified train-images-idx3-ubyte" in r.stdout
    grid = tmp_path / "grid.png"
    r = runner.invoke(app, ["data", "show", "fashion-mnist", "--split", "test", "--n", "12", "-o", str(grid)])
    assert r.exit_code == 0, r.output
    with Image.open(grid) as im:
        assert im.width > 400
    one = tmp_path / "one.png"
    r = runner.invoke(app, ["data", "show", "fashion-mnist", "--index", "0", "-o", str(one)])
    assert r.exit_code == 0 and one.is_file()
    r = runner.invoke(app, ["data", "list"])
    assert "yes (" in r.stdout  # now cached, with its source


def test_unknown_dataset_lists_valid_names(home):
    r = runner.invoke(app, ["data", "get", "cifar"])
    assert r.exit_code == 2
    assert "Unknown dataset 'cifar'. Expected one of digits, fashion-mnist, mnist" in r.stderr


def _folder(root, classes, n=3):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / c / f"{i}.png")


def test_check_folder_ok_and_bad(tmp_path):
    good = tmp_path / "good"
    _folder(good, ["a", "b"])
    (good / "a" / "readme.txt").write_text("x")
    r = runner.invoke(app, ["data", "check", str(good)])
    assert r.exit_code == 0, r.output
    assert "readme.txt" in r.stdout and "identical files" in r.stdout and "loads" in r.stdout
    bad = tmp_path / "bad"
    _folder(bad, ["only"])
    r = runner.invoke(app, ["data", "check", str(bad)])
    assert r.exit_code == 1
    assert "would not load" in r.stdout


def test_show_folder_with_index_out_of_range(tmp_path):
    _folder(tmp_path / "f", ["a", "b"])
    r = runner.invoke(app, ["data", "show", str(tmp_path / "f"), "--index", "99"])
    assert r.exit_code == 2 and "--index 99 is outside" in r.stderr


def test_show_raw_writes_the_exact_pixels(tmp_path):
    _folder(tmp_path / "f", ["a", "b"])
    import cnnlab

    ds = cnnlab.data.load(tmp_path / "f")
    out = tmp_path / "one.png"
    r = runner.invoke(
        app, ["data", "show", str(tmp_path / "f"), "--split", "train", "--index", "1", "--raw", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.asarray(Image.open(out)), ds.train.x[1, :, :, 0])
