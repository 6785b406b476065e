"""Issue 15 #3, #4, #5, #7, #8 in Debian's Chromium against real servers: every panel shows the current run and
the current input (or an empty state that says what to do), RGB runs in colour, the playground's two sides."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab
from browser import artifact, draw_stroke, set_playground
from cnnlab.web import create_app
from servers import Server

pytestmark = pytest.mark.slow
COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


@pytest.fixture(scope="module")
def served(tmp_path_factory, runs_root, real_home):
    """The real MNIST run, a real Fashion-MNIST run (one epoch), and an RGB run on a folder of coloured images."""
    root = tmp_path_factory.mktemp("state")
    shutil.copytree(runs_root / "mnist", root / "runs" / "mnist")
    (root / "runs" / "models").mkdir()  # a model saved by Keras on TensorFlow, served beside the runs
    shutil.copy2(Path(__file__).parent.parent / "fixtures" / "keras" / "seq_bn.keras", root / "runs" / "models")
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        (root / "runs" / "colours" / name).mkdir(parents=True)  # inside the served folder: samples may be read
        for i in range(8):
            img = np.clip(np.array(rgb) + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / "runs" / "colours" / name / f"{i}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(real_home))  # the session's one copy of MNIST, for the tests that read it
        mp.chdir(root)  # the server reads the run's folder dataset by the path it was trained with
        cnnlab.train(data="runs/colours", model="seed-fashion", epochs=1, out="runs/rgb", verbose=False)
        cnnlab.train(
            data="fashion-mnist", model="seed-fashion", epochs=1, batch_size=128, out="runs/fashion", verbose=False
        )
        with Server(create_app(root / "runs")) as url:
            yield url, root


@pytest.fixture
def page(browser, served):
    url, _ = served
    pg = browser.new_page(viewport={"width": 1300, "height": 1000}, bypass_csp=True)
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(url + "/")
    pg.wait_for_selector("#summary table")
    if pg.input_value("#run") != "mnist":  # the newest run opens first (tested below); these tests start on MNIST
        choose_run(pg, "mnist", "on mnist")
    yield pg
    assert pg.errors == []  # no uncaught errors, no unhandled promise rejections
    pg.close()


def empty_state(page) -> str:
    return page.locator("#bars .empty").text_content() if page.locator("#bars .empty").count() else ""


def seen_pixels(page):
    """The 'what the model sees' canvas as (H, W, 3) RGB, read back from the browser."""
    h, w, data = page.evaluate(
        "() => { const c = document.querySelector('#seen'); const d = c.getContext('2d').getImageData(0, 0, c.width,"
        " c.height).data; return [c.height, c.width, Array.from(d)]; }"
    )
    return np.array(data, np.uint8).reshape(h, w, 4)[:, :, :3]


def choose_run(page, run_id, says):
    """Pick a run and wait until the page shows it (its run-info line holds ``says``)."""
    page.select_option("#run", run_id)
    page.wait_for_function(f"document.querySelector('#run-info').textContent.includes('{says}')")


def show_sample(page, index, ready=".layer[data-layer='conv1'] canvas.fmap"):
    """Test image ``index`` of the current run, by the Test sample tab; waits for ``ready``."""
    page.click("button[data-tab=sample]")
    page.fill("#sample-index", str(index))
    page.click("#sample-go")
    page.wait_for_selector(ready)


def test_an_rgb_run_shows_its_input_and_kernels_in_colour(page, served):
    _, root = served
    choose_run(page, "rgb", "input 16x16x3")
    show_sample(page, 1, "#seen-shape:has-text('16x16x3')")
    ds = cnnlab.data.load(root / "runs" / "colours")
    assert np.array_equal(seen_pixels(page), ds.test.x[1])  # every channel, not channel 0 in gray
    page.locator(".layer[data-layer='conv1'] canvas.fmap").first.click()
    page.wait_for_selector("#zoom-filter table")
    assert page.locator("#zoom-filter table").count() == 3  # one table per input channel
    labels = page.locator("#zoom-filter .kernel-part .meta").all_text_contents()
    assert labels[1:] == ["input channel 0 (R)", "input channel 1 (G)", "input channel 2 (B)"]
    assert page.locator("#zoom-rgb").count() == 1
    page.screenshot(path=str(artifact("page-rgb.png")))
    page.keyboard.press("Escape")


def test_each_tab_shows_only_its_own_input(page):
    draw_stroke(page)
    page.wait_for_selector(".bar.top")
    page.wait_for_function("document.querySelector('#seen-shape').textContent === '28x28x1'")
    page.click("button[data-tab=upload]")  # nothing uploaded yet: the drawing's results must not stay
    assert page.locator(".bar").count() == 0 and "Choose an image file" in empty_state(page)
    assert page.locator("#maps .layer").count() == 0 and page.locator("#seen-shape").text_content() == ""
    page.click("button[data-tab=draw]")  # the drawing is still there, and so are its results
    page.wait_for_selector(".bar.top")


def test_the_same_file_chosen_twice_is_sent_twice_and_a_bad_file_clears_the_panels(page, tmp_path):
    digit = tmp_path / "digit.png"
    Image.fromarray(cnnlab.data.load("mnist").test.x[0, :, :, 0]).save(digit)
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/predict") else None)
    page.click("button[data-tab=upload]")
    page.set_input_files("#file", str(digit))
    page.wait_for_selector(".bar.top")
    page.wait_for_function("document.querySelector('#seen-shape').textContent === '28x28x1'")
    page.set_input_files("#file", str(digit))
    page.wait_for_function("document.querySelector('#seen-shape').textContent === '28x28x1'")
    page.wait_for_selector(".bar.top")
    assert len(sent) == 2 and page.locator("#file-name").text_content() == "digit.png"
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.set_input_files("#file", str(bad))
    page.wait_for_function("document.querySelector('#error').textContent.includes('not an image')")
    assert page.locator(".bar").count() == 0 and page.locator("#maps .layer").count() == 0


def test_clear_empties_every_panel(page):
    draw_stroke(page)
    page.wait_for_function("document.querySelector('#seen-shape').textContent === '28x28x1'")
    page.locator("input[value=gradcam]").check()
    page.wait_for_function("document.querySelector('#overlay-reason').textContent.startsWith('Grad-CAM')")
    page.click("#clear")
    assert page.locator("#overlay-reason").text_content() == "" and page.locator("#seen-shape").text_content() == ""
    assert page.locator(".bar").count() == 0 and "Draw a digit" in empty_state(page)
    assert not seen_pixels(page).any()
    page.locator("input[value=none]").check()


def test_a_sample_follows_the_run_it_is_shown_with(page, served):
    _, root = served
    page.click("button[data-tab=sample]")
    page.fill("#sample-index", "2")
    page.press("#sample-index", "Enter")  # Enter shows it, as the button does
    page.wait_for_function("document.querySelector('#sample-label').textContent.startsWith('mnist test[2]')")
    page.wait_for_selector(".bar.top")
    page.select_option("#run", "rgb")
    page.wait_for_function("document.querySelector('#sample-label').textContent.startsWith('colours test[2]')")
    page.wait_for_function("document.querySelector('#seen-shape').textContent === '16x16x3'")
    ds = cnnlab.data.load(root / "runs" / "colours")
    assert np.array_equal(seen_pixels(page), ds.test.x[2])
    classes = page.eval_on_selector_all(".bar", "bs => bs.map(b => b.dataset.class)")
    assert classes == list(ds.classes)


def test_an_all_black_upload_says_there_is_nothing_to_recognise(page, tmp_path, served):
    import httpx

    url, _ = served
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(black)
    page.click("button[data-tab=upload]")
    page.set_input_files("#file", str(black))
    page.wait_for_function("document.querySelector('#bars .empty')?.textContent.startsWith('Nothing to recognise')")
    assert page.locator(".bar").count() == 0 and page.locator("#maps .layer").count() == 0
    r = httpx.post(f"{url}/api/runs/mnist/explain", files={"file": ("black.png", black.read_bytes())})
    assert r.status_code == 400 and "blank" in r.json()["error"]
    r = httpx.post(f"{url}/api/runs/mnist/predict", files={"file": ("black.png", black.read_bytes())})
    assert r.json()["blank"] is True and any("blank" in n for n in r.json()["notes"])


def test_the_map_dialog_holds_focus_and_closes_on_escape_or_outside(page):
    page.click("button[data-tab=sample]")
    page.fill("#sample-index", "0")
    page.click("#sample-go")
    page.wait_for_selector(".layer[data-layer='conv1'] canvas.fmap")
    opener = page.locator(".layer[data-layer='conv1'] canvas.fmap").nth(1)
    opener.focus()
    page.keyboard.press("Enter")  # the maps open from the keyboard too
    page.wait_for_selector("#zoom-filter table")
    assert page.evaluate("document.activeElement.id") == "zoom-close"
    for _ in range(3):  # Tab and Shift+Tab stay inside the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('zoom').contains(document.activeElement)")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.getElementById('zoom').contains(document.activeElement)")
    page.keyboard.press("Escape")
    assert page.locator("#zoom").is_hidden()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith("conv1 channel 1")
    opener.click()
    page.wait_for_selector("#zoom:not([hidden])")
    page.mouse.click(5, 5)  # outside the box
    assert page.locator("#zoom").is_hidden()


def test_playground_fields_keep_their_limits_and_both_sides_show_their_windows(page):
    set_playground(page, 3, 2, "SAME")
    page.wait_for_function("document.querySelectorAll('#pg-torch-out .cell').length === 16")  # PyTorch: 4x4
    page.locator("#pg-out .cell").first.hover()  # output (0, 0): TF's window starts at (0, 0), PyTorch's at (-1, -1)
    tf = page.eval_on_selector_all("#pg-tf .cell.hit", "cs => cs.map(c => [+c.dataset.row, +c.dataset.col])")
    pt = page.eval_on_selector_all("#pg-torch .cell.hit", "cs => cs.map(c => [+c.dataset.row, +c.dataset.col])")
    assert sorted(tf) == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert sorted(pt) == [[-1, -1], [-1, 0], [0, -1], [0, 0]]
    assert page.locator("#pg-torch-trace").text_content().startswith("PyTorch: ")
    page.locator("#playground").screenshot(path=str(artifact("page-playground.png")))
    page.fill("#pg-size", "50")  # above the field's maximum of 9
    page.dispatch_event("#pg-size", "change")
    assert page.input_value("#pg-size") == "9"
    assert page.locator("#pg-trace").text_content() == "Hover an output cell."  # the old trace is gone
    page.wait_for_function("document.querySelectorAll('#pg-out .cell').length === 81")
    page.fill("#pg-kernel", "5")
    page.dispatch_event("#pg-kernel", "change")
    page.fill("#pg-size", "3")
    page.dispatch_event("#pg-size", "change")
    page.select_option("#pg-padding-mode", "VALID")  # a 5x5 window on a 3x3 input: an error, and no old grids
    page.wait_for_function("document.querySelector('#pg-padding').textContent.includes('larger than the VALID')")
    assert page.locator("#pg-tf .cell").count() == 0 and page.locator("#pg-out .cell").count() == 0


def test_a_stopped_server_is_reported_once_in_words(browser, runs_root):
    page = browser.new_page(bypass_csp=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with Server(create_app(runs_root)) as url:
        page.goto(url + "/")
        page.wait_for_selector("#summary table")
    draw_stroke(page)  # the server is gone: every pen move fails
    page.wait_for_function("document.querySelector('#error').textContent.includes('is not answering')")
    assert page.locator("#error").text_content().startswith(f"The cnnlab server at {url} is not answering")
    assert page.locator(".bar").count() == 0 and errors == []
    page.close()


def open_cell(page, layer, channel, row, col, size):
    """Enlarge ``channel`` of ``layer`` and click cell (row, col) of its ``size`` x ``size`` map."""
    page.locator(f".layer[data-layer='{layer}'] canvas.fmap").nth(channel).click()
    page.wait_for_selector("#zoom:not([hidden])")
    click_cell(page, row, col, size)


def click_cell(page, row, col, size):
    box = page.locator("#zoom-map").bounding_box()
    page.mouse.click(box["x"] + (col + 0.5) * box["width"] / size, box["y"] + (row + 0.5) * box["height"] / size)


def mnist_maps(runs_root, index):
    """The MNIST test set, the served run and its maps of test image ``index``, computed by the library."""
    ds = cnnlab.data.load("mnist")
    run = cnnlab.Run.load(runs_root / "mnist")
    return ds, run, cnnlab.inspect.feature_maps(run, ds.test.x[index : index + 1])


def test_a_click_on_a_map_shows_how_that_cell_was_computed(page, runs_root):
    """conv1 of seed-mnist5x5 is 5x5 VALID (24x24 maps): the page shows the cell the map holds, its 5x5 patch
    and kernel, and the sum + bias; the playground then takes that patch and kernel."""
    ds, run, maps = mnist_maps(runs_root, 4)
    show_sample(page, 4)
    open_cell(page, "conv1", 3, 10, 7, 24)
    page.wait_for_selector("#zoom-cell h4")
    expected = maps["conv1"][0, 10, 7, 3]
    title = page.locator("#zoom-cell h4").text_content()
    assert title.startswith("cell (10, 7) of conv1 channel 3 = ")
    assert float(title.rsplit("= ", 1)[1]) == pytest.approx(expected, abs=1e-3)
    assert page.locator("#zoom-cell table.cellgrid").count() == 3  # patch, kernel, products
    assert page.locator("#zoom-cell table.cellgrid").first.locator("td").count() == 25
    page.locator(".zoom-box").screenshot(path=str(artifact("page-cell.png")))
    page.click("#to-playground")
    page.wait_for_function("document.querySelector('#pg-source').textContent.startsWith('Your model')")
    page.wait_for_function("document.querySelectorAll('#pg-out .cell').length === 1")
    shown = float(page.locator("#pg-out .cell").text_content())
    weight = run.model.body[0].weight.detach().numpy()[3, 0]  # (kh, kw) of output channel 3
    patch = ds.test.x[4, 10:15, 7:12, 0] / 255
    assert shown == pytest.approx(float((patch * weight).sum()), abs=2e-3)  # the sum of products, no bias


def test_pooling_and_softmax_are_explained_too(page, runs_root):
    ds, run, maps = mnist_maps(runs_root, 4)
    show_sample(page, 4, ".layer[data-layer='pool1'] canvas.fmap")
    open_cell(page, "pool1", 3, 5, 5, 12)
    page.wait_for_selector("#zoom-cell td.win")
    window = maps["conv1"][0, 10:12, 10:12, 3]
    assert float(page.locator("#zoom-cell td.win").text_content()) == pytest.approx(window.max(), abs=1e-3)
    page.keyboard.press("Escape")
    page.locator(".layer[data-layer='logits'] .scores").click()
    page.wait_for_selector("#zoom-cell table.softmax")
    rows = page.locator("#zoom-cell table.softmax tr").count()
    assert rows == 1 + 10 + 1  # header, one per class, the sum
    probs = run.predict(ds.test.x[4:5])[0]
    shown = [
        float(t)
        for t in page.eval_on_selector_all(
            "#zoom-cell table.softmax tr td:nth-child(4)", "tds => tds.map(t => t.textContent)"
        )[:10]
    ]
    np.testing.assert_allclose(shown, probs, atol=2e-3)
    page.keyboard.press("Escape")


def test_maps_are_readable_labelled_scaled_and_sortable(page, runs_root):
    ds, run, maps = mnist_maps(runs_root, 6)
    show_sample(page, 6)
    names = page.locator(".layer[data-layer='logits'] .score span:first-child").all_text_contents()
    assert names == list(run.classes)  # the class scores carry the class names
    shown = [float(t) for t in page.locator(".layer[data-layer='logits'] .score span:last-child").all_text_contents()]
    np.testing.assert_allclose(shown, maps["logits"][0], atol=2e-3)
    top = (
        "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 0; i < d.length; i += 4) if (d[i] === 253 && d[i + 1] === 231 && d[i + 2] === 37) return true;"
        " return false; }"
    )
    brightest = "cs => cs.map(" + top + ")"
    per_channel = page.eval_on_selector_all(".layer[data-layer='relu1'] canvas.fmap", brightest)
    page.select_option("#map-scale", "layer")
    per_layer = page.eval_on_selector_all(".layer[data-layer='relu1'] canvas.fmap", brightest)
    relu1 = maps["relu1"][0]
    live = relu1.max(axis=(0, 1)) > relu1.min(axis=(0, 1))
    assert per_channel == live.tolist()  # each map reaches the top colour of its own range
    assert per_layer == (relu1.max(axis=(0, 1)) >= relu1.max() - 1e-6).tolist()  # only the layer's maximum does
    page.select_option("#map-scale", "network")  # one range for every map: relu1's colour bar spans the network's
    bar = [float(t) for t in page.locator(".layer[data-layer='relu1'] .colour-bar span").all_text_contents()]
    spatial = [m[0] for m in maps.values() if m.ndim == 4]
    extreme = max(-min(m.min() for m in spatial), max(m.max() for m in spatial))  # conv1 is below 0: diverging
    assert bar == pytest.approx([-extreme, extreme], rel=1e-3)
    page.select_option("#map-scale", "channel")
    # conv1 comes before its ReLU and holds negative values: a diverging scale, symmetric around 0
    bar = page.locator(".layer[data-layer='conv1'] .colour-bar span").all_text_contents()
    extreme = max(-maps["conv1"].min(), maps["conv1"].max())
    assert [float(t) for t in bar] == pytest.approx([-extreme, extreme], rel=1e-3)
    page.select_option("#map-scale", "channel")
    page.select_option("#map-order", "activation")
    order = page.eval_on_selector_all(".layer[data-layer='relu1'] canvas.fmap", "cs => cs.map(c => +c.dataset.channel)")
    means = relu1.mean(axis=(0, 1))
    assert np.all(np.diff(means[order]) <= 1e-2)  # strongest first (means from 8-bit maps: a small tolerance)
    page.select_option("#map-order", "index")


@pytest.mark.parametrize("method", ["smoothgrad", "occlusion"])
def test_any_class_can_be_questioned_with_any_method(page, method):
    show_sample(page, 6)
    page.locator(f"input[value={method}]").check()
    page.wait_for_function("document.querySelector('#overlay-reason').textContent.includes(\"for '\")")
    page.select_option("#target", "3")
    words = {"smoothgrad": "SmoothGrad", "occlusion": "Occlusion"}[method]
    page.wait_for_function(f"document.querySelector('#overlay-reason').textContent.startsWith(\"{words} for '3'\")")
    alpha = page.evaluate(
        "() => { const c = document.querySelector('#overlay'); const d = c.getContext('2d').getImageData(0, 0,"
        " c.width, c.height).data; let clear = 0; for (let i = 3; i < d.length; i += 4) clear += d[i] === 0;"
        " return clear / (d.length / 4); }"
    )
    assert alpha > 0.05  # low heat is see-through: the digit stays visible under it
    page.locator("input[value=none]").check()


def test_the_test_set_panel_shows_accuracy_confusion_and_clickable_mistakes(page, runs_root):
    ds = cnnlab.data.load("mnist")
    run = cnnlab.Run.load(runs_root / "mnist")
    predicted = run.predict(ds.test.x).argmax(1)
    page.click("#evaluate")
    page.wait_for_function("document.querySelector('#eval-summary').textContent.startsWith('test accuracy')")
    wrong = np.flatnonzero(predicted != ds.test.y)
    assert f"{len(wrong):,} of 10,000 wrong" in page.locator("#eval-summary").text_content()
    cells = page.eval_on_selector_all("#confusion td", "tds => tds.map(t => +t.textContent)")
    expected = np.bincount(ds.test.y * 10 + predicted, minlength=100)
    assert cells == expected.tolist()  # the confusion matrix, from predictions made here
    page.locator("#test-set").screenshot(path=str(artifact("page-test-set.png")))
    shown = page.eval_on_selector_all(".mistake", "ms => ms.map(m => +m.dataset.index)")
    assert shown == wrong[: len(shown)].tolist() and len(shown) == min(48, len(wrong))
    first = int(wrong[0])
    page.locator(".mistake").first.click()
    page.wait_for_function(f"document.querySelector('#sample-label').textContent.startsWith('mnist test[{first}]')")
    page.wait_for_selector("#sample-verdict.wrong")
    verdict = page.locator("#sample-verdict").text_content()
    assert verdict.startswith(f"predicted {predicted[first]} (") and verdict.endswith(
        f"label {ds.test.y[first]}: wrong"
    )
    right = int(np.flatnonzero(predicted == ds.test.y)[0])
    page.fill("#sample-index", str(right))
    page.press("#sample-index", "Enter")
    page.wait_for_selector("#sample-verdict.right")


def test_two_runs_curves_on_one_chart(page, served):
    import httpx

    url, _ = served
    r = httpx.get(f"{url}/api/compare/curves.png", params=[("run", "mnist"), ("run", "rgb")], timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    r = httpx.get(f"{url}/api/compare/curves.png", params=[("run", "mnist")], timeout=60)
    assert r.status_code == 400 and "two or more runs" in r.json()["error"]
    page.select_option("#compare", "rgb")
    page.wait_for_function("document.querySelector('#compare-curves').naturalWidth > 0")


CONTRAST = """() => {
  const lum = (rgb) => {
    const c = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const parse = (s) => s.match(/[\\d.]+/g).map(Number);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0.5) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("[hidden]") || !el.offsetParent || el.closest("#error")) continue;
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join(" ").trim();
    if (!text || el.closest("td[style]")) continue;  // kernel cells pick black or white text by their colour
    const fg = lum(parse(getComputedStyle(el).color).slice(0, 3)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName}#${el.id}.${el.className}: ${text.slice(0, 30)} (${ratio.toFixed(2)})`);
  }
  return low;
}"""


def test_first_load_opens_the_newest_run_says_what_to_do_and_names_everything(browser, served):
    url, root = served
    page = browser.new_page(viewport={"width": 1300, "height": 1000}, bypass_csp=True)
    page.goto(url + "/")
    page.wait_for_selector("#summary table")
    newest = max(("mnist", "rgb", "fashion"), key=lambda r: (root / "runs" / r / "metrics.jsonl").stat().st_mtime)
    assert page.input_value("#run") == newest
    assert "Draw a digit" in page.locator("#bars .empty").text_content()  # says what to do
    page.click("button[data-tab=sample]")
    page.click("#sample-go")
    page.wait_for_selector(".layer canvas.fmap")
    page.click("#evaluate")
    page.wait_for_selector(".mistake canvas, #eval-summary:has-text('0 of')")
    unnamed = page.eval_on_selector_all("canvas", "cs => cs.filter(c => !c.getAttribute('aria-label')).map(c => c.id)")
    assert unnamed == []
    roles = page.eval_on_selector_all(".tabs button", "bs => bs.map(b => [b.getAttribute('role'), b.ariaSelected])")
    assert roles == [["tab", "false"], ["tab", "false"], ["tab", "true"]]
    assert page.evaluate(CONTRAST) == []  # text at least 4.5:1 against what is behind it (WCAG 2.1 AA)
    page.evaluate(
        "() => { const p = document.createElement('p'); p.id = 'faint'; p.style.color = '#bbb';"
        " p.textContent = 'faint'; document.querySelector('main').append(p); }"
    )
    assert [line for line in page.evaluate(CONTRAST) if line.startswith("P#faint")]  # the check can fail
    page.close()


@pytest.mark.parametrize("width", [1400, 375])
def test_a_fashion_mnist_run_fits_the_window_and_names_its_classes(browser, served, width):
    """The Flatten of seed-fashion is 3,136 values (it made the page 6,299 px wide); its classes have spaces and
    slashes ("T-shirt/top")."""
    url, _ = served
    ds = cnnlab.data.load("fashion-mnist")
    page = browser.new_page(viewport={"width": width, "height": 900}, bypass_csp=True)
    page.goto(url + "/")
    page.wait_for_selector("#summary table")
    choose_run(page, "fashion", "on fashion-mnist")
    show_sample(page, 0, ".layer[data-layer='flatten'] canvas.fmap")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    names = page.eval_on_selector_all(".bar", "bs => bs.map(b => b.dataset.class)")
    assert names == list(ds.classes) and "T-shirt/top" in names
    assert page.locator("#sample-label").text_content() == f"fashion-mnist test[0]: label {ds.classes[ds.test.y[0]]}"
    page.screenshot(path=str(artifact(f"page-fashion-{width}.png")))
    page.close()


def test_a_keras_file_is_looked_inside_on_the_page(page):
    """seq_bn.keras, saved by Keras: its layers under their Keras names, its BatchNorm and its probabilities."""
    choose_run(page, "models/seq_bn.keras", "seq_bn.keras")
    draw_stroke(page)
    page.wait_for_selector(".bar.top")
    assert page.locator(".bar").count() == 10
    page.wait_for_selector(".layer[data-layer='bn1'] canvas.fmap")
    shown = page.eval_on_selector_all(".layer", "ls => ls.map(l => l.dataset.layer)")
    assert shown == ["conv1", "bn1", "pool1", "conv2", "act2", "avg2", "drop", "flatten", "fc1", "logits", "probs"]
    assert "uint8 pixels are scaled by 1/255" in page.locator("#notes").text_content()
