"""The online planner (SPEC §8, §8.1, §11; engine/planner.py): issuing and pinning, the audit log,
the background search under concurrent deltas, determinism, snapshots and callbacks.

The central property (hypothesis, derandomized): under any sequence of valid and invalid deltas,
task requests and search steps, after every operation

- the incumbent is a valid plan for the planner's scenario (``engine.load_plan`` accepts it),
- every task issued and not yet reported started is still first in its responder's list, pinned,
  with the same hospital, and no other task is pinned,
- a rejected delta changed nothing (model, plan, objective, pins, time),
- the incumbent's objective is what ``engine.evaluate`` gives for it (within 1e-9).
"""

from __future__ import annotations

import copy
import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import engine
import factories
import reference
from engine import DeltaError, Task
from engine.audit import FIELDS, read_audit
from engine.generate import generate
from engine.algorithms import Proposal, SearchState
from kernels.moves import INSERT_TREAT
from engine.plan import Plan, problem_arrays
from engine.planner import Planner

TOL = 1e-9


# --- helpers ----------------------------------------------------------------------------------

def tiny(seed: int = 0) -> dict:
    return generate("tiny", seed=seed)


def small_random(seed: int = 1) -> dict:
    return generate("random", seed=seed, casualties=10, paramedics=3, fire=2, hospitals=3)


SCENARIOS = {
    "tiny0": tiny(0),
    "tiny3": tiny(3),
    "random": small_random(1),
}


def same_objective(a, b, tol: float = TOL) -> bool:
    if a.feasible != b.feasible:
        return False
    for x, y in ((a.expected_fatalities, b.expected_fatalities), (a.overflow_fatalities, b.overflow_fatalities),
                 (a.casualty_minutes, b.casualty_minutes)):
        if (x is None) != (y is None):
            return False
        if x is not None and abs(x - y) > tol * max(1.0, abs(x)):
            return False
    return True


def check_incumbent(p: Planner, expected_pins: dict[str, Task] | None = None) -> None:
    """The invariants of the module docstring (except the rejected-delta one)."""
    plan, obj = p.best()
    doc = plan.to_json()
    loaded = engine.load_plan(p.scenario, doc)  # raises PlanError if invalid
    fresh = engine.evaluate(p.scenario, loaded)
    assert same_objective(fresh, obj), f"incumbent objective {obj} but it evaluates to {fresh}"
    # the scenario the planner derives delta by delta (engine.scenario.with_*) is what its model
    # loads as: what the incumbent was just scored under is the model's truth
    reloaded = engine.load_scenario(copy.deepcopy(p._model))
    assert reloaded.model == p.scenario.model
    assert factories.differing_arrays(problem_arrays(p.scenario), problem_arrays(reloaded)) == []
    if expected_pins is not None:
        for rid, task in expected_pins.items():
            route = plan.routes.get(rid, [])
            assert route, f"{rid}: issued {task} but its list is empty"
            first = route[0]
            assert first.pinned, f"{rid}: first task {first} is not pinned"
            assert (first.kind, first.casualty, first.hospital) == (task.kind, task.casualty, task.hospital), \
                f"{rid}: issued {task}, but its first task is now {first}"
        pinned = {rid: [t for t in ts if t.pinned] for rid, ts in plan.routes.items()}
        for rid, ts in pinned.items():
            if rid in expected_pins:
                assert len(ts) == 1, f"{rid}: {ts} pinned, only {expected_pins[rid]} was issued"
            else:
                assert ts == [], f"{rid}: {ts} pinned but nothing issued to it is waiting to start"


def snapshot_state(p: Planner):
    plan, obj = p.best()
    return (copy.deepcopy(p._model), json.dumps(plan.to_json(), sort_keys=True), obj,
            {r: list(ts) for r, ts in p._pins.items()}, p.time)


def model_cas(p: Planner, cid: str) -> dict | None:
    return next((c for c in p._model["casualties"] if c["id"] == cid), None)


def model_resp(p: Planner, rid: str) -> dict | None:
    return next((r for r in p._model["responders"] if r["id"] == rid), None)


# --- the property -------------------------------------------------------------------------------

CATEGORIES = ("delayed", "urgent", "immediate", "P1", "P2", "P3", "deceased")  # deceased last
SMALL_TIMES = (0.0, 0.25, 0.5, 1.0, 2.0, 3.5)

# (kind, a, b, dt, flag): each kind reads the parameters it needs. Task requests, starts and
# completions are listed more than once so that sequences often issue, start and finish work.
OP_KINDS = ("step", "step", "next", "next", "next", "start", "start", "complete", "complete", "observe",
            "clock", "capacity", "duration", "factor", "add", "add_responder", "unavailable", "invalid")
OPS = st.tuples(st.sampled_from(OP_KINDS), st.integers(0, 99), st.integers(0, 99), st.sampled_from(SMALL_TIMES),
                st.booleans())


def _bad_deltas(p: Planner) -> list[dict]:
    """Deltas that are wrong in the planner's present state."""
    t = p.time
    model = p._model
    cid = model["casualties"][0]["id"] if model["casualties"] else "c001"
    para = next((r["id"] for r in model["responders"] if r["kind"] == "paramedic"), None)
    fire = next((r["id"] for r in model["responders"] if r["kind"] == "fire"), None)
    bad = [
        {"type": "explode", "time": t},
        {"type": "health_observed", "time": t, "casualty": "nobody", "health": "urgent"},
        {"type": "health_observed", "time": t, "casualty": cid, "health": "urgent", "extra": 1},
        {"type": "health_observed", "time": t, "casualty": cid, "health": "urgent", "observed_at": t + 1.0},
        {"type": "health_observed", "time": t, "casualty": cid, "health": [0.3, 0.3, 0.3, 0.3]},
        {"type": "hospital_capacity", "time": t, "hospital": "nowhere", "capacity": 1},
        {"type": "hospital_capacity", "time": t, "hospital": model["hospitals"][0]["id"], "capacity": -1},
        {"type": "responder_unavailable", "time": t, "responder": "nobody"},
        {"type": "travel_changed", "time": t, "factor": 0.0},
        {"type": "clock", "time": "soon"},
        {"type": "responder_added", "time": t,
         "responder": {"id": model["responders"][0]["id"], "kind": "paramedic", "start": model["hospitals"][0]["id"]}},
    ]
    if t > 0:
        bad.append({"type": "clock", "time": t - 0.5})
    if para is not None:
        bad.append({"type": "task_started", "time": t, "responder": para, "task": "transport", "casualty": cid})
        bad.append({"type": "task_started", "time": t, "responder": para, "task": "rescue", "casualty": cid})
    if fire is not None:
        bad.append({"type": "task_started", "time": t, "responder": fire, "task": "treat", "casualty": cid})
    return bad


def issued_first_or_better(p: Planner, plan_before: Plan, rid: str, task: Task) -> bool:
    """Whether ``task``, just issued to ``rid``, is its first task in ``plan_before`` (the
    incumbent before the issue); if not, assert that the plan issued is better than the one
    issuing that first task would have given (``Planner._first_choice``)."""
    first = plan_before.routes[rid][0]
    if (task.kind, task.casualty, task.hospital) == (first.kind, first.casualty, first.hospital):
        return True
    routes = {r: list(ts) for r, ts in plan_before.routes.items()}
    routes[rid][0] = Task(first.kind, first.casualty, first.hospital, True)
    kept = engine.evaluate(p.scenario, Plan(routes, plan_before.scenario, p.time))
    assert p.best()[1].better(kept), (task, first, p.best()[1], kept)
    return False


