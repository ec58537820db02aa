"""``kernels.layout``: a task code's casualty, as the kernels decode it."""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.layout import KINDS, casualty_of


@njit(cache=False)
def _decode(codes, out):
    for i in range(codes.shape[0]):
        out[i] = casualty_of(codes[i])


def test_casualty_of_is_the_code_divided_by_the_kinds():
    # every code of 10 000 casualties, and codes near the limits of 32- and 64-bit integers
    big = np.array([2**31 - 2, 2**31 - 1, 2**32 + 5, 2**62 + 1, 2**63 - 1], dtype=np.int64)
    codes = np.concatenate([np.arange(3 * 10_000, dtype=np.int64), big])
    out = np.empty_like(codes)
    _decode(codes, out)
    assert np.array_equal(out, codes // KINDS)
    # the batch's rows are 32-bit
    small = np.arange(3 * 10_000, dtype=np.int32)
    out32 = np.empty(len(small), dtype=np.int64)
    _decode(small, out32)
    assert np.array_equal(out32, small // KINDS)
