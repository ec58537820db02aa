"""``engine.explain``: what a plan caught in a cycle of waits is explained as."""

from __future__ import annotations

import numpy as np

import engine
from engine.explain import explain
from engine.plan import Plan, Task
from engine.solution import Solution


def _two_casualties():
    """Two casualties at one site, each treated by one team and carried by the other."""
    place = {"lat": 51.5, "lon": -0.1}
    return {
        "format": "goldenhour.scenario/1", "name": "cross", "time": 0.0,
        "network": {"kind": "geo", "speed_kmh": 40.0},
        "sites": [{"id": "s", **place}],
        "hospitals": [{"id": "h", "lat": 51.51, "lon": -0.11, "capacity": 1}],
        "responders": [{"id": "a", "kind": "paramedic", "start": {"lat": 51.505, "lon": -0.1}},
                       {"id": "b", "kind": "paramedic", "start": {"lat": 51.495, "lon": -0.1}}],
        "casualties": [{"id": "c0", "site": "s", "health": "immediate"},
                       {"id": "c1", "site": "s", "health": "immediate"}],
    }


def test_a_plan_in_a_cycle_of_waits_has_no_p_dead_and_no_share():
    """Each team first carries the casualty whose treatment the other team does after its own
    transport: both wait for ever. Such a plan has no objective (SPEC §7), so no casualty has a
    p_dead or a share: the workspace's were left by whatever it scored before (a greedy plan
    here), and the top contributors were sorted by them."""
    sc = engine.load_scenario(_two_casualties())
    sol = Solution.from_plan(sc, engine.load_plan(sc, engine.solve(sc, algorithm="greedy").plan.to_json()))
    assert not np.isnan(sol.W.pdead).all(), "the workspace holds a scored plan's p_dead"
    routes = {"a": [Task("transport", "c0", "h"), Task("treat", "c1")],
              "b": [Task("transport", "c1", "h"), Task("treat", "c0")]}
    cycle = Solution.from_plan(sc, Plan(routes, sc.model.name, 0.0))
    cycle.W = sol.W  # the greedy plan's workspace, as a search hands its workspaces on
    cycle.reevaluate()
    assert np.isnan(cycle.cur[0]), "the plan is caught in a cycle"
    ex = explain(cycle)
    assert ex.expected_fatalities is None
    assert [c["p_dead"] for c in ex.casualties] == [None, None]
    assert [c["share"] for c in ex.casualties] == [None, None]
    assert [h["overflow_fatalities"] for h in ex.hospitals] == [None]
    assert [c["arrival"] for c in ex.casualties] == [None, None]
    text = ex.to_text()
    assert "c0" in text and "nan" not in text.lower()


def test_a_casualty_in_transit_in_a_plan_caught_in_a_cycle_is_explained():
    """Its ride is a fact, but a plan in a cycle of waits has no arrivals: its minutes in the
    ambulance are unknown too (the explanation raised a TypeError, and so did ``solve`` from
    such a plan, pinned so that no move could break the cycle)."""
    d = _two_casualties()
    d["casualties"].append({"id": "c2", "site": "s", "health": "urgent", "in_transit": {"hospital": "h", "arrival": 5.0}})
    sc = engine.load_scenario(d)
    routes = {"a": [Task("transport", "c0", "h", True), Task("treat", "c0", None, True)],
              "b": [Task("transport", "c1", "h")]}
    ex = engine.solve(sc, algorithm="descent", initial=Plan(routes, sc.model.name, 0.0)).explanation
    assert ex.expected_fatalities is None
    ride = next(c for c in ex.casualties if c["casualty"] == "c2")
    assert ride["hospital"] == "h" and ride["minutes_ambulance"] is None and ride["p_dead"] is None


def test_a_casualty_known_dead_is_explained_with_no_hospital():
    """It is carried nowhere: the JSON says null, and the text a dash (it printed "None")."""
    d = _two_casualties()
    d["casualties"][1]["health"] = [0.0, 0.0, 0.0, 1.0]
    sc = engine.load_scenario(d)
    ex = explain(Solution.from_plan(sc, engine.load_plan(sc, engine.solve(sc, algorithm="greedy").plan.to_json())))
    dead = next(c for c in ex.casualties if c["casualty"] == "c1")
    assert dead["hospital"] is None and dead["p_dead"] == 1.0
    row = next(line for line in ex.to_text().splitlines() if line.split()[0] == "c1")
    assert "None" not in row and row.split()[4] == "-"  # casualty, p_dead, share, arrival, hospital
