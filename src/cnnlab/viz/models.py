"""A model's summary as a picture: where its parameters and its multiply-adds are, layer by layer."""

from __future__ import annotations

from cnnlab.viz.style import finish, subplots


def summary_figure(s, path=None):
    """Two bar charts side by side, a row per layer of the :class:`~cnnlab.nn.summary.Summary`: its
    parameters and its multiply-adds per image, each labelled with its count."""
    names = [f"{r.name} ({r.kind})" for r in s.rows]
    fig, (a, b) = subplots(1, 2, figsize=(10, 0.9 + 0.3 * len(names)), sharey=True)
    for ax, values, what, total in (
        (a, [r.params for r in s.rows], "parameters", s.total),
        (b, [r.macs for r in s.rows], "multiply-adds per image", s.macs),
    ):
        ax.barh(range(len(names)), values, color="#1f77b4")
        top = max(values) if values and max(values) else 1
        for i, v in enumerate(values):
            ax.text(v + top * 0.01, i, f"{v:,}", va="center", fontsize=7)
        ax.set_xlim(0, top * 1.25)
        ax.set_title(f"{what}: {total:,}", fontsize=10)
        ax.tick_params(axis="x", labelsize=7)
    a.set_yticks(range(len(names)), names, fontsize=8)
    a.invert_yaxis()
    fig.suptitle(f'Model: "{s.name}", input {tuple(s.input_shape)}', fontsize=11)
    fig.tight_layout()
    return finish(fig, path)
