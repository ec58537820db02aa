"""Online updates (SPEC §8, engine/deltas.py through engine.Planner.apply): what each delta type does
to the incident model, checked by hand, and that every wrong delta is rejected whole.

The scenario is ``generate("tiny", seed=0)``: one site (aldgate), hospitals R1H12 (3 beds) and
RJ122 (2 beds), a station FS107, paramedic teams amb-01 (HART) and amb-02, fire team fire-01, and
casualties c001 (urgent, trapped, 10.5 min rescue), c002 (delayed), c003 (immediate), c004
(delayed), all observed at time 0 under the default chains. Health is checked against
``engine.health.propagate`` by hand: a casualty observed with ``h`` at ``o`` and in environment
``k`` until ``t`` has ``h · P_k(t − o)``.
"""

from __future__ import annotations

import copy
import json

from pathlib import Path

import numpy as np
import pytest

import engine
import factories
from engine import DeltaError
from engine.evaluate import evaluate_detail, schedule_records
from engine.generate import generate
from engine.health import (AMBULANCE, CCS, CCS_TREATED, TRAPPED, category_vector, propagate,
                           resolve_chains)
from engine.plan import Plan, problem_arrays
from engine.planner import Planner

TOL = 1e-9
CHAINS = resolve_chains(None, 0.5)  # tiny uses the default chains and slowdown
RISK = 0.05  # default hospital_overflow_risk
DURATIONS = {"load": 2.0, "handover": 5.0, "treatment": 10.0, "rescue": 20.0}


# --- helpers ----------------------------------------------------------------------------------

def tiny() -> dict:
    return generate("tiny", seed=0)


@pytest.fixture
def planner():
    p = Planner(tiny(), algorithm="annealing", seed=0)
    yield p
    p.close()


@pytest.fixture
def descent():
    """A planner whose search moves only when stepped: its plan changes with the model alone."""
    p = Planner(tiny(), algorithm="descent", seed=0)
    yield p
    p.close()


def cas(p: Planner, cid: str) -> dict:
    """The casualty's entry in the planner's model (a scenario dict)."""
    found = [c for c in p._model["casualties"] if c["id"] == cid]
    assert len(found) == 1, f"casualty {cid} appears {len(found)} times in the model"
    return found[0]


def resp(p: Planner, rid: str) -> dict:
    found = [r for r in p._model["responders"] if r["id"] == rid]
    assert len(found) == 1
    return found[0]


def hosp(p: Planner, hid: str) -> dict:
    return next(h for h in p._model["hospitals"] if h["id"] == hid)


def vec(health) -> np.ndarray:
    """A model dict's health (vector or category) as a vector."""
    if isinstance(health, str):
        return category_vector(health)
    return np.asarray(health, dtype=np.float64)


def effective(p: Planner, cid: str):
    """``(h, o)``: the planner's scenario's health of ``cid`` and the time it holds at."""
    sc = p.scenario
    c = sc.casualty_index[cid]
    o = sc.model.casualties[c].observed_at
    return sc.health[c].copy(), (sc.model.time if o is None else o)


def health_at(p: Planner, cid: str, t: float, env: int) -> np.ndarray:
    """What the planner's model says ``cid``'s health is at ``t`` if it stays in ``env`` until then."""
    h, o = effective(p, cid)
    assert o <= t + TOL
    return propagate(h, CHAINS[env], t - o)


def travel(sc, a: str, b: str) -> float:
    """Travel minutes between two places (hospital, site or station ids) of a scenario."""
    names = {}
    for i, n in enumerate(sc.location_names):
        names[n.split("'")[1]] = i
    return float(sc.travel[names[a], names[b]])


def assert_consistent(p: Planner) -> None:
    """The incumbent is a valid plan for the planner's scenario and its objective is exact."""
    plan, obj = p.best()
    loaded = engine.load_plan(p.scenario, plan.to_json())
    fresh = engine.evaluate(p.scenario, loaded)
    assert fresh.feasible == obj.feasible
    for a, b in ((fresh.expected_fatalities, obj.expected_fatalities),
                 (fresh.overflow_fatalities, obj.overflow_fatalities),
                 (fresh.casualty_minutes, obj.casualty_minutes)):
        assert (a is None) == (b is None)
        if a is not None:
            assert abs(a - b) <= 1e-9 * max(1.0, abs(a))


def tasks_of(plan, cid: str) -> list[tuple[str, str]]:
    return [(r, t.kind) for r, ts in plan.routes.items() for t in ts if t.casualty == cid]


def state(p: Planner):
    plan, obj = p.best()
    return (copy.deepcopy(p._model), json.dumps(plan.to_json(), sort_keys=True), obj,
            {r: list(ts) for r, ts in p._pins.items()}, p.time)


# --- health_observed --------------------------------------------------------------------------

def test_health_observed_sets_health_and_observed_at(planner):
    planner.apply({"type": "health_observed", "time": 5.0, "casualty": "c002", "health": "immediate"})
    c = cas(planner, "c002")
    assert np.array_equal(vec(c["health"]), [0, 0, 1, 0])
    assert c["observed_at"] == 5.0
    assert planner.time == 5.0
    h, o = effective(planner, "c002")
    assert np.array_equal(h, [0, 0, 1, 0]) and o == 5.0
    # the other casualties keep their own observations
    assert np.array_equal(effective(planner, "c004")[0], [1, 0, 0, 0])
    assert_consistent(planner)


def test_health_observed_vector(planner):
    v = [0.1, 0.2, 0.3, 0.4]
    planner.apply({"type": "health_observed", "time": 2.5, "casualty": "c003", "health": v})
    h, o = effective(planner, "c003")
    assert np.allclose(h, v, atol=0, rtol=0) and o == 2.5
    assert_consistent(planner)


def test_late_health_observation_uses_observed_at(planner):
    planner.apply({"type": "health_observed", "time": 6.0, "casualty": "c002", "health": "urgent",
                   "observed_at": 2.0})
    c = cas(planner, "c002")
    assert c["observed_at"] == 2.0 and planner.time == 6.0
    h, o = effective(planner, "c002")
    assert np.array_equal(h, [0, 1, 0, 0]) and o == 2.0
    assert_consistent(planner)
    # the same observation made at 6 (reaching us at once) is healthier under the same plan:
    # the late one has deteriorated for four more minutes
    plan = planner.best()[0]
    on_time = copy.deepcopy(planner._model)
    c = next(x for x in on_time["casualties"] if x["id"] == "c002")
    c["observed_at"] = 6.0
    f_late = engine.evaluate(planner.scenario, plan).expected_fatalities
    f_now = engine.evaluate(engine.load_scenario(on_time), plan).expected_fatalities
    assert f_late > f_now + 1e-6


def _observed_late_and_in_time(events_in_time, events_late):
    """The planner's model after two orders of the same reports: as they happened, and with
    some observations reaching it late (``observed_at`` before the delta's time)."""
    out = []
    for events in (events_in_time, events_late):
        p = Planner(tiny(), algorithm="descent", seed=0)
        for e in events:
            p.apply(e)
        out.append(p)
    return out


def test_an_observation_older_than_the_last_one_changes_nothing():
    newer = {"type": "health_observed", "time": 5.0, "casualty": "c002", "health": "immediate"}
    older = {"type": "health_observed", "time": 7.0, "casualty": "c002", "health": "delayed", "observed_at": 3.0}
    in_time, late = _observed_late_and_in_time(
        [dict(older, time=3.0), newer, {"type": "clock", "time": 7.0}], [newer, older])
    try:
        assert np.array_equal(vec(cas(late, "c002")["health"]), [0, 0, 1, 0])
        assert cas(late, "c002")["observed_at"] == 5.0 and late.time == 7.0
        assert cas(late, "c002") == cas(in_time, "c002")
        assert late.best()[1] == in_time.best()[1]
        assert_consistent(late)
    finally:
        in_time.close()
        late.close()


@pytest.mark.parametrize("work", ["transport", "rescue", "treat"])
def test_an_observation_made_before_a_change_of_environment_is_carried_across_it(work):
    # c003 is at the CCS, c001 trapped (tiny, seed 0): the report of what was seen at 3.0 reaches
    # the planner after the casualty was picked up (rescued, treated) at 6.0, and must give the
    # same model as if it had arrived in time
    cid, team = ("c001", "fire-01") if work == "rescue" else ("c003", "amb-01")
    seen = {"type": "health_observed", "time": 3.0, "casualty": cid, "health": [0.5, 0.3, 0.2, 0.0]}
    if work == "transport":
        work_events = [{"type": "task_started", "time": 6.0, "responder": team, "task": "transport",
                        "casualty": cid, "hospital": "RJ122"}]
    else:
        work_events = [{"type": "task_started", "time": 1.0, "responder": team, "task": work, "casualty": cid},
                       {"type": "task_completed", "time": 6.0, "responder": team, "task": work, "casualty": cid}]
    in_time, late = _observed_late_and_in_time(
        work_events[:-1] + [seen] + work_events[-1:] + [{"type": "clock", "time": 9.0}],
        work_events + [dict(seen, time=9.0, observed_at=3.0)])
    try:
        a, b = cas(in_time, cid), cas(late, cid)
        assert a["observed_at"] == b["observed_at"] == 6.0
        assert np.allclose(vec(b["health"]), vec(a["health"]), atol=1e-12, rtol=0)
        # and it is the observation that was carried, not the health the model held before it
        env = {"transport": CCS, "rescue": TRAPPED, "treat": CCS}[work]
        assert np.allclose(vec(b["health"]), propagate(np.array([0.5, 0.3, 0.2, 0.0]), CHAINS[env], 3.0),
                           atol=1e-12, rtol=0)
        assert late.best()[1].expected_fatalities == pytest.approx(in_time.best()[1].expected_fatalities,
                                                                   abs=1e-9)
        assert_consistent(late)
    finally:
        in_time.close()
        late.close()


