"""The exact timing rules of SPEC §6 over a solution array.

Responders are advanced one task at a time from a work stack. A task that must wait for another
responder's rescue or treatment blocks its responder until that task is timed, which pushes the
blocked responder back on the stack; so every task is timed once, whatever order the waits
resolve in. Responders still blocked when the stack empties wait on each other: a cycle.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .layout import CYCLE, FEASIBLE, RESCUE, SHIFT, TREAT

SHIFT_TOL = 1e-9


@njit(**JIT, inline="always")
def _wake(r, c, order, starts, W, top):
    """Push responder ``r`` if it is blocked on a task of casualty ``c``; returns the new top."""
    if r >= 0 and W.blocked[r] and W.ptr[r] < starts[r + 1] and order[W.ptr[r]] // 3 == c:
        W.blocked[r] = False
        W.stack[top] = r
        top += 1
    return top


@njit(**JIT)
def schedule(P, starts, order, hosp, pins, W):
    """Fill ``W`` with every task's start and end and every casualty's times; return a status.

    Returns FEASIBLE, CYCLE (no times for the tasks caught in it) or SHIFT (a task ends after its
    responder's shift; all times are still set).
    """
    n_cas = P.h0.shape[0]
    n_resp = P.resp_loc.shape[0]
    inf = np.inf
    for c in range(n_cas):
        W.owner_treat[c] = -1
        W.owner_transport[c] = -1
        W.pickup[c] = np.nan
        W.arrival[c] = np.nan
        if P.trapped[c]:
            W.rescued[c] = P.rescue_fixed[c]  # nan until the planned rescue is timed
            W.r_known[c] = not P.needs_rescue[c]
        else:
            W.rescued[c] = -inf
            W.r_known[c] = True
        W.t_known[c] = True
        if P.treated[c]:
            W.treated_at[c] = -inf
        elif not np.isnan(P.treat_fixed[c]):
            W.treated_at[c] = P.treat_fixed[c]
        else:
            W.treated_at[c] = inf
    for r in range(n_resp):
        for s in range(starts[r], starts[r + 1]):
            t = order[s]
            c = t // 3
            k = t - 3 * c
            if k == TREAT:
                W.owner_treat[c] = r
                W.t_known[c] = False
            elif k != RESCUE:
                W.owner_transport[c] = r
    top = 0
    for r in range(n_resp - 1, -1, -1):
        W.ptr[r] = starts[r]
        W.free[r] = P.resp_avail[r] if pins[r] > 0 else P.resp_free[r]
        W.loc[r] = P.resp_loc[r]
        W.blocked[r] = False
        W.stack[top] = r
        top += 1
    load = P.scalars[1]
    handover = P.scalars[2]
    while top > 0:
        top -= 1
        r = W.stack[top]
        end_r = starts[r + 1]
        while W.ptr[r] < end_r:
            s = W.ptr[r]
            t = order[s]
            c = t // 3
            k = t - 3 * c
            site = P.site_loc[c]
            arrive = W.free[r] + P.travel[W.loc[r], site]
            if k == RESCUE:
                start = arrive
                end = start + P.rescue_dur[c]
                W.rescued[c] = end
                W.r_known[c] = True
                top = _wake(W.owner_treat[c], c, order, starts, W, top)
                top = _wake(W.owner_transport[c], c, order, starts, W, top)
                W.loc[r] = site
            elif k == TREAT:
                start = arrive
                if P.trapped[c] and not P.resp_hart[r]:
                    if not W.r_known[c]:
                        W.blocked[r] = True
                        break
                    if W.rescued[c] > start:
                        start = W.rescued[c]
                end = start + P.treat_dur[c]
                W.treated_at[c] = end
                W.t_known[c] = True
                top = _wake(W.owner_transport[c], c, order, starts, W, top)
                W.loc[r] = site
            else:
                if not (W.r_known[c] and W.t_known[c]):
                    W.blocked[r] = True
                    break
                start = arrive
                if P.trapped[c] and W.rescued[c] > start:
                    start = W.rescued[c]
                ta = W.treated_at[c]
                if ta < inf and ta > start:
                    start = ta
                dest = P.hosp_loc[hosp[c]]
                arrival = start + load + P.travel[site, dest]
                end = arrival + handover
                W.pickup[c] = start
                W.arrival[c] = arrival
                W.loc[r] = dest
            W.start[s] = start
            W.end[s] = end
            W.free[r] = end
            W.ptr[r] = s + 1
    status = FEASIBLE
    for r in range(n_resp):
        if W.ptr[r] < starts[r + 1]:
            return CYCLE
        if starts[r + 1] > starts[r] and W.end[starts[r + 1] - 1] > P.resp_shift[r] + SHIFT_TOL:
            status = SHIFT
    return status
