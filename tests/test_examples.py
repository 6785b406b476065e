"""examples/ are part of the product: they must run and stay short."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lowlevel_fashion.py"


def test_lowlevel_example_is_under_60_lines():
    assert len(EXAMPLE.read_text().splitlines()) < 60


@pytest.mark.slow
def test_lowlevel_example_trains_on_real_fashion_mnist(real_home):
    env = {"CNNLAB_HOME": str(real_home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--limit", "6000"], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", r.stdout).group(1))
    assert accuracy > 0.75  # 6,000 images, one epoch: well above chance (0.10)
