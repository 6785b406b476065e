"""``cnnlab report RUN -o report.html``: everything about a run on one page that needs no network.

Every figure is drawn by cnnlab.viz into memory and inlined as a base64 PNG; the CSS is
inline and there is no script, so the file can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import numpy as np

from cnnlab.atomic import write_text
from cnnlab.data.images import mode_for
from cnnlab.errors import InputError

CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 4px 0; }
.meta { color: #555; } .grid { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #ddd; padding: 6px; border-radius: 4px; width: 740px; max-width: 100%; font-size: 13px; }
code, pre { background: #f6f6f6; padding: 1px 4px; border-radius: 3px; }
pre { padding: 8px; overflow-x: auto; }
.big { font-size: 1.6em; font-weight: 600; }
.glevel { display: flex; flex-wrap: wrap; gap: 4px; margin: 3px 0; }
.gnode { border: 1px solid #bbb; border-radius: 4px; padding: 2px 6px; font-size: 13px; overflow-wrap: anywhere; }
"""


def _png(draw, *args, alt: str, **kwargs) -> str:
    """Run a cnnlab.viz drawing function (whose next positional argument is the path) into memory;
    return an <img> with the PNG inlined and ``alt`` saying what it shows, for a reader who cannot see it."""
    buf = io.BytesIO()
    draw(*args, buf, **kwargs)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(header: list[str], rows: list[list], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(str(h))}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i < left else ""}">{html.escape(str(c))}</td>' for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary_section(run) -> str:
    from cnnlab.nn.graph import Model
    from cnnlab.nn.summary import summarize

    if not isinstance(run.model, Model):
        return f"<pre>{html.escape(str(run.model))}</pre>"
    from cnnlab.nn.graph import graph_view

    s = summarize(run.model)
    header, rows = s.header(), [s.cells(r) for r in s.rows]
    closing = "<br>".join(html.escape(line) for line in s.closing_lines())
    graph = f"<h3>Graph</h3>{_graph_html(graph_view(run.model)['nodes'])}" if s.graph else ""
    return _table(header, rows, left=2) + f"<p>{closing}<br>Multiply-adds per image: {s.macs:,}</p>" + graph


def _graph_html(nodes: list[dict]) -> str:
    """The page's graph (web/static/graph.js) in static HTML: a row a level, branches side by side, the shape
    on every edge, a nested model folded."""
    levels: dict[int, list[str]] = {}
    for n in nodes:
        edges = ", ".join(f"{html.escape(i['from'])} <b>{'x'.join(map(str, i['shape']))}</b>" for i in n["inputs"])
        inner = ""
        if "graph" in n:
            inner = (
                f"<details><summary>{len(n['graph']['nodes'])} layers inside {html.escape(n['name'])}</summary>"
                f"{_graph_html(n['graph']['nodes'])}</details>"
            )
        levels.setdefault(n["level"], []).append(
            f"<div class='gnode'><small>from {edges}</small><br>{html.escape(n['name'])} ({html.escape(n['kind'])}) "
            f"{'x'.join(map(str, n['shape']))}{inner}</div>"
        )
    return "".join(f"<div class='glevel'>{''.join(row)}</div>" for _, row in sorted(levels.items()))


def _arithmetic_section(run) -> str:
    """The first convolution's output size and padding on each side, with TensorFlow's formulas."""
    from cnnlab.arith import padding_for
    from cnnlab.inspect import named_layers

    for name, layer in named_layers(run.model):
        if getattr(layer, "kind", None) == "Conv2D":
            h, w, c = layer.input_shape
            rows, lines = [], []
            for axis, size, k, s, d in (
                ("height", h, layer.kernel_size[0], layer.strides[0], layer.dilation_rate[0]),
                ("width", w, layer.kernel_size[1], layer.strides[1], layer.dilation_rate[1]),
            ):
                ax = padding_for(size, k, s, d, layer.padding, axis=axis)
                rows.append([axis, size, k, s, layer.padding.upper(), ax.out, ax.before, ax.after])
                lines.append(f"{axis}: {ax.formula()}\n  {ax.torch_note()}")
            cli = (
                f"cnnlab padding --size {h} --kernel {layer.kernel_size[0]} --stride {layer.strides[0]} "
                f"--padding {layer.padding}"
            )
            return (
                f"<p>Layer <b>{html.escape(name)}</b>: {h}x{w}x{c} in, "
                f"{layer.output_shape[0]}x{layer.output_shape[1]}x{layer.output_shape[2]} out.</p>"
                + _table(["axis", "input", "kernel", "stride", "padding", "output", "pad before", "pad after"], rows)
                + f"<pre>{html.escape(chr(10).join(lines))}</pre><p>Try it: <code>{html.escape(cli)}</code></p>"
            )
    return "<p>This model has no Conv2D layer.</p>"


def _health_section(run) -> str:
    """Training health from the run's stats.jsonl (:func:`cnnlab.inspect.health.training_health`): whether a
    layer died, the zeros after each ReLU, the gradient norms and the activation histograms over the steps;
    "" for a run without it."""
    from cnnlab.inspect.health import training_health
    from cnnlab.viz.train import health_figure

    try:
        health = training_health(run)
    except InputError:
        return ""
    alt = "zeros after each ReLU, gradient norms and each layer's activation histograms over the training steps"
    return f"<h2>Training health</h2><p>{html.escape(health.verdict)}</p>{_png(health_figure, health, alt=alt)}"


