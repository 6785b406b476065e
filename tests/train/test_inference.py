"""The optimized inference path agrees with the plain one and never serves stale weights."""

import numpy as np
import torch

from cnnlab.nn import zoo
from cnnlab.train.evaluate import frozen, frozen_cached, logits_of

CPU = torch.device("cpu")


def _images(n=2500, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def test_frozen_fp32_equals_eager():
    torch.manual_seed(0)
    m = zoo.build("seed-fashion").eval()
    x = _images()
    eager = logits_of(m, x, CPU, "fp32")
    fast = logits_of(m, x, CPU, "fp32", optimize=True)
    torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-4)


def test_frozen_bf16_agrees_on_the_predicted_class():
    torch.manual_seed(0)
    m = zoo.build("seed-mnist5x5").eval()
    x = _images()
    eager = logits_of(m, x, CPU, "fp32").argmax(1)
    fast = logits_of(m, x, CPU, "bf16", optimize=True).argmax(1)
    assert (eager == fast).float().mean() > 0.97


def test_cache_is_rebuilt_when_weights_change():
    torch.manual_seed(0)
    m = zoo.build("seed-fashion").eval()
    x = _images(2000)
    before = logits_of(m, x, CPU, "fp32", optimize=True)
    with torch.no_grad():
        m.layer("logits").bias.add_(5.0)  # an in-place update, as an optimizer step makes
    after = logits_of(m, x, CPU, "fp32", optimize=True)
    torch.testing.assert_close(after, before + 5.0, rtol=1e-4, atol=1e-3)
    assert len(m.__dict__["_cnnlab_frozen"]) == 1


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
    out = logits_of(m, x, CPU, "fp32", optimize=True)  # still answers, eagerly
    expected = torch.from_numpy(x.reshape(2000, -1)[:, :10].astype(np.float32) / 255 * 2)
    torch.testing.assert_close(out, expected)
    assert frozen_cached(m, torch.rand(4, 1, 28, 28), "fp32") is None