class Runner:
    """Applies generated operations to a planner and tracks what must stay true."""

    def __init__(self, p: Planner):
        self.p = p
        self.pins: dict[str, Task] = {}  # issued, not yet reported started
        self.running: list[tuple[str, str, str]] = []  # (responder, kind, casualty) started, not completed
        self.added = 0
        self.started = 0
        self.completed = 0
        self.adopted = 0  # issues of a better plan's first task than the incumbent's

    def _responders(self):
        return [r["id"] for r in self.p._model["responders"]]

    def _kinds(self):
        return {r["id"]: r["kind"] for r in self.p._model["responders"]}

    def valid(self, delta: dict) -> None:
        self.p.apply(delta)  # must not raise

    def run(self, op) -> None:
        p = self.p
        kind, a, b, dt, flag = op
        t = p.time
        if kind == "step":
            p.step(a % 61 if p.algorithm == "annealing" else a % 4)  # a tabu iteration is a full sweep
        elif kind == "next":
            rids = self._responders()
            rid = rids[a % len(rids)]
            now = t + dt
            plan_before = p.best()[0]
            before = plan_before.routes.get(rid, [])
            task = p.next_task(rid, now)
            assert p.time == now
            if rid in self.pins:
                assert task == self.pins[rid], f"{rid} asked again and got {task}, not {self.pins[rid]}"
            elif not before:
                assert task is None
            else:
                first = before[0]
                assert task is not None and task.pinned
                self.adopted += not issued_first_or_better(p, plan_before, rid, task)
                self.pins[rid] = task
            if task is None:
                assert not p.best()[0].routes.get(rid)
        elif kind == "observe":
            cas = p._model["casualties"]
            if not cas:
                return
            c = cas[a % len(cas)]
            category = CATEGORIES[b % len(CATEGORIES)]
            delta = {"type": "health_observed", "time": t + dt, "casualty": c["id"], "health": category}
            if flag:
                delta["observed_at"] = t  # a late report
            self.valid(delta)
            if category == "deceased":  # known dead: its tasks (issued or not) are gone
                self.pins = {r: tk for r, tk in self.pins.items() if tk.casualty != c["id"]}
        elif kind == "clock":
            self.valid({"type": "clock", "time": t + dt})
        elif kind == "capacity":
            hs = p._model["hospitals"]
            self.valid({"type": "hospital_capacity", "time": t, "hospital": hs[a % len(hs)]["id"],
                        "capacity": b % 5})
        elif kind == "duration":
            cas = p._model["casualties"]
            if not cas:
                return
            c = cas[a % len(cas)]
            self.valid({"type": "duration_revised", "time": t, "task": "rescue" if c.get("trapped") else "treat",
                        "casualty": c["id"], "minutes": (0.0, 3.0, 12.5, 30.0)[b % 4]})
        elif kind == "factor":
            self.valid({"type": "travel_changed", "time": t, "factor": (0.8, 1.0, 1.25)[b % 3]})
        elif kind == "start":
            if not self.pins:
                return
            rid = sorted(self.pins)[a % len(self.pins)]
            task = self.pins[rid]
            c = model_cas(p, task.casualty)
            resp = model_resp(p, rid)
            if task.kind == "transport" and c.get("trapped"):
                return  # cannot be picked up before its rescue ends
            if task.kind == "treat" and c.get("trapped") and not resp.get("hart"):
                return  # a non-HART team waits for the rescue
            delta = {"type": "task_started", "time": t + dt, "responder": rid, "task": task.kind,
                     "casualty": task.casualty}
            if task.hospital:
                delta["hospital"] = task.hospital
            if b % 3 == 0:  # reported late
                delta["started_at"], delta["time"] = t + dt, t + dt + 2.5
            self.valid(delta)
            del self.pins[rid]
            self.started += 1
            if task.kind == "transport":
                # picked up: a treatment of it issued elsewhere no longer applies, one under way ends
                self.pins = {r: tk for r, tk in self.pins.items() if tk.casualty != task.casualty}
                self.running = [x for x in self.running if x[2] != task.casualty]
            self.running.append((rid, task.kind, task.casualty))
        elif kind == "complete":
            if not self.running:
                return
            rid, k, cid = self.running.pop(a % len(self.running))
            c = model_cas(p, cid)
            end = {"rescue": lambda: c.get("rescue_ends_at"), "treat": lambda: c.get("treatment_ends_at"),
                   "transport": lambda: c["in_transit"]["arrival"]}[k]()
            when = max(t, end if end is not None else t) + dt
            late = {"completed_at": when, "time": when + 1.5} if b % 3 == 0 else {}
            self.valid({"type": "task_completed", "time": when, "responder": rid, "task": k, "casualty": cid,
                        **late})
            self.completed += 1
            if k == "transport":
                self.pins = {r: tk for r, tk in self.pins.items() if tk.casualty != cid}
        elif kind == "add":
            sites = p._model["sites"]
            self.added += 1
            c = {"id": f"new{self.added}", "site": sites[a % len(sites)]["id"], "health": CATEGORIES[b % 6]}
            if flag and any(r["kind"] == "fire" for r in p._model["responders"]):
                c["trapped"], c["rescue_minutes"] = True, 7.5
            self.valid({"type": "casualties_added", "time": t, "casualties": [c]})
        elif kind == "add_responder":
            self.added += 1
            places = [s["id"] for s in p._model["sites"]] + [h["id"] for h in p._model["hospitals"]]
            self.valid({"type": "responder_added", "time": t,
                        "responder": {"id": f"extra{self.added}", "kind": "fire" if flag else "paramedic",
                                      "start": places[a % len(places)]}})
        elif kind == "unavailable":
            kinds = self._kinds()
            rids = self._responders()
            rid = rids[a % len(rids)]
            if sum(1 for k in kinds.values() if k == kinds[rid]) < 2:
                return  # keep a team of each kind: the plan must stay possible
            self.valid({"type": "responder_unavailable", "time": t, "responder": rid})
            self.pins.pop(rid, None)
            self.running = [x for x in self.running if x[0] != rid]
        elif kind == "invalid":
            bad = _bad_deltas(p)
            delta = bad[a % len(bad)]
            before = snapshot_state(p)
            sc = p.scenario
            with pytest.raises(DeltaError):
                p.apply(delta)
            after = snapshot_state(p)
            assert after == before, f"rejected delta {delta} changed the planner"
            assert p.scenario is sc


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(SCENARIOS)), algorithm=st.sampled_from(("annealing", "tabu")),
       ops=st.lists(OPS, min_size=6, max_size=25))
def test_planner_invariants_under_random_operations(name, algorithm, ops):
    p = Planner(copy.deepcopy(SCENARIOS[name]), algorithm=algorithm, seed=0)
    try:
        runner = Runner(p)
        check_incumbent(p, runner.pins)
        for op in ops:
            runner.run(op)
            check_incumbent(p, runner.pins)
        event(f"issued and pinned at the end: {min(len(runner.pins), 3)}")
        event(f"started tasks: {min(runner.started, 3)}")
        event(f"completed tasks: {min(runner.completed, 3)}")
        event(f"issues of a better plan's first task: {min(runner.adopted, 3)}")
    finally:
        p.close()


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(SCENARIOS)), ops=st.lists(OPS, min_size=6, max_size=25))
def test_repair_from_the_arrays_equals_repair_of_the_plan(name, ops):
    """The planner repairs its incumbent straight from its arrays (``repair_solution``); through
    random sessions, every such repair equals ``repair`` of the incumbent as a ``Plan``."""
    import engine.planner
    from engine.repair import repair, repair_solution

    repaired = []

    def checked(sc, old, pins):
        fast, slow = repair_solution(sc, old, pins), repair(sc, old.to_plan(), pins)
        for field in ("starts", "hosp", "pins", "cur"):
            assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
        n = int(fast.starts[-1])
        assert np.array_equal(fast.order[:n], slow.order[:n])
        repaired.append(n)
        return fast

    p = Planner(copy.deepcopy(SCENARIOS[name]), algorithm="annealing", seed=0)
    engine.planner.repair_solution, before = checked, engine.planner.repair_solution
    try:
        runner = Runner(p)
        for op in ops:
            runner.run(op)
        event(f"repairs: {min(len(repaired), 3)}")
    finally:
        engine.planner.repair_solution = before
        p.close()


# --- next_task ----------------------------------------------------------------------------------

@pytest.fixture
def planner():
    p = Planner(tiny(), seed=0)
    yield p
    p.close()


def test_next_task_returns_the_first_task_and_pins_it(planner):
    planner.step(300)
    plan = planner.best()[0]
    for rid, route in plan.routes.items():
        if not route:
            continue
        first = route[0]
        task = planner.next_task(rid, planner.time)
        assert task is not None and task.pinned
        assert (task.kind, task.casualty, task.hospital) == (first.kind, first.casualty, first.hospital)
        assert planner._pins[rid] == [task]
        now = planner.best()[0].routes[rid]
        assert now[0] == task and now[0].pinned
        assert all(not t.pinned for t in now[1:])
        # asking again (now or later) returns the same task
        assert planner.next_task(rid, planner.time) == task
        assert planner.next_task(rid, planner.time + 2.0) == task
        assert planner._pins[rid] == [task]
    check_incumbent(planner, {r: ts[0] for r, ts in planner._pins.items()})


def test_an_issue_answers_before_its_bookkeeping_and_every_reader_sees_the_pin():
    """An issue at the model's time leaves the evaluations as they were, so it answers at once and
    leaves the new scenario and search state to the next holder of the lock (``_settle``).
    Meanwhile the pin is in the published plan, the model and the pins; once settled, the
    planner is what issuing and installing at once gave: its scenario the reload of its model,
    its incumbent pinned and scored as a fresh evaluation scores it. A clock the issue moves
    waits with it, its incumbent published at once."""
    p = Planner(small_random(4), seed=0)
    try:
        p.step(400)
        before = p.best()[1]
        rid = next(r for r, tasks in p.best()[0].routes.items() if tasks)
        task = p.next_task(rid, p.time)
        assert p._unsettled is not None, "the issue did its bookkeeping before answering"
        plan, objective = p.best()
        assert plan.routes[rid][0] == task and task.pinned
        assert objective == before  # a team set off at the model's time: nothing re-scored
        assert model_resp(p, rid)["available_at"] == p.time and p._pins[rid] == [task]
        sc = p.scenario  # takes the lock: settled
        assert p._unsettled is None and sc.model.responders[sc.responder_index[rid]].available_at == p.time
        check_incumbent(p, {rid: task})
        # asked later, the clock moves first; it waits with the issue, published but not installed
        other = next(r for r, tasks in p.best()[0].routes.items() if tasks and r not in p._pins)
        later = p.time + 0.5
        task2 = p.next_task(other, later)
        assert p.time == later and p._unsettled is not None and p._unsettled[2] is not None
        check_incumbent(p, {rid: task, other: task2})  # best() before the settling, scored at the new time
        # the general path: a team whose first task the plan holds pinned (as if issued before,
        # the state the under-load bench makes), asked again later, sets off later: its start
        # moves, and both plans are scored under the new scenario before the answer
        p.apply({"type": "clock", "time": p.time + 1.0})
        p._pins.pop(rid)
        again = p.next_task(rid, p.time)
        assert p._unsettled is None
        assert model_resp(p, rid)["available_at"] == p.time
        check_incumbent(p, {rid: again, other: task2})
    finally:
        p.close()


def test_a_stream_of_deltas_installs_one_search_state():
    """Each delta publishes its repaired incumbent at once, scored under the model it left, but
    installs no search state: the search installs the last one when it next takes the lock."""
    p = Planner(small_random(4), seed=0)
    try:
        p.step(200)
        state, ids = p._state, [c["id"] for c in p._model["casualties"]]
        for k in range(4):
            p.apply({"type": "health_observed", "time": p.time + 0.5, "casualty": ids[k],
                     "health": ["immediate", "urgent"][k % 2]})
            plan, objective = p.best()
            assert same_objective(engine.evaluate(p._sc, plan), objective)
            assert p._state is state, "a delta installed a search state"
        p.step(1)
        assert p._state is not state and p._unsettled is None
        check_incumbent(p, {})
    finally:
        p.close()


def test_next_task_for_a_responder_with_nothing_to_do_is_none(tmp_path):
    p = Planner(tiny(), seed=0, audit=tmp_path / "audit.jsonl")
    try:
        p.apply({"type": "task_completed", "time": 1.0, "responder": "fire-01", "task": "rescue",
                 "casualty": "c001"})
        assert p.best()[0].routes["fire-01"] == []  # nobody is trapped any more
        assert p.next_task("fire-01", 1.0) is None
        assert "fire-01" not in p._pins
        assert p.next_task("fire-01", 2.0) is None
        assert (tmp_path / "audit.jsonl").read_text() == ""  # waiting is not an issue
        check_incumbent(p, {})
    finally:
        p.close()


