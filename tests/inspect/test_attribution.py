"""Sanity checks that can fail: attributions must depend on what the model learned, and point at the evidence."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.errors import InputError
from cnnlab.inspect import explain, maximize
from cnnlab.nn import Dense, Flatten, Input, Sequential, zoo


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho from the definition: Pearson correlation of the ranks."""
    ra = np.argsort(np.argsort(a.ravel())).astype(float)
    rb = np.argsort(np.argsort(b.ravel())).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


PATTERNS = [  # 7x7 bright patterns; which one is shown decides the class in the "pattern" dataset
    np.ones((7, 7)),
    np.tile([1.0, 0.0], 4)[:7][:, None] * np.ones((1, 7)),  # horizontal stripes
    np.ones((7, 1)) * np.tile([1.0, 0.0], 4)[:7][None, :],  # vertical stripes
    np.indices((7, 7)).sum(0) % 2 * 1.0,  # checkerboard
]


def make_patch_folder(root, by="quadrant", n_per_class=90, size=24, patch=7, seed=0):
    """Four classes on a noisy background, decided only by a 7x7 bright patch: by the quadrant it lies in
    (by='quadrant'), or by its pattern wherever it lies (by='pattern')."""
    rng = np.random.default_rng(seed)
    boxes = []
    for label in range(4):
        (root / f"q{label}").mkdir(parents=True)
        for i in range(n_per_class):
            img = rng.integers(0, 90, (size, size), dtype=np.uint8)
            half = size // 2
            if by == "quadrant":
                top = (label // 2) * half + rng.integers(0, half - patch + 1)
                left = (label % 2) * half + rng.integers(0, half - patch + 1)
                img[top : top + patch, left : left + patch] = rng.integers(200, 256, (patch, patch))
            else:
                top, left = rng.integers(0, size - patch + 1, 2)
                window = img[top : top + patch, left : left + patch]
                img[top : top + patch, left : left + patch] = np.where(PATTERNS[label] > 0, 230, window)
            name = f"{i:03d}.png"
            Image.fromarray(img).save(root / f"q{label}" / name)
            boxes.append((f"q{label}/{name}", int(top), int(left)))
    return {k: (t, le) for k, t, le in boxes}


def boxes_of_test_images(root, boxes, ds):
    """The patch box of each test image, found by matching its pixels to the files."""
    files = {np.asarray(Image.open(root / rel)).tobytes(): rel for rel in boxes}
    return [boxes[files[x[:, :, 0].tobytes()]] for x in ds.test.x]


def patch_spec(head: str) -> dict:
    """Two 3x3 convolutions with a pooling between; then Flatten + Dense, or GlobalAveragePooling2D + Dense."""
    conv = {"type": "Conv2D", "kernel_size": 3, "padding": "same", "activation": "relu"}
    pool = [{"type": "Flatten"}] if head == "flatten" else [{"type": "GlobalAveragePooling2D"}]
    return {
        "layers": [
            {**conv, "filters": 16},
            {"type": "MaxPooling2D"},
            {**conv, "filters": 32},
            *pool,
            {"type": "Dense", "units": 4},
        ]
    }


def share_of_peaks_inside(run, ds, boxes, method: str, margin: int) -> float:
    """How many heat maps peak inside their image's 7x7 patch (grown by ``margin`` pixels)."""
    inside = 0
    for x, (top, left) in zip(ds.test.x, boxes, strict=True):
        heat = explain(run, x, method).heatmap
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        inside += (top - margin <= r < top + 7 + margin) and (left - margin <= c < left + 7 + margin)
    return inside / len(ds.test.x)


def train_patch_model(root, by: str, head: str, epochs: int, n_per_class: int = 90):
    """Make a patch dataset under ``root``, train the patch model on it; return (run, dataset, test boxes)."""
    boxes = make_patch_folder(root / "data", by=by, n_per_class=n_per_class)
    spec = root / "spec.json"
    spec.write_text(json.dumps(patch_spec(head)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(root / "home"))
        run = cnnlab.train(
            data=str(root / "data"),
            model=str(spec),
            epochs=epochs,
            batch_size=32,
            lr=3e-3,
            seed=0,
            out=str(root / "run"),
            verbose=False,
        )
        ds = cnnlab.data.load(root / "data")
    return run, ds, boxes_of_test_images(root / "data", boxes, ds)


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    return train_patch_model(tmp_path_factory.mktemp("patch"), "quadrant", "flatten", epochs=6)


@pytest.mark.parametrize(
    "method,margin", [("gradcam", 2), ("gradcam++", 2), ("layercam", 2), ("integrated_gradients", 1), ("occlusion", 0)]
)
def test_maps_peak_inside_the_patch(patch_run, method, margin):
    run, ds, test_boxes = patch_run
    assert run.metrics[-1]["test_accuracy"] > 0.9
    # Grad-CAM's map is 12x12 upsampled to 24x24, so its peak may sit up to 2 pixels off the patch edge
    share = share_of_peaks_inside(run, ds, test_boxes, method, margin)
    assert share > 0.8, f"{method}: {share:.0%} of peaks inside the patch"


def test_model_randomization(patch_run):
    run, ds, _ = patch_run
    torch.manual_seed(123)
    random_model = cnnlab.nn.from_spec(run.model.spec())  # same architecture, fresh weights
    random_run = cnnlab.Run(run.path, random_model.eval(), run.classes, run.preprocessing)
    # Grad-CAM++ (its channel weights on a Flatten head, rho 0.90) and Integrated Gradients from black
    # (|x * gradient|, rho 0.62) stay close to the image whatever the weights: they fail this check here
    for method in ("saliency", "gradcam", "layercam"):
        rhos = [
            rank_correlation(explain(run, x, method).heatmap, explain(random_run, x, method).heatmap)
            for x in ds.test.x[:20]
        ]
        assert np.mean(rhos) < 0.5, f"{method}: trained and random maps agree too much (rho {np.mean(rhos):.2f})"


def test_methods_for_rgb_models_and_targets():
    torch.manual_seed(0)
    m = zoo.build("seed-catdog").eval()
    img = np.random.default_rng(0).random((100, 100, 3)).astype(np.float32)
    for method in ("saliency", "smoothgrad", "gradcam", "occlusion"):
        a = explain(m, img, method, target=1)
        assert a.heatmap.shape == (100, 100) and a.target == 1
        assert a.heatmap.min() >= 0 and a.heatmap.max() <= 1
    a = explain(m, img, "gradcam")
    assert a.layer == "pool4" and "last layer with a spatial map (2x2x64) before 'flatten'" in a.reason
    assert explain(m, img, "gradcam", layer="conv2").layer == "conv2"


def test_gradcam_without_a_spatial_layer_suggests_occlusion():
    mlp = Sequential([Input((8, 8, 1)), Flatten(), Dense(3)])
    with pytest.raises(InputError, match=r"Grad-CAM needs a layer with a spatial map.*Use method='occlusion'"):
        explain(mlp, np.random.default_rng(0).random((8, 8, 1)), "gradcam")
    assert explain(mlp, np.random.default_rng(0).random((8, 8, 1)), "occlusion").heatmap.shape == (8, 8)


def test_bad_method_target_and_layer():
    m = zoo.build("seed-fashion")
    img = np.random.default_rng(0).random((28, 28, 1))  # not blank: a blank image has nothing to explain
    with pytest.raises(InputError, match=r"Unknown method 'lime'. Expected one of: saliency, smoothgrad"):
        explain(m, img, "lime")
    with pytest.raises(InputError, match=r"target=12 is not a class index"):
        explain(m, img, "saliency", target=12)
    with pytest.raises(InputError, match=r"Layer 'dense1' outputs a vector"):
        explain(m, img, "gradcam", layer="dense1")


def test_activation_maximization_raises_the_activation(patch_run):
    run, ds, _ = patch_run
    maps = cnnlab.inspect.feature_maps(run, ds.test.x[:20], ["conv2"])["conv2"]
    channel = int(maps.mean(axis=(0, 1, 2)).argmax())  # a channel that is alive on real images
    r = maximize(run.model, run.input_shape, "conv2", channel, steps=80)
    assert r.image.shape == (24, 24, 1) and r.image.min() >= 0 and r.image.max() <= 1
    assert r.activation > 1.5 * r.start_activation
    best_real = maps[..., channel].mean(axis=(1, 2)).max()
    assert r.activation > best_real, (r.activation, best_real)  # beats every one of 20 real test images
    with pytest.raises(InputError, match="channel 32 does not exist"):
        maximize(run.model, run.input_shape, "conv2", 32, steps=2)


def test_gradcam_mean_form_for_a_global_pooling_head(tmp_path):
    """With global average pooling, Grad-CAM's published channel-mean weights apply (and are chosen).
    Pooling everything away loses position, so here the class is the patch's pattern, wherever it lies."""
    run, ds, boxes = train_patch_model(tmp_path, "pattern", "gap", epochs=10, n_per_class=150)
    assert run.metrics[-1]["test_accuracy"] > 0.9
    a = explain(run, ds.test.x[0], "gradcam")
    assert a.layer == "conv2" and "HiResCAM" not in a.reason
    share = share_of_peaks_inside(run, ds, boxes, "gradcam", 2)
    assert share > 0.8, f"{share:.0%} of peaks inside the patch"


def test_a_blank_image_has_nothing_to_explain():
    from cnnlab.inspect.attribution import explain
    from cnnlab.nn import Conv2D, Dense, Flatten, Sequential

    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3)], input_shape=(8, 8, 1))
    for value in (0.0, 0.7):
        with pytest.raises(
            InputError, match=r"The image is blank \(every value .*\): there is nothing in it to explain"
        ):
            explain(model, np.full((8, 8, 1), value), "gradcam")


