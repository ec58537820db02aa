"""Search layer: one sweep, time to a local optimum, quality after a fixed budget."""

from __future__ import annotations

import resource

import numba
import numpy as np
import pytest

from engine.algorithms import Descent, SearchState, _apply, _score_all
from engine.construct import rule
from engine.memo import SweepMemo
from engine.plan import problem_arrays
from engine.solve import solve
from kernels.search import pick_best, sweep

from conftest import random_scenario


def cold_sweep(state: SearchState):
    """Score every move of the neighbourhood afresh (the memo keeps its buffers, no score)."""
    state.memo.forget()
    return _score_all(state)


def _plain_score(_memo, sol, moves, n, F, T, st, n_threads, record_first=True):
    """``SweepMemo.score`` with no memo: every move scored afresh, nothing recorded."""
    sweep(problem_arrays(sol.sc), sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st,
          n_threads)
    return n


def plain_sweep(state: SearchState) -> int:
    """Enumerate every move, score each afresh and pick the best, recording nothing: a sweep of
    descent after its follow-ups (``SweepMemo.PLAIN_ABOVE``), the issue's "one best-improvement
    sweep". Returns the best move's index."""
    moves, n = state.moves()
    F, T, st = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    _plain_score(None, state.current, moves, n, F, T, st, numba.get_num_threads())
    return pick_best(F, T, st, n, np.ones(n, dtype=np.bool_))


def _on_all_cores(benchmark, run, state: SearchState, rounds: int) -> None:
    """Benchmark ``run(state)`` on Numba's threads (warmed once first; ``extra_info``: how many)."""
    run(state)
    benchmark.extra_info["threads"] = numba.get_num_threads()
    benchmark.pedantic(run, args=(state,), rounds=rounds, iterations=1)


def _on_one_core(benchmark, run, state: SearchState, rounds: int) -> None:
    """Benchmark ``run(state)`` with Numba's threads set to one (warmed once first)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        run(state)
        benchmark.pedantic(run, args=(state,), rounds=rounds, iterations=1)
    finally:
        numba.set_num_threads(previous)


def test_sweep_paper_size_plain(benchmark, london, london_greedy):
    """One best-improvement sweep of the whole neighbourhood (enumerate, score every move, pick
    the best) as descent makes it, 2 cores."""
    _on_all_cores(benchmark, plain_sweep, SearchState(london_greedy.copy(), london_greedy.copy()), rounds=20)


def test_sweep_paper_size_plain_one_core(benchmark, london, london_greedy):
    _on_one_core(benchmark, plain_sweep, SearchState(london_greedy.copy(), london_greedy.copy()), rounds=10)


def test_sweep_paper_size(benchmark, london, london_greedy):
    """One sweep of the whole neighbourhood that also records what each move's score depends on
    (``SweepMemo``, for the sweeps after it to reuse), 2 cores."""
    _on_all_cores(benchmark, cold_sweep, SearchState(london_greedy.copy(), london_greedy.copy()), rounds=10)


def test_sweep_paper_size_one_core(benchmark, london, london_greedy):
    _on_one_core(benchmark, cold_sweep, SearchState(london_greedy.copy(), london_greedy.copy()), rounds=5)


def test_sweep_after_one_move_paper_size(benchmark, london, london_greedy):
    """What descent pays per iteration: the sweep after one applied move, re-scoring only the
    moves that move can have changed (``SweepMemo``), 2 cores. ``extra_info``: how many."""
    rescored = []

    def setup():
        state = SearchState(london_greedy.copy(), london_greedy.copy())
        moves, n, F, T, st = cold_sweep(state)
        best = pick_best(F, T, st, n, np.ones(n, dtype=np.bool_))
        _apply(state, moves[best].copy(), (F[best], T[best]))
        return (state,), {}

    def run(state):
        before = state.evaluations
        out = _score_all(state)
        rescored.append((state.evaluations - before, out[1]))
        return out

    benchmark.pedantic(run, setup=setup, rounds=10, iterations=1)
    benchmark.extra_info["rescored"], benchmark.extra_info["moves"] = rescored[-1]


def test_descent_from_rule_paper_size(benchmark, london):
    """Time to a local optimum: descent from the dispatcher's rule on the London example."""
    result = benchmark.pedantic(solve, args=(london,), kwargs=dict(algorithm="descent", initial="rule"),
                                rounds=3, iterations=1)
    benchmark.extra_info["expected_fatalities"] = result.objective.expected_fatalities
    benchmark.extra_info["rule_expected_fatalities"] = rule(london).objective.expected_fatalities
    benchmark.extra_info["evaluations"] = result.stats.evaluations
    benchmark.extra_info["iterations"], benchmark.extra_info["moves"] = result.stats.iterations, result.stats.moves


def test_descent_from_rule_paper_size_one_move_a_sweep(benchmark, london):
    """The baseline of the one above: the paper's descent, which applies one move a sweep."""
    paper = Descent(followups=False)
    result = benchmark.pedantic(solve, args=(london,), kwargs=dict(algorithm=paper, initial="rule"),
                                rounds=1, iterations=1)
    benchmark.extra_info["expected_fatalities"] = result.objective.expected_fatalities
    benchmark.extra_info["evaluations"] = result.stats.evaluations
    benchmark.extra_info["iterations"], benchmark.extra_info["moves"] = result.stats.iterations, result.stats.moves


def test_descent_from_rule_paper_size_every_move_rescored(benchmark, london, monkeypatch):
    """The memo's baseline: descent as in ``test_descent_from_rule_paper_size``, every sweep
    scoring every move afresh (no ``SweepMemo``)."""
    monkeypatch.setattr(SweepMemo, "score", _plain_score)
    result = benchmark.pedantic(solve, args=(london,), kwargs=dict(algorithm="descent", initial="rule"),
                                rounds=1, iterations=1)
    benchmark.extra_info["expected_fatalities"] = result.objective.expected_fatalities
    benchmark.extra_info["evaluations"] = result.stats.evaluations


@pytest.mark.parametrize("algorithm,budget", [("rule", None), ("greedy", None), ("descent", None),
                                              ("tabu", 100), ("annealing", 200_000)])
def test_quality_fixed_budget(benchmark, london, algorithm, budget):
    """Expected fatalities on London after a fixed iteration budget (reported in extra_info)."""
    result = benchmark.pedantic(solve, args=(london,), kwargs=dict(algorithm=algorithm, iterations=budget, seed=0),
                                rounds=1, iterations=1)
    benchmark.extra_info["expected_fatalities"] = result.objective.expected_fatalities
    benchmark.extra_info["evaluations"] = result.stats.evaluations


@pytest.mark.slow
@pytest.mark.parametrize("size", [(1000, 150, 20, 30), (10_000, 1000, 100, 150)])
def test_descent_from_rule_scale(benchmark, size):
    """The scale ladder: time from rule to a local optimum (granular neighbourhoods), and the
    process's peak memory by then (the scenario and its travel times included)."""
    sc = random_scenario(*size)
    result = benchmark.pedantic(solve, args=(sc,), kwargs=dict(algorithm="descent", initial="rule"),
                                rounds=1, iterations=1)
    benchmark.extra_info["expected_fatalities"] = result.objective.expected_fatalities
    benchmark.extra_info["iterations"], benchmark.extra_info["moves"] = result.stats.iterations, result.stats.moves
    benchmark.extra_info["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