def test_a_rejected_delta_keeps_the_observation_history(descent):
    p = descent
    p.apply({"type": "task_started", "time": 6.0, "responder": "amb-01", "task": "transport",
             "casualty": "c003", "hospital": "RJ122"})
    with pytest.raises(DeltaError):  # one good observation, one of an unknown casualty: rejected whole
        p.apply({"type": "health_observed", "time": 8.0, "observed_at": 3.0, "observations": [
            {"casualty": "c003", "health": "delayed"}, {"casualty": "nobody", "health": "delayed"}]})
    before = vec(cas(p, "c003")["health"]).copy()
    p.apply({"type": "health_observed", "time": 8.0, "casualty": "c003", "health": "delayed", "observed_at": 2.0})
    # the observation at 2.0 is still newer than anything the planner accepted
    assert cas(p, "c003")["observed_at"] == 6.0
    assert np.allclose(vec(cas(p, "c003")["health"]), propagate(category_vector("delayed"), CHAINS[CCS], 4.0),
                       atol=1e-12, rtol=0)
    assert not np.allclose(before, vec(cas(p, "c003")["health"]))


def test_a_late_observation_of_a_delivered_casualty_is_ignored_not_rejected(descent):
    # a batch of reports made at 3.0 reaches the planner after c003 was delivered: the others'
    # observations must not be lost for it, nor the delivered casualty's outcome changed
    p = descent
    p.apply({"type": "task_started", "time": 4.0, "responder": "amb-02", "task": "transport",
             "casualty": "c003", "hospital": "RJ122"})
    arrival = cas(p, "c003")["in_transit"]["arrival"]
    p.apply({"type": "task_completed", "time": arrival, "responder": "amb-02", "task": "transport",
             "casualty": "c003"})
    delivered = p._model["delivered_fatalities"]
    p.apply({"type": "health_observed", "time": arrival + 1.0, "observed_at": 3.0, "observations": [
        {"casualty": "c003", "health": "deceased"}, {"casualty": "c002", "health": "immediate"}]})
    assert "c003" not in p.scenario.casualty_index
    assert p._model["delivered_fatalities"] == delivered
    assert np.array_equal(vec(cas(p, "c002")["health"]), [0, 0, 1, 0]) and cas(p, "c002")["observed_at"] == 3.0
    assert_consistent(p)
    with pytest.raises(DeltaError):  # a casualty never heard of is still an error
        p.apply({"type": "health_observed", "time": arrival + 2.0, "casualty": "c777", "health": "urgent"})


def test_health_observed_deceased_removes_its_tasks(planner):
    planner.apply({"type": "health_observed", "time": 1.0, "casualty": "c003", "health": "deceased"})
    plan, obj = planner.best()
    assert tasks_of(plan, "c003") == []
    assert obj.expected_fatalities >= 1.0
    assert_consistent(planner)


# --- casualties_added ---------------------------------------------------------------------------

def test_casualties_added_with_a_new_site(planner):
    delta = {"type": "casualties_added", "time": 4.0,
             "sites": [{"id": "moorgate", "lat": 51.5186, "lon": -0.0886}],
             "casualties": [{"id": "c101", "site": "moorgate", "health": "P1"},
                            {"id": "c102", "site": "moorgate", "health": "P2", "trapped": True,
                             "rescue_minutes": 12.0},
                            {"id": "c103", "site": "aldgate", "health": [0.5, 0.5, 0.0, 0.0]}]}
    planner.apply(delta)
    sc = planner.scenario
    assert "moorgate" in sc.site_index
    assert [c.id for c in sc.model.casualties] == ["c001", "c002", "c003", "c004", "c101", "c102", "c103"]
    for cid in ("c101", "c102", "c103"):
        assert cas(planner, cid)["observed_at"] == 4.0
    plan = planner.best()[0]
    for cid in ("c101", "c102", "c103"):
        assert ("transport" in [k for _, k in tasks_of(plan, cid)]), f"{cid} has no transport"
        assert all(r.startswith("amb") for r, k in tasks_of(plan, cid) if k == "transport")
    assert ("fire-01", "rescue") in tasks_of(plan, "c102")
    h, o = effective(planner, "c101")
    assert np.array_equal(h, [0, 0, 1, 0]) and o == 4.0
    assert problem_arrays(sc).rescue_dur[sc.casualty_index["c102"]] == 12.0
    assert_consistent(planner)


def test_casualty_added_gets_a_transport_after_search(planner):
    planner.step(300)
    planner.apply({"type": "casualties_added", "time": 1.0,
                   "casualties": [{"id": "new", "site": "aldgate", "health": "immediate"}]})
    assert len([k for _, k in tasks_of(planner.best()[0], "new") if k == "transport"]) == 1
    planner.step(300)
    assert len([k for _, k in tasks_of(planner.best()[0], "new") if k == "transport"]) == 1
    assert_consistent(planner)


# --- rescue -------------------------------------------------------------------------------------

def test_rescue_started_and_completed(planner):
    h_start = health_at(planner, "c001", 3.0, TRAPPED)
    assert np.allclose(h_start, propagate(category_vector("urgent"), CHAINS[TRAPPED], 3.0), atol=1e-15)
    planner.apply({"type": "task_started", "time": 3.0, "responder": "fire-01", "task": "rescue",
                   "casualty": "c001"})
    c = cas(planner, "c001")
    assert c["rescue_ends_at"] == pytest.approx(13.5, abs=1e-12)  # 3 + rescue_minutes 10.5
    assert c["trapped"] is True
    # still trapped: one segment from the observation to the rescue's end, not rolled forward
    assert c["observed_at"] == 0.0
    assert np.array_equal(vec(c["health"]), category_vector("urgent"))
    r = resp(planner, "fire-01")
    assert r["start"] == "aldgate" and r["available_at"] == pytest.approx(13.5, abs=1e-12)
    plan = planner.best()[0]
    assert ("fire-01", "rescue") not in tasks_of(plan, "c001")  # under way: no rescue may be planned
    assert len([k for _, k in tasks_of(plan, "c001") if k == "transport"]) == 1
    assert_consistent(planner)

    h_done = propagate(category_vector("urgent"), CHAINS[TRAPPED], 15.0)
    planner.apply({"type": "task_completed", "time": 15.0, "responder": "fire-01", "task": "rescue",
                   "casualty": "c001"})
    c = cas(planner, "c001")
    assert c["trapped"] is False
    assert c.get("rescue_ends_at") is None
    assert c["observed_at"] == 15.0
    assert np.allclose(vec(c["health"]), h_done, atol=1e-12)
    h, o = effective(planner, "c001")
    assert np.allclose(h, h_done, atol=1e-12) and o == 15.0
    r = resp(planner, "fire-01")
    assert r["start"] == "aldgate" and r["available_at"] == 15.0
    P = problem_arrays(planner.scenario)
    assert not P.trapped[planner.scenario.casualty_index["c001"]]
    assert_consistent(planner)


def test_a_team_waiting_for_a_rescue_picks_up_when_it_is_reported_done():
    """An ambulance issued a transport waits at the site while the rescue goes on; when the
    rescue is reported done at 30, the pickup is at 30, as the model had it just before, and not
    at the ambulance's arrival long before (no planned task starts before the model's time:
    kernels/schedule.py)."""
    from engine.evaluate import evaluate_detail

    d = tiny()
    site = d["casualties"][0]["site"]
    d["casualties"] = [dict(d["casualties"][0], rescue_minutes=30.0)]
    d["responders"] = [{"id": "amb", "kind": "paramedic", "start": site}, {"id": "fire", "kind": "fire", "start": site}]
    p = Planner(d, algorithm="descent", seed=0)
    try:
        cid = d["casualties"][0]["id"]
        assert p.next_task("fire", 0.0).kind == "rescue" and p.next_task("amb", 0.0).kind == "transport"
        p.apply({"type": "task_started", "time": 0.0, "responder": "fire", "task": "rescue", "casualty": cid})

        def pickup_and_objective():
            plan, obj = p.best()
            _, W, _ = evaluate_detail(p.scenario, plan)
            return W.pickup[p.scenario.casualty_index[cid]], obj

        p.apply({"type": "clock", "time": 30.0 - 1e-7})
        pickup, before = pickup_and_objective()
        assert pickup == 30.0
        p.apply({"type": "task_completed", "time": 30.0, "responder": "fire", "task": "rescue", "casualty": cid})
        pickup, after = pickup_and_objective()
        assert pickup == 30.0
        # the same arrival, counted from the new observation at 30 instead of 0
        assert after.casualty_minutes == pytest.approx(before.casualty_minutes - 30.0, abs=1e-6)
        assert after.casualty_minutes > 0
        assert after.expected_fatalities == pytest.approx(before.expected_fatalities, abs=1e-9)
        assert_consistent(p)
    finally:
        p.close()


def test_rescue_completed_without_start(planner):
    planner.apply({"type": "task_completed", "time": 8.0, "responder": "fire-01", "task": "rescue",
                   "casualty": "c001"})
    c = cas(planner, "c001")
    assert c["trapped"] is False
    expected = propagate(category_vector("urgent"), CHAINS[TRAPPED], 8.0)
    assert np.allclose(vec(c["health"]), expected, atol=1e-12)
    assert all(k != "rescue" for _, k in tasks_of(planner.best()[0], "c001"))
    assert_consistent(planner)


