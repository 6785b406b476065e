import pytest

pytest.importorskip("sklearn")  # the quick training tests use scikit-learn's bundled digits


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