def edges(model, x, target, **_):
    """A test-only "explanation" that ignores the model: the image's edges (the gradient magnitude of its
    pixels). The randomization check must flag it."""
    g = x.amax(dim=1)[0]
    dy = torch.zeros_like(g)
    dx = torch.zeros_like(g)
    dy[1:-1], dx[:, 1:-1] = (g[2:] - g[:-2]) / 2, (g[:, 2:] - g[:, :-2]) / 2
    return (dx**2 + dy**2).sqrt(), {"reason": "the image's edges, whatever the model"}


def scrambled(model, x, target, **_):
    """A test-only map of no information: a fixed random ranking of the pixels."""
    g = torch.Generator().manual_seed(7)
    return torch.rand(x.shape[2:], generator=g), {"reason": "random"}


def test_explanation_checks_flag_the_map_that_ignores_the_weights(patch_run, monkeypatch):
    from cnnlab.inspect import attribution, check_explanations

    monkeypatch.setitem(attribution.METHODS, "edges", edges)
    monkeypatch.setitem(attribution.METHODS, "scrambled", scrambled)
    run, ds, _ = patch_run
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    checks = check_explanations(run, ds.test.x[:12], methods=["gradcam", "occlusion", "edges", "scrambled"])
    by = {c.method: c for c in checks.checks}
    assert by["edges"].randomization_rho > 0.99 and by["edges"].flagged
    assert checks.flagged == ["edges", "scrambled"]  # the scrambled map is as blind to the weights
    for method in ("gradcam", "occlusion"):  # maps that found the patch beat a random ranking
        assert by[method].deletion < by["scrambled"].deletion - 0.1, method
        # the blurred image still shows a blob in the right quadrant, so insertion starts at the top here
        assert by[method].insertion >= by["scrambled"].insertion - 1e-6, method
    assert all(torch.equal(v, run.model.state_dict()[k]) for k, v in before.items()), "the run's weights changed"
    assert "flagged: edges, scrambled" in repr(checks).splitlines()[0]
    assert [ax.get_title() for ax in checks.plot().axes][:2] == [
        "deletion: lower area is better",
        "insertion: higher area is better",
    ]


