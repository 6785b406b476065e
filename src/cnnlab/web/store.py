"""Which runs the server may show, each run loaded once and shared by all requests until its files change.

A run id is accepted only if it is one of the ids discovered inside the served folder:
``..``, absolute paths, encoded variants and symlinks that lead out of the folder never
match, whatever their spelling, because nothing is looked up by the raw text. Every file of a
run is read through :func:`cnnlab.run.files.confined`, so a file linked out of the folder is refused too.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cnnlab.data.images import mode_for
from cnnlab.errors import CnnlabError, DataError
from cnnlab.run.files import CONFIG, METRICS, MODEL_JSON, STATS, WEIGHTS, OutsideRoot, confined
from cnnlab.run.run import KERAS_SUFFIXES, Run, load


class UnknownRun(CnnlabError):
    exit_code = 1


def _signature(folder: Path) -> tuple | None:
    """What changes when a run is retrained, resumed or replaced (a Keras file: the file and its classes.txt);
    None once its model.json (or the Keras file) is gone."""
    keras = folder.suffix.lower() in KERAS_SUFFIXES and not folder.is_dir()
    files = (
        (folder, folder.with_name("classes.txt"))
        if keras
        else [folder / n for n in (MODEL_JSON, WEIGHTS, CONFIG, METRICS)]
    )
    marks = [_mark(file) for file in files]
    return None if marks[0] is None else tuple(marks)


def _mark(file: Path) -> tuple | None:
    """What changes when ``file`` is rewritten (atomically: a new inode) or appended to; None if it is gone."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def modified(folder: Path) -> float:
    """When a run last changed (its newest file of those that make it), in seconds since the epoch; 0 if gone."""
    return max((mark[2] for mark in _signature(folder) or () if mark), default=0) / 1e9


