"""A wait at the site then the ride, read off one table (``kernels.health``: ``fill_ride_steps``
and ``dead_by_steps``, ``fill_start_ride`` and ``dead_from_start``, ``fill_ride_long`` and
``dead_long``).

A casualty's timeline ends with a wait at its site (treated or not) and the ride to its
hospital. The objective reads the two together off ``ProblemArrays.start_ride`` when the wait
is the casualty's first segment, else off ``ride_steps``; a wait past them, of whole multiples of
the power table and a rest, has its rest propagated and the multiples read off ``ride_long``.
These tests hold the tables and their
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
from kernels.objective import pdead_at_arrival
from kernels.health import TABLE, dead_by_steps, dead_from_start, fill_ride_steps, fill_ride_table, fill_start_ride
from kernels.health import LONG, dead_long, fill_ride_long, fill_start_table
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


def _every_ride():
    """``(e, env, place, hospital)``: each environment of ``ENVS`` and each ride of ``TRAVEL``."""
    for e, env in enumerate(ENVS):
        for place in range(TRAVEL.shape[0]):
            for hospital in range(TRAVEL.shape[1]):
                yield e, env, place, hospital


@pytest.mark.parametrize("load", [0.0, LOAD])
def test_every_step_is_a_whole_wait_then_the_ride_from_each_state(rng, load):
    chains = _random_chains(rng)
    steps = _steps(chains, load)
    assert not np.isnan(steps).any()
    for e, env, place, hospital in _every_ride():
        for n in (0, 1, 17, 128, TABLE - 1):
            want = [_want(chains, np.eye(4)[i], env, n, load, place, hospital) for i in range(4)]
            np.testing.assert_allclose(steps[e, place, hospital, n], want, rtol=0, atol=1e-12,
                                       err_msg=f"env {env}, {n} minutes, place {place}, hospital {hospital}")


def test_dead_by_steps_is_the_wait_propagated_then_the_ride(rng):
    chains = _random_chains(rng)
    steps = _steps(chains, LOAD)
    for _ in range(10):
        h = rng.dirichlet(np.ones(4))
        for e, env, place, hospital in _every_ride():
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


def _long(chains, load):
    small, big = power_tables(chains)
    ride = _ride(small, big, load)
    out = np.full((len(ENVS),) + ride.shape[:2] + (LONG, 4), np.nan)
    fill_ride_long(big, ride, ENVS, out)
    return out


def test_every_long_entry_is_whole_multiples_of_the_table_then_the_ride_from_each_state(rng):
    chains = _random_chains(rng)
    long = _long(chains, LOAD)
    assert not np.isnan(long).any()
    for e, env, place, hospital in _every_ride():
        for q in range(1, LONG + 1):
            want = [_want(chains, np.eye(4)[i], env, TABLE * q, LOAD, place, hospital) for i in range(4)]
            np.testing.assert_allclose(long[e, place, hospital, q - 1], want, rtol=0, atol=1e-12)
            h = rng.dirichlet(np.ones(4))
            got = dead_long(h[0], h[1], h[2], h[3], long, np.uint64(e), np.uint64(place), np.uint64(hospital),
                            np.uint64(q - 1))
            assert got == pytest.approx(_want(chains, h, env, TABLE * q, LOAD, place, hospital), abs=1e-12)


#: waits before a ride on either side of the tables: the last minute they hold, within a minute of
#: a multiple of the table (the fraction taken past its last row), the last multiple ``ride_long``
#: holds and past it (propagated), the whole minutes and fractions of each
LONG_WAITS = [254.5, 255.0, 255.5, 256.0, 256.25, 300.0, 511.0, 511.75, 512.0, 767.5, 1000.125,
              TABLE * LONG + 200.5, TABLE * (LONG + 1) - 0.25, TABLE * (LONG + 1), TABLE * (LONG + 1) + 7.5,
              10_000.0]


@pytest.mark.parametrize("first", [True, False], ids=["first segment", "after a rescue"])
def test_a_wait_past_the_tables_is_the_health_propagated_then_the_ride(rng, first):
    """The objective's reading of a wait before the ride (``pdead_at_arrival``), for a casualty
    whose wait is its first segment (its start row read) or follows a rescue (propagated), at
    waits within, across and past ``ride_long``, with the tables and without them."""
    chains = _random_chains(rng)
    small, big = power_tables(chains)
    ride = _ride(small, big, LOAD)
    steps, long = _steps(chains, LOAD), _long(chains, LOAD)
    h = rng.dirichlet(np.ones(4))
    table = np.empty((2, small.shape[1], 4))
    envs = np.array([ENV_CCS, ENV_TRAPPED], dtype=np.int64)
    fill_start_table(np.array([h, h]), envs, small, table)
    start_ride = np.empty((2,) + ride.shape[:2] + (small.shape[1],))
    fill_start_ride(table, ride, start_ride)
    rescue = 0.0 if first else 31.5
    row, row_env = (0, ENV_CCS) if first else (1, ENV_TRAPPED)
    at_site = h if first else reference.propagate(h, chains[ENV_TRAPPED], rescue)
    for wait in LONG_WAITS:
        for place in range(TRAVEL.shape[0]):
            for hospital in range(TRAVEL.shape[1]):
                pickup = rescue + wait
                arrival = pickup + LOAD + TRAVEL[place, hospital]
                want = _want(chains, at_site, ENV_CCS, wait, LOAD, place, hospital)
                for tables in ((start_ride, steps, long), (start_ride[:0], steps[:, :0, :0], long[:, :0, :0, :0])):
                    got = pdead_at_arrival(h[None], 0, 0.0, not first, rescue, np.inf, pickup, arrival, small, big,
                                           table, row, row_env, ride, *tables, np.uint64(place), np.uint64(hospital))
                    assert got == pytest.approx(want, abs=1e-12), (wait, place, hospital, len(tables[0]))


def test_a_problem_too_big_for_the_tables_gets_what_fits(monkeypatch, london):
    P = build_problem(london)
    L, H = P.ride.shape[:2]
    assert P.ride_steps.shape == (2, L, H, TABLE, 4)
    assert P.start_ride.shape == (len(P.start_table), L, H, TABLE) and len(P.start_table) >= 2
    assert P.ride_long.shape == (2, L, H, LONG, 4)
    row = P.start_ride[0].nbytes
    monkeypatch.setattr(engine.problem, "RIDE_TABLES_MAX_BYTES", 2 * row + row // 2)
    small = build_problem(london)
    assert small.ride_steps.shape == (2, 0, 0, TABLE, 4)
    assert small.start_ride.shape == (2, L, H, TABLE)
    assert np.array_equal(small.start_ride, P.start_ride[:2])
    assert np.array_equal(small.ride_long, P.ride_long)  # a fifteenth of a start row
    monkeypatch.setattr(engine.problem, "RIDE_TABLES_MAX_BYTES", P.ride_long.nbytes - 1)
    smaller = build_problem(london)
    assert smaller.ride_long.size == 0 and smaller.start_ride.size == 0


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
    derived model with new rides has none, and propagates its waits; all but ``ride_long``, which
    is cheap and made again, as a reload makes it."""
    d = generate("random", seed=7, casualties=20, paramedics=4, fire=2, hospitals=3)
    sc = engine.load_scenario(d)
    assert build_problem(sc).start_ride.shape[0] > 0
    slower = dict(d, network=dict(d["network"], speed_kmh=d["network"]["speed_kmh"] / 2))
    derived, reloaded = derive(sc, d, slower), engine.load_scenario(slower)
    P, R = problem_arrays(derived), problem_arrays(reloaded)
    assert P.ride is not problem_arrays(sc).ride and np.array_equal(P.ride, R.ride)
    assert P.ride_steps.size == 0 and P.start_ride.size == 0 and R.start_ride.size > 0
    assert P.ride_long.size > 0 and np.array_equal(P.ride_long, R.ride_long)
    assert not np.array_equal(P.ride_long, problem_arrays(sc).ride_long)
    plan = factories.random_plan(derived, np.random.default_rng(1), mode="ordered")
    arrays = plan.to_arrays(derived)
    got = evaluate(P, *arrays, workspace_for(P))
    want = evaluate(R, *arrays, workspace_for(R))
    np.testing.assert_allclose(got[:3], want[:3], rtol=1e-12, atol=1e-12)


