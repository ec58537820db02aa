"""The compiled evaluator (SPEC §6–§7) against the reference, hand computations and sampling.

- random awkward scenario/plan pairs (``factories``): kernel == ``reference`` (objective, every
  casualty's ``p_dead``, pickup and arrival, every task's start and end);
- the batch kernel == one evaluation at a time;
- small cases worked out by hand, with the arithmetic in the test;
- ``P_k(δ)`` of the kernels == the matrix-power definition, continuous, zero-length neutral;
- a Monte Carlo run of the chains agrees with ``p_dead``.
"""

from __future__ import annotations

import collections
import itertools
import json
import math

import numpy as np
import pytest

import engine
import factories
import reference
from conftest import run_batch
from engine.evaluate import evaluate_detail
from engine.health import power_tables
from engine.plan import Plan, Task, load_plan, problem_arrays
from kernels.evaluate import evaluate as kernel_evaluate
from kernels.evaluate import row_width
from kernels.health import fill_start_table
from kernels.health import propagate as kernel_propagate
from kernels.health import propagate_start as kernel_propagate_start
from kernels.layout import workspace_for
from kernels.objective import RANK_SORT_MAX

TOL = 1e-9
SEEDS = range(80)
CASES_PER_SEED = 25  # 80 x 25 = 2000 random scenario/plan pairs


def _cases(seed):
    """The ``CASES_PER_SEED`` (scenario dict, Scenario, Plan) triples of one seed."""
    rng = np.random.default_rng(seed)
    for _ in range(CASES_PER_SEED):
        d = factories.random_scenario(rng)
        sc = engine.load_scenario(d)
        yield d, sc, factories.random_plan(sc, rng)


def _repro(d, plan) -> str:
    return "scenario = " + json.dumps(d) + "\nplan = " + json.dumps(plan.to_json())


def _close(a, b, tol=TOL) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def compare(sc, plan, obj, W, arrays, ref) -> list[str]:
    """Every way the kernel's answer differs from the reference's (empty: they agree)."""
    out = []
    if obj.feasible != ref.feasible:
        out.append(f"feasible: kernel {obj.feasible}, reference {ref.feasible}")
    for key in ("expected_fatalities", "overflow_fatalities", "casualty_minutes"):
        a, b = getattr(obj, key), getattr(ref, key)
        if not _close(a, b):
            out.append(f"{key}: kernel {a}, reference {b}")
    starts, order, hosp, pins = arrays
    # every task's times (also the tasks timed before a cycle was found)
    for r, resp in enumerate(sc.model.responders):
        recs = ref.tasks[resp.id]
        timed = int(W.ptr[r] - starts[r])
        if timed != sum(x is not None for x in recs):
            out.append(f"{resp.id}: kernel timed {timed} tasks, reference {sum(x is not None for x in recs)}")
            continue
        for j in range(timed):
            s = int(starts[r]) + j
            if (W.start[s], W.end[s]) != (recs[j].start, recs[j].end):
                out.append(f"{resp.id}[{j}] {recs[j].kind} {recs[j].casualty}: kernel "
                           f"({W.start[s]!r}, {W.end[s]!r}), reference ({recs[j].start!r}, {recs[j].end!r})")
    if ref.cycle:
        return out
    for c, cas in enumerate(sc.model.casualties):
        if not _close(float(W.pdead[c]), ref.p_dead[c]):
            out.append(f"p_dead[{cas.id}]: kernel {W.pdead[c]!r}, reference {ref.p_dead[c]!r}")
        if ref.status[c] != "dead" and float(W.arrival[c]) != ref.arrival[c]:
            out.append(f"arrival[{cas.id}]: kernel {W.arrival[c]!r}, reference {ref.arrival[c]!r}")
        if ref.status[c] == "active" and float(W.pickup[c]) != ref.pickup[c]:
            out.append(f"pickup[{cas.id}]: kernel {W.pickup[c]!r}, reference {ref.pickup[c]!r}")
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_kernel_matches_reference_on_random_cases(seed, warm_jit):
    for i, (d, sc, plan) in enumerate(_cases(seed)):
        obj, W, arrays = evaluate_detail(sc, plan)
        ref = reference.evaluate(sc, plan)
        problems = compare(sc, plan, obj, W, arrays, ref)
        assert not problems, f"seed {seed} case {i}:\n" + "\n".join(problems) + "\n" + _repro(d, plan)


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_reference_with_crowded_hospitals(seed, warm_jit):
    """Hospitals admitting more than ``RANK_SORT_MAX`` are ordered by another sort than smaller
    ones (``kernels.objective.overflows``): up to 60 casualties over one to three hospitals of a
    few beds put admissions on both sides of it, with ties in the compact scenarios."""
    rng = np.random.default_rng(7000 + seed)
    sizes = []
    for i in range(12):
        d = factories.random_scenario(rng, max_casualties=60)
        sc = engine.load_scenario(d)
        plan = factories.random_plan(sc, rng)
        obj, W, arrays = evaluate_detail(sc, plan)
        problems = compare(sc, plan, obj, W, arrays, reference.evaluate(sc, plan))
        assert not problems, f"seed {seed} case {i}:\n" + "\n".join(problems) + "\n" + _repro(d, plan)
        if obj.expected_fatalities is not None:
            sizes += [int(n) for n in W.count[W.need]]
    assert max(sizes) > RANK_SORT_MAX and min(sizes) <= RANK_SORT_MAX, sizes


