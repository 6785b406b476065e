import pytest

from cnnlab.arith import normalize_padding, padding_for
from cnnlab.errors import InputError, PaddingError, ShapeError


def chain(size, *steps):
    sizes = []
    for kernel, stride, padding in steps:
        size = padding_for(size, kernel, stride, 1, padding).out
        sizes.append(size)
    return sizes


def test_tutorial_shape_chains():
    # 28x28: 3x3 stride 2 SAME -> 14, then 2x2 stride 2 max pool SAME -> 7
    assert chain(28, (3, 2, "same"), (2, 2, "same")) == [14, 7]
    # 5x5 VALID -> 24, pool 2 -> 12, 5x5 VALID -> 8, pool 2 -> 4
    assert chain(28, (5, 1, "valid"), (2, 2, "valid"), (5, 1, "valid"), (2, 2, "valid")) == [24, 12, 8, 4]
    # 4x4 SAME pool 2 of a 7x7 map -> 4x4
    assert padding_for(7, 2, 2, 1, "same").out == 4


def test_28_stride2_same_puts_the_extra_cell_after():
    ax = padding_for(28, 3, 2, 1, "same")
    # total = (14 - 1) * 2 + 3 - 28 = 1, floor(1/2) = 0 before, 1 after
    assert (ax.out, ax.before, ax.after) == (14, 0, 1)
    assert ax.torch_padding is None
    assert "refuses stride > 1" in ax.torch_note()


def test_published_example_width13_filter6_stride5():
    # The worked example in TensorFlow's documentation of padding: in 13, filter 6, stride 5.
    # VALID drops the last two columns (2 outputs); SAME pads 1 on the left and 2 on the right (3 outputs).
    valid = padding_for(13, 6, 5, 1, "valid")
    same = padding_for(13, 6, 5, 1, "SAME")
    assert (valid.out, valid.before, valid.after) == (2, 0, 0)
    assert (same.out, same.before, same.after) == (3, 1, 2)


def test_symmetric_same_matches_torch_padding_int():
    ax = padding_for(28, 3, 1, 1, "same")
    assert (ax.out, ax.before, ax.after, ax.torch_padding) == (28, 1, 1, 1)
    assert "padding=1 matches" in ax.torch_note()


def test_dilation_uses_effective_kernel():
    ax = padding_for(10, 3, 1, 2, "valid")  # k_eff = 5
    assert ax.effective_kernel == 5 and ax.out == 6
    same = padding_for(10, 3, 1, 2, "same")
    assert (same.out, same.before, same.after) == (10, 2, 2)


def test_explicit_padding_pair():
    ax = padding_for(3, 2, 1, 1, (0, 1))
    assert (ax.out, ax.before, ax.after, ax.padding) == (3, 0, 1, "explicit")


def test_taps_mark_padding_outside_the_input():
    ax = padding_for(3, 2, 1, 1, "same")
    assert ax.taps(2) == [2, 3]  # 3 is the padding row after the input


@pytest.mark.parametrize("word", ["SAME", "same", "Valid", " valid "])
def test_padding_words_any_case(word):
    assert normalize_padding(word) in ("same", "valid")


def test_unknown_padding_word_names_value_and_options():
    with pytest.raises(PaddingError, match=r"Unknown padding 'full'.*'same' or 'valid'"):
        normalize_padding("full")


def test_valid_kernel_larger_than_input():
    with pytest.raises(ShapeError, match=r"kernel extent 5 is larger than the VALID input height 3"):
        padding_for(3, 5, 1, 1, "valid")


@pytest.mark.parametrize("field,args", [("stride", (5, 2, 0)), ("size", (0, 2, 1)), ("kernel", (5, 0, 1))])
def test_values_below_one(field, args):
    with pytest.raises(InputError, match=rf"{field}=0 is not allowed\. Expected a whole number >= 1"):
        padding_for(*args)


def test_huge_sizes_are_exact_integers():
    """ceil(n / s) in floats is wrong past 2**53: out must be (n + s - 1) // s for any n."""
    from cnnlab.arith import padding_for

    for n in (10**26, 10**26 + 1, 2**53 + 1, 3 * 10**30 + 2):
        for s in (1, 2, 3, 7):
            a = padding_for(n, 3, s, 1, "same")
            assert a.out == (n + s - 1) // s
            assert a.before + a.after == max((a.out - 1) * s + 3 - n, 0)
