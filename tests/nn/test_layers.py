"""Layers against the NumPy reference and Keras's arithmetic; shape errors; specs."""

import json

import numpy as np
import pytest
import torch

from cnnlab import arith
from cnnlab.errors import InputError, ShapeError
from cnnlab.nn import (
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ReLU,
    Sequential,
    from_spec,
    read_spec,
    summarize,
    zoo,
)
from cnnlab.nn.resolve import resolve


def conv_params(kh, kw, cin, cout, bias=True):  # Keras's count, from the definition
    return kh * kw * cin * cout + (cout if bias else 0)


def test_zoo_parameter_counts_equal_keras():
    assert summarize(zoo.build("seed-fashion")).total == 421_642
    s = summarize(zoo.build("seed-mnist5x5"))
    by = {r.name: r.params for r in s.rows}
    assert (by["conv1"], by["conv2"], by["dense1"], by["logits"]) == (832, 51_264, 65_600, 650)
    assert s.total == 832 + 51_264 + 65_600 + 650 == 118_346
    assert [r.output_shape for r in s.rows if r.kind in ("Conv2D", "MaxPooling2D")] == [
        "(None, 24, 24, 32)",
        "(None, 12, 12, 32)",
        "(None, 8, 8, 64)",
        "(None, 4, 4, 64)",
    ]


def test_cnnlab_fast_count_from_its_definition():
    s = summarize(zoo.build("cnnlab-fast"))  # 28 -3x3 same-> 28 -pool-> 14 -3x3 valid-> 12 -pool-> 6: 6*6*64 = 2,304
    bn = 4 * 64  # gamma, beta (trainable), moving mean and variance (not)
    expected = conv_params(3, 3, 1, 16) + conv_params(3, 3, 16, 64, False) + bn + (2304 * 256 + 256) + (256 * 10 + 10)
    assert s.total == expected == 602_282
    assert s.non_trainable == 2 * 64
    pools = [r.output_shape for r in s.rows if r.kind == "MaxPooling2D"]
    assert pools == ["(None, 14, 14, 16)", "(None, 6, 6, 64)"]


def test_mnist3_same_pooling_shapes_and_no_bias():
    s = summarize(zoo.build("seed-mnist3"))
    pools = [r.output_shape for r in s.rows if r.kind == "MaxPooling2D"]
    assert pools == ["(None, 14, 14, 32)", "(None, 7, 7, 64)", "(None, 4, 4, 128)"]
    convs = [r.params for r in s.rows if r.kind == "Conv2D"]
    assert convs == [
        conv_params(3, 3, 1, 32, False),
        conv_params(3, 3, 32, 64, False),
        conv_params(3, 3, 64, 128, False),
    ]
    assert s.total == sum(convs) + (4 * 4 * 128 * 625 + 625) + (625 * 10 + 10)


def test_every_zoo_model_counts_match_formulas():
    for name in zoo.names():
        s = summarize(zoo.build(name))
        for r in s.rows:
            if r.formula and r.kind != "BatchNormalization":
                assert r.formula.endswith(f"= {r.params:,}"), (name, r)
        assert s.total == sum(r.params for r in s.rows)


def test_catdog_first_conv_and_closing_lines():
    s = summarize(zoo.build("seed-catdog"))
    assert s.rows[0].output_shape == "(None, 96, 96, 32)"
    assert s.closing_lines()[0].startswith(f"Total params: {s.total:,}")


