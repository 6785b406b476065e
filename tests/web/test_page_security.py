"""A run whose class names are markup, shown by the real page in Debian's headless Chromium: text, never code."""

import numpy as np
import pytest
from PIL import Image

import cnnlab
from browser import launch
from cnnlab.web import create_app
from servers import Server

pytestmark = pytest.mark.slow
HOSTILE = '<img src=x onerror="window.__xss = 1">'


@pytest.fixture(scope="module")
def hostile_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    for name, level in ((HOSTILE, 40), ("plain", 200)):
        (root / "data" / name).mkdir(parents=True)
        for i in range(6):
            img = np.clip(level + rng.normal(0, 10, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / "data" / name / f"{i}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(root / "home"))
        out = root / "runs" / "<i>run"  # a run id that is markup too
        cnnlab.train(
            data=str(root / "data"), model="seed-mnist5x5", epochs=1, out=str(out), size=[28, 28], verbose=False
        )
    with Server(create_app(root / "runs")) as url:
        yield url, root


def test_hostile_class_names_show_as_text_under_a_strict_policy(hostile_url, tmp_path):
    from playwright.sync_api import sync_playwright

    url, root = hostile_url
    image = tmp_path / "dark.png"
    Image.fromarray(np.clip(40 + np.random.default_rng(1).normal(0, 10, (8, 8)), 0, 255).astype(np.uint8)).save(image)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        response = page.goto(url + "/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector("#summary table")
        page.click("button[data-tab=upload]")
        page.set_input_files("#file", str(image))
        page.wait_for_selector(".bar")
        names = page.eval_on_selector_all(".bar span:first-child", "spans => spans.map(s => s.textContent)")
        assert HOSTILE in names  # shown literally
        assert page.evaluate("window.__xss") is None  # and never run
        assert page.locator(".bar img").count() == 0
        assert page.eval_on_selector("#run option", "o => o.textContent") == "<i>run"
        browser.close()
