"""Comparing objectives (``engine.Objective.better``): the library's rule is the search's."""

from __future__ import annotations

import itertools
import math

import numpy as np
import reference

from engine.objective import Objective


def _objective(rank: int, F: float, T: float) -> Objective:
    if rank == 2:  # a cycle of waits: no F, no T
        return Objective(None, None, None, False)
    return Objective(F, 0.0, T, rank == 0)


def _as_reference(rank: int, F: float, T: float) -> tuple:
    return (rank, math.nan, math.nan) if rank == 2 else (rank, F, T)


def test_better_agrees_with_the_reference_near_every_tie():
    rng = np.random.default_rng(0)
    offsets = [0.0, 0.4e-9, -0.4e-9, 1.0e-9, 1.6e-9, -1.6e-9, 3e-9, 0.5, -0.5]
    cases = 0
    for _ in range(400):
        F, T = float(rng.uniform(0, 30)), float(rng.uniform(0, 5000))
        r1, r2 = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        dF, dT = offsets[rng.integers(len(offsets))], offsets[rng.integers(len(offsets))]
        x, y = (r1, F, T), (r2, F + dF, T + dT)
        for a, b in itertools.permutations([x, y]):
            got = _objective(*a).better(_objective(*b))
            assert got == reference.better(_as_reference(*a), _as_reference(*b)), (a, b)
            cases += 1
    assert cases == 800


def test_casualty_minutes_decide_only_beyond_the_tie():
    x = Objective(1.0, 0.0, 100.0, True)
    assert not x.better(Objective(1.0, 0.0, 100.0 + 5e-10, True))  # within 1e-9: a tie
    assert x.better(Objective(1.0 + 5e-10, 0.0, 100.0 + 2e-9, True))  # F tied, T better beyond it
    assert not Objective(1.0, 0.0, 100.0 + 2e-9, True).better(x)
    assert Objective(0.9, 0.0, 500.0, True).better(x)  # F first
    assert x.better(Objective(0.1, 0.0, 1.0, False))  # feasibility before all
