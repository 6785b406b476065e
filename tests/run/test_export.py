"""cnnlab export: a run as a Keras 3 file read back by cnnlab and by Keras on TensorFlow, and as ONNX run in
onnxruntime."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import cnnlab
from cnnlab.cli import app

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "keras"
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"  # Keras on TensorFlow, built by `make test`


def test_cnnlab_export_writes_a_run_as_a_keras_file(tmp_path, digits_run):
    run_dir, home = digits_run
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(run_dir), "--format", "keras", "-o", str(tmp_path / "m.keras")])
    assert r.exit_code == 0, r.output
    assert "it takes float32 images (N, 8, 8, 1) in [0, 1]" in " ".join(r.stdout.split())  # rich wraps lines
    run, back = cnnlab.Run.load(run_dir), cnnlab.load(tmp_path / "m.keras")
    assert "outputs probabilities" in cnnlab.export(run, tmp_path / "again.keras")  # the same from Python
    assert (tmp_path / "again.keras").read_bytes()[:2] == b"PK"
    x = np.random.default_rng(0).integers(0, 256, (5, *run.input_shape), dtype=np.uint8)
    np.testing.assert_allclose(back.predict(x, precision="fp32"), run.predict(x, precision="fp32"), atol=1e-6)
    r = runner.invoke(app, ["export", str(run_dir), "--format", "tflite", "-o", str(tmp_path / "m.tflite")])
    assert r.exit_code == 2 and "Unknown format 'tflite'" in r.output and not (tmp_path / "m.tflite").exists()


def test_cnnlab_export_onnx_runs_in_onnxruntime_as_run_predict(tmp_path, digits_run):
    """NHWC float input in [0, 1], any batch size, probabilities out: onnxruntime against Run.predict."""
    import onnx
    import onnxruntime

    run_dir, home = digits_run
    r = subprocess.run(
        [str(Path(sys.executable).parent / "cnnlab"), "export", str(run_dir), "--format", "onnx"]
        + ["-o", str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
        env={**os.environ, "CNNLAB_HOME": str(home), "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr
    assert "ONNX opset" in r.stdout
    assert r.stderr == ""  # the exporter's notes to torch's developers (skipped torchvision ops) are not shown
    run = cnnlab.Run.load(run_dir)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    for n in (1, 7):
        x = np.random.default_rng(n).integers(0, 256, (n, *run.input_shape), dtype=np.uint8)
        (probs,) = session.run(None, {"images": (x / 255.0).astype(np.float32)})
        np.testing.assert_allclose(probs, run.predict(x, precision="fp32"), atol=1e-3)
    proto = onnx.load(tmp_path / "m.onnx")
    assert "in [0, 1]" in proto.doc_string
    assert {p.key: p.value for p in proto.metadata_props}["classes"].split("\n") == list(run.classes)


def test_keras_on_tensorflow_loads_cnnlab_exports(tmp_path, runs_root, real_data):
    """`cnnlab export --format keras` of a real MNIST run, and of the Keras-made test models read back, loads
    with keras.saving.load_model on TensorFlow (the peers' venv) and predicts what cnnlab and TensorFlow did."""
    assert PEER_PYTHON.exists(), f"Keras on TensorFlow is missing ({PEER_PYTHON}): `make test` builds it"
    runner = CliRunner()
    run = cnnlab.Run.load(runs_root / "mnist")
    images = cnnlab.data.load("mnist").test.x[:64]
    expected = {"mnist": ((images / 255.0).astype(np.float32), run.predict(images, precision="fp32"))}
    for name in ("seq_bn", "seq_gap", "func_chain", "seq_rescale"):
        reference = np.load(FIXTURES / f"{name}.npz")
        # what TensorFlow computed for Keras's original; the export outputs probabilities where it gave logits
        if "probs" in reference.files:
            expected[name] = (reference["x"], reference["probs"])
        else:
            logits = reference["logits"].astype(np.float64)
            e = np.exp(logits - logits.max(1, keepdims=True))
            expected[name] = (reference["x"], e / e.sum(1, keepdims=True))
    for name, (x, probs) in expected.items():
        source = runs_root / "mnist" if name == "mnist" else FIXTURES / f"{name}.keras"
        r = runner.invoke(app, ["export", str(source), "--format", "keras", "-o", str(tmp_path / f"{name}.keras")])
        assert r.exit_code == 0, r.output
        np.savez(tmp_path / f"{name}.npz", x=x, expected=probs)
    checked = subprocess.run(
        [str(PEER_PYTHON), str(ROOT / "benchmarks" / "peers" / "keras_check.py"), str(tmp_path), "1e-3"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr[-3000:]
    lines = [line for line in checked.stdout.splitlines() if "keras.saving.load_model ok" in line]
    assert sorted(line.split(":")[0] for line in lines) == sorted(f"{name}.keras" for name in expected)
