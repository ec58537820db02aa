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


def test_sweep_paper_size(benchmark, london, london_greedy):
    """One best-improvement sweep of the whole neighbourhood (enumerate + score every move), 2 cores."""
    state = SearchState(london_greedy.copy(), london_greedy.copy())
    cold_sweep(state)
    benchmark.extra_info["threads"] = numba.get_num_threads()
    benchmark.pedantic(cold_sweep, args=(state,), rounds=10, iterations=1)


def test_sweep_paper_size_one_core(benchmark, london, london_greedy):
    state = SearchState(london_greedy.copy(), london_greedy.copy())
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        cold_sweep(state)
        benchmark.pedantic(cold_sweep, args=(state,), rounds=5, iterations=1)
    finally:
        numba.set_num_threads(previous)


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


def _plain_score(self, sol, moves, n, F, T, st, n_threads):
    sweep(problem_arrays(sol.sc), sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st,
          n_threads)
    return n


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