def _coverage(seed) -> collections.Counter:
    n = collections.Counter()
    for d, sc, plan in _cases(seed):
        ref = reference.evaluate(sc, plan)
        m = sc.model
        n["cases"] += 1
        n[m.network.kind] += 1
        n["time>0"] += m.time > 0
        n["cycle"] += ref.cycle
        n["shift violated, F known"] += ref.shift_violated and not ref.cycle
        n["non-default chains"] += bool(d.get("chains"))
        for i, c in enumerate(m.casualties):
            st = ref.status[i]
            n[st] += 1
            n["observed before time"] += c.observed_at is not None and c.observed_at < m.time
            if st == "active":
                n["trapped"] += c.trapped
                n["rescue under way"] += c.rescue_ends_at is not None
                n["treated"] += c.treated
                n["treatment under way"] += c.treatment_ends_at is not None
        by_id = {r.id: r for r in m.responders}
        rescued = {}
        for rid, recs in ref.tasks.items():
            for rec in recs:
                if rec is not None and rec.kind == "rescue":
                    rescued[rec.casualty] = rec.end
        for rid, recs in ref.tasks.items():
            tasks = plan.routes[rid]
            if tasks and tasks[0].pinned and by_id[rid].available_at is not None \
                    and by_id[rid].available_at < m.time:
                n["pinned first task set off before time"] += 1
            for t, rec in zip(tasks, recs):
                if rec is None:
                    continue
                n["zero-length task"] += rec.end == rec.start and t.kind != "transport"
                n["long task (> 1000 min)"] += rec.end - rec.start > 1000
                if t.kind == "treat" and t.casualty in rescued:
                    if by_id[rid].hart and rec.start < rescued[t.casualty]:
                        n["HART treat before the rescue ends"] += 1
                    if not by_id[rid].hart and rec.start == rescued[t.casualty]:
                        n["non-HART treat waiting for the rescue"] += 1
        if not ref.cycle:
            n["overflow > 0"] += ref.overflow_fatalities > 0
            for h, members in ref.admissions.items():
                arr = [ref.arrival[c] for c in members]
                cap = m.hospitals[h].capacity
                if len(arr) > cap and len(set(arr)) < len(arr):
                    n["arrival tie at a full hospital"] += 1
                if 0 < cap < len(arr) and arr[cap - 1] == arr[cap]:
                    n["tie across the last bed"] += 1
    return n


def test_random_cases_cover_the_awkward_rules():
    """The factories keep producing every corner case the equivalence test relies on."""
    n = collections.Counter()
    for seed in SEEDS:
        n += _coverage(seed)
    assert n["cases"] == len(SEEDS) * CASES_PER_SEED
    minimum = {
        "geo": 300, "graph": 200, "time>0": 200, "cycle": 50, "shift violated, F known": 50,
        "non-default chains": 200, "dead": 100, "in_transit": 100, "active": 1000,
        "observed before time": 200, "trapped": 200, "rescue under way": 100, "treated": 100,
        "treatment under way": 100, "pinned first task set off before time": 20,
        "zero-length task": 50, "long task (> 1000 min)": 5, "HART treat before the rescue ends": 20,
        "non-HART treat waiting for the rescue": 20, "overflow > 0": 100,
        "arrival tie at a full hospital": 20,
    }
    short = {k: (n[k], v) for k, v in minimum.items() if n[k] < v}
    assert not short, f"too few cases of (found, wanted): {short}"


def test_london_example_matches_reference(london, warm_jit):
    rng = np.random.default_rng(7)
    for mode in ("ordered", "ordered", "shuffled", "cycle"):
        plan = factories.random_plan(london, rng, mode=mode)
        obj, W, arrays = evaluate_detail(london, plan)
        ref = reference.evaluate(london, plan)
        assert not compare(london, plan, obj, W, arrays, ref)
        assert obj == engine.evaluate(london, plan)
    assert obj.expected_fatalities is None and not obj.feasible  # the last plan has a cycle


# --- batch ----------------------------------------------------------------------------------

def _rows(sc, plans):
    R, C = len(sc.model.responders), len(sc.model.casualties)
    arrays = [p.to_arrays(sc) for p in plans]
    rows = np.zeros((len(plans), row_width(R, C)), dtype=arrays[0][0].dtype)
    for i, (starts, order, hosp, _pins) in enumerate(arrays):
        assert len(starts) == R + 1 and len(order) == 3 * C and len(hosp) == C
        rows[i, : R + 1] = starts
        rows[i, R + 1: R + 1 + 3 * C] = order
        rows[i, R + 1 + 3 * C:] = hosp
    return rows, arrays


