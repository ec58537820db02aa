"""Online layer: latency from a delta to a repaired valid plan, and of issuing a task."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

import engine
from bench.memo_staleness import new_site_casualties


def _planner(london, algorithm="annealing"):
    p = engine.Planner(london, algorithm=algorithm, seed=0)
    p.step(2_000 if algorithm == "annealing" else 10)  # a tabu iteration is a whole sweep
    return p


def _deltas(london, p):
    """An endless supply of valid deltas of each type, made against the planner's current model."""
    cids = itertools.cycle([c.id for c in london.model.casualties])
    hids = itertools.cycle([h.id for h in london.model.hospitals])
    states = itertools.cycle(["immediate", "urgent", "delayed"])
    site = london.model.sites[0].id
    n = itertools.count()
    return {
        "health_observed": lambda: {"type": "health_observed", "time": p.time, "casualty": next(cids),
                                    "health": next(states)},
        "clock": lambda: {"type": "clock", "time": p.time + 0.01},
        "hospital_capacity": lambda: {"type": "hospital_capacity", "time": p.time, "hospital": next(hids),
                                      "capacity": 3 + next(n) % 4},
        "duration_revised": lambda: {"type": "duration_revised", "time": p.time, "casualty": next(cids),
                                     "task": "treat", "minutes": 10 + next(n) % 5},
        "travel_changed": lambda: {"type": "travel_changed", "time": p.time, "factor": 1.01},
        "casualties_added": lambda: {"type": "casualties_added", "time": p.time,
                                     "casualties": [{"id": f"late{next(n)}", "site": site, "health": "urgent"}]},
        "responder_added": lambda: {"type": "responder_added", "time": p.time,
                                    "responder": {"id": f"extra{next(n)}", "kind": "paramedic",
                                                  "start": next(hids)}},
    }


def _startable(p, teams):
    """Issue tasks until one can be reported started now; its ``task_started`` delta."""
    for rid in teams:
        task = p.next_task(rid, p.time)
        cas = p._model["casualties"][p.scenario.casualty_index[task.casualty]] if task else None
        if task is None or (cas.get("trapped") and task.kind != "rescue"):
            continue  # nothing to do, or waiting for a rescue: ask the next team
        delta = {"type": "task_started", "time": p.time, "responder": rid, "task": task.kind,
                 "casualty": task.casualty}
        if task.hospital:
            delta["hospital"] = task.hospital
        return delta
    raise AssertionError("no team has a task it can start")


@pytest.mark.parametrize("kind", ["task_started", "task_completed"])
def test_work_reported_to_repaired_plan(benchmark, london, kind):
    """A team reports its issued task started (the casualty's work in progress, the team busy
    until it ends), or a started task done (a transport: the casualty delivered and removed)."""
    p = _planner(london)
    teams = itertools.cycle([r.id for r in london.model.responders])

    def setup():
        delta = _startable(p, teams)
        if kind == "task_completed":
            p.apply(delta)
            cas = p._model["casualties"][p.scenario.casualty_index[delta["casualty"]]]
            end = {"rescue": "rescue_ends_at", "treat": "treatment_ends_at"}.get(delta["task"])
            when = cas[end] if end else cas["in_transit"]["arrival"]
            delta = dict(delta, type="task_completed", time=max(p.time, when))
            delta.pop("hospital", None)
        return (delta,), {}

    benchmark.pedantic(p.apply, setup=setup, rounds=20, iterations=1)


@pytest.mark.parametrize("kind", ["health_observed", "clock", "hospital_capacity", "duration_revised",
                                  "travel_changed", "casualties_added", "responder_added"])
def test_delta_to_repaired_plan(benchmark, london, kind):
    """One delta at paper size: validated, applied, incumbent repaired and re-scored."""
    p = _planner(london)
    make = _deltas(london, p)[kind]
    benchmark.pedantic(lambda: p.apply(make()), rounds=30 if not kind.endswith("added") else 10, iterations=1)


