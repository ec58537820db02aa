"""Repair: carry a plan over to a changed model so that it is a valid plan again (SPEC §8).

Tasks that no longer apply (their casualty delivered, dead or gone, their responder gone, a
rescue already under way...) are dropped; pinned tasks stay in front; tasks the new model
requires and the plan lacks are inserted at their cheapest positions, scored exactly.
"""

from __future__ import annotations

import numpy as np

from kernels.layout import ACTIVE, KINDS, RESCUE, TRANSPORT, TREAT
from kernels.rebuild import keep_lists

from .construct import _nearest_with_bed, beds_in_transit, insert_cheapest, relocate_cheapest
from .plan import Plan, Task, problem_arrays
from .scenario import Scenario
from .solution import Solution

_CODE = {"rescue": RESCUE, "treat": TREAT, "transport": TRANSPORT}


def same_places(sc: Scenario, osc: Scenario) -> bool:
    """The same casualties, teams and hospitals at the same indices (a derived scenario shares
    its indices with the one it came from: no O(casualties) comparison then)."""
    return all(a is b or list(a) == list(b) for a, b in ((sc.casualty_index, osc.casualty_index),
                                                       (sc.responder_index, osc.responder_index),
                                                       (sc.hospital_index, osc.hospital_index)))


def same_rules(sc: Scenario, osc: Scenario) -> bool:
    """``same_places``, and each casualty allows the same tasks: a move chosen under one model
    is a valid move under the other (a treatment reported started forbids planning one)."""
    if not same_places(sc, osc):
        return False
    P, Q = problem_arrays(sc), problem_arrays(osc)
    return all(a is b or np.array_equal(a, b) for a, b in ((P.status, Q.status), (P.needs_rescue, Q.needs_rescue),
                                                          (P.can_treat, Q.can_treat)))


def carry_over(sc: Scenario, old: Solution, in_place: bool = False) -> Solution | None:
    """``old``'s arrays as a solution of ``sc`` when nothing needs repairing, else ``None``.

    The fast path of the online engine: most deltas (observations, clock, revised durations,
    capacities) keep the same casualties, teams and hospitals, and every task still applies, so
    the arrays carry over unchanged and only need re-scoring. The pins are the caller's to
    compare: they must be unchanged too. With ``in_place`` (for a caller that holds the only
    reference to ``old``), ``old`` itself is re-scored and returned instead of a copy; either
    way ``old`` is untouched when the answer is ``None``.
    """
    return rescored(sc, old, in_place) if carries_over(sc, old) else None


def rescored(sc: Scenario, old: Solution, in_place: bool = False) -> Solution:
    """``old``'s arrays scored under ``sc`` (which ``carries_over`` accepted): ``old`` itself
    with ``in_place``, else a copy."""
    sol = old if in_place else old.copy()  # the same casualties and teams: arrays of the same sizes
    sol.sc = sc
    sol.reevaluate()
    return sol


def carries_over(sc: Scenario, old: Solution) -> bool:
    """Whether ``old``'s arrays are a valid solution of ``sc`` as they are (``carry_over``), told
    without touching ``old``: a caller can check the carried-over lists before it re-scores
    them in place (``Planner.next_task``)."""
    osc = old.sc
    if not same_places(sc, osc):
        return False
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
            return False
        has = np.zeros(KINDS * len(P.status), dtype=np.bool_)
        has[codes] = True
        if (P.needs_rescue & ~has[RESCUE::KINDS]).any() or ((P.status == ACTIVE) & ~has[TRANSPORT::KINDS]).any():
            return False
    return True


def repair(sc: Scenario, plan: Plan, pins: dict[str, list[Task]]) -> Solution:
    """A valid solution for ``sc`` that keeps as much of ``plan`` as still applies.

    ``pins[responder]`` lists its issued tasks; those still valid stay pinned in front. A task
    pinned in ``plan`` but not in ``pins`` (released: its team started other work) goes back
    among the team's other tasks, if the model still allows it; a pinned one is placed once.
    """
    rest = {rid: [_entry(sc, t) for t in tasks] for rid, tasks in plan.routes.items()}
    return _rebuild(sc, *_pinned(sc, pins), *_rows(sc, rest))


def repair_solution(sc: Scenario, old: Solution, pins: dict[str, list[Task]]) -> Solution:
    """``repair(sc, old.to_plan(), pins)`` read straight from ``old``'s arrays (the online engine:
    building the ``Plan`` was half the repair's time)."""
    osc = old.sc
    cmap = _index_map(osc.casualty_index, sc.casualty_index)
    hmap = _index_map(osc.hospital_index, sc.hospital_index)
    n = int(old.starts[-1])
    codes = old.order[:n].astype(np.int64)
    c, k = codes // KINDS, codes % KINDS
    rows = np.stack([cmap[c], k, np.where(k == TRANSPORT, hmap[np.maximum(old.hosp[c], 0)], -1)], axis=1)
    bounds = np.zeros((len(sc.model.responders), 2), dtype=np.int64)
    starts = old.starts.tolist()
    for j, resp in enumerate(sc.model.responders):
        r = osc.responder_index.get(resp.id)
        if r is not None:  # its whole old list: a task ``pins`` holds is placed once, from there,
            # and one it released goes back to the plan (skipping the old pins had dropped it: an
            # issued treat the team gave up for other work was gone from the plan)
            bounds[j] = starts[r], starts[r + 1]
    return _rebuild(sc, *_pinned(sc, pins), rows, bounds)


