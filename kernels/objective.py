"""The objective of SPEC §7: expected fatalities, hospital overflow, casualty minutes.

Each casualty's health is walked through its timeline, one maximal segment per environment,
switching to the treated chain at ``treated_at``. Hospitals admit in arrival order (ties: casualty
index); the pass that scores every casualty also chains each hospital's admissions, and only
hospitals that receive more casualties than beds are walked and sorted.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .admissions import overflow_beyond, sort_by_arrival
from .borrow import borrow
from .config import JIT
from .health import (TABLE, TABLE_BITS, dead_after, dead_by_steps, dead_from_start, dead_long, dead_on_ride, propagate,
                     propagate_start)
from .layout import (
    ADM,
    DEAD,
    ENV_AMBULANCE,
    ENV_CCS,
    ENV_CCS_TREATED,
    ENV_TRAPPED,
    ENV_TRAPPED_TREATED,
    IN_TRANSIT,
)


@njit(**JIT, inline="always")
def _segment(h0, h1, h2, h3, env, env_treated, t, end, treated_at, small, big, table, row, row_env):
    """Propagate from ``t`` to ``end`` in ``env``, switching to ``env_treated`` at ``treated_at``.

    While the health is still as observed, ``row`` is the casualty's row of the start table,
    made for environment ``row_env`` (-1: none, or no longer as observed). Returns the health,
    the new time and the ``row_env`` for the next segment.
    """
    if end <= t:
        return h0, h1, h2, h3, t, row_env
    if treated_at <= t:
        h0, h1, h2, h3 = propagate_start(h0, h1, h2, h3, env_treated, end - t, small, big, table,
                                         row if row_env == env_treated else -1)
    elif treated_at >= end:
        h0, h1, h2, h3 = propagate_start(h0, h1, h2, h3, env, end - t, small, big, table,
                                         row if row_env == env else -1)
    else:
        h0, h1, h2, h3 = propagate_start(h0, h1, h2, h3, env, treated_at - t, small, big, table,
                                         row if row_env == env else -1)
        h0, h1, h2, h3 = propagate(h0, h1, h2, h3, env_treated, end - treated_at, small, big)
    return h0, h1, h2, h3, end, -1


@njit(**JIT, inline="always")
def pdead_at_arrival(H, c, t, trapped, rescued, treated_at, pickup, arrival, small, big, table, row, row_env, ride,
                     start_ride, steps, long, site, hosp):
    """``p_dead`` at ``arrival`` of casualty ``c`` with health ``H[c]`` observed at ``t`` (not in
    transit); ``row`` is its row of the start ``table``, made for environment ``row_env``.

    Picked up at ``site`` for hospital ``hosp``, its ride is ``load + travel`` minutes long,
    whatever the plan, so its last segment is read off ``ride`` (``health.dead_on_ride``): a full
    evaluation of the London example about a tenth shorter. The ride is the schedule's
    ``arrival - pickup`` to rounding (``(pickup + load) + travel - pickup``), and ``P(δ)`` is
    continuous in ``δ``, so ``p_dead`` is the same to rounding too (about 1e-16).

    The wait at the site before the ride, shorter than the power table, is read off with the
    ride: off ``start_ride`` when it is the casualty's first segment and its row is there
    (``health.dead_from_start``), else off ``steps`` (``health.dead_by_steps``). Either table
    may be empty (``engine.problem.RIDE_TABLES_MAX_BYTES``); the segment is then propagated.
    A longer wait, ``TABLE·q`` minutes and ``r`` more with ``1 <= q <=`` what ``long`` holds, has
    its ``r`` minutes propagated (off the start row if it is the first segment) and the rest read
    off ``long`` with the ride (``health.dead_long``).
    """
    h0, h1, h2, h3 = H[c, 0], H[c, 1], H[c, 2], H[c, 3]
    if trapped:
        h0, h1, h2, h3, t, row_env = _segment(h0, h1, h2, h3, ENV_TRAPPED, ENV_TRAPPED_TREATED, t, rescued,
                                              treated_at, small, big, table, row, row_env)
    if pickup > t:  # _segment at the site, its last piece read off with the ride
        env = ENV_CCS
        if treated_at <= t:
            env = ENV_CCS_TREATED
        elif treated_at < pickup:
            h0, h1, h2, h3 = propagate_start(h0, h1, h2, h3, ENV_CCS, treated_at - t, small, big, table,
                                             row if row_env == ENV_CCS else -1)
            t, env, row_env = treated_at, ENV_CCS_TREATED, -1
        delta = pickup - t
        if delta < TABLE - 1:
            if row_env == env and np.uint64(row) < np.uint64(start_ride.shape[0]):  # (nor is a row of -1)
                return dead_from_start(start_ride, np.uint64(row), site, hosp, delta)
            if steps.shape[1] > 0:
                return dead_by_steps(h0, h1, h2, h3, steps, np.uint64(env == ENV_CCS_TREATED), site, hosp, delta)
        else:
            q = np.uint64(delta) >> np.uint64(TABLE_BITS)
            if q - np.uint64(1) < np.uint64(long.shape[3]):  # 1 <= q (q = 0 wraps round) <= the table's
                # exact (Sterbenz): TABLE·q <= delta < TABLE·(q + 1) <= 2·TABLE·q
                rest = delta - np.float64(q << np.uint64(TABLE_BITS))
                h0, h1, h2, h3 = propagate_start(h0, h1, h2, h3, env, rest, small, big, table,
                                                 row if row_env == env else -1)
                return dead_long(h0, h1, h2, h3, long, np.uint64(env == ENV_CCS_TREATED), site, hosp,
                                 q - np.uint64(1))
        h0, h1, h2, h3 = propagate_start(h0, h1, h2, h3, env, delta, small, big, table,
                                         row if row_env == env else -1)
        return dead_on_ride(h0, h1, h2, h3, ride, site, hosp)
    if t == pickup:
        return dead_on_ride(h0, h1, h2, h3, ride, site, hosp)
    # picked up before the observation or the rescue: not a plan the schedule makes (every
    # task starts at the model's time or later), kept exact all the same
    return dead_after(h0, h1, h2, h3, ENV_AMBULANCE, arrival - t, small, big)


@njit(**JIT, inline="always")
def objective(P, hosp, W):
    """Return ``(F, overflow, T)`` for a schedule already in ``W``; fills ``W.pdead``.

    In-transit casualties get their arrival copied into ``W.arrival`` so that admission order
    treats them like the plan's own arrivals.
    """
    status, obs, h0, trapped = P.status, P.obs, P.h0, P.trapped
    small, big, table, start_row, start_env = P.small, P.big, P.start_table, P.start_row, P.start_env
    ride, start_ride, steps, long, site_loc = P.ride, P.start_ride, P.ride_steps, P.ride_long, P.site_loc
    rescued, treated_at, pickup, arrival, pdead = W.rescued, W.treated_at, W.pickup, W.arrival, W.pdead
    # each hospital's admissions are counted and chained (``head``/``nxt``, from the highest index
    # down) as they are scored, for ``_chained_overflows``
    count, head, nxt = W.count, W.head, W.nxt
    n_cas = h0.shape[0]
    F = P.scalars[3]
    T = 0.0
    count[:] = 0
    head[:] = -1
    for c in range(n_cas):
        st = status[c]
        if st == DEAD:
            pdead[c] = 1.0
            F += 1.0
            continue
        if st == IN_TRANSIT:
            arrival[c] = P.transit_arrival[c]
            dest = np.uint64(P.transit_hosp[c])  # unsigned, as in health.dead_after
            count[dest] += 1
            nxt[c] = head[dest]
            head[dest] = c
            p = dead_after(h0[c, 0], h0[c, 1], h0[c, 2], h0[c, 3], ENV_AMBULANCE, arrival[c] - obs[c],
                           small, big)
        else:
            if np.isnan(arrival[c]):
                pdead[c] = np.nan  # no transport yet: a partial plan under construction
                continue
            dest = np.uint64(hosp[c])
            count[dest] += 1
            nxt[c] = head[dest]
            head[dest] = c
            p = pdead_at_arrival(h0, c, obs[c], trapped[c], rescued[c], treated_at[c], pickup[c], arrival[c],
                                 small, big, table, start_row[c], start_env[c], ride, start_ride, steps, long,
                                 np.uint64(site_loc[c]), dest)
        pdead[c] = p
        F += p
        T += arrival[c] - obs[c]
    over, need = W.over, W.need
    any_need = False
    for h in range(count.shape[0]):
        need[h] = count[h] > P.hosp_cap[h]
        any_need |= need[h]
        over[h] = 0.0
    if any_need:
        _chained_overflows(P, arrival, pdead, W)
    overflow = 0.0
    for h in range(count.shape[0]):
        overflow += over[h]
    return F + overflow, overflow, T


#: Hospitals admitting at most this many are put in arrival order by counting ranks, above it by
#: ``admissions.sort_by_arrival``.
RANK_SORT_MAX = 16


@njit(**JIT, inline="always")
def _rank_by_arrival(group, lo, hi, arrival, a, out):
    """``out[lo:hi]``: ``group[lo:hi]`` (in index order) stably by arrival, each placed at its
    rank. Quadratic, but with no branch on the data: an insertion sort's exits are mispredicted
    about once an admission when every plan is different (a batch, a search). The arrivals are
    copied side by side into ``a`` first, so the counts vectorise instead of gathering."""
    m = hi - lo
    for i in range(m):
        a[i] = arrival[group[lo + i]]
    for i in range(m):
        x = a[i]
        r = 0
        for j in range(i):  # listed before i: a lower index, so first on a tie
            r += a[j] <= x
        for j in range(i + 1, m):
            r += a[j] < x
        out[lo + r] = group[lo + i]


@njit(**JIT, inline="always")
def _hospital_overflow(group, lo, hi, arrival, scratch, order, beds, risk, pdead):
    """Overflow of one hospital admitting ``group[lo:hi]`` (in index order), put in arrival order."""
    if hi - lo <= RANK_SORT_MAX:
        _rank_by_arrival(group, lo, hi, arrival, scratch, order)
        return overflow_beyond(order[lo:hi], hi - lo, beds, risk, pdead)
    sort_by_arrival(group, lo, hi, arrival)
    return overflow_beyond(group[lo:hi], hi - lo, beds, risk, pdead)


@njit(**JIT, inline="always")
def _chained_overflows(P, arrival, pdead, W):
    """``overflows`` for the full objective, which chained each hospital's admissions as it
    scored them: only the hospitals that need it are walked, with no pass over every casualty
    and no call (which passes the problem's and workspace's arrays). Over 2 000 random-hospital
    London plans, 0.93x the time of a full evaluation calling ``overflows``."""
    need, head, nxt, group, order, over, count = W.need, W.head, W.nxt, W.buf, W.wait_rescue, W.over, W.count
    W.gen[ADM] = -1
    scratch = W.adm.view(np.float64)
    for h in range(need.shape[0]):
        if need[h]:
            m = count[h]
            i = m - 1
            c = head[h]
            while c >= 0:  # the chain runs from the highest index down
                group[i] = c
                i -= 1
                c = nxt[c]
            over[h] = _hospital_overflow(group, 0, m, arrival, scratch, order, P.hosp_cap[h], P.hosp_risk[h], pdead)


@njit(**JIT)
def overflows(P, hosp, arrival, pdead, W):
    """``W.over[h]`` for every hospital with ``W.need[h]``: overflow fatalities, admissions beyond
    its beds in arrival order (SPEC §7). ``W.count`` must hold every hospital's admissions.

    One pass groups every admission by hospital, each group in casualty index order, with no
    branch on which hospitals need it (half of them did, unpredictably, in a batch of random
    plans); each group that needs it is then ordered stably by arrival, so equal arrivals stay
    in index order, as SPEC §7 breaks ties. Threading lists through only the hospitals that
    need it and insertion-sorting them, 10 000 different London plans took 1.15x as long to
    evaluate (schedule and objective).

    The admission order ``W.adm`` is scratch here (its arrivals, as floats: the workspace has no
    float array to spare, and one more array slowed every move); it is marked stale.
    """
    P, hosp, arrival, pdead, W = borrow((P, hosp, arrival, pdead, W))
    status, transit_hosp = P.status, P.transit_hosp
    need, ends, group, order, over, count = W.need, W.head, W.nxt, W.buf, W.over, W.count
    W.gen[ADM] = -1
    scratch = W.adm.view(np.float64)
    n_hosp = need.shape[0]
    o = 0
    for h in range(n_hosp):  # each hospital's group starts where the one before ends
        ends[h] = o
        o += count[h]
    for c in range(status.shape[0]):  # in index order: a stable sort by arrival keeps ties so
        st = status[c]
        if st == DEAD or np.isnan(arrival[c]):
            continue
        h = transit_hosp[c] if st == IN_TRANSIT else hosp[c]
        group[ends[h]] = c
        ends[h] += 1
    lo = 0
    for h in range(n_hosp):
        hi = ends[h]
        if need[h]:
            over[h] = _hospital_overflow(group, lo, hi, arrival, scratch, order, P.hosp_cap[h], P.hosp_risk[h],
                                         pdead)
        lo = hi
