"""The dataset cache under ``$CNNLAB_HOME`` (default ``~/.cache/cnnlab``).

A cached dataset is a folder ``datasets/<name>/`` with ``train_x.npy``, ``train_y.npy``,
``test_x.npy``, ``test_y.npy`` and ``info.json``. It is written whole into a temporary
folder beside it and renamed into place, so a crash never leaves half a cache; it is
verified on every load (the IDX payload SHA-256 is recomputed from the arrays, about
30 ms for MNIST), so a damaged cache is noticed, dropped and fetched again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnlab.atomic import atomic_writer, default_permissions, make_folder, write_text
from cnnlab.data import idx
from cnnlab.data.registry import DatasetSpec
from cnnlab.errors import DataError


def home() -> Path:
    return Path(os.environ.get("CNNLAB_HOME") or Path.home() / ".cache" / "cnnlab").expanduser()


def dataset_dir(name: str) -> Path:
    return home() / "datasets" / name


def _payload_sha256(array: np.ndarray) -> str:
    """SHA-256 of the IDX bytes this array came from, without building them."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    h = hashlib.sha256(idx.header(a.shape))
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def read(spec: DatasetSpec) -> tuple[dict[str, np.ndarray], dict] | None:
    """The cached arrays and info if present and verified; None if absent; raises nothing."""
    folder = dataset_dir(spec.name)
    info_path = folder / "info.json"
    if not info_path.is_file():
        return None
    info = peek(spec.name)
    if info is None:
        return None
    try:
        arrays = {f.key: np.load(folder / f"{f.key}.npy", allow_pickle=False) for f in spec.files}
    except Exception:  # noqa: BLE001 - any damage (a garbled .npy header raises tokenize.TokenError): refetch
        return None
    for f in spec.files:
        if _payload_sha256(arrays[f.key]) != f.sha256:
            return None
    return arrays, info


def write(spec: DatasetSpec, payloads: dict[str, bytes], source: str) -> dict[str, np.ndarray]:
    """Parse verified payloads and store them as .npy, atomically as a whole folder."""
    arrays = {f.key: idx.parse(payloads[f.key], f.name, 3 if f.key.endswith("_x") else 1) for f in spec.files}
    by_key = {f.key: f.name for f in spec.files}
    for split in ("train", "test"):
        nx, ny = len(arrays[f"{split}_x"]), len(arrays[f"{split}_y"])
        if nx != ny:
            raise DataError(
                f"{by_key[f'{split}_x']} holds {nx} images but {by_key[f'{split}_y']} holds {ny} labels. "
                "Expected one label per image; the files do not belong together."
            )
    final = dataset_dir(spec.name)
    make_folder(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=final.parent))
    try:
        for key, a in arrays.items():
            with atomic_writer(tmp / f"{key}.npy") as fh:
                np.save(fh, a)
        info = {
            "name": spec.name,
            "source": source,
            "sha256": {f.name: f.sha256 for f in spec.files},
            "cached_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_text(tmp / "info.json", json.dumps(info, indent=2))
        default_permissions(tmp, directory=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # arrays of their own, writable as a cached load's are (the parsed ones are views of the read-only bytes)
    return {key: np.array(a) for key, a in arrays.items()}


def peek(name: str) -> dict | None:
    """The cached info.json of a dataset without verifying its arrays (for listings); None if absent or
    damaged (not UTF-8, not JSON, not an object): such an entry is fetched again."""
    try:
        info = json.loads((dataset_dir(name) / "info.json").read_text())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return info if isinstance(info, dict) else None