class RunStore:
    SAMPLE_DATASETS = 2  # test splits kept converted for /sample (a folder's may be large)

    def __init__(self, root, max_depth: int = 3, allow_nonfinite: bool = False):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise CnnlabError(f"{root} is not a folder. Expected a run directory or a folder of runs.")
        self.max_depth, self.allow_nonfinite = max_depth, allow_nonfinite
        self._runs: dict[str, tuple[tuple, Run]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one load of each run at a time
        self._refused: dict[str, tuple] = {}  # run id -> (signature, the error its files gave)
        self._datasets: dict[tuple, object] = {}
        self._results: dict[tuple, object] = {}  # (run id, what, signature) -> an evaluation, checks, ...

    def _folders(self):
        """Every folder down to max_depth, links to folders followed; one that vanishes mid-scan is skipped."""
        level = [self.root]
        for depth in range(self.max_depth + 1):
            yield from level
            if depth == self.max_depth:
                return
            below = []
            for folder in level:
                try:
                    with os.scandir(folder) as entries:
                        below += sorted(Path(e.path) for e in entries if e.is_dir())
                except OSError:  # removed or unreadable while we looked
                    continue
            level = below

    def ids(self) -> dict[str, Path]:
        """Run ids (paths relative to the root, '.' for the root itself) -> run folders and Keras files
        (``.keras``, ``.h5``), symlinks out excluded."""
        found = {}
        for folder in self._folders():
            candidates = [folder] if (folder / MODEL_JSON).is_file() else []
            try:
                with os.scandir(folder) as entries:
                    candidates += sorted(
                        Path(e.path) for e in entries if e.is_file() and Path(e.name).suffix.lower() in KERAS_SUFFIXES
                    )
            except OSError:  # removed while we looked
                continue
            for candidate in candidates:
                real = candidate.resolve()  # a symlink resolves to where it really points
                if real == self.root or self.root in real.parents:
                    found.setdefault(real.relative_to(self.root).as_posix(), real)
        return dict(sorted(found.items(), key=lambda kv: (kv[0].count("/"), kv[0])))

    def current(self, run_id: str) -> Run | None:
        """The run if it is loaded and its files are unchanged (a few stat calls: fine on the event loop)."""
        cached = self._runs.get(run_id)
        return cached[1] if cached is not None and _signature(cached[1].path) == cached[0] else None

    def get(self, run_id: str) -> Run:
        """The run, loaded on first use and again whenever its files change; UnknownRun once it is deleted.
        Each run loads under its own lock (one load per file at a time, other runs answered meanwhile), and a
        file that was refused is refused again from memory until it changes. Call it off the event loop."""
        run = self.current(run_id)
        if run is not None:
            return run
        cached = self._runs.get(run_id)
        folder = cached[1].path if cached else self.ids().get(run_id)
        signature = _signature(folder) if folder is not None else None
        if signature is None:
            self._runs.pop(run_id, None)
            raise UnknownRun(f"No run {run_id!r} here. Runs: {', '.join(self.ids()) or 'none'}.")
        with self._guard:
            loading = self._loading.setdefault(run_id, threading.Lock())
        with loading:
            current = self._runs.get(run_id)
            if current is not None and current[0] == signature:
                return current[1]
            refused = self._refused.get(run_id)
            if refused is not None and refused[0] == signature:
                raise refused[1]
            try:
                run = load(confined(folder, self.root), within=self.root, allow_nonfinite=self.allow_nonfinite)
            except CnnlabError as e:
                self._refused[run_id] = (signature, e)
                raise
            self._refused.pop(run_id, None)
            with self._guard:
                self._runs[run_id] = (signature, run)
                self._locks.setdefault(run_id, threading.Lock())
            return run

    def public(self, message: str) -> str:
        """``message`` as a client may read it: paths inside the served folder relative to it, the folder's
        own path never shown."""
        root = str(self.root)
        return message.replace(root + os.sep, "").replace(root, ".")

    def lock(self, run_id: str) -> threading.Lock:
        """One model, one forward pass at a time: requests queue instead of oversubscribing the cores."""
        self.get(run_id)
        return self._locks[run_id]

    def dataset(self, run_id: str):
        """The run's own dataset in the run's size and mode, kept converted for the next request. Only a
        built-in dataset or an image folder inside the served folder is read."""
        from cnnlab import data
        from cnnlab.data.registry import is_registered

        run = self.get(run_id)
        name = str(run.train_config.get("data", ""))
        if not name:
            raise DataError(f"Run {run_id!r} names no dataset (a Keras file): it has no test images to show.")
        if not is_registered(name):
            try:
                confined(Path(name).expanduser(), self.root)
            except OutsideRoot:
                raise OutsideRoot(
                    f"Run {run_id!r} was trained on a folder outside the served folder; its test images are "
                    "not shown. Serve a folder that contains both the run and its data."
                ) from None
        h, w, c = run.input_shape
        key = (name, (h, w), mode_for(c))
        with self._guard:
            ds = self._datasets.get(key)
        if ds is None:
            ds = data.load(name, size=key[1], mode=key[2])
            with self._guard:
                self._datasets[key] = ds
                while len(self._datasets) > self.SAMPLE_DATASETS:
                    self._datasets.pop(next(iter(self._datasets)))
        return ds

    def sample(self, run_id: str, split: str, index: int):
        """Image ``index`` of the run's own dataset, in the run's size and mode: (uint8 HxWxC, class, text)."""
        from cnnlab.data.datasets import pick

        return pick(self.dataset(run_id), split, index)

    CHECKED_IMAGES = 8  # test images the page's explanation checks use

    def _kept(self, run_id: str, what: str, compute, dataset: bool = True, reads: str = ""):
        """``compute(run, ds)``'s result for the run and its own dataset (``compute(run)``'s without ``dataset``),
        kept until the run's files change, or the file ``reads`` of the run folder that it is made from (one of
        each ``what`` per run). Only when nothing is kept is the dataset loaded (outside the run's lock, so the
        model answers other requests meanwhile) and the result made (under it; a result without the dataset does
        not touch the model and takes no lock)."""
        run = self.get(run_id)
        key = (run_id, what, _signature(run.path), _mark(run.path / reads) if reads else None)
        with self._guard:
            kept = self._results.get(key)
        if kept is None:
            if dataset:
                ds = self.dataset(run_id)
                with self.lock(run_id):
                    kept = compute(run, ds)
            else:
                kept = compute(run)
            with self._guard:
                self._results = {k: v for k, v in self._results.items() if k[:2] != (run_id, what)}
                self._results[key] = kept
        return kept

    def health_png(self, run_id: str) -> bytes:
        """The training health figure (:func:`cnnlab.viz.train.health_figure`) as PNG bytes: drawn on the first
        request (about a second of CPU, with the GIL held) and kept until the run's files or its stats.jsonl
        change, since the page asks for it every time a run is chosen."""
        from cnnlab.inspect.health import training_health
        from cnnlab.viz.style import png

        return self._kept(
            run_id, "health figure", lambda run: png(training_health(run).plot(), dpi=90), dataset=False, reads=STATS
        )

    def evaluation(self, run_id: str):
        """The run on its own test split (:func:`cnnlab.run.evaluate.evaluate`), and the test images; kept
        until the run's files change."""
        from cnnlab.compute.device import pick_precision
        from cnnlab.run.evaluate import evaluate

        precision = pick_precision("auto")  # as cnnlab eval computes it

        def compute(run, ds):
            x, y = ds.test.x, ds.test.y
            return evaluate(run.model, x, y, run.classes, precision=precision, scale=run.scale), x

        return self._kept(run_id, "evaluation", compute)

    def explanation_checks(self, run_id: str):
        """:func:`cnnlab.inspect.check_explanations` of every method on the first ``CHECKED_IMAGES`` test images
        of the run's dataset; kept until the run's files change."""
        from cnnlab.inspect import check_explanations

        def compute(run, ds):
            return check_explanations(run, ds.test.x[: self.CHECKED_IMAGES])

        return self._kept(run_id, "explanation checks", compute)
