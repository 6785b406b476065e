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
    for name in ("mobilenetv2", "mobilenetv3small", "efficientnetb0", "densenet121", "resnet50", "transfer"):
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
    assert checked.stdout.count("keras.saving.load_model ok") == 6, checked.stdout


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
