"""The graph engine: Input, layers called on symbolic tensors, Model(inputs, outputs), Sequential as a chain of
the same engine, and the merge layers, checked against NumPy computations written from their definitions."""

import json

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.arith.reference import conv2d as np_conv2d
from cnnlab.errors import InputError, ShapeError
from cnnlab.inspect import feature_maps
from cnnlab.nn import (
    Add,
    Average,
    Concatenate,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    Maximum,
    Minimum,
    Model,
    Multiply,
    ReLU,
    Sequential,
    Subtract,
    from_spec,
    summarize,
    zoo,
)
from cnnlab.training.progress import SilentReporter


def _nchw(x_nhwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x_nhwc.astype(np.float32)).permute(0, 3, 1, 2)


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).double().numpy()


def _kernel(layer) -> np.ndarray:
    return layer.weight.detach().double().permute(2, 3, 1, 0).numpy()  # (O, I, kh, kw) -> HWIO


def residual_block():
    """A projection shortcut, as in ResNet: relu(conv3x3(x) + conv1x1(x))."""
    x = Input((9, 7, 3))
    main = Conv2D(4, 3, padding="same", name="main")(x)
    short = Conv2D(4, 1, strides=1, name="short")(x)
    out = ReLU(name="out")(Add(name="add")([main, short]))
    return Model(x, out, name="res")


