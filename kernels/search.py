"""Compiled inner loops of the search: neighbourhood sweeps, commits and annealing chunks.

Python (``engine/``) drives these between chunks, where it checks stopping criteria, callbacks
and model changes; everything per move runs here, with the GIL released.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .admissions import ensure_admissions, has_admissions, readmit
from .borrow import borrow
from .config import ASSERT_REL, ASSERT_TOL, JIT, PARALLEL
from .delta import evaluate_move, evaluate_move_inline
from .evaluate import evaluate
from .layout import CYCLE, FEASIBLE, LOCAL, TRANSPORT, TREAT, make_workspace
from .local import adopt, count_shift
from .moves import (HOSPITAL, HOSPITAL_SWAP, INSERT_TREAT, RELOCATE, REMOVE_TREAT, SWAP, TWO_OPT, apply_in_place,
                    apply_move, random_move)
from .score import deal, incumbent_tables, score_moves, share

TIE = 1e-9
#: Tabu markers for treats (in place of a responder index): may not be inserted / removed.
NO_INSERT, NO_REMOVE = -3, -2


@njit(**JIT, inline="always")
def _rank(status):
    # feasible < over a shift end < a cycle of waits (which has no objective at all)
    return 0 if status == FEASIBLE else (2 if status == CYCLE else 1)


@njit(**JIT)
def better(F1, T1, s1, F2, T2, s2):
    """SPEC §7 comparison: feasibility first, then ``F``, then ``T`` when ``F`` ties within 1e-9."""
    r1, r2 = _rank(s1), _rank(s2)
    if r1 != r2:
        return r1 < r2
    if r1 == 2:
        return False
    if abs(F1 - F2) > TIE:
        return F1 < F2
    return T1 < T2 - TIE


@njit(**PARALLEL)
def sweep(P, starts, order, hosp, pins, Winc, inc, moves, n_moves, out_F, out_T, out_status, n_threads):
    """Score ``moves[:n_moves]`` against the incumbent, split across ``n_threads`` threads.

    Each thread scores every ``n_threads``-th block of moves (``score.deal``) in candidate
    buffers and a workspace of its own (``score_moves``), and writes only those moves' outputs,
    so the choice among them is made afterwards, serially and deterministically (``pick_best``).
    """
    slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
    n_chunks = min(n_threads, max(n_moves, 1))
    todo = np.empty(n_moves, np.int64)
    deal(np.arange(n_moves), n_moves, n_chunks, todo)
    # no memo: empty rows, typed as sweep_memo's so that both share one compiled score_moves (as
    # would a literal epoch or flag not: each literal argument compiles a specialisation of its own)
    no_rows, no_f, no_deps = np.empty(0, np.int64), np.empty(0), np.empty((1, 0, 1), np.int16)
    epoch, record = n_shift * 0, n_moves < 0
    scored = moves[:n_moves]  # score.worth_without reads runs to the array's end, not a buffer's
    for chunk in prange(n_chunks):
        score_moves(P, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, scored, todo,
                    share(chunk, n_moves, n_chunks), share(chunk + 1, n_moves, n_chunks), out_F, out_T, out_status,
                    no_rows, no_f, no_f, no_rows, no_rows, no_deps, no_rows, epoch, record)


@njit(**JIT)
def score_serial(P, starts, order, hosp, pins, Winc, inc, moves, n_moves, out_F, out_T, out_status):
    """``sweep`` in the calling thread, opening no parallel region.

    For the online engine's few-hundred-move scorings, made while a caller waits (a repair's
    cheapest insertion, the audit's alternative): a parallel region waits at its end for a pool
    thread, and with one other busy process on a 2-core machine that wait was 15 ms, against a
    fraction of a millisecond for the scoring itself.
    """
    slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
    # every argument typed as sweep passes it: a literal (0, False) would compile a
    # specialisation of score_moves of its own
    no_rows, no_f, no_deps = np.empty(0, np.int64), np.empty(0), np.empty((1, 0, 1), np.int16)
    zero, record = n_moves * 0, n_moves < 0
    # score.worth_without reads runs to the array's end: hand it the moves, not their buffer
    score_moves(P, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, moves[:n_moves],
                np.arange(n_moves), zero, n_moves, out_F, out_T, out_status, no_rows, no_f, no_f, no_rows, no_rows,
                no_deps, no_rows, zero, record)


@njit(**JIT, inline="always")
def _agrees(x, full):
    """Assert mode: a delta's score against a full evaluation's (``config.ASSERT_REL``)."""
    return abs(x - full) <= ASSERT_TOL + ASSERT_REL * abs(full)


@njit(**JIT)
def pick_best(out_F, out_T, out_status, n_moves, allowed):
    """Index of the best allowed move, SPEC §7's best of a set, or -1 if none is allowed.

    The moves of the best feasibility rank; among them, those with ``F`` at most ``TIE`` above
    the smallest; among those, the first whose ``T`` is at most ``TIE`` above their smallest
    (the casualty minutes of two plans are equal to rounding as often as their ``F``: twins,
    an order of the same visits). A wait cycle has no ``F`` or ``T``: the first such move, if
    no other is allowed. A scan keeping the ``better`` of two is not the same: the tie is not
    transitive, so the scan's answer could have ``F`` up to twice ``TIE`` above the smallest,
    and depend on the moves' order.
    """
    r_best = 3
    F_min = np.inf
    for i in range(n_moves):
        if allowed[i]:
            r = _rank(out_status[i])
            if r < r_best:
                r_best, F_min = r, np.inf
            if r == r_best and out_F[i] < F_min:
                F_min = out_F[i]
    T_min = np.inf
    first = -1  # of the best rank: a cycle's, or any if no F is a number (none the kernels make)
    for i in range(n_moves):
        if allowed[i] and _rank(out_status[i]) == r_best:
            if first < 0:
                first = i
            if out_F[i] - F_min <= TIE and out_T[i] < T_min:
                T_min = out_T[i]
    if r_best == 2:
        return first
    for i in range(n_moves):
        if allowed[i] and _rank(out_status[i]) == r_best and out_F[i] - F_min <= TIE and out_T[i] - T_min <= TIE:
            return i
    return first


@njit(**JIT)
def commit(P, kind, a, b, c, starts, order, hosp, pins, Winc, cs, co, ch):
    """Apply a move to the incumbent in place and re-evaluate it in full; returns the objective."""
    P, starts, order, hosp, pins, Winc, cs, co, ch = borrow((P, starts, order, hosp, pins, Winc, cs, co, ch))
    apply_move(kind, a, b, c, starts, order, hosp, cs, co, ch)
    starts[:] = cs
    order[:] = co
    hosp[:] = ch
    return evaluate(P, starts, order, hosp, pins, Winc)


@njit(**JIT)
def tabu_allowed(moves, n_moves, starts, order, hosp, tabu_resp, tabu_until, tabu_hosp, tabu_hosp_until,
                 it, out_F, out_T, out_status, bestF, bestT, best_status, allowed):
    """Mark the moves that are not tabu, or that would beat the best plan (aspiration)."""
    moves, starts, order, hosp, tabu_resp, tabu_until = borrow((moves, starts, order, hosp, tabu_resp, tabu_until))
    tabu_hosp, tabu_hosp_until, out_F, out_T, out_status, allowed = borrow(
        (tabu_hosp, tabu_hosp_until, out_F, out_T, out_status, allowed))
    n_resp = starts.shape[0] - 1
    owner = np.empty(max(starts[n_resp], 1), np.int64)
    for r in range(n_resp):
        for s in range(starts[r], starts[r + 1]):
            owner[s] = r
    for i in range(n_moves):
        kind, a, b = moves[i, 0], moves[i, 1], moves[i, 2]
        tabu = False
        if kind == RELOCATE:
            code = order[a]
            tabu = tabu_resp[code] == b and it < tabu_until[code]
        elif kind == SWAP:
            c1, c2 = order[a], order[b]
            tabu = ((tabu_resp[c1] == owner[b] and it < tabu_until[c1])
                    or (tabu_resp[c2] == owner[a] and it < tabu_until[c2]))
        elif kind == HOSPITAL:
            tabu = tabu_hosp[a] == b and it < tabu_hosp_until[a]
        elif kind == HOSPITAL_SWAP:
            tabu = ((tabu_hosp[a] == hosp[b] and it < tabu_hosp_until[a])
                    or (tabu_hosp[b] == hosp[a] and it < tabu_hosp_until[b]))
        elif kind == INSERT_TREAT:
            code = 3 * a + 1
            tabu = (tabu_resp[code] == b or tabu_resp[code] == NO_INSERT) and it < tabu_until[code]
        elif kind == REMOVE_TREAT:
            code = order[a]
            tabu = tabu_resp[code] == NO_REMOVE and it < tabu_until[code]
        allowed[i] = (not tabu) or better(out_F[i], out_T[i], out_status[i], bestF, bestT, best_status)


@njit(**JIT)
def tabu_record(kind, a, b, starts, order, hosp, tabu_resp, tabu_until, tabu_hosp, tabu_hosp_until, until):
    """Before a move is committed: forbid undoing it (task back to its responder) until ``until``."""
    n_resp = starts.shape[0] - 1
    if kind == RELOCATE or kind == SWAP:
        slots = (a, b) if kind == SWAP else (a, a)
        for s in slots:
            for r in range(n_resp):
                if starts[r] <= s < starts[r + 1]:
                    tabu_resp[order[s]] = r
                    tabu_until[order[s]] = until
    elif kind == REMOVE_TREAT:  # the treat may not come straight back, on any team
        tabu_resp[order[a]] = NO_INSERT
        tabu_until[order[a]] = until
    elif kind == INSERT_TREAT:  # nor be dropped again straight away
        tabu_resp[3 * a + 1] = NO_REMOVE
        tabu_until[3 * a + 1] = until
    elif kind == HOSPITAL:
        tabu_hosp[a] = hosp[a]
        tabu_hosp_until[a] = until
    elif kind == HOSPITAL_SWAP:
        tabu_hosp[a] = hosp[a]
        tabu_hosp_until[a] = until
        tabu_hosp[b] = hosp[b]
        tabu_hosp_until[b] = until


@njit(**JIT, inline="always")
def moved_tasks(kind, a, b, order):
    """The codes of the tasks a move takes from their places, -1 for none: the task relocated or
    dropped, both tasks swapped, a reversed segment's two ends, the treat inserted, the transport
    sent to another hospital (both of a hospital swap). What tabu's long-term memory counts."""
    if kind == RELOCATE or kind == REMOVE_TREAT:
        return order[a], -1
    if kind == SWAP or kind == TWO_OPT:
        return order[a], order[b]
    if kind == HOSPITAL:
        return 3 * a + TRANSPORT, -1
    if kind == HOSPITAL_SWAP:
        return 3 * a + TRANSPORT, 3 * b + TRANSPORT
    if kind == INSERT_TREAT:
        return 3 * a + TREAT, -1
    return -1, -1  # construction's INSERT_TASK


