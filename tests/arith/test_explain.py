import numpy as np
import pytest

from cnnlab.arith import explain_conv, explain_pool
from cnnlab.errors import InputError

IMAGE = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
TAPS = np.ones((2, 2, 1, 3)) * np.array([1.0, 10.0, -1.0])


def test_same_padding_per_side_and_formula():
    ex = explain_conv(IMAGE, np.ones((2, 2, 1, 1)), padding="same")
    assert ex.padding == {"top": 0, "bottom": 1, "left": 0, "right": 1}
    assert ex.output_shape == (1, 3, 3, 1)
    assert "out = ceil(3/1) = 3" in ex.formulas()["height"]
    assert "before = floor(1/2) = 0, after = 1-0 = 1" in ex.formulas()["width"]


def test_window_marks_padding_cells():
    ex = explain_conv(IMAGE, np.ones((2, 2, 1, 1)), padding="same")
    rows, cols = ex.window_of(2, 2)
    assert rows == [2, 3] and cols == [2, 3]
    t = ex.trace(2, 2)
    assert [term.is_padding for term in t.terms] == [False, True, True, True]
    assert t.text() == "out[2,2,0] = 9·1 + pad·1 + pad·1 + pad·1 = 9 + 0 + 0 + 0 = 9"


def test_padded_picture_has_the_extra_row_and_column_after():
    values, mask = explain_conv(IMAGE, np.ones((2, 2, 1, 1)), padding="same").padded()
    assert values.shape == (4, 4, 1)
    assert mask[3].all() and mask[:, 3].all() and not mask[:3, :3].any()


def test_every_trace_sums_to_its_output():
    rng = np.random.default_rng(1)
    ex = explain_conv(rng.normal(size=(1, 6, 5, 2)), rng.normal(size=(3, 2, 2, 3)), (2, 1), "same", (1, 2))
    for t in ex.traces():
        total = sum(term.value * term.weight for term in t.real_terms)
        assert total == pytest.approx(t.result)


def test_max_pool_explains_why_negatives_survive():
    v = explain_conv(IMAGE, TAPS).output
    ex = explain_pool(v, 2, 1, "same", "max")
    np.testing.assert_array_equal(ex.output[0, :, :, 2], [[-12, -16], [-24, -28]])
    assert ex.trace(0, 0, 2).text() == "out[0,0,2] = max(-12, -16, -24, -28) = -12"
    assert ex.trace(1, 1, 2).text() == "out[1,1,2] = max(-28) = -28  (3 padding cells absent, not 0)"
    note = next(n for n in ex.notes if n.startswith("channel 2"))
    assert "not a 0 that competes" in note and "zero padding would have given 0, 0, 0" in note
    assert not any(n.startswith("channel 0") for n in ex.notes)  # positive channel: padding changes nothing


def test_avg_pool_note_compares_with_zero_padding():
    v = explain_conv(IMAGE, TAPS).output[..., :1]
    ex = explain_pool(v, 2, 1, "same", "avg")
    assert ex.trace(1, 1).text() == "out[1,1,0] = (28) / 1 = 28  (3 padding cells absent, not 0)"
    assert any("counting padding as 0 would have given 11, 13, 7" in n for n in ex.notes)


def test_valid_stride_reports_unread_cells():
    ex = explain_conv(np.zeros((1, 5, 5, 1)), np.ones((2, 2, 1, 1)), strides=2)
    assert any("row 4 (0-based) is never read" in n for n in ex.notes)


def test_to_dict_has_the_documented_keys():
    d = explain_conv(IMAGE, np.ones((2, 2, 1, 1)), padding="same").to_dict(trace=True)
    assert d["input_shape"] == [1, 3, 3, 1] and d["kernel_shape"] == [2, 2, 1, 1]
    assert d["output_shape"] == [1, 3, 3, 1]
    assert d["padding"] == {"top": 0, "bottom": 1, "left": 0, "right": 1}
    assert d["output"][0][2] == [[15.0], [17.0], [9.0]]
    assert len(d["trace"]) == 9


def test_cell_outside_output():
    ex = explain_conv(IMAGE, np.ones((2, 2, 1, 1)))
    with pytest.raises(InputError, match=r"Output cell \(2, 0\) does not exist"):
        ex.window_of(2, 0)


def test_unknown_pool_mode():
    with pytest.raises(InputError, match="Unknown pooling mode 'min'"):
        explain_pool(IMAGE, 2, mode="min")