def test_a_residual_block_computes_what_its_definition_says():
    torch.manual_seed(0)
    m = residual_block().eval()
    x = np.random.default_rng(0).normal(size=(2, 9, 7, 3))
    main = np_conv2d(x, _kernel(m.layer("main")), padding="same") + m.layer("main").bias.detach().double().numpy()
    short = np_conv2d(x, _kernel(m.layer("short"))) + m.layer("short").bias.detach().double().numpy()
    expected = np.maximum(main + short, 0)
    with torch.no_grad():
        got = _nhwc(m(_nchw(x)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert m.output_shape == (9, 7, 4) and [layer.name for layer in m.layers] == ["main", "short", "add", "out"]


def test_a_layer_called_twice_shares_its_weights():
    x = Input((6, 6, 2))
    conv = Conv2D(2, 3, padding="same", name="shared")
    y = conv(ReLU(name="r")(conv(x)))  # the same kernels twice
    m = Model(x, y)
    assert len(m.layers) == 2 and sum(p.numel() for p in m.parameters()) == 3 * 3 * 2 * 2 + 2
    data = np.random.default_rng(1).normal(size=(1, 6, 6, 2))
    k, b = _kernel(conv), conv.bias.detach().double().numpy()
    once = np.maximum(np_conv2d(data, k, padding="same") + b, 0)
    with torch.no_grad():
        np.testing.assert_allclose(_nhwc(m(_nchw(data))), np_conv2d(once, k, padding="same") + b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ShapeError, match="was built for .* and is called again on"):
        conv(Input((5, 5, 2)))


def test_several_outputs_make_a_probe_model():
    x = Input((4, 4, 1))
    a = Conv2D(2, 3, padding="same", name="a")(x)
    logits = Dense(3, name="logits")(Flatten(name="flat")(a))
    probe = Model(x, [a, logits])
    out = probe(torch.rand(2, 1, 4, 4))
    assert isinstance(out, list) and out[0].shape == (2, 2, 4, 4) and out[1].shape == (2, 3)
    assert probe.output_shape == [(4, 4, 2), (3,)]


@pytest.mark.parametrize(
    ("layer", "reference"),
    [
        (Add(), lambda a, b, c: a + b + c),
        (Multiply(), lambda a, b, c: a * b * c),
        (Average(), lambda a, b, c: (a + b + c) / 3),
        (Maximum(), lambda a, b, c: np.maximum(np.maximum(a, b), c)),
        (Minimum(), lambda a, b, c: np.minimum(np.minimum(a, b), c)),
    ],
)
def test_element_wise_merges_of_three_tensors(layer, reference):
    inputs = [Input((3, 2, 4)) for _ in range(3)]
    m = Model(inputs, layer(inputs))
    arrays = [np.random.default_rng(i).normal(size=(2, 3, 2, 4)) for i in range(3)]
    with torch.no_grad():
        got = _nhwc(m(*[_nchw(a) for a in arrays]))
    np.testing.assert_allclose(got, reference(*arrays), rtol=1e-6, atol=1e-6)


def test_subtract_takes_two():
    a, b = Input((2, 2, 1)), Input((2, 2, 1))
    m = Model([a, b], Subtract()([a, b]))
    x, y = np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 3.0)
    np.testing.assert_allclose(_nhwc(m(_nchw(x), _nchw(y))), x - y)
    with pytest.raises(ShapeError, match="Subtract .* takes exactly two tensors"):
        Subtract()([a, b, Input((2, 2, 1))])


@pytest.mark.parametrize("axis", [-1, 1, 2, 3])
def test_concatenate_joins_along_keras_axis_which_counts_the_batch(axis):
    shapes = [(3, 4, 2), (3, 4, 2)]
    grown = [list(s) for s in shapes]
    grown[1][axis - 1 if axis > 0 else axis] += 1  # the joined axis may differ
    inputs = [Input(tuple(s)) for s in grown]
    m = Model(inputs, Concatenate(axis=axis)(inputs))
    arrays = [np.random.default_rng(i).normal(size=(2, *s)) for i, s in enumerate(grown)]
    with torch.no_grad():
        got = _nhwc(m(*[_nchw(a) for a in arrays]))
    expected = np.concatenate(arrays, axis=axis)  # on the (N, H, W, C) arrays, as Keras counts its axis
    assert m.output_shape == expected.shape[1:]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_shapes_that_do_not_merge_are_one_line_naming_both_layers_and_shapes():
    x = Input((8, 8, 3))
    a = Conv2D(4, 3, padding="same", name="wide")(x)
    b = Conv2D(4, 3, name="narrow")(x)  # VALID: 6x6
    with pytest.raises(
        ShapeError,
        match=r"Add 'join' needs inputs of one shape \(or of 1 along the axes that differ\) but receives 8x8x4, "
        r"6x6x4\. "
        r"Its inputs come from 'wide', 'narrow'\.",
    ):
        Add(name="join")([a, b])
    with pytest.raises(ShapeError, match="every other axis must agree; it receives 8x8x4, 6x6x4"):
        Concatenate(name="cat")([a, b])


def test_a_model_whose_outputs_need_another_input_says_so():
    a, b = Input((2, 2, 1)), Input((2, 2, 1))
    with pytest.raises(InputError, match=r"depend on an Input\(2, 2, 1\) that is not among its inputs"):
        Model(a, Add()([a, b]))
    with pytest.raises(InputError, match="takes a list of tensors, e.g. Add"):
        Add()(a)
    with pytest.raises(InputError, match="must be symbolic tensors"):
        Model(a, torch.zeros(1))


def test_sequential_is_a_chain_of_the_same_engine_and_keeps_its_weight_names():
    m = zoo.build("seed-fashion")
    assert isinstance(m, Model) and [n.layer for n in m.nodes] == m.layers
    assert list(m.state_dict())[:2] == ["body.0.weight", "body.0.bias"]  # what saved runs hold
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), Model.forward(m, x))  # the chain's loop is the graph's order