def test_casualties_added_to_local_optimum(benchmark, london):
    """18 new casualties at a new site, from a plan already at a local optimum, to a new one."""
    def setup():
        p = engine.Planner(london, algorithm="descent", seed=0)
        p.step(10_000)  # descent stops at its local optimum (not timed)
        return (p,), {}

    def run(p):
        p.apply(new_site_casualties(18, 0.0))
        p.step(10_000)
        return p

    p = benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    benchmark.extra_info["expected_fatalities"] = p.best()[1].expected_fatalities


def test_next_task(benchmark, london):
    """Issuing and pinning one task (the audit record included)."""
    p = _planner(london)
    teams = itertools.cycle([r.id for r in london.model.responders])

    def issue():
        rid = next(teams)
        p._pins.pop(rid, None)  # ask as if the previous issue had started, so each call issues anew
        return p.next_task(rid, p.time)

    benchmark.pedantic(issue, rounds=30, iterations=1)


def test_next_task_audited(benchmark, london, tmp_path):
    """``test_next_task`` with an audit log: each issue's line is flushed and synced to disk
    before the call returns (``engine.audit``), so this adds what the disk takes for that."""
    p = engine.Planner(london, algorithm="annealing", seed=0, audit=tmp_path / "audit.jsonl")
    p.step(2_000)
    teams = itertools.cycle([r.id for r in london.model.responders])

    def issue():
        rid = next(teams)
        p._pins.pop(rid, None)  # ask as if the previous issue had started, so each call issues anew
        return p.next_task(rid, p.time)

    try:
        benchmark.pedantic(issue, rounds=30, iterations=1)
    finally:
        p.close()


def test_next_task_as_time_passes(benchmark, london):
    """Issuing at a later time than the model's, as teams ask in the field: the clock moves on
    (work in progress clamped), then the task is issued and pinned. Each round asks a planner
    made for it (untimed, its clock moved once) on behalf of a team with work that it has never
    issued to. (A team asked again after ``_pins`` is emptied by hand, as the other issue benches
    do, has its first task pinned in the plan already; setting off later moves that pinned start,
    so both plans would be scored afresh, which no real issue needs.)"""
    teams = [r.id for r in london.model.responders]
    rounds = itertools.count()

    def setup():
        p = _planner(london)
        p.apply({"type": "clock", "time": p.time + 0.01})  # its first move of the clock: untimed
        routes = p.best()[0].routes
        busy = [rid for rid in teams if routes[rid]]
        return (p, busy[next(rounds) % len(busy)]), {}

    def issue(p, rid):
        try:
            return p.next_task(rid, p.time + 0.01)
        finally:
            p.close()

    benchmark.pedantic(issue, setup=setup, rounds=30, iterations=1)


#: the pause between two issues under load
ISSUE_GAP_S = 0.004


def _observations(p, london, time_of, done, counts):
    """Feed ``p`` health observations at ``time_of()`` on a schedule of one a millisecond until
    ``done``, catching up after a late one as a queue of reports would (sleeping a millisecond
    minus each delta's time delivered 600-700 a second). ``counts`` gets [applied, rejected]."""
    ids = itertools.cycle([c.id for c in london.model.casualties])
    states = itertools.cycle(["immediate", "urgent", "delayed"])
    due = time.perf_counter()
    while not done.is_set():
        try:
            p.apply({"type": "health_observed", "time": time_of(), "casualty": next(ids), "health": next(states)})
            counts[0] += 1
        except engine.DeltaError:  # stamped before an issue moved the clock past it: too late
            counts[1] += 1
        due += 0.001
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)


def _percentiles(latencies) -> dict:
    ms = np.array(latencies) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


