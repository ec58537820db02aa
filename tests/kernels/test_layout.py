"""``kernels.layout``: a task code's casualty and kind, as the kernels decode them."""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.layout import KINDS, casualty_of, kind_of


@njit(cache=False)
def _decode(codes, out, kinds):
    for i in range(codes.shape[0]):
        out[i] = casualty_of(codes[i])
        kinds[i] = kind_of(codes[i])


def test_a_code_s_casualty_and_kind_are_its_quotient_and_remainder():
    # every code of 10 000 casualties, and codes near the limits of 32- and 64-bit integers
    big = np.array([2**31 - 2, 2**31 - 1, 2**32 + 5, 2**62 + 1, 2**63 - 1], dtype=np.int64)
    codes = np.concatenate([np.arange(3 * 10_000, dtype=np.int64), big])
    out, kinds = np.empty_like(codes), np.empty_like(codes)
    _decode(codes, out, kinds)
    assert np.array_equal(out, codes // KINDS)
    assert np.array_equal(kinds, codes % KINDS)
    # the batch's rows are 32-bit
    small = np.arange(3 * 10_000, dtype=np.int32)
    out32, kinds32 = np.empty(len(small), dtype=np.int64), np.empty(len(small), dtype=np.int64)
    _decode(small, out32, kinds32)
    assert np.array_equal(out32, small // KINDS)
    assert np.array_equal(kinds32, small % KINDS)
