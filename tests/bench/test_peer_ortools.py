"""The OR-Tools routing peer (bench/peer_ortools.py): valid plans, the same timing as goldenhour,
the rescue precedence, determinism, work in progress, failure, and a sanity bound on London.

Every plan is scored by goldenhour's own evaluator; OR-Tools' times (``info["times"]``) are checked
against goldenhour's schedule of the same lists, which catches a wrong service time, travel time,
rounding direction or precedence in the model.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import engine
from bench import peer_ortools
from bench.peer_ortools import compare, solve_ortools
from engine import health
from engine.evaluate import evaluate_detail, schedule_records
from engine.generate import generate
from engine.plan import Plan, Task, check_plan, problem_arrays
from kernels.layout import ACTIVE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SCENARIOS = [("tiny", s, {}) for s in range(3)] + [
    ("random", s, dict(casualties=20, paramedics=4, fire=2, hospitals=3)) for s in range(2)]


def _routes_json(plan: Plan) -> dict:
    return {r: [t.to_json() for t in ts] for r, ts in plan.routes.items()}


def _check(sc, plan: Plan, info: dict):
    """The plan is valid and feasible, agrees with OR-Tools' times, and honours every precedence.

    Returns goldenhour's objective and schedule records.
    """
    assert check_plan(sc, _routes_json(plan)) == []
    assert set(plan.routes) == {r.id for r in sc.model.responders}
    assert all(t.kind != "treat" for ts in plan.routes.values() for t in ts)
    obj, W, arrays = evaluate_detail(sc, plan)
    assert obj.feasible and obj.expected_fatalities is not None
    recs = schedule_records(sc, W, arrays)
    rescue_end = {r["casualty"]: r["end"] for r in recs if r["task"] == "rescue"}
    transports = [r for r in recs if r["task"] == "transport"]
    P = problem_arrays(sc)
    assert len(transports) == int((P.status == ACTIVE).sum())
    for r in transports:
        c = r["casualty"]
        t = info["times"][c]
        # goldenhour: the pickup waits for the rescue
        if c in rescue_end:
            assert r["start"] >= rescue_end[c] - 1e-9
            # OR-Tools' own schedule honours the precedence too
            assert t["pickup"] >= t["rescue_end"] - 1e-9
        # same hospital; goldenhour's as-early-as-possible arrival is never later than OR-Tools'
        # (times rounded up), and only rounding apart
        assert t["hospital"] == r["hospital"]
        assert r["arrival"] <= t["arrival"] + 1e-9
        assert t["arrival"] - r["arrival"] < 0.5
    return obj, recs


@pytest.mark.parametrize("preset,seed,options", SCENARIOS)
def test_valid_feasible_and_consistent(preset, seed, options):
    sc = engine.load_scenario(generate(preset, seed=seed, **options))
    plan, info = solve_ortools(sc, 0.4 if preset == "tiny" else 1.0, seed=seed)
    obj, recs = _check(sc, plan, info)
    assert info["status"].startswith("ROUTING_")
    # nodes: a start per responder, the end, a rescue per trapped casualty, a pickup and 1..K+1
    # candidate deliveries per transport
    P = problem_arrays(sc)
    n_tr = int((P.status == ACTIVE).sum())
    task_nodes = info["nodes"] - len(sc.model.responders) - 1 - int(P.needs_rescue.sum())
    assert 2 * n_tr <= task_nodes <= (2 + min(3, len(P.hosp_loc))) * n_tr
    assert 0 <= obj.expected_fatalities <= len(sc.model.casualties)


def test_own_first_solution_is_valid_and_deterministic():
    """Without an initial plan OR-Tools builds its own; its first solution is reproducible."""
    sc = engine.load_scenario(generate("random", seed=3, casualties=20, paramedics=4, fire=2, hospitals=3))
    a, ia = solve_ortools(sc, 30.0, initial=None, solution_limit=1)
    b, ib = solve_ortools(sc, 30.0, initial=None, solution_limit=1)
    assert ia["started_from"] == "LOCAL_CHEAPEST_COST_INSERTION"
    _check(sc, a, ia)
    assert a.routes == b.routes
    assert ia["ortools_objective"] == ib["ortools_objective"]


def test_same_seed_and_solution_limit_give_the_same_plan():
    sc = engine.load_scenario(generate("random", seed=0, casualties=20, paramedics=4, fire=2, hospitals=3))
    a, ia = solve_ortools(sc, 60.0, seed=5, solution_limit=40)
    b, ib = solve_ortools(sc, 60.0, seed=5, solution_limit=40)
    assert ia["wall_s"] < 30 and ib["wall_s"] < 30  # stopped by the solution limit, not the clock
    assert a.routes == b.routes
    assert ia["ortools_objective"] == ib["ortools_objective"]
    assert ia["times"] == ib["times"]
    # GLS moved away from its start (else this would test nothing about the search)
    first, _ = solve_ortools(sc, 60.0, seed=5, solution_limit=1)
    assert first.routes != a.routes


def test_work_in_progress_dead_and_in_transit():
    """Known dead and in-transit casualties get nothing; rescues and treatments under way gate
    the pickup; a rescue under way needs no rescue task."""
    d = generate("tiny", seed=0)
    cas = d["casualties"]
    assert cas[0]["trapped"] and not cas[2]["trapped"]
    cas[0]["rescue_ends_at"] = 25.0
    cas[1]["health"] = "deceased"
    cas[2]["in_transit"] = {"hospital": d["hospitals"][0]["id"], "arrival": 4.0}
    cas[3]["treatment_ends_at"] = 30.0
    sc = engine.load_scenario(d)
    plan, info = solve_ortools(sc, 0.3)
    _check(sc, plan, info)
    tasks = [t for ts in plan.routes.values() for t in ts]
    assert {t.casualty for t in tasks} == {cas[0]["id"], cas[3]["id"]}
    assert all(t.kind == "transport" for t in tasks)
    assert info["times"][cas[0]["id"]]["pickup"] >= 25.0
    assert info["times"][cas[3]["id"]]["pickup"] >= 30.0
    obj, W, arrays = evaluate_detail(sc, plan)
    recs = {r["casualty"]: r for r in schedule_records(sc, W, arrays)}
    assert recs[cas[0]["id"]]["start"] >= 25.0 and recs[cas[3]["id"]]["start"] >= 30.0


def test_risk_curves_step_matrices_are_health_propagate_s_bits():
    """The risk curves' step matrices, each made once per chain and duration (``_Steps``), give
    ``health.propagate``'s results to the bit, whether made or read from the cache."""
    sc = engine.load_scenario(EXAMPLES / "london-5x18.json")
    steps = peer_ortools._Steps(sc.chains)
    rng = np.random.default_rng(0)
    deltas = np.concatenate([rng.uniform(0.0, 3.0, 40), rng.integers(1, 400, 40).astype(float),
                             rng.uniform(0.0, 500.0, 40), np.floor(rng.uniform(0.0, 50.0, 40)) + 0.25])
    for _ in range(2):  # the second pass reads every step from the cache
        for d in deltas:
            for k in range(len(sc.chains)):
                h = rng.dirichlet(np.ones(4))
                assert np.array_equal(steps.propagate(h, k, float(d)), health.propagate(h, sc.chains[k], float(d)))