# --- treat --------------------------------------------------------------------------------------

def test_treat_started_and_completed(planner):
    h_start = propagate(category_vector("immediate"), CHAINS[CCS], 2.0)
    planner.apply({"type": "task_started", "time": 2.0, "responder": "amb-02", "task": "treat",
                   "casualty": "c003"})
    c = cas(planner, "c003")
    assert c["treatment_ends_at"] == pytest.approx(12.0, abs=1e-12)  # default treatment 10 min
    assert c["observed_at"] == 0.0  # untreated until the treatment ends: not rolled forward
    assert np.array_equal(vec(c["health"]), category_vector("immediate"))
    r = resp(planner, "amb-02")
    assert r["start"] == "aldgate" and r["available_at"] == pytest.approx(12.0, abs=1e-12)
    plan = planner.best()[0]
    assert all(k != "treat" for _, k in tasks_of(plan, "c003"))
    assert len([k for _, k in tasks_of(plan, "c003") if k == "transport"]) == 1
    assert_consistent(planner)

    # the treatment actually ends at 14: untreated ccs chain until then
    h_done = propagate(h_start, CHAINS[CCS], 12.0)  # (whole minutes: the same as 14 in one go)
    planner.apply({"type": "task_completed", "time": 14.0, "responder": "amb-02", "task": "treat",
                   "casualty": "c003"})
    c = cas(planner, "c003")
    assert c["treated"] is True
    assert c.get("treatment_ends_at") is None
    assert c["observed_at"] == 14.0
    assert np.allclose(vec(c["health"]), h_done, atol=1e-12)
    r = resp(planner, "amb-02")
    assert r["start"] == "aldgate" and r["available_at"] == 14.0
    sc = planner.scenario
    P = problem_arrays(sc)
    i = sc.casualty_index["c003"]
    assert P.treated[i] and not P.can_treat[i]
    assert all(k != "treat" for _, k in tasks_of(planner.best()[0], "c003"))
    assert_consistent(planner)


def test_treatment_not_reported_complete_is_taken_to_last_until_pickup(planner):
    """A treatment estimated to end at 11 but never reported complete is clamped to the pickup at 15:
    the casualty is in the untreated ccs chain from the treatment's start to the pickup."""
    planner.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "treat",
                   "casualty": "c002"})  # estimated to end at 11
    h1 = propagate(category_vector("delayed"), CHAINS[CCS], 1.0)
    planner.apply({"type": "task_started", "time": 15.0, "responder": "amb-01", "task": "transport",
                   "casualty": "c002", "hospital": "R1H12"})
    c = cas(planner, "c002")
    assert np.allclose(vec(c["health"]), propagate(h1, CHAINS[CCS], 14.0), atol=1e-12)
    assert c["observed_at"] == 15.0
    assert c.get("treatment_ends_at") is None
    assert_consistent(planner)


# --- transport ----------------------------------------------------------------------------------

def test_transport_started_and_completed(planner):
    sc0 = planner.scenario
    drive = travel(sc0, "aldgate", "RJ122")
    h_pick = propagate(category_vector("immediate"), CHAINS[CCS], 4.0)
    planner.apply({"type": "task_started", "time": 4.0, "responder": "amb-02", "task": "transport",
                   "casualty": "c003", "hospital": "RJ122"})
    c = cas(planner, "c003")
    arrival = 4.0 + DURATIONS["load"] + drive
    assert c["in_transit"]["hospital"] == "RJ122"
    assert c["in_transit"]["arrival"] == pytest.approx(arrival, abs=1e-9)
    assert c["observed_at"] == 4.0
    assert np.allclose(vec(c["health"]), h_pick, atol=1e-12)
    r = resp(planner, "amb-02")
    assert r["start"] == "RJ122"
    assert r["available_at"] == pytest.approx(arrival + DURATIONS["handover"], abs=1e-9)
    plan = planner.best()[0]
    assert tasks_of(plan, "c003") == []  # in an ambulance: no task may be planned
    assert_consistent(planner)

    # arrives 1.5 min later than estimated
    t_arr = arrival + 1.5
    h_arr = propagate(h_pick, CHAINS[AMBULANCE], t_arr - 4.0)
    cap0 = hosp(planner, "RJ122")["capacity"]
    planner.apply({"type": "task_completed", "time": t_arr, "responder": "amb-02", "task": "transport",
                   "casualty": "c003"})
    assert "c003" not in [c["id"] for c in planner._model["casualties"]]
    assert "c003" not in planner.scenario.casualty_index
    assert hosp(planner, "RJ122")["capacity"] == cap0 - 1
    assert planner._model["delivered_fatalities"] == pytest.approx(h_arr[3], abs=1e-12)
    assert planner.scenario.model.delivered_fatalities == pytest.approx(h_arr[3], abs=1e-12)
    r = resp(planner, "amb-02")
    assert r["start"] == "RJ122" and r["available_at"] == pytest.approx(t_arr + 5.0, abs=1e-12)
    plan, obj = planner.best()
    assert tasks_of(plan, "c003") == []
    assert obj.expected_fatalities >= h_arr[3] - 1e-12
    assert_consistent(planner)


def test_delivery_beyond_capacity_adds_overflow(planner):
    planner.apply({"type": "hospital_capacity", "time": 0.0, "hospital": "R1H12", "capacity": 0})
    planner.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "transport",
                   "casualty": "c004", "hospital": "R1H12"})
    t_arr = cas(planner, "c004")["in_transit"]["arrival"]
    h = propagate(propagate(category_vector("delayed"), CHAINS[CCS], 1.0), CHAINS[AMBULANCE], t_arr - 1.0)
    planner.apply({"type": "task_completed", "time": t_arr, "responder": "amb-01", "task": "transport",
                   "casualty": "c004"})
    p = h[3]
    assert planner._model["delivered_fatalities"] == pytest.approx(p + (1 - p) * RISK, abs=1e-12)
    assert hosp(planner, "R1H12")["capacity"] == 0
    assert_consistent(planner)


def test_delivering_a_casualty_known_dead_takes_no_bed(planner):
    """SPEC §8.1: a casualty known dead takes no bed; it counts 1 in F, in transit or delivered."""
    planner.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "transport",
                   "casualty": "c004", "hospital": "R1H12"})
    planner.apply({"type": "health_observed", "time": 2.0, "casualty": "c004", "health": "deceased"})
    t_arr = cas(planner, "c004")["in_transit"]["arrival"]
    planner.apply({"type": "clock", "time": t_arr})  # (idle teams set off later: F moves with the clock)
    beds, F = hosp(planner, "R1H12")["capacity"], planner.best()[1].expected_fatalities
    planner.apply({"type": "task_completed", "time": t_arr, "responder": "amb-01", "task": "transport",
                   "casualty": "c004"})
    assert hosp(planner, "R1H12")["capacity"] == beds
    assert planner._model["delivered_fatalities"] == 1.0
    assert planner.best()[1].expected_fatalities == pytest.approx(F, abs=1e-12)
    assert_consistent(planner)


def test_a_start_reported_as_planned_leaves_the_objective_as_it_was():
    """A rescue reported started at a fractional minute and ending where the plan had it (at
    the model's time 0.6, the plan has the issued rescue start then: nothing planned starts
    before the model's time): the casualty's health is one trapped segment either way
    (P(a)·P(b) is not P(a + b) when the fractions add up), so the objective does not move."""
    d = tiny()
    d["casualties"] = [dict(d["casualties"][0], rescue_minutes=10.7)]
    fire = next(r for r in d["responders"] if r["kind"] == "fire")
    fire["start"] = d["casualties"][0]["site"]
    p = Planner(d, algorithm="descent", seed=0)
    try:
        cid = d["casualties"][0]["id"]
        assert p.next_task(fire["id"], 0.0).kind == "rescue"  # set off at 0, there at 0
        p.apply({"type": "clock", "time": 0.6})  # not reported started: it starts at 0.6, ends at 11.3
        before = p.best()[1].expected_fatalities
        p.apply({"type": "task_started", "time": 0.6, "responder": fire["id"], "task": "rescue", "casualty": cid})
        p.apply({"type": "duration_revised", "time": 0.6, "task": "rescue", "casualty": cid, "minutes": 10.7})
        assert cas(p, cid)["rescue_ends_at"] == pytest.approx(11.3, abs=1e-12)
        assert p.best()[1].expected_fatalities == pytest.approx(before, abs=1e-12)
        assert_consistent(p)
    finally:
        p.close()


def test_transport_of_a_treated_casualty_rolls_forward_in_the_treated_chain(planner):
    planner.apply({"type": "task_started", "time": 0.0, "responder": "amb-01", "task": "treat",
                   "casualty": "c003"})
    planner.apply({"type": "task_completed", "time": 9.0, "responder": "amb-01", "task": "treat",
                   "casualty": "c003"})
    h9 = propagate(category_vector("immediate"), CHAINS[CCS], 9.0)
    planner.apply({"type": "task_started", "time": 12.0, "responder": "amb-01", "task": "transport",
                   "casualty": "c003", "hospital": "R1H12"})
    assert np.allclose(vec(cas(planner, "c003")["health"]), propagate(h9, CHAINS[CCS_TREATED], 3.0),
                       atol=1e-12)
    assert_consistent(planner)


