"""A hospital's overflow after a move as a correction of the incumbent's (``kernels.admissions``).

``overflow_after`` never merges the re-admitted casualties into the admission order: it finds
their places by binary search and corrects the incumbent's overflow, reading the touched
casualties of its hospital from the chain ``chain_touched`` makes. Here it is held against the
plain statement of SPEC §7 (sort the hospital's admissions after the move by arrival, ties by
casualty index, and sum ``(1 - p_dead) * risk`` beyond the beds) on random hospitals full of
awkward cases: arrivals on a few whole minutes (ties everywhere, between kept and re-admitted
casualties too), casualties in transit (kept, never touched), touched casualties that leave,
arrive, stay with a new arrival or stop being transported, and 0 beds up to more beds than
admissions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.admissions import chain_touched, overflow_after
from kernels.layout import ACTIVE, DEAD, IN_TRANSIT


@njit
def _chained(h, adm, start, inc_arrival, inc_pdead, inc_over, arrival, pdead, hosp, inc_hosp, status, touched, mark,
             g, beds, risk, first, links_out, links_in, ins, out):
    # both are inlined into their callers: compiled here the same way, h the only hospital listed
    need = np.zeros(first.shape[0], np.bool_)
    need[h] = True
    hlist = np.array([h])
    chain_touched(hosp, inc_hosp, status, inc_arrival, arrival, touched, touched.shape[0], hlist, 1, need, first,
                  links_out, links_in)
    place = np.full(status.shape[0], -7, np.int64)  # each admission's place in its hospital's order
    for k in range(start.shape[0] - 1):
        for p in range(start[k], start[k + 1]):
            place[adm[p]] = p - start[k]
    return overflow_after(h, adm, start, place, inc_arrival, inc_pdead, inc_over, arrival, pdead, status, touched,
                          first[h], links_out, links_in, mark, g, beds, risk, ins, out)


def _overflow_after(h, adm, start, inc_arrival, inc_pdead, inc_over, arrival, pdead, hosp, inc_hosp, status, touched,
                    mark, g, beds, risk):
    """``overflow_after`` at hospital ``h``, its touched casualties chained by ``chain_touched``."""
    n = len(status) + 1
    return _chained(h, adm, start, inc_arrival, inc_pdead, inc_over, arrival, pdead, hosp, inc_hosp, status, touched,
                    mark, g, beds, risk, np.full(len(start), -7, np.int64), np.full(n, -7, np.int64),
                    np.full(n, -7, np.int64), np.empty(n, np.int64), np.empty(n, np.int64))


def _beyond(members, arrival, pdead, beds, risk) -> float:
    """SPEC §7: admitted in arrival order, ties by casualty index; everyone beyond the beds."""
    order = sorted(members, key=lambda c: (arrival[c], c))
    return sum((1.0 - pdead[c]) * risk for c in order[beds:])


def _case(rng):
    n = int(rng.integers(1, 40))
    n_hosp = int(rng.integers(1, 4))
    h = int(rng.integers(n_hosp))
    status = rng.choice([ACTIVE, ACTIVE, ACTIVE, IN_TRANSIT, DEAD], size=n)
    spread = int(rng.choice([1, 3, 8, 60]))  # few distinct minutes: many ties
    inc_arrival = rng.integers(0, spread, size=n).astype(float)
    inc_arrival[rng.random(n) < 0.1] = np.nan  # not transported
    inc_pdead = rng.choice([0.0, 1.0, 0.5, 0.25], size=n) * (rng.random(n) < 0.5) + rng.random(n) * 0.1
    inc_pdead = np.clip(inc_pdead, 0.0, 1.0)
    inc_hosp = rng.integers(n_hosp, size=n)
    # the move: some active casualties touched, with new arrivals, hospitals and p_dead
    touched = np.flatnonzero((status == ACTIVE) & (rng.random(n) < rng.choice([0.05, 0.2, 0.6])))
    touched = rng.permutation(touched)
    arrival, pdead, hosp = inc_arrival.copy(), inc_pdead.copy(), inc_hosp.copy()
    for c in touched:
        if rng.random() < 0.5:
            arrival[c] = float(rng.integers(0, spread))
        if rng.random() < 0.1:
            arrival[c] = np.nan
        if rng.random() < 0.5:
            hosp[c] = rng.integers(n_hosp)
        if rng.random() < 0.5:
            pdead[c] = rng.random()
    return n, n_hosp, h, status, inc_arrival, inc_pdead, inc_hosp, touched, arrival, pdead, hosp


def _admissions(n_hosp, status, arrival, hosp):
    """The incumbent's admission order (what ``build_admissions`` keeps), by plain sorting."""
    groups = [sorted((c for c in range(len(status)) if status[c] != DEAD and not np.isnan(arrival[c])
                      and hosp[c] == g), key=lambda c: (arrival[c], c)) for g in range(n_hosp)]
    start = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
    adm = np.array([c for g in groups for c in g] + [0], dtype=np.int64)
    return adm, start


