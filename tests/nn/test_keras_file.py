"""Keras 3 .keras files read without TensorFlow: activations against what TensorFlow computed for the same
inputs (tests/fixtures/keras, written by benchmarks/peers/keras_fixtures.py on real Keras), and every
kind of damaged file refused in one line."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnnlab
from cnnlab.inspect import feature_maps
from cnnlab.nn.keras_file import KerasFileError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "keras"


def keras_layers(npz) -> list[str]:
    """The layer names of a fixture, in order: every array but the inputs and what Keras reported."""
    return [k for k in npz.files if k not in ("x", "keras_params", "test_accuracy", "test_predicted")]


@pytest.mark.parametrize(
    "name",
    [
        "seq_bn.keras",
        "seq_gap.keras",
        "func_chain.keras",
        "func_branch.keras",  # two branches from the input, added
        "seq_bn.h5",
        "func_chain.h5",
        "fashion_cnn.keras",
        "keras2_chain.h5",  # saved by Keras 2 (tf-keras 2.21): batch_input_shape, weights at Keras 2's paths
    ],
)
def test_every_layer_agrees_with_tensorflow(name):
    run = cnnlab.load(FIXTURES / name)
    name = name.split(".")[0]
    tf = np.load(FIXTURES / f"{name}.npz")
    expected = keras_layers(tf)
    maps = feature_maps(run, tf["x"])
    assert list(maps) == expected  # the Keras layer names, in order
    for layer, ours in maps.items():
        np.testing.assert_allclose(ours, tf[layer], rtol=1e-4, atol=1e-4 * np.abs(tf[layer]).max(), err_msg=layer)


def test_predictions_and_the_input_convention():
    run = cnnlab.load(FIXTURES / "seq_bn.keras")
    tf = np.load(FIXTURES / "seq_bn.npz")
    np.testing.assert_allclose(run.predict(tf["x"], precision="fp32"), tf["probs"], atol=1e-5)
    u8 = np.round(tf["x"] * 255).astype(np.uint8)  # uint8 images are scaled by 1/255, as the tutorials feed them
    np.testing.assert_allclose(run.predict(u8, precision="fp32"), run.predict(u8 / 255.0, precision="fp32"), atol=1e-6)
    assert run.classes == tuple(str(i) for i in range(10)) and run.input_shape == (28, 28, 1)


def test_class_names_from_the_caller_or_a_classes_txt(tmp_path):
    copy = tmp_path / "m.keras"
    copy.write_bytes((FIXTURES / "seq_gap.keras").read_bytes())
    assert cnnlab.load(copy, classes=["a", "b", "c", "d"]).classes == ("a", "b", "c", "d")
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\nfish\n")
    assert cnnlab.load(copy).classes == ("cat", "dog", "bird", "fish")
    with pytest.raises(KerasFileError, match=r"3 class names for a model with 4 outputs"):
        cnnlab.load(copy, classes=["a", "b", "c"])


def rewritten(tmp_path, change, drop=None) -> Path:
    """seq_bn.keras with its config.json changed by ``change`` (and the member ``drop`` left out)."""
    out = tmp_path / f"changed-{len(list(tmp_path.glob('changed-*')))}.keras"
    with zipfile.ZipFile(FIXTURES / "seq_bn.keras") as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            if item == drop:
                continue
            data = src.read(item)
            if item == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    return out


def layer_named(config, name):
    return next(item for item in config["config"]["layers"] if item["config"].get("name") == name)


def test_damaged_or_unsupported_files_are_one_clear_line(tmp_path):
    (tmp_path / "text.keras").write_text("not a zip")
    cases = [
        (tmp_path / "text.keras", r"is not a .keras file \(not a zip archive"),
        (rewritten(tmp_path, lambda c: None, drop="config.json"), r"has no config.json"),
        (
            rewritten(tmp_path, lambda c: layer_named(c, "conv2")["config"].update(filters=9)),
            r"layer 'conv2' \(Conv2D\): the kernel in the weights is \(3, 3, 8, 8\)"
            r" but the config makes it \(3, 3, 8, 9\)",  # Keras's HWIO, as the file has it
        ),
        (
            rewritten(tmp_path, lambda c: layer_named(c, "act2").update(class_name="Lambda")),
            r"layer 'act2' \(Lambda\) is not supported. It carries code, and cnnlab runs no code from a file",
        ),
        (rewritten(tmp_path, lambda c: c.update(class_name="Custom")), r"holds a Custom model"),
        (
            rewritten(
                tmp_path, lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 10**6, 10**6, 1])
            ),
            r"declares the input \[1000000, 1000000, 1\]",
        ),
        (
            rewritten(tmp_path, lambda c: layer_named(c, "fc1")["config"].update(activation={"class_name": "MyAct"})),
            r"activation .* is not a built-in name; cnnlab runs no code from a file",
        ),
    ]
    missing = rewritten(tmp_path, lambda c: layer_named(c, "conv1")["config"].pop("filters"))
    cases.append((missing, r"layer 'conv1' \(Conv2D\): its config has no 'filters'"))
    for path, message in cases:
        with pytest.raises(KerasFileError, match=message):
            cnnlab.load(path)
    whole = (FIXTURES / "seq_bn.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(KerasFileError):
        cnnlab.load(tmp_path / "cut.keras")
    assert KerasFileError.exit_code == 2


@pytest.mark.parametrize(
    "name",
    ["seq_bn.keras", "seq_gap.keras", "func_chain.keras", "seq_rescale.keras", "fashion_cnn.keras", "keras2_chain.h5"],
)
def test_models_summary_counts_as_keras_does(name):
    """Keras's totals, saved with the fixture: BatchNorm's moving statistics are non-trainable params, and a
    BatchNormalization(center=False) has no beta."""
    from typer.testing import CliRunner

    from cnnlab.cli import app

    r = CliRunner().invoke(app, ["models", "summary", str(FIXTURES / name), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    name = name.split(".")[0]
    total, trainable, frozen = np.load(FIXTURES / f"{name}.npz")["keras_params"].tolist()
    assert (s["total_params"], s["trainable_params"], s["non_trainable_params"]) == (total, trainable, frozen)
    assert [layer["name"] for layer in s["layers"]] == keras_layers(np.load(FIXTURES / f"{name}.npz"))


def test_predict_inspect_and_eval_take_a_keras_file(tmp_path, real_home, monkeypatch):
    from PIL import Image
    from typer.testing import CliRunner

    from cnnlab.cli import app

    monkeypatch.setenv("CNNLAB_HOME", str(real_home))
    runner = CliRunner()
    model = tmp_path / "digits.keras"
    model.write_bytes((FIXTURES / "seq_bn.keras").read_bytes())
    ds = cnnlab.data.load("mnist")
    image = tmp_path / "seven.png"
    Image.fromarray(ds.test.x[0, :, :, 0]).save(image)
    names = "zero,one,two,three,four,five,six,seven,eight,nine"
    r = runner.invoke(app, ["predict", str(model), str(image), "--classes", names, "--json"])
    assert r.exit_code == 0, r.output
    probs = cnnlab.load(model).predict(ds.test.x[:1])[0]
    assert json.loads(r.stdout)[0]["top"][0]["class"] == names.split(",")[int(probs.argmax())]
    r = runner.invoke(app, ["inspect", str(model), "--image", str(image), "-o", str(tmp_path / "look")])
    assert r.exit_code == 0, r.output
    index = json.loads((tmp_path / "look" / "index.json").read_text())
    assert [e["layer"] for e in index["figures"] if e["kind"] == "feature_maps"][:3] == ["conv1", "bn1", "pool1"]
    r = runner.invoke(app, ["eval", str(model), "--data", "mnist", "-o", str(tmp_path / "ev"), "--json"])
    assert r.exit_code == 0, r.output
    predicted = cnnlab.load(model).predict(ds.test.x).argmax(1)
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(float((predicted == ds.test.y).mean()), abs=1e-4)


def test_a_model_trained_in_keras_evaluates_as_keras_did(tmp_path, real_home, monkeypatch):
    """fashion_cnn was trained by Keras on TensorFlow on the real Fashion-MNIST (x / 255.0, 3 epochs) and saved
    with model.save, optimizer state and all. `cnnlab eval --data fashion-mnist` gives Keras's own test
    accuracy, and the predicted class of each of the 10,000 test images is the one Keras predicted."""
    from typer.testing import CliRunner

    from cnnlab.cli import app

    monkeypatch.setenv("CNNLAB_HOME", str(real_home))
    keras_said = np.load(FIXTURES / "fashion_cnn.npz")
    ds = cnnlab.data.load("fashion-mnist")
    args = ["eval", str(FIXTURES / "fashion_cnn.keras"), "--data", "fashion-mnist", "--precision", "fp32"]
    r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "ev"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(float(keras_said["test_accuracy"]), abs=3e-4)
    predicted = cnnlab.load(FIXTURES / "fashion_cnn.keras").predict(ds.test.x, precision="fp32").argmax(1)
    assert (predicted != keras_said["test_predicted"]).sum() <= 3  # a near-tie may round the other way
    assert (tmp_path / "ev" / "confusion.png").exists()
    r = CliRunner().invoke(app, ["report", args[1], "--data", "fashion-mnist", "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text()
    assert "Feature maps through every layer" in html and "Ankle boot" in html  # the dataset's class names
    assert all(f"{layer} (" in html for layer in ("conv1", "bn2", "gap", "probs"))  # Keras's layer names


def test_a_layer_wired_to_more_inputs_than_it_takes_is_refused_naming_it(tmp_path):
    import h5py

    copy = tmp_path / "keras2_branch.h5"  # Keras 2 lists a node's inputs as [layer, node, tensor, kwargs]
    copy.write_bytes((FIXTURES / "keras2_chain.h5").read_bytes())
    with h5py.File(copy, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        conv2 = next(item for item in config["config"]["layers"] if item["name"] == "conv2")
        conv2["inbound_nodes"] = [[["avg1", 0, 0, {}], ["conv1", 0, 0, {}]]]
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(KerasFileError, match=r"keras2_branch.h5: Conv2D 'conv2' takes one tensor.*it was given 2"):
        cnnlab.load(copy)


def test_a_keras_2_h5_declares_its_input_as_batch_input_shape(tmp_path):
    """Keras 2 wrote batch_input_shape where Keras 3 writes batch_shape; the weights are the same."""
    import h5py

    copy = tmp_path / "keras2.h5"
    copy.write_bytes((FIXTURES / "seq_bn.h5").read_bytes())
    with h5py.File(copy, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        first = config["config"]["layers"][0]["config"]
        first["batch_input_shape"] = first.pop("batch_shape")
        f.attrs["model_config"] = json.dumps(config)
    tf = np.load(FIXTURES / "seq_bn.npz")
    np.testing.assert_allclose(cnnlab.load(copy).predict(tf["x"], precision="fp32"), tf["probs"], atol=1e-5)
    with h5py.File(copy, "r+") as f:
        del f.attrs["model_config"]
    with pytest.raises(KerasFileError, match=r"holds weights only \(no model_config\)"):
        cnnlab.load(copy)


@pytest.mark.parametrize("name", ["seq_bn", "seq_gap", "func_chain", "seq_rescale"])
def test_written_keras_files_say_what_keras_says(name, tmp_path):
    """A model read from a file Keras wrote, written back by cnnlab: every config value cnnlab writes is the
    value Keras wrote for that layer, the weights sit at Keras's paths with Keras's shapes and values, and
    reading it back predicts exactly the same."""
    import h5py

    from cnnlab.nn.keras_write import write_keras

    source = FIXTURES / f"{name}.keras"
    run = cnnlab.load(source)
    out = write_keras(run.model, tmp_path / "again.keras")
    with zipfile.ZipFile(source) as a, zipfile.ZipFile(out) as b:
        theirs, ours = json.loads(a.read("config.json")), json.loads(b.read("config.json"))
        keras_layers_ = [item for item in theirs["config"]["layers"] if item["class_name"] != "InputLayer"]
        our_layers = ours["config"]["layers"][1:]
        if keras_layers_[-1]["config"].get("activation") != "softmax" and keras_layers_[-1]["class_name"] != "Softmax":
            added = our_layers.pop()  # a model that ends in logits is written to output probabilities
            assert (added["class_name"], added["config"]["name"]) == ("Softmax", "probabilities")
        for k, o in zip(keras_layers_, our_layers, strict=True):
            assert o["class_name"] == k["class_name"]
            for key, value in o["config"].items():
                if key not in ("dtype", "trainable"):
                    assert k["config"][key] == value, (o["config"]["name"], key)
        assert ours["config"]["layers"][0]["config"]["batch_shape"] == [None, *run.input_shape]
        with (
            h5py.File(io.BytesIO(a.read("model.weights.h5"))) as wa,
            h5py.File(io.BytesIO(b.read("model.weights.h5"))) as wb,
        ):

            def arrays(f):
                found = {}
                f.visititems(lambda n, o: found.update({n: np.asarray(o)}) if isinstance(o, h5py.Dataset) else None)
                return found

            theirs_w, ours_w = arrays(wa), arrays(wb)
    assert theirs_w.keys() == ours_w.keys()
    for key, value in theirs_w.items():
        np.testing.assert_array_equal(ours_w[key], value, err_msg=key)
    x = np.load(FIXTURES / f"{name}.npz")["x"]
    np.testing.assert_array_equal(cnnlab.load(out).predict(x, precision="fp32"), run.predict(x, precision="fp32"))


def test_the_input_convention_is_said_in_the_notes():
    """Without Rescaling, uint8 pixels are scaled by 1/255; with it, they go in raw and the model rescales."""
    plain, rescaling = cnnlab.load(FIXTURES / "seq_bn.keras"), cnnlab.load(FIXTURES / "seq_rescale.keras")
    u8 = np.random.default_rng(0).integers(0, 256, (2, 12, 12, 1), dtype=np.uint8)
    probs, notes = rescaling.predict_with_notes(u8, precision="fp32")
    assert notes == ["uint8 pixels go in as they are: the model's first layer 'rescale' rescales them"]
    np.testing.assert_allclose(probs, rescaling.predict(u8.astype(np.float32), precision="fp32"), atol=1e-6)
    _, notes = plain.predict_with_notes(np.zeros((1, 28, 28, 1), np.uint8))
    assert notes[0].startswith("uint8 pixels are scaled by 1/255 (the model has no Rescaling layer)")
