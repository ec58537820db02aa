"""Task reports that reach the planner late (``started_at`` / ``completed_at``, engine/deltas.py).

A crew radios at 10 that it started a rescue at 8: the report's ``time`` is 10, its
``started_at`` 8. The property checked throughout: a report taken late, with its actual time,
leaves the model as the same report taken on time followed by a ``clock`` to the late report's
time would (the same records, observation histories and starts), while the same report with
no actual time, taken as happening at 10, does not. The scenario is ``generate("tiny", seed=0)``
(see ``test_deltas``): c001 is trapped (a 10.5-minute rescue), c002-c004 wait at the CCS.
"""

from __future__ import annotations

import copy

import pytest

import engine
from engine import DeltaError
from engine.health import AMBULANCE, CCS, CCS_TREATED, TRAPPED, TRAPPED_TREATED, category_vector, propagate
from engine.observations import DELIVERED
from engine.planner import Planner

from test_deltas import CHAINS, RISK, assert_consistent, cas, hosp, resp, state, tiny

RESCUE = {"type": "task_started", "responder": "fire-01", "task": "rescue", "casualty": "c001"}
TREAT = {"type": "task_started", "responder": "amb-01", "task": "treat", "casualty": "c002"}
TRANSPORT = {"type": "task_started", "responder": "amb-02", "task": "transport", "casualty": "c003",
             "hospital": "RJ122"}


def _done(start: dict) -> dict:
    return {"type": "task_completed", **{k: start[k] for k in ("responder", "task", "casualty")}}


def _planner(deltas=(), issue_better: bool = True) -> Planner:
    p = Planner(tiny(), algorithm="descent", seed=0, issue_better=issue_better)
    for d in deltas:
        p.apply(d)
    return p


def _facts(p: Planner):
    """The model, the histories and the starts; of a delivery's record, where, when, p_dead and
    the bed, and of a report of beds, when and how many were left (not the order of recording,
    nor who was ahead of a delivery by the tie then: how the reports came in, not what
    happened)."""
    seen = {k: (v[0], v[1][:4], v[2]) if v[0] == DELIVERED else
            (v[0], tuple(r[:2] for r in v[1]), v[2]) if isinstance(k, tuple) else v for k, v in p._seen.items()}
    return copy.deepcopy(p._model), seen, dict(p._started)


def _on_time_and_late(before, report: dict, at: float, now: float, key: str):
    """The facts after ``report`` made on time at ``at`` then a clock to ``now``; after it reported
    at ``now`` with ``key`` = ``at``; and after it reported at ``now`` with no actual time."""
    out = []
    for deltas in ([dict(report, time=at), {"type": "clock", "time": now}],
                   [dict(report, time=now, **{key: at})],
                   [dict(report, time=now)]):
        p = _planner([*before, *deltas])
        try:
            assert_consistent(p)
            out.append(_facts(p))
        finally:
            p.close()
    return out


@pytest.mark.parametrize("start,at,now", [
    (RESCUE, 3.0, 6.0),
    (RESCUE, 1.0, 20.0),  # would have ended at 11.5: not reported done, it lasts until now
    (TREAT, 2.0, 5.0),
    (TRANSPORT, 4.0, 7.5),
])
def test_a_start_reported_late_counts_from_when_it_happened(start, at, now):
    on_time, late, as_if_now = _on_time_and_late([], start, at, now, "started_at")
    assert late == on_time
    assert as_if_now[0] != on_time[0]


def test_a_late_start_s_work_ends_by_its_duration_from_then():
    p = _planner([dict(RESCUE, time=6.0, started_at=3.0)])
    try:
        assert cas(p, "c001")["rescue_ends_at"] == pytest.approx(3.0 + 10.5, abs=1e-12)
        assert resp(p, "fire-01")["available_at"] == pytest.approx(13.5, abs=1e-12)
        # revising the duration counts from the actual start too
        p.apply({"type": "duration_revised", "time": 7.0, "task": "rescue", "casualty": "c001", "minutes": 15.0})
        assert cas(p, "c001")["rescue_ends_at"] == pytest.approx(18.0, abs=1e-12)
    finally:
        p.close()


