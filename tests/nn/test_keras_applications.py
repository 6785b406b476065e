"""keras.applications models, built by real Keras on TensorFlow in the peers' venv during the test session
(``benchmarks/peers/keras_apps.py``, ``weights=None``: nothing is downloaded), read by cnnlab without
TensorFlow: every layer agrees with TensorFlow's output for the same input, the parameters are counted as
Keras counts them, and cnnlab's export loads back in Keras and predicts what cnnlab does."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cnnlab
from cnnlab.inspect import feature_maps
from cnnlab.nn.keras_write import write_keras

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
APPS = [
    "layers",
    "vgg16",
    "resnet50",
    "mobilenetv2",
    "mobilenetv3small",
    "efficientnetb0",
    "densenet121",
    "inceptionv3",
]
EXPORTED = [*APPS[1:], "transfer"]  # every application, VGG16 and InceptionV3 (60-90 MB files) too
PEER_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> Path:
    assert PEER_PYTHON.exists(), f"Keras on TensorFlow is missing ({PEER_PYTHON}): `make test` builds it"
    out = tmp_path_factory.mktemp("keras-apps")
    made = subprocess.run(
        [str(PEER_PYTHON), "keras_apps.py", str(out)],
        cwd=ROOT / "benchmarks" / "peers",
        capture_output=True,
        text=True,
        env=PEER_ENV,
        timeout=900,
    )
    assert made.returncode == 0, made.stdout + made.stderr[-3000:]
    return out


def _agrees(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Within 1e-4 of the layer's largest value (relative to the layer's scale, as float32 sums allow)."""
    assert ours.shape == theirs.shape, f"{what}: {ours.shape} against TensorFlow's {theirs.shape}"
    scale = max(float(np.abs(theirs).max()), 1e-6)
    worst = float(np.abs(ours.astype(np.float64) - theirs).max()) / scale
    assert worst <= 1e-4, f"{what}: differs from TensorFlow by {worst:.2e} of its largest value"


@pytest.mark.parametrize("name", [*APPS, "transfer", "mobilenetv2.h5", "transfer.h5", "mobilenetv2_keras2.h5"])
def test_every_layer_agrees_with_tensorflow_and_params_count_as_keras(apps, name):
    stem = name.split(".")[0]
    path = apps / (name if "." in name else f"{name}.keras")
    run = cnnlab.load(path)
    tf = np.load(apps / f"{stem}.npz")
    layers = [k for k in tf.files if k not in ("x", "keras_params")]
    maps = feature_maps(run, tf["x"])
    if stem == "transfer":  # a one-unit head: cnnlab reads it as two classes, after Keras's layers
        assert list(maps)[-1] == "two_classes" and run.classes == ("0", "1")
        z = tf["logit"].astype(np.float64)
        np.testing.assert_allclose(run.predict(tf["x"], precision="fp32")[:, 1], 1 / (1 + np.exp(-z[:, 0])), rtol=1e-4)
        maps.pop("two_classes")
    operations = {n for n, layer in run.model.walk() if layer.kind == "Operation"}  # x + 3.0: not Keras layers
    assert sorted(set(maps) - operations) == sorted(layers)  # every layer, a nested one's as outer/inner
    for layer in layers:
        _agrees(maps[layer], tf[layer], f"{stem} layer {layer!r}")
    total, trainable, frozen = tf["keras_params"].tolist()
    assert run.model.count_params() == (trainable, frozen)
    assert (trainable + frozen) == total


def test_a_frozen_nested_base_stays_frozen_and_in_inference_mode_while_training(apps):
    run = cnnlab.load(apps / "transfer.keras")
    base = run.model.layer("mobilenetv2")
    assert base.frozen and not any(p.requires_grad for p in base.parameters())
    assert run.model.layer("logit").weight.requires_grad
    run.model.train()
    assert run.model.training and not base.training and not run.model.layer("mobilenetv2/bn_Conv1").training
    run.model.eval()


