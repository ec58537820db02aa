"""The working solution of a search: flat arrays, the incumbent's workspace and its objective.

This is the one mutable object the algorithms share. The kernels change it in place; Python only
reads ``objective`` and converts to a ``Plan`` when someone asks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.evaluate import evaluate as _evaluate
from kernels.layout import KINDS, copy_workspace, workspace_for

from .objective import Objective
from .plan import Plan, problem_arrays
from .scenario import Scenario


@dataclass
class Solution:
    """Arrays of a plan (see ``kernels.layout``) plus its evaluation.

    ``cur`` is ``[F, overflow, T, status]`` as float64, the shape the kernels update in place.
    """

    sc: Scenario
    starts: np.ndarray
    order: np.ndarray
    hosp: np.ndarray
    pins: np.ndarray
    W: object
    cur: np.ndarray

    @classmethod
    def from_arrays(cls, sc: Scenario, starts, order, hosp, pins) -> "Solution":
        P = problem_arrays(sc)
        n_cas = len(sc.model.casualties)
        full = np.full(KINDS * n_cas, -1, dtype=np.int32)
        full[: int(starts[-1])] = order[: int(starts[-1])]
        sol = cls(sc, np.array(starts, dtype=np.int32), full, np.array(hosp, dtype=np.int32),
                  np.array(pins, dtype=np.int32), workspace_for(P), np.zeros(4))
        sol.reevaluate()
        return sol

    @classmethod
    def from_plan(cls, sc: Scenario, plan: Plan) -> "Solution":
        return cls.from_arrays(sc, *plan.to_arrays(sc))

    def reevaluate(self) -> None:
        """Full evaluation of the current arrays into the workspace and ``cur``."""
        P = problem_arrays(self.sc)
        self.cur[:] = _evaluate(P, self.starts, self.order, self.hosp, self.pins, self.W)

    def copy(self) -> "Solution":
        """An independent copy, its evaluation included (nothing is re-evaluated)."""
        return Solution(self.sc, self.starts.copy(), self.order.copy(), self.hosp.copy(), self.pins.copy(),
                        copy_workspace(self.W), self.cur.copy())

    @property
    def objective(self) -> Objective:
        return Objective.from_kernel(*self.cur[:3], int(self.cur[3]))

    def to_plan(self) -> Plan:
        return Plan.from_arrays(self.sc, self.starts, self.order, self.hosp, self.pins)