def _scores_alike(sc, plan) -> tuple[int, int, int]:
    """Every casualty's ``p_dead`` of ``plan`` read off the tables and propagated (empty tables),
    and both against the reference; returns how many casualties' waits before the ride each
    table (``start_ride``, ``ride_steps``, ``ride_long``) may have given."""
    P = problem_arrays(sc)
    without = factories.without_ride_tables(P)
    starts, order, hosp, pins = plan.to_arrays(sc)
    W, Wn = workspace_for(P), workspace_for(P)
    got = evaluate(P, starts, order, hosp, pins, W)
    plain = evaluate(without, starts, order, hosp, pins, Wn)
    want = reference.evaluate(sc, plan)
    if want.cycle:
        return 0, 0, 0
    np.testing.assert_allclose(got[:3], plain[:3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(W.pdead, Wn.pdead, rtol=0, atol=1e-12)
    for c, expected in enumerate(want.p_dead):
        if expected is not None and want.status[c] == "active" and not np.isnan(W.pdead[c]):
            assert W.pdead[c] == pytest.approx(expected, abs=1e-12), sc.model.casualties[c].id
    active = P.status == 0
    treated_at_site = (W.treated_at > P.obs) & (W.treated_at < W.pickup)
    read_start = int((active & ~P.trapped & ~treated_at_site & (W.pickup > P.obs)
                      & (W.pickup - P.obs < TABLE - 1)).sum())
    read_steps = int((active & (P.trapped & (W.rescued > P.obs) & (W.pickup > W.rescued)
                                & (W.pickup - W.rescued < TABLE - 1)
                                | ~P.trapped & treated_at_site & (W.pickup - W.treated_at < TABLE - 1))).sum())
    at_site = np.maximum(P.obs, np.where(P.trapped, W.rescued, -np.inf))
    at_site = np.where((W.treated_at > at_site) & (W.treated_at < W.pickup), W.treated_at, at_site)
    wait = W.pickup - at_site
    read_long = int((active & (wait >= TABLE) & (wait < TABLE * (LONG + 1))).sum())
    return read_start, read_steps, read_long


def test_the_evaluator_scores_alike_with_the_tables_and_without_them(rng, warm_jit):
    """Random plans on random scenarios."""
    read = np.zeros(3, dtype=np.int64)
    for _ in range(250):
        sc = engine.load_scenario(factories.random_scenario(rng))
        read += _scores_alike(sc, factories.random_plan(sc, rng))
    assert read[0] > 100 and read[1] > 100, read


def test_the_evaluator_scores_alike_with_the_tables_and_without_them_when_the_waits_are_long(rng, warm_jit):
    """Two ambulances for sixty casualties: the later ones wait hours before their ride."""
    read = np.zeros(3, dtype=np.int64)
    for seed in range(6):
        sc = engine.load_scenario(generate("random", seed=seed, casualties=60, paramedics=2, fire=2, hospitals=3))
        read += _scores_alike(sc, factories.random_plan(sc, rng, mode="ordered"))
    assert read[2] > 100, read
