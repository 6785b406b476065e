"""The GPU section of make bench, run on the CPU on a tiny budget: CI has no GPU, and a session that is lent
one must find the section working. Nothing here is timed against a limit."""

import pytest
from benchmarks import gpu

pytestmark = pytest.mark.slow


def test_time_to_a_target_adds_the_epochs_until_it_is_reached():
    rows = [{"seconds": 1.5, "test_accuracy": 0.98}, {"seconds": 1.0, "test_accuracy": 0.991}, {"seconds": 2.0}]
    assert gpu.time_to(rows, 0.99) == 2.5
    assert gpu.time_to(rows, 0.98) == 1.5
    assert gpu.time_to(rows, 0.995) is None  # not reached: said, never estimated


def test_the_gpu_section_runs_end_to_end_on_real_data(real_data):
    rows = gpu.run(device="cpu", seeds=(0,), fashion_epochs=1, extra=("--epochs", "1"))
    by_what = {r["what"].split(",")[0]: r["value"] for r in rows}
    assert set(by_what) == {"MNIST 99.0%", "MNIST 99.5%", "gpu-speed recipe", "Fashion-MNIST 93.0%",
                            "seed-fashion epoch", "Run.predict"}  # fmt: skip
    assert by_what["gpu-speed recipe"] > 0 and by_what["seed-fashion epoch"] > 0 and by_what["Run.predict"] > 1000
    assert by_what["Fashion-MNIST 93.0%"] is None  # one epoch of cnnlab-fast does not reach 93%
