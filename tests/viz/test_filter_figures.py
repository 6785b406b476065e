"""Issue 15 #2: every kernel shape is drawn as kh x kw, in colour only for 3 input channels."""

import numpy as np
import pytest
import torch

from cnnlab import inspect
from cnnlab.nn import Conv2D, Sequential
from cnnlab.viz.layers import filter_figure


@pytest.mark.parametrize(
    ("kh", "kw", "cin"), [(3, 3, 1), (5, 5, 1), (1, 1, 1), (3, 5, 1), (3, 3, 3), (5, 5, 3), (3, 3, 2), (2, 3, 4)]
)
def test_each_filter_is_drawn_at_its_own_height_and_width(kh, kw, cin):
    model = Sequential([Conv2D(6, (kh, kw))], input_shape=(9, 9, cin))
    with torch.no_grad():
        model.body[0].weight.copy_(torch.randn_like(model.body[0].weight))
    f = inspect.filters(model, "conv1")
    fig = filter_figure(f)
    drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(drawn) == 6
    for i, a in enumerate(drawn):
        if cin == 3:  # (kh, kw, 3) RGB: kernel i's three input channels, min-max scaled over the layer
            assert a.shape == (kh, kw, 3)
            expected = (f.kernels[:, :, :, i] - f.kernels.min()) / (f.kernels.max() - f.kernels.min())
        else:  # (kh, kw) gray: input channel 0
            assert a.shape == (kh, kw)
            expected = (f.kernels[:, :, 0, i] - f.kernels.min()) / (f.kernels.max() - f.kernels.min())
        np.testing.assert_allclose(np.asarray(a), expected, rtol=1e-5, atol=1e-6)
