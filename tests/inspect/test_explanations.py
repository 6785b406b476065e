"""Issue 29, Deliver 4 (in part): Integrated Gradients, Grad-CAM++ and LayerCAM, each checked against what is
known of it. Integrated Gradients is complete (its attributions sum to score(x) - score(baseline)) and exact
on a linear model; the two CAMs equal their papers' formulas computed here in NumPy from the layer's maps
and gradients, taken with autograd apart from cnnlab."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import InputError
from cnnlab.inspect import explain
from cnnlab.nn import Conv2D, Dense, Flatten, Input, MaxPooling2D, Sequential


def test_integrated_gradients_is_exact_on_a_linear_model():
    torch.manual_seed(0)
    model = Sequential([Input((5, 4, 2)), Flatten(), Dense(3)]).eval()
    x = np.random.default_rng(0).random((5, 4, 2)).astype(np.float32)
    a = explain(model, x, "integrated_gradients", target=1, steps=8)
    # a linear score's gradient is its response to each unit image: f(e_p) - f(0), measured on the model
    with torch.no_grad():
        zero = model(torch.zeros(1, 2, 5, 4))[0, 1]
        basis = torch.eye(40).view(40, 5, 4, 2).permute(0, 3, 1, 2)
        slope = (model(basis)[:, 1] - zero).view(5, 4, 2).numpy()
    scaled = torch.from_numpy(x).numpy()  # the model's input: float images are taken as they are
    np.testing.assert_allclose(a.values, scaled * slope, rtol=1e-4, atol=1e-6)
    assert "completeness error" in a.reason


@pytest.mark.parametrize("baseline", ["black", "blurred", "mean"])
def test_integrated_gradients_sum_to_the_change_of_the_score(digits_loaded, baseline, monkeypatch, digits_run):
    monkeypatch.setenv("CNNLAB_HOME", str(digits_run[1]))
    run, ds = digits_loaded
    model = run.model.eval()
    for image in ds.test.x[:4]:
        a = explain(run, image, "integrated_gradients", baseline=baseline)
        x = torch.from_numpy(image).float().permute(2, 0, 1)[None] / 255
        with torch.no_grad():
            fx = model(x)[0, a.target].item()
        # the baseline's score, read back from what the attributions must add up to
        total = float(a.values.sum())
        gap = float(a.reason.split("the score moved ")[1].split(" ")[0])
        assert total == pytest.approx(gap, abs=0.02 * abs(gap) + 1e-3)  # the trapezoid rule, 64 steps
        if baseline == "black":
            with torch.no_grad():
                fb = model(torch.zeros_like(x))[0, a.target].item()
            assert gap == pytest.approx(fx - fb, rel=1e-3, abs=1e-4)


def test_a_baseline_of_the_wrong_shape_or_kind_is_refused(digits_loaded):
    run, ds = digits_loaded
    with pytest.raises(InputError, match="baseline has shape"):
        explain(run, ds.test.x[0], "integrated_gradients", baseline=np.zeros((4, 4, 1)))
    with pytest.raises(InputError, match="Unknown baseline 'grey'"):
        explain(run, ds.test.x[0], "integrated_gradients", baseline="grey")
    with pytest.raises(InputError, match="needs a Run"):
        explain(run.model, ds.test.x[0], "integrated_gradients", baseline="mean")


def _maps_and_gradient(model, x, k: int, target: int):
    """The output of the model's first ``k`` layers and the gradient of the target's score with respect to it."""
    layers = list(model.body)
    with torch.enable_grad():
        a = x
        for layer in layers[:k]:
            a = layer(a)
        a = a.detach().requires_grad_(True)
        y = a
        for layer in layers[k:]:
            y = layer(y)
        (g,) = torch.autograd.grad(y[0, target], a)
    return a.detach().numpy()[0], g.numpy()[0]  # (C, h, w)


def _upsampled_unit(cam: np.ndarray, size) -> np.ndarray:
    t = F.interpolate(torch.from_numpy(cam)[None, None].float(), size=size, mode="bilinear", align_corners=False)
    t = t[0, 0] - t.min()
    return (t / t.max()).numpy() if t.max() > 0 else t.numpy()


def test_gradcam_plus_plus_and_layercam_are_their_papers_formulas():
    torch.manual_seed(3)
    model = Sequential(
        [
            Input((12, 12, 1)),
            Conv2D(6, 3, activation="relu"),
            MaxPooling2D(2),
            Conv2D(8, 3, activation="relu"),
            Flatten(),
            Dense(3),
        ]
    ).eval()
    image = np.random.default_rng(1).random((12, 12, 1)).astype(np.float32)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    a, g = _maps_and_gradient(model, x, 3, 2)  # conv2's maps (8, 3, 3)
    alpha_den = 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3
    alpha = np.divide(g**2, alpha_den, out=np.zeros_like(g), where=alpha_den != 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    want = _upsampled_unit(np.maximum((weights[:, None, None] * a).sum(0), 0), (12, 12))
    got = explain(model, image, "gradcam++", target=2, layer="conv2")
    np.testing.assert_allclose(got.heatmap, want, atol=1e-5)
    want = _upsampled_unit(np.maximum((np.maximum(g, 0) * a).sum(0), 0), (12, 12))
    got = explain(model, image, "layercam", target=2, layers="conv2")
    np.testing.assert_allclose(got.heatmap, want, atol=1e-5)
    combined = explain(model, image, "layercam", target=2)  # the last spatial layers, averaged
    assert "LayerCAM of 'conv1', 'pool1', 'conv2'" in combined.reason and combined.heatmap.shape == (12, 12)
