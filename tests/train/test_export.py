"""cnnlab export: a run as a Keras 3 file read back by cnnlab, and as ONNX run in onnxruntime."""

import numpy as np

import cnnlab


def test_cnnlab_export_writes_a_run_as_a_keras_file(tmp_path, digits_run):
    from typer.testing import CliRunner

    from cnnlab.cli import app

    run_dir, home = digits_run
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(run_dir), "--format", "keras", "-o", str(tmp_path / "m.keras")])
    assert r.exit_code == 0, r.output
    assert "it takes float32 images (N, 8, 8, 1) in [0, 1]" in " ".join(r.stdout.split())  # rich wraps lines
    run, back = cnnlab.Run.load(run_dir), cnnlab.load(tmp_path / "m.keras")
    x = np.random.default_rng(0).integers(0, 256, (5, *run.input_shape), dtype=np.uint8)
    np.testing.assert_allclose(back.predict(x, precision="fp32"), run.predict(x, precision="fp32"), atol=1e-6)
    r = runner.invoke(app, ["export", str(run_dir), "--format", "tflite", "-o", str(tmp_path / "m.tflite")])
    assert r.exit_code == 2 and "Unknown format 'tflite'" in r.output and not (tmp_path / "m.tflite").exists()


def test_cnnlab_export_onnx_runs_in_onnxruntime_as_run_predict(tmp_path, digits_run):
    """NHWC float input in [0, 1], any batch size, probabilities out: onnxruntime against Run.predict."""
    import onnx
    import onnxruntime
    from typer.testing import CliRunner

    from cnnlab.cli import app

    run_dir, _ = digits_run
    r = CliRunner().invoke(app, ["export", str(run_dir), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    assert "ONNX opset" in r.stdout
    run = cnnlab.Run.load(run_dir)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    for n in (1, 7):
        x = np.random.default_rng(n).integers(0, 256, (n, *run.input_shape), dtype=np.uint8)
        (probs,) = session.run(None, {"images": (x / 255.0).astype(np.float32)})
        np.testing.assert_allclose(probs, run.predict(x, precision="fp32"), atol=1e-3)
    proto = onnx.load(tmp_path / "m.onnx")
    assert "in [0, 1]" in proto.doc_string
    assert {p.key: p.value for p in proto.metadata_props}["classes"].split("\n") == list(run.classes)
