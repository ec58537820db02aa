"""Delta evaluation: score a candidate against the incumbent, recomputing only what changed.

Only what the move can change is re-timed (``local.py``), and only the casualties whose tasks were
re-timed are re-scored: one whose four times are unchanged keeps the incumbent's ``p_dead`` (bit
for bit: the same function on the same inputs), and a hospital none of whose admissions changed
keeps its overflow. ``F`` and ``T`` are the incumbent's corrected by the changes, so they agree
with a full evaluation to rounding (about 1e-15).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .admissions import chain_touched, has_admissions, overflow_after
from .config import JIT
from .evaluate import evaluate
from .layout import CYCLE, GEN, HOSP_A, HOSP_B, LOCAL, N_DIRTY, N_TOUCHED
from .local import local_schedule, sync
from .moves import HOSPITAL, HOSPITAL_SWAP, apply_move, candidate_view
from .objective import overflows, pdead_at_arrival


@njit(**JIT, inline="always")
def objective_touched(P, hosp, W, hosp_inc, Winc, inc_F, inc_overflow, inc_T):
    """The objective after a locally re-timed move: only the touched casualties are visited.

    ``W``'s hospital arrays must be the incumbent's (``local.sync``); the hospitals the
    touched casualties leave or join are listed in ``W.hlist[:N_DIRTY]``. ``F`` and ``T`` are the
    incumbent's, corrected by each touched casualty's change, so they agree with a full
    evaluation to rounding (about 1e-15), not bit for bit.
    """
    status, obs, h0, trapped = P.status, P.obs, P.h0, P.trapped
    small, big, table, start_row, start_env = P.small, P.big, P.start_table, P.start_row, P.start_env
    ride, start_ride, steps, long, site_loc = P.ride, P.start_ride, P.ride_steps, P.ride_long, P.site_loc
    rescued, treated_at, pickup, arrival, pdead = W.rescued, W.treated_at, W.pickup, W.arrival, W.pdead
    o_rescued, o_treated, o_pickup, o_arrival, o_pdead = (Winc.rescued, Winc.treated_at, Winc.pickup,
                                                          Winc.arrival, Winc.pdead)
    count, dirty, over, hlist = W.count, W.dirty, W.over, W.hlist
    n_dirty = 0
    touched = W.touched
    dF = 0.0
    dT = 0.0
    for i in range(W.gen[N_TOUCHED]):
        c = np.uint64(touched[i])  # indices unsigned, as in health.dead_after
        if status[c] != 0:  # dead or in transit: nothing of theirs is planned
            continue
        if not np.isnan(o_arrival[c]):
            dF -= o_pdead[c]
            dT -= o_arrival[c] - obs[c]
            dest = np.uint64(hosp_inc[c])
            count[dest] -= 1
            hlist[n_dirty] = dest  # listed once, without a branch: kept only if it was not dirty yet
            n_dirty += not dirty[dest]
            dirty[dest] = True
        if np.isnan(arrival[c]):
            pdead[c] = np.nan
            continue
        if (rescued[c] == o_rescued[c] and treated_at[c] == o_treated[c]
                and pickup[c] == o_pickup[c] and arrival[c] == o_arrival[c]):
            p = o_pdead[c]
        else:
            p = pdead_at_arrival(h0, c, obs[c], trapped[c], rescued[c], treated_at[c], pickup[c], arrival[c],
                                 small, big, table, start_row[c], start_env[c], ride, start_ride, steps, long,
                                 np.uint64(site_loc[c]), np.uint64(hosp[c]))
        pdead[c] = p
        dF += p
        dT += arrival[c] - obs[c]
        dest = np.uint64(hosp[c])
        count[dest] += 1
        hlist[n_dirty] = dest
        n_dirty += not dirty[dest]
        dirty[dest] = True
    W.gen[N_DIRTY] = n_dirty
    # every hospital in one pass, which vectorises: a walk of the list was slower at paper size,
    # where every touched casualty's hospital is listed (half of them)
    need, cap = W.need, P.hosp_cap
    any_need = False
    for h in range(count.shape[0]):
        need[h] = dirty[h] and count[h] > cap[h]
        any_need |= need[h]
        if dirty[h]:
            over[h] = 0.0
    if any_need and has_admissions(Winc):
        # the incumbent's overflow corrected for the touched casualties: merging them into the
        # admission order instead, O(its admissions), was half of a sweep at 10 000 casualties
        # the chains' links in the full schedule's scratch: one more workspace array made every
        # move at paper size slower, where no hospital needs it (by up to a tenth, alternating)
        first, links_out, links_in = W.head, W.wait_rescue, W.wait_ready
        chain_touched(hosp, hosp_inc, status, o_arrival, arrival, touched, W.gen[N_TOUCHED], hlist, n_dirty, need,
                      first, links_out, links_in)
        for i in range(n_dirty):
            h = hlist[i]
            if need[h]:
                over[h] = overflow_after(h, Winc.adm, Winc.adm_start, Winc.nxt, o_arrival, o_pdead, Winc.over[h],
                                         arrival, pdead, status, touched, first[h], links_out, links_in, W.mark,
                                         W.gen[GEN], P.hosp_cap[h], P.hosp_risk[h], W.nxt, W.buf)
    elif any_need:
        # no order kept (an incumbent not prepared by incumbent_tables): sorted from scratch, in
        # a call passing P and W that costs most of a microsecond, so only when a hospital needs it
        overflows(P, hosp, arrival, pdead, W)
    overflow = 0.0
    for h in range(count.shape[0]):
        overflow += over[h]
    return (inc_F - inc_overflow) + dF + overflow, overflow, inc_T + dT


def _evaluate_move(P, kind, a, b, c, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of,
                  n_shift_inc, cs, co, ch, W):
    """Score the incumbent after move ``(kind, a, b, c)``.

    Only what the move can change is re-timed (``local_schedule``) and re-scored
    (``objective_touched``); an incumbent caught in a wait cycle is re-evaluated in full.
    ``inc`` is the incumbent's ``[F, overflow, T, status]``. Returns ``(F, overflow, T, status)`` as
    a full evaluation of the candidate would: the times exactly, ``F`` and ``T`` to rounding (about
    1e-15), exactly after a full re-timing.

    The candidate is not copied whole (that would cost O(plan) per move): ``cs`` gets its starts,
    ``co`` the lists it re-timed; its hospitals are ``W.hosp``, kept equal to ``hosp`` but for
    the move's casualties, and ``ch`` is written only by a full evaluation. Call ``apply_move``
    for the whole candidate (to take it over, say).

    Its parts are inlined (``inline="always"``), which made a move at paper size about a quarter
    faster than calling them (``python -m bench.ab_kernels``). It is inlined itself in two places
    only, the sweeps' scoring loop (``kernels.score``) and the annealing loop, where the call
    had cost half a step (3.20 against 1.59 µs, for 37 % more compile time). Inlined into every
    caller, the kernels took 21 minutes to compile instead of 5.
    """
    W.gen[LOCAL] = 0
    if int(inc[3]) != CYCLE:
        wA, wB = candidate_view(kind, a, b, c, starts, order, slot_owner, cs, co)
        sync(W, Winc, hosp)
        hc = W.hosp  # the incumbent's but for a hospital move's casualties (put back by the next sync)
        if kind == HOSPITAL or kind == HOSPITAL_SWAP:
            if kind == HOSPITAL:
                hc[a] = b
                W.gen[HOSP_A] = a
            else:
                hc[a], hc[b] = hosp[b], hosp[a]
                W.gen[HOSP_A] = a
                W.gen[HOSP_B] = b
        status = local_schedule(P, kind, a, b, c, starts, order, hosp, slot_owner, slot_of, n_shift_inc,
                                cs, co, hc, pins, Winc, W, wA, wB)
        if status == CYCLE:
            return np.nan, np.nan, np.nan, status
        F, overflow, T = objective_touched(P, hc, W, hosp, Winc, inc[0], inc[1], inc[2])
        W.gen[LOCAL] = 1
        return F, overflow, T, status
    # an incumbent caught in a wait cycle has no times or p_dead to reuse
    apply_move(kind, a, b, c, starts, order, hosp, cs, co, ch)
    return evaluate(P, cs, co, ch, pins, W)


evaluate_move = njit(**JIT)(_evaluate_move)
#: The same function for the two loops that inline it (``kernels.score``, ``search._anneal``).
evaluate_move_inline = njit(**JIT, inline="always")(_evaluate_move)