def test_no_solution_raises():
    d = generate("tiny", seed=0)
    for r in d["responders"]:
        if r["kind"] == "paramedic":
            r["shift_end"] = 1.0  # no transport fits (the nearest hospital is minutes from the site)
    sc = engine.load_scenario(d)
    with pytest.raises(RuntimeError, match="no solution"):
        solve_ortools(sc, 0.3)
    d["responders"] = [r for r in d["responders"] if r["kind"] == "fire"]
    with pytest.raises(RuntimeError, match="no paramedic"):
        solve_ortools(engine.load_scenario(d), 0.3)


def test_budget_counts_reading_in_the_start(monkeypatch):
    """What reading the start plan into the closed model costs comes out of the search's budget
    (at 1 000 casualties it took most of a minute, and the search then ran its whole limit)."""
    read = peer_ortools._initial_assignment

    def slow_read(*args):
        time.sleep(0.5)
        return read(*args)

    monkeypatch.setattr(peer_ortools, "_initial_assignment", slow_read)
    sc = engine.load_scenario(generate("tiny", seed=0))
    plan, info = solve_ortools(sc, 0.8)
    assert info["build_s"] >= 0.5
    assert info["search_limit_s"] == pytest.approx(max(peer_ortools.MIN_SEARCH_S, 0.8 - info["build_s"]), abs=1e-3)
    _check(sc, plan, info)


def _one_paramedic(sc) -> Plan:
    """Everything by the first paramedic team (nearest hospital) and the first fire team."""
    P = problem_arrays(sc)
    m = sc.model
    medic = next(r.id for r in m.responders if r.kind == "paramedic")
    fire = next(r.id for r in m.responders if r.kind == "fire")
    routes = {r.id: [] for r in m.responders}
    for c, cas in enumerate(m.casualties):
        if P.needs_rescue[c]:
            routes[fire].append(Task("rescue", cas.id))
        if P.status[c] == ACTIVE:
            h = int(np.argmin(P.travel[P.site_loc[c], P.hosp_loc]))
            routes[medic].append(Task("transport", cas.id, m.hospitals[h].id))
    return Plan(routes, m.name, float(m.time))


def test_london_beats_absurd_baseline_and_rule():
    sc = engine.load_scenario(EXAMPLES / "london-5x18.json")
    plan, info = solve_ortools(sc, 2.0)
    assert info["wall_s"] < 2.0 + 1.5
    obj, _ = _check(sc, plan, info)
    baseline = engine.evaluate(sc, _one_paramedic(sc))
    rule = engine.solve(sc, algorithm="rule").objective
    assert obj.expected_fatalities < baseline.expected_fatalities
    assert obj.expected_fatalities < rule.expected_fatalities
    assert sum(1 for ts in plan.routes.values() if ts) >= 11  # every paramedic team is used


def test_compare_reports_both_scores():
    sc = engine.load_scenario(generate("tiny", seed=1))
    out = compare(sc, 0.3)
    for key in ("goldenhour_tabu", "ortools_gls", "ratio", "rule", "greedy"):
        assert out[key] is not None and out[key] >= 0
    assert out["ratio"] == pytest.approx(out["ortools_gls"] / out["goldenhour_tabu"])
    assert out["goldenhour_tabu_feasible"] and out["ortools_gls_feasible"]
