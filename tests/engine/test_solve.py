"""``engine.solve``'s arguments, stopping criteria and callbacks (SPEC §11)."""

from __future__ import annotations

import pytest

import engine
from engine import Annealing, MaxRuntime, NoImprovement
from engine.generate import generate


@pytest.fixture(scope="module")
def small():
    return engine.load_scenario(generate("random", seed=5, casualties=14, paramedics=3, fire=1, hospitals=3))


@pytest.mark.parametrize("kwargs,path", [
    ({"seed": -1}, "seed"),
    ({"seed": "x"}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": 2**70}, "seed"),
    ({"seed": True}, "seed"),
    ({"iterations": True}, "iterations"),
    ({"iterations": 2.0}, "iterations"),
    ({"time_limit": float("inf")}, "time_limit"),
    ({"time_limit": float("nan")}, "time_limit"),
    ({"time_limit": False}, "time_limit"),
    ({"stop": 5}, "stop"),
])
def test_bad_arguments_are_named(small, kwargs, path):
    """Each is refused before any work as the command line refuses it, not as a numba typing
    error, an overflow or a silent negative seed."""
    with pytest.raises(engine.InputError) as info:
        engine.solve(small, algorithm="annealing", **kwargs)
    assert [p.path for p in info.value.problems] == [path]


def test_iterations_and_a_time_limit_together_stop_at_whichever_comes_first(small):
    r = engine.solve(small, algorithm="tabu", iterations=6, time_limit=600.0)
    assert r.stats.iterations == 6
    r = engine.solve(small, algorithm="tabu", iterations=10_000, time_limit=0.0)
    assert r.stats.iterations == 0


@pytest.mark.parametrize("patience", [1, 4])
def test_no_improvement_stops_that_many_iterations_after_the_last_new_best(small, patience):
    """Tabu goes on past its local optimum, so only the criterion can stop it here (no budget
    is given, and the default one is 100 iterations)."""
    r = engine.solve(small, algorithm="tabu", stop=NoImprovement(patience))
    last_best = r.stats.history[-1][1]
    assert r.stats.iterations == last_best + patience < 100


def test_criteria_combine_with_or_and_with_a_budget(small):
    r = engine.solve(small, algorithm="tabu", stop=NoImprovement(10**6) | MaxRuntime(600.0), iterations=9)
    assert r.stats.iterations == 9
    r = engine.solve(small, algorithm="tabu", stop=NoImprovement(2) | MaxRuntime(600.0), iterations=1_000)
    assert r.stats.iterations == r.stats.history[-1][1] + 2


def test_annealing_with_only_no_improvement_still_cools_over_a_budget(small):
    """Annealing cools over its budget; a criterion that sets none leaves it the default one."""
    from engine.solve import DEFAULT_ITERATIONS, _stopping
    from engine.stop import Progress

    stop = _stopping("annealing", None, None, NoImprovement(10**9))
    assert stop.remaining_iterations(Progress()) == DEFAULT_ITERATIONS["annealing"]
    assert _stopping("tabu", None, None, NoImprovement(3)).remaining_iterations(Progress()) == float("inf")


@pytest.mark.parametrize("seed", [0, 5])
def test_an_annealing_object_made_without_a_seed_takes_solve_s(small, seed):
    by_name = engine.solve(small, algorithm="annealing", seed=seed, iterations=3_000)
    by_object = engine.solve(small, algorithm=Annealing(), seed=seed, iterations=3_000)
    assert by_object.plan.to_json() == by_name.plan.to_json()
    own = engine.solve(small, algorithm=Annealing(seed=7), seed=seed, iterations=3_000)
    assert own.plan.to_json() == engine.solve(small, algorithm="annealing", seed=7, iterations=3_000).plan.to_json()


def test_the_seed_reaches_annealing(small):
    plans = {str(engine.solve(small, algorithm=Annealing(), seed=s, iterations=3_000).plan.to_json()["routes"])
             for s in range(4)}
    assert len(plans) > 1


@pytest.mark.parametrize("algorithm", ["descent", "tabu"])
def test_on_iteration_is_called_once_an_iteration(small, algorithm):
    seen = []
    r = engine.solve(small, algorithm=algorithm, iterations=30, initial="rule",
                     callbacks={"on_iteration": lambda stats, obj: seen.append(stats.iterations)})
    assert seen == list(range(1, r.stats.iterations + 1))


@pytest.mark.parametrize("seed", [-1, 1.5, 2**70, True])
def test_the_planner_takes_the_same_seeds(small, seed):
    with pytest.raises(engine.InputError) as info:
        engine.Planner(small, seed=seed)
    assert [p.path for p in info.value.problems] == ["seed"]


def test_an_annealing_object_is_left_as_it_was_given(small):
    """``solve`` gives the seed to a copy: the object passed twice with two seeds gives each
    seed's plan (it kept the first seed before)."""
    a = Annealing()
    for seed in (1, 2):
        got = engine.solve(small, algorithm=a, seed=seed, iterations=3_000)
        assert got.plan.to_json() == engine.solve(small, algorithm="annealing", seed=seed,
                                                  iterations=3_000).plan.to_json()
    assert a.seed is None


def test_a_time_limit_that_does_not_bind_leaves_annealing_s_plan_as_it_is(small):
    """With an iteration budget, a time limit that does not bind changes nothing: the cooling
    of the first chunk, before any speed is known, took the time limit's guess and the plan
    differed from the budget's alone (for budgets above 50 chunks, whose first chunk is a
    smaller share of the budget than that guess)."""
    budget = 120_000
    alone = engine.solve(small, algorithm="annealing", seed=3, iterations=budget)
    both = engine.solve(small, algorithm="annealing", seed=3, iterations=budget, time_limit=3_600.0)
    assert both.stats.iterations == budget
    assert both.plan.to_json() == alone.plan.to_json()


@pytest.mark.parametrize("make", [lambda: Annealing(seed=7), lambda: engine.Tabu(), lambda: engine.Descent()],
                         ids=["annealing", "tabu", "descent"])
def test_an_algorithm_object_gives_the_same_plan_every_time_it_is_passed(small, make):
    """Each solve runs from the object's settings: it had kept what a run leaves (annealing's
    chunk count, which seeds its chunks, and its fitted temperatures; tabu's memory and its
    finished first descent), and a second solve with the same object gave another plan."""
    reused = make()
    first = engine.solve(small, algorithm=reused, seed=3, iterations=4_000 if isinstance(reused, Annealing) else 40)
    second = engine.solve(small, algorithm=reused, seed=3, iterations=4_000 if isinstance(reused, Annealing) else 40)
    new = engine.solve(small, algorithm=make(), seed=3, iterations=4_000 if isinstance(reused, Annealing) else 40)
    assert second.plan.to_json() == first.plan.to_json() == new.plan.to_json()
    assert second.stats.iterations == first.stats.iterations


def test_on_iteration_is_given_the_statistics_of_that_iteration(small):
    """What the callback keeps stays as it was given (it was the live object, which ``solve``
    went on changing and returned: twenty calls kept twenty times the last figures)."""
    kept = []
    r = engine.solve(small, algorithm="tabu", iterations=20, callbacks={"on_iteration": lambda s, o: kept.append(s)})
    assert [s.iterations for s in kept] == list(range(1, 21))
    assert all(s is not r.stats for s in kept) and kept[-1].history == r.stats.history


def test_a_time_limit_counts_the_construction_as_runtime_s_does(small):
    """A limit the start plan's construction used up leaves nothing to search: a sweep (or an
    annealing chunk of 2 000 steps) ran regardless, and ``runtime_s`` went past the limit."""
    for algorithm in ("tabu", "annealing"):
        r = engine.solve(small, algorithm=algorithm, time_limit=1e-9)
        assert r.stats.iterations == 0, algorithm


def test_numpy_integers_are_seeds_and_budgets(small):
    """A seed from ``np.arange`` or a generator's ``integers`` is a seed (it was refused)."""
    import numpy as np

    by_numpy = engine.solve(small, algorithm="annealing", seed=np.int64(3), iterations=np.int32(2_000),
                            time_limit=np.float32(600.0))
    assert by_numpy.plan.to_json() == engine.solve(small, algorithm="annealing", seed=3, iterations=2_000).plan.to_json()
    with pytest.raises(engine.InputError):
        engine.solve(small, seed=np.bool_(True))
