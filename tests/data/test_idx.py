import gzip

import numpy as np
import pytest

from cnnlab.data import idx
from cnnlab.errors import DataError


def test_round_trip_and_magic_numbers():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx.encode(a)
    assert int.from_bytes(data[:4], "big") == 2051  # images: 0x00000803
    assert int.from_bytes(idx.encode(np.zeros(5, np.uint8))[:4], "big") == 2049  # labels: 0x00000801
    np.testing.assert_array_equal(idx.parse(data, "x", 3), a)


def test_wrong_magic_names_file_and_numbers():
    data = idx.encode(np.zeros(5, np.uint8))
    with pytest.raises(DataError, match=r"labels.idx has IDX magic number 2049 \(0x00000801\); expected 2051"):
        idx.parse(data, "labels.idx", 3)


def test_truncated_payload():
    data = idx.encode(np.zeros((4, 2, 2), np.uint8))[:-3]
    with pytest.raises(DataError, match=r"holds 13 values after its header, but the header promises 4x2x2 = 16"):
        idx.parse(data, "x", 3)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_gzip(damage):
    gz = gzip.compress(b"hello world" * 100)
    bad = gz[: len(gz) // 2] if damage == "truncate" else b"not a gzip file at all"
    with pytest.raises(DataError, match=r"f\.gz is not a complete gzip file"):
        idx.gunzip(bad, "f.gz")
