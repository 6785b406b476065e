"""``/api/arith``: convolution and pooling explained cell by cell, TensorFlow's padding beside PyTorch's."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from cnnlab import arith
from cnnlab.errors import InputError
from cnnlab.web.requests import json_object

router = APIRouter(prefix="/api/arith")
BODY = 'an object like {"input": "1 2; 3 4", "kernel": "1 1; 1 1", "padding": "same"}'


def _matrix(body: dict, key: str) -> np.ndarray:
    value = body.get(key)
    matrix = 'a matrix: nested lists of numbers or text like "1 2; 3 4"'
    if value is None:
        raise InputError(f"'{key}' is missing. Expected {matrix}.")
    if isinstance(value, str):
        return arith.parse_matrix(value, key)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"'{key}' must be {matrix}.") from None


# One request explains a playground-sized example, with every cell traced: far below the library's defaults
LIMITS = arith.Limits(cells=4_096, macs=100_000)  # about a second of tracing at most


def _conv(body: dict) -> dict:
    x = arith.matrix.as_batch(_matrix(body, "input"), "input")
    kernel = _matrix(body, "kernel")
    strides, dilation = body.get("strides", 1), body.get("dilation", 1)
    ex = arith.explain_conv(x, kernel, strides, body.get("padding", "valid"), dilation, LIMITS)
    return arith.beside_pytorch(ex, lambda pad: arith.explain_conv(x, kernel, strides, pad, dilation, LIMITS))


def _pool(body: dict) -> dict:
    x = arith.matrix.as_batch(_matrix(body, "input"), "input")
    size, strides, mode = body.get("size", 2), body.get("strides"), body.get("mode", "max")
    ex = arith.explain_pool(x, size, strides, body.get("padding", "valid"), mode, LIMITS)
    return arith.beside_pytorch(ex, lambda pad: arith.explain_pool(x, size, strides, pad, mode, LIMITS))


# The arithmetic runs in the threadpool, never on the event loop: other requests and Ctrl-C stay answered.
@router.post("/conv")
async def conv(request: Request):
    return await run_in_threadpool(_conv, await json_object(request, BODY))


@router.post("/pool")
async def pool(request: Request):
    return await run_in_threadpool(_pool, await json_object(request, BODY))
