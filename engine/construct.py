"""Construction heuristics: the dispatcher's ``rule`` and ``greedy`` cheapest insertion.

``rule`` is the baseline a control room follows by hand (SPEC-silent details are chosen as a
dispatcher would): most severe casualty first by ``p(immediate) + p(urgent)``, to the paramedic
team that can be there first, then to the nearest hospital with a bed left; each fire team, when
free, goes to the nearest trapped casualty still waiting. Both keep any pinned prefix in front.
"""

from __future__ import annotations

import numba
import numpy as np

from kernels.layout import ACTIVE, IN_TRANSIT, KINDS, RESCUE, TRANSPORT, TREAT
from kernels.moves import INSERT_TASK, RELOCATE
from kernels.rebuild import nearest_with_bed
from kernels.search import better, commit, pick_best, score_serial, sweep

from .plan import problem_arrays
from .scenario import Scenario
from .solution import Solution


def severity_order(P) -> np.ndarray:
    """Casualties most severe first: ``p(immediate) + p(urgent)``, then ``p(immediate)``, then index."""
    h = P.h0
    return np.lexsort((np.arange(len(h)), -h[:, 2], -(h[:, 1] + h[:, 2])))


def _pinned_prefix(sc: Scenario, pinned: dict[int, list[int]] | None):
    """Per responder: pinned task codes, and a rough free time and place after them."""
    P = problem_arrays(sc)
    n_resp = len(P.resp_loc)
    lists = [list((pinned or {}).get(r, [])) for r in range(n_resp)]
    free = np.where([bool(x) for x in lists], P.resp_avail, P.resp_free).astype(float)
    loc = P.resp_loc.copy()
    load, handover = P.scalars[1], P.scalars[2]
    for r, codes in enumerate(lists):
        for code in codes:  # waits are ignored: a heuristic start, scored exactly afterwards
            c, k = divmod(code, KINDS)
            site = P.site_loc[c]
            free[r] += P.travel[loc[r], site]
            loc[r] = site
            if k == RESCUE:
                free[r] += P.rescue_dur[c]
            elif k == TREAT:
                free[r] += P.treat_dur[c]
        if codes:  # its next task is not issued yet: it is sent no earlier than now (kernels.schedule)
            free[r] = max(free[r], P.scalars[0])
    return lists, free, loc, load, handover


def beds_in_transit(P) -> np.ndarray:
    """Per hospital, the beds casualties in ambulances will take on arrival; a known-dead
    casualty takes none (SPEC §8.1), so it does not count."""
    moving = P.transit_hosp[P.status == IN_TRANSIT]
    return np.bincount(moving, minlength=len(P.hosp_loc)).astype(np.int64)


def _nearest_with_bed(P, site, taken) -> int:
    """Nearest hospital (by travel from ``site``) with a bed left, else the nearest of all."""
    return nearest_with_bed(int(site), P.travel, P.hosp_loc, P.hosp_cap, taken)


def _arrays(sc, lists, hosp, pins):
    starts = np.zeros(len(lists) + 1, dtype=np.int32)
    flat = []
    for r, codes in enumerate(lists):
        starts[r] = len(flat)
        flat.extend(codes)
    starts[-1] = len(flat)
    return Solution.from_arrays(sc, starts, np.array(flat, dtype=np.int32), hosp, pins)