def test_next_task_for_an_unknown_responder_raises(planner):
    before = snapshot_state(planner)
    with pytest.raises(DeltaError):
        planner.next_task("amb-99", 0.0)
    with pytest.raises(DeltaError):
        planner.next_task("amb-99", 5.0)
    assert snapshot_state(planner) == before


def test_next_task_in_the_past_raises(planner):
    planner.apply({"type": "clock", "time": 4.0})
    before = snapshot_state(planner)
    with pytest.raises(DeltaError):
        planner.next_task("amb-01", 3.0)
    assert snapshot_state(planner) == before


@pytest.mark.parametrize("now", [float("nan"), float("inf"), -float("inf"), "5", None, True])
def test_next_task_at_a_time_that_is_not_a_finite_number_raises(planner, now):
    before = snapshot_state(planner)
    with pytest.raises(DeltaError) as err:
        planner.next_task("amb-01", now)
    assert err.value.problems[0].path == "now"
    assert snapshot_state(planner) == before


def test_next_task_after_the_team_s_shift_is_refused_and_changes_nothing():
    """Issuing sets the team off now; after its shift end that is refused (as a reload of the
    model would refuse it), and the planner goes on taking deltas."""
    d = tiny()
    rid = next(r["id"] for r in d["responders"] if r["kind"] == "paramedic")
    next(r for r in d["responders"] if r["id"] == rid)["shift_end"] = 60.0
    p = Planner(d, seed=0)
    try:
        p.apply({"type": "clock", "time": 70.0})
        before = snapshot_state(p)
        r = p._sc.responder_index[rid]
        assert p._state.best.starts[r + 1] > p._state.best.starts[r]  # it has work planned
        with pytest.raises(DeltaError) as err:
            p.next_task(rid, 70.0)
        assert "shift_end" in err.value.problems[0].path
        assert snapshot_state(p) == before
        p.apply({"type": "clock", "time": 71.0})  # the model is still a valid one
        assert p.time == 71.0
        before = snapshot_state(p)  # asked at a later time: refused before the clock moves
        with pytest.raises(DeltaError) as err:
            p.next_task(rid, 80.0)
        assert "shift_end" in err.value.problems[0].path
        assert snapshot_state(p) == before and p.time == 71.0
    finally:
        p.close()


def test_a_refused_next_task_leaves_the_incumbent_scored_at_the_model_s_time(tmp_path):
    """An issue asked later than the model's time and refused (the team's shift is over) must
    not have re-scored the planner's own incumbent under that later clock first: the next
    issue's shift check and audited objective, and the search, all read it. It had: amb-01,
    whose first transport fits its shift at minute 10, was then told to wait, its work timed
    from minute 90, and the audit logged the objective at minute 90."""
    def run(refuse: bool):
        d = tiny()
        d["responders"][0]["shift_end"] = 40.0  # amb-01
        d["responders"][1]["shift_end"] = 60.0  # amb-02
        audit = tmp_path / f"audit-{refuse}.jsonl"
        p = Planner(d, algorithm="descent", seed=0, audit=audit)
        try:
            p.apply({"type": "clock", "time": 10.0})  # a delta's incumbent: the planner's own
            if refuse:
                with pytest.raises(DeltaError) as err:
                    p.next_task("amb-02", 90.0)
                assert "shift_end" in err.value.problems[0].path and p.time == 10.0
            task = p.next_task("amb-01", 10.0)
            record = read_audit(audit).to_pylist()[-1] if task is not None else None
            plan, objective = p.best()
            fresh = engine.evaluate(p.scenario, engine.load_plan(p.scenario, plan.to_json()))
            p.step(1)
            return task, record, objective.expected_fatalities, fresh.expected_fatalities, p.best()[0].to_json()
        finally:
            p.close()

    task, record, objective, fresh, after_step = run(refuse=True)
    control = run(refuse=False)
    assert control[0] is not None  # amb-01 has work that fits its shift
    assert task == control[0]  # issued, not told to wait
    assert record["objective"] == pytest.approx(fresh, abs=TOL) and objective == pytest.approx(fresh, abs=TOL)
    assert record["objective"] == control[1]["objective"]
    assert after_step == control[4]  # the search goes on as if nothing had been asked


def test_next_task_does_not_issue_a_task_that_would_end_after_the_team_s_shift():
    """amb1 is planned to carry c1; asking five minutes later, its transport would end after
    its shift. It was issued and pinned all the same: a plan infeasible for good, and the same
    task handed out again after the shift. Now the team is told to wait, and the search gives
    the casualty to amb2."""
    d = factories.one_site()
    d["casualties"] = d["casualties"][:1]
    d["responders"] = d["responders"][:2]
    p = Planner(d, algorithm="descent", seed=0)
    try:
        records = schedule_of(p)
        end = next(x["end"] for x in records if x["responder"] == "amb1")  # amb1 carries c1
    finally:
        p.close()
    d["responders"][0]["shift_end"] = end + 2.0
    p = Planner(d, algorithm="descent", seed=0)
    try:
        assert [t.casualty for t in p.best()[0].routes["amb1"]] == ["c1"] and p.best()[1].feasible
        assert p.next_task("amb1", 5.0) is None
        assert p.time == 5.0 and not any(t.pinned for ts in p.best()[0].routes.values() for t in ts)
        p.step(10)
        plan, objective = p.best()
        assert objective.feasible and [t.casualty for t in plan.routes["amb2"]] == ["c1"]
        assert p.next_task("amb1", 6.0) is None  # nothing left for it
        assert p.next_task("amb2", 6.0).casualty == "c1"
    finally:
        p.close()


def schedule_of(p: Planner) -> list[dict]:
    """The incumbent's timetable, as a plan file's ``schedule`` has it."""
    from engine.evaluate import evaluate_detail, schedule_records

    _obj, W, arrays = evaluate_detail(p.scenario, p.best()[0])
    return schedule_records(p.scenario, W, arrays)


def _one_team(*casualties: str) -> dict:
    d = factories.one_site()
    d["casualties"] = [c for c in d["casualties"] if c["id"] in casualties]
    d["responders"] = [r for r in d["responders"] if r["id"] in ("amb1", "fire1")]
    return d


def test_a_silent_crew_s_plan_moves_with_the_clock():
    """amb1 is issued a transport at 0 and reports nothing. By SPEC §6's letter the transport,
    and the one after it that was never issued, stayed done in the past as the clock went on,
    and the expected fatalities with them: a crew that did not report made the plan look
    better than one that did. No planned task starts before the model's time."""
    p = Planner(_one_team("c1", "c3"), algorithm="descent", seed=0)
    try:
        p.next_task("amb1", 0.0)
        F = [p.best()[1].expected_fatalities]
        for t in (30.0, 60.0):
            p.apply({"type": "clock", "time": t})
            p.step(5)
            plan, objective = p.best()
            assert [x["start"] >= t for x in schedule_of(p)] == [True, True]
            F.append(objective.expected_fatalities)
        assert F[0] < F[1] < F[2]
    finally:
        p.close()


def test_an_observation_that_tells_nothing_new_changes_nothing():
    """A fire team issued a rescue at 0 reports nothing; at 10 the casualty is observed in
    exactly the health the model predicts for it then. The observation moved the rescue from
    3-13 to 10-20 (nothing of a casualty's started before its observation), so F depended on
    whether a report happened to come in; now the clock alone has done that."""
    d = _one_team("c2")
    d["responders"][1]["start"] = "S"  # the fire team is at the site: the rescue could start at 0
    p = Planner(d, algorithm="descent", seed=0)
    try:
        assert p.next_task("fire1", 0.0).kind == "rescue"
        p.apply({"type": "clock", "time": 10.0})
        before, before_schedule = p.best(), schedule_of(p)
        predicted = reference_health(p.scenario, "c2", 10.0)
        p.apply({"type": "health_observed", "time": 10.0, "casualty": "c2", "health": predicted.tolist()})
        after = p.best()
        assert after[1].expected_fatalities == pytest.approx(before[1].expected_fatalities, abs=1e-9)
        assert schedule_of(p) == before_schedule
        assert next(x["start"] for x in before_schedule if x["task"] == "rescue") == 10.0
    finally:
        p.close()


def test_a_team_that_starts_another_task_than_the_one_issued_releases_it():
    """amb1 is issued c1 (immediate) and reports starting c3 instead. Its issued task stayed
    pinned: c1 waited for amb1 to come back from the hospital while amb2, free nearby, was told
    to wait. The issued task goes back to the plan; the search gives it to amb2."""
    d = factories.one_site()
    d["casualties"] = [c for c in d["casualties"] if c["id"] != "c2"]
    d["responders"] = d["responders"][:2]
    p = Planner(d, algorithm="descent", seed=0)
    try:
        issued = p.next_task("amb1", 0.0)
        assert issued.casualty == "c1"
        p.apply({"type": "task_started", "time": 1.0, "responder": "amb1", "task": "transport", "casualty": "c3",
                 "hospital": "H1"})
        assert not any(t.pinned for ts in p.best()[0].routes.values() for t in ts)
        p.step(10)
        assert [t.casualty for t in p.best()[0].routes["amb2"]] == ["c1"]
        assert p.next_task("amb2", 1.0).casualty == "c1"
    finally:
        p.close()


def test_an_issued_treat_the_team_gives_up_goes_back_to_the_plan():
    """A released issued task goes back to the plan: a required one was put back only because
    it is required (at a new place), and an issued treat, which is optional, was gone."""
    d = factories.one_site()
    d["casualties"] = [c for c in d["casualties"] if c["id"] != "c2"]
    d["responders"] = d["responders"][:2]
    plan = {"format": "goldenhour.plan/1",
            "routes": {"amb1": [{"task": "treat", "casualty": "c1"},
                                {"task": "transport", "casualty": "c1", "hospital": "H1"}],
                       "amb2": [{"task": "transport", "casualty": "c3", "hospital": "H2"}]}}
    p = Planner(d, algorithm="descent", seed=0, plan=plan, issue_better=False)
    try:
        assert p.next_task("amb1", 0.0) == Task("treat", "c1", None, True)
        p.apply({"type": "task_started", "time": 1.0, "responder": "amb1", "task": "transport", "casualty": "c3",
                 "hospital": "H1"})
        routes = p.best()[0].routes
        assert [(t.kind, t.casualty, t.pinned) for t in routes["amb1"]] == [("treat", "c1", False),
                                                                            ("transport", "c1", False)]
        engine.load_plan(p.scenario, p.best()[0].to_json())  # a valid plan
    finally:
        p.close()


