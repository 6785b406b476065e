"""Issue 29, Deliver 1: training statistics. Each recorded statistic equals a NumPy computation over the same
activations (captured beside the recorder by a hook of the test's own); a run writes about 20 watched steps an
epoch with every layer, its weights, gradients and updates, and the channels that never fired; a layer made
to die is all zeros and all its channels never fire; a resumed run keeps the lines of its finished epochs;
--stats off writes nothing."""

import copy
import json

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.nn import zoo
from cnnlab.training.stats import BINS, Recorder, _fired, histograms_over_time, layer_stats


def numpy_stats(a: np.ndarray, relu: bool) -> dict:
    a = a.astype(np.float64).ravel()
    counts, _ = np.histogram(a, bins=BINS, range=(a.min(), a.max()))
    out = {"mean": a.mean(), "std": a.std(), "min": a.min(), "max": a.max(), "hist": counts}
    if relu:
        out["zeros"] = (a == 0).mean()
    return out


def test_each_statistic_is_numpys_over_the_same_activations():
    torch.manual_seed(0)
    net = zoo.build("seed-fashion").train()
    x = torch.rand(16, 1, 28, 28)
    seen = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.detach().numpy())) for n, m in net.walk()
    ]
    records = []
    watch = Recorder(net, records)
    with watch.watching():
        net(x).sum().backward()
    for h in hooks:
        h.remove()
    grads = {
        n: layer.weight.grad.norm().item() for n, layer in net.walk() if getattr(layer, "weight", None) is not None
    }
    before = watch.after_backward()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.5)  # an "update" of half of each weight
    watch.after_step(before, 1, 7)
    (record,) = records
    assert record["kind"] == "step" and record["step"] == 7 and list(record["layers"]) == list(seen)
    for name, got in record["layers"].items():
        relu = name in ("conv1", "conv2", "dense1")
        want = numpy_stats(seen[name], relu)
        for key in ("mean", "std", "min", "max") + (("zeros",) if relu else ()):
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), (name, key)
        assert sum(got["hist"]) == sum(want["hist"]) and np.abs(np.array(got["hist"]) - want["hist"]).max() <= 1
    for name, norm in grads.items():
        w = record["weights"][f"{name}/weight"]
        assert w["grad_norm"] == pytest.approx(norm, rel=1e-5)
        assert w["update_ratio"] == pytest.approx(0.5, rel=1e-5)  # |1.5w - w| / |w|
    watch.end_epoch(1)
    fired_conv1 = (seen["conv1"] > 0).any(axis=(0, 2, 3))
    assert records[-1]["never_fired"]["conv1"] == [int(c) for c in np.flatnonzero(~fired_conv1)]


