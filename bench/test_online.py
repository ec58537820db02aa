"""Online layer: latency from a delta to a repaired valid plan, and of issuing a task."""

from __future__ import annotations

import itertools

import engine


def _planner(london):
    p = engine.Planner(london, algorithm="annealing", seed=0)
    p.step(2_000)
    return p


def test_delta_to_repaired_plan(benchmark, london):
    """A health observation at paper size: validated, applied, incumbent repaired and re-scored."""
    p = _planner(london)
    ids = itertools.cycle([c.id for c in london.model.casualties])
    states = itertools.cycle(["immediate", "urgent", "delayed"])
    benchmark.pedantic(lambda: p.apply({"type": "health_observed", "time": p.time, "casualty": next(ids),
                                        "health": next(states)}), rounds=30, iterations=1)


def test_casualties_added_to_local_optimum(benchmark, london):
    """18 new casualties at a new site, then descent to a new local optimum."""
    def run():
        p = engine.Planner(london, algorithm="descent", seed=0)
        p.apply({"type": "casualties_added", "time": 0.0,
                 "sites": [{"id": "new-site", "lat": 51.5155, "lon": -0.0922}],
                 "casualties": [{"id": f"n{i:02d}", "site": "new-site", "health": "urgent"} for i in range(18)]})
        p.step(10_000)  # descent stops at its local optimum
        return p

    benchmark.pedantic(run, rounds=1, iterations=1)


def test_next_task(benchmark, london):
    """Issuing and pinning one task (the audit record included)."""
    p = _planner(london)
    teams = itertools.cycle([r.id for r in london.model.responders])

    def issue():
        rid = next(teams)
        p._pins.pop(rid, None)  # ask as if the previous issue had started, so each call issues anew
        return p.next_task(rid, p.time)

    benchmark.pedantic(issue, rounds=30, iterations=1)