@pytest.mark.parametrize(
    "name,total,shapes",
    [
        # worked by hand: 5x5 SAME convs keep 28 -> pools halve to 14, 7 -> 7*7*64 = 3,136 features;
        # 832 + 51,264 + (3,136*256 + 256) + (256*256 + 256) + (256*10 + 10)
        ("seed-tf1", 832 + 51_264 + 803_072 + 65_792 + 2_570, ["28, 28, 32", "14, 14, 32", "14, 14, 64", "7, 7, 64"]),
        # 100 -5+1-> 96 -> 48 -> 44 -> 22 -> 18 -> 9 -> 5 -> 2 (floor), 2*2*64 = 256 features;
        # (5*5*3*32 + 32) + (5*5*32*64 + 64) + 2*(5*5*64*64 + 64) + (256*128 + 128) + (128*64 + 64) + (64*32 + 32)
        # + (32*2 + 2)
        (
            "seed-catdog",
            2_432 + 51_264 + 2 * 102_464 + 32_896 + 8_256 + 2_080 + 66,
            ["96, 96, 32", "48, 48, 32", "44, 44, 64", "22, 22, 64", "18, 18, 64", "9, 9, 64", "5, 5, 64", "2, 2, 64"],
        ),
    ],
)
def test_zoo_totals_and_shapes_worked_by_hand(name, total, shapes):
    s = summarize(zoo.build(name))
    assert s.total == total == (923_530 if name == "seed-tf1" else 301_922)
    assert [r.output_shape for r in s.rows][: len(shapes)] == [f"(None, {sh})" for sh in shapes]


def test_batchnorm_counts_like_keras():
    m = Sequential([Input((8, 8, 3)), Conv2D(4, 3, use_bias=False), BatchNormalization()])
    s = summarize(m)
    assert (s.trainable, s.non_trainable) == (3 * 3 * 3 * 4 + 2 * 4, 2 * 4)


def test_conv_layer_equals_reference_with_tf_padding():
    torch.manual_seed(0)
    layer = Conv2D(5, 3, strides=2, padding="same", activation="relu")
    m = Sequential([Input((9, 8, 2)), layer])
    x = np.random.default_rng(0).normal(size=(3, 9, 8, 2)).astype(np.float32)
    got = m(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    kernel = layer.weight.detach().permute(2, 3, 1, 0).numpy()  # OIHW -> HWIO
    want = np.maximum(arith.conv2d(x, kernel, 2, "same") + layer.bias.detach().numpy(), 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_flatten_then_dense_uses_keras_hwc_order():
    torch.manual_seed(0)
    m = Sequential([Input((3, 4, 2)), Flatten(), Dense(5)])
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 2)).astype(np.float32)  # NHWC
    got = m(torch.from_numpy(x).permute(0, 3, 1, 2)).detach().numpy()
    w, b = m.layer("dense1").weight.detach().numpy(), m.layer("dense1").bias.detach().numpy()
    want = x.reshape(2, -1) @ w.T + b  # Keras flattens NHWC row-major
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_glorot_uniform_limit():
    torch.manual_seed(0)
    layer = Conv2D(64, 3)
    Sequential([Input((10, 10, 32)), layer])
    limit = np.sqrt(6 / (3 * 3 * 32 + 3 * 3 * 64))
    w = layer.weight.detach().numpy()
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    assert (layer.bias.detach().numpy() == 0).all()


def test_gap_and_auto_names():
    m = Sequential(
        [
            Input((8, 8, 1)),
            Conv2D(4, 3),
            MaxPooling2D(),
            Conv2D(6, 3, padding="same"),
            GlobalAveragePooling2D(),
            Dense(3),
        ]
    )
    assert [lay.name for lay in m.layers] == ["conv1", "pool1", "conv2", "gap", "dense1"]
    assert m.output_shape == (3,)