def reference_health(sc, cid: str, t: float) -> np.ndarray:
    """Casualty ``cid``'s health at ``t``, carried by the plain reference's chain products from its
    observation in its present environment (trapped, untreated)."""
    c = sc.casualty_index[cid]
    o = sc.model.casualties[c].observed_at
    return reference.propagate(sc.health[c], sc.chains[0], t - (sc.model.time if o is None else o))


def test_stop_while_another_thread_is_starting_the_search(monkeypatch):
    """Embedding software may start and stop the search from any thread. A ``stop`` that came
    while another thread's ``start`` was between making the search thread and starting it
    joined a thread not yet started (``RuntimeError``: 40 in 300 rounds of a stress test);
    here the start is slowed down so that the stop always comes then."""
    Thread = threading.Thread

    class SlowToStart(Thread):
        def start(self):
            time.sleep(0.2)
            super().start()

    p = Planner(small_random(4), algorithm="annealing", seed=0)
    try:
        monkeypatch.setattr(threading, "Thread", SlowToStart)
        starter = Thread(target=p.start)
        starter.start()
        time.sleep(0.05)  # the starter is inside start() now
        p.stop()
        starter.join(5)
    finally:
        p.close()
    assert not any(t.name == "goldenhour-search" and t.is_alive() for t in threading.enumerate())


def test_next_task_refused_because_the_clock_runs_the_team_s_work_past_its_shift_changes_nothing():
    """A team carrying a casualty, its delivery overdue and not reported, asks later: the clock
    takes the overdue work to end now at the earliest, so the team is free only after its shift
    ends, and the issue is refused. The clock must not have moved (it did: the check read the
    team's start from before the clock's catch-up)."""
    d = small_random(4)
    p = Planner(d, seed=0)
    try:
        sc = p.scenario
        hosp = sc.model.hospitals[0]
        cas = next(c for c in sc.model.casualties if not c.trapped)
        m = sc.model
        arrival = m.durations.load + float(sc.travel[sc.site_loc[sc.site_index[cas.site]], sc.hospital_index[hosp.id]])
        p.apply({"type": "responder_added", "time": 0.0, "responder": {
            "id": "x", "kind": "paramedic", "start": hosp.id, "shift_end": arrival + m.durations.handover + 0.5}})
        for r in [r.id for r in m.responders if r.kind == "paramedic"]:
            p.apply({"type": "responder_unavailable", "time": 0.0, "responder": r})  # x carries everyone
        p.apply({"type": "task_started", "time": 0.0, "responder": "x", "task": "transport", "casualty": cas.id,
                 "hospital": hosp.id})
        assert p.best()[0].routes["x"]  # it has more work planned
        before = snapshot_state(p)
        with pytest.raises(DeltaError) as err:
            p.next_task("x", arrival + 1.0)  # the delivery is overdue: x is free at arrival + 1 + handover
        assert "shift_end" in err.value.problems[0].path
        assert snapshot_state(p) == before and p.time == 0.0
    finally:
        p.close()


@pytest.mark.parametrize("case", ["dead", "carried by another team", "rescued by another team",
                                  "completed without a start"])
def test_an_issued_task_the_model_no_longer_allows_is_not_issued_again(case):
    """An issued task whose casualty died, was picked up by another team, or whose rescue another
    team started or was reported done, is gone from the plan: asking again gives the team's
    next task in the plan (or the first of a better plan it finds), never the stale one."""
    p = Planner(factories.one_site(), algorithm="descent", seed=0)
    try:
        p.step(5)
        fire = "rescue" in case or "completed" in case
        teams = ["fire1", "fire2"] if fire else ["amb1", "amb2"]
        rid, other = sorted(teams, key=lambda r: not p.best()[0].routes[r])  # the one with work first
        task = p.next_task(rid, 0.0)
        cid = task.casualty
        assert task.kind == "rescue" if fire else task.kind in ("treat", "transport")
        if case == "dead":
            p.apply({"type": "health_observed", "time": 1.0, "casualty": cid, "health": "deceased"})
        elif case == "carried by another team":
            assert not model_cas(p, cid).get("trapped")
            p.apply({"type": "task_started", "time": 1.0, "responder": other, "task": "transport",
                     "casualty": cid, "hospital": "H2"})
        elif case == "rescued by another team":
            p.apply({"type": "task_started", "time": 1.0, "responder": other, "task": "rescue", "casualty": cid})
        else:
            p.apply({"type": "task_completed", "time": 12.0, "responder": rid, "task": "rescue", "casualty": cid})
        plan = p.best()[0]
        assert all(t.casualty != cid or t.kind != task.kind for t in plan.routes[rid])
        again = p.next_task(rid, p.time)
        assert (again is None) == (not plan.routes[rid])
        assert again is None or (again.kind, again.casualty) != (task.kind, cid)
        if again is not None:  # the plan's next task, or a better plan's (Planner._first_choice)
            issued_first_or_better(p, plan, rid, again)
        check_incumbent(p, {rid: again} if again else {})
    finally:
        p.close()


@pytest.mark.parametrize("case", ["dead", "carried by another team", "rescued by another team",
                                  "completed without a start"])
def test_a_team_whose_issued_task_is_dropped_is_planned_from_where_it_was_sent(case):
    """The team set off for its issued task; a crew learns on arrival that the work is gone (as
    the simulator's do). It was left where it set off, when it set off: planned from there,
    minutes nearer its next work than it can be. It is now free at the task's site when it gets
    there; a team the delta itself moved (its own completion report) is where the report put it."""
    p = Planner(factories.one_site(), algorithm="descent", seed=0)
    try:
        p.step(5)
        fire = "rescue" in case or "completed" in case
        teams = ["fire1", "fire2"] if fire else ["amb1", "amb2"]
        rid, other = sorted(teams, key=lambda r: not p.best()[0].routes[r])
        p.apply({"type": "clock", "time": 0.5})
        task = p.next_task(rid, 0.5)
        sc = p.scenario
        P = problem_arrays(sc)
        r, c = sc.responder_index[rid], sc.casualty_index[task.casualty]
        set_off = next(x for x in p._model["responders"] if x["id"] == rid)
        assert set_off["start"] != "S" and set_off["available_at"] == 0.5
        there = 0.5 + P.travel[P.resp_loc[r], P.site_loc[c]]
        assert there > 1.5  # so that the team is still on its way at the delta's time
        if case == "dead":
            p.apply({"type": "health_observed", "time": 1.0, "casualty": task.casualty, "health": "deceased"})
        elif case == "carried by another team":
            p.apply({"type": "task_started", "time": 1.0, "responder": other, "task": "transport",
                     "casualty": task.casualty, "hospital": "H2"})
        elif case == "rescued by another team":
            p.apply({"type": "task_started", "time": 1.0, "responder": other, "task": "rescue",
                     "casualty": task.casualty})
        else:
            p.apply({"type": "task_completed", "time": 12.0, "responder": rid, "task": "rescue",
                     "casualty": task.casualty})
        team = next(x for x in p._model["responders"] if x["id"] == rid)
        free = 12.0 if case == "completed without a start" else there
        assert team["start"] == "S" and team["available_at"] == pytest.approx(free, abs=1e-12)
        rows = p.scenario.model.responders[p.scenario.responder_index[rid]]
        assert (rows.start, rows.available_at) == (team["start"], team["available_at"])
        check_incumbent(p, {})
    finally:
        p.close()


def test_next_task_advances_the_clock(planner):
    task = planner.next_task("amb-02", 2.5)
    assert planner.time == 2.5
    assert task is not None
    check_incumbent(planner, {"amb-02": task})


@pytest.mark.parametrize("algorithm", ["annealing", "tabu", "descent"])
def test_pinned_tasks_never_move_during_search(algorithm):
    p = Planner(small_random(2), algorithm=algorithm, seed=3)
    try:
        p.step(50)
        issued = {}
        for rid in list(p.scenario.responder_index)[:3]:
            task = p.next_task(rid, 0.0)
            if task is not None:
                issued[rid] = task
        assert issued
        for _ in range(15):
            p.step(100 if algorithm == "annealing" else 3)
            check_incumbent(p, issued)
        p.apply({"type": "health_observed", "time": 1.0, "casualty": p._model["casualties"][0]["id"],
                 "health": "immediate"})
        for _ in range(5):
            p.step(100 if algorithm == "annealing" else 3)
            check_incumbent(p, issued)
    finally:
        p.close()


def test_scenario_property_matches_the_model_after_an_issue(planner):
    """``planner.scenario`` is the model the incumbent is scored on: reloading it gives the same objective."""
    planner.apply({"type": "clock", "time": 3.0})
    planner.step(100)
    for rid in ("amb-01", "amb-02", "fire-01"):
        planner.next_task(rid, 3.0)
    plan, obj = planner.best()
    reloaded = engine.load_scenario(json.loads(json.dumps(planner.scenario.to_dict())))
    assert same_objective(engine.evaluate(reloaded, plan), obj), \
        "planner.scenario.to_dict() does not describe the model the planner scores"
    from_model = engine.load_scenario(copy.deepcopy(planner._model))
    assert same_objective(engine.evaluate(from_model, plan), obj)


def test_planner_does_not_change_the_scenario_it_was_given():
    """A ``Scenario`` is read-only (engine/scenario.py); issuing must not rewrite the caller's copy."""
    from engine.plan import problem_arrays

    d = tiny()
    d["responders"][0]["available_at"] = 5.0
    sc = engine.load_scenario(d)
    avail = problem_arrays(sc).resp_avail.copy()
    p = Planner(sc, seed=0)
    try:
        p.next_task("amb-01", 0.0)
        assert sc.model.responders[0].available_at == 5.0
        assert np.array_equal(problem_arrays(sc).resp_avail, avail), \
            "next_task changed the problem arrays of the caller's Scenario"
    finally:
        p.close()


# --- audit log ----------------------------------------------------------------------------------

