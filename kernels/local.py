"""Local re-timing after a move: only what the move can change is re-timed.

A move changes at most two lists, each from some index on (its *tail*). Tasks before those
indices, and every other list, keep the incumbent's times, except where a task waits for a rescue
or treat end inside a re-timed tail: that task's list is re-timed too, from that task on, and so
on until nothing else waits (the closure is usually one or two more lists). The result equals a
full ``schedule`` exactly, because each re-timed task uses the same operations on the same
inputs. An incumbent caught in a wait cycle has no times to start from: the caller re-times it
all.

The per-task timing below repeats ``schedule.py``'s on purpose: the same rules as one shared
inlined function made the full schedule four times slower under Numba (measured: 4.2 µs → 18.6 µs
on the London plan), and the kernel-vs-reference and delta-vs-full tests hold both copies to the
same numbers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .borrow import borrow
from .config import JIT
from .layout import (CYCLE, FEASIBLE, GEN, HOSP_A, HOSP_B, IDENT, N_DIRTY, N_LISTS, N_TOUCHED, RESCUE, SHIFT,
                     SYNC_IDENT, SYNC_VERSION, TRANSPORT, TREAT, VERSION, casualty_of)
from .moves import HOSPITAL, HOSPITAL_SWAP, INSERT_TASK, INSERT_TREAT, RELOCATE, SWAP, TWO_OPT
from .schedule import SHIFT_TOL


@njit(**JIT)
def touched(kind, a, b, c, starts, order, slot_owner, slot_of):
    """``(A, pA, B, pB, removed)``: the touched lists, their first changed index, a removed code."""
    starts, order, slot_owner, slot_of = borrow((starts, order, slot_owner, slot_of))
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
def _copy_casualties(dst, src, which, n):
    """Copy the times and ``p_dead`` of casualties ``which[:n]`` from workspace ``src`` to ``dst``."""
    for i in range(n):
        c = which[i]
        dst.rescued[c] = src.rescued[c]
        dst.treated_at[c] = src.treated_at[c]
        dst.pickup[c] = src.pickup[c]
        dst.arrival[c] = src.arrival[c]
        dst.pdead[c] = src.pdead[c]


@njit(**JIT, inline="always")
def sync(W, Winc, hosp):
    """Make candidate workspace ``W`` the incumbent's again before a move is scored in it: its
    per-casualty times and ``p_dead``, its hospitals' bed counts and overflows (no hospital
    ``dirty`` or in ``need``), and ``W.hosp`` equal to the plan's ``hosp``.

    While ``W`` is in step with this version of ``Winc``, only what the last move changed is put
    back: the casualties it touched, the hospitals it listed (``hlist[:N_DIRTY]``) and a hospital
    move's casualties (``HOSP_A``, ``HOSP_B``, from ``hosp`` as it is now, so an accepted move's
    new hospital too). Else everything, once. Copying every casualty's hospital for each hospital
    move, and every hospital's tallies for each move, made a hospital move at 10 000 casualties
    cost three times a relocation.
    """
    gen = W.gen
    count, over, dirty, need, hlist, wh = W.count, W.over, W.dirty, W.need, W.hlist, W.hosp
    if Winc.gen[IDENT] != 0 and gen[SYNC_IDENT] == Winc.gen[IDENT] and gen[SYNC_VERSION] == Winc.gen[VERSION]:
        _copy_casualties(W, Winc, W.touched, gen[N_TOUCHED])
        for i in range(gen[N_DIRTY]):
            h = hlist[i]
            count[h] = Winc.count[h]
            over[h] = Winc.over[h]
            dirty[h] = False
            need[h] = False
        if gen[HOSP_A] >= 0:
            wh[gen[HOSP_A]] = hosp[gen[HOSP_A]]
        if gen[HOSP_B] >= 0:
            wh[gen[HOSP_B]] = hosp[gen[HOSP_B]]
    else:
        W.rescued[:] = Winc.rescued
        W.treated_at[:] = Winc.treated_at
        W.pickup[:] = Winc.pickup
        W.arrival[:] = Winc.arrival
        W.pdead[:] = Winc.pdead
        count[:] = Winc.count
        over[:] = Winc.over
        dirty[:] = False
        need[:] = False
        wh[:] = hosp
        gen[SYNC_IDENT] = Winc.gen[IDENT]
        gen[SYNC_VERSION] = Winc.gen[VERSION]
    gen[N_TOUCHED] = 0
    gen[N_DIRTY] = 0
    gen[HOSP_A] = -1
    gen[HOSP_B] = -1


@njit(**JIT, inline="always")
def _open(r, p, g, W, starts, inc_starts, inc_order, order, wA, wB):
    """Add list ``r`` to the re-timed lists, from index ``p`` on (its tail not yet scanned).

    A list the move did not write (``wA``, ``wB``: see ``moves.candidate_view``) is the
    incumbent's: it is copied to its candidate offset now, the first time it is read.
    """
    W.rmark[r] = g
    W.tail[r] = p
    W.scanned[r] = starts[r + 1] - starts[r]
    W.stack[W.gen[N_LISTS]] = r
    W.gen[N_LISTS] += 1
    if r != wA and r != wB:
        d = starts[r] - inc_starts[r]
        for s in range(inc_starts[r], inc_starts[r + 1]):
            order[s + d] = inc_order[s]


@njit(**JIT, inline="always")
def _need(code, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved, removed, g, W, starts, inc_order, order,
          wA, wB):
    """Task ``code`` waits for an end that is re-timed: make sure it is re-timed too.

    Its list joins the re-timed lists from its index on, or an already re-timed list's tail is
    extended back to it. Indices before a touched list's first change are the same in the
    incumbent and the candidate; so are all indices of an untouched list.
    """
    if code == moved or code == removed:
        return  # the moved task is in a touched tail; the removed one is gone
    s = slot_of[code]
    if s < 0:
        return  # not planned
    r = slot_owner[s]
    i = s - inc_starts[r]
    if (r == A and i >= pA) or (r == B and i >= pB):
        return  # in a touched list's changed part: scanned from the start
    if W.rmark[r] != W.gen[GEN]:
        _open(r, i, g, W, starts, inc_starts, inc_order, order, wA, wB)
    elif i < W.tail[r]:
        W.tail[r] = i


@njit(**JIT, inline="always")
def local_schedule(P, kind, a, b, c, inc_starts, inc_order, inc_hosp, slot_owner, slot_of, n_shift_inc,
                   starts, order, hosp, pins, Winc, W, wA, wB):
    """Time the candidate ``(starts, order, hosp)`` from the incumbent's times in ``Winc``.

    ``order`` need only hold the lists the move wrote (``wA``, ``wB``; see
    ``moves.candidate_view``): every other list this reads is copied into it first.

    The move changes one or two lists from some index on; those tails are re-timed, and so is
    every task that waits (directly or through its own list) for a rescue or treat end in a
    re-timed tail: its list joins from that task on. The rest keeps the incumbent's times.
    Returns FEASIBLE / SHIFT / CYCLE like ``schedule``, with ``W``'s per-casualty arrays filled,
    the casualties whose tasks were re-timed in ``W.touched[:W.gen[N_TOUCHED]]`` and the re-timed
    lists in ``W.stack[:W.gen[N_LISTS]]`` (each from index ``W.tail[r]``). The incumbent must
    not be in a wait cycle, and ``W`` must be in step with it (``sync``).
    """
    A, pA, B, pB, removed = touched(kind, a, b, c, inc_starts, inc_order, slot_owner, slot_of)
    moved = -1
    if kind == RELOCATE:
        moved = inc_order[a]
    elif kind == INSERT_TREAT:
        moved = 3 * a + TREAT
    elif kind == INSERT_TASK:
        moved = a
    rescued, treated_at, pickup, arrival = W.rescued, W.treated_at, W.pickup, W.arrival
    r_known, t_known = W.r_known, W.t_known
    changed = W.touched
    mark = W.mark
    gen = W.gen
    gen[GEN] += 1
    g = gen[GEN]
    gen[N_LISTS] = 0
    lists, tail, scanned = W.stack, W.tail, W.scanned
    if A >= 0:
        _open(A, pA, g, W, starts, inc_starts, inc_order, order, wA, wB)
    if B >= 0:
        _open(B, pB, g, W, starts, inc_starts, inc_order, order, wA, wB)
    n_touched = 0
    if removed >= 0:
        cc = casualty_of(removed)
        mark[cc] = g
        changed[n_touched] = cc
        n_touched += 1
        r_known[cc] = True
        t_known[cc] = True
        treated_at[cc] = P.treat_fixed[cc] if not np.isnan(P.treat_fixed[cc]) else np.inf
        _need(3 * cc + TRANSPORT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved, removed, g, W, starts,
              inc_order, order, wA, wB)
    # scan the re-timed parts until closed: list the casualties they touch, mark their rescue and
    # treat ends as not yet timed, and pull in every task that waits for one of those ends
    grew = True
    while grew:
        grew = False
        for i in range(gen[N_LISTS]):
            r = lists[i]
            if scanned[r] <= tail[r]:
                continue
            lo, hi = tail[r], scanned[r]
            scanned[r] = lo
            grew = True
            for s in range(starts[r] + lo, starts[r] + hi):
                code = order[s]
                cc = casualty_of(code)
                k = code - 3 * cc
                if mark[cc] != g:
                    mark[cc] = g
                    changed[n_touched] = cc
                    n_touched += 1
                    r_known[cc] = True
                    t_known[cc] = True
                if k == RESCUE:
                    r_known[cc] = False
                    _need(3 * cc + TREAT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved, removed, g, W,
                          starts, inc_order, order, wA, wB)
                    _need(3 * cc + TRANSPORT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved, removed, g, W,
                          starts, inc_order, order, wA, wB)
                elif k == TREAT:
                    t_known[cc] = False
                    _need(3 * cc + TRANSPORT, inc_starts, slot_owner, slot_of, A, pA, B, pB, moved, removed, g, W,
                          starts, inc_order, order, wA, wB)
    gen[N_TOUCHED] = n_touched
    n_lists = gen[N_LISTS]
    travel, site_loc, trapped, resp_hart, hosp_loc = P.travel, P.site_loc, P.trapped, P.resp_hart, P.hosp_loc
    now = P.scalars[0]
    load = P.scalars[1]
    handover = P.scalars[2]
    inf = np.inf
    # per re-timed list: next slot, free time and place after its unchanged head
    ptr, free, loc = W.ptr, W.free, W.loc
    for i in range(n_lists):
        r = lists[i]
        p = tail[r]
        ptr[r] = starts[r] + p
        if p == 0:
            free[r] = P.resp_avail[r] if pins[r] > 0 else P.resp_free[r]
            loc[r] = P.resp_loc[r]
        else:
            s_prev = inc_starts[r] + p - 1
            free[r] = Winc.end[s_prev]
            code = inc_order[s_prev]
            cc = casualty_of(code)
            loc[r] = hosp_loc[inc_hosp[cc]] if code - 3 * cc == TRANSPORT else site_loc[cc]
    # go round the re-timed lists until none can advance
    rescue_dur, treat_dur, t_start, t_end = P.rescue_dur, P.treat_dur, W.start, W.end
    progress = True
    while progress:
        progress = False
        for i in range(n_lists):
            r = lists[i]
            end_r = starts[r + 1]
            first = ptr[r]
            # as in schedule.schedule: the list's position, clock and place in registers, and
            # indices unsigned (Numba tests a signed one for a negative index)
            s = first
            f = free[r]
            here = np.uint64(loc[r])
            while s < end_r:
                code = order[s]
                signed = casualty_of(code)
                k = code - 3 * signed
                cc = np.uint64(signed)
                site = np.uint64(site_loc[cc])
                arrive = f + travel[here, site]
                if arrive < now:  # as in schedule.schedule
                    arrive = now
                if k == RESCUE:
                    start = arrive
                    end = start + rescue_dur[cc]
                    rescued[cc] = end
                    r_known[cc] = True
                    here = site
                elif k == TREAT:
                    start = arrive
                    if trapped[cc] and not resp_hart[r]:
                        if not r_known[cc]:
                            break
                        if rescued[cc] > start:
                            start = rescued[cc]
                    end = start + treat_dur[cc]
                    treated_at[cc] = end
                    t_known[cc] = True
                    here = site
                else:
                    if not (r_known[cc] and t_known[cc]):
                        break
                    start = arrive
                    if trapped[cc] and rescued[cc] > start:
                        start = rescued[cc]
                    ta = treated_at[cc]
                    if ta < inf and ta > start:
                        start = ta
                    dest = np.uint64(hosp_loc[hosp[cc]])
                    arrive_h = start + load + travel[site, dest]
                    end = arrive_h + handover
                    pickup[cc] = start
                    arrival[cc] = arrive_h
                    here = dest
                t_start[s] = start
                t_end[s] = end
                f = end
                s += 1
            if s > first:
                progress = True
                ptr[r] = s
                free[r] = f
                loc[r] = np.int64(here)
    n_shift = n_shift_inc
    for i in range(n_lists):
        r = lists[i]
        if ptr[r] < starts[r + 1]:
            return CYCLE
        old_last = Winc.free[r]
        new_last = free[r] if starts[r + 1] > starts[r] else -inf
        if inc_starts[r + 1] > inc_starts[r] and old_last > P.resp_shift[r] + SHIFT_TOL:
            n_shift -= 1
        if new_last > P.resp_shift[r] + SHIFT_TOL:
            n_shift += 1
    return SHIFT if n_shift > 0 else FEASIBLE


@njit(**JIT)
def count_shift(P, starts, Winc):
    """How many responders end their last task after their shift (incumbent, fully timed)."""
    P, starts, Winc = borrow((P, starts, Winc))
    n = 0
    for r in range(starts.shape[0] - 1):
        if starts[r + 1] > starts[r] and Winc.free[r] > P.resp_shift[r] + SHIFT_TOL:
            n += 1
    return n


@njit(**JIT)
def adopt(P, inc_starts, starts, pins, Winc, W):
    """Make ``Winc`` the exact timing of the candidate ``starts`` that ``W`` scored locally.

    Instead of a full re-evaluation after an accepted move: ``W`` equals ``Winc`` except for the
    casualties in ``W.touched`` and the tails of the re-timed lists, so only those, the hospitals'
    tallies and the slots of lists that moved in the flat arrays are copied.
    ``inc_starts`` is the incumbent's layout before the move.
    """
    P, inc_starts, starts, pins, Winc, W = borrow((P, inc_starts, starts, pins, Winc, W))
    gen = W.gen
    g = gen[GEN]
    _copy_casualties(Winc, W, W.touched, gen[N_TOUCHED])
    Winc.count[:] = W.count
    Winc.over[:] = W.over
    Winc.gen[VERSION] += 1
    if W.gen[SYNC_IDENT] == Winc.gen[IDENT]:
        # W now equals Winc everywhere but for the move's hospitals, which the next ``sync``
        # takes from the plan's, the new ones by then
        W.gen[SYNC_VERSION] = Winc.gen[VERSION]
    n_resp = starts.shape[0] - 1
    # first gather every moved or re-timed list's slots into W in the new layout (W already has
    # the re-timed tails), then copy them over: Winc is only read before it is written
    for r in range(n_resp):
        retimed = W.rmark[r] == g
        if starts[r] == inc_starts[r] and not retimed:
            continue
        head = W.tail[r] if retimed else starts[r + 1] - starts[r]
        for j in range(head):
            W.start[starts[r] + j] = Winc.start[inc_starts[r] + j]
            W.end[starts[r] + j] = Winc.end[inc_starts[r] + j]
    for r in range(n_resp):
        retimed = W.rmark[r] == g
        if starts[r] == inc_starts[r] and not retimed:
            continue
        for s in range(starts[r], starts[r + 1]):
            Winc.start[s] = W.start[s]
            Winc.end[s] = W.end[s]
        if retimed:
            # as ``schedule`` leaves it: the last task's end, or the list's start time
            if starts[r + 1] > starts[r]:
                Winc.free[r] = W.end[starts[r + 1] - 1]
            else:
                Winc.free[r] = P.resp_avail[r] if pins[r] > 0 else P.resp_free[r]
