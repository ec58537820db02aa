"""``kernels.borrow``: a borrowed view reads and writes the caller's memory, whatever its layout."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from kernels.borrow import borrow

Pair = namedtuple("Pair", ["a", "b"])


@njit
def _weighted_sum_and_mark(x):
    # every element read through the view, and the first one written through it
    v = borrow(x)
    total = 0.0
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            total += v[i, j] * (i + 1) * (j + 2)
    v[0, 0] = -1.0
    return total


@njit
def _tuple_roundtrip(t):
    p, k, flag = borrow(t)
    p.a[1] = 7
    return p.a.sum() + p.b.sum() + k + (1 if flag else 0)


def _expected(x):
    i = np.arange(1, x.shape[0] + 1)[:, None]
    j = np.arange(2, x.shape[1] + 2)[None, :]
    return float((x * i * j).sum())


def test_a_borrowed_view_keeps_shape_strides_and_memory():
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    for x in (base.copy(), base.copy()[::2, 1::3], base.copy().T):
        want = _expected(x)
        assert _weighted_sum_and_mark(x) == want
        assert x[0, 0] == -1.0  # the write went to the caller's array


def test_a_borrowed_tuple_keeps_every_member():
    p = Pair(np.array([1, 2, 3], dtype=np.int64), np.array([0.5, 0.25]))
    assert _tuple_roundtrip((p, 10, True)) == 1 + 7 + 3 + 0.75 + 10 + 1
    assert p.a[1] == 7
