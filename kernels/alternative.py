"""The audit log's counterfactual: the plan had a team been sent to its best other task first.

When a task is issued, the audit records what the objective would have been had the team gone
to another task instead (SPEC §8): every task the team could do (a rescue for a fire team, a
treat or transport for a paramedic team) that is not pinned elsewhere is relocated to the front
of its list, and the best of those plans is kept. The moves are enumerated and chosen serially,
and scored across ``n_threads`` threads (``search.sweep``) or, with one, in this thread without
opening a parallel region. While an issue holds the planner's lock, deltas wait, so only the
background search competes for the cores: an annealing search runs at most one short serial
chunk meanwhile, and the alternative on two threads took an issue's p99 under load from 1.0 to
0.6 ms; a tabu or descent search runs a parallel sweep of its own for tens of milliseconds, and
an issue that opened a second parallel region beside it waited for it (p99 12-16 ms), so the
planner then asks for one thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .moves import RELOCATE, fits
from .score import incumbent_tables, score_moves
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
    if n_threads > 1:
        sweep(P, starts, order, hosp, pins, Winc, inc, moves, n, out_F, out_T, out_status, n_threads)
    else:  # no parallel region at all (see the module docstring)
        slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
        # no memo, and every argument typed as ``search.sweep`` passes it (a literal 0 would
        # compile a specialisation of score_moves of its own)
        no_rows, no_f, no_deps = np.empty(0, np.int64), np.empty(0), np.empty((0, 1), np.int16)
        zero = n * 0
        score_moves(P, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, moves, np.arange(n), zero,
                    n, out_F, out_T, out_status, no_rows, no_f, no_f, no_rows, no_rows, no_deps, no_rows, zero, n < 0)
    best = pick_best(out_F, out_T, out_status, n, np.ones(n, np.bool_))
    return out_F[best], out_T[best], out_status[best]
