"""A world that does exactly what the plan says leaves its objective where it was (SPEC §7, §8).

Each team asks for its next task when it is free, starts it at the time the plan has for it and
reports it done when the plan says it ends; the search never runs. Every report then only
confirms what the model predicted, so the expected fatalities may not move (beyond rounding)
after any issue, start or completion. This checks the online model as a whole: health rolled
forward at the right times and in one segment per environment, pickups that wait for what the
plan makes them wait for, work in progress and deliveries as facts, beds taken once.
"""

from __future__ import annotations

import heapq
import json
from pathlib import Path

import pytest

import engine
import factories
from engine import construct
from engine.evaluate import evaluate_detail, schedule_records


PLAN = {"amb1": [("treat", "c1", None), ("transport", "c1", "H1"), ("transport", "c3", "H1")],
        "amb2": [("treat", "c2", None), ("transport", "c2", "H2")],
        "fire1": [("rescue", "c2", None)]}


def _plan(routes: dict) -> dict:
    return {"format": "goldenhour.plan/1", "routes": {
        r: [{"task": k, "casualty": c, **({"hospital": h} if h else {})} for k, c, h in ts] for r, ts in routes.items()}}


def _times(p: engine.Planner) -> dict:
    plan, _ = p.best()
    _, W, arrays = evaluate_detail(p.scenario, plan)
    return {(r["responder"], r["task"], r["casualty"]): r for r in schedule_records(p.scenario, W, arrays)}


ORDER = {"end": 0, "free": 1, "start": 2}


def play_out(scenario: dict, plan) -> tuple[float, float, int]:
    """Follow ``plan`` to the end; returns the first objective, the largest change seen and the
    number of reports."""
    p = engine.Planner(scenario, algorithm="descent", seed=0, plan=plan, issue_better=False)  # the plan as it is
    try:
        F0 = p.best()[1].expected_fatalities
        # at equal times: completions, then requests, then starts (a pickup at the very minute
        # its rescue ends comes after the rescue is reported done)
        events = [(float(scenario.get("time", 0.0)), ORDER["free"], i, "free", r["id"], None)
                  for i, r in enumerate(scenario["responders"])]
        heapq.heapify(events)
        seq, worst, reports = len(events), 0.0, 0
        while events:
            t, _, _, kind, rid, item = heapq.heappop(events)
            if kind == "free":
                task = p.next_task(rid, t)
                if task is None:
                    continue
                rec = _times(p)[(rid, task.kind, task.casualty)]
                heapq.heappush(events, (rec["start"], ORDER["start"], seq, "start", rid, (task, rec)))
            elif kind == "start":
                task, rec = item
                delta = {"type": "task_started", "time": t, "responder": rid, "task": task.kind,
                         "casualty": task.casualty}
                if task.hospital:
                    delta["hospital"] = task.hospital
                p.apply(delta)
                end = rec["arrival"] if task.kind == "transport" else rec["end"]
                heapq.heappush(events, (end, ORDER["end"], seq, "end", rid, (task, rec)))
            else:
                task, rec = item
                p.apply({"type": "task_completed", "time": t, "responder": rid, "task": task.kind,
                         "casualty": task.casualty})
                heapq.heappush(events, (rec["end"], ORDER["free"], seq, "free", rid, None))
            seq += 1
            reports += 1
            worst = max(worst, abs(p.best()[1].expected_fatalities - F0))
        assert not p.scenario.model.casualties, "everyone was delivered"
        return F0, worst, reports
    finally:
        p.close()


@pytest.mark.parametrize("variant", ["plain", "hart", "later"])
def test_a_world_that_follows_the_plan_leaves_the_objective_unchanged(variant):
    d = factories.one_site(fire_teams=1, h1_beds=1, rescue_minutes=10.7)
    if variant == "hart":  # amb2 treats the trapped casualty during its rescue
        d["responders"][1]["hart"] = True
    elif variant == "later":  # the model is at 5, the health was seen at 2, c3 already treated
        d["time"] = 5.0
        for c in d["casualties"]:
            c["observed_at"] = 2.0
        d["casualties"][2].update(treated=True, health=[0.2, 0.3, 0.4, 0.1])
    routes = {r: [x for x in ts if not (variant == "later" and x[:2] == ("treat", "c3"))] for r, ts in PLAN.items()}
    F0, worst, reports = play_out(d, _plan(routes))
    assert reports >= 3 * 6
    assert worst <= 1e-9, f"a report that confirmed the plan moved F by {worst:.2e} (from {F0})"


def test_the_london_example_played_out_as_planned(london):
    """Ninety casualties, the greedy plan (no treat tasks: rescues, waits and full hospitals)."""
    d = json.loads((Path(__file__).parents[2] / "examples" / "london-5x18.json").read_text())
    plan = construct.greedy(london).to_plan().to_json()
    F0, worst, reports = play_out(d, plan)
    assert reports >= 3 * 90
    assert worst <= 1e-9, f"a report that confirmed the plan moved F by {worst:.2e} (from {F0})"
