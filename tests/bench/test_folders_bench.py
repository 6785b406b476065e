"""The folders section of make bench: a command's peak memory is its own, not that of the process that
started it (Linux starts a forked process's peak at its parent's size and keeps it across exec)."""

import os
import sys

import numpy as np
from benchmarks import folders


def test_a_commands_peak_is_its_own_whatever_the_size_of_the_bench():
    ballast = np.ones(400 * 2**20 // 8)  # this process holds 400 MB more than a fresh Python
    small = folders._run([sys.executable, "-c", "print('{\"x\": 1}')"], dict(os.environ))
    big = folders._run([sys.executable, "-c", "import numpy; a = numpy.ones(200 * 2**20 // 8); print('{}')"], {})
    assert small[0] == {"x": 1} and small[1] < 100  # a bare Python: about 10 MB, not this process's 400+
    assert 200 < big[1] < 400  # the 200 MB it allocated, and not this process's size
    assert ballast.sum() > 0