def test_exports_of_applications_load_in_keras_and_predict_what_cnnlab_does(apps, tmp_path):
    """cnnlab's .keras files of every application (and the nested transfer model), read by Keras."""
    for name in EXPORTED:
        run = cnnlab.load(apps / f"{name}.keras")
        x = np.load(apps / f"{name}.npz")["x"]
        write_keras(run.model, tmp_path / f"{name}.keras")
        again = cnnlab.load(tmp_path / f"{name}.keras")
        probs = run.predict(x, precision="fp32")  # float pixels go in as they are
        np.testing.assert_allclose(again.predict(x, precision="fp32"), probs, rtol=1e-5, atol=1e-6)
        keras_says = probs[:, 1:] if name == "transfer" else probs  # Keras's binary head: P(second class)
        np.savez(tmp_path / f"{name}.npz", x=x, expected=keras_says)
    checked = subprocess.run(
        [str(PEER_PYTHON), str(ROOT / "benchmarks" / "peers" / "keras_check.py"), str(tmp_path), "1e-4"],
        capture_output=True,
        text=True,
        env=PEER_ENV,
        timeout=600,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr[-3000:]
    assert checked.stdout.count("keras.saving.load_model ok") == len(EXPORTED), checked.stdout


@pytest.mark.parametrize(
    "name, layer",
    [  # the layers people pass to Grad-CAM for these networks: the output of the last block
        ("resnet50", "conv5_block3_out"),
        ("mobilenetv2", "out_relu"),
        ("densenet121", "relu"),
        ("transfer", "mobilenetv2/out_relu"),  # inside the nested base, where the question is usually asked
    ],
)
def test_grad_cam_finds_the_last_block_of_an_application_and_explains_through_a_nested_base(apps, name, layer):
    from cnnlab.inspect import explain

    run = cnnlab.load(apps / f"{name}.keras")
    x = np.load(apps / f"{name}.npz")["x"][0]
    a = explain(run, x, "gradcam")
    assert a.layer == layer and "every path to the output passes through" in a.reason
    assert a.heatmap.shape == x.shape[:2] and a.heatmap.max() == pytest.approx(1.0)
    assert np.isfinite(explain(run, x, "saliency").heatmap).all()
    if name in ("resnet50", "transfer"):  # TensorFlow's own Grad-CAM, through the nested base for transfer
        checked = subprocess.run(
            [str(PEER_PYTHON), str(ROOT / "benchmarks" / "peers" / "keras_gradcam.py"), str(apps / f"{name}.keras")]
            + [str(apps / f"{name}.npz"), layer, str(a.target)],
            capture_output=True,
            text=True,
            env=PEER_ENV,
            timeout=300,
        )
        assert checked.returncode == 0, checked.stderr[-3000:]
        theirs = np.array(json.loads(checked.stdout.strip().splitlines()[-1])["heatmap"])
        np.testing.assert_allclose(a.heatmap, theirs, atol=1e-3)


def test_an_application_with_a_layer_cnnlab_does_not_compute_is_a_one_line_refusal_naming_it(apps):
    """ConvNeXt's LayerScale is a class of Keras's applications module, not a layer of Keras's vocabulary."""
    from cnnlab.nn.keras_file import KerasFileError

    with pytest.raises(
        KerasFileError, match=r"^convnexttiny.keras: layer '\S+_layer_scale' \(LayerScale\) is not supported\."
    ) as e:
        cnnlab.load(apps / "convnexttiny.keras")
    assert "\n" not in str(e.value)


def test_models_summary_of_a_keras_file_has_connected_to_and_expands_the_nested_base(apps):
    from typer.testing import CliRunner

    from cnnlab.cli import app

    path = str(apps / "transfer.keras")
    r = CliRunner().invoke(app, ["models", "summary", path, "--expand-nested"], terminal_width=250)
    assert r.exit_code == 0, r.output
    assert "Connected to" in r.stdout and "mobilenetv2/Conv1 (Conv2D)" in r.stdout
    assert "mobilenetv2 (Functional)" in r.stdout and "augment/random_flip (Augmentation)" in r.stdout
    collapsed = CliRunner().invoke(app, ["models", "summary", path], terminal_width=250).stdout
    assert "mobilenetv2/Conv1" not in collapsed and "mobilenetv2 (Functional)" in collapsed
    total, trainable, frozen = np.load(apps / "transfer.npz")["keras_params"].tolist()
    assert f"Total params: {total:,}" in collapsed and f"Non-trainable params: {frozen:,}" in collapsed


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.asarray(z, np.float64)))


def _keras_probabilities(apps, name) -> np.ndarray:
    """What TensorFlow's model gave for the fixture's two images: a class's probability a column."""
    tf = np.load(apps / f"{name}.npz")
    if name == "transfer":  # Keras's one unit: the logit of the second class
        p = _sigmoid(tf["logit"][:, 0])
        return np.stack([1 - p, p], axis=1)
    return tf["predictions"]


def test_applications_export_to_onnx_and_run_in_onnxruntime_as_in_tensorflow(apps, tmp_path):
    """`cnnlab export --format onnx` of a Keras file: onnxruntime gives TensorFlow's probabilities."""
    import onnxruntime
    from typer.testing import CliRunner

    from cnnlab.cli import app

    for name in ("efficientnetb0", "transfer"):
        out = tmp_path / f"{name}.onnx"
        r = CliRunner().invoke(app, ["export", str(apps / f"{name}.keras"), "--format", "onnx", "-o", str(out)])
        assert r.exit_code == 0, r.output
        (probs,) = onnxruntime.InferenceSession(str(out)).run(None, {"images": np.load(apps / f"{name}.npz")["x"]})
        np.testing.assert_allclose(probs, _keras_probabilities(apps, name), atol=1e-5)


