"""The scale ladder: 90 (the London example), 1 000 and 10 000 casualties.

Per rung: load + validate + travel times, one full evaluation, the cost of one annealing move
(delta evaluation, acceptance and commit), and one granular best-improvement sweep. Each fixes
its work; ``extra_info`` has the sizes and per-move figures.
"""

from __future__ import annotations

import pytest

import engine
from engine.algorithms import Annealing, SearchState
from engine.construct import rule
from engine.generate import generate
from engine.plan import problem_arrays
from kernels.evaluate import evaluate_repeat
from kernels.layout import workspace_for

from conftest import ROOT
from test_search import cold_sweep

#: rung -> random preset options (None: the London example)
RUNGS = {
    90: None,
    1000: dict(casualties=1000, paramedics=150, fire=10, hospitals=30),
    10_000: dict(casualties=10_000, paramedics=1000, fire=100, hospitals=150),
}
ANNEAL_MOVES = 2_000
_built: dict[int, tuple] = {}


def _rung(n: int):
    """The scenario and its ``rule`` solution, built once per session."""
    if n not in _built:
        opts = RUNGS[n]
        sc = engine.load_scenario(ROOT / "examples" / "london-5x18.json" if opts is None
                                  else generate("random", seed=0, **opts))
        _built[n] = sc, rule(sc)
    return _built[n]


def _info(benchmark, sc, sol):
    benchmark.extra_info.update(casualties=len(sc.model.casualties), responders=len(sc.model.responders),
                                tasks=int(sol.starts[-1]))


@pytest.mark.parametrize("n", [n for n in RUNGS if RUNGS[n]])
def test_load_validate_travel(benchmark, n):
    data = generate("random", seed=0, **RUNGS[n])

    def load():
        return problem_arrays(engine.load_scenario(data))

    P = benchmark.pedantic(load, rounds=3, iterations=1)
    benchmark.extra_info["locations"] = int(P.travel.shape[0])


@pytest.mark.parametrize("n", list(RUNGS))
def test_full_evaluation(benchmark, n):
    sc, sol = _rung(n)
    P = problem_arrays(sc)
    W = workspace_for(P)
    evaluate_repeat(P, sol.starts, sol.order, sol.hosp, sol.pins, W, 1)
    _info(benchmark, sc, sol)
    benchmark.pedantic(evaluate_repeat, args=(P, sol.starts, sol.order, sol.hosp, sol.pins, W, 10),
                       rounds=10, iterations=1)
    benchmark.extra_info["evaluations_per_round"] = 10


@pytest.mark.parametrize("n", list(RUNGS))
def test_annealing_moves(benchmark, n):
    """``ANNEAL_MOVES`` Metropolis steps from ``rule`` (temperatures fitted before timing)."""
    sc, sol = _rung(n)

    def setup():
        state = SearchState(sol.copy(), sol.copy())
        alg = Annealing(seed=0)
        alg.schedule = alg.fit(state)
        return (alg, state), {}

    (alg, state), _ = setup()
    alg.run(state, 10)  # compiled (or loaded from the cache) before timing
    _info(benchmark, sc, sol)
    benchmark.pedantic(lambda alg, state: alg.run(state, ANNEAL_MOVES), setup=setup, rounds=3, iterations=1)
    benchmark.extra_info["moves_per_round"] = ANNEAL_MOVES
    benchmark.extra_info["us_per_move"] = benchmark.stats.stats.median / ANNEAL_MOVES * 1e6 \
        if benchmark.stats is not None else None


@pytest.mark.parametrize("n", [90, 1000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_granular_sweep(benchmark, n):
    """One best-improvement sweep of the (granular above 400 tasks) neighbourhood, every move
    scored afresh, 2 cores."""
    sc, sol = _rung(n)
    state = SearchState(sol.copy(), sol.copy())
    moves, count = state.moves()
    # compiled before timing, and the memo's buffers made: at 10 000 their first allocation
    # (a million rows) took as long as the sweep itself (0.87 s against 0.43 s, 2026-12-03)
    cold_sweep(state)
    _info(benchmark, sc, sol)
    benchmark.extra_info["moves"] = int(count)
    benchmark.pedantic(cold_sweep, args=(state,), rounds=3 if n < 10_000 else 1, iterations=1)