def rule(sc: Scenario, pinned: dict[int, list[int]] | None = None, hosp_pinned: dict[int, int] | None = None) -> Solution:
    """The dispatcher's plan (see module docstring). ``pinned[r]`` lists r's issued task codes,
    ``hosp_pinned[c]`` the hospital of each pinned transport."""
    P = problem_arrays(sc)
    lists, free, loc, load, handover = _pinned_prefix(sc, pinned)
    unknown = sorted({code // KINDS for codes in lists for code in codes
                      if code % KINDS == TRANSPORT and code // KINDS not in (hosp_pinned or {})})
    if unknown:  # else hospital -1, silently the last one
        raise ValueError(f"pinned transports of casualties {unknown} have no hospital in hosp_pinned")
    pins = np.array([len(x) for x in lists], dtype=np.int32)
    planned = {code for codes in lists for code in codes}
    n_cas = len(P.h0)
    hosp = np.full(n_cas, -1, dtype=np.int32)
    taken = np.zeros(len(P.hosp_loc), dtype=np.int64)
    for c, h in (hosp_pinned or {}).items():
        hosp[c] = h
        taken[h] += 1
    taken += beds_in_transit(P)
    rank = np.empty(n_cas, dtype=np.int64)
    sev = severity_order(P)
    rank[sev] = np.arange(n_cas)
    rescued_at = np.where(P.trapped, np.nan_to_num(P.rescue_fixed, nan=0.0), -np.inf)

    fires = np.flatnonzero(P.resp_fire)
    waiting = np.array([c for c in sev if P.needs_rescue[c] and KINDS * c + RESCUE not in planned], dtype=np.int64)
    for c in range(n_cas):
        if KINDS * c + RESCUE in planned:
            rescued_at[c] = P.resp_avail[0]  # rescue already issued: unknown end, assume under way
    if len(fires):
        while len(waiting):
            f = fires[np.lexsort((fires, free[fires]))[0]]
            dist = P.travel[loc[f], P.site_loc[waiting]]
            j = int(np.lexsort((rank[waiting], dist))[0])
            c = int(waiting[j])
            waiting = np.delete(waiting, j)
            end = free[f] + dist[j] + P.rescue_dur[c]
            lists[f].append(KINDS * c + RESCUE)
            free[f], loc[f], rescued_at[c] = end, P.site_loc[c], end

    medics = np.flatnonzero(~P.resp_fire)
    for c in sev:
        code = KINDS * c + TRANSPORT
        if P.status[c] != ACTIVE or code in planned or not len(medics):
            continue
        site = P.site_loc[c]
        arrive = free[medics] + P.travel[loc[medics], site]
        r = medics[np.lexsort((medics, arrive))[0]]
        pickup = max(arrive[np.searchsorted(medics, r)], rescued_at[c])
        h = _nearest_with_bed(P, site, taken)
        taken[h] += 1
        hosp[c] = h
        lists[r].append(code)
        arrival = pickup + load + P.travel[site, P.hosp_loc[h]]
        free[r], loc[r] = arrival + handover, P.hosp_loc[h]
    return _arrays(sc, lists, hosp, pins)


def insert_cheapest(sol: Solution, code: int, responders: np.ndarray, threads: int | None = None) -> None:
    """Insert task ``code`` where it raises the exact objective least (after any pinned prefix).

    Its positions are scored on ``threads`` threads (default: Numba's); with one, in this thread
    without a parallel region (``kernels.search.score_serial``), as the online repair does.
    """
    moves = _places(sol, INSERT_TASK, code, responders)
    best, _F, _T, _st = _best_place(sol, moves, numba.get_num_threads() if threads is None else threads)
    _commit(sol, moves[best])


def relocate_cheapest(sol: Solution, code: int, responders: np.ndarray) -> None:
    """Move task ``code``, already in the plan, to the place among ``responders``' (after any
    pinned prefix) where the exact objective is least, if that is better than where it is.

    For a task placed before what decides its cost: the online repair inserts a new trapped
    casualty's rescue before its transport exists, and until then the casualty has no arrival
    and no ``p_dead``, so every place cost the rescue the same and it went to the first fire
    team's last one. Scored in this thread, as the repair's insertions are.
    """
    slot = int(np.flatnonzero(sol.order[:sol.starts[-1]] == code)[0])
    owner = int(np.searchsorted(sol.starts, slot, side="right") - 1)
    moves = _places(sol, RELOCATE, slot, responders, owner)
    best, F, T, st = _best_place(sol, moves, 1)
    if best >= 0 and better(F[best], T[best], st[best], sol.cur[0], sol.cur[2], int(sol.cur[3])):
        _commit(sol, moves[best])


def _places(sol: Solution, kind: int, a: int, responders: np.ndarray, owner: int = -1) -> np.ndarray:
    """The moves ``(kind, a, r, index)`` putting a task at every index of ``responders``' lists
    after their pinned prefixes: ``INSERT_TASK`` of code ``a``, or ``RELOCATE`` of slot ``a``,
    whose index is into the list without the task (one shorter on its ``owner``'s)."""
    first = sol.pins[responders].astype(np.int64)
    counts = sol.starts[responders + 1] - sol.starts[responders] - (responders == owner) + 1 - first
    n = int(counts.sum())
    moves = np.empty((n, 4), dtype=np.int64)
    moves[:, 0], moves[:, 1], moves[:, 2] = kind, a, np.repeat(responders, counts)
    moves[:, 3] = np.arange(n) - np.repeat(np.cumsum(counts) - counts - first, counts)
    return moves


def _best_place(sol: Solution, moves: np.ndarray, threads: int):
    """The index of SPEC §7's best of ``moves`` against ``sol`` and every move's F, T and status."""
    P = problem_arrays(sol.sc)
    n = len(moves)
    F, T, st = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    if threads > 1:
        sweep(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st, threads)
    else:
        score_serial(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st)
    return pick_best(F, T, st, n, np.ones(n, dtype=np.bool_)), F, T, st


def _commit(sol: Solution, move: np.ndarray) -> None:
    cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
    sol.cur[:] = commit(problem_arrays(sol.sc), *move, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, cs, co, ch)


def greedy(sc: Scenario, pinned=None, hosp_pinned=None, max_positions: int = 200_000) -> Solution:
    """Cheapest insertion: rescues as in ``rule``, then each transport (most severe first) at the
    paramedic and position that raise the exact objective least.

    Falls back to ``rule`` when one insertion would try more than ``max_positions`` positions.
    """
    base = rule(sc, pinned, hosp_pinned)
    P = problem_arrays(sc)
    pins = base.pins
    medics = np.flatnonzero(~P.resp_fire)
    keep = [[int(x) for x in base.order[base.starts[r]:base.starts[r] + pins[r]]] for r in range(len(pins))]
    if base.starts[-1] + len(medics) > max_positions:
        return base
    # start from the pinned prefixes and the rule's rescues; transports are inserted one by one
    lists = [list(keep[r]) + [int(x) for x in base.order[base.starts[r] + pins[r]:base.starts[r + 1]]
                              if x % KINDS == RESCUE] for r in range(len(pins))]
    hosp = base.hosp.copy()
    placed = {code for codes in lists for code in codes}
    sol = _arrays(sc, lists, hosp, pins)
    # beds already spoken for, as ``rule`` counts them: casualties in ambulances and issued transports
    taken = beds_in_transit(P)
    for code in placed:
        if code % KINDS == TRANSPORT:
            taken[hosp[code // KINDS]] += 1
    for c in severity_order(P):
        code = KINDS * c + TRANSPORT
        if P.status[c] != ACTIVE or code in placed:
            continue
        h = _nearest_with_bed(P, P.site_loc[c], taken)
        taken[h] += 1
        sol.hosp[c] = h
        sol.reevaluate()
        insert_cheapest(sol, code, medics)
    return sol