def _mistakes_section(run, ev, x_test, limit: int) -> str:
    """The first misclassified test images, each with its Grad-CAM and what it was taken for."""
    from cnnlab import inspect
    from cnnlab.viz import layers as draw

    cards = []
    for i in np.flatnonzero(ev.labels != ev.predictions)[:limit]:
        a = inspect.explain(run, x_test[i], "gradcam")
        figure = _png(draw.heatmap_overlay, x_test[i], a, alt=f"test image {i}, its Grad-CAM heat map, both overlaid")
        cards.append(
            f'<div class="card">{figure}<br>test image {i}: true '
            f"<b>{html.escape(ev.classes[ev.labels[i]])}</b>, predicted <b>{html.escape(a.target_name)}</b>"
            f" ({ev.probabilities[i, ev.predictions[i]]:.2f})</div>"
        )
    n_wrong = int((ev.labels != ev.predictions).sum())
    return f"<h2>Misclassified test images ({n_wrong:,} of {len(ev.labels):,}), with Grad-CAM</h2>" + (
        f'<div class="grid">{"".join(cards)}</div>' if cards else "<p>None.</p>"
    )


def _inside_section(run, ds, x_test, images: int) -> str:
    """The first convolution's filters, then the feature maps of every layer for the first test images."""
    from cnnlab import inspect
    from cnnlab.viz import layers as draw

    out = ""
    convs = inspect.conv_layers(run.model)
    if convs:
        out += f"<h2>First-layer filters ({html.escape(convs[0])})</h2>" + _png(
            draw.filter_grid, inspect.filters(run.model, convs[0]), alt=f"the kernels of {convs[0]}, min-max scaled"
        )
    out += "<h2>Feature maps through every layer</h2>"
    last = inspect.named_layers(run.model)[-1][0] if inspect.named_layers(run.model) else None
    for i in range(min(images, len(x_test))):
        maps = inspect.feature_maps(run, x_test[i])
        out += f"<h3>test image {i} (label {html.escape(ds.classes[ds.test.y[i]])})</h3>" + "".join(
            _png(
                draw.feature_maps,
                name,
                m[0],
                classes=run.classes if name == last else None,
                alt=f"feature maps of {name} for test image {i}",
            )
            for name, m in maps.items()
        )
    return out


def build_report(run, out, data: str | None = None, feature_images: int = 2, misclassified: int = 8) -> Path:
    """Write the report of ``run`` (a :class:`cnnlab.Run`) to ``out``; returns the path."""
    from cnnlab import data as datalib
    from cnnlab.run.evaluate import evaluate_run
    from cnnlab.viz.data import sample_grid
    from cnnlab.viz.train import confusion, curves

    cfg = run.train_config
    ev, x_test = evaluate_run(run, data)
    h, w, c = run.input_shape
    ds = datalib.load(data or cfg["data"], size=(h, w), mode=mode_for(c))
    parts = [
        f"<h1>{html.escape(str(run.model.name if hasattr(run.model, 'name') else 'model'))} on "
        f"{html.escape(ds.name)}</h1>",
        f'<p class="meta">run <code>{html.escape(str(run.path))}</code>, report written '
        f"{time.strftime('%Y-%m-%d %H:%M')}; {len(run.metrics)} epoch(s), options: "
        f"{html.escape(', '.join(f'{k}={v}' for k, v in cfg.items() if v is not None))}</p>",
        f'<p class="big">test accuracy {ev.accuracy:.4f} &nbsp; loss {ev.loss:.4f}</p>',
    ]

    parts.append("<h2>Model</h2>" + _summary_section(run))
    parts.append(
        "<h2>Data</h2>" + f"<p>{len(ds.train):,} training and {len(ds.test):,} test images of "
        f"{h}x{w}x{c}, {ds.num_classes} classes; source: {html.escape(str(ds.info.get('source')))}.</p>"
        + _png(
            sample_grid,
            ds.test.x[:24],
            ds.test.y[:24],
            ds.classes,
            title="first 24 test images",
            alt="the first 24 test images with their labels",
        )
    )
    if run.metrics:
        parts.append(
            "<h2>Training</h2>"
            + _png(curves, run.metrics, steps=run.steps, alt="loss and accuracy per epoch and every few steps")
            + _table(
                list(run.metrics[0]),
                [[round(v, 4) if isinstance(v, float) else v for v in r.values()] for r in run.metrics],
                left=0,
            )
        )
    parts.append(_health_section(run))
    per_class = [
        [r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
        for r in ev.per_class()
    ]
    parts.append(
        "<h2>Test metrics</h2>"
        + _table(["class", "precision", "recall", "F1", "support"], per_class)
        + _png(confusion, ev.confusion, ev.classes, alt="confusion matrix of the test set: true class by predicted")
    )

    parts.append(_mistakes_section(run, ev, x_test, misclassified))
    parts.append(_inside_section(run, ds, x_test, feature_images))
    parts.append("<h2>The first convolution's arithmetic</h2>" + _arithmetic_section(run))

    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>cnnlab report: '
        f"{html.escape(str(run.path))}</title><style>{CSS}</style></head><body>{''.join(parts)}"
        "<p class='meta'>Written by cnnlab.</p></body></html>"
    )
    return write_text(out, page)
