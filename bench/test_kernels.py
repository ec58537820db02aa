"""Kernel layer: full evaluation (vs the plain-Python reference), batch evaluation, delta evaluation."""

from __future__ import annotations

import numba
import numpy as np

from engine.plan import problem_arrays
from kernels.borrow import borrow
from kernels.delta import evaluate_move
from kernels.evaluate import evaluate, evaluate_batch, evaluate_repeat
from kernels.layout import workspace_for
from kernels.local import count_shift
from kernels.moves import enumerate_moves, slot_tables

from conftest import random_hospital_rows

REPEATS = 10_000


def test_full_evaluation_kernel(benchmark, london, london_greedy):
    """One full evaluation (schedule + objective) of the London plan, looped inside the kernel and
    inlined there, as the batch and the searches run it, so that no call's overhead is measured;
    the figure is divided by REPEATS in the report."""
    P, s = problem_arrays(london), london_greedy
    W = workspace_for(P)
    evaluate_repeat(P, s.starts, s.order, s.hosp, s.pins, W, 1)
    benchmark.extra_info["evaluations_per_round"] = REPEATS
    benchmark(evaluate_repeat, P, s.starts, s.order, s.hosp, s.pins, W, REPEATS)


# not cached, for the reason given at _delta_loop below; it only calls the cached evaluate
@numba.njit(cache=False, nogil=True)
def _call_loop(P, starts, order, hosp, pins, W, repeats):
    P, starts, order, hosp, pins, W = borrow((P, starts, order, hosp, pins, W))
    F = 0.0
    for _ in range(repeats):
        F, _o, _t, _s = evaluate(P, starts, order, hosp, pins, W)
    return F


def test_full_evaluation_called(benchmark, london, london_greedy):
    """The same, with ``evaluate`` called from compiled code each time instead of inlined: what
    passing the problem's and workspace's arrays costs a compiled caller."""
    P, s = problem_arrays(london), london_greedy
    W = workspace_for(P)
    assert _call_loop(P, s.starts, s.order, s.hosp, s.pins, W, 1) == evaluate_repeat(P, s.starts, s.order, s.hosp,
                                                                                       s.pins, W, 1)
    benchmark.extra_info["evaluations_per_round"] = REPEATS
    benchmark(_call_loop, P, s.starts, s.order, s.hosp, s.pins, W, REPEATS)


def test_full_evaluation_from_python(benchmark, london, london_greedy):
    """One call from Python: the latency a library user sees, dispatch included."""
    P, s = problem_arrays(london), london_greedy
    W = workspace_for(P)
    benchmark(evaluate, P, s.starts, s.order, s.hosp, s.pins, W)


def test_reference_evaluation(benchmark, london, london_greedy):
    """The slow, obviously-correct reference on the same plan: the baseline of the speed-up."""
    import reference

    plan = london_greedy.to_plan()
    benchmark.pedantic(reference.evaluate, args=(london, plan), rounds=5, iterations=1)


def test_batch_evaluation(benchmark, london, london_greedy):
    """10 000 plans (random hospital choices on the greedy plan) evaluated on all cores."""
    P, s = problem_arrays(london), london_greedy
    rows = random_hospital_rows(P, s, REPEATS)
    out = [np.empty(REPEATS) for _ in range(3)] + [np.empty(REPEATS, dtype=np.int64)]
    pins = s.pins
    evaluate_batch(P, rows[:2], pins, *[o[:2] for o in out], numba.get_num_threads())
    benchmark.extra_info["plans_per_round"] = REPEATS
    benchmark(evaluate_batch, P, rows, pins, *out, numba.get_num_threads())


# not cached: Numba would key the cache by this file alone and load a copy of evaluate_move
# compiled before the kernels' last edit (kernels.config keys the kernels' own by the package)
@numba.njit(cache=False, nogil=True)
def _delta_loop(P, moves, n, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, cs, co, ch, W):
    # arrays borrowed as the sweeps' own loop borrows them (kernels.score._score, kernels.borrow)
    P, moves, starts, order, hosp, pins, Winc, inc = borrow((P, moves, starts, order, hosp, pins, Winc, inc))
    slot_owner, slot_of, cs, co, ch, W = borrow((slot_owner, slot_of, cs, co, ch, W))
    acc = 0.0
    for i in range(n):
        F, _o, _T, _s = evaluate_move(P, moves[i, 0], moves[i, 1], moves[i, 2], moves[i, 3], starts, order, hosp,
                                      pins, Winc, inc, slot_owner, slot_of, n_shift, cs, co, ch, W)
        acc += F if F == F else 0.0
    return acc


def test_delta_evaluation_one_core(benchmark, london, london_greedy):
    """Every move of the full London neighbourhood, delta-evaluated on one core."""
    P, s = problem_arrays(london), london_greedy
    moves = np.empty((200_000, 4), dtype=np.int64)
    empty = np.zeros((len(P.h0), 0), dtype=np.int64)
    n = enumerate_moves(P, s.starts, s.order, s.hosp, s.pins, empty, empty, moves)
    owner = np.empty(len(s.order), np.int64)
    slot_of = np.empty(3 * len(P.h0), np.int64)
    slot_tables(s.starts, s.order, len(P.h0), owner, slot_of)
    cs, co, ch = np.empty_like(s.starts), np.empty_like(s.order), np.empty_like(s.hosp)
    args = (P, moves, n, s.starts, s.order, s.hosp, s.pins, s.W, s.cur, owner, slot_of,
            count_shift(P, s.starts, s.W), cs, co, ch, workspace_for(P))
    _delta_loop(*args)
    benchmark.extra_info["moves_per_round"] = int(n)
    benchmark(_delta_loop, *args)
