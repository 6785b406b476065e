"""The FastAPI app: the page, and an HTTP API whose every endpoint is a few lines over the library."""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from cnnlab import arith, inspect
from cnnlab.data import images
from cnnlab.errors import CnnlabError, DataError, InputError, RunError
from cnnlab.web.store import RunStore, UnknownRun

STATIC = Path(__file__).parent / "static"
ARITH_BODY = 'an object like {"input": "1 2; 3 4", "kernel": "1 1; 1 1", "padding": "same"}'


class TooLarge(InputError):
    pass


def _encode_maps(a: np.ndarray) -> dict:
    """One layer's output for the browser: uint8 per channel (min-max scaled), base64, with the ranges."""
    if a.ndim == 1:
        return {"shape": list(a.shape), "values": [round(float(v), 5) for v in a]}
    lo = a.min(axis=(0, 1))
    hi = a.max(axis=(0, 1))
    scaled = np.where(hi > lo, (a - lo) / np.where(hi > lo, hi - lo, 1), 0)
    u8 = np.round(scaled * 255).astype(np.uint8).transpose(2, 0, 1)  # (C, H, W): one image per channel
    return {
        "shape": list(a.shape),
        "min": lo.round(5).tolist(),
        "max": hi.round(5).tolist(),
        "data": base64.b64encode(u8.tobytes()).decode("ascii"),
    }


# Most specific first: what each kind of error says over HTTP
HTTP_STATUS = (
    (UnknownRun, 404),  # no such run in the served folder
    (TooLarge, 413),
    (InputError, 400),  # the request was wrong
    (DataError, 404),  # the data asked for is not there (a sample index outside the split, a dataset missing)
    (RunError, 409),  # the run exists, but its files cannot be used as they are (missing weights, corrupt)
    (CnnlabError, 422),
)


