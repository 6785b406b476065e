"""A branching model on the page and in the report: its layers drawn as a graph (a row a level, branches side
by side, the shape on every edge, a nested model folded), each layer opening its live feature maps, and no
sideways scroll at 375 px. The run is a real one: a residual model with a nested block, trained on digits."""

import pytest

import cnnlab
from browser import artifact, draw_stroke, launch
from cnnlab.nn import Add, Conv2D, Dense, GlobalAveragePooling2D, Input, Model
from cnnlab.web import create_app
from servers import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graph_runs(tmp_path_factory):
    inputs = Input((8, 8, 1))
    left = Conv2D(4, 3, padding="same", activation="relu", name="left")(inputs)
    right = Conv2D(4, 1, name="right")(inputs)
    block = Model(inputs, Add(name="join")([left, right]), name="block")
    x = Input((8, 8, 1))
    y = Dense(10, name="logits")(GlobalAveragePooling2D(name="gap")(block(Conv2D(1, 1, name="stem")(x))))
    root = tmp_path_factory.mktemp("graph-runs")
    cnnlab.train(data="digits", module=Model(x, y, name="nested-res"), epochs=1, out=str(root / "res"), verbose=False)
    return root


@pytest.mark.parametrize("width", [1300, 375])
def test_the_page_draws_a_branching_model_as_a_graph_whose_layers_open_their_maps(graph_runs, width):
    from playwright.sync_api import sync_playwright

    with Server(create_app(graph_runs)) as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": width, "height": 900}, bypass_csp=True)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("#graph .gnode[data-node='block']")
        levels = page.eval_on_selector_all(
            "#graph > .glevel", "ls => ls.map(l => [...l.children].map(n => n.dataset.node))"
        )
        assert levels == [["stem"], ["block"], ["gap"], ["logits"]]  # the nested block is one node, folded
        inner = page.eval_on_selector_all(
            "#graph .gnested > .glevel", "ls => ls.map(l => [...l.children].map(n => n.dataset.node))"
        )
        assert inner == [["block/left", "block/right"], ["block/join"]]  # the two branches side by side
        assert page.locator("#graph .gnode[data-node='block/right'] > .gedges").text_content() == "from stem 8x8x1"
        assert (
            page.locator("#graph .gnode[data-node='block/join'] > .gedges").text_content()
            == "from left 8x8x4 right 8x8x4"
        )
        assert page.locator("#graph .gnode[data-node='block'] > .gedges").text_content() == "from stem 8x8x1"
        draw_stroke(page)  # an input: the maps are of what is drawn
        page.locator("#graph .gnested summary").click()
        page.wait_for_selector(".layer[data-layer='block/join'] canvas.fmap", state="attached")
        page.locator("#graph button[data-layer='block/join']").click()
        assert page.locator(".layer.picked").get_attribute("data-layer") == "block/join"
        assert page.locator(".layer[data-layer='block/join'] canvas.fmap").count() == 4  # its 4 live maps
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        page.screenshot(path=str(artifact(f"page-graph-{width}.png")), full_page=False)
        page.locator("#graph").screenshot(path=str(artifact(f"page-graph-view-{width}.png")))
        assert errors == []
        browser.close()


def test_the_report_shows_the_graph_and_keras_connected_to_column(graph_runs, tmp_path):
    from cnnlab.report.html import build_report

    page = build_report(cnnlab.Run.load(graph_runs / "res"), tmp_path / "report.html").read_text()
    assert "<th>Connected to</th>" in page or ">Connected to<" in page
    assert "<td class='l'>stem[0][0]</td>" in page or "stem[0][0]" in page
    assert page.count("class='glevel'") == 4 + 2 and "2 layers inside block" not in page
    assert "3 layers inside block" in page and "from left <b>8x8x4</b>, right <b>8x8x4</b>" in page
