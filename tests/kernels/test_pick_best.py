"""The best of a sweep's moves (``kernels.search.pick_best``) against SPEC §7's best of a set,
stated plainly in ``tests/reference.py`` (``best_of``)."""

from __future__ import annotations

import numpy as np
import pytest

import reference
from kernels.layout import CYCLE, FEASIBLE, SHIFT
from kernels.search import pick_best

_RANK = {FEASIBLE: 0, SHIFT: 1, CYCLE: 2}


def _expected(F, T, st, allowed):
    idx = [i for i in range(len(F)) if allowed[i]]
    best = reference.best_of([(_RANK[int(st[i])], F[i], T[i]) for i in idx])
    return -1 if best is None else idx[best]


def test_a_chain_of_ties_is_settled_by_the_smallest_f_not_the_scan():
    """F 1.8e-9, 0.9e-9 and 0 above a value, T 0, 5 and 10: a scan keeping the better of two
    keeps the first (it ties the second), then takes the third (1.8e-9 below it). SPEC §7's
    best of the set takes the smallest T among F within 1e-9 of the smallest: the second."""
    x = 12.0
    F = np.array([x + 1.8e-9, x + 0.9e-9, x])
    T = np.array([0.0, 5.0, 10.0])
    st = np.full(3, FEASIBLE, np.int64)
    assert pick_best(F, T, st, 3, np.ones(3, np.bool_)) == 1


@pytest.mark.parametrize("seed", range(6))
def test_pick_best_is_the_best_of_the_set(seed):
    """Random moves: every status, F and T values a fraction of the tie apart (chains of ties),
    exact ties, a wait cycle's NaN, some moves not allowed, none allowed."""
    rng = np.random.default_rng(seed)
    for _ in range(400):
        n = int(rng.integers(0, 40))
        F = 7.0 + rng.integers(0, 6, n) * rng.choice([0.45e-9, 0.7e-9, 1e-9, 1e-3], n)
        T = 100.0 + rng.integers(0, 4, n) * rng.choice([0.0, 0.45e-9, 0.7e-9, 1.0], n)
        st = rng.choice([FEASIBLE, FEASIBLE, FEASIBLE, SHIFT, CYCLE], n).astype(np.int64)
        F[st == CYCLE], T[st == CYCLE] = np.nan, np.nan
        allowed = rng.random(n) < rng.choice([0.0, 0.5, 1.0])
        got = pick_best(F, T, st, n, allowed)
        assert got == _expected(F, T, st, allowed), (F.tolist(), T.tolist(), st.tolist(), allowed.tolist())


def test_casualty_minutes_equal_to_rounding_tie():
    """Two moves with the same F and T a rounding apart (the same visits summed in another
    order): the first is taken, as ``better`` ties them, so that the kernels and the reference,
    whose sums round differently, choose alike."""
    F = np.array([3.0, 3.0])
    T = np.array([50.0 + 1e-13, 50.0])
    st = np.full(2, FEASIBLE, np.int64)
    assert pick_best(F, T, st, 2, np.ones(2, np.bool_)) == 0
