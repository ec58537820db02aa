"""Each hospital's admissions in order, kept with an incumbent, so that a move's overflow is a correction.

SPEC §7 admits a hospital's casualties in arrival order (ties: casualty index) and counts as
overflow everyone beyond its beds. ``objective.overflows`` finds that order from scratch: a pass
over every casualty and a sort per hospital. A move changes a few casualties' arrivals, so while
moves are scored against an incumbent, it keeps every hospital's admissions sorted (hospital
``h``'s are ``W.adm[W.adm_start[h]:W.adm_start[h + 1]]``), and each admitted casualty's place
in its hospital's order (``W.nxt[c]``: the full objective's chains, free once it is summed). A
move's overflow at ``h`` is the incumbent's corrected for the casualties it takes out of that
order (their places looked up) and admits again (``overflow_after``): O(those casualties, with
a binary search for each one admitted again), where merging them into the order was O(the
hospital's admissions), half of a sweep's time at 10 000 casualties. The
correction agrees with summing the admissions beyond the beds afresh (``overflow_beyond``) to
rounding; an accepted move's hospitals are summed afresh (``readmit``), so corrections never pile up.

The order belongs to one timing of the incumbent: ``W.gen[ADM]`` is the ``W.gen[VERSION]`` it was
built at. Once the version moves on (a full evaluation), moves fall back to ``overflows`` until
``ensure_admissions`` builds it again; annealing carries it over each accepted move (``readmit``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .borrow import borrow
from .config import JIT
from .layout import ACTIVE, ADM, DEAD, GEN, IN_TRANSIT, N_TOUCHED, VERSION


@njit(**JIT, inline="always")
def _before(arrival, d, c):
    """Whether casualty ``d`` is admitted before ``c``: earlier arrival, then lower index."""
    return arrival[d] < arrival[c] or (arrival[d] == arrival[c] and d < c)


@njit(**JIT, inline="always")
def _insert(order, k, c, arrival):
    """Insert casualty ``c`` into ``order[:k]``, kept in admission order; returns ``k + 1``.
    A move re-admits a few casualties at a hospital, so insertion is cheapest."""
    j = k
    while j > 0 and _before(arrival, c, order[j - 1]):
        order[j] = order[j - 1]
        j -= 1
    order[j] = c
    return k + 1


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
    P, hosp, W = borrow((P, hosp, W))
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
        _place(adm, start[h], start[h + 1], W.nxt)
    W.gen[ADM] = W.gen[VERSION]


@njit(**JIT, inline="always")
def _place(adm, lo, hi, place):
    """Write into ``place`` each of ``adm[lo:hi]``'s place in that order (``overflow_after``
    reads a casualty's instead of searching for it)."""
    for p in range(lo, hi):
        place[adm[p]] = p - lo


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
        k = _insert(tmp, k, c, arrival)
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


@njit(**JIT, inline="always")
def _rank(adm, lo, hi, arrival, c, a):
    """How many of ``adm[lo:hi]`` (in admission order by ``arrival``) are admitted before
    casualty ``c`` arriving at ``a``: a binary search."""
    n = lo
    while lo < hi:
        mid = (lo + hi) >> 1
        d = adm[mid]
        if arrival[d] < a or (arrival[d] == a and d < c):
            lo = mid + 1
        else:
            hi = mid
    return lo - n


@njit(**JIT, inline="always")
def chain_touched(hosp, inc_hosp, status, inc_arrival, arrival, touched, n_touched, hlist, n_listed, need, first,
                  links_out, links_in):
    """Chain, for each listed hospital ``h`` in ``need``, the touched casualties that leave its
    admissions (entry ``2 i`` for ``touched[i]``) or join them (``2 i + 1``): from ``first[h]``,
    the entry after ``2 i`` being ``links_out[i]`` and after ``2 i + 1`` ``links_in[i]``, -1
    ending it (what ``overflow_after`` reads). Made only when some hospital needs it: one pass
    over the touched casualties instead of one per hospital, which a fire team's move at 10 000
    casualties (80 casualties, 20 hospitals over their beds) paid."""
    for x in range(n_listed):
        first[hlist[x]] = -1
    for i in range(n_touched):
        c = touched[i]
        if status[c] != ACTIVE:
            continue
        h = inc_hosp[c]
        if need[h] and not np.isnan(inc_arrival[c]):
            links_out[i] = first[h]
            first[h] = 2 * i
        h = hosp[c]
        if need[h] and not np.isnan(arrival[c]):
            links_in[i] = first[h]
            first[h] = 2 * i + 1