@pytest.mark.parametrize("algorithm", ["annealing", "tabu"])
def test_next_task_under_load(benchmark, london, algorithm):
    """``next_task`` while the background search runs and health observations arrive at 1 000/s
    (issues are asked for at about 200/s, each after an untimed pause of ``ISSUE_GAP_S``), all at
    the model's time.

    ``extra_info`` holds the p50/p99 of the issue latency, how many deltas landed meanwhile, and
    how often the search advanced (annealing chunks of 20 steps, or tabu moves: one sweep each).
    """
    p = _planner(london, algorithm)
    teams = itertools.cycle([r.id for r in london.model.responders])
    done, counts, latencies = threading.Event(), [0, 0], []

    def setup():  # untimed: as if the previous issue had started, so each call issues anew
        # issues paced at about 200 a second: asked back to back, they held the planner's lock
        # most of the time and the deltas could not arrive at 1 000 a second
        time.sleep(ISSUE_GAP_S)
        rid = next(teams)
        with p._lock.hold():
            p._pins.pop(rid, None)
        return (rid,), {}

    def issue(rid):
        t0 = time.perf_counter()
        task = p.next_task(rid, p.time)
        latencies.append(time.perf_counter() - t0)
        return task

    advanced, searched = [0], p._searched

    def counted(outcome):
        advanced[0] += 1
        searched(outcome)

    p._searched = counted
    feeder = threading.Thread(target=_observations, args=(p, london, lambda: p.time, done, counts), daemon=True)
    p.start()
    feeder.start()
    try:
        t0 = time.perf_counter()
        benchmark.pedantic(issue, setup=setup, rounds=1000, iterations=1)
        elapsed = time.perf_counter() - t0
    finally:
        done.set()
        feeder.join()
        p.stop()
    benchmark.extra_info.update(**_percentiles(latencies), deltas_per_s=counts[0] / elapsed,
                                search_advances_per_s=advanced[0] / elapsed)


#: planners the clock-moving load runs through, each asked once by every team with work
CLOCK_PLANNERS = 30


def _issues_as_the_clock_moves(london, algorithm: str, seed: int, latencies: list, counts: list) -> float:
    """One planner of ``test_next_task_under_load_as_the_clock_moves``; returns the seconds it
    was fed for."""
    p = engine.Planner(london, algorithm=algorithm, seed=seed)
    p.step(2_000 if algorithm == "annealing" else 10)
    t_start, w_start, lock, last = p.time, time.perf_counter(), threading.Lock(), [p.time]

    def now():  # the planner's start time plus the wall minutes since, never backwards
        with lock:
            last[0] = max(last[0], t_start + (time.perf_counter() - w_start) / 60)
            return last[0]

    done = threading.Event()
    feeder = threading.Thread(target=_observations, args=(p, london, now, done, counts), daemon=True)
    p.start()
    t0 = time.perf_counter()
    feeder.start()
    try:
        time.sleep(0.02)
        for rid in [r.id for r in london.model.responders]:
            time.sleep(ISSUE_GAP_S)
            if p.best()[0].routes[rid]:
                a = time.perf_counter()
                p.next_task(rid, now())
                latencies.append(time.perf_counter() - a)
        return time.perf_counter() - t0
    finally:
        done.set()
        feeder.join()
        p.close()


@pytest.mark.parametrize("algorithm", ["annealing", "tabu"])
def test_next_task_under_load_as_the_clock_moves(benchmark, london, algorithm):
    """``test_next_task_under_load`` as in the field: every observation and every issue is
    stamped with the time it is made (a minute of model time to a minute of wall time), so each
    issue moves the model's clock first. A team is asked only once (asked again, its first task
    is pinned in the plan already, and setting off later would move that pinned start), so the
    load runs through ``CLOCK_PLANNERS`` planners (untimed: made, searched from and fed for 20 ms
    before the first issue), each asked by every team with work, an issue every
    ``ISSUE_GAP_S``.

    ``extra_info``: the p50/p99 of the issue latency, the deltas landed a second, and how many
    were rejected, stamped before an issue moved the clock past them.
    """
    latencies, counts, elapsed = [], [0, 0], [0.0]

    def run():
        for k in range(CLOCK_PLANNERS):
            elapsed[0] += _issues_as_the_clock_moves(london, algorithm, k, latencies, counts)

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(**_percentiles(latencies), deltas_per_s=counts[0] / elapsed[0], rejected=counts[1])
