"""Each hospital's admissions in order, kept with an incumbent, so that a move's overflow is a merge.

SPEC §7 admits a hospital's casualties in arrival order (ties: casualty index) and counts as
overflow everyone beyond its beds. ``objective.overflows`` finds that order from scratch: a pass
over every casualty and a sort per hospital. A move changes a few casualties' arrivals, so while
moves are scored against an incumbent, it keeps every hospital's admissions sorted (hospital
``h``'s are ``W.adm[W.adm_start[h]:W.adm_start[h + 1]]``), and a move's admissions at ``h`` are
the merge of that group without the casualties the move touched and the touched ones now bound
for ``h``: O(that hospital's admissions). Both ways sum the same casualties in the same order
(``overflow_beyond``), so the overflow is the same to the bit.

The order belongs to one timing of the incumbent: ``W.gen[ADM]`` is the ``W.gen[VERSION]`` it was
built at. Once the version moves on (a full evaluation), moves fall back to ``overflows`` until
``ensure_admissions`` builds it again; annealing carries it over each accepted move (``readmit``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .layout import ACTIVE, ADM, DEAD, GEN, IN_TRANSIT, N_TOUCHED, VERSION


@njit(**JIT, inline="always")
def _before(arrival, d, c):
    """Whether casualty ``d`` is admitted before ``c``: earlier arrival, then lower index."""
    return arrival[d] < arrival[c] or (arrival[d] == arrival[c] and d < c)


@njit(**JIT, inline="always")
def sort_by_arrival(order, lo, hi, arrival):
    """Sort casualties ``order[lo:hi]`` stably by arrival: listed in index order, ties stay so.

    A few admissions are sorted in place by insertion (no allocation); many by a merge sort.
    """
    if hi - lo <= 64:
        for j in range(lo + 1, hi):
            c = order[j]
            a = arrival[c]
            i = j
            while i > lo and arrival[order[i - 1]] > a:
                order[i] = order[i - 1]
                i -= 1
            order[i] = c
    else:
        members = order[lo:hi].copy()
        by_arrival = np.argsort(arrival[members], kind="mergesort")
        for i in range(hi - lo):
            order[lo + i] = members[by_arrival[i]]


@njit(**JIT, inline="always")
def overflow_beyond(order, n, beds, risk, pdead):
    """Overflow fatalities of a hospital admitting ``order[:n]`` in that order (SPEC §7): every
    admission beyond its ``beds``. One summation order for every caller, so one result."""
    total = 0.0
    for i in range(beds, n):
        total += (1.0 - pdead[order[i]]) * risk
    return total


@njit(**JIT)
def build_admissions(P, hosp, W):
    """Sort every hospital's admissions of the plan timed in ``W`` into ``W.adm``."""
    status, transit_hosp = P.status, P.transit_hosp
    arrival, adm, start, fill = W.arrival, W.adm, W.adm_start, W.head
    n_hosp = start.shape[0] - 1
    start[:] = 0
    for c in range(status.shape[0]):
        st = status[c]
        if st == DEAD or np.isnan(arrival[c]):
            continue
        start[(transit_hosp[c] if st == IN_TRANSIT else hosp[c]) + 1] += 1
    for h in range(n_hosp):
        start[h + 1] += start[h]
        fill[h] = start[h]
    for c in range(status.shape[0]):  # in index order: a stable sort by arrival keeps ties so
        st = status[c]
        if st == DEAD or np.isnan(arrival[c]):
            continue
        h = transit_hosp[c] if st == IN_TRANSIT else hosp[c]
        adm[fill[h]] = c
        fill[h] += 1
    for h in range(n_hosp):
        sort_by_arrival(adm, start[h], start[h + 1], arrival)
    W.gen[ADM] = W.gen[VERSION]


@njit(**JIT)
def ensure_admissions(P, hosp, W):
    """Build ``W``'s admission order unless it is already that of its current timing."""
    if W.gen[ADM] != W.gen[VERSION]:
        build_admissions(P, hosp, W)


@njit(**JIT, inline="always")
def has_admissions(W):
    return W.gen[ADM] == W.gen[VERSION]


@njit(**JIT, inline="always")
def merge_admissions(h, adm, start, arrival, hosp, status, touched, n_touched, mark, g, tmp, out, o):
    """Write hospital ``h``'s admissions after a move into ``out[o:]``; returns the end.

    ``adm``/``start`` are the incumbent's order; the move touched casualties ``touched[:n_touched]``
    (``mark[c] == g``), whose ``arrival`` and ``hosp`` are now the candidate's, everyone else's
    the incumbent's. ``tmp`` is scratch for the touched ones bound for ``h``.
    """
    k = 0
    for i in range(n_touched):
        c = touched[i]
        if status[c] != ACTIVE or np.isnan(arrival[c]) or hosp[c] != h:
            continue
        j = k
        while j > 0 and _before(arrival, c, tmp[j - 1]):
            tmp[j] = tmp[j - 1]
            j -= 1
        tmp[j] = c
        k += 1
    x, end, y = start[h], start[h + 1], 0
    while True:
        while x < end and mark[adm[x]] == g and status[adm[x]] == ACTIVE:  # re-sorted above
            x += 1
        if x < end and (y >= k or not _before(arrival, tmp[y], adm[x])):
            out[o] = adm[x]
            x += 1
        elif y < k:
            out[o] = tmp[y]
            y += 1
        else:
            return o
        o += 1


@njit(**JIT)
def readmit(P, hosp, Winc, W):
    """After an accepted move scored in ``W`` is adopted into ``Winc``: carry ``Winc``'s admission
    order over to the new timing (``hosp`` the plan's after the move).

    Only the hospitals the move's casualties left or joined (``W.dirty``) change their lists; while
    every hospital keeps its count, those are merged again in place, O(their admissions); else
    every list is rewritten, O(casualties) copying.
    """
    n_hosp = Winc.adm_start.shape[0] - 1
    adm, start = Winc.adm, Winc.adm_start
    new, new_start = W.adm, W.adm_start
    touched, n_touched, mark, g = W.touched, W.gen[N_TOUCHED], W.mark, W.gen[GEN]
    same = True
    for h in range(n_hosp):
        if W.count[h] != start[h + 1] - start[h]:
            same = False
    if same:
        for h in range(n_hosp):
            if W.dirty[h]:
                n = merge_admissions(h, adm, start, Winc.arrival, hosp, P.status, touched, n_touched, mark, g,
                                     W.nxt, new, 0)
                adm[start[h]:start[h] + n] = new[:n]
    else:
        o = 0
        for h in range(n_hosp):
            new_start[h] = o
            o = merge_admissions(h, adm, start, Winc.arrival, hosp, P.status, touched, n_touched, mark, g, W.nxt,
                                 new, o)
        new_start[n_hosp] = o
        adm[:o] = new[:o]
        start[:] = new_start
    Winc.gen[ADM] = Winc.gen[VERSION]
