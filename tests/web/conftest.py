import pytest

from cnnlab.web import create_app
from servers import Server


@pytest.fixture(scope="session")
def base_url(runs_root):
    with Server(create_app(runs_root, max_upload_bytes=200_000, max_pixels=1000 * 1000)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium for one module's page tests (a module of its own may drive Playwright itself)."""
    from playwright.sync_api import sync_playwright

    from browser import launch

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