@njit(**JIT)
def tabu_count(kind, a, b, order, moved):
    """Before a move is committed: count it against each task it moves (``moved[code] += 1``)."""
    t1, t2 = moved_tasks(kind, a, b, order)
    if t1 >= 0:
        moved[t1] += 1
    if t2 >= 0:
        moved[t2] += 1


@njit(**JIT)
def pick_diversified(moves, n_moves, order, out_F, out_T, out_status, allowed, moved, weight):
    """Index of the best allowed move with ``weight`` times how often the tasks it moves have
    been moved (``moved``, ``tabu_count``) added to its ``F`` (first index on ties), or -1."""
    moves, order, out_F, out_T, out_status, allowed, moved = borrow(
        (moves, order, out_F, out_T, out_status, allowed, moved))
    best = -1
    best_F = 0.0
    for i in range(n_moves):
        if not allowed[i]:
            continue
        t1, t2 = moved_tasks(moves[i, 0], moves[i, 1], moves[i, 2], order)
        times = (moved[t1] if t1 >= 0 else 0) + (moved[t2] if t2 >= 0 else 0)
        F = out_F[i] + weight * times
        if best < 0 or better(F, out_T[i], out_status[i], best_F, out_T[best], out_status[best]):
            best = i
            best_F = F
    return best


