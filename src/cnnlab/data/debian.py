"""Dataset files from a Debian package: installed, or fetched with ``apt-get download`` as any user.

A ``.deb`` is an ``ar`` archive whose ``data.tar.*`` member holds the package's files.
The standard library reads both (``tarfile`` opens gzip, bzip2 and xz members); a
zstd-compressed member is handed to ``dpkg-deb --fsys-tarfile`` where it exists.
Nothing is installed and no root is needed: the package lands in the fetch's temporary
folder and only the IDX files are taken out of it, to be verified like any other source's.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cnnlab.data import idx
from cnnlab.data.registry import DatasetSpec
from cnnlab.errors import DataError

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60  # bytes: name 16, mtime 12, uid 6, gid 6, mode 8, size 10, magic 2


def ar_members(data: bytes, origin: str) -> dict[str, bytes]:
    """The members of an ``ar`` archive, by name (GNU ``name/`` endings removed)."""
    if not data.startswith(AR_MAGIC):
        raise DataError(f"{origin} is not a Debian package (no ar archive header).")
    members, pos = {}, len(AR_MAGIC)
    while pos + AR_HEADER <= len(data):
        header = data[pos : pos + AR_HEADER]
        if header[58:60] != b"`\n":
            raise DataError(f"{origin} is damaged: bad ar member header at byte {pos}.")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DataError(f"{origin} is damaged: bad ar member size at byte {pos}.") from None
        start = pos + AR_HEADER
        if start + size > len(data):
            raise DataError(f"{origin} is truncated: member {name!r} needs {size} bytes, {len(data) - start} left.")
        members[name] = data[start : start + size]
        pos = start + size + (size % 2)  # members are padded to an even offset
    return members


def _data_tar(deb: Path) -> tarfile.TarFile:
    members = ar_members(deb.read_bytes(), deb.name)
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise DataError(f"{deb.name} has no data.tar member (members: {', '.join(members)}).")
    if not name.endswith(".zst"):
        try:
            return tarfile.open(fileobj=io.BytesIO(members[name]), mode="r:*")
        except tarfile.TarError as e:
            raise DataError(f"{deb.name}: {name} could not be read: {e}") from None
    if shutil.which("dpkg-deb") is None:
        raise DataError(f"{deb.name} holds {name} (zstd), which needs dpkg-deb to unpack; it is not installed.")
    r = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
    if r.returncode != 0:
        raise DataError(f"dpkg-deb could not unpack {deb.name}: {r.stderr.decode(errors='replace').strip()}")
    return tarfile.open(fileobj=io.BytesIO(r.stdout), mode="r:")


def read_deb(deb: Path, folder: str, spec: DatasetSpec) -> dict[str, bytes]:
    """The decompressed IDX payloads of ``spec`` found in ``folder`` inside the package ``deb``."""
    wanted = {}
    for f in spec.files:
        wanted[f"{f.name}.gz"] = (f.key, True)
        wanted[f.name] = (f.key, False)
    out = {}
    with _data_tar(deb) as tar:
        for member in tar:
            path = PurePosixPath(member.name.lstrip("./"))
            if not member.isfile() or str(path.parent) != folder.strip("/") or path.name not in wanted:
                continue
            key, gzipped = wanted[path.name]
            raw = tar.extractfile(member).read()
            out[key] = idx.gunzip(raw, f"{path.name} in {deb.name}") if gzipped else raw
    missing = [f.name for f in spec.files if f.key not in out]
    if missing:
        raise DataError(f"{deb.name} has no {', '.join(missing)} under /{folder.strip('/')}.")
    return out


@dataclass(frozen=True)
class DebianDownloadSource:
    """A Debian package fetched with ``apt-get download`` (never installed), its files read from the .deb.

    ``apt-get download`` works as an ordinary user once the package lists exist
    (``apt-get update`` has run once, as root); the error says so when they do not.
    """

    package: str
    folder: str  # where the package puts the files, e.g. /usr/share/datasets/fashion-mnist
    apt_get: str = "apt-get"

    @property
    def name(self) -> str:
        return f"Debian package {self.package} (apt-get download)"

    def fetch(self, spec: DatasetSpec, workdir: Path, progress=None) -> dict[str, bytes]:
        return read_deb(self.download(workdir, progress), self.folder, spec)

    def download(self, workdir: Path, progress=None) -> Path:
        """``apt-get download <package>`` into ``workdir``; the .deb's path, or a DataError saying what to do."""
        if shutil.which(self.apt_get) is None:
            raise DataError(
                f"{self.apt_get} was not found: the {self.package} fallback needs a Debian or Ubuntu system "
                "(elsewhere, the HTTPS mirrors must be reachable)."
            )
        if progress:
            progress(f"{self.package}: apt-get download", indeterminate=True)
        r = subprocess.run([self.apt_get, "download", "-q", self.package], cwd=workdir, capture_output=True, text=True)
        debs = sorted(workdir.glob(f"{self.package}_*.deb"))
        if r.returncode == 0 and debs:
            return debs[0]
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("E:")] or r.stderr.strip().splitlines()[-1:]
        detail = errors[0] if errors else f"exit {r.returncode}, no .deb written"
        if "Unable to locate package" in detail or "has no installation candidate" in detail:
            raise DataError(
                f"apt-get download {self.package} failed: {detail}. The package lists are missing or out of "
                "date; run once, as root: apt-get update"
            )
        raise DataError(f"apt-get download {self.package} failed: {detail}")
