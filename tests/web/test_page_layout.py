"""Issue 15 #1: the page fits the window at 1400, 600 and 375 px, the Flatten vector included."""

import pytest

from browser import artifact

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("width", [1400, 600, 375])
def test_no_horizontal_scroll_at_any_width_with_every_layer_shown(browser, base_url, width):
    page = browser.new_page(viewport={"width": width, "height": 900}, bypass_csp=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/")
    page.wait_for_selector("#summary table")
    page.click("button[data-tab=sample]")
    page.fill("#sample-index", "0")
    page.click("#sample-go")
    page.wait_for_selector(".layer[data-layer='flatten'] canvas")
    page.wait_for_selector(".layer[data-layer='logits'] .score")
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"the page is {wide} px wide in a {width} px window"
    flatten = page.locator(".layer[data-layer='flatten'] canvas.fmap").bounding_box()
    assert flatten["x"] + flatten["width"] <= width and flatten["height"] > 20  # wrapped into rows, not a strip
    page.screenshot(path=str(artifact(f"page-{width}.png")), full_page=True)
    assert errors == []
    page.close()


def test_api_docs_render_with_no_other_origin_reachable(browser, base_url):
    """Issue 15 #6: /docs draws every endpoint from files this server sends; any other origin is cut off."""
    page = browser.new_page()
    elsewhere = []

    def only_this_server(route):
        if route.request.url.startswith(base_url):
            return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort()

    page.route("**/*", only_this_server)
    page.goto(base_url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "ps => ps.map(p => p.textContent)")
    assert "/api/runs/{run_id}/predict" in " ".join(paths) and "/api/arith/conv" in " ".join(paths)
    assert elsewhere == []
    page.close()
