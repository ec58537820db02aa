"""The objective of a plan as plain data (SPEC §7), and how two objectives compare."""

from __future__ import annotations

import math
from dataclasses import dataclass

TIE = 1e-9


@dataclass(frozen=True)
class Objective:
    """Expected fatalities ``F`` (overflow part also alone), casualty minutes ``T``, feasibility.

    A plan infeasible through a cycle of waits has no ``F`` or ``T`` (``None``).
    """

    expected_fatalities: float | None
    overflow_fatalities: float | None
    casualty_minutes: float | None
    feasible: bool

    @classmethod
    def from_kernel(cls, F: float, overflow: float, T: float, status: int) -> "Objective":
        def num(x):
            return None if math.isnan(x) else float(x)

        return cls(num(F), num(overflow), num(T), status == 0)

    def to_json(self) -> dict:
        return {"expected_fatalities": self.expected_fatalities,
                "overflow_fatalities": self.overflow_fatalities,
                "casualty_minutes": self.casualty_minutes, "feasible": self.feasible}

    def key(self) -> tuple:
        """Sort key: feasible first, then ``F``, then ``T`` (``F`` ties within 1e-9 go to ``T``).

        Only for ordering two objectives with ``better``; within-tolerance ties are not transitive,
        so ``better`` is the comparison to use.
        """
        f = math.inf if self.expected_fatalities is None else self.expected_fatalities
        t = math.inf if self.casualty_minutes is None else self.casualty_minutes
        return (not self.feasible, f, t)

    def better(self, other: "Objective") -> bool:
        """True when this objective is strictly better than ``other`` under SPEC §7.

        ``T`` decides only by more than 1e-9, as ``F`` does, and as the search decides
        (``kernels.search.better``): a delta-evaluated ``T`` agrees with a full evaluation to
        rounding, so closer ``T`` are a tie, and the library and the search agree on what is better.
        """
        a, b = self.key(), other.key()
        if a[0] != b[0]:
            return not a[0]
        if abs(a[1] - b[1]) > TIE or (math.isinf(a[1]) != math.isinf(b[1])):
            return a[1] < b[1]
        return a[2] < b[2] - TIE
