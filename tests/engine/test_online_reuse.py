"""What the online engine reuses between deltas must equal what a fresh computation gives.

The travel matrix (``load_scenario(..., reuse=)``), the health power tables (cached per chains),
the incumbent's arrays (``repair.carry_over``), the annealer's fitted temperatures
(``Annealing.reheat``) and the scenarios derived when a task is issued (``with_available``) or a
health observation arrives (``with_casualties``) are all shortcuts; each is checked here against the slow path.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

import engine
from engine.algorithms import Annealing, SearchState
from engine.construct import greedy
from engine.deltas import apply_delta, copy_model, parse_delta
from engine.generate import generate
from engine.health import _power_tables, power_tables
from engine.repair import carry_over, repair
from engine.plan import problem_arrays
from engine.errors import ScenarioError
from engine.scenario import load_scenario, with_available, with_casualties, with_hospitals


def assert_same_scenario(fast, slow) -> None:
    """A derived scenario equals a reload: the same model and the same problem arrays."""
    assert fast.model == slow.model
    for name, a, b in zip(problem_arrays(fast)._fields, problem_arrays(fast), problem_arrays(slow)):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name


def assert_reported_as_a_reload(derive, model: dict) -> None:
    """``derive()`` raises the problems a reload of ``model`` raises."""
    with pytest.raises(ScenarioError) as fast:
        derive()
    with pytest.raises(ScenarioError) as slow:
        load_scenario(model)
    assert sorted(map(str, fast.value.problems)) == sorted(map(str, slow.value.problems))


@pytest.fixture(scope="module")
def base():
    sc = load_scenario(generate("random", seed=3, casualties=30, paramedics=5, fire=2, hospitals=4))
    return sc, sc.to_dict()


def test_travel_is_reused_only_when_network_and_places_are_unchanged(base):
    sc, d = base
    same = copy_model(d)
    same["casualties"][0]["health"] = "immediate"
    reused = load_scenario(same, reuse=sc)
    assert reused.travel is sc.travel
    slower = copy_model(d)
    slower["network"] = dict(d["network"], speed_kmh=d["network"]["speed_kmh"] / 2)
    fresh = load_scenario(slower, reuse=sc)
    assert fresh.travel is not sc.travel
    np.testing.assert_allclose(fresh.travel, 2 * sc.travel)
    moved = copy_model(d)
    moved["sites"][0] = dict(d["sites"][0], lat=d["sites"][0]["lat"] + 0.01)
    again = load_scenario(moved, reuse=sc)
    np.testing.assert_array_equal(again.travel, load_scenario(moved).travel)
    assert not np.array_equal(again.travel, sc.travel)


def test_cached_power_tables_equal_fresh_ones(base):
    sc, _ = base
    small, big = power_tables(sc.chains)
    small2, big2 = _power_tables(np.ascontiguousarray(sc.chains))
    np.testing.assert_array_equal(small, small2)
    np.testing.assert_array_equal(big, big2)
    other = sc.chains.copy()
    other[0] = np.eye(4)
    assert not np.array_equal(power_tables(other)[0], small)
    assert power_tables(sc.chains)[0] is small  # the same chains: the same tables, not recomputed


@pytest.mark.parametrize("delta", [
    {"type": "health_observed", "time": 3.0, "casualty": "c001", "health": "immediate"},
    {"type": "clock", "time": 5.0},
    {"type": "hospital_capacity", "time": 1.0, "hospital": "h01", "capacity": 0},
    {"type": "health_observed", "time": 2.0, "casualty": "c002", "health": [0, 0, 0, 1]},
])
def test_carry_over_equals_repair_or_declines(base, delta):
    sc, d = base
    sol = greedy(sc)
    pydelta = parse_delta(_with_ids(delta, sc))
    sc2 = load_scenario(apply_delta(sc, d, pydelta, lambda kind, cid: 10.0), reuse=sc)
    fast = carry_over(sc2, sol)
    slow = repair(sc2, sol.to_plan(), {})
    if fast is None:  # a dead casualty's tasks must go: only repair can do that
        assert delta.get("health") == [0, 0, 0, 1]
        return
    for name in ("starts", "hosp", "pins"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    n = int(fast.starts[-1])
    np.testing.assert_array_equal(fast.order[:n], slow.order[:n])
    np.testing.assert_allclose(fast.cur, slow.cur, rtol=0, atol=1e-12)
    assert engine.evaluate(sc2, fast.to_plan()).expected_fatalities == pytest.approx(fast.cur[0], abs=1e-12)


def _with_ids(delta: dict, sc) -> dict:
    """The fixture's ids (``c001``, ``h01``) mapped onto the generated scenario's real ones."""
    out = dict(delta)
    if "casualty" in out:
        out["casualty"] = sc.model.casualties[int(out["casualty"][1:]) - 1].id
    if "hospital" in out:
        out["hospital"] = sc.model.hospitals[int(out["hospital"][1:]) - 1].id
    return out


def test_reheat_refits_only_when_the_plan_size_changes_much(base):
    sc, _ = base
    sol = greedy(sc)
    state = SearchState(sol, sol.copy())
    alg = Annealing(seed=0)
    alg.run(state, 10)
    fitted = alg.schedule
    tasks = int(sol.starts[-1])
    alg.reheat(tasks + 1)
    assert alg.schedule is fitted
    alg.reheat(int(tasks * (1 + 2 * Annealing.REFIT_CHANGE)) + 1)
    assert alg.schedule is None
    alg.run(state, 10)
    assert alg.schedule is not None
    alg.reheat()
    assert alg.schedule is None


def test_a_team_added_at_an_unreachable_station_is_still_rejected():
    """The reused travel matrix must not skip the reachability check of a new start: here a
    station only reaches the rest of the graph one way, which is fine until a team starts there."""
    from engine.errors import DeltaError

    d = {"format": "goldenhour.scenario/1", "time": 0.0,
         "network": {"kind": "graph",
                     "nodes": [{"id": "a", "lat": 51.5, "lon": -0.1}, {"id": "b", "lat": 51.51, "lon": -0.1},
                               {"id": "c", "lat": 51.52, "lon": -0.1}],
                     "edges": [{"from": "a", "to": "b", "minutes": 5},
                               {"from": "b", "to": "c", "minutes": 5, "oneway": True}]},
         "hospitals": [{"id": "h1", "node": "a", "capacity": 5}],
         "sites": [{"id": "s1", "node": "b"}],
         "stations": [{"id": "st1", "node": "c"}],
         "responders": [{"id": "p1", "kind": "paramedic", "start": "h1"}],
         "casualties": [{"id": "c1", "site": "s1", "health": "immediate"}]}
    planner = engine.Planner(d, algorithm="descent")
    before = planner.best()
    with pytest.raises(DeltaError, match="no route from station 'st1' to site 's1'"):
        planner.apply({"type": "responder_added", "time": 1.0,
                       "responder": {"id": "p2", "kind": "paramedic", "start": "st1"}})
    assert planner.best() == before and [r.id for r in planner.scenario.model.responders] == ["p1"]


@pytest.mark.parametrize("seed", range(4))
def test_a_responder_made_available_later_equals_a_reload(seed):
    """``with_available`` (what issuing a task uses) gives the scenario a reload would give."""
    rng = np.random.default_rng(seed)
    d = generate("random", seed=seed, casualties=12, paramedics=3, fire=2, hospitals=2)
    d["time"] = float(rng.integers(0, 30))
    d["responders"][0]["available_at"] = d["time"] + 7.5
    sc = load_scenario(d)
    before = problem_arrays(sc).resp_avail.copy()  # cached on sc, as in a running planner
    for r in range(len(d["responders"])):
        t = float(d["time"] + rng.uniform(0, 50))
        fast = with_available(sc, r, t)
        m = copy_model(d)
        m["responders"][r]["available_at"] = t
        slow = load_scenario(m)
        assert fast.to_dict() == slow.to_dict()
        assert_same_scenario(fast, slow)
        assert problem_arrays(fast).resp_avail[r] == t
        assert np.array_equal(problem_arrays(sc).resp_avail, before, equal_nan=True)  # sc is untouched


HEALTHS = ["immediate", "urgent", "delayed", "P1", "dead", [0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 1.0],
           {"sieve": {"walking": False, "breathing": True, "respiratory_rate": 35, "pulse": 90}},
           {"start": {"walking": False, "breathing": True, "respiratory_rate": 20, "radial_pulse": True}}]


@pytest.mark.parametrize("seed", range(4))
def test_changed_casualty_records_equal_a_reload(seed, monkeypatch):
    """``with_casualties`` (what a health observation uses) gives what a reload gives: the same
    model, health and problem arrays, for trapped, treated, in-transit and dead casualties;
    both when only health and observation times change (``patch_observations``), when a
    casualty is observed dead (``patch_problem``) and when the time moves on (``patch_time``:
    work in progress clamped, observations and availability left to default)."""
    import engine.problem
    from engine.deltas import advance

    used = collections.Counter()
    for name in ("patch_observations", "patch_problem", "patch_time"):
        def counted(*args, _f=getattr(engine.problem, name), _name=name):
            used[_name] += 1
            return _f(*args)
        monkeypatch.setattr(engine.problem, name, counted)
    rng = np.random.default_rng(seed)
    d = generate("random", seed=seed, casualties=14, paramedics=3, fire=2, hospitals=2)
    d["time"] = 12.0
    for c in d["casualties"][:4]:
        c["trapped"] = True
    d["casualties"][4]["treated"] = True
    d["casualties"][5]["in_transit"] = {"hospital": d["hospitals"][0]["id"], "arrival": 20.0}
    d["casualties"][5]["trapped"] = False
    d["casualties"][1]["rescue_ends_at"] = 14.0  # work in progress, clamped once the time passes it
    d["casualties"][6]["treatment_ends_at"] = 15.0
    d["casualties"][7]["observed_at"] = 3.0  # the others' observation times default to the time
    d["responders"][0]["available_at"] = 13.0  # the others' availability defaults to the time
    sc = load_scenario(d)
    problem_arrays(sc)
    for k in range(10):
        moves_on = k % 3 == 2
        changed = sorted(rng.choice(len(d["casualties"]), size=int(rng.integers(0 if moves_on else 1, 4)),
                                    replace=False).tolist())
        m = copy_model(d)
        healths = [h for h in HEALTHS if h not in ("dead", [0.0, 0.0, 0.0, 1.0])] if k % 3 == 0 else HEALTHS
        for i in changed:
            m["casualties"][i]["health"] = healths[int(rng.integers(len(healths)))]
            m["casualties"][i]["observed_at"] = float(rng.uniform(0, 12))
        if moves_on:
            advance(m, float(rng.uniform(12.0, 22.0)))
            changed = [i for i, row in enumerate(m["casualties"]) if row != d["casualties"][i]]
        fast, slow = with_casualties(sc, m, changed), load_scenario(m)
        assert np.array_equal(fast.health, slow.health)
        assert_same_scenario(fast, slow)
    assert used["patch_observations"] and used["patch_problem"] and used["patch_time"], used


@pytest.mark.parametrize("seed", range(3))
def test_changed_hospital_beds_equal_a_reload(seed):
    """``with_hospitals`` (what a capacity report uses) gives what a reload gives."""
    rng = np.random.default_rng(seed)
    d = generate("random", seed=seed, casualties=12, paramedics=3, fire=2, hospitals=4)
    d["hospitals"][1]["overflow_risk"] = 0.3
    d["hospital_overflow_risk"] = 0.2
    sc = load_scenario(d)
    problem_arrays(sc)
    for _ in range(5):
        changed = sorted(rng.choice(len(d["hospitals"]), size=int(rng.integers(1, 3)), replace=False).tolist())
        m = copy_model(d)
        for i in changed:
            m["hospitals"][i]["capacity"] = int(rng.integers(0, 6))
            if rng.random() < 0.5:
                m["hospitals"][i]["overflow_risk"] = float(rng.choice([0.0, 0.5, 1.0]))
            else:
                m["hospitals"][i].pop("overflow_risk", None)  # the scenario's default
        assert_same_scenario(with_hospitals(sc, m, changed), load_scenario(m))
    m = copy_model(d)
    m["hospitals"][2]["capacity"] = -1
    m["hospitals"][3]["overflow_risk"] = 1.5
    assert_reported_as_a_reload(lambda: with_hospitals(sc, m, [2, 3]), m)


def test_a_time_moved_back_is_reported_as_a_reload_would():
    """``with_casualties`` with another time checks every record against it, as a reload does."""
    d = generate("random", seed=1, casualties=6, paramedics=2, fire=1, hospitals=2)
    d["time"] = 5.0
    d["casualties"][0]["observed_at"] = 4.0
    d["casualties"][1]["rescue_ends_at"], d["casualties"][1]["trapped"] = 6.0, True
    sc = load_scenario(d)
    for time in (3.0, 7.0, float("nan"), "soon"):
        m = copy_model(d)
        m["time"] = time  # 3: observed after the time; 7: a rescue ending before it; then no time
        assert_reported_as_a_reload(lambda: with_casualties(sc, m, []), m)


def test_a_wrong_casualty_record_is_reported_as_a_reload_would():
    d = generate("random", seed=1, casualties=6, paramedics=2, fire=1, hospitals=2)
    d["time"] = 5.0
    sc = load_scenario(d)
    m = copy_model(d)
    m["casualties"][2]["observed_at"] = 9.0  # after the scenario time
    m["casualties"][3]["health"] = [0.5, 0.5, 0.5, 0.5]  # does not sum to 1
    assert_reported_as_a_reload(lambda: with_casualties(sc, m, [2, 3]), m)
