"""The optimized inference path agrees with the plain one and never serves stale weights."""

import numpy as np
import torch

from cnnlab.nn import zoo
from cnnlab.train.inference import frozen, frozen_cached, outputs_of

CPU = torch.device("cpu")


def _images(n=2500, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def test_frozen_fp32_equals_eager():
    torch.manual_seed(0)
    m = zoo.build("seed-fashion").eval()
    x = _images()
    eager = outputs_of(m, x, CPU, "fp32")
    fast = outputs_of(m, x, CPU, "fp32", optimize=True)
    torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-4)


def test_frozen_bf16_agrees_on_the_predicted_class():
    torch.manual_seed(0)
    m = zoo.build("seed-mnist5x5").eval()
    x = _images()
    eager = outputs_of(m, x, CPU, "fp32").argmax(1)
    fast = outputs_of(m, x, CPU, "bf16", optimize=True).argmax(1)
    assert (eager == fast).float().mean() > 0.97


def test_cache_is_rebuilt_when_weights_change():
    torch.manual_seed(0)
    m = zoo.build("seed-fashion").eval()
    x = _images(2000)
    before = outputs_of(m, x, CPU, "fp32", optimize=True)
    with torch.no_grad():
        m.layer("logits").bias.add_(5.0)  # an in-place update, as an optimizer step makes
    after = outputs_of(m, x, CPU, "fp32", optimize=True)
    torch.testing.assert_close(after, before + 5.0, rtol=1e-4, atol=1e-3)
    assert len(m.__dict__["_cnnlab_frozen"]["graphs"]) == 1


def test_cache_is_rebuilt_when_a_buffer_changes():
    """A BatchNorm running mean is a buffer, not a parameter: changing it in place must not serve stale logits."""
    torch.manual_seed(0)
    m = zoo.build("cnnlab-fast").eval()
    bn = next(mod for mod in m.modules() if hasattr(mod, "running_mean"))
    x = _images(200)
    outputs_of(m, x, CPU, "fp32", optimize=True)
    with torch.no_grad():
        bn.running_mean.add_(0.5)
    eager = outputs_of(m, x, CPU, "fp32")  # the plain forward pass sees the new statistics
    fast = outputs_of(m, x, CPU, "fp32", optimize=True)
    torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-4)
    bn.running_var = torch.full_like(bn.running_var, 4.0)  # replaced, not changed in place
    torch.testing.assert_close(outputs_of(m, x, CPU, "fp32", optimize=True), outputs_of(m, x, CPU, "fp32"))


def test_threads_share_one_graph_and_agree():
    import concurrent.futures

    torch.manual_seed(0)
    m = zoo.build("seed-mnist5x5").eval()
    xs = [_images(8, seed=i) for i in range(24)]
    expected = [outputs_of(m, x, CPU, "fp32") for x in xs]
    m.__dict__.pop("_cnnlab_frozen", None)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda x: outputs_of(m, x, CPU, "fp32", optimize=True), xs))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    assert len(m.__dict__["_cnnlab_frozen"]["graphs"]) == 1


class Untraceable(torch.nn.Module):
    """Stands for any model torch.jit.trace cannot follow."""

    def forward(self, x):
        if torch.jit.is_tracing():
            raise RuntimeError("cannot be traced")
        return x.flatten(1)[:, :10] * 2


def test_untraceable_model_falls_back_to_eager():
    m = Untraceable()
    assert frozen(m, torch.rand(4, 1, 28, 28), "fp32") is None
    x = _images(2000)
    out = outputs_of(m, x, CPU, "fp32", optimize=True)  # still answers, eagerly
    expected = torch.from_numpy(x.reshape(2000, -1)[:, :10].astype(np.float32) / 255 * 2)
    torch.testing.assert_close(out, expected)
    assert frozen_cached(m, torch.rand(4, 1, 28, 28), "fp32") is None


def test_run_predict_takes_the_fast_path_and_fp32_is_exact(digits_run, monkeypatch):
    """Run.predict (what predict, eval, the server and inspect call) runs the frozen graph; precision="fp32"
    matches the eager float32 forward pass, the default (bf16 where native) agrees on the class."""
    import cnnlab
    from cnnlab.train import inference

    run_dir, home = digits_run
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    run = cnnlab.Run.load(run_dir)
    x = cnnlab.data.load("digits").test.x  # uint8 (N, 8, 8, 1)
    built = []
    monkeypatch.setattr(inference, "frozen", lambda *a: built.append(a[2]) or real_frozen(*a))
    with torch.no_grad():
        eager = torch.softmax(run.model(torch.from_numpy(x.astype(np.float32) / 255).permute(0, 3, 1, 2)), 1)
    np.testing.assert_allclose(run.predict(x, precision="fp32"), eager.numpy(), rtol=1e-5, atol=1e-6)
    fast = run.predict(x)
    assert built == ["fp32", inference.resolve_precision("auto")]
    assert (fast.argmax(1) == eager.numpy().argmax(1)).mean() > 0.97
    np.testing.assert_allclose(fast.sum(1), 1, rtol=1e-5)


real_frozen = frozen
