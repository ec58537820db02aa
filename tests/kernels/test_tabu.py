"""Tabu search's memory (``kernels.search.tabu_record``, ``tabu_allowed``; named apart from
``tests/engine/test_search.py``, as test modules share one namespace) against its rule, stated
plainly: after a move, no task goes back to the team it left, no transport back to the hospital
it left, a dropped treat is not inserted again on any team and an inserted one not dropped, for
the tenure; unless the move would beat the best plan (aspiration). And its long-term memory:
how often each task has been moved, and the move it then picks."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.construct import greedy
from engine.plan import problem_arrays
from kernels.layout import CYCLE, FEASIBLE, SHIFT, TRANSPORT, TREAT
from kernels.moves import (HOSPITAL, HOSPITAL_SWAP, INSERT_TREAT, RELOCATE, REMOVE_TREAT, SWAP, TWO_OPT,
                           apply_move, enumerate_moves)
from kernels.search import pick_diversified, tabu_allowed, tabu_count, tabu_record

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


# --- the long-term memory: how often each task has been moved ------------------------------

def _moved_by(move, order) -> list[int]:
    """The tasks a move takes from their places, stated plainly per kind (``kernels.search.moved_tasks``)."""
    kind, a, b, _c = (int(x) for x in move)
    if kind in (RELOCATE, REMOVE_TREAT):
        return [int(order[a])]
    if kind in (SWAP, TWO_OPT):
        return [int(order[a]), int(order[b])]
    if kind == HOSPITAL:
        return [3 * a + TRANSPORT]
    if kind == HOSPITAL_SWAP:
        return [3 * a + TRANSPORT, 3 * b + TRANSPORT]
    if kind == INSERT_TREAT:
        return [3 * a + TREAT]
    return []


def test_tabu_count_counts_the_tasks_each_move_moves(london):
    sol = greedy(london)
    P = problem_arrays(london)
    none = np.zeros((0, 0), np.int64)
    buf = np.empty((200_000, 4), np.int64)
    m = enumerate_moves(P, sol.starts, sol.order, sol.hosp, sol.pins, none, none, buf)
    moved, expected = np.zeros(len(sol.order), np.int64), np.zeros(len(sol.order), np.int64)
    for move in buf[:m]:
        tabu_count(move[0], move[1], move[2], sol.order, moved)
        for code in _moved_by(move, sol.order):
            expected[code] += 1
    assert {RELOCATE, SWAP, HOSPITAL, HOSPITAL_SWAP, INSERT_TREAT, TWO_OPT} <= set(np.unique(buf[:m, 0]).tolist())
    assert (moved == expected).all()


def _pick_reference(moves, order, F, T, st, allowed, moved, weight) -> int:
    """``pick_diversified`` stated plainly: feasibility, then F plus the penalty (ties within
    1e-9), then T, then the first index; a wait cycle is never better than anything."""
    def rank(s):
        return 0 if s == FEASIBLE else (2 if s == CYCLE else 1)

    best = -1
    for i in range(len(moves)):
        if not allowed[i]:
            continue
        pen = F[i] + weight * sum(int(moved[t]) for t in _moved_by(moves[i], order))
        if best < 0:
            best, best_pen = i, pen
            continue
        r, rb = rank(st[i]), rank(st[best])
        if r != rb:
            ahead = r < rb
        elif r == 2:
            ahead = False
        elif abs(pen - best_pen) > 1e-9:
            ahead = pen < best_pen
        else:
            ahead = T[i] < T[best] - 1e-9
        if ahead:
            best, best_pen = i, pen
    return best


@pytest.mark.parametrize("seed", range(30))
def test_pick_diversified_against_a_plain_statement(london, seed):
    """Random scores (with exact ties, ties within 1e-9, wait cycles and shift overruns) and
    counts on the London example's moves; sometimes nothing allowed, sometimes no penalty."""
    rng = np.random.default_rng(seed)
    sol = greedy(london)
    P = problem_arrays(london)
    none = np.zeros((0, 0), np.int64)
    buf = np.empty((200_000, 4), np.int64)
    m = enumerate_moves(P, sol.starts, sol.order, sol.hosp, sol.pins, none, none, buf)
    idx = rng.choice(m, size=int(rng.integers(1, 400)), replace=False)
    moves = np.ascontiguousarray(buf[idx])
    n = len(moves)
    F = rng.choice([10.0, 10.0 + 5e-10, 10.03, 10.06, 9.99], size=n) + rng.integers(0, 2, n) * rng.random(n) * 0.1
    T = rng.choice([500.0, 501.0, 500.0 + 5e-10], size=n)
    st = rng.choice([FEASIBLE, FEASIBLE, FEASIBLE, SHIFT, CYCLE], size=n).astype(np.int64)
    F[st == CYCLE] = np.nan
    T[st == CYCLE] = np.nan
    allowed = rng.random(n) < (0.0 if seed == 0 else 0.7)
    moved = rng.integers(0, 4, len(sol.order)).astype(np.int64)
    weight = 0.0 if seed == 1 else float(rng.choice([0.01, 0.03, 0.1]))
    got = pick_diversified(moves, n, sol.order, F, T, st, allowed, moved, weight)
    assert got == _pick_reference(moves, sol.order, F, T, st, allowed, moved, weight)
    if seed == 0:
        assert got == -1
