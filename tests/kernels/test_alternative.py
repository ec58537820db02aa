"""The audit's counterfactual (kernels/alternative.py) against the reference, plan by plan.

For random scenarios and plans (wait cycles, shift ends, pins elsewhere, HART and fire teams),
every team without pins gets ``best_other_first``; the reference (``reference.best_other_first``)
builds every plan in which that team starts with another task it may do (moved to the front, or,
another team's first, swapped with the team's own first task), evaluates each in full, and the kernel's answer must be the
best of them by SPEC §7's order.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import factories
import reference
from engine.plan import Task, problem_arrays
from engine.solution import Solution
from kernels.alternative import best_other_first
from kernels.layout import CYCLE, FEASIBLE, SHIFT
from kernels.moves import RELOCATE
from kernels.search import commit

TOL = 1e-9
CASES = 60
RANK = {FEASIBLE: 0, SHIFT: 1, CYCLE: 2}


def check(sol: Solution, r: int) -> None:
    sc = sol.sc
    move, second = np.full(4, -1, np.int64), np.full(3, 7.0)
    F, T, status = best_other_first(problem_arrays(sc), sol.starts, sol.order, sol.hosp, sol.pins, sol.W,
                                    sol.cur, r, move, second)
    plan, rid = sol.to_plan(), sc.model.responders[r].id
    want = reference.best_other_first(sc, plan, rid)
    if want is None:
        assert status == -1 and second[2] == -1
        return
    rank, best = want
    assert RANK[status] == rank
    assert (math.isnan(F) and rank == 2) or abs(F - best) <= 2 * TOL
    # the runner-up: the best of the plans that start r with yet another task
    chosen = sol.order[move[1] if move[0] == RELOCATE else move[2]]
    task = Task(("rescue", "treat", "transport")[chosen % 3], sc.model.casualties[chosen // 3].id)
    want2 = reference.best_other_first(sc, plan, rid, besides=task)
    if want2 is None:
        assert second[2] == -1
    else:
        assert RANK[int(second[2])] == want2[0]
        assert (math.isnan(second[0]) and want2[0] == 2) or abs(second[0] - want2[1]) <= 2 * TOL
    # the move it names makes that plan, in which r starts with another task (the planner
    # issues it when it is better than the incumbent)
    after = sol.copy()
    cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
    F2, _o, T2, status2 = commit(problem_arrays(sc), *(int(x) for x in move), after.starts, after.order, after.hosp,
                                 after.pins, after.W, cs, co, ch)
    assert status2 == status
    assert (math.isnan(F) and math.isnan(F2)) or (abs(F2 - F) <= TOL and abs(T2 - T) <= TOL * max(1.0, abs(T)))
    first = lambda s: s.order[s.starts[r]]  # noqa: E731
    assert after.starts[r + 1] > after.starts[r] and first(after) != first(sol)


@pytest.mark.parametrize("seed", range(CASES))
def test_best_other_first_is_the_best_plan_starting_with_another_task(seed):
    rng = np.random.default_rng(1000 + seed)
    sc = engine.load_scenario(factories.random_scenario(rng))
    sol = Solution.from_plan(sc, factories.random_plan(sc, rng))
    for r in range(len(sol.pins)):
        if sol.pins[r] == 0 and sol.starts[r + 1] > sol.starts[r]:  # what is issued: nothing pinned yet
            check(sol, r)


def test_best_other_first_at_paper_size(london):
    from engine import construct

    sol = construct.rule(london)
    for r in (0, len(sol.pins) - 1):  # a paramedic team and a fire team
        check(sol, r)


def test_two_teams_sent_to_each_other_s_casualties_is_an_alternative():
    """Two teams at one site's distance, two casualties: the plan sends each team to one. The
    best plan in which amb1 starts differently sends each to the other's casualty (a swap); with
    relocations alone it was amb1 carrying both, and the audit recorded a margin many times the
    true one."""
    d = factories.one_site()
    d["casualties"] = [c for c in d["casualties"] if c["id"] in ("c1", "c3")]
    d["responders"] = d["responders"][:2]
    sc = engine.load_scenario(d)
    plan = engine.load_plan(sc, {"format": "goldenhour.plan/1", "routes": {
        "amb1": [{"task": "transport", "casualty": "c1", "hospital": "H1"}],
        "amb2": [{"task": "transport", "casualty": "c3", "hospital": "H2"}]}})
    sol = Solution.from_plan(sc, plan)
    F, _T, status = best_other_first(problem_arrays(sc), sol.starts, sol.order, sol.hosp, sol.pins, sol.W,
                                     sol.cur, 0, np.empty(4, np.int64), np.empty(3))
    swapped = engine.load_plan(sc, {"format": "goldenhour.plan/1", "routes": {
        "amb1": [{"task": "transport", "casualty": "c3", "hospital": "H2"}],
        "amb2": [{"task": "transport", "casualty": "c1", "hospital": "H1"}]}})
    both = engine.load_plan(sc, {"format": "goldenhour.plan/1", "routes": {
        "amb1": [{"task": "transport", "casualty": "c3", "hospital": "H2"},
                 {"task": "transport", "casualty": "c1", "hospital": "H1"}]}})
    want = engine.evaluate(sc, swapped).expected_fatalities
    assert want < engine.evaluate(sc, both).expected_fatalities  # the swap is the better alternative
    assert status == FEASIBLE and F == pytest.approx(want, abs=TOL)
