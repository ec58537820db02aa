"""Repair: carry a plan over to a changed model so that it is a valid plan again (SPEC §8).

Tasks that no longer apply (their casualty delivered, dead or gone, their responder gone, a
rescue already under way...) are dropped; pinned tasks stay in front; tasks the new model
requires and the plan lacks are inserted at their cheapest positions, scored exactly.
"""

from __future__ import annotations

import numpy as np

from kernels.layout import ACTIVE, KINDS, RESCUE, TRANSPORT, TREAT

from .construct import _nearest_with_bed, insert_cheapest
from .plan import Plan, Task, problem_arrays
from .scenario import Scenario
from .solution import Solution

_CODE = {"rescue": RESCUE, "treat": TREAT, "transport": TRANSPORT}


def _still_valid(P, sc: Scenario, r: int, task: Task) -> bool:
    c = sc.casualty_index.get(task.casualty)
    if c is None or (task.kind == "rescue") != bool(P.resp_fire[r]):
        return False
    if task.kind == "rescue":
        return bool(P.needs_rescue[c])
    if task.kind == "treat":
        return bool(P.can_treat[c])
    return P.status[c] == ACTIVE


def carry_over(sc: Scenario, old: Solution) -> Solution | None:
    """``old``'s arrays as a solution of ``sc`` when nothing needs repairing, else ``None``.

    The fast path of the online engine: most deltas (observations, clock, revised durations,
    capacities) keep the same casualties, teams and hospitals, and every task still applies, so
    the arrays carry over unchanged and only need re-scoring. The pins are the caller's to
    compare: they must be unchanged too.
    """
    osc = old.sc
    if not all(a is b or list(a) == list(b) for a, b in ((sc.casualty_index, osc.casualty_index),
                                                       (sc.responder_index, osc.responder_index),
                                                       (sc.hospital_index, osc.hospital_index))):
        return None  # (a derived scenario shares its indices: no O(casualties) comparison)
    P, Q = problem_arrays(sc), problem_arrays(osc)
    # which tasks a plan must and may hold is read from these three columns only: when the new
    # model shares them (a health observation, engine.problem.patch_observations), the old plan,
    # valid for the old model, is valid for the new one
    if not (P.status is Q.status and P.needs_rescue is Q.needs_rescue and P.can_treat is Q.can_treat):
        n = int(old.starts[-1])
        codes = old.order[:n].astype(np.int64)
        c, k = codes // KINDS, codes % KINDS
        valid = np.where(k == RESCUE, P.needs_rescue[c], np.where(k == TREAT, P.can_treat[c], P.status[c] == ACTIVE))
        if not valid.all():
            return None
        has = np.zeros(KINDS * len(P.status), dtype=np.bool_)
        has[codes] = True
        if (P.needs_rescue & ~has[RESCUE::KINDS]).any() or ((P.status == ACTIVE) & ~has[TRANSPORT::KINDS]).any():
            return None
    sol = old.copy()  # the same casualties and teams: arrays of the same sizes
    sol.sc = sc
    sol.reevaluate()
    return sol


def repair(sc: Scenario, plan: Plan, pins: dict[str, list[Task]]) -> Solution:
    """A valid solution for ``sc`` that keeps as much of ``plan`` as still applies.

    ``pins[responder]`` lists its issued tasks; those still valid stay pinned in front.
    """
    P = problem_arrays(sc)
    n_cas = len(sc.model.casualties)
    lists: list[list[int]] = []
    pin_counts = np.zeros(len(sc.model.responders), dtype=np.int32)
    hosp = np.full(n_cas, -1, dtype=np.int32)
    taken = np.zeros(len(P.hosp_loc), dtype=np.int64)
    placed: set[int] = set()
    for r, resp in enumerate(sc.model.responders):
        codes = []
        pinned = [t for t in pins.get(resp.id, []) if _still_valid(P, sc, r, t)]
        rest = [t for t in plan.routes.get(resp.id, []) if not t.pinned]
        for i, task in enumerate(pinned + rest):
            if i >= len(pinned) and not _still_valid(P, sc, r, task):
                continue
            c = sc.casualty_index[task.casualty]
            code = KINDS * c + _CODE[task.kind]
            if code in placed:
                continue
            placed.add(code)
            codes.append(code)
            if task.kind == "transport":
                h = sc.hospital_index.get(task.hospital)
                hosp[c] = _nearest_with_bed(P, P.site_loc[c], taken) if h is None else h
                taken[hosp[c]] += 1
            if i < len(pinned):
                pin_counts[r] += 1
        lists.append(codes)
    starts = np.zeros(len(lists) + 1, dtype=np.int32)
    flat: list[int] = []
    for r, codes in enumerate(lists):
        starts[r] = len(flat)
        flat.extend(codes)
    starts[-1] = len(flat)
    missing_rescue = [KINDS * c + RESCUE for c in range(n_cas) if P.needs_rescue[c] and KINDS * c + RESCUE not in placed]
    missing_transport = [KINDS * c + TRANSPORT for c in range(n_cas)
                         if P.status[c] == ACTIVE and KINDS * c + TRANSPORT not in placed]
    for code in missing_transport:
        c = code // KINDS
        hosp[c] = _nearest_with_bed(P, P.site_loc[c], taken)
        taken[hosp[c]] += 1
    # rescues first: a transport inserted before its casualty's rescue exists could not be timed
    fires, medics = np.flatnonzero(P.resp_fire), np.flatnonzero(~P.resp_fire)
    sol = Solution.from_arrays(sc, starts, np.array(flat, dtype=np.int32), hosp, pin_counts)
    for code in missing_rescue:
        if len(fires):
            insert_cheapest(sol, code, fires)
    for code in missing_transport:
        if len(medics):
            sol.reevaluate()
            insert_cheapest(sol, code, medics)
    sol.reevaluate()
    return sol
