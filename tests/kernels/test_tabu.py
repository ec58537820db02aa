"""Tabu search's memory (``kernels.search.tabu_record``, ``tabu_allowed``; named apart from
``tests/engine/test_search.py``, as test modules share one namespace) against its rule, stated
plainly: after a move, no task goes back to the team it left, no transport back to the hospital
it left, a dropped treat is not inserted again on any team and an inserted one not dropped, for
the tenure; unless the move would beat the best plan (aspiration)."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.construct import greedy
from engine.plan import problem_arrays
from kernels.layout import TREAT
from kernels.moves import (HOSPITAL, HOSPITAL_SWAP, INSERT_TREAT, RELOCATE, REMOVE_TREAT, SWAP, TWO_OPT,
                           apply_move, enumerate_moves)
from kernels.search import tabu_allowed, tabu_record

TENURE = 7


def _owner(starts, slot):
    return int(np.searchsorted(starts, slot, side="right") - 1)


def _undoes(recorded, before, move, after) -> bool:
    """Whether ``move`` (on the plan ``after`` the recorded move) takes back what ``recorded`` did
    to the plan ``before`` it, by the rule in the module docstring."""
    starts0, order0, hosp0 = before
    starts, order, hosp = after
    kind0, a0, b0 = recorded[:3]
    kind, a, b, c = (int(x) for x in move)
    left = {}  # task code -> the team it left
    if kind0 in (RELOCATE, SWAP):
        for s in ((a0,) if kind0 == RELOCATE else (a0, b0)):
            left[int(order0[s])] = _owner(starts0, s)
    back_to = {}  # casualty -> the hospital it left
    if kind0 == HOSPITAL:
        back_to[a0] = int(hosp0[a0])
    elif kind0 == HOSPITAL_SWAP:
        back_to[a0], back_to[b0] = int(hosp0[a0]), int(hosp0[b0])
    if kind == RELOCATE:
        return left.get(int(order[a])) == b
    if kind == SWAP:
        return (left.get(int(order[a])) == _owner(starts, b)) or (left.get(int(order[b])) == _owner(starts, a))
    if kind == HOSPITAL:
        return back_to.get(a) == b
    if kind == HOSPITAL_SWAP:
        return back_to.get(a) == int(hosp[b]) or back_to.get(b) == int(hosp[a])
    if kind == INSERT_TREAT:
        return kind0 == REMOVE_TREAT and int(order0[a0]) == 3 * a + TREAT
    if kind == REMOVE_TREAT:
        return kind0 == INSERT_TREAT and int(order[a]) == 3 * a0 + TREAT
    return False  # a 2-opt is never tabu


@pytest.mark.parametrize("seed", range(4))
def test_tabu_memory_follows_its_rule(london, seed):
    rng = np.random.default_rng(seed)
    sol = greedy(london)
    P = problem_arrays(london)
    starts, order, hosp, pins = sol.starts.copy(), sol.order.copy(), sol.hosp.copy(), sol.pins
    n, n_cas = len(order), len(hosp)
    tables = (np.full(n, -1, np.int64), np.zeros(n, np.int64), np.full(n_cas, -1, np.int64), np.zeros(n_cas, np.int64))
    none = np.zeros((0, 0), np.int64)
    buf = np.empty((200_000, 4), np.int64)
    kinds_seen, records = set(), []
    for it in range(40):
        m = enumerate_moves(P, starts, order, hosp, pins, none, none, buf)
        moves = buf[:m].copy()
        # favour the rarer kinds, so that every kind is recorded in a few iterations
        kinds = np.unique(moves[:, 0])
        kind = rng.choice(kinds)
        recorded = moves[rng.choice(np.flatnonzero(moves[:, 0] == kind))]
        kinds_seen.add(int(kind))
        before = (starts.copy(), order.copy(), hosp.copy())
        tabu_record(recorded[0], recorded[1], recorded[2], starts, order, hosp, *tables, it + TENURE)
        cs, co, ch = np.empty_like(starts), np.empty_like(order), np.empty_like(hosp)
        apply_move(recorded[0], recorded[1], recorded[2], recorded[3], starts, order, hosp, cs, co, ch)
        starts, order, hosp = cs, co, ch
        m = enumerate_moves(P, starts, order, hosp, pins, none, none, buf)
        after_moves = buf[:m].copy()
        after = (starts, order, hosp)
        expected_tabu = np.array([_undoes(recorded, before, mv, after) for mv in after_moves])
        records = [(r, b, until) for r, b, until in records if until > it + 1] + [(recorded, before, it + TENURE)]
        any_active = np.array([any(_undoes(r, b, mv, after) for r, b, _ in records) for mv in after_moves])
        worse = np.full(m, 1e9)
        allowed = np.empty(m, np.bool_)
        for now, active in ((it + 1, True), (it + TENURE, False)):
            tabu_allowed(after_moves, m, starts, order, hosp, *tables, now, worse, worse, np.zeros(m, np.int64),
                         0.0, 0.0, 0, allowed)
            # an older record may still forbid a move: check only what this one forbids or frees
            if active:
                assert not allowed[expected_tabu].any(), (recorded, after_moves[expected_tabu & allowed][:3])
                assert allowed[~any_active].all(), after_moves[~any_active & ~allowed][:3]  # nothing else
            else:
                assert allowed[expected_tabu].all()
        # aspiration: a move that would beat the best plan is allowed even while tabu
        tabu_allowed(after_moves, m, starts, order, hosp, *tables, it + 1, np.full(m, -1.0), worse,
                     np.zeros(m, np.int64), 0.0, 0.0, 0, allowed)
        assert allowed.all()
    assert {RELOCATE, SWAP, HOSPITAL, HOSPITAL_SWAP, INSERT_TREAT} <= kinds_seen