def test_a_late_pickup_carries_the_health_in_the_ambulance_from_then():
    p = _planner([dict(TRANSPORT, time=7.5, started_at=4.0)])
    try:
        c = cas(p, "c003")
        assert c["observed_at"] == 4.0
        want = propagate(category_vector("immediate"), CHAINS[CCS], 4.0)
        assert c["health"] == pytest.approx(list(want), abs=1e-12)
    finally:
        p.close()


@pytest.mark.parametrize("start,begun,at,now", [
    (RESCUE, 1.0, 12.0, 15.0),
    (TREAT, 1.0, 11.0, 14.0),
    (TRANSPORT, 4.0, None, 3.0),  # at: one minute after the estimated arrival; now: two after that
])
def test_a_completion_reported_late_counts_from_when_it_happened(start, begun, at, now):
    before = [dict(start, time=begun)]
    if at is None:
        p = _planner(before)
        arrival = cas(p, "c003")["in_transit"]["arrival"]
        p.close()
        at, now = arrival + 1.0, arrival + now
    on_time, late, as_if_now = _on_time_and_late(before, _done(start), at, now, "completed_at")
    assert late == on_time
    assert as_if_now[0] != on_time[0]


def _two_deliveries_to_one_bed():
    """c004 (picked up at 0.5) and c003 (at 1.0) in ambulances to R1H12, which has one bed;
    returns the planner and c004's estimated arrival."""
    p = _planner([{"type": "hospital_capacity", "time": 0.0, "hospital": "R1H12", "capacity": 1},
                  {"type": "task_started", "time": 0.5, "responder": "amb-01", "task": "transport",
                   "casualty": "c004", "hospital": "R1H12"},
                  dict(TRANSPORT, time=1.0, hospital="R1H12")])
    arrival = cas(p, "c004")["in_transit"]["arrival"]
    assert cas(p, "c003")["in_transit"]["arrival"] == pytest.approx(arrival + 0.5, abs=1e-12)
    return p, arrival


def _p_dead(category: str, picked_up: float, arrival: float) -> float:
    return float(propagate(propagate(category_vector(category), CHAINS[CCS], picked_up), CHAINS[AMBULANCE],
                           arrival - picked_up)[3])


@pytest.mark.parametrize("late_first", [True, False])
def test_a_delivery_reported_late_takes_its_place_in_the_admission_order(late_first):
    """c004 is delivered when estimated and reported at once, taking the bed; c003's delivery is
    reported two minutes later, made a quarter of a minute before c004's (it takes the bed c004
    had) or a minute after it (beyond the beds)."""
    p, t4 = _two_deliveries_to_one_bed()
    try:
        t3 = t4 + (-0.25 if late_first else 1.0)
        p.apply({"type": "task_completed", "time": t4, "responder": "amb-01", "task": "transport",
                 "casualty": "c004"})
        assert hosp(p, "R1H12")["capacity"] == 0
        p.apply(dict(_done(TRANSPORT), time=t4 + 2.0, completed_at=t3))
        p3, p4 = _p_dead("immediate", 1.0, t3), _p_dead("delayed", 0.5, t4)
        beyond = p4 if late_first else p3
        assert p._model["delivered_fatalities"] == pytest.approx(p3 + p4 + (1.0 - beyond) * RISK, abs=1e-12)
        assert hosp(p, "R1H12")["capacity"] == 0
        assert_consistent(p)
    finally:
        p.close()


def test_a_restored_planner_knows_whose_bed_a_late_delivery_takes(tmp_path):
    p, arrival = _two_deliveries_to_one_bed()
    try:
        p.apply({"type": "task_completed", "time": arrival, "responder": "amb-01", "task": "transport",
                 "casualty": "c004"})
        q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        try:
            late = dict(_done(TRANSPORT), time=arrival + 2.0, completed_at=arrival - 0.25)
            for planner in (p, q):
                planner.apply(late)
            assert q._model["delivered_fatalities"] == pytest.approx(p._model["delivered_fatalities"], abs=1e-12)
            assert q._seen == p._seen
        finally:
            q.close()
    finally:
        p.close()