def test_dense_on_a_map_works_on_each_cells_channels_and_a_classifier_ending_in_one_suggests_flatten(tmp_path):
    m = Sequential([Input((3, 2, 4)), Dense(5, activation="relu")])
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 4)).astype(np.float32)
    with torch.no_grad():
        got = m(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    kernel = m.layers[0].weight.detach().numpy().T  # Keras's (in, out)
    expected = np.maximum(np.einsum("nhwc,cu->nhwu", x, kernel) + m.layers[0].bias.detach().numpy(), 0)
    assert m.output_shape == (3, 2, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    spec = tmp_path / "m.json"
    spec.write_text('{"input_shape": [7, 7, 64], "layers": [{"type": "Dense", "units": 10}]}')
    with pytest.raises(InputError, match=r"ends in a 7x7x10 map per image.*Flatten\(\) \(-> 490 values\)"):
        resolve(str(spec), num_classes=10)


def test_valid_kernel_larger_than_map_names_the_layer():
    with pytest.raises(ShapeError, match=r"Conv2D 'big' cannot apply a 5x5 kernel to a 4x4x8 input.*'pool1'"):
        Sequential([Input((8, 8, 8)), MaxPooling2D(), Conv2D(4, 5, name="big")])


def test_dense_input_mismatch_shows_the_arithmetic():
    layers = [
        Input((28, 28, 1)),
        Conv2D(32, 3, padding="same", name="conv1"),
        MaxPooling2D(name="pool1"),
        Conv2D(64, 3, strides=2, padding="same", name="conv2"),
        MaxPooling2D(padding="same", name="pool2"),
        Flatten(),
        Dense(128, input_dim=3136, name="fc1"),
    ]
    with pytest.raises(ShapeError) as e:
        Sequential(layers)
    msg = str(e.value)
    assert "Dense 'fc1' expects 3,136 inputs but receives 1,024" in msg
    assert "'conv2' 14x14 -> 7x7 (strides=2)" in msg
    assert "'pool1' 28x28 -> 14x14 (2x2 VALID, strides=2)" in msg
    assert "Dense input_dim=1,024" in msg


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match=r"Conv2D filters=0"):
        Conv2D(0, 3)
    with pytest.raises(InputError, match=r"Unknown activation 'relux'"):
        Dense(3, activation="relux")


def _bn_model():
    return Sequential(
        [Conv2D(8, 3, use_bias=False), BatchNormalization(), ReLU(), MaxPooling2D(2), Flatten(), Dense(10)],
        input_shape=(28, 28, 1),
    )


def test_spec_round_trip_json_and_toml(tmp_path):
    torch.manual_seed(0)
    m = _bn_model()  # BatchNormalization: its moving statistics must round-trip too
    spec = m.spec()
    (tmp_path / "m.json").write_text(json.dumps(spec))
    again = from_spec(read_spec(tmp_path / "m.json"))
    assert again.spec() == spec
    again.load_state_dict(m.state_dict())
    m.eval(), again.eval()
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(m(x), again(x))
    (tmp_path / "m.toml").write_text(
        'name = "tiny"\ninput_shape = [28, 28, 1]\n'
        '[[layers]]\ntype = "Conv2D"\nfilters = 8\nkernel_size = 3\npadding = "same"\nactivation = "relu"\n'
        '[[layers]]\ntype = "MaxPooling2D"\n[[layers]]\ntype = "Flatten"\n[[layers]]\ntype = "Dense"\nunits = 10\n'
    )
    tiny = from_spec(read_spec(tmp_path / "m.toml"))
    assert summarize(tiny).total == conv_params(3, 3, 1, 8) + 14 * 14 * 8 * 10 + 10


def test_spec_errors_list_valid_choices():
    with pytest.raises(InputError, match=r"unknown type 'Conv3D'. Expected one of: Conv2D"):
        from_spec({"input_shape": [8, 8, 1], "layers": [{"type": "Conv3D"}]})
    with pytest.raises(InputError, match=r"unknown argument\(s\) filter. Expected some of:.*filters"):
        from_spec({"input_shape": [8, 8, 1], "layers": [{"type": "Conv2D", "filter": 3}]})


# conv(relu) + SAME pooling three times; ReLU layers before VALID pooling; BatchNormalization, ReLU, pooling
@pytest.mark.parametrize("name", ["seed-mnist3", "seed-mnist5x5", "bn"])
def test_training_forward_is_the_same_function_with_relu_after_pooling(name):
    torch.manual_seed(0)
    a, b = (_bn_model(), _bn_model()) if name == "bn" else (zoo.build(name), zoo.build(name))
    b.load_state_dict(a.state_dict())
    x = torch.rand(4, 1, 28, 28)
    a.train(), b.train()
    out_fused = a(x)  # the training path reorders ReLU and pooling
    out_plain = x
    for layer in b.layers:  # layer by layer, as inspection sees them
        out_plain = layer(out_plain)
    torch.testing.assert_close(out_fused, out_plain, rtol=0, atol=0)
    out_fused.square().sum().backward()
    out_plain.square().sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-6, atol=1e-7)
