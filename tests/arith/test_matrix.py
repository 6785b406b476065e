import numpy as np
import pytest

from cnnlab.arith import load_array, parse_matrix
from cnnlab.arith.matrix import as_batch, stack_kernels
from cnnlab.errors import InputError, ParseError, ShapeError


def test_rows_by_semicolon_numbers_by_space_or_comma():
    np.testing.assert_array_equal(parse_matrix("1 2 3; 4,5,6"), [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(parse_matrix("-1 -1.5; 2e1 0"), [[-1, -1.5], [20, 0]])


@pytest.mark.parametrize(
    "text,message",
    [
        ("1 2; 3", r"ragged rows: row 1 has 2 numbers but row 2 has 1"),
        ("1 x; 3 4", r"row 1 holds 'x', which is not a number"),
        ("", r"is empty"),
        ("1 nan", r"nan or inf"),
    ],
)
def test_bad_matrices(text, message):
    with pytest.raises(ParseError, match=message):
        parse_matrix(text, "--input")


def test_files(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3, 4)))
    (tmp_path / "b.txt").write_text("1 2\n3 4\n")
    assert load_array(str(tmp_path / "a.npy")).shape == (2, 3, 4)
    np.testing.assert_array_equal(load_array(str(tmp_path / "b.txt")), [[1, 2], [3, 4]])
    with pytest.raises(InputError, match="does not exist"):
        load_array(str(tmp_path / "missing.npy"))


def test_npy_with_pickled_objects_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ParseError, match="not a readable .npy array"):
        load_array(str(tmp_path / "o.npy"))


def test_batch_and_kernel_shapes():
    assert as_batch(np.ones((3, 3))).shape == (1, 3, 3, 1)
    k = stack_kernels([np.ones((2, 2)), 2 * np.ones((2, 2))])
    assert k.shape == (2, 2, 1, 2) and k[0, 0, 0, 1] == 2
    with pytest.raises(ShapeError, match="different shapes"):
        stack_kernels([np.ones((2, 2)), np.ones((3, 3))])