# --- duration_revised ---------------------------------------------------------------------------

def test_duration_revised_before_the_task_starts(planner):
    planner.apply({"type": "duration_revised", "time": 1.0, "task": "rescue", "casualty": "c001",
                   "minutes": 30.0})
    assert cas(planner, "c001")["rescue_minutes"] == 30.0
    sc = planner.scenario
    assert problem_arrays(sc).rescue_dur[sc.casualty_index["c001"]] == 30.0
    planner.apply({"type": "duration_revised", "time": 1.0, "task": "treat", "casualty": "c002",
                   "minutes": 4.0})
    assert cas(planner, "c002")["treatment_minutes"] == 4.0
    assert problem_arrays(planner.scenario).treat_dur[planner.scenario.casualty_index["c002"]] == 4.0
    assert_consistent(planner)


def test_duration_revised_while_under_way(planner):
    planner.apply({"type": "task_started", "time": 2.0, "responder": "fire-01", "task": "rescue",
                   "casualty": "c001"})
    assert cas(planner, "c001")["rescue_ends_at"] == pytest.approx(12.5)
    planner.apply({"type": "duration_revised", "time": 5.0, "task": "rescue", "casualty": "c001",
                   "minutes": 25.0})
    assert cas(planner, "c001")["rescue_ends_at"] == pytest.approx(27.0, abs=1e-12)
    # shorter than already elapsed: it ends now at the earliest
    planner.apply({"type": "duration_revised", "time": 6.0, "task": "rescue", "casualty": "c001",
                   "minutes": 1.0})
    assert cas(planner, "c001")["rescue_ends_at"] == pytest.approx(6.0, abs=1e-12)
    assert_consistent(planner)


def test_duration_revised_while_under_way_moves_the_team_too(planner):
    """SPEC §8.1: the team doing the work is free (``available_at``) when the work ends."""
    planner.apply({"type": "task_started", "time": 2.0, "responder": "fire-01", "task": "rescue",
                   "casualty": "c001"})
    assert resp(planner, "fire-01")["available_at"] == pytest.approx(12.5)
    planner.apply({"type": "duration_revised", "time": 5.0, "task": "rescue", "casualty": "c001",
                   "minutes": 25.0})
    assert cas(planner, "c001")["rescue_ends_at"] == pytest.approx(27.0, abs=1e-12)
    assert resp(planner, "fire-01")["available_at"] == pytest.approx(27.0, abs=1e-12), \
        "the fire team is still taken to be free at the old estimate while its rescue goes on"
    assert_consistent(planner)


def test_duration_revised_after_the_clock_passed_the_estimate(planner):
    """A rescue started at 2 (estimate 10.5 min) still going at 20 is revised to 25 min: it ends at 27."""
    planner.apply({"type": "task_started", "time": 2.0, "responder": "fire-01", "task": "rescue",
                   "casualty": "c001"})
    planner.apply({"type": "clock", "time": 20.0})
    assert cas(planner, "c001")["rescue_ends_at"] == 20.0  # clamped: not reported done
    planner.apply({"type": "duration_revised", "time": 20.0, "task": "rescue", "casualty": "c001",
                   "minutes": 25.0})
    assert cas(planner, "c001")["rescue_ends_at"] == pytest.approx(27.0, abs=1e-12)
    assert_consistent(planner)


def test_overdue_work_moves_the_team_reported_doing_it_not_one_that_looks_alike(descent):
    """amb-02 treats c004 (estimate 11); amb-01, idle at the same site, is issued a transport at
    15, when c004's treatment was pushed to end: both are 'at aldgate until 15' by their facts.
    The clock at 20 keeps amb-02 busy, not amb-01."""
    descent.step(50)
    descent.apply({"type": "task_started", "time": 1.0, "responder": "amb-02", "task": "treat", "casualty": "c004"})
    descent.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "treat", "casualty": "c002"})
    descent.apply({"type": "task_completed", "time": 5.0, "responder": "amb-01", "task": "treat", "casualty": "c002"})
    assert descent.next_task("amb-01", 15.0) is not None
    assert resp(descent, "amb-01")["available_at"] == resp(descent, "amb-02")["available_at"] == 15.0
    descent.apply({"type": "clock", "time": 20.0})
    assert resp(descent, "amb-02")["available_at"] == 20.0
    assert resp(descent, "amb-01")["available_at"] == 15.0
    descent.apply({"type": "duration_revised", "time": 20.0, "task": "treat", "casualty": "c004", "minutes": 30.0})
    assert resp(descent, "amb-02")["available_at"] == 31.0
    assert_consistent(descent)


def test_overdue_work_runs_past_its_team_s_shift_and_the_model_stays_valid():
    """A rescue running past its team's shift end keeps the team there until it is reported done
    (reality is not refused), and every later delta (a clock, an observation, the rescue's own
    completion) is still accepted; the team is given no more work (its shift is over)."""
    sc = tiny()
    next(r for r in sc["responders"] if r["id"] == "fire-01")["shift_end"] = 20.0
    p = Planner(sc, algorithm="descent", seed=0)
    try:
        p.apply({"type": "task_started", "time": 1.0, "responder": "fire-01", "task": "rescue", "casualty": "c001"})
        p.apply({"type": "clock", "time": 19.0})
        assert resp(p, "fire-01")["available_at"] == 19.0
        p.apply({"type": "health_observed", "time": 21.0, "casualty": "c002", "health": "urgent"})
        assert resp(p, "fire-01")["available_at"] == 21.0  # still at the rescue, past its shift's end
        p.apply({"type": "clock", "time": 22.0})
        p.apply({"type": "task_completed", "time": 22.0, "responder": "fire-01", "task": "rescue", "casualty": "c001"})
        assert not cas(p, "c001")["trapped"]
        p.step(20)
        plan, obj = p.best()
        assert plan.routes.get("fire-01", []) == [] and obj.feasible
        assert_consistent(p)
    finally:
        p.close()


def test_work_reported_started_is_taken_even_if_it_ends_after_the_team_s_shift(tmp_path):
    """SPEC §6 makes a plan whose task ends after its team's shift infeasible; it does not make
    the report of such work invalid. A transport started near the end of a shift is taken: the
    casualty is in the ambulance, the team free after its shift, and nothing else is planned for
    it. (It was refused, so the planner kept the casualty waiting and sent another team for it.)"""
    sc = tiny()
    amb = next(r for r in sc["responders"] if r["kind"] == "paramedic")
    amb["shift_end"] = 3.0
    p = Planner(sc, algorithm="descent", seed=0)
    try:
        cid = next(c["id"] for c in p._model["casualties"] if not c.get("trapped"))
        hid = p._model["hospitals"][0]["id"]
        p.apply({"type": "task_started", "time": 2.0, "responder": amb["id"], "task": "transport", "casualty": cid,
                 "hospital": hid})
        assert cas(p, cid)["in_transit"]["hospital"] == hid
        assert resp(p, amb["id"])["available_at"] > 3.0
        p.step(20)
        plan, obj = p.best()
        assert plan.routes.get(amb["id"], []) == [] and obj.feasible
        assert all(t.casualty != cid for ts in plan.routes.values() for t in ts)
        assert_consistent(p)
        p.snapshot(tmp_path)  # a scenario file holding a team free only after its shift: valid
        again = Planner.restore(tmp_path, algorithm="descent", seed=0)
        try:
            assert again.best()[1].expected_fatalities == pytest.approx(obj.expected_fatalities, abs=1e-9)
        finally:
            again.close()
        p.apply({"type": "task_completed", "time": p.time + 30, "responder": amb["id"], "task": "transport",
                 "casualty": cid})
        assert_consistent(p)
    finally:
        p.close()


def test_a_late_completion_leaves_a_team_that_has_moved_on(descent):
    """amb-01 is reported starting a transport before its treatment of c002 is reported done:
    the late report ends the treatment but does not put amb-01 back at the site."""
    descent.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "treat", "casualty": "c002"})
    descent.apply({"type": "task_started", "time": 11.0, "responder": "amb-01", "task": "transport",
                   "casualty": "c003", "hospital": "RJ122"})
    team = dict(resp(descent, "amb-01"))
    descent.apply({"type": "task_completed", "time": 12.0, "responder": "amb-01", "task": "treat", "casualty": "c002"})
    assert cas(descent, "c002")["treated"]
    assert resp(descent, "amb-01") == team
    assert_consistent(descent)


def test_duration_revised_leaves_a_team_that_has_moved_on(descent):
    """amb-01 treats c002 from 6, then (its end never reported) carries c003 away at 17: revising
    c002's treatment at 18 changes the treatment's end, not where amb-01 is or when it is free."""
    descent.apply({"type": "task_started", "time": 6.0, "responder": "amb-01", "task": "treat",
                   "casualty": "c002"})
    descent.apply({"type": "task_started", "time": 17.0, "responder": "amb-01", "task": "transport",
                   "casualty": "c003", "hospital": "RJ122"})
    team = dict(resp(descent, "amb-01"))
    assert team["start"] == "RJ122"
    descent.apply({"type": "duration_revised", "time": 18.0, "task": "treat", "casualty": "c002", "minutes": 12.0})
    assert cas(descent, "c002")["treatment_ends_at"] == 18.0
    assert resp(descent, "amb-01") == team
    assert_consistent(descent)


# --- responders -----------------------------------------------------------------------------------

