"""What cnnlab reads from a file it did not write, and how much: one place for the bounds that keep a hostile
or damaged file a one-line error in bounded memory.

A text file (a spec, a run's model.json, config.json or metrics.jsonl, a Keras config) is at most
``MAX_TEXT_BYTES`` and nested at most ``MAX_JSON_DEPTH`` deep; the depth is counted on the raw text before
any parser sees it. An archive member (a ``.keras`` file's config.json and model.weights.h5) is checked
against its declared size and then streamed with a cap, so a zip bomb stops at the cap whatever its header
claims. A model holds at most ``MAX_PARAMETERS`` numbers, counted on PyTorch's meta device before any weight
is allocated (:func:`cnnlab.nn.budget.built_within_budget`). The largest plausible model cnnlab reads is VGG19
of ``keras.applications`` (143.7 million parameters, 575 MB); the bounds are about that, and a quarter of it
for text (``docs/design.md`` states them).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from cnnlab.errors import InputError

MAX_TEXT_BYTES = 64 * 2**20  # a JSON or TOML file: VGG19's Keras config is 0.03 MB, a long run's metrics a few MB
MAX_JSON_DEPTH = 100  # ResNet50's Keras config nests 12 deep; Python's parsers recurse and fail near 1,000
MAX_PARAMETERS = 160_000_000  # VGG19 holds 143.7 million
MAX_WEIGHTS_BYTES = 2**30  # a weights file: VGG19's float32 values are 575 MB
MAX_ACTIVATION_CELLS = 2**28  # values the layers make for one image: VGG19 at 224x224 makes 16 million
MAX_INPUT_CELLS = 4 * 4096 * 4096  # an input image's values: a 4096x4096 RGBA picture
WORKER_BYTES = 400 * 2**20  # what one --nproc worker holds training a small CNN (about 300 MB measured)
_CHUNK = 2**20
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"|\'[^\'\n]*\'')  # JSON and TOML strings, whose brackets do not nest
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")


def physical_memory() -> int:
    """Bytes of physical memory on this machine."""
    import os

    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_workers(nproc: int, cores: int) -> None:
    """``--nproc``: at least 1, at most one worker a core, and all of them within half the memory."""
    if type(nproc) is not int or nproc < 1:
        raise InputError(f"--nproc {nproc}. Expected a whole number >= 1.")
    if nproc > cores:
        raise InputError(f"--nproc {nproc} is more workers than this machine's {cores} cores; use at most {cores}.")
    most = max(1, physical_memory() // 2 // WORKER_BYTES)
    if nproc > most:
        raise InputError(
            f"--nproc {nproc} workers would need about {nproc * WORKER_BYTES / 1e9:.1f} GB (each holds about "
            f"{WORKER_BYTES / 1e6:.0f} MB), more than half of this machine's {physical_memory() / 1e9:.1f} GB; "
            f"use at most {most}."
        )


def refuse_nonfinite(what: str, allow: bool, error=InputError) -> None:
    """Weights that hold NaN or infinity (``what`` names them): an error, or with ``allow`` a warning."""
    import warnings

    said = f"{what} holds NaN or infinite values"
    if not allow:
        raise error(f"{said}; the model would predict NaN. Load it anyway: --allow-nonfinite (allow_nonfinite=True).")
    warnings.warn(f"{said}; loaded as asked (allow_nonfinite).", RuntimeWarning, stacklevel=3)


MALFORMED = (AttributeError, TypeError, KeyError, ValueError, IndexError, OSError, RecursionError)


def what_went_wrong(error: BaseException) -> str:
    """An exception that a malformed file caused, in one short line: ``TypeError: ...``."""
    said = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{type(error).__name__}{': ' + said if said else ''}"


def megabytes(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def check_depth(data: bytes, what: str, error=InputError) -> None:
    """Refuse text whose brackets nest deeper than ``MAX_JSON_DEPTH``, counted before any parser recurses."""
    import numpy as np

    bare = _STRING.sub(b'""', data)
    codes = np.frombuffer(bare, np.uint8)
    depth = 0
    for start in range(0, len(codes), _CHUNK):  # in slices: the running depth never costs more than a few MB
        chunk = codes[start : start + _CHUNK]
        steps = np.isin(chunk, list(_OPEN)).astype(np.int32) - np.isin(chunk, list(_CLOSE)).astype(np.int32)
        running = depth + np.cumsum(steps)
        if len(running) and running.max() > MAX_JSON_DEPTH:
            raise error(f"{what} nests more than {MAX_JSON_DEPTH} levels deep, the most cnnlab reads.")
        depth = int(running[-1]) if len(running) else depth


def parse(data: bytes | str, what: str, toml: bool = False, error=InputError):
    """JSON (or TOML) text as Python values, after its size and depth are checked; any fault is ``error``
    naming ``what``."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_TEXT_BYTES:
        raise error(f"{what} is {megabytes(len(raw))}; cnnlab reads text files of at most {megabytes(MAX_TEXT_BYTES)}.")
    check_depth(raw, what, error)
    try:
        text = raw.decode("utf-8")
        return tomllib.loads(text) if toml else json.loads(text)
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text ({e.reason} at byte {e.start}).") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        kind = "TOML" if toml else "JSON"
        raise error(f"{what} is not valid {kind}: {str(e).splitlines()[0]}") from None


def read_text(path: Path, what: str | None = None, error=InputError) -> bytes:
    """A text file's bytes, refused before reading when it is larger than ``MAX_TEXT_BYTES``."""
    what = what or str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
    except OSError as e:
        raise error(f"{what} cannot be read ({e.strerror or e}).") from None
    if len(data) > MAX_TEXT_BYTES:
        raise error(f"{what} is larger than {megabytes(MAX_TEXT_BYTES)}, the most cnnlab reads of a text file.")
    return data


def read_parsed(path: Path, what: str | None = None, error=InputError):
    """A JSON file (TOML when its suffix is .toml), bounded: :func:`read_text`, then :func:`parse`."""
    what = what or str(path)
    return parse(read_text(path, what, error), what, Path(path).suffix.lower() == ".toml", error)


def copy_member(archive, name: str, target, cap: int, what: str, error=InputError) -> int:
    """Stream one member of a zip ``archive`` into the file object ``target``, at most ``cap`` bytes: its
    declared size is checked first, and the stream is cut at the cap whatever the header claims. Bytes copied."""
    import zipfile
    import zlib

    info = archive.getinfo(name)
    if info.file_size > cap:
        raise error(
            f"{what}: {name} declares {megabytes(info.file_size)} unpacked; cnnlab reads at most {megabytes(cap)}."
        )
    copied = 0
    try:
        with archive.open(info) as source:
            while chunk := source.read(_CHUNK):
                copied += len(chunk)
                if copied > cap:
                    raise error(f"{what}: {name} unpacks to more than {megabytes(cap)}; refused.")
                target.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
        raise error(f"{what}: {name} is damaged ({type(e).__name__}: {e}).") from None
    return copied


def read_member(archive, name: str, what: str, error=InputError) -> bytes:
    """One text member of a zip archive, bounded by ``MAX_TEXT_BYTES`` (:func:`copy_member`)."""
    import io

    buf = io.BytesIO()
    copy_member(archive, name, buf, MAX_TEXT_BYTES, what, error)
    return buf.getvalue()
