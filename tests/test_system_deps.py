"""scripts/system-deps.sh, which make test runs first: as another user it names the command to run."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "system-deps.sh"


def run_as_user(tmp_path, **env):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")  # not root
    (fake / "id").chmod(0o755)
    full = {"PATH": f"{fake}:{os.environ['PATH']}", **env}
    return subprocess.run(["bash", str(SCRIPT)], env=full, capture_output=True, text=True, timeout=60)


def test_a_user_without_chromium_or_package_lists_is_told_what_to_run(tmp_path):
    empty = tmp_path / "lists"
    empty.mkdir()
    r = run_as_user(tmp_path, CHROMIUM="chromium-that-is-not-here", APT_LISTS=str(empty))
    assert r.returncode == 0, r.stderr
    assert "Chromium is not installed, so the browser tests will fail. Run once: sudo apt-get install -y chromium" in (
        r.stdout
    )
    assert "Run once: sudo apt-get update" in r.stdout


def test_nothing_to_say_when_everything_is_there(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("")
    r = run_as_user(tmp_path, CHROMIUM="bash", APT_LISTS=str(lists))  # any command that exists
    assert r.returncode == 0 and r.stdout == ""
