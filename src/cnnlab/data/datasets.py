"""``cnnlab.data.load``: a registered dataset or an image folder as uint8 NHWC NumPy arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.atomic import make_folder
from cnnlab.data import cache, images, keras_rule, registry, sources
from cnnlab.data.folder import load_folder, stratified_split
from cnnlab.data.types import Dataset, Split
from cnnlab.errors import DataError, InputError


def _idx_dataset(spec: registry.DatasetSpec, source_list=None, progress=None) -> tuple[dict, dict]:
    cached = cache.read(spec)
    if cached is not None:
        arrays, info = cached
        return arrays, {**info, "cache": "hit"}
    home = cache.home()
    make_folder(home)
    payloads, source = sources.fetch(spec, source_list, workroot=home, progress=progress)
    arrays = cache.write(spec, payloads, source)
    return arrays, {
        "name": spec.name,
        "source": source,
        "cache": "written",
        "sha256": {f.name: f.sha256 for f in spec.files},
    }


def _digits(test_fraction: float, seed: int):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "The digits dataset comes with scikit-learn, which is not installed. "
            "Install it with: pip install scikit-learn"
        ) from None
    d = load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]  # 0..16 -> 0..255, (N, 8, 8, 1)
    y = d.target.astype(np.int64)
    test = stratified_split(y, test_fraction, seed)
    info = {"source": "scikit-learn (bundled 8x8 digits)", "splits": f"stratified, test_fraction={test_fraction}"}
    return Split(x[~test], y[~test]), Split(x[test], y[test]), info


def get(name: str, source_list=None, progress=None) -> dict:
    """Fetch and verify a registered dataset into the cache; return its info (source used, checksums)."""
    spec = registry.get(name)
    if not spec.files:
        return {"name": spec.name, "source": "no download needed"}
    return _idx_dataset(spec, source_list, progress)[1]


def is_folder(name_or_path) -> bool:
    """Whether :func:`load` reads ``name_or_path`` as an image folder (not a registered dataset's name)."""
    text = str(name_or_path)
    registered = not isinstance(name_or_path, Path) and "/" not in text and registry.is_registered(text)
    return not registered and Path(text).expanduser().is_dir()


def load(
    name_or_path,
    *,
    size=None,
    mode=None,
    test_fraction: float = 0.2,
    seed: int = 0,
    sources=None,
    progress=None,
    cache: bool = True,
    resize: str | None = None,
    crop_to_aspect_ratio: bool = False,
    exact_test: bool = False,
) -> Dataset:
    """A dataset with ``train``/``test`` splits (uint8 NHWC ``x``, int64 ``y``), ``classes`` and ``info``.

    ``name_or_path``: ``"mnist"``, ``"fashion-mnist"``, ``"digits"``, or an image folder.
    ``size`` (H, W) and ``mode`` ('gray'/'rgb') convert the images; for folders they also
    settle mixed sizes and modes. A registered name means the dataset even where a folder of that name
    exists (a run directory called ``digits``, say); reach such a folder as ``./digits`` or a ``Path``.
    A folder is decoded once: later loads take its unchanged files from ``$CNNLAB_HOME/folders``
    (``cache=False`` decodes every file again and keeps nothing).
    ``resize`` (with ``crop_to_aspect_ratio``): read a folder as Keras's ``image_dataset_from_directory`` does,
    ``interpolation=resize`` (:mod:`cnnlab.data.keras_rule`); ``exact_test``: only the test split, in its
    float32 pixels (the train split left empty), for evaluating a Keras model.
    """
    text, path = str(name_or_path), Path(str(name_or_path)).expanduser()
    if is_folder(name_or_path):
        return load_folder(
            path, size, mode, test_fraction, seed, progress, cache, resize, crop_to_aspect_ratio, exact_test
        )
    if keras_rule.check_rule(resize) is not None:
        raise InputError(
            f"resize={resize!r} is a rule for image folders; {text} is a registered dataset, resized by cnnlab's "
            "rule. Leave the resize rule out."
        )
    spec = registry.get(str(name_or_path))
    if spec.name == "digits":
        train, test, info = _digits(test_fraction, seed)
    else:
        arrays, info = _idx_dataset(spec, sources, progress)
        train = Split(arrays["train_x"][..., None], arrays["train_y"].astype(np.int64))  # (N, 28, 28, 1)
        test = Split(arrays["test_x"][..., None], arrays["test_y"].astype(np.int64))
    if size is not None or mode is not None:
        train = Split(images.convert(train.x, size, mode), train.y)
        test = Split(images.convert(test.x, size, mode), test.y)
    n = len(spec.classes)
    info = {**info, "counts": {"train": train.counts(n), "test": test.counts(n)}}
    return Dataset(spec.name, train, test, spec.classes, info)


def sample(spec: str, size=None, mode=None) -> tuple[np.ndarray, str, str]:
    """``"mnist:test:3"`` (dataset:split:index) -> (uint8 image (H, W, C), class name, description)."""
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
        raise DataError(f"{spec!r} is not dataset:split:index. Expected e.g. mnist:test:3.")
    return pick(load(parts[0], size=size, mode=mode), parts[1], int(parts[2]))


def pick(ds: Dataset, split: str, index: int) -> tuple[np.ndarray, str, str]:
    """Image ``index`` of a split: (uint8 image (H, W, C), class name, description)."""
    part = ds.split(split)
    if not 0 <= index < len(part):
        raise DataError(f"{ds.name}:{split}:{index}: index {index} is outside the {split} split (0..{len(part) - 1}).")
    return part.x[index], ds.classes[part.y[index]], f"{ds.name} {split}[{index}]"