@pytest.mark.parametrize("seed", range(6))
def test_batch_equals_single_evaluations(seed, warm_jit):
    rng = np.random.default_rng(1000 + seed)
    checked = collections.Counter()
    for _ in range(8):
        sc = engine.load_scenario(factories.random_scenario(rng))
        R = len(sc.model.responders)
        n = int(rng.integers(1, 40))
        plans = [factories.random_plan(sc, rng, pin_share=0.0) for _ in range(n)]
        rows, arrays = _rows(sc, plans)
        # the batch shares one pins array: give each responder's first task the pinned start time
        pins = (rng.random(R) < 0.3).astype(arrays[0][3].dtype)
        P = problem_arrays(sc)
        out_F, out_o, out_T, out_s = run_batch(P, rows, pins, n_threads=int(rng.integers(1, 6)))
        W = workspace_for(P)
        for i, (starts, order, hosp, _p) in enumerate(arrays):
            F, o, T, s = kernel_evaluate(P, starts, order, hosp, pins, W)
            assert s == out_s[i]
            for a, b in ((F, out_F[i]), (o, out_o[i]), (T, out_T[i])):
                assert (math.isnan(a) and math.isnan(b)) or a == b, (i, a, b)
            # and the same as the reference with those pins
            pinned = Plan({r.id: [Task(t.kind, t.casualty, t.hospital, j == 0 and bool(pins[k]))
                                  for j, t in enumerate(plans[i].routes[r.id])]
                           for k, r in enumerate(sc.model.responders)}, sc.model.name, sc.model.time)
            ref = reference.evaluate(sc, pinned)
            assert _close(None if math.isnan(F) else F, ref.expected_fatalities)
            assert _close(None if math.isnan(T) else T, ref.casualty_minutes)
            assert (s == 0) == ref.feasible and (s == 1) == ref.cycle
            checked["cycle" if ref.cycle else "feasible" if ref.feasible else "shift"] += 1
    assert checked["feasible"] > 0


def test_batch_of_london_plans(london, warm_jit):
    rng = np.random.default_rng(3)
    plans = [factories.random_plan(london, rng, mode="ordered", pin_share=0.0) for _ in range(50)]
    rows, arrays = _rows(london, plans)
    P = problem_arrays(london)
    out = run_batch(P, rows, np.zeros(len(london.model.responders), dtype=arrays[0][3].dtype))
    for i, plan in enumerate(plans):
        obj = engine.evaluate(london, plan)
        assert out[0][i] == obj.expected_fatalities
        assert out[1][i] == obj.overflow_fatalities
        assert out[2][i] == obj.casualty_minutes
        assert (out[3][i] == 0) == obj.feasible
    assert len(set(out[0])) > 40  # really different plans


# --- cases worked out by hand -------------------------------------------------------------------

def _graph(nodes, edges):
    """A graph network; ``nodes`` ids, ``edges`` (a, b, minutes) two-way."""
    return {"kind": "graph",
            "nodes": [{"id": n, "lat": 0.0, "lon": 0.01 * i} for i, n in enumerate(nodes)],
            "edges": [{"from": a, "to": b, "minutes": m} for a, b, m in edges]}


def _scenario(network, hospitals, sites, responders, casualties, **extra):
    return {"format": "goldenhour.scenario/1", "network": network, "hospitals": hospitals,
            "sites": sites, "responders": responders, "casualties": casualties, **extra}


def _plan(routes):
    return {"format": "goldenhour.plan/1",
            "routes": {r: [dict(zip(("task", "casualty", "hospital"), t)) for t in ts] for r, ts in routes.items()}}


def _step(u, i, d, b, c):
    """One minute of a default-style chain on (urgent, immediate, dead) with no delayed mass:
    urgent -> immediate with probability b, immediate -> dead with probability c."""
    return u * (1 - b), u * b + i * (1 - c), d + i * c


def test_one_immediate_casualty_one_ambulance(warm_jit):
    # H --7 min-- S. The ambulance leaves H at 0, reaches S at 0 + 7 = 7 and picks up at once;
    # arrival = 7 + load 2 + drive 7 = 16; the task ends after handover 5 at 21.
    # Health: 7 min in the ccs (immediate -> deceased 0.025 per minute), then 9 min in the
    # ambulance (0.0125 per minute); immediate only ever stays or dies, so
    # P(alive) = 0.975^7 * 0.9875^9.
    d = _scenario(_graph(["h", "s"], [("h", "s", 7.0)]), [{"id": "H", "node": "h", "capacity": 1}],
                  [{"id": "S", "node": "s"}], [{"id": "amb", "kind": "paramedic", "start": "H"}],
                  [{"id": "c", "site": "S", "health": "immediate"}])
    plan = _plan({"amb": [("transport", "c", "H")]})
    obj, W, _ = evaluate_detail(d, plan)
    p = 1 - 0.975**7 * 0.9875**9
    assert W.pickup[0] == 7.0 and W.arrival[0] == 16.0
    assert (W.start[0], W.end[0]) == (7.0, 21.0)
    assert W.pdead[0] == pytest.approx(p, abs=1e-12)
    assert obj.expected_fatalities == pytest.approx(p, abs=1e-12)
    assert obj.overflow_fatalities == 0.0 and obj.casualty_minutes == 16.0 and obj.feasible


