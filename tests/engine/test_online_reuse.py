"""What the online engine reuses between deltas must equal what a fresh computation gives.

The travel matrix (``load_scenario(..., reuse=)``), the health power tables (cached per chains),
the incumbent's arrays (``repair.carry_over``), the annealer's fitted temperatures
(``Annealing.reheat``) and the scenarios derived when a task is issued (``with_available``) or a
delta lands (``derive``) are all shortcuts; each is checked here against the slow path.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

import engine
import factories
from engine.algorithms import Annealing, SearchState
from engine.construct import greedy
from engine.deltas import apply_delta, copy_model, parse_delta
from engine.generate import generate
from engine.health import _power_tables, power_tables
from engine.repair import carry_over, repair
from engine.plan import problem_arrays
from engine.errors import ScenarioError
from engine.derive import derive
from engine.scenario import load_scenario, with_available


def assert_same_scenario(fast, slow) -> None:
    """A derived scenario equals a reload: the same model and the same problem arrays (the start
    table and its rides compared by the rows its casualties read: ``factories.differing_arrays``)."""
    assert fast.model == slow.model
    assert factories.differing_arrays(problem_arrays(fast), problem_arrays(slow)) == []


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
    cur = sol.cur.copy()
    fast = carry_over(sc2, sol)
    slow = repair(sc2, sol.to_plan(), {})
    assert sol.sc is sc and np.array_equal(sol.cur, cur)  # a copy was carried over
    mine = sol.copy()
    in_place = carry_over(sc2, mine, in_place=True)
    if fast is None:  # a dead casualty's tasks must go: only repair can do that
        assert delta.get("health") == [0, 0, 0, 1]
        assert in_place is None and mine.sc is sc and np.array_equal(mine.cur, cur)  # declined: untouched
        return
    assert in_place is mine and np.array_equal(mine.cur, fast.cur)  # itself, re-scored
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


def test_a_responder_made_available_later_keeps_what_derive_knows_of_the_casualties():
    """Issuing a task changes no casualty record, so the scenario it makes keeps the bounds of
    their times that ``derive`` kept (``earliest_end``): the next move of the clock then clamps
    nothing without looking at every casualty."""
    from engine.deltas import advance
    from engine.derive import earliest_end

    d = generate("random", seed=2, casualties=8, paramedics=2, fire=1, hospitals=2)
    d["time"] = 5.0
    d["casualties"][1].update(trapped=True, rescue_ends_at=9.0)
    sc = load_scenario(d)
    m = cow(d)
    advance(m, 6.0)
    derived = derive(sc, d, m)
    assert earliest_end(derived) == 9.0
    assert earliest_end(with_available(derived, 0, 7.0)) == 9.0


HEALTHS = ["immediate", "urgent", "delayed", "P1", "dead", [0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 1.0],
           {"sieve": {"walking": False, "breathing": True, "respiratory_rate": 35, "pulse": 90}},
           {"start": {"walking": False, "breathing": True, "respiratory_rate": 20, "radial_pulse": True}}]


def cow(d: dict) -> dict:
    """A model as ``deltas.apply_delta`` makes one: its own lists, every record shared."""
    return dict(d, casualties=list(d["casualties"]), hospitals=list(d["hospitals"]),
                responders=list(d["responders"]), sites=list(d["sites"]))


def own(m: dict, key: str, i: int, **fields) -> dict:
    """Replace record ``i`` of ``m[key]`` by a changed copy, as a delta does."""
    row = m[key][i] = dict(m[key][i], **fields)
    return row


@pytest.fixture
def reloads(monkeypatch):
    """Counts how often ``derive`` falls back to a reload, and which array builders it used."""
    import engine.derive

    used = collections.Counter()
    for name in ("load_scenario", "patch_observations", "rebuild_problem"):
        def counted(*args, _f=getattr(engine.derive, name), _name=name, **kwargs):
            used[_name] += 1
            return _f(*args, **kwargs)
        monkeypatch.setattr(engine.derive, name, counted)
    return used


@pytest.mark.parametrize("seed", range(4))
def test_changed_casualty_records_equal_a_reload(seed, reloads):
    """``derive`` for changed casualty records gives what a reload gives: the same model, health
    and problem arrays, for trapped, treated, in-transit and dead casualties; both when only
    health and observation times change (``patch_observations``), when a casualty is observed
    dead and when the time moves on (work in progress clamped, observations and availability
    left to default)."""
    from engine.deltas import advance

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
        changed = rng.choice(len(d["casualties"]), size=int(rng.integers(0 if moves_on else 1, 4)), replace=False)
        m = cow(d)
        healths = [h for h in HEALTHS if h not in ("dead", [0.0, 0.0, 0.0, 1.0])] if k % 3 == 0 else HEALTHS
        for i in changed:
            own(m, "casualties", int(i), health=healths[int(rng.integers(len(healths)))],
                observed_at=float(rng.uniform(0, 12)))
        if moves_on:
            advance(m, float(rng.uniform(12.0, 22.0)))
        fast, slow = derive(sc, d, m), load_scenario(m)
        assert np.array_equal(fast.health, slow.health)
        assert_same_scenario(fast, slow)
    assert reloads["patch_observations"] and reloads["rebuild_problem"] and not reloads["load_scenario"], reloads


def test_the_clock_with_observations_only_patches_and_equals_a_reload(reloads):
    """Observations stamped later than the model's time move its clock too; with no work in
    progress to clamp, ``derive`` patches health, observation times and the columns that read the
    time (``patch_observations``), and still gives what a reload gives, delta after delta: the
    observation times and availabilities left to default move with the clock, also once some
    of them are observed."""
    from engine.deltas import advance

    rng = np.random.default_rng(5)
    d = generate("random", seed=5, casualties=12, paramedics=3, fire=2, hospitals=2)
    d["time"] = 4.0
    for c in d["casualties"][::3]:
        c["observed_at"] = 1.0  # the others' observation times default to the time
    d["responders"][0]["available_at"] = 30.0  # the others' availability defaults to the time
    sc = load_scenario(d)
    problem_arrays(sc)
    for k in range(6):
        m = cow(d)
        for i in rng.choice(len(d["casualties"]), size=k % 3, replace=False):
            own(m, "casualties", int(i), health=["immediate", "urgent", "delayed"][k % 3],
                observed_at=d["time"] + 0.25)
        advance(m, d["time"] + 0.5)
        fast, slow = derive(sc, d, m), load_scenario(m)
        assert np.array_equal(fast.health, slow.health)
        assert_same_scenario(fast, slow)
        sc, d = fast, m
    assert reloads["patch_observations"] == 6 and not reloads["rebuild_problem"] and not reloads["load_scenario"]


def _random_change(rng, d: dict, sc, k: int) -> dict:
    """``d`` changed as one random delta could change it (records replaced, added or removed)."""
    m = cow(d)
    kind = k % 9
    n_cas, n_resp = len(d["casualties"]), len(d["responders"])
    if kind == 0:  # observations, one of them perhaps known dead
        for i in rng.choice(n_cas, size=min(n_cas, 3), replace=False):
            own(m, "casualties", int(i), health=HEALTHS[int(rng.integers(len(HEALTHS)))], observed_at=d["time"])
    elif kind == 1:  # the clock
        from engine.deltas import advance

        advance(m, d["time"] + float(rng.uniform(0, 10)))
    elif kind == 2:  # beds
        own(m, "hospitals", int(rng.integers(len(d["hospitals"]))), capacity=int(rng.integers(0, 4)))
    elif kind == 3:  # casualties added, perhaps at a new site
        site = d["sites"][int(rng.integers(len(d["sites"])))]["id"]
        if rng.random() < 0.5:
            site = f"new-site-{k}"
            m["sites"].append({"id": site, "lat": d["sites"][0]["lat"] + 0.01, "lon": d["sites"][0]["lon"]})
        for j in range(int(rng.integers(1, 3))):
            m["casualties"].append({"id": f"new-{k}-{j}", "site": site, "health": "urgent", "trapped": bool(j),
                                    "observed_at": d["time"]})
    elif kind == 4 and n_cas > 2:  # a casualty delivered: removed, its beds and fatality counted
        del m["casualties"][int(rng.integers(n_cas))]
        own(m, "hospitals", 0, capacity=max(0, d["hospitals"][0]["capacity"] - 1))
        m["delivered_fatalities"] = d.get("delivered_fatalities", 0.0) + 0.25
    elif kind == 5:  # a team added, at a place or at a point of its own
        start = d["hospitals"][0]["id"] if rng.random() < 0.5 else {"lat": d["sites"][0]["lat"] - 0.01,
                                                                    "lon": d["sites"][0]["lon"]}
        m["responders"].append({"id": f"extra-{k}", "kind": "paramedic", "start": start,
                                "available_at": d["time"]})
    elif kind == 6 and n_resp > 2:  # a team gone
        del m["responders"][int(rng.integers(n_resp))]
    elif kind == 7:  # a task started: the casualty's work in progress, the team at the site until it ends
        i, r = int(rng.integers(n_cas)), int(rng.integers(n_resp))
        cas = d["casualties"][i]
        if not cas.get("in_transit") and not cas.get("treated") and cas.get("treatment_ends_at") is None:
            own(m, "casualties", i, treatment_ends_at=d["time"] + 4.0)
            own(m, "responders", r, start=cas["site"], available_at=d["time"] + 4.0)
    elif kind == 8:  # the roads
        m["network"] = dict(d["network"], speed_kmh=d["network"]["speed_kmh"] / 1.25)
    return m


@pytest.mark.parametrize("seed", range(4))
def test_derived_scenarios_equal_a_reload(seed, reloads):
    """A chain of random changes of every kind a delta makes (records changed, casualties, sites
    and teams added or removed, the clock, the roads), each derived from the last: every derived
    scenario equals a reload of its model (model, indices, locations, health and every problem
    array), and none of them needed a reload."""
    rng = np.random.default_rng(seed)
    d = generate("random", seed=seed, casualties=12, paramedics=3, fire=2, hospitals=3)
    d["responders"][1]["start"] = {"lat": d["sites"][0]["lat"] + 0.02, "lon": d["sites"][0]["lon"]}
    sc = load_scenario(d)
    for k in range(30):
        m = _random_change(rng, d, sc, k + seed)
        fast, slow = derive(sc, d, m), load_scenario(m)
        assert_same_scenario(fast, slow)
        assert np.array_equal(fast.health, slow.health)
        for name in ("site_loc", "responder_loc", "travel"):
            assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        for name in ("location_names", "hospital_index", "site_index", "responder_index", "casualty_index"):
            assert getattr(fast, name) == getattr(slow, name), name
        sc, d = fast, m
    assert not reloads["load_scenario"], reloads


def test_wrong_changes_are_reported_as_a_reload(reloads):
    """Whatever ``derive`` finds wrong, it reports as a reload of the model would."""
    d = generate("random", seed=1, casualties=6, paramedics=2, fire=1, hospitals=2)
    d["time"] = 5.0
    d["casualties"][0]["observed_at"] = 4.0
    d["casualties"][1]["rescue_ends_at"], d["casualties"][1]["trapped"] = 6.0, True
    sc = load_scenario(d)
    wrong = []
    for time in (3.0, 7.0, float("nan"), "soon"):  # 3: before an observation; 7: after a rescue's end
        m = cow(d)
        m["time"] = time
        wrong.append(m)
    m = cow(d)
    own(m, "casualties", 2, observed_at=9.0)  # after the scenario time
    own(m, "casualties", 3, health=[0.5, 0.5, 0.5, 0.5])  # does not sum to 1
    wrong.append(m)
    m = cow(d)
    m["casualties"].append(dict(d["casualties"][0]))  # a duplicate id
    m["casualties"].append({"id": "x", "site": "nowhere", "health": "urgent"})
    wrong.append(m)
    m = cow(d)
    own(m, "hospitals", 0, capacity=-1)
    own(m, "hospitals", 1, overflow_risk=1.5)
    wrong.append(m)
    m = cow(d)
    own(m, "responders", 0, shift_end=1.0, available_at=4.0)  # the shift ends before the team is free
    m["responders"].append({"id": "f9", "kind": "fire", "hart": True, "start": "nowhere"})
    m["responders"].append(dict(d["responders"][1]))  # a duplicate id
    wrong.append(m)
    m = cow(d)
    m["sites"].append({"id": d["hospitals"][0]["id"], "lat": 91.0, "lon": 0.0})  # a duplicate id, no latitude
    wrong.append(m)
    m = cow(d)
    m["delivered_fatalities"] = -1.0
    m["network"] = dict(d["network"], speed_kmh=0.0)
    wrong.append(m)
    for m in wrong:
        assert_reported_as_a_reload(lambda: derive(sc, d, m), m)
    # a scenario derived at a later time keeps bounds on its records' times (the latest
    # observation, the earliest end of work in progress): a time beyond one is still caught
    later = cow(d)
    later["time"] = 5.5
    sc2 = derive(sc, d, later)
    assert reloads["load_scenario"] == len(wrong) and sc2.model.time == 5.5
    for time in (3.5, 6.5):
        m = cow(later)
        m["time"] = time
        assert_reported_as_a_reload(lambda: derive(sc2, later, m), m)
@pytest.mark.parametrize("seed", range(3))
def test_changed_hospital_beds_equal_a_reload(seed):
    """``derive`` for a capacity report gives what a reload gives."""
    rng = np.random.default_rng(seed)
    d = generate("random", seed=seed, casualties=12, paramedics=3, fire=2, hospitals=4)
    d["hospitals"][1]["overflow_risk"] = 0.3
    d["hospital_overflow_risk"] = 0.2
    sc = load_scenario(d)
    problem_arrays(sc)
    for _ in range(5):
        changed = sorted(rng.choice(len(d["hospitals"]), size=int(rng.integers(1, 3)), replace=False).tolist())
        m = cow(d)
        for i in changed:
            row = own(m, "hospitals", i, capacity=int(rng.integers(0, 6)))
            if rng.random() < 0.5:
                row["overflow_risk"] = float(rng.choice([0.0, 0.5, 1.0]))
            else:
                row.pop("overflow_risk", None)  # the scenario's default
        assert_same_scenario(derive(sc, d, m), load_scenario(m))