def test_feature_maps_summary_and_training_work_on_a_graph(tmp_path):
    torch.manual_seed(0)
    x = Input((8, 8, 1))
    a = Conv2D(4, 3, padding="same", activation="relu", name="a")(x)
    b = Conv2D(4, 3, padding="same", activation="relu", name="b")(a)
    y = Dense(10, name="logits")(GlobalAveragePooling2D(name="gap")(Add(name="skip")([a, b])))
    m = Model(x, y, name="tiny-res")
    maps = feature_maps(m, np.random.default_rng(0).random((1, 8, 8, 1)))
    assert list(maps) == ["a", "b", "skip", "gap", "logits"]
    np.testing.assert_allclose(maps["skip"], maps["a"] + maps["b"], rtol=1e-6)
    s = summarize(m)
    assert [r.name for r in s.rows] == ["a", "b", "skip", "gap", "logits"]
    assert s.total == (9 * 4 + 4) + (9 * 4 * 4 + 4) + (4 * 10 + 10)
    # a residual net that can learn the 8x8 digits: 86% after one epoch, 93% after two here (chance is 10%)
    x = Input((8, 8, 1))
    a = Conv2D(16, 3, padding="same", activation="relu", name="a")(x)
    b = Conv2D(16, 3, padding="same", activation="relu", name="b")(a)
    y = Dense(10, name="logits")(Flatten(name="flat")(Add(name="skip")([a, b])))
    said = []

    class Said(SilentReporter):
        def message(self, text):
            said.append(text)

    m = Model(x, y, name="tiny-res")
    run = cnnlab.train(data="digits", module=m, epochs=2, lr=3e-3, out=str(tmp_path / "r"), reporter=Said())
    assert run.metrics[-1]["test_accuracy"] > 0.8
    assert said[0].startswith("training tiny-res on digits")  # the module's own name, not the default model's
    assert run.predict(np.zeros((2, 8, 8, 1), np.uint8)).shape == (2, 10)


def test_sequential_refuses_what_is_not_a_layer_and_explains_shrinking_maps():
    with pytest.raises(InputError, match="Item 1 of the model is a int"):
        Sequential([Input((4, 4, 1)), 3])
    with pytest.raises(ShapeError) as e:
        Sequential([Input((4, 4, 1)), Flatten(), Dense(2, input_dim=5)])
    # the README's wording, said once: the chain names where the input came from, the engine adds nothing
    assert str(e.value) == (
        "Dense 'dense1' expects 5 inputs but receives 16 (the output of 'flatten'). "
        "Use strides=1 where it shrinks too much, or Dense input_dim=16."
    )


GRAPH_SPEC = {
    "name": "res",
    "input_shape": [8, 8, 1],
    "layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu", "name": "a"},
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "name": "b"},
        {"type": "Add", "inputs": ["a", "b"], "name": "skip"},
        {"type": "Concatenate", "inputs": ["skip", "input"], "name": "cat"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 10},
    ],
}


def test_a_graph_spec_names_its_inputs_and_round_trips():
    m = from_spec(GRAPH_SPEC)
    assert type(m) is Model and m.layer("cat").output_shape == (8, 8, 9)
    nodes = {n.layer.name: [t.source for t in n.inputs] for n in m.nodes}
    assert nodes["skip"] == ["'a'", "'b'"] and nodes["cat"] == ["'skip'", "the model input"]
    assert nodes["b"] == ["'a'"]  # no inputs named: the layer before it
    again = from_spec(m.spec())
    again.load_state_dict(m.state_dict())
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), m.eval()(x))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inputs": ["nope"]}, "Layer 'skip' takes 'nope', which is not the output of a layer before it"),
        ({"inputs": ["flatten"]}, "Layer 'skip' takes 'flatten', which comes after it: .* a cycle cannot be written"),
        ({"inputs": ["skip"]}, "Layer 'skip' takes 'skip', its own output: a cycle"),
        ({"inputs": "a"}, r"Layer 'skip' has inputs='a'. Expected a list of layer names"),
    ],
)
def test_a_graph_spec_that_does_not_connect_is_one_line(change, message):
    spec = {**GRAPH_SPEC, "layers": [dict(item) for item in GRAPH_SPEC["layers"]]}
    spec["layers"][2].update(change)
    with pytest.raises(InputError, match=message):
        from_spec(spec)


