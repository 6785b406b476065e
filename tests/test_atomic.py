import os

import pytest

from cnnlab.atomic import atomic_writer, write_text


def test_write_replaces_whole_file(tmp_path):
    p = tmp_path / "a.json"
    write_text(p, "old")
    write_text(p, "new")
    assert p.read_text() == "new"
    assert os.listdir(tmp_path) == ["a.json"]  # no temporary file left behind


def test_crash_mid_write_keeps_previous_file(tmp_path):
    p = tmp_path / "a.json"
    write_text(p, "good")
    with pytest.raises(RuntimeError), atomic_writer(p, "w") as f:
        f.write("half")
        raise RuntimeError("crash")
    assert p.read_text() == "good"
    assert os.listdir(tmp_path) == ["a.json"]


def test_permissions_follow_the_umask_read_once_at_import(tmp_path, monkeypatch):
    """Writes never change the process-wide umask (threads would race on it): it is read once, at import."""
    import os

    from cnnlab import atomic

    def refuse(*_):
        raise AssertionError("os.umask called while writing")

    monkeypatch.setattr(os, "umask", refuse)
    path = tmp_path / "f.txt"
    atomic.write_text(path, "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~atomic.UMASK


def test_cnnlab_inspect_is_reachable_after_a_plain_import():
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", "import cnnlab; print(cnnlab.inspect.feature_maps.__name__)"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and r.stdout.strip() == "feature_maps", r.stderr
