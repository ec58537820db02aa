"""The audit log's counterfactual: the plan had a team been sent to its best other task first.

When a task is issued, the audit records what the objective would have been had the team gone
to another task instead (SPEC §8): every task the team could do (a rescue for a fire team, a
treat or transport for a paramedic team) that is not pinned elsewhere is relocated to the front
of its list, and the best of those plans is kept. The moves are enumerated and chosen serially
and scored across threads (``search.sweep``): while an issue holds the planner's lock, deltas
wait, so only the background search competes for the cores. Scored on one thread, the
alternative was four fifths of an issue; on two, the issue's p99 under load fell from 1.0 to
0.75 ms (see the README).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .moves import RELOCATE, fits
from .search import pick_best, sweep


@njit(**JIT)
def front_relocations(P, starts, order, pins, r, moves):
    """Write into ``moves`` every relocation of another movable task that fits ``r`` to the
    front of ``r``'s list; returns how many."""
    n = 0
    first = starts[r] if starts[r + 1] > starts[r] else -1
    for q in range(starts.shape[0] - 1):
        for s in range(starts[q] + pins[q], starts[q + 1]):
            if s != first and fits(P, order[s], r):
                moves[n, 0] = RELOCATE
                moves[n, 1] = s
                moves[n, 2] = r
                moves[n, 3] = 0
                n += 1
    return n


@njit(**JIT)
def best_other_first(P, starts, order, hosp, pins, Winc, inc, r, n_threads):
    """``(F, T, status)`` of the best plan (SPEC §7 order) in which ``r`` starts with another
    task (``front_relocations``), scored against the incumbent in ``Winc`` on ``n_threads``
    threads; ``status`` -1 if there is none."""
    moves = np.empty((max(starts[starts.shape[0] - 1], 1), 4), np.int64)
    n = front_relocations(P, starts, order, pins, r, moves)
    if n == 0:
        return np.nan, np.nan, -1
    out_F, out_T, out_status = np.empty(n), np.empty(n), np.empty(n, np.int64)
    sweep(P, starts, order, hosp, pins, Winc, inc, moves, n, out_F, out_T, out_status, n_threads)
    best = pick_best(out_F, out_T, out_status, n, np.ones(n, np.bool_))
    return out_F[best], out_T[best], out_status[best]
