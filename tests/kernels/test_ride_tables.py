"""A wait at the site then the ride, read off one table (``kernels.health``: ``fill_ride_steps``
and ``dead_by_steps``, ``fill_start_ride`` and ``dead_from_start``).

A casualty's timeline ends with a wait at its site (treated or not) and the ride to its
hospital. The objective reads the two together off ``ProblemArrays.start_ride`` when the wait
is the casualty's first segment, else off ``ride_steps``. These tests hold both tables and their
reading to SPEC §3's ``P(δ)`` stated plainly (the reference's); the evaluator to the same
figures with the tables as without them (a problem too big for them:
``engine.problem.RIDE_TABLES_MAX_BYTES``); and a derived model to sharing its start rides only
while they are what it would make.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.problem
import factories
import reference
from engine.derive import derive
from engine.generate import generate
from engine.health import power_tables
from engine.plan import problem_arrays
from engine.problem import _start_ride, build_problem
from kernels.evaluate import evaluate
from kernels.health import TABLE, dead_by_steps, dead_from_start, fill_ride_steps, fill_ride_table, fill_start_ride
from kernels.health import fill_start_table
from kernels.layout import (ENV_AMBULANCE, ENV_CCS, ENV_CCS_TREATED, ENV_TRAPPED, ENV_TRAPPED_TREATED,
                            workspace_for)

ENVS = np.array([ENV_CCS, ENV_CCS_TREATED], dtype=np.int64)

#: waits of no time, whole minutes, fractions and the last the tables hold with their next minute
WAITS = [0.0, 1.0, 2.5, 17.0, 17.25, 200.0, 253.5, 254.0, 254.999]

#: rides from two places to three hospitals: none, fractions, past the power table
TRAVEL = np.array([[0.0, 3.25, 300.5], [12.0, 0.5, 41.75]])

LOAD = 2.0


def _random_chains(rng) -> np.ndarray:
    """Five random absorbing chains, not triangular: any state may improve or worsen."""
    chains = rng.random((5, 4, 4)) + 0.05
    chains[:, 3] = [0, 0, 0, 1]
    chains[:, :3, :] /= chains[:, :3, :].sum(axis=2, keepdims=True)
    return chains


def _ride(small, big, load):
    """The ride table of ``TRAVEL``'s places and hospitals (places past its rows ride no time)."""
    n = max(TRAVEL.shape)
    travel = np.zeros((n, n))
    travel[: TRAVEL.shape[0], : TRAVEL.shape[1]] = TRAVEL
    ride = np.empty((n, TRAVEL.shape[1], 4))
    fill_ride_table(travel, np.arange(TRAVEL.shape[1], dtype=np.int64), load, ENV_AMBULANCE, small, big, ride)
    return ride


def _want(chains, h, env, wait, load, place, hospital):
    """The reference's ``p_dead``: ``wait`` minutes in ``env`` from health ``h``, then the ride."""
    at_pickup = reference.propagate(h, chains[env], wait)
    return reference.propagate(at_pickup, chains[ENV_AMBULANCE], load + TRAVEL[place, hospital])[3]


def _steps(chains, load):
    small, big = power_tables(chains)
    ride = _ride(small, big, load)
    steps = np.full((len(ENVS),) + ride.shape[:2] + (small.shape[1], 4), np.nan)
    fill_ride_steps(small, ride, ENVS, steps)
    return steps


def _start_rides(chains, healths, envs, load):
    """Start-table rows for ``healths`` in ``envs`` and their rides."""
    small, big = power_tables(chains)
    table = np.empty((len(healths), small.shape[1], 4))
    fill_start_table(np.asarray(healths), np.asarray(envs, dtype=np.int64), small, table)
    ride = _ride(small, big, load)
    out = np.full((len(healths),) + ride.shape[:2] + (small.shape[1],), np.nan)
    fill_start_ride(table, ride, out)
    return out


@pytest.mark.parametrize("load", [0.0, LOAD])
def test_every_step_is_a_whole_wait_then_the_ride_from_each_state(rng, load):
    chains = _random_chains(rng)
    steps = _steps(chains, load)
    assert not np.isnan(steps).any()
    for e, env in enumerate(ENVS):
        for place in range(TRAVEL.shape[0]):
            for hospital in range(TRAVEL.shape[1]):
                for n in (0, 1, 17, 128, TABLE - 1):
                    want = [_want(chains, np.eye(4)[i], env, n, load, place, hospital) for i in range(4)]
                    np.testing.assert_allclose(steps[e, place, hospital, n], want, rtol=0, atol=1e-12,
                                               err_msg=f"env {env}, {n} minutes, place {place}, hospital {hospital}")


def test_dead_by_steps_is_the_wait_propagated_then_the_ride(rng):
    chains = _random_chains(rng)
    steps = _steps(chains, LOAD)
    for _ in range(10):
        h = rng.dirichlet(np.ones(4))
        for e, env in enumerate(ENVS):
            for place in range(TRAVEL.shape[0]):
                for hospital in range(TRAVEL.shape[1]):
                    for wait in WAITS:
                        got = dead_by_steps(h[0], h[1], h[2], h[3], steps, np.uint64(e), np.uint64(place),
                                            np.uint64(hospital), wait)
                        want = _want(chains, h, env, wait, LOAD, place, hospital)
                        assert got == pytest.approx(want, abs=1e-12), (env, wait, place, hospital)


