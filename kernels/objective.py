"""The objective of SPEC §7: expected fatalities, hospital overflow, casualty minutes.

Each casualty's health is walked through its timeline, one maximal segment per environment,
switching to the treated chain at ``treated_at``. Hospitals admit in arrival order (ties: casualty
index); only hospitals that receive more casualties than beds are sorted, so the common case
costs one counting pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .health import propagate
from .layout import (
    DEAD,
    ENV_AMBULANCE,
    ENV_CCS,
    ENV_CCS_TREATED,
    ENV_TRAPPED,
    ENV_TRAPPED_TREATED,
    IN_TRANSIT,
)


@njit(**JIT, inline="always")
def _segment(h0, h1, h2, h3, env, env_treated, t, end, treated_at, P):
    """Propagate from ``t`` to ``end`` in ``env``, switching to ``env_treated`` at ``treated_at``."""
    if end <= t:
        return h0, h1, h2, h3, t
    if treated_at <= t:
        h0, h1, h2, h3 = propagate(h0, h1, h2, h3, env_treated, end - t, P.small, P.big, P.chains)
    elif treated_at >= end:
        h0, h1, h2, h3 = propagate(h0, h1, h2, h3, env, end - t, P.small, P.big, P.chains)
    else:
        h0, h1, h2, h3 = propagate(h0, h1, h2, h3, env, treated_at - t, P.small, P.big, P.chains)
        h0, h1, h2, h3 = propagate(h0, h1, h2, h3, env_treated, end - treated_at, P.small, P.big, P.chains)
    return h0, h1, h2, h3, end


@njit(**JIT)
def casualty_pdead(P, c, W):
    """``p_dead`` of casualty ``c`` at its arrival, from the times in ``W``."""
    h = P.h0[c]
    h0, h1, h2, h3 = h[0], h[1], h[2], h[3]
    t = P.obs[c]
    if P.status[c] == IN_TRANSIT:
        h0, h1, h2, h3 = propagate(h0, h1, h2, h3, ENV_AMBULANCE, P.transit_arrival[c] - t,
                                   P.small, P.big, P.chains)
        return h3
    ta = W.treated_at[c]
    if P.trapped[c]:
        h0, h1, h2, h3, t = _segment(h0, h1, h2, h3, ENV_TRAPPED, ENV_TRAPPED_TREATED, t,
                                     W.rescued[c], ta, P)
    h0, h1, h2, h3, t = _segment(h0, h1, h2, h3, ENV_CCS, ENV_CCS_TREATED, t, W.pickup[c], ta, P)
    h0, h1, h2, h3 = propagate(h0, h1, h2, h3, ENV_AMBULANCE, W.arrival[c] - t, P.small, P.big, P.chains)
    return h3


@njit(**JIT)
def objective(P, hosp, W):
    """Return ``(F, overflow, T)`` for a schedule already in ``W``; fills ``W.pdead``.

    In-transit casualties get their arrival copied into ``W.arrival`` so that admission order
    treats them like the plan's own arrivals.
    """
    n_cas = P.h0.shape[0]
    n_hosp = P.hosp_loc.shape[0]
    F = P.scalars[3]
    T = 0.0
    for h in range(n_hosp):
        W.count[h] = 0
    for c in range(n_cas):
        st = P.status[c]
        if st == DEAD:
            W.pdead[c] = 1.0
            F += 1.0
            continue
        if st == IN_TRANSIT:
            W.arrival[c] = P.transit_arrival[c]
            W.count[P.transit_hosp[c]] += 1
        else:
            W.count[hosp[c]] += 1
        p = casualty_pdead(P, c, W)
        W.pdead[c] = p
        F += p
        T += W.arrival[c] - P.obs[c]
    overflow = 0.0
    for h in range(n_hosp):
        if W.count[h] > P.hosp_cap[h]:
            overflow += _overflow(P, hosp, W, h)
    return F + overflow, overflow, T


@njit(**JIT)
def _overflow(P, hosp, W, h):
    """Overflow fatalities at hospital ``h``: admissions beyond its beds, in arrival order."""
    n = 0
    for c in range(P.h0.shape[0]):
        st = P.status[c]
        if st == DEAD:
            continue
        dest = P.transit_hosp[c] if st == IN_TRANSIT else hosp[c]
        if dest == h:
            W.buf[n] = c
            n += 1
    members = W.buf[:n]
    # A stable sort of casualties listed in index order breaks arrival ties by casualty index.
    order = np.argsort(W.arrival[members], kind="mergesort")
    total = 0.0
    risk = P.hosp_risk[h]
    for i in range(P.hosp_cap[h], n):
        c = members[order[i]]
        total += (1.0 - W.pdead[c]) * risk
    return total
