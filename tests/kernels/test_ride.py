"""A ride's column of its step matrix (``kernels.health.fill_ride_table``, ``dead_on_ride``).

The objective reads a casualty's last segment, the ride from its site to its hospital, off a
table made once per model. These tests hold the table to SPEC §3's ``P(δ)`` stated plainly (the
reference's), for rides of no time, whole minutes, fractions and beyond the power tables, and the
evaluator using it to the reference's ``p_dead`` of every casualty.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
import factories
import reference
from engine.health import power_tables
from engine.plan import problem_arrays
from kernels.evaluate import evaluate
from kernels.health import dead_on_ride, fill_ride_table
from kernels.layout import ENV_AMBULANCE, workspace_for


def _random_chains(rng) -> np.ndarray:
    """Five random absorbing chains, not triangular: any state may improve or worsen."""
    chains = rng.random((5, 4, 4)) + 0.05
    chains[:, 3] = [0, 0, 0, 1]
    chains[:, :3, :] /= chains[:, :3, :].sum(axis=2, keepdims=True)
    return chains


#: rides of no time, whole minutes, fractions, the table's last minutes and far beyond them
RIDES = [0.0, 1.0, 2.5, 17.0, 17.25, 254.5, 255.0, 255.75, 256.0, 300.5, 4000.25]


def test_every_ride_is_the_dead_column_of_its_step_matrix(rng):
    chains = _random_chains(rng)
    small, big = power_tables(chains)
    for load in (0.0, 2.0, 0.75):
        travel = np.array([r - load if r >= load else r for r in RIDES], dtype=float)
        travel = np.add.outer(np.zeros(3), travel)  # three places, a hospital per ride
        travel[1] = travel[0][::-1]
        travel[2] = 0.0
        hosp_loc = np.arange(len(RIDES), dtype=np.int64)
        out = np.full((3, len(RIDES), 4), np.nan)
        fill_ride_table(travel, hosp_loc, load, ENV_AMBULANCE, small, big, out)
        for place in range(3):
            for h in range(len(RIDES)):
                delta = load + travel[place, h]
                want = reference.propagate(np.eye(4), chains[ENV_AMBULANCE], delta)[:, 3]
                np.testing.assert_allclose(out[place, h], want, rtol=0, atol=1e-12, err_msg=f"ride of {delta}")
        if load == 0.0:  # no ride at all: the casualty arrives as it left, to the bit
            assert (out[2] == [0.0, 0.0, 0.0, 1.0]).all()


def test_a_casualty_dead_on_ride_is_its_health_propagated(rng):
    chains = _random_chains(rng)
    small, big = power_tables(chains)
    travel = np.array([RIDES])
    out = np.empty((1, len(RIDES), 4))
    fill_ride_table(travel, np.arange(len(RIDES), dtype=np.int64), 0.0, ENV_AMBULANCE, small, big, out)
    for _ in range(20):
        h = rng.dirichlet(np.ones(4))
        for k, delta in enumerate(RIDES):
            want = reference.propagate(h, chains[ENV_AMBULANCE], delta)[3]
            assert dead_on_ride(h[0], h[1], h[2], h[3], out, 0, k) == pytest.approx(want, abs=1e-12)
    # no ride: the health as it is, to the bit
    assert dead_on_ride(0.1, 0.2, 0.3, 0.4, out, 0, 0) == 0.4


def test_the_evaluator_reads_each_casualtys_ride_as_the_reference_propagates_it(rng, warm_jit):
    """Every casualty's ``p_dead`` of random plans on random scenarios (random chains, trapped,
    treated, long horizons) against the reference's own timeline, casualty by casualty."""
    checked = 0
    for _ in range(250):
        sc = engine.load_scenario(factories.random_scenario(rng))
        P = problem_arrays(sc)
        plan = factories.random_plan(sc, rng)
        starts, order, hosp, pins = plan.to_arrays(sc)
        W = workspace_for(P)
        evaluate(P, starts, order, hosp, pins, W)
        want = reference.evaluate(sc, plan)
        if want.cycle:
            continue
        for c, expected in enumerate(want.p_dead):
            if expected is not None and want.status[c] == "active" and not np.isnan(W.pdead[c]):
                assert W.pdead[c] == pytest.approx(expected, abs=1e-12), sc.model.casualties[c].id
                checked += 1
    assert checked > 300
