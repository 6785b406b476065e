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
