"""Feature-map figures say how to read them: class names on the class scores, a diverging scale around 0
for maps with negative values, a colour bar."""

import numpy as np
import pytest

from cnnlab.viz import layers


@pytest.fixture
def drawn():
    """The figures drawing functions made: called without a path, they return them instead of a PNG."""
    return []


def test_class_scores_are_bars_named_by_class(drawn):
    scores = np.array([1.5, -0.5, 3.0])
    drawn.append(layers.feature_maps("logits", scores, None, classes=("cat", "dog", "bird")))
    (ax,) = drawn[0].axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]
    assert [round(p.get_width(), 6) for p in ax.patches] == [1.5, -0.5, 3.0]


def test_maps_with_negative_values_are_centred_on_zero_and_have_a_colour_bar(drawn):
    rng = np.random.default_rng(0)
    before_relu = rng.normal(0, 1, (6, 6, 3))
    drawn.append(layers.feature_maps("conv1", before_relu, None))
    images = [ax.images[0] for ax in drawn[0].axes if ax.images]
    assert len(images) == 3
    for i, im in enumerate(images):
        edge = np.abs(before_relu[:, :, i]).max()
        assert im.cmap.name == "RdBu_r" and im.norm.vmin == pytest.approx(-edge) and im.norm.vmax == pytest.approx(edge)
    labels = [t.get_text() for ax in drawn[0].axes for t in ax.get_yticklabels()]
    assert "0" in labels and "+max |value|" in labels  # the colour bar's axis
    drawn.append(layers.feature_maps("relu1", np.abs(before_relu), None))
    assert all(ax.images[0].cmap.name == "viridis" for ax in drawn[1].axes if ax.images)
