"""examples/ are part of the product: they must run and stay short."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lowlevel_fashion.py"


def test_lowlevel_example_is_under_60_lines():
    assert len(EXAMPLE.read_text().splitlines()) < 60


@pytest.mark.slow
def test_lowlevel_example_trains_on_real_fashion_mnist(real_home):
    env = {"CNNLAB_HOME": str(real_home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--limit", "6000"], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", r.stdout).group(1))
    assert accuracy > 0.75  # 6,000 images, one epoch: well above chance (0.10)


def test_the_functional_resnet_trains_on_real_fashion_mnist_and_exports_to_keras_and_onnx(real_data, tmp_path):
    """The README's ResNet in the functional API: one real epoch, Keras's "Connected to" on its Add layers, and
    its exports: the .keras file read by Keras on TensorFlow, the ONNX model by onnxruntime, both as Run.predict."""
    import subprocess

    import numpy as np
    import onnxruntime

    import cnnlab
    from cnnlab.run.export import export

    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        module = importlib.import_module("resnet_functional")
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    run = cnnlab.train(
        data="fashion-mnist", module=module.resnet(), epochs=1, lr=3e-3, out=str(tmp_path / "r"), verbose=False
    )
    assert run.metrics[-1]["test_accuracy"] > 0.75, run.metrics
    rows = {r.name: r for r in cnnlab.nn.summarize(run.model).rows}
    assert rows["block2_add"].connected == "block2_bn2[0][0], block2_proj_bn[0][0]"
    assert rows["block1_add"].connected == "block1_bn2[0][0], stem[0][0]"  # the identity shortcut
    images = cnnlab.data.load("fashion-mnist").test.x[:32]
    probs = run.predict(images, precision="fp32")
    for fmt in ("keras", "onnx"):
        assert "outputs probabilities" in export(
            cnnlab.Run.load(tmp_path / "r"), tmp_path / "out" / f"resnet.{fmt}", fmt
        )
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "resnet.onnx"))
    (onnx_probs,) = session.run(None, {"images": (images / 255.0).astype(np.float32)})
    np.testing.assert_allclose(onnx_probs, probs, atol=1e-4)
    np.savez(tmp_path / "out" / "resnet.npz", x=(images / 255.0).astype(np.float32), expected=probs)
    root = Path(__file__).resolve().parents[1]
    checked = subprocess.run(
        [str(root / ".venv-peers" / "bin" / "python"), str(root / "benchmarks" / "peers" / "keras_check.py")]
        + [str(tmp_path / "out"), "1e-4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0 and "resnet.keras: keras.saving.load_model ok" in checked.stdout, checked.stderr[
        -2000:
    ]


def test_every_picture_the_readme_shows_is_a_png_in_the_clone():
    from PIL import Image

    root = Path(__file__).resolve().parent.parent
    shown = re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", (root / "README.md").read_text())
    assert len(shown) >= 10
    for alt, path in shown:
        assert not path.startswith(("http:", "https:", "/")), path  # the clone's own file, shown offline
        with Image.open(root / path) as img:
            assert img.format == "PNG" and min(img.size) >= 200, (path, img.size)
        assert len(alt) > 20, f"{path}: say what the picture shows"
