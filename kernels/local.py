"""Local re-timing after a move: only the changed tails of the touched lists are re-timed.

A move changes at most two lists, each from some index on (its *tail*). Tasks before those
indices, and every other list, keep the incumbent's times, unless a rescue or treat whose end
changes is waited on by a task outside the tails. That case (and an incumbent with a cycle) is
reported as ``FALLBACK`` and the caller re-times everything; otherwise the result equals a full
``schedule`` exactly, because each re-timed task uses the same operations on the same inputs.

The per-task timing below repeats ``schedule.py``'s on purpose: the same rules as one shared
inlined function made the full schedule four times slower under Numba (measured: 4.2 µs → 18.6 µs
on the London plan), and the kernel-vs-reference and delta-vs-full tests hold both copies to the
same numbers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .layout import CYCLE, FEASIBLE, RESCUE, SHIFT, TRANSPORT, TREAT
from .moves import HOSPITAL, HOSPITAL_SWAP, INSERT_TASK, INSERT_TREAT, RELOCATE, SWAP, TWO_OPT
from .schedule import SHIFT_TOL

FALLBACK = -1

# ``W.gen`` after ``local_schedule``: the generation stamp of ``W.mark``, how many casualties
# ``W.touched`` lists, the two touched lists and where their tails begin, and whether the last
# ``evaluate_move`` into ``W`` was scored locally (so ``adopt`` may take it over)
GEN, N_TOUCHED, LIST_A, TAIL_A, LIST_B, TAIL_B, LOCAL = range(7)


@njit(**JIT)
def touched(kind, a, b, c, starts, order, slot_owner, slot_of):
    """``(A, pA, B, pB, removed)``: the touched lists, their first changed index, a removed code."""
    B, pB, removed = -1, 0, -1
    if kind == RELOCATE:
        A = slot_owner[a]
        pA = a - starts[A]
        B, pB = b, c
        if B == A:
            pA = min(pA, pB)
            B = -1
    elif kind == SWAP or kind == TWO_OPT:
        A = slot_owner[a]
        pA = a - starts[A]
        B = slot_owner[b]
        pB = b - starts[B]
        if B == A:
            B = -1
    elif kind == HOSPITAL:
        s = slot_of[3 * a + TRANSPORT]
        A = slot_owner[s]
        pA = s - starts[A]
    elif kind == HOSPITAL_SWAP:
        s = slot_of[3 * a + TRANSPORT]
        A = slot_owner[s]
        pA = s - starts[A]
        s = slot_of[3 * b + TRANSPORT]
        B = slot_owner[s]
        pB = s - starts[B]
        if B == A:
            pA = min(pA, pB)
            B = -1
    elif kind == INSERT_TREAT or kind == INSERT_TASK:
        A, pA = b, c
    else:  # REMOVE_TREAT
        A = slot_owner[a]
        pA = a - starts[A]
        removed = order[a]
    return A, pA, B, pB, removed


@njit(**JIT, inline="always")
def _in_tail(code, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved):
    """Is task ``code`` (if planned) inside a tail of the candidate? Absent counts as inside."""
    if code == moved:
        return True
    s = slot_of[code]
    if s < 0:
        return True
    r = slot_owner[s]
    i = s - inc_starts[r]
    return (r == A and i >= pA) or (r == B and i >= pB)


@njit(**JIT)
def local_schedule(P, kind, a, b, c, inc_starts, inc_order, inc_hosp, slot_owner, slot_of, n_shift_inc,
                   starts, order, hosp, pins, Winc, W):
    """Time the candidate ``(starts, order, hosp)`` from the incumbent's times in ``Winc``.

    Returns FEASIBLE / SHIFT / CYCLE like ``schedule`` (with ``W``'s per-casualty arrays filled
    and the casualties whose tasks were re-timed listed in ``W.touched[:W.gen[1]]``), or FALLBACK
    when the move's effects reach beyond the touched tails.
    """
    A, pA, B, pB, removed = touched(kind, a, b, c, inc_starts, inc_order, slot_owner, slot_of)
    W.gen[LIST_A], W.gen[TAIL_A], W.gen[LIST_B], W.gen[TAIL_B] = A, pA, B, pB
    moved = -1
    if kind == RELOCATE:
        moved = inc_order[a]
    elif kind == INSERT_TREAT:
        moved = 3 * a + TREAT
    elif kind == INSERT_TASK:
        moved = a
    rescued, treated_at, pickup, arrival = W.rescued, W.treated_at, W.pickup, W.arrival
    r_known, t_known = W.r_known, W.t_known
    rescued[:] = Winc.rescued
    treated_at[:] = Winc.treated_at
    pickup[:] = Winc.pickup
    arrival[:] = Winc.arrival
    changed = W.touched
    mark = W.mark
    gen = W.gen
    gen[0] += 1
    g = gen[0]
    n_touched = 0
    if removed >= 0:
        cc = removed // 3
        if not _in_tail(3 * cc + TRANSPORT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved):
            return FALLBACK
        mark[cc] = g
        changed[n_touched] = cc
        n_touched += 1
        r_known[cc] = True
        t_known[cc] = True
        treated_at[cc] = P.treat_fixed[cc] if not np.isnan(P.treat_fixed[cc]) else np.inf
    # one pass over the tails: list the casualties they touch, mark their rescue and treat ends
    # as not yet timed, and give up if a task outside the tails waits for one of those ends
    for t in range(2):
        r = A if t == 0 else B
        if r < 0:
            continue
        p = pA if t == 0 else pB
        for s in range(starts[r] + p, starts[r + 1]):
            code = order[s]
            cc = code // 3
            k = code - 3 * cc
            if mark[cc] != g:
                mark[cc] = g
                changed[n_touched] = cc
                n_touched += 1
                r_known[cc] = True
                t_known[cc] = True
            if k == RESCUE:
                if not (_in_tail(3 * cc + TREAT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved)
                        and _in_tail(3 * cc + TRANSPORT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved)):
                    return FALLBACK
                r_known[cc] = False
            elif k == TREAT:
                if not _in_tail(3 * cc + TRANSPORT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved):
                    return FALLBACK
                t_known[cc] = False
    gen[1] = n_touched
    travel, site_loc, trapped, resp_hart, hosp_loc = P.travel, P.site_loc, P.trapped, P.resp_hart, P.hosp_loc
    load = P.scalars[1]
    handover = P.scalars[2]
    inf = np.inf
    # per touched list: next slot, free time and place after its unchanged head
    ptr = np.empty(2, np.int64)
    free = np.empty(2)
    loc = np.empty(2, np.int64)
    for t in range(2):
        r = A if t == 0 else B
        if r < 0:
            ptr[t] = 0
            continue
        p = pA if t == 0 else pB
        ptr[t] = starts[r] + p
        if p == 0:
            free[t] = P.resp_avail[r] if pins[r] > 0 else P.resp_free[r]
            loc[t] = P.resp_loc[r]
        else:
            s_prev = inc_starts[r] + p - 1
            free[t] = Winc.end[s_prev]
            code = inc_order[s_prev]
            cc = code // 3
            loc[t] = hosp_loc[inc_hosp[cc]] if code - 3 * cc == TRANSPORT else site_loc[cc]
    # alternate between the (at most two) lists until neither can advance
    progress = True
    while progress:
        progress = False
        for t in range(2):
            r = A if t == 0 else B
            if r < 0:
                continue
            while ptr[t] < starts[r + 1]:
                s = ptr[t]
                code = order[s]
                cc = code // 3
                k = code - 3 * cc
                site = site_loc[cc]
                arrive = free[t] + travel[loc[t], site]
                if k == RESCUE:
                    start = arrive
                    end = start + P.rescue_dur[cc]
                    rescued[cc] = end
                    r_known[cc] = True
                    loc[t] = site
                elif k == TREAT:
                    start = arrive
                    if trapped[cc] and not resp_hart[r]:
                        if not r_known[cc]:
                            break
                        if rescued[cc] > start:
                            start = rescued[cc]
                    end = start + P.treat_dur[cc]
                    treated_at[cc] = end
                    t_known[cc] = True
                    loc[t] = site
                else:
                    if not (r_known[cc] and t_known[cc]):
                        break
                    start = arrive
                    if trapped[cc] and rescued[cc] > start:
                        start = rescued[cc]
                    ta = treated_at[cc]
                    if ta < inf and ta > start:
                        start = ta
                    dest = hosp_loc[hosp[cc]]
                    arrive_h = start + load + travel[site, dest]
                    end = arrive_h + handover
                    pickup[cc] = start
                    arrival[cc] = arrive_h
                    loc[t] = dest
                W.start[s] = start
                W.end[s] = end
                free[t] = end
                ptr[t] = s + 1
                progress = True
    n_shift = n_shift_inc
    for t in range(2):
        r = A if t == 0 else B
        if r < 0:
            continue
        if ptr[t] < starts[r + 1]:
            return CYCLE
        old_last = Winc.free[r]
        new_last = free[t] if starts[r + 1] > starts[r] else -inf
        if inc_starts[r + 1] > inc_starts[r] and old_last > P.resp_shift[r] + SHIFT_TOL:
            n_shift -= 1
        if new_last > P.resp_shift[r] + SHIFT_TOL:
            n_shift += 1
    return SHIFT if n_shift > 0 else FEASIBLE


@njit(**JIT)
def count_shift(P, starts, Winc):
    """How many responders end their last task after their shift (incumbent, fully timed)."""
    n = 0
    for r in range(starts.shape[0] - 1):
        if starts[r + 1] > starts[r] and Winc.free[r] > P.resp_shift[r] + SHIFT_TOL:
            n += 1
    return n


@njit(**JIT)
def adopt(P, inc_starts, starts, pins, Winc, W):
    """Make ``Winc`` the exact timing of the candidate ``starts`` that ``W`` scored locally.

    Instead of a full re-evaluation after an accepted move: ``W`` equals ``Winc`` except for the
    casualties in ``W.touched`` and the tails of the two touched lists, so only those, the
    hospitals' tallies and the slots of lists that moved in the flat arrays are copied.
    ``inc_starts`` is the incumbent's layout before the move.
    """
    gen = W.gen
    for i in range(gen[N_TOUCHED]):
        c = W.touched[i]
        Winc.rescued[c] = W.rescued[c]
        Winc.treated_at[c] = W.treated_at[c]
        Winc.pickup[c] = W.pickup[c]
        Winc.arrival[c] = W.arrival[c]
        Winc.pdead[c] = W.pdead[c]
    Winc.count[:] = W.count
    Winc.over[:] = W.over
    A, pA, B, pB = gen[LIST_A], gen[TAIL_A], gen[LIST_B], gen[TAIL_B]
    n_resp = starts.shape[0] - 1
    # first gather every moved or re-timed list's slots into W in the new layout (W already has
    # the re-timed tails), then copy them over: Winc is only read before it is written
    for r in range(n_resp):
        shift = starts[r] - inc_starts[r]
        head = pA if r == A else pB if r == B else starts[r + 1] - starts[r]
        if shift == 0 and r != A and r != B:
            continue
        for j in range(head):
            W.start[starts[r] + j] = Winc.start[inc_starts[r] + j]
            W.end[starts[r] + j] = Winc.end[inc_starts[r] + j]
    for r in range(n_resp):
        if starts[r] == inc_starts[r] and r != A and r != B:
            continue
        for s in range(starts[r], starts[r + 1]):
            Winc.start[s] = W.start[s]
            Winc.end[s] = W.end[s]
        if r == A or r == B:
            # as ``schedule`` leaves it: the last task's end, or the list's start time
            if starts[r + 1] > starts[r]:
                Winc.free[r] = W.end[starts[r + 1] - 1]
            else:
                Winc.free[r] = P.resp_avail[r] if pins[r] > 0 else P.resp_free[r]
