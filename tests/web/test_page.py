"""The page end to end in Debian's headless Chromium against the real server."""

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

import cnnlab
from browser import artifact, draw_stroke, launch, set_playground
from cnnlab.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page(base_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        # Playwright evaluates wait_for_function strings, which the page's CSP forbids: test_page_security.py
        # checks the policy itself, in a page that keeps it
        pg = browser.new_page(viewport={"width": 1300, "height": 1000}, bypass_csp=True)
        pg.errors = []
        pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.goto(base_url + "/")
        pg.wait_for_selector("#summary table")
        yield pg
        browser.close()


def bar_values(page):
    return page.eval_on_selector_all(".bar", "bars => bars.map(b => [b.dataset.class, +b.dataset.probability])")


def test_draw_a_stroke_and_bars_appear_summing_to_one(page):
    draw_stroke(page)
    page.wait_for_selector(".bar.top")
    bars = bar_values(page)
    assert len(bars) == 10
    assert sum(p for _, p in bars) == pytest.approx(1, abs=1e-3)
    top = page.locator(".bar.top").get_attribute("data-class")
    assert top == max(bars, key=lambda b: b[1])[0]
    page.screenshot(path=str(artifact("page-draw.png")))


def test_every_layers_feature_maps_render(page, runs_root):
    page.wait_for_selector(".layer[data-layer='logits']")
    expected = [layer.name for layer in cnnlab.Run.load(runs_root / "mnist").model.layers]
    shown = page.eval_on_selector_all(".layer", "ls => ls.map(l => l.dataset.layer)")
    assert shown == expected
    counts = page.eval_on_selector_all(".layer", "ls => ls.map(l => l.querySelectorAll('canvas.fmap, .score').length)")
    assert counts[0] == 32 and all(c >= 1 for c in counts)  # conv1 has all 32 channels on the page
    visible = page.eval_on_selector_all(
        ".layer[data-layer='conv1'] canvas.fmap", "cs => cs.filter(c => c.checkVisibility()).length"
    )
    assert visible == 16  # the first 16 in view, the rest folded
    assert page.locator(".layer[data-layer='conv1'] details summary").text_content() == "16 more channels"
    page.locator(".layer[data-layer='pool1'] canvas.fmap").nth(2).click()
    page.wait_for_function("document.querySelector('#zoom-filter table') !== null")
    assert "conv1 channel 2" in page.locator("#zoom-filter-title").text_content()
    assert page.locator("#zoom-filter td").count() == 25  # the 5x5 kernel that made the map
    page.screenshot(path=str(artifact("page-zoom.png")))
    page.locator("#zoom-close").click()


def test_upload_a_test_digit_matches_cnnlab_predict(page, tmp_path, runs_root):
    ds = cnnlab.data.load("mnist")
    path = tmp_path / "digit.png"
    Image.fromarray(ds.test.x[8, :, :, 0]).save(path)
    page.click("button[data-tab=upload]")
    page.set_input_files("#file", str(path))
    page.wait_for_function("document.querySelector('#seen-shape').textContent === '28x28x1'")
    page.wait_for_timeout(300)
    r = CliRunner().invoke(app, ["predict", str(runs_root / "mnist"), str(path), "--json"])
    expected = json.loads(r.stdout)[0]["top"][0]["class"]
    page.wait_for_function(f"document.querySelector('.bar.top')?.dataset.class === '{expected}'", timeout=10000)
    page.screenshot(path=str(artifact("page-upload.png")))


def test_playground_reproduces_the_3x3_2x2_same_example(page):
    set_playground(page, 3, 2, "SAME")
    page.wait_for_function("document.querySelectorAll('#pg-out .cell').length === 9")
    assert (
        "TensorFlow pads top 0, bottom 1, left 0, right 1 -> output 3x3" in page.locator("#pg-padding").text_content()
    )
    outs = [float(t) for t in page.locator("#pg-out .cell").all_text_contents()]
    assert outs == [12, 16, 9, 24, 28, 15, 15, 17, 9]
    page.locator("#pg-out .cell").last.hover()
    hits = page.eval_on_selector_all(
        "#pg-tf .cell.hit", "cs => cs.map(c => [c.dataset.row, c.dataset.col, c.dataset.pad || '0'])"
    )
    assert sorted(hits) == [["2", "2", "0"], ["2", "3", "1"], ["3", "2", "1"], ["3", "3", "1"]]
    assert "9·1 + pad·1 + pad·1 + pad·1 = 9 + 0 + 0 + 0 = 9" in page.locator("#pg-trace").text_content()
    page.screenshot(path=str(artifact("page-playground.png")))


def test_test_sample_tab_predicts_the_chosen_test_image(page, runs_root):
    ds = cnnlab.data.load("mnist")
    expected = str(cnnlab.Run.load(runs_root / "mnist").predict(ds.test.x[3:4]).argmax())
    page.click("button[data-tab=sample]")
    page.fill("#sample-index", "3")
    page.click("#sample-go")
    page.wait_for_function(f"document.querySelector('#sample-label').textContent.endsWith('label {ds.test.y[3]}')")
    page.wait_for_function(f"document.querySelector('.bar.top')?.dataset.class === '{expected}'", timeout=10000)
    page.click("button[data-tab=draw]")


def test_overlay_toggle_and_no_console_errors(page):
    page.locator("input[value=saliency]").check()
    page.wait_for_function("document.querySelector('#overlay-reason').textContent.startsWith('Saliency')")
    page.locator("input[value=gradcam]").check()
    page.wait_for_function("document.querySelector('#overlay-reason').textContent.startsWith('Grad-CAM')")
    for value, words in (("gradcam++", "Grad-CAM++"), ("layercam", "LayerCAM"), ("integrated_gradients", "Integrated")):
        page.locator(f'input[value="{value}"]').check()
        page.wait_for_function(f"document.querySelector('#overlay-reason').textContent.startsWith('{words}')")
    assert page.errors == []
