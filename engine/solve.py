"""``solve``: compose a construction, an algorithm and stopping criteria into a ``Result``."""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

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
from .stop import AnyOf, MaxIterations, MaxRuntime, Progress, StoppingCriterion

#: Iteration budgets when neither iterations nor a time limit is given (reproducible by default).
DEFAULT_ITERATIONS = {"tabu": 100, "annealing": 200_000}
ANNEAL_CHUNK = 2_000
#: The largest seed: the search's kernels take it as a 64-bit integer, and an experiment derives
#: its runs' seeds from it (``experiment.run_seed``).
MAX_SEED = 2**32 - 1


@dataclass
class Callbacks:
    """``on_best(plan, objective)`` each time the search finds a plan better than its best so far
    (not for the starting plan); ``on_iteration(stats, objective)`` after each chunk of search
    with the best objective so far. A chunk is one iteration of descent and tabu and
    ``ANNEAL_CHUNK`` of annealing, so annealing's several new bests within one chunk make one
    ``on_best`` call (and one entry of ``Statistics.history``) with the last of them. An exception
    a callback raises ends ``solve`` and reaches its caller."""

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


def whole(x) -> bool:
    """An integer, numpy's included (a seed from ``np.arange``), not a boolean."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def seed_problem(seed) -> Problem | None:
    """What is wrong with a seed (a whole number from 0 to ``MAX_SEED``), or ``None``."""
    if whole(seed) and 0 <= seed <= MAX_SEED:
        return None
    return Problem("seed", f"expected a whole number from 0 to {MAX_SEED}, got {seed!r}")


def check_arguments(algorithm, iterations, time_limit, seed=0, stop=None) -> None:
    problems = []
    named = isinstance(algorithm, str) and algorithm in ALGORITHMS
    if not (named or isinstance(algorithm, (Descent, Tabu, Annealing))):
        problems.append(Problem("algorithm", f"unknown algorithm '{algorithm}'; expected one of {', '.join(ALGORITHMS)}"))
    if iterations is not None and (not whole(iterations) or iterations < 0):
        problems.append(Problem("iterations", f"expected a whole number >= 0, got {iterations!r}"))
    if time_limit is not None and not (isinstance(time_limit, numbers.Real) and not isinstance(time_limit, (bool, np.bool_))
                                       and 0 <= time_limit < float("inf")):
        problems.append(Problem("time_limit", f"expected a finite number of seconds >= 0, got {time_limit!r}"))
    if (p := seed_problem(seed)) is not None:
        problems.append(p)
    if stop is not None and not callable(stop):
        problems.append(Problem("stop", f"expected a stopping criterion (a callable of Progress), got {stop!r}"))
    if problems:
        raise InputError(problems)


def solve(scenario, algorithm: str | Descent | Tabu | Annealing = "tabu", seed: int = 0,
          iterations: int | None = None, time_limit: float | None = None, initial: Any = None, callbacks=None,
          assert_moves: bool | None = None, stop: StoppingCriterion | None = None) -> Result:
    """Search for the plan with the fewest expected fatalities (SPEC §7, §11).

    Parameters
    ----------
    scenario
        Path, dict or ``Scenario``.
    algorithm
        ``rule`` or ``greedy`` (construction only), ``descent`` (best improvement until a local
        optimum), ``tabu`` or ``annealing``; or an algorithm object set up otherwise, such as
        ``Descent(followups=False)``, the paper's descent that applies one move a sweep (an
        ``Annealing`` made without a seed takes ``seed``).
    seed, iterations
        Same scenario, seed and iteration budget give the same plan. ``seed`` is a whole number
        from 0 to ``MAX_SEED``.
    time_limit
        Seconds of search (not reproducible across machines). Given with ``iterations``, the
        search stops at whichever comes first.
    stop
        Any other stopping criterion (``engine.stop``), such as ``NoImprovement(50)`` or
        ``NoImprovement(50) | MaxRuntime(2.0)``; the search stops when it, ``iterations`` or
        ``time_limit`` says so. With none of the three, tabu and annealing stop after
        ``DEFAULT_ITERATIONS`` and descent at its local optimum.
    initial
        Where the search starts: ``"greedy"`` (default, also ``None``), ``"rule"`` or a plan.
    callbacks
        ``Callbacks`` or a dict with ``on_best`` / ``on_iteration``.
    assert_moves
        Re-evaluate fully after every applied move and raise on any mismatch above 1e-9
        (default: the ``GOLDENHOUR_ASSERT`` environment variable).
    """
    check_arguments(algorithm, iterations, time_limit, seed, stop)
    seed = int(seed)
    iterations = None if iterations is None else int(iterations)
    time_limit = None if time_limit is None else float(time_limit)
    alg = None
    if not isinstance(algorithm, str):
        # a run of its own, from the object's settings: the caller's object, used as it is, kept
        # what a run leaves (tabu's memory, annealing's chunk count and fitted temperatures), and
        # a second solve with it gave another plan
        alg, algorithm = algorithm.fresh(), algorithm.name
        if isinstance(alg, Annealing) and alg.seed is None:
            alg.seed = seed  # the caller's object keeps no seed: each solve gives its own
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
        _search(state, alg, _stopping(algorithm, iterations, time_limit, stop), cb, stats, elapsed)
        stats.iterations, stats.evaluations, stats.moves = state.iterations, state.evaluations, state.applied
        stats.runtime_s, stats.compile_s = elapsed(), compiling.seconds
    best = state.best
    return Result(_finished(best), best.objective, stats, explain(best))


def _stopping(algorithm: str, iterations: int | None, time_limit: float | None,
              stop: StoppingCriterion | None = None) -> AnyOf:
    """The run's stopping criteria: those given, and the algorithm's default budget when none is
    given; annealing, which cools over its budget, takes the default too when the criteria given
    set neither an iteration budget nor a time limit."""
    criteria = [] if stop is None else [stop]
    if iterations is not None:
        criteria.append(MaxIterations(iterations))
    if time_limit is not None:
        criteria.append(MaxRuntime(time_limit))
    given = AnyOf(*criteria)
    budget = given.remaining_iterations(Progress()) < float("inf") or any(
        isinstance(c, MaxRuntime) for c in given.criteria)
    if algorithm in DEFAULT_ITERATIONS and (not criteria or (algorithm == "annealing" and not budget)):
        criteria.append(MaxIterations(DEFAULT_ITERATIONS[algorithm]))
    return AnyOf(*criteria)


def _search(state: SearchState, alg, stop: AnyOf, cb: Callbacks, stats: Statistics,
            elapsed: Callable[[], float]) -> None:
    """Run ``alg`` on ``state`` in chunks until ``stop``, keeping ``stats`` and calling back."""
    from .accept import Outcome

    # the time limit counts from the start, construction included, as runtime_s does: a search
    # whose construction used up its limit does not start (it ran a sweep or a chunk regardless)
    progress = Progress(runtime_s=elapsed())
    last_best = 0  # the iteration at the end of the chunk that found the best so far
    while not stop(progress):
        before = state.iterations
        if isinstance(alg, Annealing):
            n = int(min(ANNEAL_CHUNK, stop.remaining_iterations(progress)))
            frac0 = stop.fraction(progress)
            outcome, finished = alg.run(state, n, frac0, _chunk_end(stop, progress, frac0, n))
        else:
            outcome, finished = alg.run(state, 1)
        progress.iterations = state.iterations
        progress.runtime_s = elapsed()
        progress.finished = finished
        if outcome == Outcome.BEST:
            last_best = state.iterations
            stats.history.append((progress.runtime_s, state.iterations, *state.best.cur[[0, 2]].tolist()))
            if cb.on_best:
                cb.on_best(state.best.to_plan(), state.best.objective)
        progress.since_improvement = state.iterations - last_best
        stats.iterations, stats.evaluations, stats.runtime_s = state.iterations, state.evaluations, progress.runtime_s
        stats.moves = state.applied
        if cb.on_iteration and state.iterations > before:  # descent's last sweep finds nothing to do
            # a copy: the statistics go on changing, and a caller may keep what it was given
            cb.on_iteration(replace(stats, history=list(stats.history)), state.best.objective)


def _chunk_end(stop: AnyOf, progress: Progress, frac0: float, n: int) -> float:
    """How much of the budget an annealing chunk of ``n`` iterations will have used at its end,
    which its cooling runs to: known for an iteration budget, estimated from the speed so far
    for a time limit, and the larger of the two for both. Before any speed is known, a time
    limit's guess is taken only without an iteration budget: a time limit that does not bind
    leaves the plan of an iteration budget as it is without one."""
    left = stop.remaining_iterations(progress)
    budget = left < float("inf")
    by_iterations = min(1.0, frac0 + n / max(1.0, left + progress.iterations)) if budget else 0.0
    rate = progress.iterations / progress.runtime_s if progress.runtime_s > 0 else 0
    by_time = 0.0
    for c in stop.criteria:
        if isinstance(c, MaxRuntime) and (rate > 0 or not budget):
            total = rate * c.seconds if rate > 0 else 50 * n
            by_time = max(by_time, min(1.0, frac0 + n / max(total, n)))
    return max(by_iterations, by_time)
