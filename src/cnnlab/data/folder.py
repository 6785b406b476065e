"""Image folders: ``root/<class>/<image>``, or ``root/train/<class>/...`` and ``root/test/<class>/...``.

One pass reads every file's header (mode, size) to decide one mode and one size; a
second pass decodes and converts, in parallel. Files that are not images, cannot be decoded or are
too large are reported by name and skipped, never a crash.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnlab.data import images, keras_rule, rows
from cnnlab.data.decoding import decode_all
from cnnlab.data.folder_cache import relative_names, stamp_of
from cnnlab.data.types import Dataset, Split
from cnnlab.errors import DataError, InputError


class Record(NamedTuple):  # a tuple: a folder of 100,000 photos makes 100,000 of them
    path: Path
    label: int
    split: str | None  # "train" / "test" when the folder has splits
    mode: str  # "gray" / "rgb"
    size: tuple[int, int]  # (H, W)
    name: str  # the path inside the folder, POSIX (as the cache and a run's file lists name it)


@dataclass
class FolderScan:
    root: Path
    classes: tuple[str, ...]
    has_splits: bool
    records: list[Record] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)  # (file, problem)

    def counts(self, split: str | None = None) -> list[int]:
        c = collections.Counter(r.label for r in self.records if split is None or r.split == split)
        return [c[i] for i in range(len(self.classes))]

    @property
    def modes(self) -> collections.Counter:
        return collections.Counter(r.mode for r in self.records)

    @property
    def sizes(self) -> collections.Counter:
        return collections.Counter(r.size for r in self.records)

    def problems(self) -> list[str]:
        """Why this folder would not load (empty when it would)."""
        out = []
        if len(self.classes) < 2:
            found = f"only {self.classes[0]!r}" if self.classes else "none"
            out.append(
                f"{self.root} has {len(self.classes)} class folder(s) ({found}). Expected at least two "
                "subfolders, one per class: root/<class>/<image>."
            )
        if not self.records:
            out.append(f"{self.root} holds no readable images. Expected PNG, JPEG, BMP, GIF, TIFF or WebP files.")
        elif 0 in self.counts():
            empty = [name for name, n in zip(self.classes, self.counts(), strict=True) if n == 0]
            out.append(
                f"class folder(s) {', '.join(map(repr, empty))} hold no readable images: a class the model could "
                "never learn. Add images to them, or remove the folders."
            )
        if self.has_splits:
            for split in ("train", "test"):
                if not any(r.split == split for r in self.records):
                    out.append(f"{self.root / split} holds no readable images.")
        return out

    def duplicates(self) -> list[list[Path]]:
        """Groups of files with identical bytes (the same image saved twice, maybe under two classes)."""
        by_hash = collections.defaultdict(list)
        for r in self.records:
            by_hash[hashlib.sha256(r.path.read_bytes()).hexdigest()].append(r.path)
        return [paths for paths in by_hash.values() if len(paths) > 1]


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files_below(folder: Path) -> list[tuple[tuple[str, ...], os.stat_result]]:
    """(the path inside ``folder`` as its parts, the file's stat) of each file under it whose name does not
    start with a dot, in ``sorted(folder.rglob("*"))``'s order (by path components), from one ``os.scandir``
    walk that stats each file once and follows no link to a folder; an unreadable folder is passed over."""
    found = []

    def walk(top: str, parts: tuple[str, ...]) -> None:
        try:
            with os.scandir(top) as entries:
                listed = list(entries)
        except OSError:
            return
        for e in listed:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path, (*parts, e.name))
                elif e.is_file():
                    found.append(((*parts, e.name), e.stat()))
            except OSError:  # gone, or a link to nowhere, between the listing and the look
                continue

    walk(str(folder), ())
    found.sort(key=lambda f: f[0])
    return found


def scan(root, cache=None, known=None) -> FolderScan:
    """Read every file's header; record what is usable and what is not (and why). ``cache``: a
    :class:`~cnnlab.data.folder_cache.FolderCache` that knows the headers of unchanged files. ``known``: the
    (mode, size) every image will be converted to: no header is read (decoding finds the files that fail)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder. Expected root/<class>/<image> or a dataset name.")
    split_dirs = {s: root / s for s in ("train", "test")}
    has_splits = all(d.is_dir() for d in split_dirs.values())
    layout = [(s, d) for s, d in split_dirs.items()] if has_splits else [(None, root)]
    names = sorted({c.name for _, d in layout for c in _class_dirs(d)})
    result = FolderScan(root, tuple(names), has_splits)
    for split, folder in layout:
        for class_dir in _class_dirs(folder):
            label = names.index(class_dir.name)
            inside = f"{split}/{class_dir.name}/" if split else f"{class_dir.name}/"
            for parts, st in _files_below(class_dir):
                path = class_dir / parts[0] if len(parts) == 1 else class_dir.joinpath(*parts)
                name = inside + "/".join(parts)
                if cache is not None:  # the walk's stat is the file's stamp: not taken again
                    cache.stamps[name] = stamp_of(st)
                suffix = os.path.splitext(parts[-1])[1]
                if suffix.lower() not in images.IMAGE_SUFFIXES:
                    result.bad.append((path, f"not an image file ({suffix or 'no extension'})"))
                    continue
                if known is not None:
                    result.records.append(Record(path, label, split, *known, name))
                    continue
                try:
                    pil_mode, size = cache.header(path, images.open_header) if cache else images.open_header(path)
                except DataError as e:
                    result.bad.append((path, str(e)))
                    continue
                result.records.append(Record(path, label, split, images.mode_of(pil_mode), size, name))
    return result


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of test items: round(n * fraction) per class (at least 1 when n >= 2), seeded."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(len(members) * test_fraction))
        k = min(max(k, 1 if len(members) >= 2 and test_fraction > 0 else 0), len(members) - 1)
        test[rng.permutation(members)[:k]] = True
    return test


def load_folder(
    root,
    size=None,
    mode=None,
    test_fraction: float = 0.2,
    seed: int = 0,
    progress=None,
    cache: bool = True,
    resize: str | None = None,
    crop_to_aspect_ratio: bool = False,
    exact_test: bool = False,
):
    """An image folder as a :class:`cnnlab.data.Dataset` (see the module docstring), decoded in parallel
    (:mod:`cnnlab.data.decoding`) and, with ``cache``, once: unchanged files come from
    :mod:`cnnlab.data.folder_cache`. ``progress``: a bar factory, as for downloads. ``resize``: one of Keras's
    rules (:mod:`cnnlab.data.keras_rule`): Keras's files, split and pixels; with ``exact_test`` only the test
    split, in float32 as TensorFlow resizes it, the train split left empty (to evaluate a Keras model)."""
    from cnnlab.data.folder_cache import FolderCache

    size, mode = images.check_size(size), images.check_mode(mode)
    if not 0 <= test_fraction < 1:
        raise InputError(f"test_fraction={test_fraction} is outside [0, 1). Expected e.g. 0.2.")
    rule = keras_rule.check_rule(resize)
    if rule is not None:
        how = (rule, crop_to_aspect_ratio, exact_test)
        return _load_keras(Path(root), size, mode, test_fraction, seed, progress, cache and not exact_test, *how)
    kept_cache = FolderCache(root) if cache and Path(root).is_dir() else None
    s = scan(root, kept_cache, (mode, size) if mode and size else None)
    if kept_cache is not None:
        kept_cache.save_headers()
    problems = s.problems()
    if problems:
        raise DataError(" ".join(problems))
    notes = []
    if mode is None:
        modes = s.modes
        mode = modes.most_common(1)[0][0]
        if len(modes) > 1:
            notes.append(f"mixed modes {dict(modes)}: converted all to {mode} (the majority); pass mode= to choose")
    if size is None:
        sizes = s.sizes
        if len(sizes) > 1:
            listed = ", ".join(f"{h}x{w} ({n} images)" for (h, w), n in sizes.most_common(4))
            raise DataError(
                f"{s.root} holds images of {len(sizes)} sizes: {listed}{', ...' if len(sizes) > 4 else ''}. "
                "Expected one size; pass size=(H, W) (CLI: --size H,W) to resize them all."
            )
        size = next(iter(sizes))
    # decoded in the order the splits take (train first, each in the folder's order), so that the splits are
    # views of the decoded array, not copies of it
    labels = np.array([r.label for r in s.records], dtype=np.int64)
    if s.has_splits:
        split_of = lambda keep: np.array([s.records[i].split == "test" for i in keep], bool)  # noqa: E731
    else:
        split_of = lambda keep: stratified_split(labels[keep], test_fraction, seed)  # noqa: E731
    order = np.argsort(split_of(np.arange(len(labels))), kind="stable")
    paths = [s.records[i].path for i in order]
    if kept_cache is not None:
        named = [s.records[i].name for i in order]
        x, kept, failed = kept_cache.decode(paths, mode, size, decode_all, progress, budget=rows.budget(), names=named)
    else:
        x, kept, failed = decode_all(paths, mode, size, progress)
    src = order[kept]  # the record of each decoded row
    if failed:  # a class whose every file failed to decode is no class (its headers were not read first)
        problems = FolderScan(s.root, s.classes, s.has_splits, [s.records[i] for i in np.sort(src)]).problems()
        if problems:
            raise DataError(" ".join(problems))
    by_record = np.argsort(src)
    is_test = np.empty(len(src), bool)
    is_test[by_record] = split_of(src[by_record])  # the split of the files that decoded, in the folder's order
    rows_wanted = np.lexsort((src, is_test))
    if not np.array_equal(rows_wanted, np.arange(len(src))):  # a failed file moved the split: reordered once
        x, src, is_test = rows.part(x, rows_wanted), src[rows_wanted], is_test[rows_wanted]
    how = "train/test folders" if s.has_splits else f"stratified, test_fraction={test_fraction}, seed={seed}"
    files = [s.records[i].name for i in src]
    return _dataset(s.root, s.classes, x, labels[src], is_test, files, list(s.bad) + failed, notes, how, mode, size)


def _dataset(root, classes, x, y, is_test, files, bad, notes, how: str, mode, size, **more) -> Dataset:
    """``files``: each row's path inside ``root``, POSIX."""
    if bad:
        rest = f"; and {len(bad) - 10} more (cnnlab data check {root} lists them all)" if len(bad) > 10 else ""
        notes.append(f"skipped {len(bad)} file(s): " + "; ".join(_named_once(p, why) for p, why in bad[:10]) + rest)
    rel = np.array(files, dtype=object)
    info = {
        "source": f"image folder {root}",
        "splits": how,
        "mode": mode,
        "size": list(size),
        "bad_files": [{"path": str(p), "problem": why} for p, why in bad],
        "notes": notes,
        "files": {"train": rel[~is_test].tolist(), "test": rel[is_test].tolist()},
        **more,
    }
    if isinstance(x, rows.RowFile):
        notes.append(
            f"{x.nbytes / 1e6:,.0f} MB of decoded images is above the memory budget of {rows.budget() / 1e6:,.0f} MB "
            f"(${rows.BUDGET_ENV}): read from {x.path} a batch at a time"
        )
    cut = len(is_test) - int(is_test.sum())
    if not is_test[:cut].any():  # the test split last: both splits are views
        train, test = Split(rows.part(x, slice(0, cut)), y[:cut]), Split(rows.part(x, slice(cut, None)), y[cut:])
    else:
        train, test = Split(rows.part(x, ~is_test), y[~is_test]), Split(rows.part(x, is_test), y[is_test])
    return Dataset(name=root.name, train=train, test=test, classes=tuple(classes), info=info)


def _named_once(path, why: str) -> str:
    """``path (problem)`` with the path written once: the problem names the file by its name."""
    why = str(why).removeprefix(f"{path} ").replace(str(path), Path(path).name)
    return f"{path} ({why})"


def _load_keras(root: Path, size, mode, test_fraction, seed, progress, cache, rule, crop, exact_test) -> Dataset:
    """A folder read as ``keras.utils.image_dataset_from_directory`` reads it (:mod:`cnnlab.data.keras_rule`):
    ``validation_split=test_fraction`` with ``seed``, or the train/ and test/ folders as two directories."""
    from cnnlab.data.folder_cache import FolderCache

    if not root.is_dir():
        raise InputError(f"{root} is not a folder. Expected root/<class>/<image> or a dataset name.")
    if size is None:
        raise InputError(f"resize={rule!r} needs size=(H, W) (CLI: --size H,W), as Keras's image_size.")
    mode = mode or "rgb"
    if all((root / s).is_dir() for s in ("train", "test")):
        (train, train_y, classes), (test, test_y, test_classes) = (
            keras_rule.index(root / s) for s in ("train", "test")
        )
        if classes != test_classes:
            raise DataError(f"{root}/train has classes {list(classes)} but {root}/test has {list(test_classes)}.")
        files, labels = train + test, np.array(train_y + test_y, np.int64)
        is_test, how = np.arange(len(files)) >= len(train), "train/test folders, as two Keras directories"
    else:
        files, found, classes = keras_rule.index(root)
        order, is_test = keras_rule.split(len(files), test_fraction, seed)
        files, labels = [files[i] for i in order], np.array(found, np.int64)[order]
        how = f"Keras's: validation_split={test_fraction}, seed={seed} (numpy RandomState shuffle, last part held out)"
    if len(classes) < 2 or not files:
        raise DataError(
            f"{root} has {len(classes)} class folder(s) and {len(files)} file(s) Keras would read. Expected at "
            f"least two class subfolders holding {', '.join(keras_rule.SUFFIXES)} files."
        )
    if exact_test:  # only the test split, as TensorFlow's float32 pixels
        files, labels, is_test = [files[i] for i in np.flatnonzero(is_test)], labels[is_test], is_test[is_test]
    decoder = functools.partial(decode_all, rule=rule, crop=crop, exact=exact_test)
    if cache:
        made = rule + ("-crop" if crop else "")
        x, kept, failed = FolderCache(root).decode(files, mode, size, decoder, progress, made, rows.budget())
    else:
        x, kept, failed = decoder(files, mode, size, progress)
    notes = [f"resized by Keras's rule: interpolation={rule!r}, crop_to_aspect_ratio={crop}, no EXIF turn"]
    more = {"resize": rule, "crop_to_aspect_ratio": crop}
    files = relative_names([files[i] for i in kept], root)
    return _dataset(root, classes, x, labels[kept], is_test[kept], files, failed, notes, how, mode, size, **more)


@dataclass
class FolderReport:
    """What ``cnnlab data check`` says about a folder."""

    scan: FolderScan
    bad: list[tuple[Path, str]]  # not images, unreadable, truncated, too large
    duplicates: list[list[Path]]
    problems: list[str]  # fatal: the folder would not load
    warnings: list[str]

    @property
    def loads(self) -> bool:
        return not self.problems


def check_folder(root, progress=None) -> FolderReport:
    """Decode every image once and report everything a person should fix before training. ``progress``: a
    bar factory, as for :func:`load_folder`."""
    s = scan(root)
    # every image decoded to its last byte, in parallel; a JPEG at a reduced scale (its data is read whole)
    _, kept, failed = decode_all([r.path for r in s.records], "rgb", (8, 8), progress)
    bad = list(s.bad) + failed
    s.records = [s.records[i] for i in kept]
    warnings = []
    counts = [c for c in s.counts() if c]
    if counts and max(counts) > 1.5 * min(counts):
        warnings.append(
            f"classes are imbalanced: {max(counts)} vs {min(counts)} images (ratio {max(counts) / min(counts):.1f})"
        )
    if len(s.modes) > 1:
        warnings.append(f"mixed modes {dict(s.modes)}: loading converts all to the majority unless mode= is given")
    if len(s.sizes) > 1:
        listed = ", ".join(f"{h}x{w} ({n})" for (h, w), n in s.sizes.most_common(4))
        warnings.append(f"mixed sizes {listed}: loading needs size=(H, W) (CLI: --size H,W)")
    dups = s.duplicates()
    if dups:
        warnings.append(f"{len(dups)} group(s) of identical files")
    return FolderReport(s, bad, dups, s.problems(), warnings)
