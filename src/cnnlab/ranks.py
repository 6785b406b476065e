"""Which training process this is, from the launcher's environment alone (no torch import: the CLI's error
printer asks it). ``cnnlab.training.distributed`` holds the rest of the multi-process rules."""

from __future__ import annotations

import os


def launched() -> bool:
    """True in a worker that a launcher (``cnnlab train --nproc`` or ``torchrun``) started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0, or a process on its own: the one that speaks for the job."""
    return int(os.environ.get("RANK", "0")) == 0
