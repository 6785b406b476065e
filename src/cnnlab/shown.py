"""How every object cnnlab hands back shows itself: a short text in a terminal (what Keras prints, not a dump of
fields), a table and its picture in a notebook (``_repr_html_``, ``_repr_png_``), and ``.plot()``: the
matplotlib figure, drawn by the same :mod:`cnnlab.viz` code the report uses.

The objects live in layers below the drawing (``arith``, ``data``, ``nn``, ``run`` and ``inspect`` never import
matplotlib), so a class names its figure by where it is drawn, ``_figure = "cnnlab.viz.data:dataset_figure"``,
and the module is imported only when a picture is asked for. A class gives its words as a :class:`Table`:
one rule for what is shown, rendered as text for a terminal and as HTML for a notebook.
"""

from __future__ import annotations

import base64
import html
import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    """A titled table with lines of text after it. ``right``: the columns aligned right (numbers).
    ``inside``: {row index: a Table of what that row holds} (a nested model's layers), folded in HTML and
    indented under its row in text."""

    title: str
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    right: frozenset[int] = frozenset()
    lines: tuple[str, ...] = ()
    inside: dict = field(default_factory=dict)

    def text(self, indent: str = "") -> str:
        out = [indent + self.title] if self.title else []
        if self.header:
            cells = [self.header, *self.rows]
            widths = [max(len(r[j]) for r in cells) for j in range(len(self.header))]

            def line(r):
                padded = [r[j].rjust(w) if j in self.right else r[j].ljust(w) for j, w in enumerate(widths)]
                return indent + "│ " + " │ ".join(padded) + " │"

            out += [indent + "┏━" + "━┳━".join("━" * w for w in widths) + "━┓"]
            out += [line(self.header).replace("│", "┃")]
            out += [indent + "┡━" + "━╇━".join("━" * w for w in widths) + "━┩"]
            for i, r in enumerate(self.rows):
                out.append(line(r))
                if i in self.inside:
                    out.append(self.inside[i].text(indent + "    "))
            out += [indent + "└─" + "─┴─".join("─" * w for w in widths) + "─┘"]
        out += [indent + s for s in self.lines]
        return "\n".join(out)

    def html(self) -> str:
        esc = html.escape
        parts = [f"<p><b>{esc(self.title)}</b></p>"] if self.title else []
        if self.header:
            style = lambda j: ' style="text-align:right"' if j in self.right else ' style="text-align:left"'  # noqa: E731
            head = "".join(f"<th{style(j)}>{esc(h)}</th>" for j, h in enumerate(self.header))
            body = []
            for i, r in enumerate(self.rows):
                body.append("<tr>" + "".join(f"<td{style(j)}>{esc(c)}</td>" for j, c in enumerate(r)) + "</tr>")
                if i in self.inside:
                    sub = self.inside[i]
                    fold = f"<details><summary>{esc(sub.title)}</summary>{sub.html()}</details>"
                    body.append(f'<tr class="inside"><td colspan="{len(self.header)}">{fold}</td></tr>')
            parts.append(f'<table class="cnnlab"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
        if self.lines:
            parts.append("<p>" + "<br>".join(esc(s) for s in self.lines) + "</p>")
        return "".join(parts)


class Shown:
    """The display of an object that gives :meth:`table` (and names ``_figure``, unless it has no picture)."""

    _figure: str = ""  # "module:function" drawing the object (``function(obj, **options) -> Figure``)

    def table(self) -> Table:
        raise NotImplementedError

    def plot(self, **options):
        """The matplotlib figure of this object (a ``matplotlib.figure.Figure``: it touches no pyplot state,
        so a notebook's own plots and backend are left as they are)."""
        if not self._figure:
            raise TypeError(f"{type(self).__name__} has no picture; print it for its table.")
        module, name = self._figure.split(":")
        return getattr(importlib.import_module(module), name)(self, **options)

    def __repr__(self) -> str:
        return self.table().text()

    def _repr_pretty_(self, p, cycle: bool) -> None:  # IPython's terminal prints the same text
        p.text(self.table().text())

    def _repr_png_(self) -> bytes | None:
        return _png(self.plot()) if self._figure else None

    def _repr_html_(self) -> str:
        shown = picture(self.plot(), type(self).__name__) if self._figure else ""
        return f'<div class="cnnlab-shown">{self.table().html()}{shown}</div>'


def _png(fig) -> bytes:
    return importlib.import_module("cnnlab.viz.style").png(fig)


def picture(fig, alt: str) -> str:
    """``fig`` as an HTML image, its PNG inline."""
    data = base64.b64encode(_png(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