def test_a_start_row_read_with_its_ride_is_the_observed_health_propagated_then_the_ride(rng):
    """Rows for every environment a first segment may be in (the kernels read those at a site
    only, but the table is every row's), read at whole and fractional waits."""
    chains = _random_chains(rng)
    envs = [ENV_CCS, ENV_CCS_TREATED, ENV_TRAPPED, ENV_TRAPPED_TREATED, ENV_CCS]
    healths = [rng.dirichlet(np.ones(4)) for _ in envs]
    start_ride = _start_rides(chains, healths, envs, LOAD)
    assert not np.isnan(start_ride).any()
    for k, (h, env) in enumerate(zip(healths, envs)):
        for place in range(TRAVEL.shape[0]):
            for hospital in range(TRAVEL.shape[1]):
                assert start_ride[k, place, hospital, TABLE - 1] == pytest.approx(
                    _want(chains, h, env, TABLE - 1, LOAD, place, hospital), abs=1e-12)
                for wait in WAITS:
                    got = dead_from_start(start_ride, np.uint64(k), np.uint64(place), np.uint64(hospital), wait)
                    want = _want(chains, h, env, wait, LOAD, place, hospital)
                    assert got == pytest.approx(want, abs=1e-12), (env, wait, place, hospital)


def test_a_problem_too_big_for_the_tables_gets_what_fits(monkeypatch, london):
    P = build_problem(london)
    L, H = P.ride.shape[:2]
    assert P.ride_steps.shape == (2, L, H, TABLE, 4)
    assert P.start_ride.shape == (len(P.start_table), L, H, TABLE) and len(P.start_table) >= 2
    row = P.start_ride[0].nbytes
    monkeypatch.setattr(engine.problem, "RIDE_TABLES_MAX_BYTES", 2 * row + row // 2)
    small = build_problem(london)
    assert small.ride_steps.shape == (2, 0, 0, TABLE, 4)
    assert small.start_ride.shape == (2, L, H, TABLE)
    assert np.array_equal(small.start_ride, P.start_ride[:2])


def test_a_derived_model_shares_its_start_rides_only_while_they_are_what_it_would_make(london):
    P = build_problem(london)
    assert _start_ride(P.start_table, P.ride, P) is P.start_ride
    grown = np.concatenate([P.start_table, P.start_table[:1] * 0.5])  # a row made since
    assert _start_ride(grown, P.ride, P) is P.start_ride
    renumbered = np.concatenate([P.start_table[1:], P.start_table[:1]])
    assert not np.array_equal(renumbered, P.start_table)
    for table, ride in ((P.start_table.copy(), P.ride.copy()),  # the same rides, made again
                        (renumbered, P.ride)):
        fresh = _start_ride(table, ride, P)
        assert fresh is not P.start_ride
        assert np.array_equal(fresh, _start_ride(table, ride))
    assert not np.array_equal(_start_ride(renumbered, P.ride, P), P.start_ride)


def test_a_model_derived_across_a_change_of_roads_has_no_tables_and_scores_as_a_reload():
    """Remaking the tables would take a delta's whole millisecond (``bench/test_online.py``): a
    derived model with new rides has none, and propagates its waits."""
    d = generate("random", seed=7, casualties=20, paramedics=4, fire=2, hospitals=3)
    sc = engine.load_scenario(d)
    assert build_problem(sc).start_ride.shape[0] > 0
    slower = dict(d, network=dict(d["network"], speed_kmh=d["network"]["speed_kmh"] / 2))
    derived, reloaded = derive(sc, d, slower), engine.load_scenario(slower)
    P, R = problem_arrays(derived), problem_arrays(reloaded)
    assert P.ride is not problem_arrays(sc).ride and np.array_equal(P.ride, R.ride)
    assert P.ride_steps.size == 0 and P.start_ride.size == 0 and R.start_ride.size > 0
    plan = factories.random_plan(derived, np.random.default_rng(1), mode="ordered")
    arrays = plan.to_arrays(derived)
    got = evaluate(P, *arrays, workspace_for(P))
    want = evaluate(R, *arrays, workspace_for(R))
    np.testing.assert_allclose(got[:3], want[:3], rtol=1e-12, atol=1e-12)


def test_the_evaluator_scores_alike_with_the_tables_and_without_them(rng, warm_jit):
    """Every casualty's ``p_dead`` of random plans on random scenarios, read off the tables and
    propagated (empty tables), and both against the reference."""
    read_start = read_steps = 0  # casualties whose wait before the ride each table may give
    for _ in range(250):
        sc = engine.load_scenario(factories.random_scenario(rng))
        P = problem_arrays(sc)
        without = factories.without_ride_tables(P)
        plan = factories.random_plan(sc, rng)
        starts, order, hosp, pins = plan.to_arrays(sc)
        W, Wn = workspace_for(P), workspace_for(P)
        got = evaluate(P, starts, order, hosp, pins, W)
        plain = evaluate(without, starts, order, hosp, pins, Wn)
        want = reference.evaluate(sc, plan)
        if want.cycle:
            continue
        np.testing.assert_allclose(got[:3], plain[:3], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(W.pdead, Wn.pdead, rtol=0, atol=1e-12)
        for c, expected in enumerate(want.p_dead):
            if expected is not None and want.status[c] == "active" and not np.isnan(W.pdead[c]):
                assert W.pdead[c] == pytest.approx(expected, abs=1e-12), sc.model.casualties[c].id
        active = P.status == 0
        treated_at_site = (W.treated_at > P.obs) & (W.treated_at < W.pickup)
        read_start += int((active & ~P.trapped & ~treated_at_site & (W.pickup > P.obs)
                           & (W.pickup - P.obs < TABLE - 1)).sum())
        read_steps += int((active & (P.trapped & (W.rescued > P.obs) & (W.pickup > W.rescued)
                                     & (W.pickup - W.rescued < TABLE - 1)
                                     | ~P.trapped & treated_at_site & (W.pickup - W.treated_at < TABLE - 1))).sum())
    assert read_start > 100 and read_steps > 100
