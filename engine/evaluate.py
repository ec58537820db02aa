"""``evaluate``: score a plan exactly with the compiled kernels, and read back its schedule."""

from __future__ import annotations

import numpy as np

from kernels.evaluate import evaluate as _evaluate
from kernels.layout import KINDS, TRANSPORT, workspace_for

from .objective import Objective
from .plan import TASK_KINDS, load_plan, problem_arrays
from .scenario import Scenario, load_scenario


def evaluate(scenario, plan) -> Objective:
    """The objective of ``plan`` under ``scenario`` (SPEC §6–§7).

    ``scenario`` may be a path, dict or ``Scenario``; ``plan`` a path, dict or ``Plan``. An invalid
    plan raises ``PlanError``; an infeasible one returns ``feasible=False``.
    """
    return evaluate_detail(scenario, plan)[0]


def evaluate_detail(scenario, plan):
    """``(objective, workspace, arrays)``: the objective plus every time and ``p_dead``."""
    sc = load_scenario(scenario)
    plan = load_plan(sc, plan)
    P = problem_arrays(sc)
    arrays = plan.to_arrays(sc)
    W = workspace_for(P)
    F, overflow, T, status = _evaluate(P, *arrays, W)
    return Objective.from_kernel(F, overflow, T, status), W, arrays


def schedule_records(sc: Scenario, W, arrays) -> list[dict]:
    """The ``schedule`` list of a plan file: one record per timed task (SPEC §5)."""
    starts, order, hosp, _pins = arrays
    out = []
    for r, resp in enumerate(sc.model.responders):
        for s in range(int(starts[r]), int(starts[r + 1])):
            c, k = divmod(int(order[s]), KINDS)
            if not np.isfinite(W.end[s]) or s >= W.ptr[r]:
                break  # the rest of this list is caught in a cycle of waits
            rec = {"responder": resp.id, "task": TASK_KINDS[k], "casualty": sc.model.casualties[c].id,
                   "start": float(W.start[s]), "end": float(W.end[s])}
            if k == TRANSPORT:
                rec["hospital"] = sc.model.hospitals[int(hosp[c])].id
                rec["arrival"] = float(W.arrival[c])
            out.append(rec)
    return out
