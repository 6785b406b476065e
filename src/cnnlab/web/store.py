"""Which runs the server may show, and each run loaded once, shared by all requests.

A run id is accepted only if it is one of the ids discovered inside the served folder:
``..``, absolute paths, encoded variants and symlinks that lead out of the folder never
match, whatever their spelling, because nothing is looked up by the raw text.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.train.run import MODEL_JSON, Run


class UnknownRun(CnnlabError):
    exit_code = 1


class RunStore:
    def __init__(self, root, max_depth: int = 3):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise CnnlabError(f"{root} is not a folder. Expected a run directory or a folder of runs.")
        self.max_depth = max_depth
        self._runs: dict[str, Run] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def ids(self) -> dict[str, Path]:
        """Run ids (paths relative to the root, '.' for the root itself) -> folders, symlinks out excluded."""
        found = {}
        patterns = [MODEL_JSON] + ["*/" * depth + MODEL_JSON for depth in range(1, self.max_depth + 1)]
        for meta in (m for pattern in patterns for m in sorted(self.root.glob(pattern))):
            folder = meta.parent.resolve()  # a symlink resolves to where it really points
            if folder == self.root or self.root in folder.parents:
                rel = folder.relative_to(self.root).as_posix()
                found[rel] = folder
        return found

    def get(self, run_id: str) -> Run:
        loaded = self._runs.get(run_id)  # ids are checked against the folder once, when first loaded
        if loaded is not None:
            return loaded
        folder = self.ids().get(run_id)
        if folder is None:
            raise UnknownRun(f"No run {run_id!r} here. Runs: {', '.join(self.ids()) or 'none'}.")
        with self._guard:
            if run_id not in self._runs:
                self._runs[run_id] = Run.load(folder)
                self._locks[run_id] = threading.Lock()
        return self._runs[run_id]

    def lock(self, run_id: str) -> threading.Lock:
        """One model, one forward pass at a time: requests queue instead of oversubscribing the cores."""
        self.get(run_id)
        return self._locks[run_id]