def test_fractional_minutes_two_state_steps(warm_jit):
    # H --1.5 min-- S, an urgent casualty, scenario time 3, observed at 1.
    # The ambulance leaves at 3, picks up at 3 + 1.5 = 4.5, arrives 4.5 + 2 + 1.5 = 8.
    # ccs segment: 1 -> 4.5 = 3.5 minutes = 3 whole steps then half a step (b = 0.01, c = 0.025):
    u, i, dd = 1.0, 0.0, 0.0
    for _ in range(3):
        u, i, dd = _step(u, i, dd, 0.01, 0.025)
    # after 1 step: (0.99, 0.01, 0); 2: (0.9801, 0.0099 + 0.00975, 0.00025); ...
    nu, ni, nd = _step(u, i, dd, 0.01, 0.025)
    u, i, dd = 0.5 * u + 0.5 * nu, 0.5 * i + 0.5 * ni, 0.5 * dd + 0.5 * nd  # (1 - f) h + f h P
    # ambulance: 4.5 -> 8 = 3.5 minutes (b = 0.005, c = 0.0125)
    for _ in range(3):
        u, i, dd = _step(u, i, dd, 0.005, 0.0125)
    nu, ni, nd = _step(u, i, dd, 0.005, 0.0125)
    dd = 0.5 * dd + 0.5 * nd
    d = _scenario(_graph(["h", "s"], [("h", "s", 1.5)]), [{"id": "H", "node": "h", "capacity": 3}],
                  [{"id": "S", "node": "s"}], [{"id": "amb", "kind": "paramedic", "start": "H"}],
                  [{"id": "c", "site": "S", "health": "urgent", "observed_at": 1.0}], time=3.0)
    obj, W, _ = evaluate_detail(d, _plan({"amb": [("transport", "c", "H")]}))
    assert W.pickup[0] == 4.5 and W.arrival[0] == 8.0
    assert W.pdead[0] == pytest.approx(dd, abs=1e-14)
    assert obj.casualty_minutes == 7.0  # 8 - observed 1
    # the first two steps of the ccs part, by hand
    h = reference.propagate([0, 1, 0, 0], engine.load_scenario(d).chains[1], 1.5)
    assert h == pytest.approx([0, 0.5 * 0.99 + 0.5 * 0.9801, 0.5 * 0.01 + 0.5 * 0.01965, 0.5 * 0.00025], abs=1e-15)


def _trapped_case(hart: bool):
    # F --4-- S --6-- H; fire team at F, paramedic at H; an immediate casualty trapped at S,
    # rescue 12 min, treatment 6 min.
    d = _scenario(_graph(["f", "s", "h"], [("f", "s", 4.0), ("s", "h", 6.0)]),
                  [{"id": "H", "node": "h", "capacity": 1}], [{"id": "S", "node": "s"}],
                  [{"id": "amb", "kind": "paramedic", "start": "H", "hart": hart},
                   {"id": "fire", "kind": "fire", "start": "F"}],
                  [{"id": "c", "site": "S", "health": "immediate", "trapped": True,
                    "rescue_minutes": 12.0, "treatment_minutes": 6.0}],
                  stations=[{"id": "F", "node": "f"}])
    plan = _plan({"amb": [("treat", "c"), ("transport", "c", "H")], "fire": [("rescue", "c")]})
    return evaluate_detail(d, plan)


def test_trapped_casualty_hart_treats_before_the_rescue_ends(warm_jit):
    obj, W, (starts, order, hosp, pins) = _trapped_case(hart=True)
    # amb slots 0 (treat), 1 (transport); fire slot 2 (rescue).
    # Rescue: arrive 0 + 4 = 4, ends 4 + 12 = 16. HART treat: arrive 0 + 6 = 6, starts at once
    # (still trapped), ends 6 + 6 = 12. Transport: arrive 12 + 0 = 12, pickup max(12, rescued 16,
    # treated 12) = 16, arrival 16 + 2 + 6 = 24, end 29.
    assert (W.start[2], W.end[2]) == (4.0, 16.0)
    assert (W.start[0], W.end[0]) == (6.0, 12.0)
    assert (W.start[1], W.end[1], W.arrival[0]) == (16.0, 29.0, 24.0)
    # Health: trapped 0-12 (0.04/min; the treated variant applies from the treatment's END),
    # trapped_treated 12-16 (0.5 * 0.04 = 0.02/min), ccs_treated 16-16 (nothing), ambulance 16-24.
    p = 1 - 0.96**12 * 0.98**4 * 0.9875**8
    assert W.pdead[0] == pytest.approx(p, abs=1e-12)
    assert obj.casualty_minutes == 24.0


def test_trapped_casualty_non_hart_treat_waits_for_the_rescue(warm_jit):
    obj, W, _ = _trapped_case(hart=False)
    # Non-HART: the treat waits for the rescue: start max(6, 16) = 16, end 22. Transport: arrive
    # 22, pickup 22, arrival 22 + 2 + 6 = 30, end 35.
    assert (W.start[0], W.end[0]) == (16.0, 22.0)
    assert (W.start[1], W.end[1], W.arrival[0]) == (22.0, 35.0, 30.0)
    # Health: trapped 0-16, ccs (untreated while being treated) 16-22, ambulance 22-30.
    p = 1 - 0.96**16 * 0.975**6 * 0.9875**8
    assert W.pdead[0] == pytest.approx(p, abs=1e-12)
    assert obj.casualty_minutes == 30.0
    assert obj.expected_fatalities > _trapped_case(hart=True)[0].expected_fatalities