def test_cnnlab_train_takes_a_graph_spec_and_its_run_loads_without_the_code(tmp_path):
    spec = tmp_path / "res.json"
    spec.write_text(json.dumps({k: v for k, v in GRAPH_SPEC.items() if k != "input_shape"}))
    run = cnnlab.train(data="digits", model=str(spec), epochs=2, lr=3e-3, out=str(tmp_path / "r"), verbose=False)
    assert run.metrics[-1]["test_accuracy"] > 0.8  # chance: 0.1
    loaded = cnnlab.load(tmp_path / "r")  # model.json's graph spec rebuilds it
    assert type(loaded.model) is Model and loaded.model.layer("skip").kind == "Add"
    x = cnnlab.data.load("digits").test.x[:50]
    np.testing.assert_allclose(loaded.predict(x, precision="fp32"), run.predict(x, precision="fp32"), rtol=1e-5)


def test_a_cell_of_a_graph_reads_the_layer_it_takes_not_the_one_listed_before(tmp_path):
    """'c' reads the model input although 'skip' is listed before it: its cell is its kernel applied to the
    input's patch, computed here from the definition."""
    from cnnlab.inspect.cells import explain_cell

    layers = [dict(item) for item in GRAPH_SPEC["layers"][:3]]
    layers += [{"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "same", "inputs": ["input"], "name": "c"}]
    layers += [{"type": "Concatenate", "inputs": ["skip", "c"]}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]
    torch.manual_seed(0)
    model = from_spec({"input_shape": [8, 8, 1], "layers": layers}).eval()
    run = cnnlab.Run(tmp_path, model, tuple("0123456789"), {"input_shape": [8, 8, 1], "scale": 1 / 255})
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 1)).astype(np.uint8)
    cell = explain_cell(run, image, "c", row=2, col=3, channel=1)
    patch = image[1:4, 2:5, 0].astype(np.float64) / 255  # SAME, 3x3: output (2, 3) reads rows 1-3, columns 2-4
    conv = model.layer("c")
    expected = (patch * conv.weight.detach().double().numpy()[1, 0]).sum() + conv.bias.detach().double().numpy()[1]
    assert cell["value"] == pytest.approx(expected, abs=1e-5)
    merged = explain_cell(run, image, "skip", row=4, col=5, channel=6)  # an Add: which inputs made the value
    assert [part["from"] for part in merged["inputs"]] == ["a", "b"]
    assert sum(part["value"] for part in merged["inputs"]) == pytest.approx(merged["value"], abs=1e-5)
    joined = explain_cell(run, image, "concat1", row=0, col=0, channel=9)  # 8 channels of skip, then 2 of c
    assert (joined["from"], joined["from_channel"]) == ("c", 1)


def test_cells_of_depthwise_and_grouped_convolutions_read_their_own_input_channels(tmp_path):
    from cnnlab.inspect.cells import explain_cell

    torch.manual_seed(0)
    x = Input((6, 6, 4))
    dw = DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    grouped = Conv2D(4, 3, padding="same", groups=2, name="grouped")(dw)
    model = Model(x, Dense(3)(Flatten()(grouped))).eval()
    run = cnnlab.Run(tmp_path, model, ("p", "q", "r"), {"input_shape": [6, 6, 4], "scale": 1 / 255})
    image = np.random.default_rng(1).integers(0, 256, (6, 6, 4)).astype(np.uint8)
    cell = explain_cell(run, image, "dw", row=2, col=2, channel=5)  # input channel 5 // 2 = 2, its 2nd kernel
    patch = image[1:4, 1:4, 2].astype(np.float64) / 255
    w = model.layer("dw").weight.detach().double().numpy()[5, 0]
    assert cell["input_channel"] == 2
    assert cell["value"] == pytest.approx((patch * w).sum() + model.layer("dw").bias[5].item(), abs=1e-5)
    g = explain_cell(run, image, "grouped", row=0, col=0, channel=3)  # filters 2-3 read channels 4-7 of dw
    assert g["group"] == 1 and np.asarray(g["kernel"]).shape == (3, 3, 4)
    assert g["tensorflow"]["output"] == pytest.approx(g["value"], abs=1e-5)