@njit(**JIT, inline="always")
def _keep(starts, order, hosp, best_starts, best_order, best_hosp):
    best_starts[:] = starts
    best_order[:] = order
    best_hosp[:] = hosp


@njit(**JIT, inline="always")
def take_over(P, kind, a, b, c, starts, order, hosp, pins, Winc, W, cs, slot_owner, slot_of):
    """Apply move ``(kind, a, b, c)``, just scored in ``W``, to the incumbent, slot tables included.

    A move scored locally has its timing taken over from ``W`` (O(what it touched), exact) and the
    hospitals' admission order carried along, instead of a full evaluation; the caller evaluates
    in full a move that was not (``W.gen[LOCAL] == 0``: an incumbent in a wait cycle).
    """
    local = W.gen[LOCAL] == 1
    carried = local and has_admissions(Winc)
    if local:
        adopt(P, starts, cs, pins, Winc, W)
    # and its arrays and slot tables, O(the slots the move shifts)
    apply_in_place(kind, a, b, c, starts, order, hosp, cs, slot_owner, slot_of)
    if carried:
        readmit(P, hosp, Winc, W)


@njit(**JIT)
def anneal_chunk(P, starts, order, hosp, pins, Winc, cur, best_starts, best_order, best_hosp, best,
                 paramedics, fires, weights, neigh, hosp_neigh, temp0, temp_end, it0, total, n_iter, seed, Wc,
                 cs, co, ch, stats, check, bad):
    """Run ``n_iter`` Metropolis steps from iteration ``it0`` of ``total``; all state updated in place.

    ``cur`` and ``best`` are ``[F, overflow, T, status]`` arrays. The temperature falls
    geometrically from ``temp0`` to ``temp_end`` over ``total`` iterations. ``stats`` accumulates
    ``[evaluations, accepted, improved_best]``. Seeding per chunk from ``seed`` keeps a run
    reproducible whatever thread it runs on. With ``check`` (assert mode) an accepted move whose
    delta score differs from a full evaluation by more than ``_agrees`` allows stops the chunk: ``bad``
    gets ``[kind, a, b, c, F_delta, F_full, T_delta, T_full]`` and the step index is returned
    (-1 otherwise).
    """
    np.random.seed(seed)
    n_cas = P.h0.shape[0]
    slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
    if check:
        Wfull = make_workspace(n_cas, P.resp_loc.shape[0], P.hosp_loc.shape[0], order.shape[0])
    else:
        Wfull = make_workspace(0, 0, 0, 0)
    return _anneal(P, starts, order, hosp, pins, Winc, cur, best_starts, best_order, best_hosp, best, paramedics,
                   fires, weights, neigh, hosp_neigh, temp0, temp_end, it0, total, n_iter, Wc, cs, co, ch, stats,
                   check, bad, slot_owner, slot_of, n_shift, Wfull)


