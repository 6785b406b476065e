"""Issue 29 on the page: the Training health panel names the layer made to die and says a healthy run has none,
with its figure drawn; "Check the explanations" shows the library's numbers beside the overlay, the flagged
methods marked and the overlay's own method highlighted. The API answers what the library computes."""

import io
import shutil

import httpx
import pytest
from PIL import Image

import cnnlab
from browser import artifact, launch
from cnnlab.inspect import check_explanations
from cnnlab.web import create_app
from servers import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(digits_run, dead_digits_run, tmp_path_factory):
    """A server over a folder with the healthy digits run, the one whose conv2 died, and one without stats."""
    root = tmp_path_factory.mktemp("health-served")
    shutil.copytree(digits_run[0], root / "healthy")
    shutil.copytree(dead_digits_run[0], root / "dead")
    shutil.copytree(digits_run[0], root / "unrecorded")
    (root / "unrecorded" / "stats.jsonl").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(digits_run[1]))
        with Server(create_app(root)) as url:
            yield url, root


def test_the_health_api_names_the_dead_layer_and_only_there(served):
    url, _ = served
    dead = httpx.get(f"{url}/api/runs/dead/health").json()
    # dense1, fed nothing but conv2's zeros, learns no weight and dies with it; conv1 before it lives
    assert dead["recorded"] and dead["died"] == {"conv2": 64, "dense1": 128} and dead["steps"] >= 10
    assert dead["verdict"].startswith("Dead layers: conv2 (all 64 channels never fired), dense1")
    healthy = httpx.get(f"{url}/api/runs/healthy/health").json()
    assert healthy["recorded"] and healthy["died"] == {} and healthy["verdict"].startswith("No layer died")
    png = httpx.get(f"{url}/api/runs/healthy/health.png")
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size[0] > 600
    none = httpx.get(f"{url}/api/runs/unrecorded/health").json()
    assert not none["recorded"] and "recorded no training statistics" in none["verdict"]
    assert str(served[1]) not in none["verdict"]  # the served folder's own path is never shown
    assert httpx.get(f"{url}/api/runs/unrecorded/health.png").status_code == 400


def test_the_health_figure_is_drawn_once_and_again_when_the_stats_change(digits_run, tmp_path, monkeypatch):
    """The page asks for the figure whenever a run is chosen; drawing it holds the GIL for about a second, so
    the store keeps it until the stats.jsonl it is drawn from changes."""
    from cnnlab.inspect import health
    from cnnlab.web.store import RunStore

    shutil.copytree(digits_run[0], tmp_path / "run")
    store = RunStore(tmp_path)
    drawn = []
    real = health.training_health
    monkeypatch.setattr(health, "training_health", lambda run: drawn.append(run) or real(run))
    first = store.health_png("run")
    assert store.health_png("run") == first and len(drawn) == 1
    stats = tmp_path / "run" / "stats.jsonl"
    stats.write_text(stats.read_text().splitlines()[0] + "\n")  # only the first watched step is left
    again = store.health_png("run")
    assert len(drawn) == 2 and again != first


def test_the_checks_api_answers_what_the_library_computes(served, digits_loaded):
    url, root = served
    run, ds = digits_loaded
    got = httpx.get(f"{url}/api/runs/healthy/explanation-checks", timeout=120).json()
    want = check_explanations(cnnlab.Run.load(root / "healthy"), ds.test.x[:8]).as_dict()
    assert got["images"] == 8 and [m["method"] for m in got["methods"]] == list(cnnlab.inspect.METHODS)
    for g, w in zip(got["methods"], want["methods"], strict=True):
        assert g["flagged"] == w["flagged"] and g["deletion"] == pytest.approx(w["deletion"], abs=1e-6)
        assert g["randomization_rho"] == pytest.approx(w["randomization_rho"], abs=1e-6)


def test_the_page_shows_health_and_checks(served):
    from playwright.sync_api import sync_playwright

    url, _ = served
    flagged = [
        m["method"] for m in httpx.get(f"{url}/api/runs/healthy/explanation-checks").json()["methods"] if m["flagged"]
    ]
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1300, "height": 1000}, bypass_csp=True)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("#summary table")
        for run_id, words in (
            ("dead", "Dead layers: conv2 (all 64 channels never fired)"),
            ("healthy", "No layer died"),
        ):
            page.select_option("#run", run_id)
            page.wait_for_function(f"document.querySelector('#health-verdict').textContent.startsWith({words!r})")
            page.wait_for_function(
                "(i => !i.hidden && i.complete && i.naturalWidth > 600)(document.querySelector('#health'))"
            )
        assert page.get_attribute("#health-verdict", "class") == "right"
        page.select_option("#run", "unrecorded")
        page.wait_for_function("document.querySelector('#health-verdict').textContent.includes('recorded no training')")
        assert page.locator("#health").is_hidden()
        page.select_option("#run", "healthy")
        page.wait_for_function("document.querySelector('#health-verdict').textContent.startsWith('No layer died')")
        page.locator("input[value=gradcam]").check()
        page.click("#check")
        page.wait_for_selector("#checks tr[data-method]", timeout=120_000)
        rows = page.eval_on_selector_all(
            "#checks tr[data-method]", "rs => rs.map(r => [r.dataset.method, r.className])"
        )
        assert [m for m, _ in rows] == list(cnnlab.inspect.METHODS)
        assert [m for m, c in rows if "flagged" in c] == flagged
        assert [m for m, c in rows if "current" in c] == ["gradcam"]
        page.locator("input[value=occlusion]").check()
        page.wait_for_function("document.querySelector('#checks tr.current')?.dataset.method === 'occlusion'")
        page.screenshot(path=str(artifact("page-health-and-checks.png")), full_page=True)
        browser.close()
    assert errors == []
