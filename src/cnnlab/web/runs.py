"""``/api/runs``: the served runs, and prediction, feature maps and explanations for an image."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from cnnlab import inspect
from cnnlab.data.images import is_blank
from cnnlab.errors import InputError
from cnnlab.run.files import CURVES
from cnnlab.web.requests import read_input, store
from cnnlab.web.store import RunStore, UnknownRun, modified

router = APIRouter(prefix="/api/runs")
compare = APIRouter(prefix="/api/compare")


@compare.get("/curves.png")
def compare_curves(run: list[str] = Query(..., description="two or more run ids"), runs: RunStore = Depends(store)):
    """The held-out loss and accuracy of several runs on one chart."""
    if len(run) < 2:
        raise InputError("Name two or more runs to compare: ?run=a&run=b.")
    loaded = {run_id: runs.get(run_id) for run_id in run}
    empty = [run_id for run_id, r in loaded.items() if not r.metrics]
    if empty:
        raise UnknownRun(f"Run {empty[0]!r} has no finished epoch yet, so no curves.")
    from cnnlab.viz.train import curves as draw_curves

    buf = io.BytesIO()
    first = next(iter(loaded.values()))
    draw_curves(first.metrics, buf, runs={run_id: r.metrics for run_id, r in loaded.items()})
    return Response(buf.getvalue(), media_type="image/png")


async def run_of(runs: RunStore, run_id: str):
    """The run for an async endpoint: from memory when it is loaded, else loaded in a worker thread, so the
    event loop answers other requests while a large (or hostile) file is read."""
    return runs.current(run_id) or await run_in_threadpool(runs.get, run_id)


def encode_maps(a: np.ndarray) -> dict:
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


def _one_at_a_time(runs: RunStore, run_id: str, fn, *args):
    """Feature maps and explanations of one model take turns: requests queue instead of oversubscribing the cores."""
    with runs.lock(run_id):
        return fn(*args)


@router.get("")
def runs_list(runs: RunStore = Depends(store)):
    found = runs.ids().items()
    return {
        "runs": [{"id": run_id, "name": Path(folder).name, "modified": modified(folder)} for run_id, folder in found]
    }


@router.get("/{run_id:path}/sample/{index}")
def sample(run_id: str, index: int, split: str = "test", runs: RunStore = Depends(store)):
    img, label, desc = runs.sample(run_id, split, index)
    return {"pixels": img[:, :, 0].tolist() if img.shape[2] == 1 else img.tolist(), "label": label, "description": desc}


MISTAKES = 48  # misclassified test images sent with an evaluation, with their pixels


@router.get("/{run_id:path}/evaluation")
def evaluation(run_id: str, runs: RunStore = Depends(store)):
    """Accuracy, loss, the confusion matrix and the first misclassified test images with their pixels."""
    ev, x = runs.evaluation(run_id)
    wrong = np.flatnonzero(ev.labels != ev.predictions)
    h, w, c = x.shape[1:]
    return JSONResponse(
        {
            "accuracy": round(ev.accuracy, 6),
            "loss": round(ev.loss, 6),
            "classes": list(ev.classes),
            "confusion": ev.confusion.tolist(),
            "wrong": int(len(wrong)),
            "total": int(len(ev.labels)),
            "shape": [h, w, c],
            "mistakes": [
                {
                    "index": int(i),
                    "true": int(ev.labels[i]),
                    "predicted": int(ev.predictions[i]),
                    "probability": round(float(ev.probabilities[i, ev.predictions[i]]), 4),
                    "data": base64.b64encode(x[i].transpose(2, 0, 1).tobytes()).decode("ascii"),  # (C, H, W)
                }
                for i in wrong[:MISTAKES]
            ],
        }
    )


@router.get("/{run_id:path}/filters/{layer}")
def filter_of(run_id: str, layer: str, channel: int = 0, runs: RunStore = Depends(store)):
    run = runs.get(run_id)
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


@router.get("/{run_id:path}/curves.png")
def curves(run_id: str, runs: RunStore = Depends(store)):
    run = runs.get(run_id)
    path = run.file(CURVES)  # links out of the served folder refused
    if path is not None:  # cnnlab train draws it after every epoch
        return FileResponse(path, media_type="image/png")
    if not run.metrics:
        raise UnknownRun(f"Run {run_id!r} has no finished epoch yet, so no curves.")
    from cnnlab.viz.train import curves as draw_curves  # a run trained from Python: drawn from its metrics

    buf = io.BytesIO()
    draw_curves(run.metrics, buf, run.steps)
    return Response(buf.getvalue(), media_type="image/png")


@router.get("/{run_id:path}/health")
def health(run_id: str, runs: RunStore = Depends(store)):
    """The run's training statistics (:func:`cnnlab.inspect.health.training_health`): whether they were
    recorded, the verdict, the layers that died with their channel counts, and the watched steps."""
    from cnnlab.inspect.health import training_health

    try:
        h = training_health(runs.get(run_id))
    except InputError as e:
        return {"recorded": False, "verdict": runs.public(str(e)), "died": {}, "steps": 0}
    return {"recorded": True, "verdict": h.verdict, "died": h.died, "steps": len(h.steps)}


@router.get("/{run_id:path}/health.png")
def health_png(run_id: str, runs: RunStore = Depends(store)):
    """The training health figure (:func:`cnnlab.viz.train.health_figure`), as the report draws it."""
    return Response(runs.health_png(run_id), media_type="image/png")


@router.get("/{run_id:path}/explanation-checks")
def explanation_checks(run_id: str, runs: RunStore = Depends(store)):
    """Deletion, insertion and model randomization of every explanation method on a few test images
    (:meth:`RunStore.explanation_checks`)."""
    return JSONResponse(runs.explanation_checks(run_id).as_dict())


@router.post("/{run_id:path}/predict")
async def predict(run_id: str, request: Request, runs: RunStore = Depends(store)):
    run = await run_of(runs, run_id)
    img, notes = await read_input(request, run)
    batch, more = run.predict_with_notes(img[None])  # ~0.3 ms on one thread: cheaper inline than a threadpool
    probs, notes = batch[0], notes + more  # more: e.g. how a Keras model's input is scaled
    order = np.argsort(-probs)
    top = [{"class": run.classes[i], "probability": round(float(probs[i]), 6)} for i in order[:3]]
    # JSONResponse: the payload is plain lists and strings, so FastAPI's encoder walk is not needed
    payload = {"classes": list(run.classes), "probabilities": probs.round(6).tolist(), "top": top, "notes": notes}
    return JSONResponse({**payload, "blank": is_blank(img)})  # the page shows "nothing drawn", not the bars


@router.post("/{run_id:path}/feature-maps")
async def feature_maps(run_id: str, request: Request, layers: str | None = None, runs: RunStore = Depends(store)):
    run = await run_of(runs, run_id)
    img, _ = await read_input(request, run)
    chosen = [s for s in layers.split(",") if s] if layers else None
    x, _ = run.prepare(img[None])  # (1, C, H, W), what the model sees
    maps = await run_in_threadpool(_one_at_a_time, runs, run_id, inspect.feature_maps, run.model, x, chosen)
    kinds = {n: getattr(m, "kind", type(m).__name__) for n, m in inspect.named_layers(run.model)}
    h, w, c = run.input_shape
    shown = np.clip(np.round(x[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)  # (H, W, C)
    return JSONResponse(
        {
            "input": {"shape": [h, w, c], "data": base64.b64encode(shown.transpose(2, 0, 1).tobytes()).decode()},
            "layers": [{"name": n, "kind": kinds.get(n, ""), **encode_maps(m[0])} for n, m in maps.items()],
        }
    )


@router.post("/{run_id:path}/cell")
async def cell(
    run_id: str,
    request: Request,
    layer: str,
    row: int = 0,
    col: int = 0,
    channel: int = 0,
    runs: RunStore = Depends(store),
):
    """How one cell of a layer's map was computed for the image: patch, kernel, products, bias, activation."""
    run = await run_of(runs, run_id)
    img, _ = await read_input(request, run)
    from cnnlab.inspect.cells import explain_cell

    result = await run_in_threadpool(_one_at_a_time, runs, run_id, explain_cell, run, img, layer, row, col, channel)
    return JSONResponse(result)


@router.post("/{run_id:path}/explain")
async def explain(
    run_id: str, request: Request, method: str = "gradcam", target: int | None = None, runs: RunStore = Depends(store)
):
    run = await run_of(runs, run_id)
    img, _ = await read_input(request, run)
    a = await run_in_threadpool(_one_at_a_time, runs, run_id, inspect.explain, run, img, method, target)
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


@router.get("/{run_id:path}")
def run_info(run_id: str, runs: RunStore = Depends(store)):
    from cnnlab.nn.graph import Model, graph_view
    from cnnlab.nn.summary import summarize

    run = runs.get(run_id)
    summary = graph = None
    if isinstance(run.model, Model):
        s = summarize(run.model)
        summary = {**s.to_dict(), "closing_lines": s.closing_lines()}
        graph = graph_view(run.model) if s.graph else None
    return {
        "id": run_id,
        "classes": list(run.classes),
        "input_shape": list(run.input_shape),
        "config": run.train_config,
        "metrics": run.metrics,
        "summary": summary,
        "graph": graph,  # a branching model's layers as a graph (None for a chain)
        "preprocessing": run.preprocessing,
    }