def test_overflow_after_a_move_equals_summing_the_admissions_afresh():
    rng = np.random.default_rng(7)
    checked = crossings = within = 0
    for _ in range(3000):
        n, n_hosp, h, status, inc_arrival, inc_pdead, inc_hosp, touched, arrival, pdead, hosp = _case(rng)
        # casualties in transit arrive where they are bound: their hospital is never a plan's
        adm, start = _admissions(n_hosp, status, inc_arrival, inc_hosp)
        inc_members = adm[start[h]:start[h + 1]].tolist()
        mark = np.zeros(n, np.int64)
        g = 5
        mark[touched] = g
        after = [c for c in inc_members if mark[c] != g] + [
            c for c in touched if hosp[c] == h and not np.isnan(arrival[c])]
        beds = int(rng.integers(0, max(len(inc_members), len(after)) + 3))
        risk = float(rng.choice([0.05, 1.0, 0.3]))
        inc_over = _beyond(inc_members, inc_arrival, inc_pdead, beds, risk)
        want = _beyond(after, arrival, pdead, beds, risk)
        got = _overflow_after(h, adm, start, inc_arrival, inc_pdead, inc_over, arrival, pdead, hosp, inc_hosp,
                              status.astype(np.int64), touched.astype(np.int64), mark, g, beds, risk)
        assert abs(got - want) <= 1e-12, (n, h, beds, got, want)
        checked += 1
        crossings += (len(inc_members) > beds) != (len(after) > beds) or (len(after) > beds and len(touched) > 0)
        within += _all_within_beds(inc_members, after, inc_arrival, arrival, mark, g, beds)
    assert checked == 3000 and crossings >= 500, crossings
    assert within >= 100, within  # overflow_after's shortcut: the same beds, the same overflow


def _all_within_beds(inc_members, after, inc_arrival, arrival, mark, g, beds) -> bool:
    """Whether a move at a hospital over its beds takes as many out of its admissions as it
    admits again, all of them within the beds before and after."""
    before = sorted(inc_members, key=lambda c: (inc_arrival[c], c))
    now = sorted(after, key=lambda c: (arrival[c], c))
    out = [p for p, c in enumerate(before) if mark[c] == g]
    back = [p for p, c in enumerate(now) if mark[c] == g]
    return len(after) > beds and len(out) == len(back) > 0 and all(p < beds for p in out + back)


def test_a_kept_admission_pushed_beyond_the_last_bed_is_counted():
    """Admissions at 10, 20, 30 for one bed; casualty 2 re-arrives at 5: it takes the bed, and
    casualty 0, which kept its arrival, is pushed beyond it with casualty 1."""
    status = np.full(3, ACTIVE, np.int64)
    inc_arrival = np.array([10.0, 20.0, 30.0])
    pdead = np.array([0.1, 0.2, 0.3])
    hosp = np.zeros(3, np.int64)
    adm, start = np.array([0, 1, 2, 0], np.int64), np.array([0, 3], np.int64)
    arrival = np.array([10.0, 20.0, 5.0])
    mark = np.array([0, 0, 1], np.int64)
    inc_over = (1 - 0.2) + (1 - 0.3)
    got = _overflow_after(0, adm, start, inc_arrival, pdead, inc_over, arrival, pdead, hosp, hosp, status,
                          np.array([2], np.int64), mark, 1, 1, 1.0)
    assert abs(got - ((1 - 0.1) + (1 - 0.2))) <= 1e-15


def test_a_re_admitted_casualty_tied_with_the_first_beyond_the_beds_takes_a_bed_by_its_index():
    """Three beds, admissions at 5, 10, 20, 30 (casualties 4, 1, 2, 3). Casualty 1 re-arrives at
    30, tied with casualty 3, the first beyond the beds: with the lower index it takes the third
    bed, and the overflow is the incumbent's. Casualty 4, re-arriving so instead, is admitted
    after casualty 3, which takes the bed."""
    status = np.full(5, ACTIVE, np.int64)
    hosp = np.zeros(5, np.int64)
    inc_arrival = np.array([np.nan, 10.0, 20.0, 30.0, 5.0])
    pdead = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    adm, start = _admissions(1, status, inc_arrival, hosp)
    inc_over = 1 - 0.3
    for c, want in ((1, inc_over), (4, 1 - 0.4)):
        mark = np.zeros(5, np.int64)
        mark[c] = 1
        arrival = inc_arrival.copy()
        arrival[c] = 30.0
        got = _overflow_after(0, adm, start, inc_arrival, pdead, inc_over, arrival, pdead, hosp, hosp, status,
                              np.array([c], np.int64), mark, 1, 3, 1.0)
        exact = c == 1  # the same beds: the incumbent's overflow, to the bit
        assert (got == want) if exact else abs(got - want) <= 1e-15, (c, got, want)


def test_rank_counts_the_admissions_before_a_casualty(rng):
    """``_rank`` against counting plainly: ranges of every length from 0 (and not from the array's
    start), arrivals on a few whole minutes so that ties with the casualty, broken by index, are
    everywhere, and a casualty before, among and after them all."""
    from kernels.admissions import _rank

    for _ in range(400):
        n_cas = int(rng.integers(1, 40))
        arrival = rng.integers(0, 5, n_cas).astype(float)
        members = rng.permutation(n_cas)[: int(rng.integers(0, n_cas + 1))]
        members = members[np.lexsort((members, arrival[members]))]  # admission order
        lo = int(rng.integers(0, 4))
        adm = np.concatenate([np.full(lo, -1), members, np.full(3, -1)]).astype(np.int64)
        c = int(rng.integers(0, n_cas))
        a = float(rng.integers(-1, 6))
        want = sum(1 for d in members if arrival[d] < a or (arrival[d] == a and d < c))
        assert _rank(adm, lo, lo + len(members), arrival, c, a) == want