@pytest.mark.parametrize(
    "shape, channels_last", [((3, 5, 7, 7), True), ((64, 4, 6, 6), True), ((2, 4, 3, 3), False), ((5, 10), False)]
)
def test_the_channels_that_fired_are_numpys_for_any_batch_layout_and_width(shape, channels_last):
    """Whatever the number of channel vectors (none, some or all of the widened rows' 64) and the memory layout."""
    torch.manual_seed(1)
    a = torch.relu(torch.randn(shape) - 1.5)  # most outputs 0, so some channels never fire
    a[:, 0] = 0  # one channel dead for sure
    if channels_last:
        a = a.contiguous(memory_format=torch.channels_last)
    want = (a.numpy() > 0).any(axis=tuple(d for d in range(a.dim()) if d != 1))
    assert not want[0] and np.array_equal(_fired(a).numpy(), want)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_records_its_layers_about_twenty_times_an_epoch_and_names_a_dead_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    net = zoo.build("seed-fashion", input_shape=(8, 8, 1), num_classes=10)
    dying = copy.deepcopy(net)
    with torch.no_grad():
        dict(dying.walk())["conv2"].bias.fill_(-1000.0)  # dead from the first step: no gradient revives it
    for name, module in (("healthy", net), ("dying", dying)):
        cnnlab.train(data="digits", module=module, epochs=2, batch_size=32, out=str(tmp_path / name), verbose=False)
    lines = read(tmp_path / "healthy" / "stats.jsonl")
    steps = [r for r in lines if r["kind"] == "step"]
    batches = -(-1438 // 32)  # digits' training split
    assert len(steps) == 2 * (batches // (batches // 20))
    assert set(steps[0]["layers"]) == {"conv1", "pool1", "conv2", "pool2", "flatten", "dense1", "logits"}
    assert all(0 < w["update_ratio"] < 1 and np.isfinite(w["grad_norm"]) for w in steps[-1]["weights"].values())
    assert [r["epoch"] for r in lines if r["kind"] == "epoch"] == [1, 2]
    dead = read(tmp_path / "dying" / "stats.jsonl")
    assert all(r["layers"]["conv2"]["zeros"] == 1.0 for r in dead if r["kind"] == "step")
    last = [r for r in dead if r["kind"] == "epoch"][-1]["never_fired"]
    assert last["conv2"] == list(range(64)) and len(last["conv1"]) < 32


def test_a_resumed_run_keeps_its_lines_and_stats_off_writes_none(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    cnnlab.train(data="digits", model="seed-fashion", epochs=1, batch_size=32, out=str(out), verbose=False)
    first = read(out / "stats.jsonl")
    config = json.loads((out / "config.json").read_text())
    config["config"]["epochs"] = 2
    (out / "config.json").write_text(json.dumps(config))
    cnnlab.train(resume=str(out), verbose=False)
    again = read(out / "stats.jsonl")
    assert again[: len(first)] == first and [r["epoch"] for r in again if r["kind"] == "epoch"] == [1, 2]
    cnnlab.train(
        data="digits",
        model="seed-fashion",
        epochs=1,
        batch_size=32,
        out=str(tmp_path / "off"),
        stats="off",
        verbose=False,
    )
    assert not (tmp_path / "off" / "stats.jsonl").exists()


def test_histograms_over_time_put_every_step_on_one_axis():
    """Step 1 spans [0, 1], step 2 spans [0, 2] (the common axis): each of step 1's bins is half a common bin,
    so common bin j holds its bins 2j and 2j + 1 and nothing lies above 1; step 2's own bins are the common
    ones. A step of one value has all its share in that value's bin."""
    rng = np.random.default_rng(0)
    one = torch.from_numpy(np.concatenate([[0.0, 1.0], rng.random(500)]).astype(np.float32))
    two = torch.from_numpy(np.concatenate([[0.0, 2.0], 2 * rng.random(700) ** 2]).astype(np.float32))
    lines = [
        {"kind": "step", "step": s, "layers": {"a": layer_stats(t, relu=False)}}
        for s, t in ((10, one), (20, two), (30, torch.full((9,), 1.5)))
    ]
    lines.insert(1, {"kind": "epoch", "epoch": 1, "never_fired": {}})
    steps, edges, shares = histograms_over_time(lines, "a")
    assert steps == [10, 20, 30]
    np.testing.assert_allclose(edges, np.linspace(0, 2, BINS + 1), atol=1e-6)
    h1, _ = np.histogram(one.numpy(), bins=BINS, range=(0, 1))
    h2, _ = np.histogram(two.numpy(), bins=BINS, range=(0, 2))
    np.testing.assert_allclose(shares[0, : BINS // 2], (h1[0::2] + h1[1::2]) / h1.sum(), atol=1e-6)
    np.testing.assert_allclose(shares[0, BINS // 2 :], 0, atol=1e-6)
    np.testing.assert_allclose(shares[1], h2 / h2.sum(), atol=1e-6)
    assert shares[2, int(1.5 / 2 * BINS)] == 1.0 and shares[2].sum() == 1.0
    assert histograms_over_time(lines, "missing")[0] == []