def test_summary_says_what_each_layer_of_a_graph_is_connected_to_and_expands_nested_models():
    from cnnlab.nn.summary import summarize

    x = Input((8, 8, 3))
    a = Conv2D(4, 3, padding="same", name="a")(x)
    b = Conv2D(4, 1, name="b")(x)
    block = Model(x, Add(name="join")([a, b]), name="block")
    inputs = Input((8, 8, 3))
    y = block(inputs)
    outer = Model(inputs, Dense(2, name="head")(GlobalAveragePooling2D(name="gap")(y)), name="outer")
    s = summarize(block)
    assert s.graph and [(r.name, r.connected) for r in s.rows] == [
        ("a", "input_layer[0][0]"),
        ("b", "input_layer[0][0]"),
        ("join", "a[0][0], b[0][0]"),  # Keras's "Connected to": layer[call][tensor]
    ]
    collapsed = summarize(outer)
    assert [r.name for r in collapsed.rows] == ["block", "gap", "head"]
    assert collapsed.rows[0].params == (3 * 3 * 3 * 4 + 4) + (3 * 4 + 4) and collapsed.rows[0].kind == "Functional"
    expanded = summarize(outer, expand_nested=True)
    assert [r.name for r in expanded.rows] == ["block", "block/a", "block/b", "block/join", "gap", "head"]
    assert expanded.total == collapsed.total == 112 + 16 + (4 * 2 + 2)
    assert outer.layer("block/join") is block.layer("join")
    with torch.no_grad():
        xs = torch.randn(2, 3, 8, 8)
        torch.testing.assert_close(outer(xs), outer.layer("head")(outer.layer("gap")(block(xs))))


def test_grad_cams_automatic_layer_on_a_graph_is_the_last_map_every_path_passes_through():
    from cnnlab.inspect.attribution import gradcam_layer

    x = Input((8, 8, 1))
    stem = Conv2D(4, 3, padding="same", name="stem")(x)
    left = Conv2D(4, 3, padding="same", name="left")(stem)
    right = Conv2D(4, 1, name="right")(stem)
    joined = Add(name="join")([left, right])
    late = Conv2D(4, 3, padding="same", name="late")(stem)  # a branch that skips the join, to the head
    head = Dense(3, name="head")(GlobalAveragePooling2D(name="gap")(Concatenate(name="cat")([joined, late])))
    m = Model(x, head)
    assert m.chokepoints() == ["stem", "cat", "gap", "head"]  # 'join' and 'late' are each on one path only
    name, reason = gradcam_layer(m, torch.randn(1, 1, 8, 8))
    assert (
        name == "cat"
        and reason
        == "'cat' is the last layer with a spatial map (8x8x8) that every path to the output passes through "
        "before 'gap'"
    )
    chain = Sequential([Input((8, 8, 1)), Conv2D(2, 3, name="c1"), Conv2D(2, 3, name="c2"), Flatten(), Dense(2)])
    assert chain.chokepoints() == [layer.name for layer in chain.layers]
    assert gradcam_layer(chain, torch.randn(1, 1, 8, 8))[0] == "c2"


def test_the_zoos_residual_model_is_a_graph_counted_by_hand_and_trains(tmp_path):
    from cnnlab.nn.summary import describe

    s = describe("cnnlab-res")
    bn = 4  # gamma, beta, moving mean and variance a channel

    def block(cin, cout):
        proj = cin * cout + bn * cout if cin != cout else 0
        return 9 * cin * cout + bn * cout + 9 * cout * cout + bn * cout + proj

    expected = 9 * 32 + bn * 32 + block(32, 32) + block(32, 64) + block(64, 128) + (128 * 10 + 10)
    assert s.graph and s.total == expected == 309_418
    assert s.non_trainable == 2 * (32 + 2 * 32 + 3 * 64 + 3 * 128)  # the moving statistics
    assert {r.name: r.connected for r in s.rows}["block2_add"] == "block2_bn2[0][0], block2_proj_bn[0][0]"
    run = cnnlab.train(data="digits", model="cnnlab-res", epochs=1, out=str(tmp_path / "r"), verbose=False)
    assert run.model.kind == "Functional" and cnnlab.Run.load(tmp_path / "r").predict(np.zeros((1, 8, 8, 1))).shape == (
        1,
        10,
    )