def _index_map(old: dict, new: dict) -> np.ndarray:
    """Old index -> new index of the same id (-1: gone)."""
    if old is new:
        return np.arange(len(old), dtype=np.int64)
    return np.array([new.get(key, -1) for key in old], dtype=np.int64)


def _entry(sc: Scenario, task: Task) -> tuple[int, int, int]:
    """A task as (casualty, kind, hospital) indices of ``sc``; -1 for an id ``sc`` lacks."""
    return (sc.casualty_index.get(task.casualty, -1), _CODE[task.kind],
            sc.hospital_index.get(task.hospital, -1) if task.hospital is not None else -1)


def _rows(sc: Scenario, entries: dict[str, list[tuple[int, int, int]]]) -> tuple[np.ndarray, np.ndarray]:
    """Each team's ``_entry`` tuples as rows of one array, and each team's ``(first, end)`` rows."""
    rows: list[tuple[int, int, int]] = []
    bounds = np.zeros((len(sc.model.responders), 2), dtype=np.int64)
    for j, resp in enumerate(sc.model.responders):
        mine = entries.get(resp.id, ())
        bounds[j] = len(rows), len(rows) + len(mine)
        rows.extend(mine)
    return np.array(rows, dtype=np.int64).reshape(-1, 3), bounds


def _pinned(sc: Scenario, pins: dict[str, list[Task]]) -> tuple[np.ndarray, np.ndarray]:
    return _rows(sc, {rid: [_entry(sc, t) for t in tasks] for rid, tasks in pins.items()})


def _rebuild(sc: Scenario, pinned: np.ndarray, pin_bounds: np.ndarray, rest: np.ndarray,
             rest_bounds: np.ndarray) -> Solution:
    """The repaired solution from each team's pinned and other tasks (``_rows``).

    Each team keeps its still-valid pinned tasks in front, then its other still-valid tasks (a
    task already placed is not placed twice); a transport keeps its hospital, or goes to the
    nearest with a bed left if that hospital is gone (``kernels.rebuild.keep_lists``). Rescues
    and transports the model needs and no list holds are then inserted at their cheapest
    positions, scored exactly.
    """
    P = problem_arrays(sc)
    # may[code]: the model lets task ``code`` be planned (cleared as the kernel places tasks)
    may = np.empty(KINDS * len(P.status), dtype=np.bool_)
    may[RESCUE::KINDS], may[TREAT::KINDS], may[TRANSPORT::KINDS] = P.needs_rescue, P.can_treat, P.status == ACTIVE
    order, starts, pin_counts, hosp, taken = keep_lists(pinned, pin_bounds, rest, rest_bounds, P.resp_fire, may,
                                                        P.site_loc, P.travel, P.hosp_loc, P.hosp_cap,
                                                        beds_in_transit(P))
    missing_rescue = (KINDS * np.flatnonzero(may[RESCUE::KINDS]) + RESCUE).tolist()
    missing_transport = (KINDS * np.flatnonzero(may[TRANSPORT::KINDS]) + TRANSPORT).tolist()
    for code in missing_transport:
        c = code // KINDS
        hosp[c] = _nearest_with_bed(P, P.site_loc[c], taken)
        taken[hosp[c]] += 1
    # rescues first: a transport inserted before its casualty's rescue exists could not be timed
    fires, medics = np.flatnonzero(P.resp_fire), np.flatnonzero(~P.resp_fire)
    sol = Solution.from_arrays(sc, starts, order, hosp, pin_counts)
    # each insertion leaves the solution evaluated in full (kernels.search.commit); a delta's
    # caller waits for it, so it is scored in this thread (kernels.search.score_serial)
    for code in missing_rescue:
        if len(fires):
            insert_cheapest(sol, code, fires, threads=1)
    for code in missing_transport:
        if len(medics):
            insert_cheapest(sol, code, medics, threads=1)
    # a new trapped casualty's rescue was placed before its transport, so blind to its own
    # health (no arrival, no p_dead yet): placed again now that the casualty counts, then its
    # transport again for that rescue; each is then at its cheapest place given the other
    both = sorted({code // KINDS for code in missing_rescue} & {code // KINDS for code in missing_transport})
    if len(fires) and len(medics):
        for c in both:
            relocate_cheapest(sol, KINDS * c + RESCUE, fires)
            relocate_cheapest(sol, KINDS * c + TRANSPORT, medics)
    return sol
