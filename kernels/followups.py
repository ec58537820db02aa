"""Follow-up moves: after descent applies a sweep's best move, the sweep's other improving moves.

A best-improvement sweep scores the whole neighbourhood, thousands of moves at paper size, and
descent applies the best one. Most of the other improving moves the sweep found are on other
lists and still improve after it: sweeping again to find each of them one by one was most of
descent's time. So descent goes on down the sweep's improving moves, best first, and applies each
one that is still the same move (no list it changes has changed since the sweep) and, scored
afresh against the plan as it now is, still gains at least what the sweep found: a move the ones
before it weakened is left to the next sweep (taking it as well reached worse local optima in
the sixteenth session's trials, ``bench/HISTORY.md``). Every applied move is scored exactly
against the plan it is applied to, so descent stays exact and never worsens, and it still stops
only where a whole sweep finds no improving move: at a local optimum of the same neighbourhood.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .admissions import ensure_admissions
from .borrow import borrow
from .config import JIT
from .delta import evaluate_move
from .evaluate import evaluate
from .layout import CYCLE, KINDS, LOCAL, TRANSPORT, casualty_of, make_workspace
from .local import count_shift
from .memo import stamp_scored
from .moves import INSERT_TREAT, RELOCATE, REMOVE_TREAT, SWAP, TWO_OPT, slot_tables
from .score import incumbent_tables
from .search import TIE, _rank, better, take_over

#: ``out`` columns: the move as applied (kind, a, b, c), its predicted F and T, then the F and T
#: of a full evaluation after it (assert mode compares them; else the predicted ones again)
OUT_WIDTH = 8


@njit(**JIT, inline="always")
def _lists(kind, a, b, owner, slot_of):
    """The lists whose tasks a move (in the swept plan's slots) must find as they were: those it
    changes, and for a treat's insertion the list holding the casualty's transport, which decides
    where on its own team the treat may go."""
    if kind == RELOCATE:
        return owner[a], b
    if kind == SWAP:
        return owner[a], owner[b]
    if kind == REMOVE_TREAT or kind == TWO_OPT:
        return owner[a], -1
    if kind == INSERT_TREAT:
        ts = slot_of[KINDS * a + TRANSPORT]
        return b, (owner[ts] if ts >= 0 else -1)
    return -1, -1  # a hospital move or swap changes no list


@njit(**JIT, inline="always")
def _mark(kind, a, b, owner, order0, changed, treat):
    """Note what an applied move (in the swept plan's slots) changed: the lists whose tasks it
    changes, and the casualty whose treat it adds or drops."""
    if kind == RELOCATE:
        changed[owner[a]] = True
        changed[b] = True
    elif kind == SWAP:
        changed[owner[a]] = True
        changed[owner[b]] = True
    elif kind == REMOVE_TREAT or kind == TWO_OPT:
        changed[owner[a]] = True
    elif kind == INSERT_TREAT:
        changed[b] = True
        treat[a] = True
    if kind == REMOVE_TREAT:
        treat[casualty_of(order0[a])] = True


@njit(**JIT)
def apply_followups(P, cand, gain, n_cand, first, starts0, order0, starts, order, hosp, pins, Winc, inc, track, stamp,
                    meta, W, cs, co, ch, limit, check, out, floor):
    """Apply, best first, the still-improving moves among ``cand[:n_cand]`` after ``first``.

    ``cand`` (rows of ``(kind, a, b, c)``) and ``first`` are moves of the swept plan
    ``starts0``/``order0``; ``first`` has been applied to the incumbent (``starts``, ``order``,
    ``hosp``, its workspace ``Winc`` and objective ``inc``), which this updates in place with each
    move it applies, at most ``limit``. A move is skipped if a list it reads was changed by a move
    applied since the sweep, or if it inserts a treat for a casualty whose treat changed; else it
    is scored against the incumbent as it now is and applied if it is better, gains at least
    ``gain[t]`` in ``F`` (what the sweep found, less ``TIE``), and, unless it gains feasibility,
    leaves ``F`` at most ``TIE`` above ``floor``, the lowest ``F`` descent has reached (NaN:
    none), which each move applied lowers (``engine.algorithms.Descent._floor_of``: without it,
    moves that win on ``T`` each raised ``F`` a little, and descent went round a cycle). With
    ``track``, each is stamped first (``memo.stamp_scored``) for the next sweep's memo.

    An applied move's timing is taken over from its scoring, as annealing does (``search.take_over``,
    O(what it touched)), not by a full evaluation, which at 10 000 casualties made each applied
    move cost a millisecond; ``inc`` is settled by one full evaluation at the end. Writes the
    applied moves to ``out`` (``OUT_WIDTH`` columns; with ``check``, assert mode, the last two are
    a full evaluation's, in a workspace of its own) and returns ``(applied, scored, floor)``.
    """
    n_cas = P.h0.shape[0]
    owner0 = np.empty(max(order0.shape[0], 1), np.int64)
    slot_of0 = np.empty(KINDS * n_cas, np.int64)
    slot_tables(starts0, order0, n_cas, owner0, slot_of0)
    slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
    if check:
        Wfull = make_workspace(n_cas, P.resp_loc.shape[0], P.hosp_loc.shape[0], order.shape[0])
    else:
        Wfull = make_workspace(0, 0, 0, 0)
    return _follow(P, cand, gain, n_cand, first, starts0, order0, starts, order, hosp, pins, Winc, inc, track, stamp,
                   meta, W, cs, co, ch, limit, check, out, owner0, slot_of0, slot_owner, slot_of, n_shift, Wfull,
                   floor)


@njit(**JIT)
def _follow(P, cand, gain, n_cand, first, starts0, order0, starts, order, hosp, pins, Winc, inc, track, stamp, meta,
            W, cs, co, ch, limit, check, out, owner0, slot_of0, slot_owner, slot_of, n_shift, Wfull, floor):
    """``apply_followups``'s loop, with the tables it made: every array borrowed (``kernels.borrow``)."""
    P, cand, gain, first, starts0, order0, starts, order, hosp, pins = borrow(
        (P, cand, gain, first, starts0, order0, starts, order, hosp, pins))
    Winc, inc, stamp, meta, W, cs, co, ch, out = borrow((Winc, inc, stamp, meta, W, cs, co, ch, out))
    owner0, slot_of0, slot_owner, slot_of, Wfull = borrow((owner0, slot_of0, slot_owner, slot_of, Wfull))
    changed = np.zeros(starts.shape[0] - 1, np.bool_)
    treat = np.zeros(P.h0.shape[0], np.bool_)
    _mark(first[0], first[1], first[2], owner0, order0, changed, treat)
    done = 0
    scored = 0
    drift = False
    for t in range(n_cand):
        if done >= limit or int(inc[3]) == CYCLE:
            break
        kind, a, b, c = cand[t, 0], cand[t, 1], cand[t, 2], cand[t, 3]
        l1, l2 = _lists(kind, a, b, owner0, slot_of0)
        if (l1 >= 0 and changed[l1]) or (l2 >= 0 and changed[l2]) or (kind == INSERT_TREAT and treat[a]):
            continue
        # the same tasks of the same lists, which earlier lists may have moved along the flat arrays
        a1, b1 = a, b
        if kind == RELOCATE or kind == SWAP or kind == REMOVE_TREAT or kind == TWO_OPT:
            a1 = a + starts[owner0[a]] - starts0[owner0[a]]
        if kind == SWAP or kind == TWO_OPT:
            b1 = b + starts[owner0[b]] - starts0[owner0[b]]
        F, o, T, st = evaluate_move(P, kind, a1, b1, c, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of,
                                    n_shift, cs, co, ch, W)
        scored += 1
        # (a NaN gain, swept from a plan in a wait cycle, is no gain to keep: skipped)
        if not inc[0] - F >= gain[t] - TIE or not better(F, T, st, inc[0], inc[2], int(inc[3])):
            continue
        same_rank = _rank(st) == _rank(int(inc[3]))
        if same_rank and F > floor + TIE:  # (a NaN floor bars nothing)
            continue
        if track:  # from W's scoring above (it writes the whole candidate into cs, co, ch)
            stamp_scored(P, kind, a1, b1, c, st, starts, order, hosp, Winc, slot_owner, slot_of, stamp, meta, W, cs,
                         co, ch)
        local = W.gen[LOCAL] == 1
        take_over(P, kind, a1, b1, c, starts, order, hosp, pins, Winc, W, cs, slot_owner, slot_of)
        drift |= local
        if not local:
            F, o, T, st = evaluate(P, starts, order, hosp, pins, Winc)
            ensure_admissions(P, hosp, Winc)
        inc[0], inc[1], inc[2], inc[3] = F, o, T, st
        if not same_rank or not floor <= F:  # (a NaN floor is none)
            floor = F
        n_shift = count_shift(P, starts, Winc)
        F1, T1 = F, T
        if check:
            F1, _o, T1, _st = evaluate(P, starts, order, hosp, pins, Wfull)
        out[done, 0], out[done, 1], out[done, 2], out[done, 3] = kind, a1, b1, c
        out[done, 4], out[done, 5], out[done, 6], out[done, 7] = F, T, F1, T1
        done += 1
        _mark(kind, a, b, owner0, order0, changed, treat)
    if drift:
        # locally scored F and T carry rounding (about 1e-15 a move): settle them once
        F, o, T, st = evaluate(P, starts, order, hosp, pins, Winc)
        inc[0], inc[1], inc[2], inc[3] = F, o, T, st
        if not floor <= F:
            floor = F
    return done, scored, floor