@pytest.mark.parametrize("listed", list(itertools.permutations(("fire", "medic", "amb"))))
def test_a_transport_waits_for_a_rescue_then_for_a_treatment_in_any_responder_order(listed, warm_jit):
    # F --4-- S --6-- H. The fire team rescues c (trapped, 12 min); paramedic "medic" (not HART,
    # from H) treats it once freed (6 min); ambulance "amb" (from H) carries it, so it waits
    # for the rescue and then for the treatment, whichever responder the schedule takes first.
    # Rescue 4-16. Treat: arrives 6, starts max(6, 16) = 16, ends 22. Transport: arrives 6,
    # picks up max(6, rescued 16, treated 22) = 22, arrival 22 + 2 + 6 = 30, ends 35. Then amb
    # carries d (not trapped): back at S at 35 + 6 = 41, picks up 41, arrival 49, ends 54.
    resp = {"fire": {"id": "fire", "kind": "fire", "start": "F"},
            "medic": {"id": "medic", "kind": "paramedic", "start": "H"},
            "amb": {"id": "amb", "kind": "paramedic", "start": "H"}}
    d = _scenario(_graph(["f", "s", "h"], [("f", "s", 4.0), ("s", "h", 6.0)]),
                  [{"id": "H", "node": "h", "capacity": 5}], [{"id": "S", "node": "s"}],
                  [resp[r] for r in listed],
                  [{"id": "c", "site": "S", "health": "immediate", "trapped": True,
                    "rescue_minutes": 12.0, "treatment_minutes": 6.0},
                   {"id": "d", "site": "S", "health": "urgent"}],
                  stations=[{"id": "F", "node": "f"}])
    plan = _plan({"amb": [("transport", "c", "H"), ("transport", "d", "H")], "fire": [("rescue", "c")],
                  "medic": [("treat", "c")]})
    obj, W, (starts, order, hosp, pins) = evaluate_detail(d, plan)
    times = {}
    for r, rid in enumerate(listed):
        times[rid] = [(W.start[s], W.end[s]) for s in range(starts[r], starts[r + 1])]
    assert times == {"fire": [(4.0, 16.0)], "medic": [(16.0, 22.0)], "amb": [(22.0, 35.0), (41.0, 54.0)]}
    assert (W.pickup[0], W.arrival[0], W.pickup[1], W.arrival[1]) == (22.0, 30.0, 41.0, 49.0)
    assert obj.feasible and obj.casualty_minutes == 30.0 + 49.0
    sc = engine.load_scenario(d)
    plan = load_plan(sc, plan)
    assert not compare(sc, plan, obj, W, (starts, order, hosp, pins), reference.evaluate(sc, plan))


def _tie_case(first: str, capacity: int = 1):
    # Site S and hospital H share node x: travel 0. Both ambulances wait at H; each reaches S at 0,
    # picks up at 0 and arrives at 0 + 2 + 0 = 2: a tie at H, broken by casualty index.
    cas = {"imm": {"id": "imm", "site": "S", "health": "immediate"},
           "del": {"id": "del", "site": "S", "health": "delayed"}}
    order = [first, "del" if first == "imm" else "imm"]
    d = _scenario(_graph(["x", "y"], [("x", "y", 3.0)]),
                  [{"id": "H", "node": "x", "capacity": capacity, "overflow_risk": 0.1}],
                  [{"id": "S", "node": "x"}],
                  [{"id": "a0", "kind": "paramedic", "start": "H"}, {"id": "a1", "kind": "paramedic", "start": "H"}],
                  [cas[k] for k in order])
    # the responder order is the reverse of the casualty order, so only the casualty index can break the tie
    plan = _plan({"a0": [("transport", order[1], "H")], "a1": [("transport", order[0], "H")]})
    return evaluate_detail(d, plan)


def test_overflow_tie_goes_to_the_lower_casualty_index(warm_jit):
    # p_dead(immediate) = 1 - 0.9875^2 (2 minutes in the ambulance, 0 in the ccs);
    # p_dead(delayed) = 0 exactly (dying takes at least 3 one-step transitions).
    p_imm = 1 - 0.9875**2
    obj, W, _ = _tie_case(first="imm")
    assert W.arrival[0] == W.arrival[1] == 2.0
    assert W.pdead[1] == 0.0
    # the delayed casualty (index 1) gets no bed: (1 - 0) * 0.1
    assert obj.overflow_fatalities == pytest.approx(0.1, abs=1e-15)
    assert obj.expected_fatalities == pytest.approx(p_imm + 0.1, abs=1e-14)
    # listed the other way round, the immediate casualty (now index 1) gets no bed
    obj, W, _ = _tie_case(first="del")
    assert obj.overflow_fatalities == pytest.approx(0.9875**2 * 0.1, abs=1e-15)
    assert obj.expected_fatalities == pytest.approx(p_imm + 0.9875**2 * 0.1, abs=1e-14)
    # capacity 0: both overflow
    obj, W, _ = _tie_case(first="imm", capacity=0)
    assert obj.overflow_fatalities == pytest.approx(0.1 + 0.9875**2 * 0.1, abs=1e-15)
    # capacity 2: nobody
    obj, W, _ = _tie_case(first="imm", capacity=2)
    assert obj.overflow_fatalities == 0.0
    assert obj.casualty_minutes == 4.0


