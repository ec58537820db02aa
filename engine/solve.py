"""``solve``: compose a construction, an algorithm and stopping criteria into a ``Result``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from . import construct
from .algorithms import ALGORITHMS, Annealing, Descent, SearchState, Tabu, assert_mode_default
from .compiling import compile_clock
from .errors import InputError, Problem
from .evaluate import evaluate_detail, schedule_records
from .explain import explain
from .objective import Objective
from .plan import Plan, load_plan
from .result import Result, Statistics
from .scenario import load_scenario
from .solution import Solution
from .stop import AnyOf, MaxIterations, MaxRuntime, Progress

#: Iteration budgets when neither iterations nor a time limit is given (reproducible by default).
DEFAULT_ITERATIONS = {"tabu": 100, "annealing": 200_000}
ANNEAL_CHUNK = 2_000


@dataclass
class Callbacks:
    """``on_best(plan, objective)`` at each new best; ``on_iteration(stats, objective)`` per chunk."""

    on_best: Callable[[Plan, Objective], Any] | None = None
    on_iteration: Callable[[Statistics, Objective], Any] | None = None


def _callbacks(cb) -> Callbacks:
    if cb is None:
        return Callbacks()
    if isinstance(cb, dict):
        return Callbacks(**cb)
    return cb


def initial_solution(sc, initial=None) -> Solution:
    """A starting solution: ``"rule"``, ``"greedy"`` (also ``None``), or a plan (path, dict or ``Plan``)."""
    if initial is None:
        initial = "greedy"
    if isinstance(initial, str) and initial in ("rule", "greedy"):
        return getattr(construct, initial)(sc)
    return Solution.from_plan(sc, load_plan(sc, initial))


def _finished(sol: Solution) -> Plan:
    """``sol`` as a plan that knows its objective and timetable: ``to_json()`` writes the whole
    plan file of SPEC §5, schedule included (§11)."""
    plan = sol.to_plan()
    objective, W, arrays = evaluate_detail(sol.sc, plan)
    plan.objective, plan.schedule = objective, schedule_records(sol.sc, W, arrays)
    return plan


def check_arguments(algorithm, iterations, time_limit) -> None:
    problems = []
    named = isinstance(algorithm, str) and algorithm in ALGORITHMS
    if not (named or isinstance(algorithm, (Descent, Tabu, Annealing))):
        problems.append(Problem("algorithm", f"unknown algorithm '{algorithm}'; expected one of {', '.join(ALGORITHMS)}"))
    if iterations is not None and (not isinstance(iterations, int) or iterations < 0):
        problems.append(Problem("iterations", f"expected a whole number >= 0, got {iterations!r}"))
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit >= 0):
        problems.append(Problem("time_limit", f"expected seconds >= 0, got {time_limit!r}"))
    if iterations is not None and time_limit is not None:
        problems.append(Problem("time_limit", "give iterations or a time limit, not both"))
    if problems:
        raise InputError(problems)


def solve(scenario, algorithm: str | Descent | Tabu | Annealing = "tabu", seed: int = 0,
          iterations: int | None = None, time_limit: float | None = None, initial: Any = None, callbacks=None,
          assert_moves: bool | None = None) -> Result:
    """Search for the plan with the fewest expected fatalities (SPEC §7, §11).

    Parameters
    ----------
    scenario
        Path, dict or ``Scenario``.
    algorithm
        ``rule`` or ``greedy`` (construction only), ``descent`` (best improvement until a local
        optimum), ``tabu`` or ``annealing``; or an algorithm object set up otherwise, such as
        ``Descent(followups=False)``, the paper's descent that applies one move a sweep.
    seed, iterations
        Same scenario, seed and iteration budget give the same plan.
    time_limit
        Seconds of search instead of an iteration budget (not reproducible across machines).
    initial
        Where the search starts: ``"greedy"`` (default, also ``None``), ``"rule"`` or a plan.
    callbacks
        ``Callbacks`` or a dict with ``on_best`` / ``on_iteration``.
    assert_moves
        Re-evaluate fully after every applied move and raise on any mismatch above 1e-9
        (default: the ``GOLDENHOUR_ASSERT`` environment variable).
    """
    check_arguments(algorithm, iterations, time_limit)
    alg = None
    if not isinstance(algorithm, str):
        alg, algorithm = algorithm, algorithm.name
    sc = load_scenario(scenario)
    from .errors import ScenarioError
    from .planner import require_teams

    require_teams(sc, ScenarioError)
    cb = _callbacks(callbacks)
    stats = Statistics(algorithm)
    # the kernels' first compilation (minutes, once per install) is not search time: it is left
    # out of the time limit and of runtime_s, and reported as compile_s
    with compile_clock() as compiling:
        t0 = time.perf_counter()

        def elapsed() -> float:
            return time.perf_counter() - t0 - compiling.seconds

        if algorithm in ("rule", "greedy"):
            sol = initial_solution(sc, algorithm)
            stats.runtime_s, stats.compile_s = elapsed(), compiling.seconds
            stats.history.append((stats.runtime_s, 0, *sol.cur[[0, 2]].tolist()))
            return Result(_finished(sol), sol.objective, stats, explain(sol))

        sol = initial_solution(sc, initial)
        state = SearchState(sol, sol.copy(),
                            assert_moves=assert_mode_default() if assert_moves is None else assert_moves)
        if alg is None:
            alg = {"descent": Descent, "tabu": Tabu}.get(algorithm)
            alg = alg() if alg else Annealing(seed=seed)
        stats.history.append((elapsed(), 0, *state.best.cur[[0, 2]].tolist()))
        _search(state, alg, _stopping(algorithm, iterations, time_limit), time_limit, cb, stats, elapsed)
        stats.iterations, stats.evaluations, stats.moves = state.iterations, state.evaluations, state.applied
        stats.runtime_s, stats.compile_s = elapsed(), compiling.seconds
    best = state.best
    return Result(_finished(best), best.objective, stats, explain(best))


def _stopping(algorithm: str, iterations: int | None, time_limit: float | None) -> AnyOf:
    """The run's stopping criteria: the budget given, else the algorithm's default one."""
    criteria = []
    if iterations is not None:
        criteria.append(MaxIterations(iterations))
    if time_limit is not None:
        criteria.append(MaxRuntime(time_limit))
    if not criteria and algorithm in DEFAULT_ITERATIONS:
        criteria.append(MaxIterations(DEFAULT_ITERATIONS[algorithm]))
    return AnyOf(*criteria)


def _search(state: SearchState, alg, stop: AnyOf, time_limit: float | None, cb: Callbacks, stats: Statistics,
            elapsed: Callable[[], float]) -> None:
    """Run ``alg`` on ``state`` in chunks until ``stop``, keeping ``stats`` and calling back."""
    from .accept import Outcome

    progress = Progress()
    while not stop(progress):
        if isinstance(alg, Annealing):
            n = int(min(ANNEAL_CHUNK, stop.remaining_iterations(progress)))
            frac0 = stop.fraction(progress)
            if time_limit is None:  # an iteration budget: this chunk's share is known
                frac1 = min(1.0, frac0 + n / max(1.0, stop.remaining_iterations(progress) + progress.iterations))
            else:  # a time limit: estimate the total from the speed so far
                rate = progress.iterations / progress.runtime_s if progress.runtime_s > 0 else 0
                est_total = rate * time_limit if rate > 0 else 50 * n
                frac1 = min(1.0, frac0 + n / max(est_total, n))
            outcome, finished = alg.run(state, n, frac0, frac1)
        else:
            outcome, finished = alg.run(state, 1)
        progress.iterations = state.iterations
        progress.runtime_s = elapsed()
        progress.finished = finished
        if outcome == Outcome.BEST:
            progress.since_improvement = 0
            stats.history.append((progress.runtime_s, state.iterations, *state.best.cur[[0, 2]].tolist()))
            if cb.on_best:
                cb.on_best(state.best.to_plan(), state.best.objective)
        else:
            progress.since_improvement += 1
        stats.iterations, stats.evaluations, stats.runtime_s = state.iterations, state.evaluations, progress.runtime_s
        stats.moves = state.applied
        if cb.on_iteration:
            cb.on_iteration(stats, state.best.objective)
