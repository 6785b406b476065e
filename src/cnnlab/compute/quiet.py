"""Torch's notes to its own developers, hidden while cnnlab calls into it."""

from __future__ import annotations

import contextlib
import logging


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR):
    """Torch's notes to its own developers (from the named loggers) are not the user's business: below
    ``level`` they are hidden for the block, and each logger's own level is restored afterwards."""
    loggers = [logging.getLogger(name) for name in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, before, strict=True):
            lg.setLevel(old)
