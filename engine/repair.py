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
    rest = {rid: [_entry(sc, t) for t in tasks if not t.pinned] for rid, tasks in plan.routes.items()}
    return _rebuild(sc, _pinned(sc, pins), rest)


def repair_solution(sc: Scenario, old: Solution, pins: dict[str, list[Task]]) -> Solution:
    """``repair(sc, old.to_plan(), pins)`` read straight from ``old``'s arrays (the online engine:
    building the ``Plan`` was half the repair's time)."""
    osc = old.sc
    cmap = _index_map(osc.casualty_index, sc.casualty_index)
    hmap = _index_map(osc.hospital_index, sc.hospital_index)
    n = int(old.starts[-1])
    codes = old.order[:n].astype(np.int64)
    c, k = codes // KINDS, codes % KINDS
    h = np.where(k == TRANSPORT, hmap[np.maximum(old.hosp[c], 0)], -1)
    entries = list(zip(cmap[c].tolist(), k.tolist(), h.tolist()))
    starts, held = old.starts.tolist(), old.pins.tolist()
    rest = {resp.id: entries[starts[r] + held[r]:starts[r + 1]] for r, resp in enumerate(osc.model.responders)}
    return _rebuild(sc, _pinned(sc, pins), rest)


def _index_map(old: dict, new: dict) -> np.ndarray:
    """Old index -> new index of the same id (-1: gone)."""
    if old is new:
        return np.arange(len(old), dtype=np.int64)
    return np.array([new.get(key, -1) for key in old], dtype=np.int64)


def _entry(sc: Scenario, task: Task) -> tuple[int, int, int]:
    """A task as (casualty, kind, hospital) indices of ``sc``; -1 for an id ``sc`` lacks."""
    return (sc.casualty_index.get(task.casualty, -1), _CODE[task.kind],
            sc.hospital_index.get(task.hospital, -1) if task.hospital is not None else -1)


def _pinned(sc: Scenario, pins: dict[str, list[Task]]) -> dict[str, list[tuple[int, int, int]]]:
    return {rid: [_entry(sc, t) for t in tasks] for rid, tasks in pins.items()}


def _rebuild(sc: Scenario, pinned: dict, rest: dict) -> Solution:
    """The repaired solution from each team's pinned and other tasks as ``_entry`` tuples.

    Each team keeps its still-valid pinned tasks in front, then its other still-valid tasks (a
    task already placed is not placed twice); a transport keeps its hospital, or goes to the
    nearest with a bed left if that hospital is gone. Rescues and transports the model needs
    and no list holds are then inserted at their cheapest positions, scored exactly.
    """
    P = problem_arrays(sc)
    n_cas = len(sc.model.casualties)
    fire, needs_rescue, can_treat = P.resp_fire.tolist(), P.needs_rescue.tolist(), P.can_treat.tolist()
    active = (P.status == ACTIVE).tolist()

    lists: list[list[int]] = []
    pin_counts = [0] * len(sc.model.responders)
    hosp = [-1] * n_cas  # (plain lists: this loop is the repair's cost when nothing is inserted)
    taken = [0] * len(P.hosp_loc)
    placed: set[int] = set()
    for r, resp in enumerate(sc.model.responders):
        codes: list[int] = []
        for is_pin, entries in ((True, pinned.get(resp.id, ())), (False, rest.get(resp.id, ()))):
            for c, k, h in entries:
                if c < 0 or (k == RESCUE) != fire[r] or not (
                        needs_rescue[c] if k == RESCUE else can_treat[c] if k == TREAT else active[c]):
                    continue  # no longer applies (or not this team's kind of task)
                code = KINDS * c + k
                if code in placed:
                    continue
                placed.add(code)
                codes.append(code)
                if k == TRANSPORT:
                    hosp[c] = h if h >= 0 else _nearest_with_bed(P, P.site_loc[c], np.array(taken))
                    taken[hosp[c]] += 1
                pin_counts[r] += is_pin
        lists.append(codes)
    hosp, taken = np.array(hosp, dtype=np.int32), np.array(taken, dtype=np.int64)
    pin_counts = np.array(pin_counts, dtype=np.int32)
    starts = np.zeros(len(lists) + 1, dtype=np.int32)
    flat: list[int] = []
    for r, codes in enumerate(lists):
        starts[r] = len(flat)
        flat.extend(codes)
    starts[-1] = len(flat)
    has = np.zeros(KINDS * n_cas, dtype=np.bool_)
    has[np.array(flat, dtype=np.int64)] = True
    missing_rescue = (KINDS * np.flatnonzero(P.needs_rescue & ~has[RESCUE::KINDS]) + RESCUE).tolist()
    missing_transport = (KINDS * np.flatnonzero((P.status == ACTIVE) & ~has[TRANSPORT::KINDS]) + TRANSPORT).tolist()
    for code in missing_transport:
        c = code // KINDS
        hosp[c] = _nearest_with_bed(P, P.site_loc[c], taken)
        taken[hosp[c]] += 1
    # rescues first: a transport inserted before its casualty's rescue exists could not be timed
    fires, medics = np.flatnonzero(P.resp_fire), np.flatnonzero(~P.resp_fire)
    sol = Solution.from_arrays(sc, starts, np.array(flat, dtype=np.int32), hosp, pin_counts)
    inserted = False  # (from_arrays has just evaluated the lists as they are)
    for code in missing_rescue:
        if len(fires):
            insert_cheapest(sol, code, fires)
            inserted = True
    for code in missing_transport:
        if len(medics):
            if inserted:
                sol.reevaluate()
            insert_cheapest(sol, code, medics)
            inserted = True
    if inserted:
        sol.reevaluate()
    return sol
