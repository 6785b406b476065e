"""Dataset files from a Debian package: .debs built by dpkg-deb itself, and a stand-in apt-get on PATH."""

import gzip
import shutil
import subprocess

import pytest

from cnnlab.data import debian, registry, sources
from cnnlab.data.debian import DebianDownloadSource, ar_members, read_deb
from cnnlab.errors import DataError, FetchError

FOLDER = "/usr/share/datasets/tiny"


def build_deb(tmp_path, spec, payloads, compression="xz", folder=FOLDER):
    """A real .deb made by dpkg-deb (an independent writer of the format), holding the gzipped IDX files."""
    root = tmp_path / f"pkg-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: dataset-tiny\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: t\n"
    )
    data = root / folder.lstrip("/")
    data.mkdir(parents=True)
    for f in spec.files:
        (data / f"{f.name}.gz").write_bytes(gzip.compress(payloads[f.key]))
    (data / "README").write_text("not an IDX file")
    deb = tmp_path / f"dataset-tiny_1.0_all-{compression}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_read_deb_returns_the_payloads_dpkg_deb_packed(tmp_path, tiny, compression):
    spec, payloads, _ = tiny
    deb = build_deb(tmp_path, spec, payloads, compression)
    got = read_deb(deb, FOLDER, spec)
    assert got == payloads
    sources.verify(spec, got, "test")


def test_ar_members_agree_with_binutils_ar(tmp_path, tiny):
    spec, payloads, _ = tiny
    deb = build_deb(tmp_path, spec, payloads)
    listed = subprocess.run(["ar", "t", str(deb)], check=True, capture_output=True, text=True).stdout.split()
    members = ar_members(deb.read_bytes(), deb.name)
    assert list(members) == listed == ["debian-binary", "control.tar.xz", "data.tar.xz"]
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["ar", "x", str(deb)], cwd=out, check=True)
    for name, data in members.items():
        assert (out / name).read_bytes() == data


def test_damaged_or_wrong_debs_are_refused_by_name(tmp_path, tiny):
    spec, payloads, _ = tiny
    deb = build_deb(tmp_path, spec, payloads)
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(DataError, match=r"bad.deb is not a Debian package"):
        read_deb(bad, FOLDER, spec)
    bad.write_bytes(deb.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"bad.deb is truncated: member 'data.tar.xz' needs \d+ bytes"):
        read_deb(bad, FOLDER, spec)
    with pytest.raises(DataError, match=r"has no train-images-idx3-ubyte, .* under /usr/share/elsewhere"):
        read_deb(deb, "/usr/share/elsewhere", spec)


def fake_apt_get(tmp_path, script: str) -> str:
    path = tmp_path / "bin" / "apt-get"
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_download_source_runs_apt_get_download_in_the_work_folder(tmp_path, tiny):
    spec, payloads, _ = tiny
    deb = build_deb(tmp_path, spec, payloads)
    log = tmp_path / "args"
    apt = fake_apt_get(tmp_path, f'echo "$@" > {log}\ncp {deb} ./dataset-tiny_1.0_all.deb\n')
    source = DebianDownloadSource("dataset-tiny", FOLDER, apt_get=apt)
    got, name = sources.fetch(spec, [source])
    assert got == payloads and name == "Debian package dataset-tiny (apt-get download)"
    assert log.read_text().split() == ["download", "-q", "dataset-tiny"]


def test_missing_package_lists_say_what_to_run(tmp_path, tiny):
    spec, _, _ = tiny
    apt = fake_apt_get(tmp_path, 'echo "E: Unable to locate package $3" >&2\nexit 100\n')
    with pytest.raises(
        FetchError,
        match=r"Unable to locate package dataset-tiny\. The package lists are missing .*"
        r"run once, as root: apt-get update",
    ):
        sources.fetch(spec, [DebianDownloadSource("dataset-tiny", FOLDER, apt_get=apt)])


def test_no_apt_get_says_which_systems_have_it(tmp_path, tiny):
    spec, _, _ = tiny
    with pytest.raises(FetchError, match=r"apt-get-nowhere was not found: .* needs a Debian or Ubuntu system"):
        sources.fetch(spec, [DebianDownloadSource("dataset-tiny", FOLDER, apt_get="apt-get-nowhere")])


def test_fashion_mnist_falls_back_to_the_installed_folder_then_the_download():
    spec = registry.get("fashion-mnist")
    kinds = [type(s).__name__ for s in sources.default_sources(spec)]
    assert kinds == ["MirrorSource", "DirectorySource", "DebianDownloadSource"]


@pytest.mark.slow
def test_the_real_fashion_mnist_package_downloads_and_verifies(tmp_path):
    """The real dataset-fashion-mnist .deb from Debian's archive, as any user: no install, no root."""
    assert shutil.which("apt-get"), "this test needs a Debian system (the CI and project machines are Debian)"
    spec = registry.get("fashion-mnist")
    source = next(s for s in sources.default_sources(spec) if isinstance(s, debian.DebianDownloadSource))
    payloads, name = sources.fetch(spec, [source], workroot=tmp_path)
    assert name == "Debian package dataset-fashion-mnist (apt-get download)"
    assert {k: len(v) for k, v in payloads.items()} == {f.key: f.size for f in spec.files}