@njit(**JIT)
def _anneal(P, starts, order, hosp, pins, Winc, cur, best_starts, best_order, best_hosp, best, paramedics, fires,
            weights, neigh, hosp_neigh, temp0, temp_end, it0, total, n_iter, Wc, cs, co, ch, stats, check, bad,
            slot_owner, slot_of, n_shift, Wfull):
    """``anneal_chunk``'s steps, with the tables it made: every array borrowed (``kernels.borrow``)."""
    P, starts, order, hosp, pins, Winc, cur = borrow((P, starts, order, hosp, pins, Winc, cur))
    best_starts, best_order, best_hosp, best, paramedics, fires = borrow(
        (best_starts, best_order, best_hosp, best, paramedics, fires))
    weights, neigh, hosp_neigh, Wc, cs, co, ch = borrow((weights, neigh, hosp_neigh, Wc, cs, co, ch))
    stats, bad, slot_owner, slot_of, Wfull = borrow((stats, bad, slot_owner, slot_of, Wfull))
    ratio = temp_end / temp0 if temp0 > 0 else 0.0
    drift = False
    # the current plan is the best one, and best_* are not a copy of it yet: they are copied when
    # the search leaves it (or the chunk ends), not at every new best (each copy is O(plan))
    at_best = False
    for k in range(n_iter):
        frac = min(1.0, (it0 + k) / max(total, 1))
        temp = temp0 * ratio ** frac if temp0 > 0 else 0.0
        kind, a, b, c = random_move(P, starts, order, hosp, pins, slot_owner, slot_of, paramedics, fires, weights,
                                    neigh, hosp_neigh)
        if kind < 0:
            continue
        F, o, T, st = evaluate_move_inline(P, kind, a, b, c, starts, order, hosp, pins, Winc, cur,
                                           slot_owner, slot_of, n_shift, cs, co, ch, Wc)
        stats[0] += 1
        if st == CYCLE:
            continue
        accept = better(F, T, st, cur[0], cur[2], int(cur[3]))
        if not accept and _rank(st) == _rank(int(cur[3])) and temp > 0:
            dF = F - cur[0]
            accept = dF <= 0 or np.random.random() < math.exp(-dF / temp)
        if accept:
            stats[1] += 1
            local = Wc.gen[LOCAL] == 1
            if at_best and not (local and better(F, T, st, best[0], best[2], int(best[3]))):
                _keep(starts, order, hosp, best_starts, best_order, best_hosp)
                at_best = False
            take_over(P, kind, a, b, c, starts, order, hosp, pins, Winc, Wc, cs, slot_owner, slot_of)
            drift |= local
            if check:
                # assert mode: the move's score against a full evaluation in a scratch workspace,
                # so the adopted incumbent itself is what later moves are scored from
                F2, _o, T2, _st = evaluate(P, starts, order, hosp, pins, Wfull)
                if not (_agrees(F, F2) and _agrees(T, T2)):
                    bad[0], bad[1], bad[2], bad[3] = kind, a, b, c
                    bad[4], bad[5], bad[6], bad[7] = F, F2, T, T2
                    return k  # (best_* may be stale: the engine raises on a mismatch)
            if not local:
                # a full re-timing keeps every incumbent array exact for the next local delta
                F, o, T, st = evaluate(P, starts, order, hosp, pins, Winc)
                ensure_admissions(P, hosp, Winc)
            cur[0], cur[1], cur[2], cur[3] = F, o, T, st
            n_shift = count_shift(P, starts, Winc)
            if better(F, T, st, best[0], best[2], int(best[3])):
                best[0], best[1], best[2], best[3] = F, o, T, st
                at_best = True
                stats[2] += 1
    if at_best:
        _keep(starts, order, hosp, best_starts, best_order, best_hosp)
    if drift:
        # locally scored F and T carry rounding (about 1e-15 a move): settle them once a chunk
        F, o, T, st = evaluate(P, starts, order, hosp, pins, Winc)
        cur[0], cur[1], cur[2], cur[3] = F, o, T, st
    return -1


@njit(**JIT)
def sample_deltas(P, starts, order, hosp, pins, Winc, cur, paramedics, fires, weights, neigh, hosp_neigh, n, seed,
                  Wc, cs, co, ch, out):
    """``F`` differences of ``n`` random moves from the incumbent (for auto-fitting temperatures)."""
    P, starts, order, hosp, pins, Winc, cur = borrow((P, starts, order, hosp, pins, Winc, cur))
    paramedics, fires, weights, neigh, hosp_neigh = borrow((paramedics, fires, weights, neigh, hosp_neigh))
    Wc, cs, co, ch, out = borrow((Wc, cs, co, ch, out))
    np.random.seed(seed)
    slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
    m = 0
    for _ in range(n):
        kind, a, b, c = random_move(P, starts, order, hosp, pins, slot_owner, slot_of, paramedics, fires, weights,
                                    neigh, hosp_neigh)
        if kind < 0:
            continue
        F, _o, _T, st = evaluate_move(P, kind, a, b, c, starts, order, hosp, pins, Winc, cur,
                                      slot_owner, slot_of, n_shift, cs, co, ch, Wc)
        if st != CYCLE and _rank(st) == _rank(int(cur[3])):
            out[m] = F - cur[0]
            m += 1
    return m
