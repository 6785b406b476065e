"""Issue 28, Deliver 3 and 4: the five tutorials as notebooks, run top to bottom in a real Jupyter kernel
(ipykernel, driven by nbclient) on the real datasets, their numbers asserted in their own cells; committed
without outputs; each executed notebook converted to HTML (nbconvert) and looked at in Chromium."""

import base64
import io
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from PIL import Image
from playwright.sync_api import sync_playwright

from browser import artifact, launch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
TUTORIALS = ["01_convolution_arithmetic", "02_random_filters", "03_mnist_three_ways", "04_fashion_mnist"]
TUTORIALS += ["05_cats_and_dogs"]


def test_the_five_tutorials_are_committed_as_notebooks_without_outputs():
    assert [p.stem for p in NOTEBOOKS] == TUTORIALS
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.outputs == [] and c.execution_count is None for c in code), path.name
        assert any("assert" in c.source for c in code), path.name  # its numbers are checked where they are made


def _outputs(nb, mime: str) -> list[str]:
    return [o["data"][mime] for c in nb.cells for o in c.get("outputs", []) if mime in o.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_tutorial_runs_in_a_jupyter_kernel_and_shows_its_objects(
    path, real_data, catdog_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv("CATDOG", str(catdog_folder))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    shown = _outputs(nb, "text/html")
    assert any('class="cnnlab-shown"' in h for h in shown)  # cnnlab objects displayed as themselves
    pictures = [m for h in shown for m in re.findall(r'src="data:image/png;base64,([^"]+)"', h)]
    assert pictures and all(Image.open(io.BytesIO(base64.b64decode(p))).width > 200 for p in pictures)
    for cell in nb.cells:  # cnnlab.train: one output updated in place, nothing printed beside it
        if cell.cell_type == "code" and "cnnlab.train(" in cell.source:
            kinds = [o["output_type"] for o in cell.outputs]
            assert kinds == ["display_data", "execute_result"], kinds
            assert "cnnlab-training" in cell.outputs[0]["data"]["text/html"]
            assert ("<img" in cell.outputs[0]["data"]["text/html"]) == ("live=True" in cell.source)
    for text in _outputs(nb, "text/plain"):
        assert "object at 0x" not in text and "array([" not in text[:200]  # no dumps
    page = tmp_path / f"{path.stem}.html"
    page.write_text(HTMLExporter().from_notebook_node(nb)[0])
    with sync_playwright() as p:
        browser = launch(p)
        view = browser.new_page(viewport={"width": 1100, "height": 900})
        view.goto(page.as_uri())
        images = view.locator(".cnnlab-shown img")
        assert images.count() == len([h for h in shown if 'class="cnnlab-shown"' in h for _ in re.findall("<img", h)])
        widths = images.evaluate_all("els => els.map(e => e.naturalWidth)")
        assert all(w > 200 for w in widths)  # every picture decoded and drawn in the page
        view.screenshot(path=str(artifact(f"notebook-{path.stem}.png")), full_page=False)
        browser.close()


def test_the_readme_links_every_notebook_and_shows_one():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"(examples/notebooks/{path.name})" in readme
    (shot,) = re.findall(r"!\[[^\]]*notebook[^\]]*\]\((docs/[^)]+)\)", readme)
    assert Image.open(ROOT / shot).width >= 800


class Handle:
    """IPython's display handle, as NotebookReporter updates it: every HTML it was given."""

    def __init__(self):
        self.shown = []

    def update(self, obj):
        self.shown.append(obj.data)


def test_training_in_a_notebook_is_one_output_updated_in_place(monkeypatch):
    from cnnlab.viz import notebook

    handle = Handle()
    reporter = notebook.NotebookReporter(live=True, display=lambda obj, display_id: handle)
    monkeypatch.setattr(notebook, "REDRAW_S", 0.0)
    reporter.message("training seed-fashion on fashion-mnist")
    reporter.start_epoch(1, 2, 10, 640)
    reporter.update(5, 0.5, 0.75)
    bar = handle.shown[-1]
    assert '<progress value="5" max="10"' in bar and "epoch 1/2 · 5/10 steps" in bar
    assert "img/s" in bar and "loss 0.5000 · acc 0.7500" in bar and "s left" in bar
    row = {"epoch": 1, "epochs": 2, "loss": 0.5, "accuracy": 0.75, "test_loss": 0.4, "test_accuracy": 0.8}
    reporter.end_epoch({**row, "seconds": 1.0, "images_per_s": 640.0, "lr": 1e-3})
    done = handle.shown[-1]
    assert "<progress" not in done and "epoch 1/2  loss 0.5000" in done and done.count("<img") == 1  # the curves
    reporter.start_epoch(2, 2, 10, 640)
    reporter.update(3, 0.4, 0.8)
    reporter.stop()  # interrupted: the bar goes, what finished stays
    assert "<progress" not in handle.shown[-1] and "epoch 1/2  loss 0.5000" in handle.shown[-1]
    assert handle.shown[-1].count("training seed-fashion") == 1
