"""What a request carries, read with the library's rules: the served runs, a JSON object, an image."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
from fastapi import Request

from cnnlab.data import images
from cnnlab.data.images import MAX_UPLOAD_PIXELS
from cnnlab.errors import InputError
from cnnlab.web.store import RunStore

IMAGE_BODY = "a multipart upload (field 'file') or JSON with 'image' or 'pixels'"


class TooLarge(InputError):
    pass


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 5 * 1024 * 1024
    max_pixels: int = MAX_UPLOAD_PIXELS


def store(request: Request) -> RunStore:
    """The app's runs (a FastAPI dependency)."""
    return request.app.state.store


def limits(request: Request) -> Limits:
    return request.app.state.limits


class BodyLimit:
    """ASGI middleware: every request body is counted while it streams in, chunked or not, and the request is
    refused with a 413 as soon as it passes ``limit`` bytes (a declared Content-Length beyond it, at once).
    Nothing past the limit is read, buffered or spooled to disk."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        received = 0

        async def counted():
            nonlocal received
            if declared > self.limit:
                raise TooLarge(f"The request is {declared:,} bytes; uploads are limited to {self.limit:,}.")
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise TooLarge(f"The request passed {self.limit:,} bytes; uploads are limited to {self.limit:,}.")
            return message

        await self.app(scope, counted, send)


class NotJson(InputError):
    """A body sent as something other than application/json (415)."""


DEEPEST = 3  # no field nests deeper: pixels are rows, columns, channels; padding is pairs inside a list
MAX_DIGITS = 18  # the longest whole number any field needs (well past float64's exact integers)


class _Bad:
    """A JSON value no field accepts (NaN, Infinity, a number beyond float64), left in place while parsing
    so that the error can name the field that holds it."""

    def __init__(self, what: str):
        self.what = what


def _strict_loads(raw: bytes):
    """``json.loads`` that marks NaN, Infinity and overlong numbers; returns (value, whether any was marked)."""
    marked = []

    def bad(what: str) -> _Bad:
        marked.append(what)
        return _Bad(what)

    def number(text: str):
        value = float(text)
        return value if abs(value) != float("inf") else bad(f"{text}, which is beyond float64")

    def whole(text: str):
        digits = len(text.lstrip("-"))
        return int(text) if digits <= MAX_DIGITS else bad(f"a {digits}-digit integer")

    return json.loads(raw, parse_constant=bad, parse_float=number, parse_int=whole), bool(marked)


def _holds_bad(value) -> _Bad | None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, _Bad):
            return v
        if isinstance(v, (list, dict)):
            stack.extend(v.values() if isinstance(v, dict) else v)
    return None


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _too_deep(raw: bytes) -> InputError:
    """Which top-level field of ``raw`` nests too deep for the parser, found without parsing."""
    text = np.frombuffer(raw, dtype=np.uint8).copy()
    strings = [(m.start(), m.end()) for m in _STRING.finditer(raw)]
    for a, b in strings:
        text[a:b] = ord("_")  # brackets inside strings do not nest
    opens = np.isin(text, (ord("["), ord("{"))).astype(np.int64)
    depth = np.cumsum(opens - np.isin(text, (ord("]"), ord("}"))))
    first = int(np.argmax(depth > DEEPEST + 1))  # +1: the body's own object
    keys = [(a, b) for a, b in strings if a < first and depth[a] == 1 and raw[b:].lstrip()[:1] == b":"]
    where = f"'{raw[keys[-1][0] + 1 : keys[-1][1] - 1].decode(errors='replace')}'" if keys else "The body"
    return InputError(
        f"{where} nests {int(depth.max()) - 1:,} levels deep. No field goes deeper than {DEEPEST} "
        "(pixels: rows, columns, channels)."
    )


async def json_object(request: Request, expected: str) -> dict:
    """The request's JSON body, which must be an object; anything else is a 400 saying what was expected.
    Only ``application/json`` is read: a form or text/plain POST, which any web page can send to this server
    without asking, is refused (415). NaN, Infinity, numbers beyond float64 and nesting too deep to parse
    are refused naming the field."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise NotJson(f"The body is sent as {kind or 'no content type'!r}. Expected application/json, {expected}.")
    raw = await request.body()  # a body over the limit stops here, with TooLarge
    try:
        body, marked = _strict_loads(raw)
    except RecursionError:
        raise _too_deep(raw) from None
    except ValueError:
        raise InputError(f"The body is not valid JSON. Expected {expected}.") from None
    if not isinstance(body, dict):
        raise InputError(f"The body is a JSON {type(body).__name__}, not an object. Expected {expected}.")
    for key, value in body.items() if marked else ():
        bad = _holds_bad(value)
        if bad is not None:
            raise InputError(f"'{key}' holds {bad.what}. Expected finite numbers, as float64 holds them.")
    return body


async def read_image(request: Request) -> tuple[np.ndarray, list[str]]:
    """The image of a request and notes on its decoding: multipart field ``file``, JSON ``{"image": base64}``
    or ``{"pixels": [...]}``, optionally ``"preprocess": "mnist"`` for a drawing (see images.prepare_drawing)."""
    lim = limits(request)  # the body's size is enforced as it streams in (BodyLimit)
    notes: list[str] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or not hasattr(upload, "read"):
            raise InputError("The form has no file. Expected a multipart field named 'file'.")
        data = await upload.read(lim.max_upload_bytes + 1)
        if len(data) > lim.max_upload_bytes:
            raise TooLarge(f"The file is larger than the {lim.max_upload_bytes:,}-byte limit.")
        img = images.decode_bytes(data, upload.filename or "upload", lim.max_pixels, notes)
        return images.prepare_drawing(img, form.get("preprocess")), notes
    body = await json_object(request, IMAGE_BODY)
    if "image" in body:
        img = images.decode_base64(body["image"], "image", lim.max_pixels, notes)
    elif "pixels" in body:
        img = images.from_pixels(body["pixels"], "pixels", lim.max_pixels)
    else:
        raise InputError("The JSON has neither 'image' (base64) nor 'pixels'.")
    return images.prepare_drawing(img, body.get("preprocess")), notes


async def read_input(request: Request, run) -> tuple[np.ndarray, list[str]]:
    """The request's image fitted to the run as a file would be on the command line (size, mode, inversion)."""
    img, notes = await read_image(request)
    fitted, more = run.fit_image(img, "auto", "the upload")
    return fitted, notes + more