def test_work_in_progress_by_hand(warm_jit):
    # time 10; H --5-- S. One casualty in transit to H arriving at 12 (observed at 4, immediate),
    # one treated casualty (observed at 10, immediate) and a casualty whose treatment ends at 20.
    # The ambulance is free at max(available_at 2, time 10) = 10; no task is pinned.
    d = _scenario(_graph(["h", "s"], [("h", "s", 5.0)]), [{"id": "H", "node": "h", "capacity": 1}],
                  [{"id": "S", "node": "s"}], [{"id": "amb", "kind": "paramedic", "start": "H", "available_at": 2.0}],
                  [{"id": "moving", "site": "S", "health": "immediate", "observed_at": 4.0,
                    "in_transit": {"hospital": "H", "arrival": 12.0}},
                   {"id": "done", "site": "S", "health": "immediate", "treated": True},
                   {"id": "doing", "site": "S", "health": "immediate", "treatment_ends_at": 20.0},
                   {"id": "gone", "site": "S", "health": [0.0, 0.0, 0.0, 1.0], "trapped": True}],
                  time=10.0, delivered_fatalities=0.5)
    plan = _plan({"amb": [("transport", "done", "H"), ("transport", "doing", "H")]})
    obj, W, _ = evaluate_detail(d, plan)
    # done: arrive 10 + 5 = 15, pickup 15, arrival 15 + 2 + 5 = 22, end 27; ccs_treated 10-15
    # (immediate -> dead 0.5 * 0.025 = 0.0125/min), ambulance 15-22.
    # doing: the ambulance is back at H: arrive 27 + 5 = 32 (> treatment end 20), pickup 32,
    # arrival 32 + 2 + 5 = 39, end 44; ccs 10-20 (0.025), ccs_treated 20-32 (0.0125), ambulance 32-39.
    # moving: ambulance 4-12.
    p_moving = 1 - 0.9875**8
    p_done = 1 - 0.9875**5 * 0.9875**7
    p_doing = 1 - 0.975**10 * 0.9875**12 * 0.9875**7
    assert (W.arrival[1], W.arrival[2]) == (22.0, 39.0)
    assert list(W.pdead[:4]) == pytest.approx([p_moving, p_done, p_doing, 1.0], abs=1e-12)
    # H has 1 bed: moving (12) takes it, done (22) and doing (39) overflow at the scenario's 0.05
    overflow = (1 - p_done) * 0.05 + (1 - p_doing) * 0.05
    assert obj.overflow_fatalities == pytest.approx(overflow, abs=1e-12)
    assert obj.expected_fatalities == pytest.approx(0.5 + p_moving + p_done + p_doing + 1 + overflow, abs=1e-12)
    # T: (12 - 4) + (22 - 10) + (39 - 10); the known-dead casualty adds nothing
    assert obj.casualty_minutes == 8 + 12 + 29


def test_pinned_first_task_sets_off_at_available_at_and_shift_end(warm_jit):
    # time 10, the ambulance set off from H at 4 on an issued transport: free at 4 (not 10).
    d = _scenario(_graph(["h", "s"], [("h", "s", 5.0)]), [{"id": "H", "node": "h", "capacity": 1}],
                  [{"id": "S", "node": "s"}],
                  [{"id": "amb", "kind": "paramedic", "start": "H", "available_at": 4.0, "shift_end": 16.0}],
                  [{"id": "c", "site": "S", "health": "urgent"}], time=10.0)
    pinned = {"format": "goldenhour.plan/1", "routes": {"amb": [
        {"task": "transport", "casualty": "c", "hospital": "H", "pinned": True}]}}
    obj, W, _ = evaluate_detail(d, pinned)
    # arrive 4 + 5 = 9, but the transport is not reported started, so by the model's time 10
    # it has not started: pickup 10 (kernels/schedule.py), arrival 10 + 2 + 5 = 17, end 22 > shift
    # end 16: infeasible, but scored
    assert (W.start[0], W.end[0], W.arrival[0]) == (10.0, 22.0, 17.0)
    assert not obj.feasible and obj.expected_fatalities is not None
    assert obj.casualty_minutes == 7.0  # 17 - observed 10
    d["casualties"][0]["observed_at"] = 8.0  # observed earlier: still not picked up before 10
    obj, W, _ = evaluate_detail(d, pinned)
    assert (W.start[0], W.end[0], W.arrival[0]) == (10.0, 22.0, 17.0)
    assert obj.casualty_minutes == 9.0  # 17 - observed 8
    del d["casualties"][0]["observed_at"]
    unpinned = _plan({"amb": [("transport", "c", "H")]})
    obj, W, _ = evaluate_detail(d, unpinned)
    # free at max(4, 10) = 10: pickup 10 + 5 = 15, arrival 15 + 2 + 5 = 22, end 27
    assert (W.start[0], W.end[0]) == (15.0, 27.0)
    d["responders"][0]["shift_end"] = 27.0 - 1e-10  # within the 1e-9 tolerance
    assert evaluate_detail(d, unpinned)[0].feasible
    d["responders"][0]["shift_end"] = 27.0 - 1e-8
    assert not evaluate_detail(d, unpinned)[0].feasible


def test_a_silent_crew_s_work_starts_no_earlier_than_the_model_s_time(warm_jit):
    """Issued at 4 and never reported started, by the letter of SPEC §6 the transport was done
    by 21 and the next, never issued, by 33: at 60 the plan still had both in the past, and
    the expected fatalities stopped moving with the clock."""
    d = _scenario(_graph(["h", "s"], [("h", "s", 5.0)]), [{"id": "H", "node": "h", "capacity": 2}],
                  [{"id": "S", "node": "s"}], [{"id": "amb", "kind": "paramedic", "start": "H", "available_at": 4.0}],
                  [{"id": "c", "site": "S", "health": "urgent", "observed_at": 0.0},
                   {"id": "d", "site": "S", "health": "immediate", "observed_at": 0.0}], time=60.0)
    plan = {"format": "goldenhour.plan/1", "routes": {"amb": [
        {"task": "transport", "casualty": "c", "hospital": "H", "pinned": True},
        {"task": "transport", "casualty": "d", "hospital": "H"}]}}
    obj, W, _ = evaluate_detail(d, plan)
    # c: on site at 9 but not picked up by 60: pickup 60, arrival 67, end 72; d: back at 72 + 5
    assert (W.start[0], W.arrival[0], W.end[0]) == (60.0, 67.0, 72.0)
    assert (W.start[1], W.arrival[1], W.end[1]) == (77.0, 84.0, 89.0)
    assert obj.casualty_minutes == 67.0 + 84.0
    # whole minutes of the default chains (SPEC §3): the ccs from 0 to each pickup, then 7 in
    # the ambulance
    ccs, ambulance = _rate_chain(0.002, 0.010, 0.025), _rate_chain(0.001, 0.005, 0.0125)
    mp = np.linalg.matrix_power
    p_c = (np.array([0.0, 1.0, 0.0, 0.0]) @ mp(ccs, 60) @ mp(ambulance, 7))[3]
    p_d = (np.array([0.0, 0.0, 1.0, 0.0]) @ mp(ccs, 77) @ mp(ambulance, 7))[3]
    assert obj.expected_fatalities == pytest.approx(p_c + p_d, abs=1e-12)