def test_responder_added_gets_work_after_search(planner):
    planner.apply({"type": "responder_added", "time": 0.0,
                   "responder": {"id": "amb-09", "kind": "paramedic", "start": "aldgate"}})
    assert "amb-09" in planner.scenario.responder_index
    assert resp(planner, "amb-09")["kind"] == "paramedic"
    assert_consistent(planner)
    planner.step(400)
    assert planner.best()[0].routes["amb-09"], "a paramedic team standing at the site was given nothing"
    assert_consistent(planner)


def test_responder_added_with_own_location(planner):
    planner.apply({"type": "responder_added", "time": 1.0,
                   "responder": {"id": "fire-02", "kind": "fire", "start": {"lat": 51.515, "lon": -0.07},
                                 "available_at": 3.0}})
    sc = planner.scenario
    assert sc.model.responders[sc.responder_index["fire-02"]].available_at == 3.0
    assert "fire-02" in planner.best()[0].routes
    assert_consistent(planner)


def test_responder_unavailable_reassigns_its_tasks(planner):
    planner.step(200)
    plan0 = planner.best()[0]
    had = [t for t in plan0.routes["amb-01"]]
    assert had, "setup: amb-01 should have work in the tiny scenario"
    planner.apply({"type": "responder_unavailable", "time": 2.0, "responder": "amb-01"})
    assert "amb-01" not in planner.scenario.responder_index
    assert "amb-01" not in [r["id"] for r in planner._model["responders"]]
    plan = planner.best()[0]
    assert "amb-01" not in plan.routes
    for t in had:
        if t.kind == "transport":
            assert tasks_of(plan, t.casualty).count(("amb-02", "transport")) == 1
    assert_consistent(planner)


def test_responder_unavailable_drops_its_pins(planner):
    task = planner.next_task("amb-01", 0.0)
    assert task is not None and planner._pins.get("amb-01")
    planner.apply({"type": "responder_unavailable", "time": 1.0, "responder": "amb-01"})
    assert "amb-01" not in planner._pins
    plan = planner.best()[0]
    if task.kind == "transport":
        assert ("amb-02", "transport") in tasks_of(plan, task.casualty)
    assert_consistent(planner)


@pytest.mark.parametrize("removed", [["fire-01"], ["amb-01", "amb-02"]])
def test_removing_the_last_team_of_a_kind_never_leaves_an_invalid_incumbent(planner, removed):
    """Without any fire team (paramedic team) no valid plan exists while someone is trapped (waiting
    for transport). SPEC §8: the incumbent is always a valid plan, and a delta that cannot be applied
    is rejected whole. Either is acceptable here; an invalid incumbent scored as F = 0 is not."""
    for rid in removed:
        before = state(planner)
        try:
            planner.apply({"type": "responder_unavailable", "time": 1.0, "responder": rid})
        except DeltaError:
            assert state(planner) == before
        assert_consistent(planner)


def test_trapped_casualty_added_without_fire_teams_never_leaves_an_invalid_incumbent():
    d = tiny()
    d["responders"] = [r for r in d["responders"] if r["kind"] != "fire"]
    for c in d["casualties"]:
        c["trapped"] = False
        c.pop("rescue_minutes", None)
    p = Planner(d, seed=0)
    try:
        assert_consistent(p)
        before = state(p)
        try:
            p.apply({"type": "casualties_added", "time": 1.0,
                     "casualties": [{"id": "stuck", "site": "aldgate", "health": "P1", "trapped": True}]})
        except DeltaError:
            assert state(p) == before
        assert_consistent(p)
    finally:
        p.close()


# --- travel_changed -------------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [1.5, 0.5, 3.0])
def test_travel_factor_on_geo_scales_every_travel_time(planner, factor):
    before = planner.scenario.travel.copy()
    planner.apply({"type": "travel_changed", "time": 1.0, "factor": factor})
    after = planner.scenario.travel
    assert after.shape == before.shape
    assert np.allclose(after, before * factor, rtol=1e-12, atol=0)
    assert_consistent(planner)


def graph_scenario() -> dict:
    """Nodes A..E: hospital at A, site at C, station at D, amb2 starting on node E.

    Edges (minutes, two-way): A-B 2, B-C 3, A-C 10, C-D 1, E-A 4.
    """
    return {
        "format": "goldenhour.scenario/1", "name": "graph", "time": 0.0,
        "network": {"kind": "graph",
                    "nodes": [{"id": n, "lat": 51.5 + 0.001 * i, "lon": -0.1} for i, n in enumerate("ABCDE")],
                    "edges": [{"from": "A", "to": "B", "minutes": 2.0}, {"from": "B", "to": "C", "minutes": 3.0},
                              {"from": "A", "to": "C", "minutes": 10.0}, {"from": "C", "to": "D", "minutes": 1.0},
                              {"from": "E", "to": "A", "minutes": 4.0}]},
        "hospitals": [{"id": "H", "node": "A", "capacity": 2}],
        "sites": [{"id": "S", "node": "C"}],
        "stations": [{"id": "ST", "node": "D"}],
        "responders": [{"id": "amb", "kind": "paramedic", "start": "H"},
                       {"id": "amb2", "kind": "paramedic", "start": {"node": "E"}},
                       {"id": "fire", "kind": "fire", "start": "ST"}],
        "casualties": [{"id": "x1", "site": "S", "health": "urgent"},
                       {"id": "x2", "site": "S", "health": "immediate", "trapped": True, "rescue_minutes": 5.0}],
    }


def test_closed_edge_makes_the_path_longer():
    p = Planner(graph_scenario(), seed=0)
    try:
        sc = p.scenario
        assert travel(sc, "H", "S") == 5.0 and travel(sc, "S", "H") == 5.0
        p.apply({"type": "travel_changed", "time": 1.0, "closed_edge": {"from": "B", "to": "C", "oneway": True}})
        sc = p.scenario
        assert travel(sc, "H", "S") == 10.0  # A-C direct
        assert travel(sc, "S", "H") == 5.0  # C->B stays open
        assert travel(sc, "ST", "S") == 1.0
        assert_consistent(p)
        p.apply({"type": "travel_changed", "time": 2.0, "closed_edge": {"from": "C", "to": "B", "oneway": True}})
        assert travel(p.scenario, "S", "H") == 10.0
        assert_consistent(p)
        # a factor on a graph scales the edges
        p.apply({"type": "travel_changed", "time": 3.0, "factor": 2.0})
        assert travel(p.scenario, "H", "S") == 20.0 and travel(p.scenario, "ST", "S") == 2.0
        assert_consistent(p)
    finally:
        p.close()


def test_a_closed_road_is_closed_both_ways():
    """A control room reports a road closed, not one of its directions (the ambulance at the
    hospital was planned down the closed road the other way)."""
    p = Planner(graph_scenario(), seed=0)
    try:
        p.apply({"type": "travel_changed", "time": 1.0, "closed_edge": {"from": "C", "to": "B"}})
        assert travel(p.scenario, "H", "S") == 10.0 and travel(p.scenario, "S", "H") == 10.0
        assert_consistent(p)
    finally:
        p.close()


def test_closing_a_road_given_as_two_one_way_edges_closes_both():
    sc = graph_scenario()
    edges = sc["network"]["edges"]
    edges[1] = dict(edges[1], oneway=True)  # B -> C
    edges.append({"from": "C", "to": "B", "minutes": 3.0, "oneway": True})
    p = Planner(sc, seed=0)
    try:
        assert travel(p.scenario, "H", "S") == 5.0 and travel(p.scenario, "S", "H") == 5.0
        p.apply({"type": "travel_changed", "time": 1.0, "closed_edge": {"from": "B", "to": "C"}})
        assert travel(p.scenario, "H", "S") == 10.0 and travel(p.scenario, "S", "H") == 10.0
    finally:
        p.close()


def test_closed_edge_that_disconnects_a_place_is_rejected_whole():
    p = Planner(graph_scenario(), seed=0)
    try:
        before = state(p)
        sc = p.scenario
        with pytest.raises(DeltaError):  # amb2 could no longer leave node E
            p.apply({"type": "travel_changed", "time": 1.0, "closed_edge": {"from": "E", "to": "A"}})
        assert state(p) == before
        assert p.scenario is sc
        with pytest.raises(DeltaError):  # the fire team could no longer leave its station
            p.apply({"type": "travel_changed", "time": 1.0, "closed_edge": {"from": "D", "to": "C"}})
        with pytest.raises(DeltaError):  # no such edge
            p.apply({"type": "travel_changed", "time": 1.0, "closed_edge": {"from": "B", "to": "D"}})
        assert state(p) == before
        assert p.scenario is sc
    finally:
        p.close()


# --- hospital_capacity --------------------------------------------------------------------------

def test_hospital_capacity(planner):
    planner.apply({"type": "hospital_capacity", "time": 1.0, "hospital": "RJ122", "capacity": 7})
    assert hosp(planner, "RJ122")["capacity"] == 7
    sc = planner.scenario
    assert problem_arrays(sc).hosp_cap[sc.hospital_index["RJ122"]] == 7
    planner.apply({"type": "hospital_capacity", "time": 1.0, "hospital": "R1H12", "capacity": 0})
    assert problem_arrays(planner.scenario).hosp_cap[planner.scenario.hospital_index["R1H12"]] == 0
    assert_consistent(planner)


# --- clock --------------------------------------------------------------------------------------

