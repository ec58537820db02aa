"""``Solution.copy`` takes the evaluation along instead of recomputing it: it must equal one."""

from __future__ import annotations

import numpy as np
import pytest

from engine.scenario import load_scenario
from engine.solution import Solution
from factories import random_plan, random_scenario
from kernels.layout import IDENT, Workspace


@pytest.mark.parametrize("seed", range(40))
def test_copy_equals_a_fresh_evaluation_and_is_independent(seed):
    rng = np.random.default_rng(seed)
    sc = load_scenario(random_scenario(rng))
    sol = Solution.from_plan(sc, random_plan(sc, rng))
    copy = sol.copy()
    fresh = Solution.from_arrays(sc, sol.starts, sol.order, sol.hosp, sol.pins)
    np.testing.assert_array_equal(copy.cur, fresh.cur)  # nan (a wait cycle) equals nan here
    for name in ("rescued", "treated_at", "pickup", "arrival", "pdead", "count", "over"):
        np.testing.assert_array_equal(getattr(copy.W, name), getattr(fresh.W, name), err_msg=name)
    assert copy.W.gen[IDENT] not in (0, sol.W.gen[IDENT])  # its own incumbent, not a candidate
    for field in Workspace._fields:
        assert not np.shares_memory(getattr(copy.W, field), getattr(sol.W, field)), field
    for name in ("starts", "order", "hosp", "pins", "cur"):
        assert not np.shares_memory(getattr(copy, name), getattr(sol, name)), name
