"""The audit log's counterfactual: the plan had a team been sent to its best other task first.

When a task is issued, the audit records what the objective would have been had the team gone
to another task instead (SPEC §8): every task the team could do (a rescue for a fire team, a
treat or transport for a paramedic team) that is not pinned elsewhere is relocated to the front
of its list, and the first task of every other team that the two could exchange is swapped with
the team's own first task (two crews sent to each other's casualties); the best of those plans is
kept. With relocations alone, the swap was not among the alternatives, and the log could record a
margin twenty times the true one (0.40 expected fatalities against 0.018 on a two-casualty case).
Swaps with tasks further down other lists would double the moves an issue scores (about 110
relocations at paper size, most of an issue's time) for alternatives a dispatcher rarely weighs.

The best of those plans can be better than the incumbent (a plan not searched since the news
came in): the planner then issues it (``engine.planner``) and logs beside it the better of the
incumbent and the runner-up here, the best plan that starts the team with yet another task.

It runs while a caller waits for its task, so its moves are scored in the calling thread
(``search.score_serial``). Scored on two threads, an issue took half the time on an idle machine
(0.22 against 0.46 ms) and thirty times as long with one other busy process on it (15 ms): a
parallel region ends by waiting for a pool thread the operating system has to find a core for.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .borrow import borrow
from .config import JIT
from .moves import RELOCATE, SWAP, fits
from .search import pick_best, score_serial


@njit(**JIT)
def front_moves(P, starts, order, pins, r, moves):
    """Write into ``moves`` every way ``r`` can start with another movable task that fits it:
    the task relocated to the front of ``r``'s list, or, if it is another team's first movable
    task and ``r``'s first task fits that team, the two swapped. Returns how many."""
    P, starts, order, pins, moves = borrow((P, starts, order, pins, moves))
    n = 0
    first = starts[r] + pins[r] if starts[r + 1] > starts[r] + pins[r] else -1
    for q in range(starts.shape[0] - 1):
        for s in range(starts[q] + pins[q], starts[q + 1]):
            if s != first and fits(P, order[s], r):
                moves[n, 0] = RELOCATE
                moves[n, 1] = s
                moves[n, 2] = r
                moves[n, 3] = 0
                n += 1
                if q != r and s == starts[q] + pins[q] and first >= 0 and fits(P, order[first], q):
                    moves[n, 0] = SWAP
                    moves[n, 1] = first
                    moves[n, 2] = s
                    moves[n, 3] = 0
                    n += 1
    return n


@njit(**JIT, inline="always")
def _new_first(moves, i):
    """The slot of the task a ``front_moves`` move puts first."""
    return moves[i, 1] if moves[i, 0] == RELOCATE else moves[i, 2]


@njit(**JIT)
def best_other_first(P, starts, order, hosp, pins, Winc, inc, r, move, second):
    """``(F, T, status)`` of the best plan (SPEC §7 order) in which ``r`` starts with another
    task (``front_moves``), scored against the incumbent in ``Winc``; ``status`` -1 if
    there is none. The move that makes that plan is written into ``move`` (four integers), and
    ``(F, T, status)`` of the best of those plans that start ``r`` with yet another task into
    ``second`` (status -1: none): what the audit logs when the planner issues the best one."""
    second[2] = -1.0
    moves = np.empty((starts[starts.shape[0] - 1] + starts.shape[0], 4), np.int64)  # one swap a team at most
    n = front_moves(P, starts, order, pins, r, moves)
    if n == 0:
        return np.nan, np.nan, -1
    out_F, out_T, out_status = np.empty(n), np.empty(n), np.empty(n, np.int64)
    score_serial(P, starts, order, hosp, pins, Winc, inc, moves, n, out_F, out_T, out_status)
    best = pick_best(out_F, out_T, out_status, n, np.ones(n, np.bool_))
    move[:] = moves[best]
    others = np.empty(n, np.bool_)
    for i in range(n):
        others[i] = _new_first(moves, i) != _new_first(moves, best)
    runner_up = pick_best(out_F, out_T, out_status, n, others)
    if runner_up >= 0:
        second[0], second[1], second[2] = out_F[runner_up], out_T[runner_up], out_status[runner_up]
    return out_F[best], out_T[best], out_status[best]
