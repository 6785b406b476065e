import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # tests/strategies.py, shared by several test files

# Property tests run a fixed number of examples, with no per-example deadline (CI machines vary in speed).
settings.register_profile(
    "cnnlab",
    max_examples=int(os.environ.get("CNNLAB_HYPOTHESIS_EXAMPLES", 80)),
    deadline=None,
    derandomize=True,
)
settings.load_profile("cnnlab")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """seed-fashion trained for 2 epochs on scikit-learn's 8x8 digits: (run directory, its CNNLAB_HOME)."""
    pytest.importorskip("sklearn")
    import cnnlab

    root = tmp_path_factory.mktemp("digits-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(root / "home"))
        cnnlab.train(
            data="digits", model="seed-fashion", epochs=2, batch_size=32, seed=0, out=str(root / "run"), verbose=False
        )
    return root / "run", root / "home"
