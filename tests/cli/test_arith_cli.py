"""`cnnlab conv`, `cnnlab pool`, `cnnlab padding` through Typer's runner and as a real process."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cnnlab.cli import app

runner = CliRunner()
IMAGE = "1 2 3; 4 5 6; 7 8 9"
TAPS = ["--kernel", "1 1; 1 1", "--kernel", "10 10; 10 10", "--kernel", "-1 -1; -1 -1"]


def run(*args):
    return runner.invoke(app, list(args))


def test_conv_same_json():
    r = run("conv", "--input", IMAGE, "--kernel", "1 1; 1 1", "--strides", "1", "--padding", "same", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["input_shape"] == [1, 3, 3, 1] and d["kernel_shape"] == [2, 2, 1, 1]
    assert d["output_shape"] == [1, 3, 3, 1]
    assert d["padding"] == {"top": 0, "bottom": 1, "left": 0, "right": 1}
    assert np.array(d["output"])[0, :, :, 0].tolist() == [[12, 16, 9], [24, 28, 15], [15, 17, 9]]


def test_conv_text_shows_padding_picture_and_output():
    r = run("conv", "--input", IMAGE, "--kernel", "1 1; 1 1", "--padding", "SAME", "--trace")
    assert r.exit_code == 0, r.output
    assert "top 0, bottom 1, left 0, right 1" in r.stdout
    assert "  7 8 9 ·\n  · · · ·\n" in r.stdout  # the padded picture: padding after, not before
    assert "out[2,2,0] = 9·1 + pad·1 + pad·1 + pad·1 = 9 + 0 + 0 + 0 = 9" in r.stdout
    assert "out = ceil(3/1) = 3" in r.stdout


def test_repeated_kernels_then_pool_from_saved_output(tmp_path):
    saved = tmp_path / "v.npy"
    r = run("conv", "--input", IMAGE, *TAPS, "--padding", "valid", "--save", str(saved), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["output"][0] == [
        [[12, 120, -12], [16, 160, -16]],
        [[24, 240, -24], [28, 280, -28]],
    ]
    r = run(
        "pool",
        "--mode",
        "max",
        "--input",
        str(saved),
        "--size",
        "2",
        "--strides",
        "1",
        "--padding",
        "same",
        "--json",
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["output"][0] == [[[28, 280, -12], [28, 280, -16]], [[28, 280, -24], [28, 280, -28]]]
    assert any("not a 0 that competes" in n for n in d["notes"])


def test_figure_is_a_png(tmp_path):
    out = tmp_path / "fig.png"
    r = run("conv", "--input", IMAGE, "--kernel", "1 1; 1 1", "--padding", "same", "--figure", str(out))
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 600 and im.height > 300


def test_pool_avg_text():
    r = run(
        "pool",
        "--mode",
        "avg",
        "--input",
        "12 16; 24 28",
        "--size",
        "2",
        "--strides",
        "1",
        "--padding",
        "same",
        "--trace",
    )
    assert r.exit_code == 0, r.output
    assert "out[1,1,0] = (28) / 1 = 28" in r.stdout


def test_padding_command_json():
    r = run("padding", "--size", "28", "--kernel", "3", "--stride", "2", "--padding", "same", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["out"], d["before"], d["after"], d["torch_padding"]) == (14, 0, 1, None)


def test_padding_json_gives_the_note_of_the_op_asked_for():
    """The JSON's PyTorch note is the one the text prints for the same --op; pooling's differs from conv's."""
    notes = {}
    for op in ("conv", "max", "avg"):
        args = ["padding", "--size", "7", "--kernel", "2", "--stride", "2", "--padding", "same", "--op", op]
        notes[op] = json.loads(run(*args, "--json").stdout)["pytorch"]
        assert notes[op] == run(*args).stdout.splitlines()[-1]
    assert "value=-inf" in notes["max"] and "value=-inf" not in notes["conv"]  # max pooling pads with -inf
    assert len(set(notes.values())) == 3


@pytest.mark.parametrize(
    "args,message",
    [
        (["conv", "--input", "1 2; 3", "--kernel", "1"], "ragged rows"),
        (["conv", "--input", "1 a; 3 4", "--kernel", "1"], "'a', which is not a number"),
        (["conv", "--input", "", "--kernel", "1"], "is empty"),
        (
            ["conv", "--input", "1 2; 3 4", "--kernel", "1 1; 1 1", "--padding", "full"],
            "Unknown padding 'full'",
        ),
        (["conv", "--input", "1 2; 3 4", "--kernel", "1 1 1; 1 1 1; 1 1 1"], "larger than the VALID input"),
        (["conv", "--input", "1 2; 3 4", "--kernel", "1", "--strides", "0"], "--strides '0' is below 1"),
        (["pool", "--input", "1 2; 3 4", "--size", "0"], "--size '0' is below 1"),
        (["pool", "--input", "1 2; 3 4", "--mode", "min"], "Unknown pooling mode 'min'"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr
    assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1


def test_kernel_channels_differ_from_input(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4, 4, 2)))
    r = run("conv", "--input", str(tmp_path / "x.npy"), "--kernel", "1 1; 1 1")
    assert r.exit_code == 2
    assert "kernel has 1 input channel(s)" in r.stderr and "input has 2" in r.stderr


def test_python_dash_m_and_console_script_as_real_processes():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnlab",
            "conv",
            "--input",
            IMAGE,
            "--kernel",
            "1 1; 1 1",
            "--padding",
            "same",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(r.stdout)["output_shape"] == [1, 3, 3, 1]
    bad = subprocess.run(
        [sys.executable, "-m", "cnnlab", "conv", "--input", "1 2; 3", "--kernel", "1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "ragged rows" in bad.stderr


def test_absurd_padding_is_a_clear_error_not_a_memory_error():
    r = run("conv", "--input", "1 2; 3 4", "--kernel", "1", "--padding", "0,30000,0,30000")
    assert r.exit_code == 2
    assert "This would take 900,120,004 padded input cells; the limit is 16,777,216" in r.stderr
