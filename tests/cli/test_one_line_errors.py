"""Issue 14 #8: mistakes a user can make on the command line end in one clear line, never a traceback."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import cnnlab
from cnnlab.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))


@pytest.fixture
def run_dir(tmp_path):
    cnnlab.train(data="digits", model="seed-fashion", epochs=1, out=str(tmp_path / "r"), verbose=False)
    return tmp_path / "r"


def one_line_error(args, says, code=None):
    r = runner.invoke(app, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # no traceback
    assert r.exit_code == (code if code is not None else r.exit_code) and r.exit_code != 0
    assert says in r.output, r.output
    return r


def unwritable(tmp_path):
    """A path no file can be written to, for any user (root included): its parent is a file."""
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file" / "out.png"


def test_an_unwritable_figure_or_output_is_one_line(tmp_path, run_dir):
    target = unwritable(tmp_path)
    image = str(tmp_path / "digit.png")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(image)
    says = f"Cannot write {target.parent}"
    one_line_error(["conv", "--input", "1 2; 3 4", "--kernel", "1", "--figure", str(target)], says)
    one_line_error(["pool", "--input", "1 2; 3 4", "--figure", str(target)], says)
    one_line_error(["predict", str(run_dir), image, "--figure", str(target)], says)
    one_line_error(["report", str(run_dir), "-o", str(target)], says)
    one_line_error(["data", "show", "digits", "-o", str(target)], says)
    one_line_error(["inspect", str(run_dir), "--image", image, "-o", str(target)], f"Cannot write {target}")
    one_line_error(["eval", str(run_dir), "-o", str(target)], f"Cannot write {target}")
    one_line_error(["conv", "--input", "1 2; 3 4", "--kernel", "1", "--figure", str(tmp_path)], "it is a folder")
    one_line_error(["export", str(run_dir), "-o", ""], "it is a folder. Name a file.")  # "" is the current folder


def test_a_port_outside_1_to_65535_is_a_usage_error():
    one_line_error(["serve", ".", "--port", "99999"], "Invalid value for '--port'", code=2)


def test_a_size_no_machine_can_hold_is_refused_before_any_work(tmp_path, real_home, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(real_home))
    out = str(tmp_path / "big")  # 60,000 MNIST images at 6000x6000: 2.2 TB
    one_line_error(["train", "--data", "digits", "--size", "1000000,1000000", "--out", out], "above the limit of")
    one_line_error(["train", "--data", "mnist", "--size", "6000,6000", "--out", out], "more than half of this")


@pytest.mark.parametrize(
    ("state", "says"),
    [
        (torch.zeros(3), "holds a Tensor, not a cnnlab checkpoint"),
        ([1, 2], "holds a list, not a cnnlab checkpoint"),
        ({"model": {}, "optimizer": {}}, "has no valid epoch"),
        ({"epoch": 1, "model": {"w": torch.zeros(1)}, "optimizer": {}}, "checkpoint of a different model"),
    ],
    ids=["tensor", "list", "no-epoch", "other-model"],
)
def test_a_damaged_checkpoint_is_one_line_on_resume(run_dir, state, says):
    torch.save(state, run_dir / "state.pt")
    one_line_error(["train", "--resume", str(run_dir), "--epochs", "2"], says)


def test_another_runs_checkpoint_of_the_same_model_is_refused(tmp_path, run_dir):
    cnnlab.train(data="digits", model="seed-fashion", epochs=1, out=str(tmp_path / "other"), verbose=False)
    shutil.copy(tmp_path / "other" / "state.pt", run_dir / "state.pt")
    one_line_error(["train", "--resume", str(run_dir), "--epochs", "2"], "is another run's checkpoint")
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "other"), "--epochs", "2"])  # its own resumes
    assert r.exit_code == 0, r.output
