"""Issue 28, Deliver 1: every object a user gets back shows itself. Printed, a short table (Keras's for a
summary); in a notebook (IPython's own display formatter, as a Jupyter kernel calls it) the same table as
HTML with its picture; ``.plot()`` is a matplotlib figure. Each test checks what is shown: the rows of the
table, the titles and images in the figure, the size of the PNG."""

import base64
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from IPython.core.formatters import DisplayFormatter
from PIL import Image

import cnnlab
from cnnlab import arith, inspect
from cnnlab.nn import Add, Conv2D, Dense, GlobalAveragePooling2D, Input, MaxPooling2D, Model, Sequential
from cnnlab.nn.summary import summarize
from cnnlab.run.evaluate import evaluate_run


def shown(obj) -> dict:
    """What a notebook receives for ``obj``: IPython's mime bundle."""
    data, _ = DisplayFormatter().format(obj)
    return data


def images_in(html: str) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    ]


def body_rows(html: str) -> list[list[str]]:
    """The cells of each row of the first table's body (a nested table's rows not included)."""
    outer = re.sub(r'<tr class="inside">.*?</details></td></tr>', "", html)
    body = outer.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]


@pytest.fixture(scope="module")
def run(digits_loaded):
    return digits_loaded[0]


@pytest.fixture(scope="module")
def digits(digits_loaded):
    return digits_loaded[1]


def test_a_summary_prints_keras_table_and_a_notebook_gets_it_as_html_with_nested_models_folded():
    model = Sequential([Conv2D(32, 3, padding="same"), MaxPooling2D(2), Conv2D(64, 3)], input_shape=(28, 28, 1))
    s = summarize(model)
    text = repr(s)
    assert text.splitlines()[0] == f'Model: "{model.name}"'
    conv1 = next(line for line in text.splitlines() if "conv1 (Conv2D)" in line)
    assert "(None, 28, 28, 32)" in conv1 and " 320 " in conv1  # 3*3*1*32 weights + 32 biases
    assert f"Total params: {3 * 3 * 32 + 32 + 3 * 3 * 32 * 64 + 64:,}" in text
    bundle = shown(s)
    assert bundle["text/plain"] == text
    rows = body_rows(bundle["text/html"])
    assert [r[0] for r in rows] == ["conv1 (Conv2D)", "pool1 (MaxPooling2D)", "conv2 (Conv2D)"]
    assert rows[2][1:3] == ["(None, 12, 12, 64)", f"{3 * 3 * 32 * 64 + 64:,}"]
    (chart,) = images_in(bundle["text/html"])
    assert chart.width > 400 and chart.height > 100
    fig = s.plot()
    assert [ax.get_title() for ax in fig.axes][:2] == [
        f"parameters: {s.total:,}",
        f"multiply-adds per image: {s.macs:,}",
    ]

    x = Input((8, 8, 3))
    block = Model(
        x, Add(name="join")([Conv2D(4, 3, padding="same", name="a")(x), Conv2D(4, 1, name="b")(x)]), name="block"
    )
    inputs = Input((8, 8, 3))
    outer = Model(inputs, Dense(2, name="head")(GlobalAveragePooling2D(name="gap")(block(inputs))), name="outer")
    page = shown(summarize(outer))["text/html"]
    assert [r[0] for r in body_rows(page)] == ["block (Functional)", "gap (GlobalAveragePooling2D)", "head (Dense)"]
    folded = re.search(r"<details><summary>(.*?)</summary>(.*?)</details>", page)
    assert folded.group(1) == "Model: &quot;block&quot;"
    assert [r[0] for r in body_rows(folded.group(2))] == ["a (Conv2D)", "b (Conv2D)", "join (Add)"]
    text = repr(summarize(outer))
    assert "    │ a (Conv2D)" in text  # the nested model's rows, indented under its own


def test_an_evaluation_shows_accuracy_a_row_per_class_and_its_confusion_matrix(run, digits_run, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(digits_run[1]))
    ev, _ = evaluate_run(run)
    bundle = shown(ev)
    first = bundle["text/plain"].splitlines()[0]
    assert first == f"Evaluation on {len(ev.labels):,} images: accuracy {ev.accuracy:.4f}, loss {ev.loss:.4f}"
    rows = body_rows(bundle["text/html"])
    assert [r[0] for r in rows] == list(run.classes)
    right = ev.labels == ev.predictions
    for k, r in enumerate(rows):  # recall from the labels themselves, support their count
        of_k = ev.labels == k
        assert float(r[2]) == pytest.approx(right[of_k].mean(), abs=5e-5) and int(r[4]) == of_k.sum()
    (matrix,) = images_in(bundle["text/html"])
    assert matrix.size == Image.open(io.BytesIO(bundle["image/png"])).size and matrix.width > 300
    ax = ev.plot().axes[0]
    assert np.array_equal(ax.images[0].get_array(), ev.confusion)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(run.classes)


