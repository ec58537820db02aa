"""What ``solve`` returns: plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from .objective import Objective
from .plan import Plan


@dataclass
class Statistics:
    """How the search went. ``history`` holds ``(runtime_s, iteration, F, T)`` at each new best.

    ``evaluations`` counts the moves (and plans) actually scored: a move whose score a sweep
    kept from the previous one (``engine.memo``) is not counted again. ``moves`` counts the
    moves applied: for descent each sweep's best move and the others it took after it
    (``engine.algorithms.Descent``), for tabu the same until its first local optimum and one an
    iteration from there, and for annealing the accepted ones.
    ``runtime_s`` and the history's times leave out ``compile_s``, the seconds spent compiling
    kernels on their first use (``engine.compiling``): nothing once they are cached.
    """

    algorithm: str
    iterations: int = 0
    evaluations: int = 0
    moves: int = 0
    runtime_s: float = 0.0
    compile_s: float = 0.0
    history: list[tuple[float, int, float, float]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"algorithm": self.algorithm, "iterations": self.iterations, "evaluations": self.evaluations,
                "moves": self.moves,
                "runtime_s": self.runtime_s, "compile_s": self.compile_s,
                # a plan caught in a cycle of waits has no F or T: null in JSON, as in SPEC §7's objective
                "history": [[x if x == x else None for x in h] for h in self.history]}


@dataclass
class Result:
    """The best plan found, its objective, the search statistics and a per-casualty explanation."""

    plan: Plan
    objective: Objective
    stats: Statistics
    explanation: "object" = None