def _rate_chain(a: float, b: float, c: float) -> np.ndarray:
    """A one-step deterioration chain: delayed -> urgent ``a``, urgent -> immediate ``b``,
    immediate -> deceased ``c`` per minute (SPEC §3's table)."""
    return np.array([[1 - a, a, 0, 0], [0, 1 - b, b, 0], [0, 0, 1 - c, c], [0, 0, 0, 1.0]])


def test_wait_cycle_has_no_objective(warm_jit):
    d = _scenario(_graph(["h", "s"], [("h", "s", 5.0)]), [{"id": "H", "node": "h", "capacity": 1}],
                  [{"id": "S", "node": "s"}],
                  [{"id": "a", "kind": "paramedic", "start": "H"}, {"id": "b", "kind": "paramedic", "start": "H"}],
                  [{"id": "x", "site": "S", "health": "urgent"}, {"id": "y", "site": "S", "health": "urgent"}])
    # the transport before the treat of the same casualty on one responder
    obj = engine.evaluate(d, _plan({"a": [("transport", "x", "H"), ("treat", "x")], "b": [("transport", "y", "H")]}))
    assert obj.expected_fatalities is None and obj.casualty_minutes is None and not obj.feasible
    # two responders waiting on each other
    obj = engine.evaluate(d, _plan({"a": [("transport", "y", "H"), ("treat", "x")],
                                    "b": [("transport", "x", "H"), ("treat", "y")]}))
    assert obj.expected_fatalities is None and not obj.feasible
    # the same tasks in a consistent order: feasible, and b waits for a's treat of x
    obj, W, _ = evaluate_detail(d, _plan({"a": [("treat", "x"), ("transport", "y", "H")],
                                          "b": [("treat", "y"), ("transport", "x", "H")]}))
    assert obj.feasible
    # a: treat x 5-15; b: treat y 5-15, then transport x: arrive 15, pickup max(15, 15) = 15,
    # arrival 22; a: transport y: arrive 15, pickup 15, arrival 22: a tie, y (index 1) overflows
    assert W.arrival[0] == W.arrival[1] == 22.0
    assert obj.overflow_fatalities == pytest.approx((1 - W.pdead[1]) * 0.05, abs=1e-15)


# --- P_k(δ) -------------------------------------------------------------------------------------

# around the power table's end (256 minutes) and its multiples: a fraction after its last row,
# whole multiples of it, and a fraction a row before a multiple
DELTAS = (0.0, 0.5, 1.0, 254.5, 255.7, 256.0, 257.3, 511.5, 512.0, 767.25, 10000.25)


def _chains(rng):
    """Five chains: the defaults (triangular) for half, random non-triangular ones otherwise."""
    d = {"format": "goldenhour.scenario/1", "network": {"kind": "geo", "speed_kmh": 30.0},
         "hospitals": [{"id": "H", "lat": 0.0, "lon": 0.0, "capacity": 1}], "sites": [], "responders": [],
         "casualties": [], "chains": {k: factories.random_chain(rng) for k in ("ccs", "ambulance", "ccs_treated")}}
    return engine.load_scenario(d).chains


def _kernel_h(h, env, delta, small, big, chains):
    return np.array(kernel_propagate(float(h[0]), float(h[1]), float(h[2]), float(h[3]), env, float(delta),
                                     small, big))


@pytest.mark.parametrize("delta", DELTAS)
def test_propagation_equals_matrix_power_definition(delta, rng, warm_jit):
    chains = _chains(rng)
    small, big = power_tables(chains)
    for env in range(5):
        for h in (np.eye(4)[0], np.eye(4)[2], rng.dirichlet(np.ones(4))):
            n = math.floor(delta)
            f = delta - n
            want = h @ (np.linalg.matrix_power(chains[env], n) @ ((1 - f) * np.eye(4) + f * chains[env]))
            got = _kernel_h(h, env, delta, small, big, chains)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
            assert got.sum() == pytest.approx(1.0, abs=1e-12) and got.min() >= -1e-15
            np.testing.assert_allclose(reference.propagate(h, chains[env], delta), want, rtol=0, atol=1e-15)


def test_a_start_row_gives_propagate_s_bits_within_the_table_and_beyond(rng, warm_jit):
    """``propagate_start`` reads the first row(s) off a start table instead of multiplying, within
    the power table and beyond it: the same numbers to the bit (so a casualty's score does not
    depend on whether its start was tabled), and the definition's to 1e-12."""
    chains = _chains(rng)
    small, big = power_tables(chains)
    h = rng.dirichlet(np.ones(4), size=5)
    table = np.empty((5, small.shape[1], 4))
    fill_start_table(h, np.arange(5), small, table)
    for env in range(5):
        for delta in DELTAS[1:] + (255.0, 255.5, 511.0, 767.999, 65791.5):
            args = (float(h[env, 0]), float(h[env, 1]), float(h[env, 2]), float(h[env, 3]), env, delta, small, big)
            got = kernel_propagate_start(*args, table, env)
            assert got == kernel_propagate(*args)
            n = math.floor(delta)
            f = delta - n
            want = h[env] @ (np.linalg.matrix_power(chains[env], n) @ ((1 - f) * np.eye(4) + f * chains[env]))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 17, 255, 256, 257, 512, 1000])
