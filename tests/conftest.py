import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

sys.path.insert(0, str(Path(__file__).parent))  # tests/strategies.py, shared by several test files

# Property tests run a fixed number of examples, with no per-example deadline (CI machines vary in speed).
settings.register_profile(
    "cnnlab",
    max_examples=int(os.environ.get("CNNLAB_HYPOTHESIS_EXAMPLES", 80)),
    deadline=None,
    derandomize=True,
    database=None,  # derandomized, so nothing to remember; and the suite writes nothing into the checkout
)
settings.load_profile("cnnlab")
# Hypothesis keeps a folder of its own (.hypothesis/) in the working directory: not in the checkout
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cnnlab-hypothesis")

REAL_DATASETS = ("mnist", "fashion-mnist")
_cache_writes: Counter = Counter()  # dataset name -> times the real dataset was fetched into a cache


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip is a failure here: everything the suite needs, make test installs (a missing one is a bug)."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which make test does not allow: {report.longrepr}"
    return report


CHECKOUT = Path(__file__).resolve().parent.parent
# what running Python and pytest leaves in any checkout; everything else the suite writes goes to temporary folders
EXPECTED_LEFTOVERS = ("__pycache__/", ".pytest_cache/", ".egg-info/", ".venv/", ".venv-peers/")


def _checkout_state() -> set[str] | None:
    """Changed, untracked and ignored paths of the checkout (None outside a git checkout)."""
    r = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return None
    return {ln for ln in r.stdout.splitlines() if not any(part in ln for part in EXPECTED_LEFTOVERS)}


def pytest_sessionstart(session):
    """Note what the checkout holds, and count how often each real dataset is fetched into a cache."""
    from cnnlab.data import cache

    session.config.checkout_before = _checkout_state()

    write = cache.write

    def counted(spec, payloads, source):
        if spec.name in REAL_DATASETS:
            _cache_writes[spec.name] += 1
        return write(spec, payloads, source)

    cache.write = counted


def pytest_sessionfinish(session, exitstatus):
    """The session fetched each real dataset at most once, and wrote nothing into the checkout."""
    twice = {name: n for name, n in _cache_writes.items() if n > 1}
    if twice:
        print(f"\nFAILED: real datasets fetched more than once in this session: {twice}; use the real_home fixture")
        session.exitstatus = 1
    before, after = session.config.checkout_before, _checkout_state()
    if before is not None and after is not None and after - before:
        written = sorted(after - before)
        print(f"\nFAILED: the test session wrote into the checkout: {written[:20]}{' ...' if written[20:] else ''}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def real_home(tmp_path_factory):
    """One CNNLAB_HOME for the whole session: the real MNIST and Fashion-MNIST are fetched into it once."""
    return tmp_path_factory.mktemp("real-home")


@pytest.fixture
def real_data(real_home, monkeypatch):
    """This test reads the real datasets from the session's shared cache."""
    monkeypatch.setenv("CNNLAB_HOME", str(real_home))
    return real_home


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """seed-fashion trained for 2 epochs on scikit-learn's 8x8 digits: (run directory, its CNNLAB_HOME)."""
    import cnnlab

    root = tmp_path_factory.mktemp("digits-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(root / "home"))
        cnnlab.train(
            data="digits", model="seed-fashion", epochs=2, batch_size=32, seed=0, out=str(root / "run"), verbose=False
        )
    return root / "run", root / "home"


@pytest.fixture(scope="session")
def dead_digits_run(tmp_path_factory):
    """seed-fashion trained for 1 epoch on the digits with conv2 made to die (its bias at -1000: every channel
    silent, no gradient to revive it): (run directory, its CNNLAB_HOME)."""
    import torch

    import cnnlab
    from cnnlab.nn import zoo

    root = tmp_path_factory.mktemp("dead-digits-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(root / "home"))
        torch.manual_seed(0)
        net = zoo.build("seed-fashion", input_shape=(8, 8, 1), num_classes=10)
        with torch.no_grad():
            dict(net.walk())["conv2"].bias.fill_(-1000.0)
        cnnlab.train(data="digits", module=net, epochs=1, batch_size=32, out=str(root / "run"), verbose=False)
    return root / "run", root / "home"


@pytest.fixture(scope="session")
def digits_loaded(digits_run):
    """The digits run loaded, and the digits dataset: (Run, Dataset)."""
    import cnnlab

    path, home = digits_run
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_HOME", str(home))
        yield cnnlab.Run.load(path), cnnlab.data.load("digits")


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory, real_home):
    """A folder of runs: a real MNIST model (one epoch) under runs/mnist."""
    import cnnlab

    root = tmp_path_factory.mktemp("served")
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNLAB_HOME", str(real_home))
    cnnlab.train(
        data="mnist",
        model="seed-mnist5x5",
        epochs=1,
        batch_size=64,
        seed=0,
        out=str(root / "runs" / "mnist"),
        verbose=False,
    )
    yield root / "runs"
    mp.undo()


@pytest.fixture(scope="session")
def catdog_folder(tmp_path_factory):
    """A Dogs-vs-Cats-shaped folder of 2,000 JPEGs and the odd files people have (:mod:`catdog`)."""
    from catdog import make_catdog

    return make_catdog(tmp_path_factory.mktemp("catdog") / "PetImages")
