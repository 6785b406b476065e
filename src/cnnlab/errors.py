"""Typed exceptions. Every message says what happened, what was expected and how to fix it.

The CLI prints ``str(error)`` without a traceback and exits with ``error.exit_code``:
2 for bad usage (the user's input was wrong), 1 for everything else.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class of every error cnnlab raises on purpose."""

    exit_code = 1


class InputError(CnnlabError, ValueError):
    """The caller passed a value cnnlab cannot use (bad usage: exit code 2)."""

    exit_code = 2


class ParseError(InputError):
    """Text given for a matrix or a tuple could not be read."""


class ShapeError(InputError):
    """Shapes do not fit together (channels, kernel larger than input, ...)."""


class PaddingError(InputError):
    """An unknown padding word or an explicit padding that cannot apply."""


class DataError(CnnlabError):
    """A dataset file or folder is missing, corrupt, or does not verify (exit code 1)."""


class ChecksumError(DataError):
    """A file's SHA-256 differs from the one cnnlab expects."""


class FetchError(DataError):
    """No source could provide a dataset."""


class OutputError(CnnlabError):
    """A file cannot be written where it was asked to go (no such folder, no permission, a folder there)."""


class RunError(CnnlabError):
    """A run directory is missing files, is corrupt, or does not match what was asked (exit code 1)."""


class TrainingError(CnnlabError):
    """Training had to stop (a NaN loss, for example); the last good checkpoint is kept."""