def test_clock_advances_time_without_resetting_health(planner):
    """Moving the clock on must not move the observations: health keeps deteriorating from time 0."""
    plan0, obj0 = planner.best()
    planner.apply({"type": "clock", "time": 10.0})
    assert planner.time == 10.0 and planner.scenario.model.time == 10.0
    for cid, cat in (("c002", "delayed"), ("c003", "immediate"), ("c004", "delayed")):
        expected = propagate(category_vector(cat), CHAINS[CCS], 10.0)
        got = health_at(planner, cid, 10.0, CCS)
        assert np.allclose(got, expected, atol=1e-12), (
            f"{cid}: health at 10 is {got}, expected {expected} (observed at 0, 10 min in ccs)")
    expected = propagate(category_vector("urgent"), CHAINS[TRAPPED], 10.0)
    assert np.allclose(health_at(planner, "c001", 10.0, TRAPPED), expected, atol=1e-12)
    # ten minutes of inaction cannot make things better
    assert planner.best()[1].expected_fatalities > obj0.expected_fatalities + 1e-6
    assert_consistent(planner)


def test_clock_clamps_overdue_work_in_progress(planner):
    planner.apply({"type": "task_started", "time": 1.0, "responder": "fire-01", "task": "rescue",
                   "casualty": "c001"})  # ends 11.5
    planner.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "treat",
                   "casualty": "c002"})  # ends 11
    planner.apply({"type": "task_started", "time": 1.0, "responder": "amb-02", "task": "transport",
                   "casualty": "c003", "hospital": "R1H12"})
    arrival = cas(planner, "c003")["in_transit"]["arrival"]
    assert arrival < 30.0
    planner.apply({"type": "clock", "time": 8.0})
    assert cas(planner, "c001")["rescue_ends_at"] == pytest.approx(11.5)
    assert cas(planner, "c002")["treatment_ends_at"] == pytest.approx(11.0)
    planner.apply({"type": "clock", "time": 30.0})
    assert planner.time == 30.0
    assert cas(planner, "c001")["rescue_ends_at"] == 30.0
    assert cas(planner, "c002")["treatment_ends_at"] == 30.0
    assert cas(planner, "c003")["in_transit"]["arrival"] == 30.0
    # and the teams doing the work are free when it now ends, not at the old estimates
    assert resp(planner, "fire-01")["available_at"] == 30.0
    assert resp(planner, "amb-01")["available_at"] == 30.0
    assert resp(planner, "amb-02")["available_at"] == pytest.approx(30.0 + DURATIONS["handover"], abs=1e-12)
    assert_consistent(planner)


def test_a_team_on_overdue_work_is_planned_after_it():
    """A rescue still going past its estimate keeps its fire team: the rescue issued to it next is
    planned once the clock has passed the first one's estimate, not before it."""
    sc = tiny()
    sc["casualties"].append({"id": "n1", "site": "aldgate", "health": "urgent", "trapped": True,
                             "rescue_minutes": 5.0})
    p = Planner(sc, algorithm="descent", seed=0)
    try:
        p.apply({"type": "task_started", "time": 6.0, "responder": "fire-01", "task": "rescue",
                 "casualty": "c001"})  # ends 16.5 as estimated
        assert p.next_task("fire-01", 7.0).casualty == "n1"
        p.apply({"type": "clock", "time": 25.0})
        assert resp(p, "fire-01")["available_at"] == 25.0
        objective, W, arrays = evaluate_detail(p.scenario, p.best()[0])
        rescue = next(r for r in schedule_records(p.scenario, W, arrays) if r["casualty"] == "n1" and r["task"] == "rescue")
        assert rescue["responder"] == "fire-01" and rescue["start"] >= 25.0  # 16.5 before the fix
        assert_consistent(p)
    finally:
        p.close()


def test_clock_at_the_same_time_changes_nothing_but_is_accepted(planner):
    planner.apply({"type": "clock", "time": 0.0})
    assert planner.time == 0.0
    assert_consistent(planner)


# --- invalid deltas -------------------------------------------------------------------------------

INVALID = {
    "unknown type": {"type": "explode", "time": 6.0},
    "missing type": {"time": 6.0, "casualty": "c001"},
    "not an object": ["health_observed", 6.0],
    "missing time": {"type": "clock"},
    "time backwards": {"type": "clock", "time": 4.0},
    "time backwards on a health observation": {"type": "health_observed", "time": 4.9, "casualty": "c002",
                                               "health": "urgent"},
    "time as a string": {"type": "clock", "time": "6"},
    "time as a bool": {"type": "clock", "time": True},
    "time NaN": {"type": "clock", "time": float("nan")},
    "time inf": {"type": "clock", "time": float("inf")},
    "extra key": {"type": "clock", "time": 6.0, "foo": 1},
    "extra key on health_observed": {"type": "health_observed", "time": 6.0, "casualty": "c002",
                                     "health": "urgent", "source": "radio"},
    "unknown casualty": {"type": "health_observed", "time": 6.0, "casualty": "c999", "health": "urgent"},
    "unknown category": {"type": "health_observed", "time": 6.0, "casualty": "c002", "health": "purple"},
    "vector not summing to 1": {"type": "health_observed", "time": 6.0, "casualty": "c002",
                                "health": [0.5, 0.5, 0.5, 0.0]},
    "vector of 3": {"type": "health_observed", "time": 6.0, "casualty": "c002", "health": [0.5, 0.5, 0.0]},
    "observed after the delta's time": {"type": "health_observed", "time": 6.0, "casualty": "c002",
                                        "health": "urgent", "observed_at": 7.0},
    "casualty id not a string": {"type": "health_observed", "time": 6.0, "casualty": 2, "health": "urgent"},
    "rescue by a paramedic": {"type": "task_started", "time": 6.0, "responder": "amb-01", "task": "rescue",
                              "casualty": "c001"},
    "treat by a fire team": {"type": "task_started", "time": 6.0, "responder": "fire-01", "task": "treat",
                             "casualty": "c002"},
    "transport by a fire team": {"type": "task_started", "time": 6.0, "responder": "fire-01",
                                 "task": "transport", "casualty": "c002", "hospital": "R1H12"},
    "transport without hospital": {"type": "task_started", "time": 6.0, "responder": "amb-01",
                                   "task": "transport", "casualty": "c002"},
    "transport to an unknown hospital": {"type": "task_started", "time": 6.0, "responder": "amb-01",
                                         "task": "transport", "casualty": "c002", "hospital": "NOPE"},
    "transport of a trapped casualty": {"type": "task_started", "time": 6.0, "responder": "amb-01",
                                        "task": "transport", "casualty": "c001", "hospital": "R1H12"},
    "rescue of a casualty not trapped": {"type": "task_started", "time": 6.0, "responder": "fire-01",
                                         "task": "rescue", "casualty": "c002"},
    "task by an unknown responder": {"type": "task_started", "time": 6.0, "responder": "amb-99",
                                     "task": "treat", "casualty": "c002"},
    "task of an unknown casualty": {"type": "task_started", "time": 6.0, "responder": "amb-01",
                                    "task": "treat", "casualty": "c999"},
    "unknown task kind": {"type": "task_started", "time": 6.0, "responder": "amb-01", "task": "triage",
                          "casualty": "c002"},
    "completed transport not in transit": {"type": "task_completed", "time": 6.0, "responder": "amb-01",
                                           "task": "transport", "casualty": "c002"},
    "completed rescue of a casualty not trapped": {"type": "task_completed", "time": 6.0,
                                                   "responder": "fire-01", "task": "rescue",
                                                   "casualty": "c002"},
    "completed rescue by a paramedic": {"type": "task_completed", "time": 6.0, "responder": "amb-02",
                                        "task": "rescue", "casualty": "c001"},
    "completed treat by a fire team": {"type": "task_completed", "time": 6.0, "responder": "fire-01",
                                       "task": "treat", "casualty": "c002"},
    "completed task by an unknown responder": {"type": "task_completed", "time": 6.0,
                                               "responder": "amb-99", "task": "treat", "casualty": "c002"},
    "duration of an unknown casualty": {"type": "duration_revised", "time": 6.0, "task": "rescue",
                                        "casualty": "c999", "minutes": 3.0},
    "negative duration": {"type": "duration_revised", "time": 6.0, "task": "treat", "casualty": "c002",
                          "minutes": -1.0},
    "duration of a transport": {"type": "duration_revised", "time": 6.0, "task": "transport",
                                "casualty": "c002", "minutes": 3.0},
    "responder with a duplicate id": {"type": "responder_added", "time": 6.0,
                                      "responder": {"id": "amb-01", "kind": "paramedic", "start": "R1H12"}},
    "HART fire team": {"type": "responder_added", "time": 6.0,
                       "responder": {"id": "fire-09", "kind": "fire", "start": "FS107", "hart": True}},
    "responder at an unknown place": {"type": "responder_added", "time": 6.0,
                                      "responder": {"id": "amb-09", "kind": "paramedic", "start": "nowhere"}},
    "responder of an unknown kind": {"type": "responder_added", "time": 6.0,
                                     "responder": {"id": "amb-09", "kind": "police", "start": "R1H12"}},
    "unknown responder unavailable": {"type": "responder_unavailable", "time": 6.0, "responder": "amb-99"},
    "capacity of an unknown hospital": {"type": "hospital_capacity", "time": 6.0, "hospital": "NOPE",
                                        "capacity": 3},
    "negative capacity": {"type": "hospital_capacity", "time": 6.0, "hospital": "R1H12", "capacity": -1},
    "fractional capacity": {"type": "hospital_capacity", "time": 6.0, "hospital": "R1H12", "capacity": 2.5},
    "capacity as a bool": {"type": "hospital_capacity", "time": 6.0, "hospital": "R1H12", "capacity": True},
    "zero travel factor": {"type": "travel_changed", "time": 6.0, "factor": 0.0},
    "negative travel factor": {"type": "travel_changed", "time": 6.0, "factor": -2.0},
    "travel change without factor or edge": {"type": "travel_changed", "time": 6.0},
    "closed edge on a geo network": {"type": "travel_changed", "time": 6.0,
                                     "closed_edge": {"from": "a", "to": "b"}},
    "duplicate casualty added": {"type": "casualties_added", "time": 6.0,
                                 "casualties": [{"id": "c001", "site": "aldgate", "health": "P1"}]},
    "casualty added at an unknown site": {"type": "casualties_added", "time": 6.0,
                                          "casualties": [{"id": "c201", "site": "nowhere", "health": "P1"}]},
    "one bad casualty among good ones": {"type": "casualties_added", "time": 6.0,
                                         "casualties": [{"id": "c201", "site": "aldgate", "health": "P1"},
                                                        {"id": "c202", "site": "aldgate", "health": "P9"}]},
    "site with a duplicate id": {"type": "casualties_added", "time": 6.0,
                                 "sites": [{"id": "R1H12", "lat": 51.5, "lon": -0.1}]},
}


