"""Stopping criteria: small callables over the search's progress, combinable with ``|``.

Iteration budgets make a run reproducible (same seed, same plan); a time limit does not, since
how far a search gets in a second depends on the machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass
class Progress:
    """What a stopping criterion may look at."""

    iterations: int = 0
    runtime_s: float = 0.0
    since_improvement: int = 0
    finished: bool = False  # the algorithm itself has nothing left to do (e.g. a local optimum)


class StoppingCriterion(Protocol):
    def __call__(self, progress: Progress) -> bool: ...


class _Combinable:
    def __or__(self, other: "StoppingCriterion") -> "AnyOf":
        return AnyOf(self, other)

    def remaining_iterations(self, progress: Progress) -> float:
        """An upper bound on iterations left (inf if this criterion is not about iterations)."""
        return math.inf

    def fraction(self, progress: Progress) -> float:
        """How much of the budget is used, in [0, 1] (0 when unknown): drives annealing's cooling."""
        return 0.0


@dataclass
class MaxIterations(_Combinable):
    iterations: int

    def __post_init__(self):
        if self.iterations < 0:
            raise ValueError("iterations must be >= 0")

    def __call__(self, progress: Progress) -> bool:
        return progress.iterations >= self.iterations

    def remaining_iterations(self, progress: Progress) -> float:
        return max(0, self.iterations - progress.iterations)

    def fraction(self, progress: Progress) -> float:
        return min(1.0, progress.iterations / max(self.iterations, 1))


@dataclass
class MaxRuntime(_Combinable):
    seconds: float

    def __post_init__(self):
        if not self.seconds >= 0:
            raise ValueError("a time limit must be >= 0 seconds")

    def __call__(self, progress: Progress) -> bool:
        return progress.runtime_s >= self.seconds

    def fraction(self, progress: Progress) -> float:
        return min(1.0, progress.runtime_s / self.seconds) if self.seconds > 0 else 1.0


@dataclass
class NoImprovement(_Combinable):
    """Stops after ``iterations`` iterations without a new best. Annealing learns of new bests
    once a chunk (``solve.ANNEAL_CHUNK`` iterations), so it counts from the end of the chunk
    that found the last one."""

    iterations: int

    def __post_init__(self):
        if self.iterations < 0:
            raise ValueError("iterations must be >= 0")

    def __call__(self, progress: Progress) -> bool:
        return progress.since_improvement >= self.iterations


class AnyOf(_Combinable):
    """Stops as soon as any of its criteria does."""

    def __init__(self, *criteria: StoppingCriterion):
        # flat: ``solve`` looks for a time limit among them (``solve._chunk_end``)
        self.criteria = tuple(x for c in criteria for x in (c.criteria if isinstance(c, AnyOf) else (c,)))

    def __call__(self, progress: Progress) -> bool:
        return progress.finished or any(c(progress) for c in self.criteria)

    def remaining_iterations(self, progress: Progress) -> float:
        return min((getattr(c, "remaining_iterations", lambda p: math.inf)(progress) for c in self.criteria),
                   default=math.inf)

    def fraction(self, progress: Progress) -> float:
        return max((getattr(c, "fraction", lambda p: 0.0)(progress) for c in self.criteria), default=0.0)