def test_the_deletion_curve_is_the_probability_with_the_top_pixels_blacked_out(patch_run):
    """Each point from run.predict on the image with its top-ranked pixels set to 0, ranked from explain()'s
    heat map; the area by NumPy's trapezoid rule; the insertion curve ends at the image's own probability."""
    from cnnlab.inspect import check_explanations

    run, ds, _ = patch_run
    image = ds.test.x[3]
    a = explain(run, image, "gradcam")
    order = np.argsort(-a.heatmap.ravel(), kind="stable")
    steps = 10
    curve = []
    for k in range(steps + 1):
        cut = image.copy().reshape(-1, image.shape[-1])
        cut[order[: round(k * cut.shape[0] / steps)]] = 0
        curve.append(run.predict(cut.reshape(image.shape)[None])[0, a.target])
    (c,) = check_explanations(run, image[None], methods=["gradcam"], steps=steps).checks
    # one image at a time against a batch of eleven: the logits differ in their last bits, which a softmax this
    # sure of itself (p from 1 to 1e-9) turns into up to 1% of a small probability
    np.testing.assert_allclose(c.deletion_curve, curve, rtol=1e-2, atol=1e-5)
    assert c.deletion == pytest.approx(np.trapezoid(curve, np.linspace(0, 1, steps + 1)), abs=1e-4)
    assert c.insertion_curve[-1] == pytest.approx(run.predict(image[None])[0, a.target], abs=1e-5)


def test_rank_correlation_is_spearmans_with_ties():
    from cnnlab.inspect.checks import rank_correlation

    def ranks(v):  # from the definition: values below, plus half of the others equal to it
        return np.array([(v < x).sum() + ((v == x).sum() - 1) / 2 for x in v])

    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 200).astype(float)  # many ties
    b = a + rng.integers(0, 3, 200)
    assert rank_correlation(a, b) == pytest.approx(np.corrcoef(ranks(a), ranks(b))[0, 1])
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(a, np.zeros(200)) == 0.0
