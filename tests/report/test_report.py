"""The report is one self-contained page that a real browser shows whole."""

import re

import pytest

import cnnlab
from browser import artifact, launch
from cnnlab.report import build_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(digits_run, tmp_path_factory):
    run_dir, home = digits_run
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(home))
        path = build_report(cnnlab.Run.load(run_dir), tmp_path_factory.mktemp("report") / "report.html")
    return path, path.read_text()


def test_sections_and_numbers(report):
    _, page = report
    for title in (
        "Model",
        "Data",
        "Training",
        "Training health",
        "Test metrics",
        "Misclassified test images",
        "First-layer filters",
        "Feature maps through every layer",
        "The first convolution's arithmetic",
    ):
        assert f"<h2>{title}" in page, title
    assert "3·3·1·32 + 32 = 320" in page  # a summary formula
    assert "Total params:" in page
    assert re.search(r"test accuracy 0\.\d{4}", page)
    assert "pad before" in page and "SAME: out = ceil(8/1) = 8" in page  # digits are 8x8
    assert "No layer died" in page  # from the run's stats.jsonl


def test_the_training_health_section_names_a_layer_that_died(dead_digits_run, tmp_path, monkeypatch):
    run_dir, home = dead_digits_run
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    page = build_report(cnnlab.Run.load(run_dir), tmp_path / "report.html").read_text()
    section = page.split("<h2>Training health</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Dead layers: conv2 (all 64 channels never fired)" in section and "conv1" not in section.split("<img")[0]
    assert section.count("<img") == 1


def test_self_contained(report):
    _, page = report
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no network references"
    assert page.count('src="data:image/png;base64,') >= 10


def test_opens_in_headless_chromium_with_no_missing_image_or_console_error(report):
    from playwright.sync_api import sync_playwright

    path, _ = report
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        total = page.evaluate("document.images.length")
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
        page.screenshot(path=str(artifact("report.png")), full_page=False)
        browser.close()
    assert total >= 10 and broken == 0
    assert errors == []


def test_every_image_says_what_it_shows_and_the_gradcam_titles_are_readable(report):
    """Issue 15 #8: alt text on every figure; the mistakes' Grad-CAM figures are shown at their own size, so
    their 9 pt titles (13.75 px at 110 dpi) are not shrunk to ~4 px as they were in a narrower card."""
    from playwright.sync_api import sync_playwright

    path, html = report
    alts = re.findall(r'<img src="data:image/png;base64,[^"]*" alt="([^"]*)"', html)
    assert len(alts) >= 10 and all(len(a) > 10 for a in alts)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        shown = page.eval_on_selector_all(".card img", "imgs => imgs.map(i => [i.width, i.naturalWidth])")
        browser.close()
    assert shown and all(width >= 0.98 * natural for width, natural in shown), shown


def test_a_dead_channel_is_called_dead_not_drawn_as_a_pattern():
    """A ReLU channel with zero weights and a negative bias is 0 for every input: no start can make it fire."""
    import torch

    from cnnlab.inspect import maximize
    from cnnlab.nn import Conv2D, Dense, Flatten, Sequential

    model = Sequential([Conv2D(2, 3, activation="relu"), Flatten(), Dense(2)], input_shape=(8, 8, 1))
    with torch.no_grad():
        model.body[0].weight[1].zero_()
        model.body[0].bias[1] = -1.0
    dead = maximize(model, (8, 8, 1), "conv1", 1, steps=10)
    assert dead.activation == 0 and "does not fire for any of them, a dead unit" in dead.note
    model.body[0].bias[0].data.fill_(0.5)
    live = maximize(model, (8, 8, 1), "conv1", 0, steps=10)
    assert live.note == "" and live.activation > 0
