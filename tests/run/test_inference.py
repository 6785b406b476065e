"""The optimized inference path agrees with the plain one, never serves stale weights, and leaves the caller's
thread settings as they were."""

import threading
import warnings

import numpy as np
import torch

from cnnlab.compute.device import pick_precision
from cnnlab.nn import zoo
from cnnlab.run.inference import fast_copy, fast_copy_cached, outputs_of

CPU = torch.device("cpu")


def _images(n=2500, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def test_fast_fp32_equals_eager():
    torch.manual_seed(0)
    m = zoo.build("seed-fashion").eval()
    x = _images()
    eager = outputs_of(m, x, CPU, "fp32")
    fast = outputs_of(m, x, CPU, "fp32", optimize=True)
    torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-4)


def test_fast_bf16_agrees_on_the_predicted_class():
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
    assert len(m.__dict__["_cnnlab_fast"]["copies"]) == 1


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


def test_threads_share_one_copy_and_agree():
    import concurrent.futures

    torch.manual_seed(0)
    m = zoo.build("seed-mnist5x5").eval()
    xs = [_images(8, seed=i) for i in range(24)]
    expected = [outputs_of(m, x, CPU, "fp32") for x in xs]
    m.__dict__.pop("_cnnlab_fast", None)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda x: outputs_of(m, x, CPU, "fp32", optimize=True), xs))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    assert len(m.__dict__["_cnnlab_fast"]["copies"]) == 1


class Uncopyable(torch.nn.Module):
    """Stands for any model copy.deepcopy cannot copy."""

    def __deepcopy__(self, memo):
        raise TypeError("cannot be copied")

    def forward(self, x):
        return x.flatten(1)[:, :10] * 2


def test_a_model_that_cannot_be_copied_runs_as_it_is():
    m = Uncopyable()
    assert fast_copy(m, "fp32") is None
    x = _images(2000)
    out = outputs_of(m, x, CPU, "fp32", optimize=True)  # still answers, with the model itself
    expected = torch.from_numpy(x.reshape(2000, -1)[:, :10].astype(np.float32) / 255 * 2)
    torch.testing.assert_close(out, expected)
    assert fast_copy_cached(m, "fp32") is None


SEEN = []  # (thread, its intra-op threads) of every batch a Recording computed; its copies share the list
HOLD = []  # a barrier where a Recording's first batches wait until as many threads hold one each


class Recording(torch.nn.Module):
    """Notes, for every batch, the thread that computed it and that thread's number of intra-op threads."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(28 * 28, 10)

    def forward(self, x):
        SEEN.append((threading.get_ident(), torch.get_num_threads()))
        if HOLD and len(SEEN) <= HOLD[0].parties:
            HOLD[0].wait(timeout=30)  # a batch this small ends before a second worker wakes, unless held
        return self.linear(x.flatten(1))


def test_batches_are_shared_out_to_one_core_workers_and_the_callers_threads_are_kept():
    """Each batch runs on a worker that computes on one core; the calling thread's thread count is what it
    was, and so is the default a new thread starts with. On a 1-core machine there is one worker."""
    from cnnlab.compute.workers import workers

    before = torch.get_num_threads()
    _, size = workers()
    m = Recording().eval()
    x = _images(64 * 40)
    SEEN.clear()
    HOLD[:] = [threading.Barrier(size)]  # every worker must take one of the first batches, or this times out
    try:
        out = outputs_of(m, x, CPU, "fp32", batch_size=64, optimize=True)
    finally:
        HOLD.clear()
    threads = {thread for thread, _ in SEEN}
    assert len(SEEN) == 40 and {n for _, n in SEEN} == {1}, SEEN
    if size > 1:
        assert threading.get_ident() not in threads and len(threads) == size
    with torch.no_grad():
        expected = m.linear(torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.get_num_threads() == before
    fresh = []
    t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert fresh == [before]


def test_run_predict_takes_the_fast_path_and_fp32_is_exact(digits_run, monkeypatch):
    """Run.predict (what predict, eval, the server and inspect call) runs the fast copy; precision="fp32"
    matches the eager float32 forward pass, the default (bf16 where native) agrees on the class."""
    import cnnlab
    from cnnlab.run import inference

    run_dir, home = digits_run
    monkeypatch.setenv("CNNLAB_HOME", str(home))
    run = cnnlab.Run.load(run_dir)
    x = cnnlab.data.load("digits").test.x  # uint8 (N, 8, 8, 1)
    built = []
    monkeypatch.setattr(inference, "fast_copy", lambda *a: built.append(a[1]) or real_fast_copy(*a))
    with torch.no_grad():
        eager = torch.softmax(run.model(torch.from_numpy(x.astype(np.float32) / 255).permute(0, 3, 1, 2)), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated mechanism (TorchScript was) on the way
        np.testing.assert_allclose(run.predict(x, precision="fp32"), eager.numpy(), rtol=1e-5, atol=1e-6)
        fast = run.predict(x)
    assert built == list(dict.fromkeys(["fp32", pick_precision("auto")]))  # one copy when "auto" is fp32 here
    assert (fast.argmax(1) == eager.numpy().argmax(1)).mean() > 0.97
    np.testing.assert_allclose(fast.sum(1), 1, rtol=1e-5)


real_fast_copy = fast_copy
