"""Issue 29, Deliver 3: ``cnnlab train --tensorboard DIR`` writes event files that TensorBoard's own reader
reads back: the epoch scalars equal metrics.jsonl, the steps equal steps.jsonl, a histogram a parameter an
epoch and every layer's activation histogram a watched step (stats.jsonl's), the held-out images with their
predictions, and the confusion matrix as an image."""

import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from typer.testing import CliRunner

import cnnlab
from cnnlab.cli import app


def test_tensorboard_events_hold_the_runs_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    argv = ["train", "--data", "digits", "--model", "seed-fashion", "--epochs", "2", "--batch-size", "32"]
    result = CliRunner().invoke(app, [*argv, "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 0, result.output
    events = EventAccumulator(
        str(tmp_path / "tb"), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}
    )
    events.Reload()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for key in ("loss", "accuracy", "test_loss", "test_accuracy", "lr"):
        got = [(e.step, e.value) for e in events.Scalars(f"epoch/{key}")]
        assert [s for s, _ in got] == [1, 2]
        np.testing.assert_allclose([v for _, v in got], [m[key] for m in metrics], rtol=1e-6)
    steps = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("steps/loss")] == [p["step"] for p in steps]
    run = cnnlab.Run.load(tmp_path / "run")
    names = [f"{n}/{p}" for n, layer in run.model.walk() for p, _ in layer.named_parameters(recurse=False)]
    stats = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    watched = [r for r in stats if r["kind"] == "step"]
    layers = list(watched[0]["layers"])
    assert sorted(events.Tags()["histograms"]) == sorted(
        [f"weights/{n}" for n in names] + [f"activations/{n}" for n in layers]
    )
    for name in ("conv1", "pool2", "logits"):  # each watched step's histogram as stats.jsonl recorded it
        got = events.Histograms(f"activations/{name}")
        assert [h.step for h in got] == [r["step"] for r in watched]
        h, r = got[-1].histogram_value, watched[-1]["layers"][name]
        assert list(h.bucket) == r["hist"] and h.num == sum(r["hist"])
        assert (h.min, h.max) == pytest.approx((r["min"], r["max"]))
        lo, hi = r["min"], r["max"]
        assert list(h.bucket_limit) == pytest.approx(
            [lo + (hi - lo) * (i + 1) / len(r["hist"]) for i in range(len(r["hist"]))]
        )
        assert h.sum == pytest.approx(r["mean"] * h.num, rel=1e-5, abs=1e-3)
        assert h.sum_squares == pytest.approx((r["std"] ** 2 + r["mean"] ** 2) * h.num, rel=1e-5)
    zeros = events.Scalars("zeros/conv1")
    np.testing.assert_allclose([e.value for e in zeros], [r["layers"]["conv1"]["zeros"] for r in watched], rtol=1e-6)
    norms = events.Scalars("grad_norm/conv1/weight")
    np.testing.assert_allclose(
        [e.value for e in norms], [r["weights"]["conv1/weight"]["grad_norm"] for r in watched], rtol=1e-6
    )
    last = events.Histograms("weights/conv1/weight")[-1]
    assert last.step == 2 and last.histogram_value.num == 3 * 3 * 1 * 32
    images = events.Images("test/images")
    assert [i.step for i in images] == [1, 2] and images[-1].width * images[-1].height >= 8 * 8 * 8  # 8 of 8x8
    confusion = events.Images("test/confusion")[-1]
    assert confusion.width > 300 and confusion.height > 300
    text = events.Tensors("test/predictions/text_summary")[-1].tensor_proto.string_val[0].decode()
    ds = cnnlab.data.load("digits")
    first = text.split("  \n")[0]
    assert first.startswith(f"0: {ds.classes[ds.test.y[0]]} -> ")
    assert text.count("->") == 8