def create_app(root, max_upload_bytes: int = 5 * 1024 * 1024, max_pixels: int = 4096 * 4096) -> FastAPI:
    store = RunStore(root)
    app = FastAPI(title="cnnlab", description="Predict, look inside and explain any run trained with cnnlab.")

    @app.exception_handler(CnnlabError)
    async def _errors(request, error: CnnlabError):
        status = next(code for kind, code in HTTP_STATUS if isinstance(error, kind))
        return JSONResponse({"error": str(error)}, status_code=status)

    async def json_object(request: Request, expected: str) -> dict:
        """The request's JSON body, which must be an object; anything else is a 400 saying what was expected."""
        try:
            body = await request.json()
        except ValueError:
            raise InputError(f"The body is not valid JSON. Expected {expected}.") from None
        if not isinstance(body, dict):
            raise InputError(f"The body is a JSON {type(body).__name__}, not an object. Expected {expected}.")
        return body

    async def read_image(request: Request) -> np.ndarray:
        """The image of a request: multipart field ``file``, JSON ``{"image": base64}`` or ``{"pixels": [...]}``,
        optionally ``"preprocess": "mnist"`` for a drawing (see images.mnist_style)."""
        length = int(request.headers.get("content-length") or 0)
        if length > max_upload_bytes:
            raise TooLarge(f"The request is {length:,} bytes; uploads are limited to {max_upload_bytes:,}.")
        kind = request.headers.get("content-type", "")
        preprocess = None
        if kind.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or not hasattr(upload, "read"):
                raise InputError("The form has no file. Expected a multipart field named 'file'.")
            data = await upload.read(max_upload_bytes + 1)
            if len(data) > max_upload_bytes:
                raise TooLarge(f"The file is larger than the {max_upload_bytes:,}-byte limit.")
            img = images.decode_bytes(data, upload.filename or "upload", max_pixels)
            preprocess = form.get("preprocess")
        else:
            body = await json_object(request, "a multipart upload (field 'file') or JSON with 'image' or 'pixels'")
            preprocess = body.get("preprocess")
            if "image" in body:
                text = str(body["image"]).split(",", 1)[-1]  # accepts data: URLs too
                try:
                    data = base64.b64decode(text, validate=True)
                except (binascii.Error, ValueError):
                    raise InputError("'image' is not valid base64.") from None
                img = images.decode_bytes(data, "image", max_pixels)
            elif "pixels" in body:
                try:
                    arr = np.asarray(body["pixels"], dtype=np.float64)
                except (TypeError, ValueError):
                    raise InputError("'pixels' must be nested lists of numbers (H x W or H x W x C).") from None
                if arr.ndim not in (2, 3) or arr.size == 0 or arr.shape[0] * arr.shape[1] > max_pixels:
                    raise InputError(f"'pixels' has shape {arr.shape}; expected H x W or H x W x C within limits.")
                if arr.max() <= 1.0:
                    arr = arr * 255  # floats in [0, 1]
                img = np.clip(np.round(arr), 0, 255).astype(np.uint8)
                img = img[:, :, None] if img.ndim == 2 else img
            else:
                raise InputError("The JSON has neither 'image' (base64) nor 'pixels'.")
        if preprocess == "mnist":
            gray = img if img.shape[2] == 1 else images.convert(img[None], mode="gray")[0]
            img = images.mnist_style(gray)
        elif preprocess not in (None, "", "none"):
            raise InputError(f"Unknown preprocess {preprocess!r}. Expected 'mnist' or none.")
        return img

    async def read_input(request: Request, run) -> tuple[np.ndarray, list[str]]:
        """The request's image fitted to the run as a file would be on the command line (size, mode, inversion)."""
        return run.fit_image(await read_image(request), "auto", "the upload")

    def locked(run_id: str, fn, *args):
        """Hooks go onto the shared model: one hook-using request per model at a time."""
        with store.lock(run_id):
            return fn(*args)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/runs")
    def runs():
        return {"runs": [{"id": run_id, "name": Path(folder).name} for run_id, folder in store.ids().items()]}

    @app.get("/api/runs/{run_id:path}/sample/{index}")
    def sample(run_id: str, index: int, split: str = "test"):
        from cnnlab.data import sample as data_sample

        run = store.get(run_id)
        h, w, c = run.input_shape
        name = run.train_config.get("data")
        img, label, desc = data_sample(f"{name}:{split}:{index}", (h, w), "gray" if c == 1 else "rgb")
        return {"pixels": img[:, :, 0].tolist() if c == 1 else img.tolist(), "label": label, "description": desc}

    @app.get("/api/runs/{run_id:path}/filters/{layer}")
    def filter_of(run_id: str, layer: str, channel: int = 0):
        run = store.get(run_id)
        conv = inspect.conv_before(run.model, layer)  # the convolution that made this layer's map
        f = inspect.filters(run.model, conv)
        if not 0 <= channel < f.kernels.shape[3]:
            raise InputError(f"Channel {channel} of '{conv}' does not exist (0..{f.kernels.shape[3] - 1}).")
        k = f.kernels[:, :, :, channel]
        return {
            "layer": conv,
            "channel": channel,
            "shape": list(k.shape),
            "kernel": k.round(5).tolist(),
            "min": float(k.min()),
            "max": float(k.max()),
        }

    @app.get("/api/runs/{run_id:path}/curves.png")
    def curves(run_id: str):
        run = store.get(run_id)
        path = run.path / "curves.png"
        if path.is_file():  # cnnlab train draws it after every epoch
            return FileResponse(path, media_type="image/png")
        if not run.metrics:
            raise UnknownRun(f"Run {run_id!r} has no finished epoch yet, so no curves.")
        from cnnlab.viz.train import curves as draw_curves  # a run trained from Python: drawn from its metrics

        buf = io.BytesIO()
        draw_curves(run.metrics, buf)
        return Response(buf.getvalue(), media_type="image/png")

    @app.post("/api/runs/{run_id:path}/predict")
    async def predict(run_id: str, request: Request):
        run = store.get(run_id)
        img, notes = await read_input(request, run)
        probs = run.predict(img[None])[0]  # ~0.3 ms on one thread: cheaper inline than a threadpool
        order = np.argsort(-probs)
        return JSONResponse(
            {
                "classes": list(run.classes),
                "probabilities": probs.round(6).tolist(),
                "top": [{"class": run.classes[i], "probability": round(float(probs[i]), 6)} for i in order[:3]],
                "notes": notes,
            }
        )

    @app.post("/api/runs/{run_id:path}/feature-maps")
    async def feature_maps(run_id: str, request: Request, layers: str | None = None):
        run = store.get(run_id)
        img, _ = await read_input(request, run)
        chosen = [s for s in layers.split(",") if s] if layers else None
        x, _ = run.prepare(img[None])  # (1, C, H, W), what the model sees
        maps = await run_in_threadpool(locked, run_id, inspect.feature_maps, run.model, x, chosen)
        # (JSONResponse below: the payload is plain lists and strings, so FastAPI's encoder walk is not needed)
        kinds = {n: getattr(m, "kind", type(m).__name__) for n, m in inspect.named_layers(run.model)}
        h, w, c = run.input_shape
        shown = np.clip(np.round(x[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
        return JSONResponse(
            {
                "input": {"shape": [h, w, c], "data": base64.b64encode(shown.transpose(2, 0, 1).tobytes()).decode()},
                "layers": [{"name": n, "kind": kinds.get(n, ""), **_encode_maps(m[0])} for n, m in maps.items()],
            }
        )

    @app.post("/api/runs/{run_id:path}/explain")
    async def explain(run_id: str, request: Request, method: str = "gradcam", target: int | None = None):
        run = store.get(run_id)
        img, _ = await read_input(request, run)
        a = await run_in_threadpool(locked, run_id, inspect.explain, run, img, method, target)
        return JSONResponse(
            {
                "method": a.method,
                "target": a.target,
                "class": a.target_name,
                "layer": a.layer,
                "reason": a.reason,
                "probability": float(a.probabilities[a.target]),
                "heatmap": a.heatmap.round(4).tolist(),
            }
        )

    @app.get("/api/runs/{run_id:path}")
    def run_info(run_id: str):
        from cnnlab.nn.model import Sequential
        from cnnlab.nn.summary import summarize

        run = store.get(run_id)
        summary = None
        if isinstance(run.model, Sequential):
            s = summarize(run.model)
            summary = {**s.to_dict(), "closing_lines": s.closing_lines()}
        return {
            "id": run_id,
            "classes": list(run.classes),
            "input_shape": list(run.input_shape),
            "config": run.train_config,
            "metrics": run.metrics,
            "summary": summary,
            "preprocessing": run.preprocessing,
        }

    def _arith_input(body: dict, key: str):
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

    def _both_paddings(ex, rerun) -> dict:
        """TensorFlow's explanation, and what PyTorch's symmetric padding would compute instead."""
        tf = ex.to_dict(trace=True)
        values, mask = ex.padded(0)
        tf["padded"] = values[:, :, 0].tolist()
        tf["padded_mask"] = mask.tolist()
        ah, aw = ex.axes
        sym = ((ah.after, ah.after), (aw.after, aw.after))  # PyTorch pads both sides by the same amount
        try:
            torch_ex = rerun(sym)
            torch_side = torch_ex.to_dict(trace=True)
            tv, tm = torch_ex.padded(0)
            torch_side["padded"], torch_side["padded_mask"] = tv[:, :, 0].tolist(), tm.tolist()
        except CnnlabError as e:
            torch_side = {"error": str(e)}
        torch_side["note"] = ex.pytorch()
        torch_side["same_as_tensorflow"] = ah.symmetric and aw.symmetric
        return {"tensorflow": tf, "pytorch": torch_side}

    @app.post("/api/arith/conv")
    async def conv(request: Request):
        body = await json_object(request, ARITH_BODY)
        x = arith.matrix.as_batch(_arith_input(body, "input"), "input")
        kernel = _arith_input(body, "kernel")
        strides, dilation = body.get("strides", 1), body.get("dilation", 1)
        ex = arith.explain_conv(x, kernel, strides, body.get("padding", "valid"), dilation)
        return _both_paddings(ex, lambda pad: arith.explain_conv(x, kernel, strides, pad, dilation))

    @app.post("/api/arith/pool")
    async def pool(request: Request):
        body = await json_object(request, ARITH_BODY)
        x = arith.matrix.as_batch(_arith_input(body, "input"), "input")
        size, strides, mode = body.get("size", 2), body.get("strides"), body.get("mode", "max")
        ex = arith.explain_pool(x, size, strides, body.get("padding", "valid"), mode)
        return _both_paddings(ex, lambda pad: arith.explain_pool(x, size, strides, pad, mode))

    return app