@njit(**JIT, inline="always")
def overflow_after(h, adm, start, place, inc_arrival, inc_pdead, inc_over, arrival, pdead, status, touched, first,
                   links_out, links_in, mark, g, beds, risk, ins, out):
    """Hospital ``h``'s overflow after a move: the incumbent's ``inc_over`` corrected, O(what the
    move re-admits there and the places between), not O(the hospital's admissions).

    The move takes some of its touched casualties (``mark[c] == g``) out of the incumbent's
    admission order ``adm``/``start`` (timed by ``inc_arrival``, ``inc_pdead``) and admits some
    again (``arrival``, ``pdead``: the candidate's); ``place`` is each admission's place in
    ``adm`` (``_place``), which saves a binary search per casualty taken out (a sweep at the
    London example's local optimum, with hospitals over and at their beds, 2-4 % faster:
    ``bench/HISTORY.md``). Those at ``h`` are a chain of entries from
    ``first`` through ``links_out`` and ``links_in`` (``chain_touched``): entry ``2 i`` takes
    ``touched[i]`` out of ``h``'s admissions, ``2 i + 1`` admits it there. Of the ``beds`` first
    places, ``q`` go to re-admitted ones (found by binary search), the rest to the first
    ``beds - q`` kept admissions; so the overflow changes by who left from beyond the beds, who
    of the re-admitted land beyond them, and the kept admissions the last bed moved past. The
    same casualties as a merge and ``overflow_beyond`` would sum, to rounding (about 1e-16 of the
    overflow). ``ins`` and ``out`` are scratch for the re-admitted ones and the incumbent places
    of those taken out.
    """
    lo, hi = start[h], start[h + 1]
    k = 0
    n_out = 0
    e = first
    while e >= 0:
        c = touched[e >> 1]
        if e & 1:
            k = _insert(ins, k, c, arrival)
            e = links_in[e >> 1]
        else:
            p = place[c]
            j = n_out
            while j > 0 and out[j - 1] > p:
                out[j] = out[j - 1]
                j -= 1
            out[j] = p
            n_out += 1
            e = links_out[e >> 1]
    n_inc = hi - lo
    if k > 0 and n_out == k and beds < n_inc and out[k - 1] < beds:
        # as many admitted again as taken out, all taken out from within the beds: if the last
        # to arrive again comes before the first admission beyond the beds (kept), they all take
        # beds again and the overflow is the incumbent's, to the bit, with no binary search for
        # each (a move that re-times a full hospital's early admissions): a sweep at London's
        # local optimum took 0.98-0.99 of the time, an annealing move at 1 000 casualties 0.97
        y, z = ins[k - 1], adm[lo + beds]
        if arrival[y] < inc_arrival[z] or (arrival[y] == inc_arrival[z] and y < z):
            return inc_over
    # q: the re-admitted ones within the beds (each one's place: the kept admissions before it,
    # and the re-admitted ones before it)
    q = 0
    r = 0
    while q < k:
        y = ins[q]
        p = _rank(adm, lo, hi, inc_arrival, y, arrival[y])
        while r < n_out and out[r] < p:
            r += 1
        if p - r + q >= beds:
            break
        q += 1
    # x: the incumbent place of the first kept admission beyond the beds
    x = beds - q
    for i in range(n_out):
        if out[i] > x:
            break
        x += 1
    d = 0.0
    for i in range(n_out):
        if out[i] >= beds:
            d -= 1.0 - inc_pdead[adm[lo + out[i]]]
    for p in range(min(x, beds), min(max(x, beds), n_inc)):
        c = adm[lo + p]
        if mark[c] == g and status[c] == ACTIVE:
            continue  # taken out: counted above
        d += 1.0 - inc_pdead[c] if x < beds else inc_pdead[c] - 1.0
    for j in range(q, k):
        d += 1.0 - pdead[ins[j]]
    return inc_over + d * risk


@njit(**JIT)
def readmit(P, hosp, Winc, W):
    """After an accepted move scored in ``W`` is adopted into ``Winc``: carry ``Winc``'s admission
    order over to the new timing (``hosp`` the plan's after the move).

    Only the hospitals the move's casualties left or joined (``W.dirty``) change their lists; while
    every hospital keeps its count, those are merged again in place, O(their admissions); else
    every list is rewritten, O(casualties) copying.
    """
    P, hosp, Winc, W = borrow((P, hosp, Winc, W))
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
                _place(adm, start[h], start[h] + n, Winc.nxt)
    else:
        o = 0
        for h in range(n_hosp):
            new_start[h] = o
            o = merge_admissions(h, adm, start, Winc.arrival, hosp, P.status, touched, n_touched, mark, g, W.nxt,
                                 new, o)
        new_start[n_hosp] = o
        adm[:o] = new[:o]
        start[:] = new_start
        for h in range(n_hosp):
            if W.dirty[h]:
                _place(adm, start[h], start[h + 1], Winc.nxt)
    # each changed hospital's overflow summed afresh, as a full evaluation would: the move's
    # (``overflow_after``) was the last incumbent's corrected, and corrections would pile up
    for h in range(n_hosp):
        if W.dirty[h] and start[h + 1] - start[h] > P.hosp_cap[h]:
            Winc.over[h] = overflow_beyond(adm[start[h]:start[h + 1]], start[h + 1] - start[h], P.hosp_cap[h],
                                           P.hosp_risk[h], Winc.pdead)
    Winc.gen[ADM] = Winc.gen[VERSION]