def test_audit_log_has_one_flushed_line_per_issue(tmp_path):
    path = tmp_path / "logs" / "audit.jsonl"
    p = Planner(tiny(), seed=0, audit=path)
    try:
        p.step(200)
        issued = []
        for rid, now in (("amb-01", 0.0), ("fire-01", 1.0), ("amb-01", 1.5), ("amb-02", 2.0)):
            before = p._pins.get(rid)
            task = p.next_task(rid, now)
            if before:
                continue  # asked again: no new issue
            issued.append((now, rid, task, p.best()[1].expected_fatalities))
            # flushed before next_task returns: readable while the planner is open
            lines = path.read_text(encoding="utf-8").splitlines()
            assert len(lines) == len(issued)
        assert len(issued) == 3
        lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
        for rec, (now, rid, task, F) in zip(lines, issued):
            assert set(rec) == set(FIELDS)
            assert rec["time"] == now and rec["responder"] == rid
            assert rec["task"] == task.kind and rec["casualty"] == task.casualty
            assert rec["hospital"] == task.hospital
            assert rec["objective"] == pytest.approx(F, abs=1e-9)
            alt = rec["alternative_objective"]
            assert alt is None or (isinstance(alt, float) and math.isfinite(alt))
        table = read_audit(path)
        assert isinstance(table, pa.Table)
        assert table.num_rows == 3
        assert table.column_names == list(FIELDS)
        assert table.column("responder").to_pylist() == [rid for _, rid, _, _ in issued]
        assert table.column("casualty").to_pylist() == [t.casualty for _, _, t, _ in issued]
        assert table.column("time").to_pylist() == [now for now, _, _, _ in issued]
    finally:
        p.close()
    assert read_audit(path).num_rows == 3


def test_audit_alternative_is_the_best_other_first_task(tmp_path, london):
    """The audit's alternative objective: the best plan, by the reference, in which the team
    starts with any other task it may do instead (here for every team, issued at the model's time)."""
    import reference

    path = tmp_path / "audit.jsonl"
    p = Planner(london, seed=0, audit=path)
    try:
        p.step(400)
        wanted = []
        for resp in london.model.responders:
            (plan, objective), sc = p.best(), p.scenario
            if not plan.routes[resp.id]:
                continue
            task = p.next_task(resp.id, p.time)
            want = reference.best_other_first(sc, plan, resp.id)
            runner_up = reference.best_other_first(sc, plan, resp.id, besides=task)
            wanted.append((plan.routes[resp.id][0], task, objective.expected_fatalities,
                           None if want is None or want[0] == 2 else want[1],
                           None if runner_up is None or runner_up[0] else runner_up[1]))
        rows = read_audit(path).to_pylist()
        assert len(rows) == len(wanted) >= 10
        kept = 0
        for row, (first, task, F, alt, runner_up) in zip(rows, wanted):
            if alt is None or alt >= F - TOL:  # no better plan starts otherwise: the plan's first task
                assert (task.kind, task.casualty) == (first.kind, first.casualty)
                assert abs(row["objective"] - F) <= TOL
                assert (row["alternative_objective"] is None and alt is None) or abs(row["alternative_objective"]
                                                                                     - alt) <= 2 * TOL
                kept += 1
            else:  # the better plan is issued, and logged beside the best of the others: the
                # incumbent, or the best plan starting the team with yet another task
                assert (task.kind, task.casualty) != (first.kind, first.casualty)
                assert abs(row["objective"] - alt) <= 2 * TOL
                other = F if runner_up is None else min(F, runner_up)
                assert abs(row["alternative_objective"] - other) <= 2 * TOL
            assert row["alternative_objective"] is None or row["alternative_objective"] >= row["objective"] - TOL
        assert kept >= 5
    finally:
        p.close()


def test_an_issue_sends_the_team_where_a_better_plan_sends_it(tmp_path):
    """The plan given sends amb1 to the delayed casualty first and the immediate one after; the
    audit's alternative (the immediate one first) is a better plan. That one is issued and
    becomes the incumbent, and the alternative logged is the incumbent's: the logged objective
    is never beaten by the logged alternative. Before, the delayed casualty was issued, and the
    log's alternative was lower than its objective."""
    d = factories.one_site()
    d["casualties"] = [c for c in d["casualties"] if c["id"] in ("c1", "c3")]
    d["responders"] = d["responders"][:1]
    sc = engine.load_scenario(d)
    worse = {"format": "goldenhour.plan/1", "routes": {
        "amb1": [{"task": "transport", "casualty": "c3", "hospital": "H1"},
                 {"task": "transport", "casualty": "c1", "hospital": "H1"}]}}
    better_first = {"format": "goldenhour.plan/1", "routes": {
        "amb1": [{"task": "transport", "casualty": "c1", "hospital": "H1"},
                 {"task": "transport", "casualty": "c3", "hospital": "H1"}]}}
    F_worse = engine.evaluate(sc, engine.load_plan(sc, worse)).expected_fatalities
    F_better = engine.evaluate(sc, engine.load_plan(sc, better_first)).expected_fatalities
    assert F_better < F_worse - 1e-3
    path = tmp_path / "audit.jsonl"
    p = Planner(sc, algorithm="descent", plan=worse, audit=path)
    try:
        assert p.best()[1].expected_fatalities == pytest.approx(F_worse, abs=TOL)
        task = p.next_task("amb1", 0.0)
        assert (task.kind, task.casualty) == ("transport", "c1")
        plan, objective = p.best()
        assert objective.expected_fatalities == pytest.approx(F_better, abs=TOL)
        assert [(t.casualty, t.pinned) for t in plan.routes["amb1"]] == [("c1", True), ("c3", False)]
        row = read_audit(path).to_pylist()[0]
        assert row["casualty"] == "c1"
        assert row["objective"] == pytest.approx(F_better, abs=TOL)
        # the only other plan scored that starts amb1 otherwise: the incumbent
        assert row["alternative_objective"] == pytest.approx(F_worse, abs=TOL)
    finally:
        p.close()
    # a plan carried out as it stands: its first task, the better plan logged as the alternative
    p = Planner(sc, algorithm="descent", plan=worse, audit=tmp_path / "as-it-stands.jsonl", issue_better=False)
    try:
        task = p.next_task("amb1", 0.0)
        assert (task.kind, task.casualty) == ("transport", "c3")
        assert p.best()[1].expected_fatalities == pytest.approx(F_worse, abs=TOL)
        row = read_audit(tmp_path / "as-it-stands.jsonl").to_pylist()[0]
        assert row["objective"] == pytest.approx(F_worse, abs=TOL)
        assert row["alternative_objective"] == pytest.approx(F_better, abs=TOL)
    finally:
        p.close()


def test_audit_log_appends_to_an_existing_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    for _ in range(2):
        p = Planner(tiny(), seed=0, audit=path)
        try:
            p.next_task("amb-01", 0.0)
        finally:
            p.close()
    assert read_audit(path).num_rows == 2


def test_an_issue_the_disk_refuses_is_told_only_once_its_record_is_written(tmp_path, monkeypatch):
    """The record is written after the task is pinned. A full disk raised from ``next_task``
    with the task pinned, and asking again returned it with no record ever written: a task
    handed out that the log lacks. Now the same ask writes the record first, then tells it."""
    from engine import audit as audit_mod

    path = tmp_path / "audit.jsonl"
    real, calls = audit_mod.AuditLog.write, []

    def full_once(log, record):
        calls.append(record)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        real(log, record)

    monkeypatch.setattr(audit_mod.AuditLog, "write", full_once)
    told = []
    p = Planner(tiny(), seed=0, audit=path)
    p.on_issue = told.append
    try:
        with pytest.raises(OSError):
            p.next_task("amb-01", 0.0)
        assert read_audit(path).num_rows == 0 and told == []
        task = p.next_task("amb-01", 0.0)
        rows = read_audit(path).to_pylist()
        assert [(r["responder"], r["task"], r["casualty"]) for r in rows] == [("amb-01", task.kind, task.casualty)]
        assert len(told) == 1 and p.next_task("amb-01", 0.0) == task and read_audit(path).num_rows == 1
    finally:
        p.close()


def test_a_record_the_disk_takes_half_of_leaves_no_half_line(tmp_path, monkeypatch):
    """Half a line left in the file would run on into the next record, and the log would no
    longer read as a table."""
    from engine import audit as audit_mod

    path = tmp_path / "audit.jsonl"
    log = audit_mod.AuditLog(path)
    record = {"time": 0.0, "responder": "amb-01", "task": "treat", "casualty": "c1", "objective": 1.0}
    log.write(record)
    real_write = os.write

    def half(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_mod.os, "write", half)
    with pytest.raises(OSError):
        log.write(dict(record, casualty="c2"))
    monkeypatch.setattr(audit_mod.os, "write", real_write)
    log.write(dict(record, casualty="c3"))
    log.close()
    assert [r["casualty"] for r in read_audit(path).to_pylist()] == ["c1", "c3"]