@pytest.mark.parametrize("task", ["rescue", "treat", "transport"])
def test_a_task_is_completed_by_the_team_that_started_it(descent, task):
    descent.apply({"type": "responder_added", "time": 0.0,
                   "responder": {"id": "fire-02", "kind": "fire", "start": "FS107"}})
    doer, other, cid = {"rescue": ("fire-01", "fire-02", "c001"), "treat": ("amb-01", "amb-02", "c002"),
                        "transport": ("amb-02", "amb-01", "c003")}[task]
    start = {"type": "task_started", "time": 1.0, "responder": doer, "task": task, "casualty": cid}
    if task == "transport":
        start["hospital"] = "RJ122"
    descent.apply(start)
    before = state(descent)
    done = {"type": "task_completed", "time": 30.0, "task": task, "casualty": cid}
    with pytest.raises(DeltaError, match=f"started by '{doer}'"):
        descent.apply(dict(done, responder=other))
    assert state(descent) == before
    descent.apply(dict(done, responder=doer))
    assert resp(descent, doer)["available_at"] == pytest.approx(30.0 + (5.0 if task == "transport" else 0.0))
    assert_consistent(descent)


def test_a_team_reported_unavailable_still_completes_its_transport(descent):
    """Its casualty is in the ambulance: the arrival is still reported, and delivers it."""
    descent.apply({"type": "task_started", "time": 1.0, "responder": "amb-02", "task": "transport",
                   "casualty": "c003", "hospital": "RJ122"})
    descent.apply({"type": "responder_unavailable", "time": 2.0, "responder": "amb-02"})
    arrival = cas(descent, "c003")["in_transit"]["arrival"]
    descent.apply({"type": "task_completed", "time": arrival, "responder": "amb-02", "task": "transport",
                   "casualty": "c003"})
    assert "c003" not in descent.scenario.casualty_index
    assert descent._model["delivered_fatalities"] > 0
    assert "amb-02" not in descent.scenario.responder_index
    assert_consistent(descent)


def test_a_crew_taking_over_from_an_unavailable_team_completes_its_work(descent):
    descent.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "treat", "casualty": "c002"})
    descent.apply({"type": "responder_unavailable", "time": 2.0, "responder": "amb-01"})
    descent.apply({"type": "task_completed", "time": 9.0, "responder": "amb-02", "task": "treat", "casualty": "c002"})
    assert cas(descent, "c002")["treated"]
    assert (resp(descent, "amb-02")["start"], resp(descent, "amb-02")["available_at"]) == ("aldgate", 9.0)
    assert_consistent(descent)


def test_a_restored_planner_takes_the_arrival_of_a_team_reported_unavailable(descent, tmp_path):
    """Who started a task is not in a snapshot; the restored planner knows the transport is
    under way with no team left to claim it, so its arrival is still reported and delivers."""
    descent.apply({"type": "task_started", "time": 1.0, "responder": "amb-02", "task": "transport",
                   "casualty": "c003", "hospital": "RJ122"})
    descent.apply({"type": "responder_unavailable", "time": 2.0, "responder": "amb-02"})
    arrival = cas(descent, "c003")["in_transit"]["arrival"]
    descent.snapshot(tmp_path / "snap")
    q = Planner.restore(tmp_path / "snap", algorithm="descent", seed=0)
    try:
        done = {"type": "task_completed", "time": arrival, "responder": "amb-02", "task": "transport",
                "casualty": "c003"}
        with pytest.raises(DeltaError, match="unknown responder"):
            q.apply(dict(done, responder="amb-99", task="treat", casualty="c002"))  # nothing of c002's under way
        for planner_ in (descent, q):
            planner_.apply(done)
            assert "c003" not in planner_.scenario.casualty_index
        assert q._model["delivered_fatalities"] == pytest.approx(descent._model["delivered_fatalities"], abs=1e-12)
    finally:
        q.close()


def test_a_delivered_casualty_id_is_not_given_again(descent):
    descent.apply({"type": "task_started", "time": 1.0, "responder": "amb-02", "task": "transport",
                   "casualty": "c003", "hospital": "RJ122"})
    arrival = cas(descent, "c003")["in_transit"]["arrival"]
    descent.apply({"type": "task_completed", "time": arrival, "responder": "amb-02", "task": "transport",
                   "casualty": "c003"})
    before = state(descent)
    with pytest.raises(DeltaError, match=r"delta\.casualties\[0\]\.id"):
        descent.apply({"type": "casualties_added", "time": arrival,
                       "casualties": [{"id": "c003", "site": "aldgate", "health": "immediate"}]})
    assert state(descent) == before


def test_a_team_added_after_its_shift_ended_is_rejected(descent):
    """SPEC §4: ``available_at`` defaults to the model's time, and a shift cannot end before it."""
    descent.apply({"type": "clock", "time": 6.0})
    before = state(descent)
    with pytest.raises(DeltaError, match="shift_end"):
        descent.apply({"type": "responder_added", "time": 6.0,
                       "responder": {"id": "amb-09", "kind": "paramedic", "start": "R1H12", "shift_end": 2.0}})
    assert state(descent) == before


@pytest.fixture
def busy_planner():
    """A tiny planner at time 5 with an issued task, so rejected deltas have something to break."""
    p = Planner(tiny(), algorithm="annealing", seed=0)
    p.step(200)
    p.apply({"type": "clock", "time": 5.0})
    p.next_task("amb-01", 5.0)
    p.step(200)
    yield p
    p.close()


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_delta_is_rejected_whole(busy_planner, name):
    p = busy_planner
    before = state(p)
    sc = p.scenario
    with pytest.raises(DeltaError) as info:
        p.apply(copy.deepcopy(INVALID[name]))
    assert info.value.problems, "a DeltaError names at least one problem"
    for problem in info.value.problems:
        assert str(problem).strip()
    after = state(p)
    assert after[0] == before[0], "the model changed"
    assert after[1] == before[1], "the incumbent plan changed"
    assert after[2] == before[2], "the objective changed"
    assert after[3] == before[3], "the pins changed"
    assert after[4] == before[4], "the time changed"
    assert p.scenario is sc
    assert_consistent(p)


def test_roads_slowed_past_the_model_s_times_are_refused_and_change_nothing(descent):
    """Each factor is within its bound (1e3), but three of them make London's routes longer than
    any time the model holds (1e9 minutes): refused, where they had been taken and scored
    (routes of 1e18 minutes and more ran the health tables out: negative expected fatalities)."""
    slow = {"type": "travel_changed", "time": 1.0, "factor": 1000.0}
    descent.apply(slow)
    descent.apply(dict(slow, time=2.0))
    before = state(descent)
    with pytest.raises(DeltaError) as err:
        descent.apply(dict(slow, time=3.0))
    assert all(p.path.endswith("network") and "minutes (at most 1e+09)" in p.message for p in err.value.problems)
    assert state(descent) == before
    assert 0.0 <= descent.best()[1].expected_fatalities <= len(descent.scenario.model.casualties)


def test_roads_made_faster_than_a_geo_network_allows_are_refused_as_the_delta_s_factor(descent):
    """Two factors of 1e-3 make the straight lines a million times faster, past the 1e6 km/h a
    geo network allows: the error names the delta's factor (it named ``network.speed_kmh``, a
    field the caller never wrote) and nothing changes."""
    fast = {"type": "travel_changed", "time": 1.0, "factor": 1e-3}
    speed = descent.scenario.model.network.speed_kmh
    descent.apply(fast)
    assert descent.scenario.model.network.speed_kmh == pytest.approx(speed * 1e3)
    before = state(descent)
    with pytest.raises(DeltaError) as err:
        descent.apply(dict(fast, time=2.0))
    assert [p.path for p in err.value.problems] == ["delta.factor"]
    assert "km/h" in err.value.problems[0].message
    assert state(descent) == before


