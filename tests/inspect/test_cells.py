"""One cell's computation against NumPy written from the definitions (TensorFlow's SAME: pad total
max((out-1)*stride + k - in, 0), the smaller half before; PyTorch: the same amount on both sides)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.inspect.cells import explain_cell
from cnnlab.nn import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D, Sequential
from cnnlab.run.run import Run

CLASSES = ("a", "b", "c", "d")


@pytest.fixture
def run():
    torch.manual_seed(0)
    model = Sequential(
        [
            Conv2D(3, 3, strides=2, padding="same", activation="relu", name="conv"),  # 6x6 -> 3x3, pads (0, 1)
            MaxPooling2D(2, padding="same", name="maxpool"),  # 3x3 -> 2x2, pads (0, 1)
            Conv2D(2, 1, name="mix"),
            AveragePooling2D(2, padding="same", name="avgpool"),  # 2x2 -> 1x1
            Flatten(),
            Dense(4, name="logits"),
        ],
        input_shape=(6, 6, 2),
    ).eval()
    with torch.no_grad():
        model.body[0].bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    return Run(Path("."), model, CLASSES, {"input_shape": [6, 6, 2], "scale": 1 / 255})


@pytest.fixture
def image():
    return np.random.default_rng(1).integers(0, 256, (6, 6, 2), dtype=np.uint8)


def kernel_of(layer):
    return layer.weight.detach().double().permute(2, 3, 1, 0).numpy()  # (kh, kw, in, out)


def test_a_conv_cell_is_its_patch_times_its_kernel_plus_bias_then_relu(run, image):
    x = image / 255.0
    conv = run.model.body[0]
    k, b = kernel_of(conv), conv.bias.detach().double().numpy()
    tf_padded = np.pad(x, ((0, 1), (0, 1), (0, 0)))  # SAME, 6 -> 3 at stride 2: total 1, all after
    torch_padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))  # PyTorch: the larger side on both
    for row in range(3):
        for col in range(3):
            for ch in range(3):
                cell = explain_cell(run, image, "conv", row, col, ch)
                pre = float((tf_padded[2 * row : 2 * row + 3, 2 * col : 2 * col + 3] * k[:, :, :, ch]).sum() + b[ch])
                assert cell["tensorflow"]["pre_activation"] == pytest.approx(pre, abs=1e-5)
                assert cell["tensorflow"]["output"] == pytest.approx(max(pre, 0), abs=1e-5)
                assert cell["value"] == pytest.approx(max(pre, 0), abs=1e-5)  # what the layer itself output
                window = torch_padded[2 * row : 2 * row + 3, 2 * col : 2 * col + 3]
                torch_pre = float((window * k[:, :, :, ch]).sum() + b[ch])
                assert cell["pytorch"]["pre_activation"] == pytest.approx(torch_pre, abs=1e-5)
    cell = explain_cell(run, image, "conv", 2, 2, 0)
    assert cell["padding"] == {"top": 0, "bottom": 1, "left": 0, "right": 1}
    assert cell["tensorflow"]["rows"] == [4, 5, 6] and cell["tensorflow"]["padding_mask"][2] == [True] * 3
    assert cell["pytorch"]["rows"] == [3, 4, 5]  # every window one cell earlier
    assert len(cell["tensorflow"]["per_input_channel"]) == 2


def test_pooling_cells_show_the_winner_and_the_mean_of_real_cells(run, image):
    from cnnlab.inspect import feature_maps

    maps = feature_maps(run, image[None])
    conv, mix = maps["conv"][0], maps["mix"][0]
    for row in range(2):
        for col in range(2):
            for ch in range(3):
                cell = explain_cell(run, image, "maxpool", row, col, ch)
                window = conv[2 * row : 2 * row + 2, 2 * col : 2 * col + 2, ch]  # real cells only (pad is after)
                assert cell["output"] == pytest.approx(float(window.max()), abs=1e-6)
                r, c = cell["winner"]
                assert cell["window"][r][c] == pytest.approx(float(window.max()), abs=1e-6)
    cell = explain_cell(run, image, "avgpool", 0, 0, 1)
    assert cell["count"] == 4 and cell["output"] == pytest.approx(float(mix[:, :, 1].mean()), abs=1e-6)


def test_the_class_scores_are_explained_by_their_softmax(run, image):
    cell = explain_cell(run, image, "logits")
    z = np.array(cell["softmax"]["logits"])
    expected = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(cell["softmax"]["probabilities"], expected, atol=1e-6)
    np.testing.assert_allclose(
        cell["softmax"]["probabilities"], run.predict(image[None], precision="fp32")[0], atol=1e-5
    )
    assert cell["softmax"]["classes"] == list(CLASSES)


def test_cells_outside_the_map_and_unknown_layers_are_clear_errors(run, image):
    from cnnlab.errors import InputError

    with pytest.raises(InputError, match=r"Cell \(3, 0\) channel 0 is outside 'conv' \(3x3x3\)"):
        explain_cell(run, image, "conv", 3, 0, 0)
    with pytest.raises(InputError, match=r"No layer 'conv9'. Layers: conv, maxpool"):
        explain_cell(run, image, "conv9")