@pytest.mark.parametrize("delta,where", [
    (dict(RESCUE, time=5.0, started_at=6.0), "delta.started_at"),
    (dict(_done(RESCUE), time=9.0, completed_at=2.0), "delta.completed_at"),  # started at 3
    (dict(_done(RESCUE), time=9.0, completed_at=10.0), "delta.completed_at"),
])
def test_an_impossible_actual_time_is_rejected_whole(delta, where):
    p = _planner([dict(RESCUE, time=3.0)])
    try:
        before = state(p)
        with pytest.raises(DeltaError) as err:
            p.apply(delta)
        assert [q.path for q in err.value.problems] == [where]
        assert state(p) == before
    finally:
        p.close()


def _issued(seed: int) -> tuple[Planner, list]:
    """A planner on a small random scenario that has searched a little and issued every team its
    first task at time 0, and those tasks (team, task) that can start at once."""
    from engine.generate import generate
    p = Planner(generate("random", seed=seed, casualties=10, paramedics=3, fire=2, hospitals=3),
                algorithm="descent", seed=0)
    p.step(3)
    issued = []
    for r in p.scenario.model.responders:
        task = p.next_task(r.id, 0.0)
        c = None if task is None else cas(p, task.casualty)
        if task is None or (c.get("trapped") and (task.kind == "transport" or (task.kind == "treat" and not r.hart))):
            continue  # nothing, or it must wait for a rescue
        issued.append((r.id, task))
    return p, issued


def _facts_after(seed: int, deltas: list[dict]):
    p, _issued_tasks = _issued(seed)
    try:
        for d in deltas:
            p.apply(d)
        assert_consistent(p)
        return _facts(p)
    finally:
        p.close()


@pytest.mark.parametrize("seed", range(8))
def test_late_reports_of_issued_tasks_leave_the_model_as_reports_on_time(seed):
    """Every task issued at 0 on a random scenario, started at ``s`` and completed at ``e``: each
    report taken late (two to three minutes) gives the model the report on time and a clock to
    the late report's time would."""
    p, issued = _issued(seed)
    p.close()
    assert issued
    for k, (rid, task) in enumerate(issued):
        s = 0.5 + k % 3
        start = {"type": "task_started", "responder": rid, "task": task.kind, "casualty": task.casualty}
        if task.hospital:
            start["hospital"] = task.hospital
        on_time = _facts_after(seed, [dict(start, time=s), {"type": "clock", "time": s + 2.5}])
        late = _facts_after(seed, [dict(start, time=s + 2.5, started_at=s)])
        assert late == on_time, (rid, task)
        q, _ = _issued(seed)
        q.apply(dict(start, time=s))
        c = cas(q, task.casualty)
        end = {"rescue": c.get("rescue_ends_at"), "treat": c.get("treatment_ends_at"),
               "transport": (c.get("in_transit") or {}).get("arrival")}[task.kind]
        q.close()
        e = end + 1.0
        done = {"type": "task_completed", "responder": rid, "task": task.kind, "casualty": task.casualty}
        on_time = _facts_after(seed, [dict(start, time=s), dict(done, time=e), {"type": "clock", "time": e + 3.0}])
        late = _facts_after(seed, [dict(start, time=s), dict(done, time=e + 3.0, completed_at=e)])
        assert late == on_time, (rid, task)


# --- what a late report meets: an issue since, a change of environment reported first, a
# --- hospital's report of its beds, a snapshot