def test_propagation_is_continuous_at_whole_minutes(n, rng, warm_jit):
    chains = _chains(rng)
    small, big = power_tables(chains)
    h = rng.dirichlet(np.ones(4))
    for env in range(5):
        at = _kernel_h(h, env, n, small, big, chains)
        np.testing.assert_allclose(at, h @ np.linalg.matrix_power(chains[env], n), rtol=0, atol=1e-12)
        for eps in (1e-9, 1e-6):
            below = _kernel_h(h, env, n - eps, small, big, chains)
            above = _kernel_h(h, env, n + eps, small, big, chains)
            # |P(n ± eps) - P^n| <= eps * |P - I| <= 2 eps per entry
            assert np.abs(below - at).max() <= 2 * eps + 1e-12
            assert np.abs(above - at).max() <= 2 * eps + 1e-12


def test_zero_length_segment_changes_nothing(rng, warm_jit):
    chains = _chains(rng)
    small, big = power_tables(chains)
    for env in range(5):
        h = rng.dirichlet(np.ones(4))
        assert tuple(_kernel_h(h, env, 0.0, small, big, chains)) == tuple(h)
    # in the evaluator: a trapped casualty freed in 0 minutes by a fire team already there has a
    # trapped segment of length 0 and so the same p_dead as its untrapped twin
    def case(trapped):
        c = {"id": "c", "site": "S", "health": [0.1, 0.2, 0.3, 0.4], "trapped": trapped, "rescue_minutes": 0.0}
        d = _scenario(_graph(["h", "s"], [("h", "s", 3.5)]), [{"id": "H", "node": "h", "capacity": 1}],
                      [{"id": "S", "node": "s"}],
                      [{"id": "amb", "kind": "paramedic", "start": "H"}, {"id": "fire", "kind": "fire", "start": "S"}],
                      [c], chains={"trapped": factories.random_chain(rng), "ccs": factories.random_chain(rng)})
        routes = {"amb": [("transport", "c", "H")]}
        if trapped:
            routes["fire"] = [("rescue", "c")]
        return evaluate_detail(d, _plan(routes))

    rng_state = rng.bit_generator.state
    obj_t, W_t, _ = case(True)
    rng.bit_generator.state = rng_state
    obj_f, W_f, _ = case(False)
    assert W_t.arrival[0] == W_f.arrival[0] == 3.5 + 2 + 3.5
    # to rounding: the twin's wait is its first segment, read off the start rides, the trapped
    # one's is after its (empty) first, read off the steps (kernels.health.dead_from_start)
    assert W_t.pdead[0] == pytest.approx(W_f.pdead[0], rel=1e-14, abs=0)
    assert W_t.pdead[0] > 0.4


# --- Monte Carlo ----------------------------------------------------------------------------------

def test_monte_carlo_agrees_with_p_dead(warm_jit):
    """Sample each casualty's state segment by segment with ``P_k(d)``; compare P(dead at arrival)."""
    rng = np.random.default_rng(20240611)
    chains = {k: factories.random_chain(rng) for k in ("trapped", "ccs", "ambulance")}
    d = _scenario(
        _graph(["f", "s", "h"], [("f", "s", 2.5), ("s", "h", 6.25)]),
        [{"id": "H", "node": "h", "capacity": 5}], [{"id": "S", "node": "s"}],
        [{"id": "hart", "kind": "paramedic", "start": "H", "hart": True},
         {"id": "amb", "kind": "paramedic", "start": "H"},
         {"id": "fire", "kind": "fire", "start": "F"}],
        [{"id": "t", "site": "S", "health": [0.3, 0.4, 0.3, 0.0], "trapped": True, "rescue_minutes": 17.3,
          "treatment_minutes": 4.6, "observed_at": 1.2},
         {"id": "p", "site": "S", "health": "urgent", "observed_at": 0.7},
         {"id": "w", "site": "S", "health": "delayed", "treatment_ends_at": 9.4}],
        stations=[{"id": "F", "node": "f"}], chains=chains, time=2.0, treatment_slowdown=0.3)
    plan = _plan({"hart": [("treat", "t"), ("transport", "p", "H"), ("transport", "t", "H")],
                  "amb": [("transport", "w", "H")], "fire": [("rescue", "t")]})
    sc = engine.load_scenario(d)
    obj, W, _ = evaluate_detail(sc, plan)
    ref = reference.evaluate(sc, engine.load_plan(sc, plan))
    # casualty t lives through trapped, trapped_treated, ccs_treated, ambulance
    assert [e for e, _ in ref.segments[0]] == [0, 3, 4, 2]
    n = 20_000
    for c in range(3):
        state = rng.choice(4, size=n, p=sc.health[c])
        for env, dur in ref.segments[c]:
            cum = np.cumsum(reference.step_matrix(sc.chains[env], dur), axis=1)
            u = rng.random(n)
            state = np.minimum((u[:, None] >= cum[state]).sum(axis=1), 3)
        estimate = np.mean(state == 3)
        p = float(W.pdead[c])
        se = math.sqrt(max(p * (1 - p), 1.0 / n) / n)
        assert abs(estimate - p) <= 4 * se, (c, estimate, p, se)
        assert 0.02 < p < 0.98  # not a trivial case