def test_a_dataset_shows_its_counts_and_a_labelled_grid_of_samples(digits):
    bundle = shown(digits)
    assert bundle["text/plain"].splitlines()[0] == 'Dataset "digits": 8x8x1 uint8 images, 10 classes'
    rows = body_rows(bundle["text/html"])
    train, test = np.bincount(digits.train.y, minlength=10), np.bincount(digits.test.y, minlength=10)
    assert rows[:-1] == [[c, f"{a:,}", f"{b:,}"] for c, a, b in zip(digits.classes, train, test, strict=True)]
    assert rows[-1] == ["all", f"{len(digits.train):,}", f"{len(digits.test):,}"]
    fig = digits.plot()
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 16
    assert [ax.get_title() for ax in tiles] == [digits.classes[int(k)] for k in digits.train.y[:16]]
    np.testing.assert_array_equal(tiles[3].images[0].get_array(), digits.train.x[3, :, :, 0])
    (grid,) = images_in(bundle["text/html"])
    assert grid.width > 500


def test_a_run_shows_its_model_dataset_epochs_and_curves(run, digits_run):
    text = repr(run)
    metrics = [json.loads(line) for line in (digits_run[0] / "metrics.jsonl").read_text().splitlines()]
    assert text.splitlines()[0].startswith(f"Run {digits_run[0]}: seed-fashion (")
    assert "on digits" in text.splitlines()[0] and "Sequential(" not in text  # not a dump of the nn.Module
    rows = body_rows(shown(run)["text/html"])
    assert [r[0] for r in rows] == [str(m["epoch"]) for m in metrics] == ["1", "2"]
    assert [float(r[4]) for r in rows] == [round(m["test_accuracy"], 4) for m in metrics]
    assert [ax.get_title() for ax in run.plot().axes] == ["loss", "accuracy"]
    (curves,) = images_in(shown(run)["text/html"])
    assert curves.width > 500


def test_feature_maps_stay_a_dict_of_arrays_and_show_a_grid_for_each_layer(run, digits):
    maps = inspect.feature_maps(run, digits.test.x[:2])
    assert isinstance(maps, dict) and all(isinstance(a, np.ndarray) for a in maps.values())
    assert list(maps) == ["conv1", "pool1", "conv2", "pool2", "flatten", "dense1", "logits"]
    bundle = shown(maps)
    rows = body_rows(bundle["text/html"])
    assert [(r[0], r[1]) for r in rows] == [(k, str(a.shape)) for k, a in maps.items()]
    assert len(images_in(bundle["text/html"])) == len(maps)
    fig = maps.plot(layer="pool1", image=1)
    drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.get_title()]
    np.testing.assert_allclose(drawn[0], maps["pool1"][1, :, :, 0])
    assert fig._suptitle.get_text() == "pool1: (4, 4, 32), first 8 of 32 channels"


def test_filters_attributions_and_explanations_show_themselves(run, digits):
    f = inspect.filters(run.model, "conv1")
    assert repr(f).splitlines()[0] == "conv1: 32 filters of 3x3x1"
    assert len([ax for ax in f.plot().axes if ax.images]) == 32
    assert Image.open(io.BytesIO(shown(f)["image/png"])).width > 300

    a = inspect.explain(run, digits.test.x[0], "gradcam")
    p = float(a.probabilities[a.target])
    assert (
        repr(a).splitlines()[0] == f"gradcam on {a.layer}: explaining class {a.target} '{a.target_name}' (p = {p:.4f})"
    )
    panels = a.plot().axes
    assert [ax.get_title() for ax in panels] == ["input", f"gradcam on {a.layer}", "overlay"]
    np.testing.assert_array_equal(panels[0].images[0].get_array(), digits.test.x[0, :, :, 0])

    # the toy 3x3 image, a 2x2 filter of ones, SAME: TensorFlow pads 0 before and 1 after on each axis
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    ex = arith.explain_conv(x, np.ones((2, 2, 1, 1)), padding="same")
    text = repr(ex)
    assert "padding SAME: top 0, bottom 1, left 0, right 1" in text
    padded = np.pad(x[0, :, :, 0], ((0, 1), (0, 1)))
    want = [[padded[i : i + 2, j : j + 2].sum() for j in range(3)] for i in range(3)]  # from the definition
    lines = text.splitlines()
    at = lines.index("output of image 0, channel 0:")
    assert [[float(v) for v in line.split()] for line in lines[at + 1 : at + 4]] == want
    assert len(ex.plot().axes) == 3 and Image.open(io.BytesIO(shown(ex)["image/png"])).width > 500


def test_drawing_leaves_pyplot_and_the_notebook_backend_alone(run):
    """A notebook's %matplotlib backend and its own figures are the user's: cnnlab neither switches the backend
    nor leaves figures in pyplot's list."""
    code = (
        "import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt\n"
        "import cnnlab, sys\n"
        "run = cnnlab.Run.load(sys.argv[1]); run.plot(); run._repr_html_()\n"
        "print(matplotlib.get_backend(), plt.get_fignums())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run.path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "[]"]


def test_an_object_without_a_picture_says_so():
    with pytest.raises(TypeError, match="has no picture"):
        cnnlab.Run(
            path="m.keras", model=torch.nn.Linear(2, 2), classes=("a", "b"), preprocessing={"input_shape": [1, 1, 2]}
        ).plot()