@pytest.mark.parametrize("whole", [0, 1, 2])
def test_a_last_record_cut_short_by_a_dead_process_is_dropped(tmp_path, whole):
    """A process died writing a record (power lost before the sync; the crew was never told):
    the log still reads, without it, and the next process's first record starts a line of its
    own instead of running on from the torn one."""
    from engine import audit as audit_mod

    path = tmp_path / "audit.jsonl"
    record = {"time": 0.0, "responder": "amb-01", "task": "treat", "casualty": "c1", "objective": 1.0}
    log = audit_mod.AuditLog(path)
    for i in range(whole):
        log.write(dict(record, casualty=f"c{i}"))
    log.close()
    line = json.dumps(dict(record, casualty="torn"))
    with open(path, "a") as f:
        f.write(line[: len(line) // 2])
    assert [r["casualty"] for r in read_audit(path).to_pylist()] == [f"c{i}" for i in range(whole)]
    log = audit_mod.AuditLog(path)
    log.write(dict(record, casualty="next"))
    log.close()
    assert [r["casualty"] for r in read_audit(path).to_pylist()] == [f"c{i}" for i in range(whole)] + ["next"]
    assert path.read_text().count("\n") == whole + 1


@pytest.mark.parametrize("text", [b"not a log", b"a\n" + b"x" * 100, b'{"time": 0.0}\nhello'])
def test_a_file_that_is_no_audit_log_is_refused_and_left_as_it_was(tmp_path, text):
    """Its last line is neither a record nor the start of one: not cut, though a torn record's
    last line would be."""
    from engine.audit import AuditLog, _whole_lines

    path = tmp_path / "notes.txt"
    path.write_bytes(text)
    with pytest.raises(engine.InputError, match="notes.txt: not an audit log"):
        AuditLog(path)
    with pytest.raises(engine.InputError, match="not an audit log"):
        read_audit(path)
    assert path.read_bytes() == text
    with pytest.raises(engine.InputError):
        _whole_lines(path, tail=8)
    AuditLog(path, fresh=True).close()  # a fresh log replaces whatever was there
    assert path.read_bytes() == b""


def test_the_last_whole_line_is_found_within_the_tail_read():
    import tempfile

    from engine.audit import _whole_lines

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "log"
        for text, want in ((b'{"time": 1}\n' * 3 + b'{"ti', 36), (b'{"time": 1}\n{"time": 2', 12), (b"", 0),
                           (b'{"', 0), (b'{"time": 1}\n', 12)):
            path.write_bytes(text)
            assert _whole_lines(path, tail=16) == want, text


def test_empty_audit_log_reads_as_an_empty_table(tmp_path):
    path = tmp_path / "audit.jsonl"
    p = Planner(tiny(), seed=0, audit=path)
    try:
        table = read_audit(path)
        assert table.num_rows == 0 and table.column_names == list(FIELDS)
    finally:
        p.close()


def run_beside_search(p: Planner, threads: list[threading.Thread]) -> None:
    """Run ``threads`` to their end while ``p`` searches in the background; then stop it."""
    p.start()
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert not any(th.is_alive() for th in threads), "a thread hung"
    finally:
        p.stop()


def test_issues_from_several_threads_are_each_logged_once_in_each_callers_order(tmp_path):
    """Issues are logged after the planner's lock is released: lines from concurrent callers
    must neither be lost nor interleave, and each caller's own lines keep its order."""
    path = tmp_path / "audit.jsonl"
    p = Planner(generate("random", seed=3, casualties=24, paramedics=9, fire=3, hospitals=3), seed=0, audit=path)
    teams = list(p.scenario.responder_index)
    callers = [teams[k::3] for k in range(3)]  # each caller issues to its teams in turn
    issued: list[list[tuple[str, Task]]] = [[] for _ in callers]
    errors: list[BaseException] = []

    def caller(k):
        try:
            for rid in callers[k]:
                task = p.next_task(rid, p.time)
                if task is not None:
                    issued[k].append((rid, task))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    try:
        run_beside_search(p, [threading.Thread(target=caller, args=(k,)) for k in range(len(callers))])
    finally:
        p.close()
    assert not errors, errors
    table = read_audit(path)  # fails on a torn or interleaved line
    assert table.num_rows == sum(len(x) for x in issued) >= len(teams) - 2
    rows = table.to_pylist()
    for k, mine in enumerate(issued):
        logged = [(r["responder"], r["task"], r["casualty"], r["hospital"]) for r in rows
                  if r["responder"] in callers[k]]
        assert logged == [(rid, t.kind, t.casualty, t.hospital) for rid, t in mine]


# --- concurrency --------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["annealing", "tabu", "descent"])
def test_background_search_with_concurrent_deltas_and_issues(tmp_path, algorithm):
    audit = tmp_path / "audit.jsonl"
    p = Planner(small_random(4), algorithm=algorithm, seed=0, audit=audit)
    history = [p.scenario]  # the scenario after each operation of the worker thread
    issued: list[tuple[str, Task]] = []
    pins: dict[str, Task] = {}
    errors: list[BaseException] = []
    done = threading.Event()
    seen: list[tuple[int, int, object, object]] = []

    def worker():
        try:
            rng = np.random.default_rng(11)
            rids = list(p.scenario.responder_index)
            cids = [c["id"] for c in p._model["casualties"]]
            hids = [h["id"] for h in p._model["hospitals"]]
            for i in range(50):
                t = p.time
                u = i % 5
                if u in (0, 3):
                    rid = rids[int(rng.integers(len(rids)))]
                    task = p.next_task(rid, t + float(rng.integers(0, 2)) * 0.5)
                    if rid in pins:
                        assert task == pins[rid]
                    elif task is not None:
                        pins[rid] = task
                        issued.append((rid, task))
                elif u == 1:
                    p.apply({"type": "health_observed", "time": t, "casualty": cids[int(rng.integers(len(cids)))],
                             "health": ["delayed", "urgent", "immediate"][int(rng.integers(3))]})
                elif u == 2:
                    p.apply({"type": "clock", "time": t + 0.5})
                else:
                    p.apply({"type": "hospital_capacity", "time": t, "hospital": hids[int(rng.integers(len(hids)))],
                             "capacity": int(rng.integers(1, 6))})
                history.append(p.scenario)
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)
        finally:
            done.set()

    def reader():
        try:
            while not done.is_set() and len(seen) < 400:
                n = len(history)
                plan, obj = p.best()
                m = len(history)
                seen.append((n, m, plan, obj))
                time.sleep(0.001)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    run_beside_search(p, [threading.Thread(target=worker), threading.Thread(target=reader)])
    try:
        assert not errors, errors
        assert p._thread is None
        # nothing lost: every issue is in the audit log, in order, and still pinned
        table = read_audit(audit)
        assert table.num_rows == len(issued) > 0
        assert table.column("responder").to_pylist() == [r for r, _ in issued]
        assert table.column("casualty").to_pylist() == [t.casualty for _, t in issued]
        assert table.column("task").to_pylist() == [t.kind for _, t in issued]
        check_incumbent(p, pins)
        # every (plan, objective) pair read concurrently belongs together under some scenario of that moment
        assert seen
        for n, m, plan, obj in seen[:: max(1, len(seen) // 60)]:
            candidates = history[max(0, n - 1): m + 2]
            ok = False
            for sc in candidates:
                try:
                    if same_objective(engine.evaluate(sc, plan), obj):
                        ok = True
                        break
                except engine.PlanError:
                    continue
            assert ok, f"best() returned a plan whose objective {obj} matches none of its scenarios"
        # the search can be started again after stopping
        p.start()
        time.sleep(0.05)
        p.stop()
        check_incumbent(p, pins)
    finally:
        p.close()


def _overtake(p: Planner, delta: dict) -> dict:
    """Make the planner's next sweep be overtaken by ``delta``, applied just as the sweep ends;
    returns what the hook saw: the swept state, its plan, and the state after the delta."""
    seen = {"swept": p._state, "plan": p._state.current.to_plan()}
    alg = p._alg
    sweep = alg.propose

    def sweep_while_a_delta_lands(state):
        proposal = sweep(state)
        assert proposal is not None  # there is a move to apply (greedy is no local optimum here)
        seen["proposal"] = proposal
        p.apply(delta)
        with p._turn():  # as the search finds it next (a delta leaves its install to it: _settle)
            seen["after"] = p._state
            seen["after_cur"] = p._state.current.cur.copy()
        return proposal

    alg.propose = sweep_while_a_delta_lands
    return seen


@pytest.mark.parametrize("algorithm", ["tabu", "descent"])
def test_a_background_sweep_overtaken_by_a_changed_plan_applies_nothing(algorithm):
    """A descent or tabu sweep runs without the planner's lock. A delta that lands meanwhile and
    changes the plan (new casualties to carry) installs a new search state: the swept move must
    not be applied to either."""
    p = Planner(small_random(4), algorithm=algorithm, seed=0)
    try:
        site = p._model["sites"][0]["id"]
        seen = _overtake(p, {"type": "casualties_added", "time": p.time,
                             "casualties": [{"id": "late", "site": site, "health": "urgent"}]})
        assert p._sweep_step() is False
        swept = seen["swept"]
        assert p._state is seen["after"] is not swept
        assert swept.iterations == 0 and p._state.iterations == 0
        assert swept.current.to_plan() == seen["plan"]
        check_incumbent(p, {})
        assert p._sweep_step() is False  # the new state's own sweep is applied
        assert p._state.iterations == 1
        check_incumbent(p, {})
    finally:
        p.close()


@pytest.mark.parametrize("algorithm", ["tabu", "descent"])
def test_a_background_sweep_overtaken_by_a_rescoring_delta_is_applied_if_still_taken(algorithm):
    """A delta that only re-scores the plan (a health observation) keeps its arrays: the swept
    move means the same in the new state and is applied there, scored under the new model, if
    the algorithm still takes it (descent: only if it still improves)."""
    p = Planner(small_random(4), algorithm=algorithm, seed=0)
    try:
        cid = p._model["casualties"][0]["id"]
        seen = _overtake(p, {"type": "health_observed", "time": p.time, "casualty": cid, "health": "immediate"})
        assert p._sweep_step() is False
        swept, after = seen["swept"], seen["after"]
        assert p._state is after is not swept
        assert swept.iterations == 0 and swept.current.to_plan() == seen["plan"]
        assert after.iterations == 1  # here the move still improves, even for descent
        check_incumbent(p, {})
        moved = after.current.to_plan()
        assert moved != seen["plan"]
        if algorithm == "descent":
            c0, c1 = seen["after_cur"], after.current.cur
            assert c1[0] < c0[0] - 1e-12 or (abs(c1[0] - c0[0]) <= 1e-9 and c1[2] < c0[2])
    finally:
        p.close()


@pytest.mark.parametrize("algorithm", ["tabu", "descent"])
def test_a_background_sweep_overtaken_by_a_treatment_started_does_not_plan_that_treatment(algorithm):
    """The sweep chose to insert a treatment of casualty X; meanwhile another team reports
    starting X's treatment. The plan's arrays are unchanged (X had no treatment in it), but the
    new model forbids planning one: the swept move must not be applied (it was, and the
    incumbent then planned a treatment already under way: an invalid plan)."""
    p = Planner(small_random(4), algorithm=algorithm, seed=0)
    try:
        with p._turn():
            sol = p._state.current
        P = problem_arrays(sol.sc)
        treated = {int(code) // 3 for code in sol.order[:sol.starts[-1]] if code % 3 == 1}
        x = next(c for c in range(len(P.can_treat))
                 if P.can_treat[c] and c not in treated and not P.trapped[c])
        medics = [r for r in range(len(P.resp_fire)) if not P.resp_fire[r]]
        into, other = medics[0], medics[1]
        move = np.array([INSERT_TREAT, x, into, sol.pins[into]], dtype=np.int64)
        seen = _overtake(p, {"type": "task_started", "time": p.time, "responder": sol.sc.model.responders[other].id,
                             "task": "treat", "casualty": sol.sc.model.casualties[x].id})
        p._alg.propose = lambda state, propose=p._alg.propose: (propose(state), Proposal(move, (0.0, 0.0)))[1]
        assert p._sweep_step() is False
        assert p._state is seen["after"] and p._state.iterations == 0  # nothing applied
        assert engine.load_plan(p.scenario, p._state.current.to_plan().to_json())  # still valid
        check_incumbent(p, {})
    finally:
        p.close()


def _chunk_overtaken_by(p: Planner, change) -> dict:
    """Run one background annealing chunk during which ``change(p)`` happens (as another thread's
    delta or issue would, just as the chunk ends); returns the chunk's and the new state."""
    seen = {}
    run = p._alg.run

    def run_while_the_model_changes(state, *args):
        out = run(state, *args)
        seen["work"] = state
        change(p)
        with p._turn():  # as the next holder of the lock finds it (an issue finishes then: _settle)
            seen["after"], seen["after_current"] = p._state, p._state.current
        return out

    p._alg.run = run_while_the_model_changes
    p._anneal_step(200)
    return seen


def test_an_annealing_chunk_overtaken_by_a_rescoring_delta_is_carried_over():
    """The background chunk anneals a private copy without the lock; a health observation that
    lands meanwhile only re-scores plans, so the chunk's plan becomes the search's, scored under
    the new model, and its best plan the incumbent if it is better there."""
    p = Planner(small_random(4), seed=0)
    try:
        cid = p._model["casualties"][0]["id"]
        seen = _chunk_overtaken_by(p, lambda p: p.apply({"type": "health_observed", "time": p.time,
                                                         "casualty": cid, "health": "immediate"}))
        after, work = seen["after"], seen["work"]
        assert p._state is after and after.current is not seen["after_current"]
        assert after.current.to_plan() == work.current.to_plan()
        fresh = engine.evaluate(p.scenario, after.current.to_plan())
        assert same_objective(fresh, after.current.objective)
        carried_best = engine.evaluate(p.scenario, work.best.to_plan())
        assert after.best.objective.expected_fatalities <= carried_best.expected_fatalities + TOL
        check_incumbent(p, {})
    finally:
        p.close()


def test_an_annealing_chunk_overtaken_by_an_issue_is_dropped():
    p = Planner(small_random(4), seed=0)
    try:
        rid = next(r for r, tasks in p.best()[0].routes.items() if tasks)
        seen = _chunk_overtaken_by(p, lambda p: p.next_task(rid, p.time))
        assert p._state is seen["after"] and p._state.current is seen["after_current"]
        assert p._state.iterations == 0
        check_incumbent(p, {rid: p._pins[rid][0]})
    finally:
        p.close()


def test_reconsidered_moves_are_scored_afresh_and_descent_keeps_only_improving_ones():
    from engine.algorithms import Descent, Proposal, Tabu

    p = Planner(small_random(4), algorithm="descent", seed=0)
    try:
        p.step(10_000)  # a local optimum: no move improves
        state = p._state
        moves, n = state.moves()
        assert n > 0
        before = state.current.to_plan()
        for move in moves[: min(n, 25)]:
            proposal = Proposal(move.copy(), (math.nan, math.nan))
            assert Descent().reconsider(state, proposal) is None
            assert Tabu().reconsider(state, proposal) is None  # tabu's first descent is descent's
            again = Tabu(followups=False).reconsider(state, proposal)
            assert again is not None and np.array_equal(again.move, move)
            trial = state.current.copy()
            Tabu(followups=False).accept(SearchState(trial, trial.copy()), again)
            fresh = engine.evaluate(p.scenario, trial.to_plan())
            F, T = again.predicted
            assert (math.isnan(F) and fresh.expected_fatalities is None) or (
                abs(F - fresh.expected_fatalities) <= TOL and abs(T - fresh.casualty_minutes) <= TOL)
        assert state.current.to_plan() == before  # reconsidering changes nothing
    finally:
        p.close()


def test_start_stop_are_idempotent(planner):
    planner.stop()
    planner.start()
    planner.start()
    deadline = time.time() + 10
    while planner._state.iterations == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert planner._state.iterations > 0, "the background search did not run"
    planner.stop()
    n = planner._state.iterations
    time.sleep(0.05)
    assert planner._state.iterations == n, "the search goes on after stop()"
    planner.stop()
    check_incumbent(planner, {})


# --- determinism --------------------------------------------------------------------------------

def _scripted(p: Planner, k: int) -> None:
    p.step(k)
    p.next_task("amb-01", 0.0)
    p.apply({"type": "health_observed", "time": 1.0, "casualty": "c004", "health": "immediate"})
    p.step(k)
    p.next_task("fire-01", 1.5)
    p.apply({"type": "casualties_added", "time": 2.0,
             "casualties": [{"id": "z1", "site": "aldgate", "health": "P1"}]})
    p.step(k)
    p.apply({"type": "task_started", "time": 3.0, "responder": "fire-01", "task": "rescue", "casualty": "c001"})
    p.next_task("amb-02", 3.0)
    p.step(k)
    p.apply({"type": "travel_changed", "time": 4.0, "factor": 1.2})
    p.step(k)
    p.next_task("fire-01", 14.0)


@pytest.mark.parametrize("algorithm", ["annealing", "tabu"])
def test_same_seed_and_operations_give_identical_plans_and_audits(tmp_path, algorithm):
    out = []
    for k in range(2):
        audit = tmp_path / f"audit{k}.jsonl"
        p = Planner(tiny(), algorithm=algorithm, seed=7, audit=audit)
        try:
            _scripted(p, 150 if algorithm == "annealing" else 4)
            plan, obj = p.best()
            out.append((json.dumps(plan.to_json(), sort_keys=True), obj, audit.read_text(encoding="utf-8")))
        finally:
            p.close()
    assert out[0][0] == out[1][0]
    assert out[0][1] == out[1][1]
    assert out[0][2] == out[1][2] and out[0][2].count("\n") >= 3


# --- snapshot / restore ---------------------------------------------------------------------------

def test_snapshot_and_restore(tmp_path):
    p = Planner(tiny(), seed=0)
    try:
        p.step(200)
        p.next_task("amb-01", 0.0)
        p.apply({"type": "task_started", "time": 1.0, "responder": "fire-01", "task": "rescue", "casualty": "c001"})
        p.next_task("amb-02", 2.0)
        p.apply({"type": "health_observed", "time": 3.0, "casualty": "c002", "health": "urgent", "observed_at": 2.5})
        p.step(200)
        scenario_path, plan_path = p.snapshot(tmp_path / "snap")
        assert scenario_path.exists() and plan_path.exists()
        sc = engine.load_scenario(scenario_path)
        assert sc.model.time == p.time
        plan = engine.load_plan(sc, plan_path)
        doc = json.loads(plan_path.read_text())
        assert doc["objective"]["expected_fatalities"] == pytest.approx(p.best()[1].expected_fatalities, abs=1e-9)
        # issued tasks are pinned first in the plan file
        for rid, tasks in p._pins.items():
            assert plan.routes[rid][0] == tasks[0]
        assert sum(t.pinned for ts in plan.routes.values() for t in ts) == sum(len(v) for v in p._pins.values())
        # any copy of goldenhour re-scores it the same
        assert same_objective(engine.evaluate(sc, plan), p.best()[1])
        # work in progress as facts
        c001 = next(c for c in json.loads(scenario_path.read_text())["casualties"] if c["id"] == "c001")
        assert c001["rescue_ends_at"] == pytest.approx(11.5)

        q = Planner.restore(scenario_path, plan_path, seed=0)
        try:
            assert same_objective(q.best()[1], p.best()[1])
            assert q._pins == p._pins
            assert json.dumps(q.best()[0].to_json()["routes"], sort_keys=True) == \
                json.dumps(p.best()[0].to_json()["routes"], sort_keys=True)
            pins = {r: ts[0] for r, ts in p._pins.items()}
            for planner_ in (p, q):
                planner_.step(300)
                planner_.apply({"type": "clock", "time": 5.0})
                planner_.step(300)
                check_incumbent(planner_, pins)
            # a second snapshot of the restored planner loads too
            s2, p2 = q.snapshot(tmp_path / "snap2")
            engine.load_plan(engine.load_scenario(s2), p2)
        finally:
            q.close()
    finally:
        p.close()


@pytest.mark.parametrize("now", [2e9, 10**400, -1.0, float("nan"), True, "7"])
def test_next_task_rejects_a_time_no_delta_may_have(now):
    p = Planner(tiny(), algorithm="descent", seed=0)
    try:
        p.step(3)
        p.apply({"type": "clock", "time": 5.0})
        before = (p.time, dict(p._pins), p.best()[1])
        with pytest.raises(engine.DeltaError, match="now"):
            p.next_task("amb-01", now)
        assert (p.time, dict(p._pins), p.best()[1]) == before
    finally:
        p.close()


def test_next_task_takes_numpy_numbers():
    p = Planner(tiny(), algorithm="descent", seed=0)
    try:
        p.step(3)
        assert p.next_task("amb-01", np.int64(6)) is not None
        assert p.time == 6.0 and isinstance(p.time, float)  # the clock moved to it
        assert p.next_task("amb-02", np.float32(7.5)) is not None
        assert p.time == 7.5 and isinstance(p.time, float)
    finally:
        p.close()


def test_restore_takes_the_snapshot_directory(tmp_path):
    p = Planner(tiny(), seed=0)
    try:
        p.step(200)
        p.next_task("amb-01", 0.0)
        p.apply({"type": "health_observed", "time": 1.0, "casualty": "c002", "health": "urgent", "observed_at": 0.5})
        p.snapshot(tmp_path / "snap")
        for where in (tmp_path / "snap", str(tmp_path / "snap")):
            q = Planner.restore(where, seed=0)
            try:
                assert same_objective(q.best()[1], p.best()[1])
                assert q._pins == p._pins and q._seen == p._seen
            finally:
                q.close()
        with pytest.raises(engine.PlanError, match="plan_path"):
            Planner.restore(tmp_path / "snap" / "scenario.json")
        with pytest.raises(engine.ScenarioError):
            Planner.restore(tmp_path)  # a directory without a snapshot in it
        (tmp_path / "a-file").write_text("")
        with pytest.raises(engine.InputError, match="a-file"):  # not a raw FileExistsError
            p.snapshot(tmp_path / "a-file")
        assert (tmp_path / "a-file").read_text() == ""
    finally:
        p.close()


def test_a_snapshot_refused_half_way_leaves_the_last_one_whole(tmp_path, monkeypatch):
    """The disk refuses the second of a snapshot's files: the folder still holds the previous
    snapshot, all of it (not a scenario of the new one beside the plan of the old), with no
    partial files, and it restores."""
    import engine.planner as planner_module

    class Refusing:  # json, but the disk is full from the second file on
        calls = 0

        @classmethod
        def dumps(cls, *args, **kwargs):
            cls.calls += 1
            if cls.calls >= 2:
                raise OSError(28, "No space left on device")
            return json.dumps(*args, **kwargs)

    p = Planner(tiny(), seed=0)
    try:
        p.step(200)
        snap = tmp_path / "snap"
        p.snapshot(snap)
        before = {f.name: f.read_bytes() for f in snap.iterdir()}
        p.next_task("amb-01", 0.0)
        p.apply({"type": "health_observed", "time": 1.0, "casualty": "c002", "health": "urgent", "observed_at": 0.5})
        monkeypatch.setattr(planner_module, "json", Refusing)
        with pytest.raises(engine.InputError, match="No space left"):
            p.snapshot(snap)
        monkeypatch.undo()
        assert {f.name: f.read_bytes() for f in snap.iterdir()} == before
        q = Planner.restore(snap, seed=0)
        q.close()
        p.snapshot(snap)  # and the next one is written in full
        assert json.loads((snap / "scenario.json").read_text())["time"] == 1.0
        assert sorted(f.name for f in snap.iterdir()) == sorted(before)
    finally:
        p.close()


@pytest.mark.parametrize("task", ["rescue", "treat"])
def test_a_restored_planner_revises_work_under_way_as_the_original_does(tmp_path, task):
    """Which team does a task under way is not in the snapshot (it is not in the scenario
    format); the restored planner finds it by the facts (at the site, free when the work ends),
    so a revised duration moves that team as it does in the original planner."""
    p = Planner(tiny(), algorithm="descent", seed=0)
    try:
        p.step(5)
        rid, cid = ("fire-01", "c001") if task == "rescue" else ("amb-02", "c003")
        p.apply({"type": "task_started", "time": 3.0, "responder": rid, "task": task, "casualty": cid})
        q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        try:
            for planner_ in (p, q):
                planner_.apply({"type": "duration_revised", "time": 5.0, "task": task, "casualty": cid,
                                "minutes": 40.0})
                assert model_resp(planner_, rid)["available_at"] == pytest.approx(43.0, abs=1e-12)
            assert q._model == p._model
            assert same_objective(q.best()[1], p.best()[1])
        finally:
            q.close()
    finally:
        p.close()


def test_snapshot_with_delivered_and_in_transit_casualties(tmp_path):
    p = Planner(tiny(), seed=0)
    try:
        p.apply({"type": "task_started", "time": 1.0, "responder": "amb-01", "task": "transport",
                 "casualty": "c003", "hospital": "R1H12"})
        p.apply({"type": "task_started", "time": 1.0, "responder": "amb-02", "task": "transport",
                 "casualty": "c002", "hospital": "RJ122"})
        arrival = model_cas(p, "c003")["in_transit"]["arrival"]
        p.apply({"type": "task_completed", "time": arrival, "responder": "amb-01", "task": "transport",
                 "casualty": "c003"})
        s, pl = p.snapshot(tmp_path)
        data = json.loads(s.read_text())
        assert data["delivered_fatalities"] > 0
        assert "c003" not in [c["id"] for c in data["casualties"]]
        c002 = next(c for c in data["casualties"] if c["id"] == "c002")
        assert c002["in_transit"]["hospital"] == "RJ122"
        sc = engine.load_scenario(s)
        assert same_objective(engine.evaluate(sc, engine.load_plan(sc, pl)), p.best()[1])
        q = Planner.restore(s, pl, seed=0)
        try:
            assert same_objective(q.best()[1], p.best()[1])
        finally:
            q.close()
    finally:
        p.close()


# --- callbacks ----------------------------------------------------------------------------------

def test_callbacks_are_called(tmp_path):
    calls = {"best": [], "delta": [], "issue": []}
    p = Planner(small_random(2), seed=0, audit=tmp_path / "a.jsonl",
                on_best=lambda plan, obj: calls["best"].append((plan, obj)),
                on_delta=lambda d: calls["delta"].append(d),
                on_issue=lambda rec: calls["issue"].append(rec))
    try:
        start_obj = p.best()[1]
        p.step(3000)
        assert p.best()[1].better(start_obj), "setup: the search should improve on the greedy start here"
        assert calls["best"], "on_best was never called although the search improved"
        for plan, obj in calls["best"]:
            assert isinstance(obj, engine.Objective)
        assert same_objective(calls["best"][-1][1], p.best()[1])
        cid = p._model["casualties"][0]["id"]
        delta = {"type": "health_observed", "time": 1.0, "casualty": cid, "health": "immediate"}
        p.apply(delta)
        assert len(calls["delta"]) == 1
        got = calls["delta"][0]
        assert got == delta or getattr(got, "casualty", None) == cid
        with pytest.raises(DeltaError):
            p.apply({"type": "health_observed", "time": 1.0, "casualty": "nobody", "health": "immediate"})
        assert len(calls["delta"]) == 1, "on_delta was called for a rejected delta"
        rid = next(r for r, ts in p.best()[0].routes.items() if ts)
        task = p.next_task(rid, 1.0)
        assert len(calls["issue"]) == 1
        rec = calls["issue"][0]
        assert rec["responder"] == rid and rec["casualty"] == task.casualty and rec["task"] == task.kind
        p.next_task(rid, 1.0)  # asked again: not a new issue
        assert len(calls["issue"]) == 1
    finally:
        p.close()


def test_check_changes_nothing_even_for_a_delta_it_accepts():
    """``check`` vets a delta as ``apply`` would, and leaves the planner as it was: after a delta
    the planner re-scores its own incumbent in place, and ``check`` did that too, so the search
    that followed ran on the model of a delta never applied (an incumbent at minute 30 in a
    planner at minute 1)."""
    twin, p = (Planner(factories.one_site(), algorithm="descent", seed=0) for _ in range(2))
    try:
        for q in (twin, p):
            q.apply({"type": "clock", "time": 1.0})  # the incumbent is the delta's own from here
        before, inc = p.best(), p._incumbent()
        cur, sc = inc.cur.copy(), inc.sc
        p.check({"type": "clock", "time": 30.0})
        assert p.time == 1.0 and p._incumbent().sc is sc and np.array_equal(p._incumbent().cur, cur)
        assert p.best()[1] == before[1]
        with pytest.raises(DeltaError):
            p.check({"type": "clock", "time": 0.5})
        for q in (twin, p):
            q.step(3)
        assert p.best()[1] == twin.best()[1] and p.best()[0].to_json() == twin.best()[0].to_json()
    finally:
        twin.close()
        p.close()


def test_on_best_reports_every_change_of_the_incumbent():
    """A delta and an issue change the incumbent as the search does: a subscriber that keeps
    the plan from ``on_best`` must see each new plan (a clock delta moved F from 0.20 to 0.34
    with no call, and a descent planner at its optimum never called it again)."""
    seen = []
    p = Planner(small_random(2), algorithm="descent", seed=0, on_best=lambda plan, obj: seen.append((plan, obj)))
    try:
        p.step(200)  # to descent's local optimum: the search will not call on_best again
        before = len(seen)
        p.apply({"type": "clock", "time": 5.0})
        assert len(seen) == before + 1
        plan, objective = p.best()
        assert seen[-1][1] == objective and seen[-1][0].to_json() == plan.to_json()
        assert seen[-1][1].expected_fatalities > seen[-2][1].expected_fatalities, "time passed: worse"
        with pytest.raises(DeltaError):
            p.apply({"type": "clock", "time": 1.0})  # rejected: nothing changed, nothing said
        assert len(seen) == before + 1
        rid = next(r for r, ts in plan.routes.items() if ts)
        task = p.next_task(rid, 6.0)  # the clock moves and the task is pinned: one new incumbent
        assert len(seen) == before + 2
        assert [t for t in seen[-1][0].routes[rid] if t.pinned] == [task]
        assert seen[-1][1] == p.best()[1]
        p.next_task(rid, 6.0)  # the same task again: nothing changed
        assert len(seen) == before + 2
    finally:
        p.close()


def test_a_snapshot_of_a_road_network_from_files_can_be_moved(tmp_path):
    """The network files are copied into the snapshot and named relatively (they were absolute
    paths into this machine's examples): the folder restores anywhere, and a snapshot of the
    restored planner into its own folder keeps them."""
    import shutil

    root = Path(__file__).resolve().parents[2]
    p = Planner(root / "examples" / "helsinki.json", algorithm="descent", seed=0)
    try:
        p.step(2)
        p.snapshot(tmp_path / "snap")
        objective = p.best()[1]
    finally:
        p.close()
    net = json.loads((tmp_path / "snap" / "scenario.json").read_text(encoding="utf-8"))["network"]
    assert (net["nodes_file"], net["edges_file"]) == ("network-nodes.parquet", "network-edges.parquet")
    shutil.move(tmp_path / "snap", tmp_path / "elsewhere")
    q = Planner.restore(tmp_path / "elsewhere", algorithm="descent", seed=0)
    try:
        assert same_objective(q.best()[1], objective)
        q.snapshot(tmp_path / "elsewhere")  # its own files: kept, not copied onto themselves
        again = json.loads((tmp_path / "elsewhere" / "scenario.json").read_text(encoding="utf-8"))["network"]
        assert again["nodes_file"] == "network-nodes.parquet"
    finally:
        q.close()
    r = Planner.restore(tmp_path / "elsewhere", algorithm="descent", seed=0)
    try:
        assert same_objective(r.best()[1], objective)
    finally:
        r.close()