def _image_folder(root: Path, images: np.ndarray, classes: list[str]) -> Path:
    """train/ and test/ folders holding ``images[i]`` under ``classes[i]`` (PNG, as a user's photos)."""
    from PIL import Image

    for split in ("train", "test"):
        for i, (img, label) in enumerate(zip(images, classes, strict=True)):
            (root / split / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / split / label / f"{i}.png")
    return root


def test_a_keras_application_is_evaluated_on_a_photo_folder_with_tensorflows_numbers(apps, tmp_path):
    """The transfer model reads uint8 photos as they are (its Rescaling sits behind the augmentation Sequential):
    `cnnlab eval` on a folder gives the accuracy and cross-entropy of TensorFlow's own probabilities."""
    from typer.testing import CliRunner

    from cnnlab.cli import app

    keras_says = _keras_probabilities(apps, "transfer")
    x = np.load(apps / "transfer.npz")["x"].astype(np.uint8)  # whole pixel values, so PNGs carry them exactly
    told = keras_says.argmax(1)
    labels = [told[0], 1 - told[1]]  # the first as TensorFlow says, the second not
    folder = _image_folder(tmp_path / "photos", x, [("cats", "dogs")[k] for k in labels])
    run = cnnlab.load(apps / "transfer.keras")
    assert run.scale == 1.0 and "'augment/random_flip'" not in run.preprocessing["input_note"]
    assert "first layer 'rescale' rescales them" in run.preprocessing["input_note"]
    r = CliRunner().invoke(
        app,
        ["eval", str(apps / "transfer.keras"), "--data", str(folder), "--precision", "fp32", "--json"]
        + ["-o", str(tmp_path / "figures")],
    )
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout.strip().splitlines()[-1])
    assert ev["classes"] == ["cats", "dogs"] and ev["accuracy"] == 0.5
    loss = -np.mean([np.log(keras_says[i, k]) for i, k in enumerate(labels)])
    assert ev["loss"] == pytest.approx(loss, rel=1e-4)
    assert (tmp_path / "figures" / "confusion.png").is_file()


def test_a_served_folder_of_keras_applications_predicts_explains_and_maps_them(apps, tmp_path):
    """`cnnlab serve` on a folder of .keras files: each is listed with its graph, predicts an uploaded photo as
    the library does (which agrees with TensorFlow), and Grad-CAM and the maps reach into the nested base."""
    import io
    import shutil

    import httpx
    from PIL import Image

    from cnnlab.web import create_app
    from servers import Server

    root = tmp_path / "served"
    root.mkdir()
    for name in ("efficientnetb0", "transfer"):
        shutil.copy2(apps / f"{name}.keras", root)
    with Server(create_app(root)) as url:
        listed = httpx.get(f"{url}/api/runs", timeout=30).json()["runs"]
        assert sorted(r["id"] for r in listed) == ["efficientnetb0.keras", "transfer.keras"]
        for name in ("efficientnetb0", "transfer"):
            x = np.load(apps / f"{name}.npz")["x"].astype(np.uint8)
            run = cnnlab.load(apps / f"{name}.keras")
            np.testing.assert_allclose(run.predict(x, precision="fp32"), _keras_probabilities(apps, name), atol=1e-5)
            buf = io.BytesIO()
            Image.fromarray(x[0]).save(buf, format="PNG")
            photo = {"file": ("photo.png", buf.getvalue())}
            info = httpx.get(f"{url}/api/runs/{name}.keras", timeout=60).json()
            assert info["input_shape"] == [64, 64, 3] and info["graph"] is not None
            said = httpx.post(f"{url}/api/runs/{name}.keras/predict", files=photo, timeout=60).json()
            np.testing.assert_allclose(said["probabilities"], run.predict(x[:1])[0], atol=2e-6)
            cam = httpx.post(f"{url}/api/runs/{name}.keras/explain", files=photo, timeout=120).json()
            assert cam["layer"] == {"efficientnetb0": "top_activation", "transfer": "mobilenetv2/out_relu"}[name]
        maps = httpx.post(
            f"{url}/api/runs/transfer.keras/feature-maps?layers=mobilenetv2/block_16_project", files=photo, timeout=60
        ).json()
        (layer,) = maps["layers"]
        assert layer["name"] == "mobilenetv2/block_16_project" and layer["kind"] == "Conv2D"
        theirs = np.load(apps / "transfer.npz")["mobilenetv2/block_16_project"][0]  # TensorFlow's, for x[0]
        scale = 1e-4 * np.abs(theirs).max()
        np.testing.assert_allclose(layer["min"], theirs.min(axis=(0, 1)), atol=scale + 1e-5)
        np.testing.assert_allclose(layer["max"], theirs.max(axis=(0, 1)), atol=scale + 1e-5)
