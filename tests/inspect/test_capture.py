import numpy as np
import pytest
import torch

from cnnlab import arith
from cnnlab.errors import InputError
from cnnlab.inspect import capturing, feature_maps, filters, named_layers, random_filters
from cnnlab.inspect.capture import select
from cnnlab.nn import zoo


def test_seed_mnist3_names_and_shapes_match_the_summary():
    torch.manual_seed(0)
    m = zoo.build("seed-mnist3")
    maps = feature_maps(m, np.random.default_rng(0).random((2, 28, 28, 1)))
    assert maps["pool1"].shape == (2, 14, 14, 32)
    assert maps["pool2"].shape == (2, 7, 7, 64)
    assert maps["pool3"].shape == (2, 4, 4, 128)
    assert list(maps) == [layer.name for layer in m.layers]
    assert maps["logits"].shape == (2, 10)


def test_hooks_equal_running_the_layers_by_hand():
    torch.manual_seed(0)
    m = zoo.build("seed-mnist5x5").eval()
    x = np.random.default_rng(1).random((3, 28, 28, 1)).astype(np.float32)
    maps = feature_maps(m, x)
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    with torch.no_grad():
        for layer in m.layers:
            t = layer(t)
            got = maps[layer.name]
            want = (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_hooks_removed_and_mode_restored_after_an_exception():
    m = zoo.build("seed-fashion").train()
    with pytest.raises(RuntimeError, match="boom"), capturing(m, select(m)) as out:
        m.eval()
        m(torch.rand(1, 1, 28, 28))
        assert out  # captured something
        raise RuntimeError("boom")
    assert m.training
    assert all(not layer._forward_hooks for layer in m.modules())


def test_any_nn_module_with_inplace_relu():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(inplace=True), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10)
    )
    names = [n for n, _ in named_layers(net)]
    assert names == ["0", "1", "2", "3"]
    x = np.random.default_rng(2).normal(size=(1, 28, 28, 1)).astype(np.float32)
    maps = feature_maps(net, x)
    assert maps["0"].min() < 0  # the conv output before the in-place ReLU, not overwritten by it
    assert maps["1"].min() == 0


def test_unknown_layer_lists_the_valid_names():
    with pytest.raises(InputError, match=r"No layer named 'pool9'. Expected one of: conv1, pool1, conv2"):
        feature_maps(zoo.build("seed-fashion"), np.zeros((1, 28, 28, 1)), ["pool9"])


def test_filters_min_max_and_rgb_view():
    torch.manual_seed(0)
    f = filters(zoo.build("seed-catdog"), "conv1")
    assert f.kernels.shape == (5, 5, 3, 32)
    assert f.normalized.min() == 0 and f.normalized.max() == 1
    assert f.images().shape == (32, 5, 5, 3)
    g = filters(zoo.build("seed-fashion"), "conv1")
    assert g.images().shape == (32, 3, 3, 1)  # gray kernels are NHWC images too, channels last


def test_filter_images_are_each_filters_kernel_channels_last():
    """images()[o, y, x, c] is kernel (y, x) of filter o on input channel c, read from the layer's PyTorch
    weight (out, in, kh, kw) directly: a non-square kernel over two channels, so a swapped axis shows."""
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(2, 4, (3, 2))
    f = filters(torch.nn.Sequential(layer), "0")
    w = layer.weight.detach().numpy()  # (out, in, kh, kw)
    expected = (w - w.min()) / (w.max() - w.min())
    images = f.images()
    assert images.shape == (4, 3, 2, 2)
    for o in range(4):
        for c in range(2):
            np.testing.assert_allclose(images[o, :, :, c], expected[o, c], rtol=1e-6)
    with pytest.raises(InputError, match=r"Layer 'pool1' has no convolution kernels. Layers that do: conv1, conv2"):
        filters(zoo.build("seed-fashion"), "pool1")


def test_random_filters_shapes_and_arithmetic():
    img = np.random.default_rng(0).integers(0, 256, (28, 28, 1)).astype(np.uint8)
    rf = random_filters(img, 5, seed=3)
    assert rf.conv.shape == (14, 14, 5) and rf.pooled.shape == (7, 7, 5)
    expected = arith.conv2d(img / 255.0, rf.kernels, 2, "same")
    np.testing.assert_allclose(rf.conv, expected)
    np.testing.assert_allclose(rf.pooled, arith.max_pool2d(expected, 2, 2, "same"))


class TwoConvs(torch.nn.Module):
    """Not a cnnlab Sequential: feature maps come from hooks, which must not mix between threads."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3)
        self.conv2 = torch.nn.Conv2d(4, 2, 3)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x))).flatten(1)


@pytest.mark.parametrize("build", [lambda: zoo.build("seed-mnist5x5"), TwoConvs], ids=["sequential", "module"])
def test_threads_capturing_on_one_model_each_get_their_own_maps(build):
    """Many threads, one shared model, distinct images: every answer is the one for its own image."""
    import concurrent.futures

    from cnnlab.inspect import explain

    torch.manual_seed(0)
    m = build().eval()
    images = np.random.default_rng(2).random((48, 28, 28, 1)).astype(np.float32)
    alone = [feature_maps(m, images[i : i + 1]) for i in range(len(images))]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda i: feature_maps(m, images[i : i + 1]), range(len(images))))
        if build is not TwoConvs:  # Grad-CAM needs a classifier; run it alongside to mix hooks and gradients
            list(pool.map(lambda i: explain(m, images[i], "gradcam"), range(8)))
    for a, b in zip(alone, together, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_inspection_restores_mode_and_requires_grad():
    """feature_maps, explain and maximize leave the model as they found it: training mode, frozen layers."""
    from cnnlab.inspect import explain, maximize

    torch.manual_seed(0)
    m = zoo.build("seed-mnist5x5").train()
    m.layer("conv1").weight.requires_grad_(False)  # a frozen layer, as in fine-tuning
    before = {n: p.requires_grad for n, p in m.named_parameters()}
    x = np.random.default_rng(3).random((28, 28, 1)).astype(np.float32)
    feature_maps(m, x)
    explain(m, x, "gradcam")
    maximize(m, (28, 28, 1), "conv2", 1, steps=3)
    assert m.training and all(mod.training for mod in m.modules())
    assert {n: p.requires_grad for n, p in m.named_parameters()} == before
    assert all(p.grad is None for p in m.parameters())  # maximization took gradients for the image alone
    with pytest.raises(InputError):
        maximize(m, (28, 28, 1), "conv2", 999, steps=3)
    assert m.training and {n: p.requires_grad for n, p in m.named_parameters()} == before