def _close(a, b) -> bool:
    """Equal, floats within 1e-12 (a chain carried in two stretches instead of one differs in the
    last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-15)
    return a == b


def test_a_team_issued_its_next_task_before_its_late_completion_sets_off_when_told():
    """amb-02 carries c003 (arriving at A), is issued its next task at A + 6 while the model
    still has it at the hospital, and its arrival at A - 2 is reported at A + 7.5: it set off
    at A + 6, when told, not at A - 2 + handover (before it was told).

    Both planners must issue the same task for their facts to be compared, so each issues its
    incumbent's first task (``issue_better=False``): which plan an issue takes (``Planner._first_choice``) depends on the
    model it is asked in, and the two models differ until the late report (here the late one
    finds a better plan sending amb-02 to c002)."""
    probe = _planner([dict(TRANSPORT, time=0.0)])
    A = cas(probe, "c003")["in_transit"]["arrival"]
    probe.close()
    done = _done(TRANSPORT)
    on_time, late = (_planner([dict(TRANSPORT, time=0.0)], issue_better=False) for _ in range(2))
    try:
        on_time.apply(dict(done, time=A - 2.0))
        task = on_time.next_task("amb-02", A + 6.0)
        on_time.apply({"type": "clock", "time": A + 7.5})
        assert late.next_task("amb-02", A + 6.0) == task
        late.apply(dict(done, time=A + 7.5, completed_at=A - 2.0))
        assert resp(late, "amb-02")["available_at"] == A + 6.0
        assert _facts(late) == _facts(on_time)
        plan = on_time.best()[0].to_json()
        scores = [engine.evaluate(p.scenario, engine.load_plan(p.scenario, plan)) for p in (on_time, late)]
        assert scores[0] == scores[1]
        assert_consistent(late)
    finally:
        on_time.close()
        late.close()


def test_a_restored_planner_knows_when_it_issued_a_task(tmp_path):
    """amb-02, carrying c003 (arriving at A), asks for its next task at A + 2, when the model has it
    at the hospital until A + 5; its arrival at A - 2 is reported after a snapshot: it set off
    when the handover ended, at A + 3, in the restored planner too."""
    p = _planner([dict(TRANSPORT, time=0.0)])
    try:
        A = cas(p, "c003")["in_transit"]["arrival"]
        assert p.next_task("amb-02", A + 2.0) is not None
        q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        try:
            for planner in (p, q):
                planner.apply(dict(_done(TRANSPORT), time=A + 7.5, completed_at=A - 2.0))
                assert resp(planner, "amb-02")["available_at"] == pytest.approx(A + 3.0, abs=1e-12)
        finally:
            q.close()
    finally:
        p.close()


def test_a_late_treatment_end_after_a_rescue_end_on_time_changes_the_chain_from_then():
    """c001 is rescued and treated (HART) from 0; the rescue is reported done at 10 on time, the
    treatment done at 8 only at 12: trapped and treated from 8 to 10, as had it been in time."""
    rescue, treat = dict(RESCUE, time=0.0), dict(TREAT, casualty="c001", time=0.0)
    on_time = _planner([rescue, treat, dict(_done(treat), time=8.0), dict(_done(rescue), time=10.0),
                        {"type": "clock", "time": 12.0}])
    late = _planner([rescue, treat, dict(_done(rescue), time=10.0), dict(_done(treat), time=12.0, completed_at=8.0)])
    try:
        assert _close(_facts(late), _facts(on_time))
        h = propagate(propagate(category_vector("urgent"), CHAINS[TRAPPED], 8.0), CHAINS[TRAPPED_TREATED], 2.0)
        assert cas(late, "c001")["health"] == pytest.approx(list(h), abs=1e-12)
        assert_consistent(late)
    finally:
        on_time.close()
        late.close()


def test_a_treatment_reported_done_after_the_pickup_counts_until_the_pickup():
    """c002 is treated from 0 (done at 8) and picked up by amb-02 at 9; the treatment's end
    reaches the planner at 12: accepted, and c002 was in the treated chain from 8 to 9."""
    treat, pickup = dict(TREAT, time=0.0), dict(TRANSPORT, casualty="c002", time=9.0)
    on_time = _planner([treat, dict(_done(treat), time=8.0), pickup, {"type": "clock", "time": 12.0}])
    late = _planner([treat, pickup, dict(_done(treat), time=12.0, completed_at=8.0)])
    try:
        assert _close(_facts(late), _facts(on_time))
        h = propagate(propagate(category_vector("delayed"), CHAINS[CCS], 8.0), CHAINS[CCS_TREATED], 1.0)
        assert cas(late, "c002")["health"] == pytest.approx(list(h), abs=1e-12)
    finally:
        on_time.close()
        late.close()


@pytest.mark.parametrize("beds", [0, 2])
def test_a_late_delivery_made_before_a_hospital_reported_its_beds_is_counted_by_the_report(beds):
    """c004 takes R1H12's one bed at t4; the hospital reports ``beds`` free at t4 + 0.5; c003's
    delivery at t4 - 0.25 is reported at t4 + 1: it took the bed (c004 was beyond it), and
    the beds reported stand."""
    p, t4 = _two_deliveries_to_one_bed()
    try:
        p.apply({"type": "task_completed", "time": t4, "responder": "amb-01", "task": "transport",
                 "casualty": "c004"})
        p.apply({"type": "hospital_capacity", "time": t4 + 0.5, "hospital": "R1H12", "capacity": beds})
        p.apply(dict(_done(TRANSPORT), time=t4 + 1.0, completed_at=t4 - 0.25))
        p3, p4 = _p_dead("immediate", 1.0, t4 - 0.25), _p_dead("delayed", 0.5, t4)
        assert p._model["delivered_fatalities"] == pytest.approx(p3 + p4 + (1.0 - p4) * RISK, abs=1e-12)
        assert hosp(p, "R1H12")["capacity"] == beds
    finally:
        p.close()


def test_which_delivery_at_one_time_loses_its_bed_does_not_change_with_a_snapshot(tmp_path):
    """Two deliveries at 12 take R1H12's two beds; a third made at 11 is reported at 13. The
    planner and one restored from its snapshot bump the same one."""
    p = _planner([{"type": "hospital_capacity", "time": 0.0, "hospital": "R1H12", "capacity": 2},
                  {"type": "responder_added", "time": 0.0,
                   "responder": {"id": "amb-03", "kind": "paramedic", "start": "aldgate"}},
                  {"type": "task_started", "time": 0.5, "responder": "amb-01", "task": "transport",
                   "casualty": "c004", "hospital": "R1H12"},
                  dict(TRANSPORT, time=1.0, hospital="R1H12"),
                  dict(TRANSPORT, time=8.0, responder="amb-03", casualty="c002", hospital="R1H12")])
    try:
        for rid, cid in (("amb-01", "c004"), ("amb-02", "c003")):
            p.apply({"type": "task_completed", "time": 12.0, "responder": rid, "task": "transport", "casualty": cid})
        q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        try:
            late = {"type": "task_completed", "time": 13.0, "completed_at": 11.0, "responder": "amb-03",
                    "task": "transport", "casualty": "c002"}
            for planner in (p, q):
                planner.apply(late)
            assert q._seen == p._seen
            assert q._model["delivered_fatalities"] == p._model["delivered_fatalities"]
            assert sum(not p._seen[c][1][3] for c in ("c002", "c003", "c004")) == 1
        finally:
            q.close()
    finally:
        p.close()


def test_a_snapshot_restores_a_delivery_whose_health_sums_to_one_within_the_tolerance(tmp_path):
    p = _planner([dict(TRANSPORT, time=0.0),
                  {"type": "health_observed", "time": 13.0, "casualty": "c003", "health": [0, 0, 0, 1.0000000005]}])
    try:
        p.apply(dict(_done(TRANSPORT), time=13.0))
        q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        assert q._seen == p._seen
        q.close()
    finally:
        p.close()


# --- cases a differential fuzzer found (on-time log against the same log with reports delayed)

def _s(t, rid, task, cid, hospital=None, **late):
    return {"type": "task_started", "time": t, "responder": rid, "task": task, "casualty": cid,
            **({"hospital": hospital} if hospital else {}), **late}


def _c(t, rid, task, cid, **late):
    return {"type": "task_completed", "time": t, "responder": rid, "task": task, "casualty": cid, **late}


def _clock(t):
    return {"type": "clock", "time": t}


FOUND = {
    # amb-02's next ride goes to the same hospital: both rides held at the clock look alike, and the
    # late delivery (or the overdue ride) moved amb-02 back to the first
    "next ride to the same hospital": (
        [_s(0, "amb-02", "transport", "c003", "R1H12"), _c(6, "amb-02", "transport", "c003"),
         _s(12, "amb-02", "transport", "c004", "R1H12"), _clock(30)],
        [_s(0, "amb-02", "transport", "c003", "R1H12"), _s(12, "amb-02", "transport", "c004", "R1H12"),
         _c(30, "amb-02", "transport", "c003", completed_at=6)]),
    # the treating team has set off with another casualty when its treatment's end is reported
    "treatment done after the pickup, its team on other work": (
        [_s(0, "amb-01", "treat", "c002"), _c(8, "amb-01", "treat", "c002"),
         _s(9, "amb-01", "transport", "c003", "R1H12"), _s(10, "amb-02", "transport", "c002", "RJ122"), _clock(12)],
        [_s(0, "amb-01", "treat", "c002"), _s(9, "amb-01", "transport", "c003", "R1H12"),
         _s(10, "amb-02", "transport", "c002", "RJ122"), _c(12, "amb-01", "treat", "c002", completed_at=8)]),
    # the start of older work reported after the start of newer work
    "older work reported after newer work": (
        [_s(0, "amb-02", "transport", "c003", "R1H12"), _c(6, "amb-02", "transport", "c003"),
         _s(15, "amb-02", "treat", "c004"), _clock(21)],
        [_s(15, "amb-02", "treat", "c004"), _s(20, "amb-02", "transport", "c003", "R1H12", started_at=0),
         _c(21, "amb-02", "transport", "c003", completed_at=6)]),
    # c002's ride, overdue and held at the clock, is ahead of c004 by index: the bed c004 was
    # denied for it was never given back when c002 turned out to have come first
    "a bed held for an overdue ride": (
        [_s(0, "amb-01", "transport", "c002", "R1H12"), _s(1, "amb-02", "transport", "c004", "R1H12"),
         _c(6, "amb-01", "transport", "c002"), {"type": "hospital_capacity", "time": 8, "hospital": "R1H12",
                                                  "capacity": 1},
         _c(12, "amb-02", "transport", "c004"), _clock(20)],
        [_s(0, "amb-01", "transport", "c002", "R1H12"), _s(1, "amb-02", "transport", "c004", "R1H12"),
         {"type": "hospital_capacity", "time": 8, "hospital": "R1H12", "capacity": 1},
         _c(12, "amb-02", "transport", "c004"), _c(20, "amb-01", "transport", "c002", completed_at=6)]),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_a_late_report_gives_the_model_the_report_on_time_gives(case):
    on_time, late = FOUND[case]
    a, b = _planner(on_time), _planner(late)
    try:
        assert _close(_facts(b), _facts(a))
        assert_consistent(b)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("before,after", [
    # amb-02 set off with c004 before its delivery of c003 was reported
    ([_s(0, "amb-02", "transport", "c003", "R1H12"), _s(12, "amb-02", "transport", "c004", "RJ122")],
     [_c(20, "amb-02", "transport", "c003", completed_at=6), _clock(25)]),
    # a treatment's end reported after the pickup: the restored planner knows when the pickup was
    ([_s(0, "amb-01", "treat", "c002"), _s(10, "amb-02", "transport", "c002", "RJ122")],
     [_c(12, "amb-01", "treat", "c002", completed_at=8), _clock(14)]),
])
def test_a_restored_planner_takes_late_reports_as_the_original_does(before, after, tmp_path):
    p = _planner(before)
    try:
        q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        try:
            for d in after:
                p.apply(d)
                q.apply(d)
            assert _close((q._model, q._seen, q._started), (p._model, p._seen, p._started))
        finally:
            q.close()
    finally:
        p.close()


def test_a_treatment_reported_done_after_the_delivery_counts_until_the_pickup(tmp_path):
    """c002's treatment (from 0, done at 8) is reported after its delivery: accepted (not an
    unknown casualty), its p_dead at arrival carried again as treated from 8 to the pickup at 10,
    and amb-01, still at it by its reports, free since 8: as had it been reported at 8. The same
    after a snapshot: the delivery's record keeps the history it needs."""
    treat, pickup = dict(TREAT, time=0.0), dict(TRANSPORT, casualty="c002", time=10.0)
    probe = _planner([treat, pickup])
    arrival = cas(probe, "c002")["in_transit"]["arrival"]
    probe.close()
    delivered = dict(_done(pickup), time=arrival)
    on_time = _planner([treat, dict(_done(treat), time=8.0), pickup, delivered, _clock(arrival + 2.0)])
    late = _planner([treat, pickup, delivered])
    try:
        restored = Planner.restore(*late.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        for p in (late, restored):
            p.apply(dict(_done(treat), time=arrival + 2.0, completed_at=8.0))
            assert _close(_facts(p), _facts(on_time))
            assert resp(p, "amb-01")["available_at"] == 8.0
        restored.close()
        h = propagate(propagate(propagate(category_vector("delayed"), CHAINS[CCS], 8.0), CHAINS[CCS_TREATED], 2.0),
                      CHAINS[AMBULANCE], arrival - 10.0)
        assert late._model["delivered_fatalities"] == pytest.approx(h[3], abs=1e-12)
    finally:
        on_time.close()
        late.close()


def test_a_delivery_reported_late_at_the_minute_of_a_report_of_beds_was_counted_by_it():
    """c004 and then c003 are delivered at t4 and R1H12 reports 2 free beds at t4; c003's
    delivery reaches the planner after the report: the report counted it (reported on time, a
    report at a delivery's minute came before it)."""
    beds = {"type": "hospital_capacity", "hospital": "R1H12", "capacity": 2}
    facts = []
    for late in (False, True):
        p, t4 = _two_deliveries_to_one_bed()
        try:
            p.apply({"type": "task_completed", "time": t4, "responder": "amb-01", "task": "transport",
                     "casualty": "c004"})
            if late:
                p.apply(dict(beds, time=t4))
                p.apply(dict(_done(TRANSPORT), time=t4 + 1.0, completed_at=t4))
            else:
                p.apply(dict(_done(TRANSPORT), time=t4))
                p.apply(dict(beds, time=t4))
                p.apply(_clock(t4 + 1.0))
            assert hosp(p, "R1H12")["capacity"] == 2
            facts.append(_facts(p))
        finally:
            p.close()
    assert facts[1] == facts[0]


def test_a_delivery_after_a_report_of_beds_at_its_minute_keeps_the_bed_the_report_gave():
    """R1H12 is full; c004 arrives at t4; the hospital reports 1 free bed at t4 + 0.5 and c003,
    arriving then, takes it; c004's delivery reaches the planner after both: it was beyond the
    beds (c003's bed was one the report counted free, not one c004 could have had)."""
    facts = []
    for late in (False, True):
        p, t4 = _two_deliveries_to_one_bed()
        try:
            p.apply({"type": "hospital_capacity", "time": t4 - 1.0, "hospital": "R1H12", "capacity": 0})
            c004 = {"type": "task_completed", "responder": "amb-01", "task": "transport", "casualty": "c004"}
            if not late:
                p.apply(dict(c004, time=t4))
            p.apply({"type": "hospital_capacity", "time": t4 + 0.5, "hospital": "R1H12", "capacity": 1})
            p.apply(dict(_done(TRANSPORT), time=t4 + 0.5))
            p.apply(dict(c004, time=t4 + 1.0, completed_at=t4) if late else _clock(t4 + 1.0))
            facts.append(_facts(p))
            p4 = _p_dead("delayed", 0.5, t4)
            assert p._seen["c004"][1][3] is False and p._seen["c003"][1][3] is True
            assert p._model["delivered_fatalities"] == pytest.approx(
                p4 + (1.0 - p4) * RISK + _p_dead("immediate", 1.0, t4 + 0.5), abs=1e-12)
        finally:
            p.close()
    assert _close(facts[1], facts[0])  # (the fatalities summed in another order)