@pytest.mark.parametrize("site,health", [("kings-cross", "delayed"), ("edgware-road", "urgent")])
def test_a_trapped_casualty_added_is_rescued_where_no_other_place_is_better(london, site, health):
    """Its rescue is inserted before its transport, when the casualty has no arrival yet and so
    no p_dead: every place cost the same, and the rescue went to the end of the first fire
    team's list wherever the casualty was. The repair places it again once the transport is
    in: no other place for it, on any fire team, gives fewer expected fatalities."""
    p = Planner(london.to_dict(), algorithm="descent", seed=0)
    try:
        p.apply({"type": "casualties_added", "time": 0.0, "casualties": [
            {"id": "NEW", "site": site, "health": health, "trapped": True, "rescue_minutes": 5.0}]})
        plan, objective = p.best()
        sc = p.scenario
        routes = {r: [t for t in ts] for r, ts in plan.routes.items()}
        rescue = next(t for ts in routes.values() for t in ts if t.kind == "rescue" and t.casualty == "NEW")
        without = {r: [t for t in ts if t is not rescue] for r, ts in routes.items()}
        fire = [r.id for r in sc.model.responders if r.kind == "fire"]
        for rid in fire:
            for i in range(len(without[rid]) + 1):
                moved = dict(without, **{rid: without[rid][:i] + [rescue] + without[rid][i:]})
                other = engine.evaluate(sc, Plan(moved, sc.model.name, sc.model.time))
                assert other.expected_fatalities is None or \
                    other.expected_fatalities >= objective.expected_fatalities - 1e-9, (rid, i)
    finally:
        p.close()


def test_a_whole_number_of_beds_given_as_a_float_is_taken(descent):
    """As in a scenario file (JSON Schema's "integer" admits 3.0): 3.0 beds are 3; 2.5 are not."""
    descent.apply({"type": "hospital_capacity", "time": 1.0, "hospital": "R1H12", "capacity": 3.0})
    assert hosp(descent, "R1H12")["capacity"] == 3 and type(hosp(descent, "R1H12")["capacity"]) is int
    assert descent.scenario.model.hospitals[descent.scenario.hospital_index["R1H12"]].capacity == 3


def test_rejected_transport_start_keeps_the_responder_and_casualty():
    """A transport rejected for the casualty's state leaves the team's position as it was."""
    p = Planner(tiny(), seed=0)
    try:
        before = state(p)
        with pytest.raises(DeltaError):
            p.apply({"type": "task_started", "time": 2.0, "responder": "amb-02", "task": "transport",
                     "casualty": "c001", "hospital": "R1H12"})
        assert state(p) == before
    finally:
        p.close()


# --- travel_changed: strict numbers, and networks given as files -----------------------------------

@pytest.mark.parametrize("factor", ["2", True])
def test_a_travel_factor_is_a_number_not_text_or_a_flag(descent, factor):
    before = state(descent)
    with pytest.raises(DeltaError, match="delta.factor"):
        descent.apply({"type": "travel_changed", "time": 0.0, "factor": factor})
    assert state(descent) == before


def test_roads_slower_and_a_road_closed_on_a_network_given_as_files():
    """SPEC §8 allows both deltas on any graph network; the Helsinki example reads its roads from
    Parquet files. Every travel time takes ``factor`` times as long (edges carry lengths and
    speeds: exactly proportional), and closing a road the fastest path used lengthens it."""
    root = Path(__file__).resolve().parents[2]
    p = Planner(root / "examples" / "helsinki.json", algorithm="descent", seed=0)
    try:
        before = p.scenario.travel.copy()
        p.apply({"type": "travel_changed", "time": 0.0, "factor": 1.5})
        assert p.scenario.model.network.edges_file is None and p.scenario.model.network.edges
        np.testing.assert_allclose(p.scenario.travel, 1.5 * before, rtol=1e-12, atol=1e-12)
        assert_consistent(p)
        slow = p.scenario.travel.copy()
        edges = p.scenario.model.network.edges  # a closed road can only make trips longer
        p.apply({"type": "travel_changed", "time": 0.0, "closed_edge": {"from": edges[0].from_, "to": edges[0].to}})
        assert len(p.scenario.model.network.edges) < len(edges)
        assert (p.scenario.travel >= slow - 1e-9).all()
        assert_consistent(p)
    finally:
        p.close()


def test_problems_of_added_records_are_named_where_the_delta_has_them(descent):
    """A casualty or team added with a wrong reference is named by its place in the delta, not
    by its index in the whole model (which the sender cannot know)."""
    site = descent.scenario.model.sites[0].id
    with pytest.raises(DeltaError) as err:
        descent.apply({"type": "casualties_added", "time": 1.0, "sites": [{"id": "new", "lat": 51.5, "lon": -0.1}],
                       "casualties": [{"id": "n1", "site": site, "health": "P1"},
                                      {"id": "n2", "site": "nowhere", "health": "P2"}]})
    assert [p.path for p in err.value.problems] == ["delta.casualties[1].site"]
    with pytest.raises(DeltaError) as err:
        descent.apply({"type": "casualties_added", "time": 1.0,
                       "sites": [{"id": site, "lat": 51.5, "lon": -0.1}]})  # a place id taken already
    assert [p.path for p in err.value.problems] == ["delta.sites[0].id"]
    with pytest.raises(DeltaError) as err:
        descent.apply({"type": "responder_added", "time": 1.0,
                       "responder": {"id": "x", "kind": "paramedic", "start": "nowhere"}})
    assert [p.path for p in err.value.problems] == ["delta.responder.start"]


@pytest.mark.parametrize("task", ["rescue", "treat"])
def test_work_left_by_a_team_reported_unavailable_stops_and_can_be_taken_over(task):
    """A team withdrawn in the middle of a rescue (or treatment) stops it: the casualty is
    trapped (untreated) with nothing under way, and a rescue is planned for it again. (It had
    been left under way with no team, ending on time: no fire team was planned for a casualty
    still trapped, and its transport was timed from the rescue's end.) Another team's report
    of starting it is taken; while the first team is in the model, its work is its own."""
    d = factories.one_site(fire_teams=2)
    kind = "fire" if task == "rescue" else "paramedic"
    first, second = ("fire1", "fire2") if task == "rescue" else ("amb1", "amb2")
    p = Planner(d, algorithm="descent", seed=0)
    try:
        p.apply({"type": "task_started", "time": 1.0, "responder": first, "task": task, "casualty": "c2"})
        key = "rescue_ends_at" if task == "rescue" else "treatment_ends_at"
        with pytest.raises(DeltaError, match="c2"):  # the first team is at it
            p.apply({"type": "task_started", "time": 2.0, "responder": second, "task": task, "casualty": "c2"})
        p.apply({"type": "responder_unavailable", "time": 3.0, "responder": first})
        assert key not in cas(p, "c2") and cas(p, "c2")["trapped"]
        if task == "rescue":  # required again, so planned again, for the team left
            assert [(t.kind, t.casualty) for t in p.best()[0].routes[second] if t.kind == "rescue"] == [("rescue", "c2")]
        assert_consistent(p)
        p.apply({"type": "task_started", "time": 4.0, "responder": second, "task": task, "casualty": "c2"})
        minutes = 10.0 if task == "rescue" else p.scenario.model.durations.treatment
        assert cas(p, "c2")[key] == 4.0 + minutes  # afresh: the first team's progress is unknown
        team = resp(p, second)
        assert team["kind"] == kind and (team["start"], team["available_at"]) == ("S", 4.0 + minutes)
        p.apply({"type": "task_completed", "time": 4.0 + minutes, "responder": second, "task": task,
                 "casualty": "c2"})
        assert cas(p, "c2").get(key) is None
        assert_consistent(p)
    finally:
        p.close()


@pytest.mark.parametrize("reported", [("c0", "c1"), ("c1", "c0")])
def test_two_deliveries_at_one_minute_take_the_beds_by_casualty_index(reported):
    """One bed, two casualties arriving together: SPEC §7 gives it to the first listed, whatever
    order the deliveries are reported in (the first reported kept it, so reports that only
    confirmed the plan moved F by one overflow term when they came in the other order). The
    second listed, reported first, takes the free bed until the first is reported delivered at
    that minute too (not held for an ambulance that may come later: ``deltas._ahead_of``)."""
    site, hospital = {"lat": 51.50, "lon": -0.10}, {"lat": 51.51, "lon": -0.10}
    d = {"format": "goldenhour.scenario/1", "name": "tie", "time": 0.0, "network": {"kind": "geo", "speed_kmh": 60.0},
         "hospitals": [{"id": "H", **hospital, "capacity": 1}], "sites": [{"id": "S", **site}],
         "responders": [{"id": "a0", "kind": "paramedic", "start": "S"}, {"id": "a1", "kind": "paramedic", "start": "S"}],
         "casualties": [{"id": "c0", "site": "S", "health": "urgent"}, {"id": "c1", "site": "S", "health": "immediate"}],
         "hospital_overflow_risk": 0.5}
    p = Planner(d, algorithm="descent", seed=0)
    try:
        for team, cid in (("a0", "c0"), ("a1", "c1")):
            p.apply({"type": "task_started", "time": 0.0, "responder": team, "task": "transport", "casualty": cid,
                     "hospital": "H"})
        arrival = cas(p, "c0")["in_transit"]["arrival"]
        assert cas(p, "c1")["in_transit"]["arrival"] == arrival
        F = p.best()[1].expected_fatalities
        for cid in reported:
            team = "a0" if cid == "c0" else "a1"
            p.apply({"type": "task_completed", "time": arrival, "responder": team, "task": "transport", "casualty": cid})
            assert hosp(p, "H")["capacity"] == 0
            if cid == "c0":
                assert p.best()[1].expected_fatalities == pytest.approx(F, abs=1e-12)
        assert p.best()[1].expected_fatalities == pytest.approx(F, abs=1e-12)
    finally:
        p.close()
