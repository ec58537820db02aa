"""Delta evaluation: score a candidate against the incumbent, recomputing only what changed.

Only the tails of the touched lists are re-timed where that is exact (``local.py``); the costly
part of the objective is then reused: a casualty whose four times are unchanged keeps the incumbent's ``p_dead``
(bit for bit: the same function on the same inputs), and a hospital none of whose admissions
changed keeps its overflow. Sums are then taken in the same order as ``objective``, so a delta
score equals a full evaluation exactly, not just within tolerance.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .layout import CYCLE, DEAD, IN_TRANSIT
from .local import FALLBACK, LOCAL, local_schedule
from .moves import apply_move
from .objective import hospital_overflow, objective, pdead_at_arrival
from .schedule import schedule


@njit(**JIT)
def objective_from(P, hosp, W, hosp_inc, Winc):
    """``objective(P, hosp, W)`` reusing the incumbent's per-casualty and per-hospital results."""
    status, obs, h0, trapped = P.status, P.obs, P.h0, P.trapped
    small, big = P.small, P.big
    rescued, treated_at, pickup, arrival, pdead = W.rescued, W.treated_at, W.pickup, W.arrival, W.pdead
    o_rescued, o_treated, o_pickup, o_arrival, o_pdead = (Winc.rescued, Winc.treated_at, Winc.pickup,
                                                          Winc.arrival, Winc.pdead)
    count, dirty = W.count, W.dirty
    n_hosp = count.shape[0]
    count[:] = 0
    dirty[:] = False
    F = P.scalars[3]
    T = 0.0
    for c in range(h0.shape[0]):
        st = status[c]
        if st == DEAD:
            pdead[c] = 1.0
            F += 1.0
            continue
        if st == IN_TRANSIT:
            arrival[c] = P.transit_arrival[c]
            count[P.transit_hosp[c]] += 1
            p = o_pdead[c]
        else:
            if np.isnan(arrival[c]):
                pdead[c] = np.nan  # no transport yet: a partial plan under construction
                if not np.isnan(o_arrival[c]):
                    dirty[hosp_inc[c]] = True
                continue
            dest = hosp[c]
            count[dest] += 1
            if (rescued[c] == o_rescued[c] and treated_at[c] == o_treated[c]
                    and pickup[c] == o_pickup[c] and arrival[c] == o_arrival[c]):
                p = o_pdead[c]
                if dest != hosp_inc[c]:
                    dirty[dest] = True
                    dirty[hosp_inc[c]] = True
            else:
                p = pdead_at_arrival(h0, c, obs[c], trapped[c], rescued[c], treated_at[c], pickup[c],
                                     arrival[c], small, big)
                dirty[dest] = True
                if hosp_inc[c] >= 0:
                    dirty[hosp_inc[c]] = True
        pdead[c] = p
        F += p
        T += arrival[c] - obs[c]
    over = W.over
    for h in range(n_hosp):
        if count[h] <= P.hosp_cap[h]:
            over[h] = 0.0
        elif dirty[h]:
            over[h] = hospital_overflow(status, P.transit_hosp, hosp, arrival, pdead, W.buf, h,
                                        P.hosp_cap[h], P.hosp_risk[h])
        else:
            over[h] = Winc.over[h]
    overflow = 0.0
    for h in range(n_hosp):
        overflow += over[h]
    return F + overflow, overflow, T


@njit(**JIT)
def objective_touched(P, hosp, W, hosp_inc, Winc, inc_F, inc_overflow, inc_T):
    """The objective after a locally re-timed move: only the touched casualties are visited.

    ``F`` and ``T`` are the incumbent's, corrected by each touched casualty's change, so they
    agree with a full evaluation to rounding (about 1e-15), not bit for bit.
    """
    status, obs, h0, trapped = P.status, P.obs, P.h0, P.trapped
    small, big = P.small, P.big
    rescued, treated_at, pickup, arrival, pdead = W.rescued, W.treated_at, W.pickup, W.arrival, W.pdead
    o_rescued, o_treated, o_pickup, o_arrival, o_pdead = (Winc.rescued, Winc.treated_at, Winc.pickup,
                                                          Winc.arrival, Winc.pdead)
    count, dirty, over = W.count, W.dirty, W.over
    pdead[:] = o_pdead
    count[:] = Winc.count
    over[:] = Winc.over
    dirty[:] = False
    touched = W.touched
    dF = 0.0
    dT = 0.0
    for i in range(W.gen[1]):
        c = touched[i]
        if status[c] != 0:  # dead or in transit: nothing of theirs is planned
            continue
        if not np.isnan(o_arrival[c]):
            dF -= o_pdead[c]
            dT -= o_arrival[c] - obs[c]
            count[hosp_inc[c]] -= 1
            dirty[hosp_inc[c]] = True
        if np.isnan(arrival[c]):
            pdead[c] = np.nan
            continue
        if (rescued[c] == o_rescued[c] and treated_at[c] == o_treated[c]
                and pickup[c] == o_pickup[c] and arrival[c] == o_arrival[c]):
            p = o_pdead[c]
        else:
            p = pdead_at_arrival(h0, c, obs[c], trapped[c], rescued[c], treated_at[c], pickup[c],
                                 arrival[c], small, big)
        pdead[c] = p
        dF += p
        dT += arrival[c] - obs[c]
        count[hosp[c]] += 1
        dirty[hosp[c]] = True
    overflow = 0.0
    for h in range(count.shape[0]):
        if dirty[h]:
            if count[h] <= P.hosp_cap[h]:
                over[h] = 0.0
            else:
                over[h] = hospital_overflow(status, P.transit_hosp, hosp, arrival, pdead, W.buf, h,
                                            P.hosp_cap[h], P.hosp_risk[h])
        overflow += over[h]
    return (inc_F - inc_overflow) + dF + overflow, overflow, inc_T + dT


@njit(**JIT)
def evaluate_move(P, kind, a, b, c, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of,
                  n_shift_inc, cs, co, ch, W):
    """Score the incumbent after move ``(kind, a, b, c)``; the candidate is left in ``cs, co, ch``.

    Tails of the touched lists are re-timed locally when that is exact (``local_schedule``), the
    whole schedule otherwise; the objective then reuses every unchanged casualty and hospital.
    ``inc`` is the incumbent's ``[F, overflow, T, status]``. Returns ``(F, overflow, T, status)`` as
    a full evaluation of the candidate would: exactly after a full re-timing, to rounding
    (about 1e-15) after a local one.
    """
    apply_move(kind, a, b, c, starts, order, hosp, cs, co, ch)
    inc_status = int(inc[3])
    status = FALLBACK
    W.gen[LOCAL] = 0
    if inc_status != CYCLE:
        status = local_schedule(P, kind, a, b, c, starts, order, hosp, slot_owner, slot_of, n_shift_inc,
                                cs, co, ch, pins, Winc, W)
        if status != FALLBACK and status != CYCLE:
            F, overflow, T = objective_touched(P, ch, W, hosp, Winc, inc[0], inc[1], inc[2])
            W.gen[LOCAL] = 1
            return F, overflow, T, status
    if status == FALLBACK:
        status = schedule(P, cs, co, ch, pins, W)
    if status == CYCLE:
        return np.nan, np.nan, np.nan, status
    if inc_status == CYCLE:
        # an incumbent caught in a cycle has no p_dead to reuse
        F, overflow, T = objective(P, ch, W)
    else:
        F, overflow, T = objective_from(P, ch, W, hosp, Winc)
    return F, overflow, T, status
