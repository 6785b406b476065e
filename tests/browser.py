"""Headless Chromium for tests: Debian's /usr/bin/chromium driven by Playwright, never a downloaded browser."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# screenshots worth a look after a run; outside the checkout, since the suite writes nothing into it
ARTIFACTS = Path(os.environ.get("CNNLAB_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "cnnlab-test-artifacts")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():  # a missing browser is a failure, never a skip: make test installs it as root
        pytest.fail("Chromium is not installed: run `sudo apt-get install -y chromium` (make test does it as root)")
    return path


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
