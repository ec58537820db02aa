"""Health (SPEC §3): triage rules, categories, default and treated chains, propagation, validation."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import reference
from engine import health, triage

I4 = np.eye(4)


def _scenario(casualties=(), **extra):
    return {"format": "goldenhour.scenario/1", "network": {"kind": "geo", "speed_kmh": 30.0},
            "hospitals": [{"id": "H", "lat": 51.5, "lon": -0.1, "capacity": 1}],
            "sites": [{"id": "S", "lat": 51.51, "lon": -0.1}],
            "responders": [{"id": "amb", "kind": "paramedic", "start": "H"}],
            "casualties": list(casualties), **extra}


def _health_of(value):
    sc = engine.load_scenario(_scenario([{"id": "c", "site": "S", "health": value}]))
    return sc.health[0]


# --- UK triage sieve -------------------------------------------------------------------------------

@pytest.mark.parametrize("obs, category", [
    # walking -> P3, whatever else is observed
    ({"walking": True}, "P3"),
    ({"walking": True, "breathing": False, "respiratory_rate": 40, "pulse": 150}, "P3"),
    # not breathing after the airway is opened -> dead
    ({"walking": False, "breathing": False}, "dead"),
    ({"breathing": False, "respiratory_rate": 5}, "dead"),
    # respiratory rate < 10 or > 29 -> P1 (10 and 29 themselves are not)
    ({"walking": False, "breathing": True, "respiratory_rate": 9}, "P1"),
    ({"walking": False, "breathing": True, "respiratory_rate": 9.9}, "P1"),
    ({"walking": False, "breathing": True, "respiratory_rate": 10}, "P2"),
    ({"walking": False, "breathing": True, "respiratory_rate": 29}, "P2"),
    ({"walking": False, "breathing": True, "respiratory_rate": 30}, "P1"),
    ({"respiratory_rate": 0}, "P1"),
    # capillary refill > 2 s or pulse > 120 -> P1 (2 s and 120 themselves are not)
    ({"respiratory_rate": 16, "capillary_refill": 2.0}, "P2"),
    ({"respiratory_rate": 16, "capillary_refill": 2.5}, "P1"),
    ({"respiratory_rate": 16, "pulse": 120}, "P2"),
    ({"respiratory_rate": 16, "pulse": 121}, "P1"),
    ({"respiratory_rate": 16, "capillary_refill": 1.0, "pulse": 130}, "P1"),
    # otherwise P2; a missing observation never triggers its rule
    ({"walking": False, "breathing": True, "respiratory_rate": 16, "capillary_refill": 1.5, "pulse": 80}, "P2"),
    ({}, "P2"),
    ({"walking": False}, "P2"),
    ({"breathing": True}, "P2"),
])
def test_sieve(obs, category):
    assert triage.sieve(obs) == category
    assert list(_health_of({"sieve": obs})) == list(health.one_hot({"P3": 0, "P2": 1, "P1": 2, "dead": 3}[category]))


# --- START -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("obs, category", [
    # walking -> minor (green): our state 0 "delayed"
    ({"walking": True}, "delayed"),
    ({"walking": True, "breathing": False, "follows_commands": False}, "delayed"),
    # not breathing after the airway is repositioned -> deceased
    ({"walking": False, "breathing": False}, "deceased"),
    # respiratory rate > 30 -> immediate (30 itself is not)
    ({"breathing": True, "respiratory_rate": 31}, "immediate"),
    ({"breathing": True, "respiratory_rate": 30}, "urgent"),
    ({"breathing": True, "respiratory_rate": 5}, "urgent"),  # START has no lower bound
    # radial pulse absent or capillary refill > 2 s -> immediate
    ({"breathing": True, "respiratory_rate": 20, "radial_pulse": False}, "immediate"),
    ({"breathing": True, "respiratory_rate": 20, "radial_pulse": True}, "urgent"),
    ({"breathing": True, "capillary_refill": 2.1}, "immediate"),
    ({"breathing": True, "capillary_refill": 2.0}, "urgent"),
    # cannot follow simple commands -> immediate
    ({"breathing": True, "follows_commands": False}, "immediate"),
    ({"breathing": True, "follows_commands": True}, "urgent"),
    # otherwise START's delayed (yellow), which is our state 1 "urgent"
    ({"walking": False, "breathing": True, "respiratory_rate": 20, "radial_pulse": True,
      "capillary_refill": 1.0, "follows_commands": True}, "urgent"),
    ({}, "urgent"),
])
def test_start(obs, category):
    assert triage.start(obs) == category
    state = {"delayed": 0, "urgent": 1, "immediate": 2, "deceased": 3}[category]
    assert list(_health_of({"start": obs})) == list(I4[state])


def test_start_yellow_is_state_1_but_category_delayed_is_state_0():
    yellow = {"walking": False, "breathing": True, "respiratory_rate": 20, "radial_pulse": True,
              "follows_commands": True}
    assert list(_health_of({"start": yellow})) == [0.0, 1.0, 0.0, 0.0]
    assert list(_health_of("delayed")) == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("category, state", [
    ("delayed", 0), ("urgent", 1), ("immediate", 2), ("deceased", 3),
    ("P3", 0), ("P2", 1), ("P1", 2), ("dead", 3),
])
def test_category_is_one_hot(category, state):
    assert list(_health_of(category)) == list(I4[state])


def test_vector_health_kept_as_given():
    v = [0.1, 0.2, 0.3, 0.4]
    assert list(_health_of(v)) == v


# --- chains --------------------------------------------------------------------------------------

DEFAULTS = {  # SPEC §3 table, written out as matrices
    "trapped": [[0.996, 0.004, 0, 0], [0, 0.98, 0.02, 0], [0, 0, 0.96, 0.04], [0, 0, 0, 1]],
    "ccs": [[0.998, 0.002, 0, 0], [0, 0.99, 0.01, 0], [0, 0, 0.975, 0.025], [0, 0, 0, 1]],
    "ambulance": [[0.999, 0.001, 0, 0], [0, 0.995, 0.005, 0], [0, 0, 0.9875, 0.0125], [0, 0, 0, 1]],
}


def test_default_chains_table():
    chains = engine.load_scenario(_scenario()).chains
    assert chains.shape == (5, 4, 4)
    for k, name in enumerate(("trapped", "ccs", "ambulance")):
        np.testing.assert_allclose(chains[k], DEFAULTS[name], rtol=0, atol=1e-15)
    # treated defaults: every transition probability halved (slowdown 0.5)
    np.testing.assert_allclose(chains[3], [[0.998, 0.002, 0, 0], [0, 0.99, 0.01, 0], [0, 0, 0.98, 0.02], [0, 0, 0, 1]],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(chains[4], [[0.999, 0.001, 0, 0], [0, 0.995, 0.005, 0], [0, 0, 0.9875, 0.0125],
                                           [0, 0, 0, 1]], rtol=0, atol=1e-15)


def test_treated_chain_is_derived_as_identity_plus_slowdown_times_difference():
    P = [[0.7, 0.1, 0.15, 0.05], [0.2, 0.5, 0.2, 0.1], [0.05, 0.05, 0.6, 0.3], [0, 0, 0, 1]]
    s = 0.3
    sc = engine.load_scenario(_scenario(chains={"trapped": P}, treatment_slowdown=s))
    # I + 0.3 (P - I): off-diagonal entries times 0.3, the diagonal 1 - 0.3 (1 - p_ii)
    want = [[1 - 0.3 * 0.3, 0.03, 0.045, 0.015],
            [0.06, 1 - 0.3 * 0.5, 0.06, 0.03],
            [0.015, 0.015, 1 - 0.3 * 0.4, 0.09],
            [0, 0, 0, 1]]
    np.testing.assert_allclose(sc.chains[0], P, rtol=0, atol=0)
    np.testing.assert_allclose(sc.chains[3], want, rtol=0, atol=1e-15)
    # the ccs chain is the default one, its treated variant derived with the same slowdown
    np.testing.assert_allclose(sc.chains[4], np.eye(4) + s * (np.array(DEFAULTS["ccs"]) - np.eye(4)), atol=1e-15)


@pytest.mark.parametrize("s", [0.0, 1.0])
def test_treated_chain_at_the_slowdown_bounds(s):
    sc = engine.load_scenario(_scenario(treatment_slowdown=s))
    if s == 0.0:  # treatment stops every transition
        np.testing.assert_array_equal(sc.chains[3], np.eye(4))
        np.testing.assert_array_equal(sc.chains[4], np.eye(4))
    else:  # treatment changes nothing
        np.testing.assert_allclose(sc.chains[3], sc.chains[0], atol=1e-15)
        np.testing.assert_allclose(sc.chains[4], sc.chains[1], atol=1e-15)


def test_a_given_treated_chain_is_used_as_given():
    T = [[0.9, 0.1, 0, 0], [0.3, 0.7, 0, 0], [0, 0.2, 0.8, 0], [0, 0, 0, 1]]
    sc = engine.load_scenario(_scenario(chains={"ccs_treated": T}, treatment_slowdown=0.1))
    np.testing.assert_array_equal(sc.chains[4], T)
    np.testing.assert_allclose(sc.chains[3], np.eye(4) + 0.1 * (np.array(DEFAULTS["trapped"]) - np.eye(4)), atol=1e-15)


@pytest.mark.parametrize("chain, fragment", [
    ([[0.9, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "row 0 sums to 1.1"),
    ([[1.1, -0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "row 0 has a negative"),
    ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0.5, 0.5]], "row 3 must be [0, 0, 0, 1]"),
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], "4x4"),
])
def test_bad_chains_are_rejected_with_their_path(chain, fragment):
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(_scenario(chains={"ambulance": chain}))
    assert any(p.path == "chains.ambulance" and fragment in p.message for p in err.value.problems), err.value


@pytest.mark.parametrize("value, fragment", [
    ([0.5, 0.5, 0.2, 0.0], "sum to 1.2"),
    ([0.5, 0.5, 0.0], "4 entries"),
    ([1.5, -0.5, 0.0, 0.0], ">= 0"),
    ("P4", "P1"),  # the message lists the categories
])
def test_bad_health_is_rejected_with_its_path(value, fragment):
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(_scenario([{"id": "c", "site": "S", "health": value}]))
    assert any(p.path.startswith("casualties[0].health") and fragment in p.message for p in err.value.problems), \
        err.value


# --- propagation and known dead ----------------------------------------------------------------

@pytest.mark.parametrize("delta", [0.0, 0.25, 1.0, 3.75, 300.5])
def test_engine_propagate_follows_the_definition(delta):
    P = np.array([[0.7, 0.1, 0.15, 0.05], [0.2, 0.5, 0.2, 0.1], [0.05, 0.05, 0.6, 0.3], [0, 0, 0, 1]])
    h = np.array([0.4, 0.3, 0.2, 0.1])
    n = int(np.floor(delta))
    f = delta - n
    want = h @ np.linalg.matrix_power(P, n) @ ((1 - f) * np.eye(4) + f * P)
    np.testing.assert_allclose(health.propagate(h, P, delta), want, rtol=0, atol=1e-14)
    np.testing.assert_allclose(reference.propagate(h, P, delta), want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("delta", [0.0, 0.25, 1.0, 3.75, 255.0, 255.5, 256.0, 300.5, 4000.25])
def test_propagation_from_the_power_tables_follows_the_definition(delta):
    chains = np.array([DEFAULTS[k] for k in ("trapped", "ccs", "ambulance")], dtype=float)
    chains[1] = [[0.7, 0.1, 0.15, 0.05], [0.2, 0.5, 0.2, 0.1], [0.05, 0.05, 0.6, 0.3], [0, 0, 0, 1]]  # not triangular
    small, _ = health.power_tables(chains)
    h = np.array([0.4, 0.3, 0.2, 0.1])
    n = int(np.floor(delta))
    f = delta - n
    for k, P in enumerate(chains):
        want = h @ np.linalg.matrix_power(P, n) @ ((1 - f) * np.eye(4) + f * P)
        np.testing.assert_allclose(health.propagate_tabled(h, small[k], P, delta), want, rtol=0, atol=1e-13)


def test_half_a_minute_is_halfway_between_whole_minutes():
    # P(0.5) = (I + P) / 2 and P(1.5) = P (I + P) / 2: linear inside a minute
    P = np.array(DEFAULTS["trapped"], dtype=float)
    np.testing.assert_allclose(health.step_matrix(P, 0.5), (np.eye(4) + P) / 2, atol=1e-15)
    np.testing.assert_allclose(health.step_matrix(P, 1.5), (P + P @ P) / 2, atol=1e-15)


def test_known_dead_is_exactly_dead():
    assert health.is_known_dead(np.array([0.0, 0.0, 0.0, 1.0]))
    assert not health.is_known_dead(np.array([0.0, 0.0, 1e-12, 1.0 - 1e-12]))
    # a known-dead casualty takes no task; an almost-dead one needs its transport
    sc = engine.load_scenario(_scenario([{"id": "d", "site": "S", "health": "dead"},
                                         {"id": "a", "site": "S", "health": [0.0, 0.0, 1e-12, 1.0 - 1e-12]}]))
    ok = {"format": "goldenhour.plan/1", "routes": {"amb": [{"task": "transport", "casualty": "a", "hospital": "H"}]}}
    obj = engine.evaluate(sc, ok)
    assert obj.expected_fatalities == pytest.approx(2.0, abs=1e-11)
    with pytest.raises(engine.PlanError, match="known dead"):
        engine.load_plan(sc, {"format": "goldenhour.plan/1", "routes": {"amb": [
            {"task": "transport", "casualty": "a", "hospital": "H"},
            {"task": "transport", "casualty": "d", "hospital": "H"}]}})
    with pytest.raises(engine.PlanError, match="no transport task for casualty 'a'"):
        engine.load_plan(sc, {"format": "goldenhour.plan/1", "routes": {}})
