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


def draw_stroke(page, x=100, y=50, steps=25, dx=3, dy=7):
    """A pen stroke on the page's drawing pad, as a person draws one."""
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.down()
    for i in range(steps):
        page.mouse.move(box["x"] + x + i * dx, box["y"] + y + i * dy)
    page.mouse.up()


def set_playground(page, size: int, kernel: int, padding: str = "SAME"):
    """The playground's fields, changed as a person changes them."""
    page.locator("#playground").scroll_into_view_if_needed()
    for field, value in (("#pg-size", size), ("#pg-kernel", kernel)):
        page.fill(field, str(value))
        page.dispatch_event(field, "change")
    page.select_option("#pg-padding-mode", padding)
