"""Moves (kernels/moves.py) and their delta evaluation (kernels/delta.py, kernels/local.py).

For many random scenarios (``generate("tiny")`` / ``generate("random")`` dicts mutated with a
scenario time, late or early responders, tight shift ends, trapped casualties and HART teams,
treated / in-transit / dead casualties, 0- and 1-bed hospitals, plus the awkward
``factories.random_scenario`` ones) and many starting solutions (``rule``, ``greedy``, random valid
plans with treats and pinned prefixes, plans with wait cycles), every move of the full and the
granular neighbourhood and many ``random_move`` draws are checked:

- ``evaluate_move`` (delta) == ``evaluate`` of the candidate ``apply_move`` writes (F, overflow, T
  within 1e-9, the same status, NaN for a cycle), and it leaves the candidate's starts and every list it
  re-timed in its buffers;
- the candidate is a valid plan (``check_plan``), keeps every pinned prefix, keeps rescues with
  fire teams and the rest with paramedics, and holds the incumbent's tasks (± the one treat);
- ``sweep`` on 1 and on 2 threads gives bit-identical outputs, equal to ``evaluate_move``.

The incumbent's workspace is deliberately filled with stale numbers before its full evaluation
(as a workspace reused by a search would hold): a delta evaluation must not depend on them.
"""

from __future__ import annotations

import collections
import copy
import functools
import json
import math

import numpy as np
import pytest
from numba import njit

import engine
import factories
from engine import construct
from engine.generate import generate
from engine.neighbourhood import nearest_casualties, nearest_hospitals
from engine.plan import Plan, Task, check_plan, problem_arrays
from engine.solution import Solution
from kernels.admissions import build_admissions, has_admissions, readmit
from kernels.delta import evaluate_move
from kernels.evaluate import evaluate
from kernels.layout import (ADM, CYCLE, DEAD, FEASIBLE, IN_TRANSIT, KINDS, LOCAL, N_LISTS, RESCUE, SHIFT, TRANSPORT,
                            TREAT, VERSION, workspace_for)
from kernels.local import adopt, count_shift
from kernels.moves import (
    HOSPITAL,
    INSERT_TREAT,
    MOVE_NAMES,
    HOSPITAL_SWAP,
    N_KINDS,
    RELOCATE,
    REMOVE_TREAT,
    SWAP,
    TWO_OPT,
    apply_in_place,
    apply_move,
    enumerate_moves,
    random_move,
    slot_tables,
)
from kernels.score import WITHOUT_RUN_PER_LIST, worth_without
from kernels.search import sweep

TOL = 1e-9
SEEDS = range(8)
RANDOM_MOVES = 60  # random_move draws per starting solution (and per weight vector below)


@njit(cache=False)
def _seed_numba(seed):
    np.random.seed(seed)


# --- scenarios ------------------------------------------------------------------------------

def mutate(d: dict, rng) -> dict:
    """A valid variant of a generated scenario with the awkward features the search meets."""
    d = copy.deepcopy(d)
    paras = [r for r in d["responders"] if r["kind"] == "paramedic"]
    fires = [r for r in d["responders"] if r["kind"] == "fire"]
    hospitals = [h["id"] for h in d["hospitals"]]
    if rng.random() < 0.6:
        d["time"] = float(rng.integers(1, 40))
    t = float(d.get("time", 0.0))
    for r in d["responders"]:
        r.pop("available_at", None)
        u = rng.random()
        if u < 0.3:
            r["available_at"] = t + float(rng.integers(0, 30))
        elif u < 0.45:
            r["available_at"] = t - float(rng.integers(1, 30))
        if rng.random() < 0.3:  # tight enough to be broken by many plans
            r["shift_end"] = max(t, r.get("available_at", t)) + float(rng.integers(5, 80))
    for r in paras:
        r["hart"] = bool(rng.random() < 0.4)
    if paras and fires:
        paras[int(rng.integers(len(paras)))]["hart"] = True
    for c in d["casualties"]:
        if fires and rng.random() < 0.35:
            c["trapped"] = True
            c["rescue_minutes"] = float(rng.integers(0, 40))
        if rng.random() < 0.25:
            c["treatment_minutes"] = float(rng.choice([0.0, 5.0, 15.0, 25.0]))
        if rng.random() < 0.25:
            c["observed_at"] = t - float(rng.integers(0, 20))
        if rng.random() < 0.3:
            c["health"] = [float(x) for x in rng.dirichlet(np.ones(4) * 0.8)]
        u = rng.random()
        if u < 0.05:
            c["health"] = "dead"
        elif u < 0.11:
            c["trapped"] = False
            c["in_transit"] = {"hospital": str(rng.choice(hospitals)), "arrival": t + float(rng.integers(0, 30))}
        elif u < 0.17:
            c["treated"] = True
        elif u < 0.22:
            c["treatment_ends_at"] = t + float(rng.integers(0, 30))
        if c.get("trapped") and rng.random() < 0.2:
            c["rescue_ends_at"] = t + float(rng.integers(0, 30))
    for h in d["hospitals"]:
        if rng.random() < 0.5:
            h["capacity"] = int(rng.choice([0, 1]))
    if rng.random() < 0.5:
        d["hospital_overflow_risk"] = float(rng.choice([0.2, 1.0]))
    return d


def scenario_dicts(seed: int) -> list[dict]:
    rng = np.random.default_rng(9000 + seed)
    out = [mutate(generate("tiny", seed=seed), rng), generate("tiny", seed=100 + seed)]
    for k in range(2):
        n = int(rng.integers(3, 11))
        d = generate("random", seed=seed * 10 + k, casualties=n, paramedics=int(rng.integers(1, 5)),
                     fire=int(rng.integers(0, 3)), hospitals=int(rng.integers(1, 4)), sites=int(rng.integers(1, 4)))
        out.append(mutate(d, rng))
    out += [factories.random_scenario(rng) for _ in range(4)]
    return out


# --- starting solutions ---------------------------------------------------------------------

def _lists(sol):
    return [[int(x) for x in sol.order[sol.starts[r]:sol.starts[r + 1]]] for r in range(len(sol.starts) - 1)]


def from_lists(sc, lists, hosp, pins) -> Solution:
    starts = np.zeros(len(lists) + 1, dtype=np.int32)
    flat = []
    for r, codes in enumerate(lists):
        starts[r] = len(flat)
        flat.extend(codes)
    starts[-1] = len(flat)
    return Solution.from_arrays(sc, starts, np.array(flat, dtype=np.int32), np.asarray(hosp), np.asarray(pins))


def random_pins(lists, rng, share=0.35):
    pins = np.zeros(len(lists), dtype=np.int32)
    for r, codes in enumerate(lists):
        if codes and rng.random() < share:
            pins[r] = 1 if rng.random() < 0.7 else int(rng.integers(1, len(codes) + 1))
    return pins


def with_treats(sc, sol, rng, pins=True) -> Solution:
    """``sol`` plus random treats anywhere in paramedic lists (after any pinned prefix)."""
    P = problem_arrays(sc)
    lists = _lists(sol)
    medics = np.flatnonzero(~P.resp_fire)
    pin = random_pins(lists, rng) if pins else np.zeros(len(lists), dtype=np.int32)
    for c in range(len(P.h0)):
        if P.can_treat[c] and P.status[c] == 0 and len(medics) and rng.random() < 0.5:
            r = int(rng.choice(medics))
            lists[r].insert(int(rng.integers(pin[r], len(lists[r]) + 1)), KINDS * c + TREAT)
    return from_lists(sc, lists, sol.hosp, pin)


def self_cycle(sc, sol, rng):
    """A transport placed before the same paramedic's treat of that casualty: a wait cycle."""
    P = problem_arrays(sc)
    lists = _lists(sol)
    treatable = [c for c in range(len(P.h0)) if P.can_treat[c] and P.status[c] == 0]
    if not treatable:
        return None
    c = int(rng.choice(treatable))
    for codes in lists:
        if KINDS * c + TREAT in codes:
            codes.remove(KINDS * c + TREAT)
    r = next(r for r, codes in enumerate(lists) if KINDS * c + TRANSPORT in codes)
    i = lists[r].index(KINDS * c + TRANSPORT)
    lists[r].insert(int(rng.integers(i + 1, len(lists[r]) + 1)), KINDS * c + TREAT)
    pins = np.zeros(len(lists), dtype=np.int32)
    pins[r] = min(i, 1) if rng.random() < 0.5 else 0  # the cycle stays in the movable part
    return from_lists(sc, lists, sol.hosp, pins)


def poison(W, value=0.25):
    """Stale numbers, as left by an earlier evaluation of another plan in the same workspace."""
    for name in W._fields:
        a = getattr(W, name)
        if a.dtype.kind == "f":
            a.fill(value)


def incumbent(sol: Solution) -> Solution:
    poison(sol.W)
    sol.reevaluate()
    return sol


def starting_solutions(sc, rng) -> list[tuple[str, Solution]]:
    out = []
    rule = construct.rule(sc)
    greedy = construct.greedy(sc)
    out.append(("rule", rule))
    out.append(("greedy+treats+pins", with_treats(sc, greedy, rng)))
    for mode in ("ordered", "shuffled", "cycle"):
        plan = factories.random_plan(sc, rng, mode=mode, pin_share=0.35)
        out.append((f"random-{mode}", Solution.from_plan(sc, plan)))
    cyc = self_cycle(sc, rule, rng)
    if cyc is not None:
        out.append(("self-cycle", cyc))
    return [(label, incumbent(s)) for label, s in out]


@functools.lru_cache(maxsize=None)
def cases(seed: int):
    """``(label, scenario dict, Scenario, Solution)`` for every scenario and start of one seed."""
    rng = np.random.default_rng(seed)
    out = []
    for i, d in enumerate(scenario_dicts(seed)):
        sc = engine.load_scenario(d)
        for label, sol in starting_solutions(sc, rng):
            out.append((f"seed {seed} scenario {i} {label}", d, sc, sol))
    return out


# --- moves ----------------------------------------------------------------------------------

def all_moves(P, sol, neigh, hneigh) -> np.ndarray:
    out = np.empty((256, 4), dtype=np.int64)
    while True:
        n = enumerate_moves(P, sol.starts, sol.order, sol.hosp, sol.pins, neigh, hneigh, out)
        if n <= len(out):
            return out[:n].copy()
        out = np.empty((n, 4), dtype=np.int64)


def full_moves(P, sol):
    empty = np.zeros((len(P.h0), 0), dtype=np.int64)
    return all_moves(P, sol, empty, empty)


def granular_moves(P, sol):
    return all_moves(P, sol, nearest_casualties(P), nearest_hospitals(P))


WEIGHTS = (np.ones(N_KINDS), np.array([0.36, 0.22, 0.14, 0.08, 0.04, 0.08, 0.08]))


def tables(P, sol):
    n_cas = len(P.h0)
    slot_owner = np.empty(max(len(sol.order), 1), dtype=np.int64)
    slot_of = np.empty(3 * n_cas, dtype=np.int64)
    slot_tables(sol.starts, sol.order, n_cas, slot_owner, slot_of)
    return slot_owner, slot_of


def random_moves(P, sol, seed) -> np.ndarray:
    if len(P.h0) == 0:  # see test_random_move_without_casualties
        return np.empty((0, 4), dtype=np.int64)
    slot_owner, slot_of = tables(P, sol)
    paramedics = np.flatnonzero(~P.resp_fire).astype(np.int64)
    fires = np.flatnonzero(P.resp_fire).astype(np.int64)
    rows = []
    # uniform draws, and draws near each task (granular neighbourhoods, as large plans use them)
    empty = np.zeros((len(P.h0), 0), dtype=np.int64)
    near = (nearest_casualties(P), nearest_hospitals(P))
    for j, w in enumerate(WEIGHTS + tuple(np.eye(N_KINDS))):
        _seed_numba(seed * 31 + j)
        for i in range(RANDOM_MOVES if j < 2 else RANDOM_MOVES // 6):
            neigh, hneigh = near if i % 2 else (empty, empty)
            m = random_move(P, sol.starts, sol.order, sol.hosp, sol.pins, slot_owner, slot_of, paramedics, fires, w,
                            neigh, hneigh)
            if m[0] >= 0:
                rows.append(m)
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def move_sets(P, sol, seed):
    return (("full", full_moves(P, sol)), ("granular", granular_moves(P, sol)),
            ("random", random_moves(P, sol, seed)))


def candidate(sol, move):
    cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
    apply_move(*(int(x) for x in move), sol.starts, sol.order, sol.hosp, cs, co, ch)
    return cs, co, ch


def _same(a, b) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOL


def _repro(d, sc, sol, move) -> str:
    plan = Plan.from_arrays(sc, sol.starts, sol.order, sol.hosp, sol.pins)
    return (f"move {MOVE_NAMES[int(move[0])]} {tuple(int(x) for x in move)}\nscenario = {json.dumps(d)}\n"
            f"plan = {json.dumps(plan.to_json())}")


def _retimed_lists_written(W, cs, co, a_s, a_o) -> bool:
    """A delta evaluation leaves the candidate's starts and every list it re-timed in its buffers."""
    if not np.array_equal(cs, a_s):
        return False
    for r in W.stack[:W.gen[N_LISTS]]:
        if not np.array_equal(co[a_s[r]:a_s[r + 1]], a_o[a_s[r]:a_s[r + 1]]):
            return False
    return True


def delta_mismatches(d, sc, sol, moves, stats):
    """Every move whose delta score differs from the full evaluation of its candidate.

    Each move is scored twice: with the incumbent's admission order (``kernels.admissions``,
    overflow corrected, ``admissions.overflow_after``) and without it (``objective.overflows``
    from scratch); both must give the same overflow to rounding."""
    P = problem_arrays(sc)
    slot_owner, slot_of = tables(P, sol)
    n_shift = count_shift(P, sol.starts, sol.W)
    inc_status = int(sol.cur[3])
    W, W_full = workspace_for(P), workspace_for(P)
    cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
    build_admissions(P, sol.hosp, sol.W)
    bad = []
    for move in moves:
        sol.W.gen[ADM] = -1  # no admission order: the overflow from scratch
        plain = evaluate_move(P, *(int(x) for x in move), sol.starts, sol.order, sol.hosp, sol.pins, sol.W,
                              sol.cur, slot_owner, slot_of, n_shift, cs, co, ch, W)
        sol.W.gen[ADM] = sol.W.gen[VERSION]
        F, o, T, st = evaluate_move(P, *(int(x) for x in move), sol.starts, sol.order, sol.hosp, sol.pins, sol.W,
                                    sol.cur, slot_owner, slot_of, n_shift, cs, co, ch, W)
        if st == FEASIBLE or st == SHIFT:
            stats["corrected overflow"] += int(W.need.any() and W.gen[LOCAL] == 1)
        if plain[3] != st or not (abs(o - plain[1]) <= 1e-12 or (math.isnan(o) and math.isnan(plain[1]))):
            bad.append(f"overflow corrected {o!r} != from scratch {plain[1]!r}\n{_repro(d, sc, sol, move)}")
            continue
        a_s, a_o, a_h = candidate(sol, move)
        if W.gen[LOCAL] == 1 and not _retimed_lists_written(W, cs, co, a_s, a_o):
            bad.append(f"the re-timed lists in the candidate buffers differ from apply_move's\n"
                       f"{_repro(d, sc, sol, move)}")
            continue
        F2, o2, T2, st2 = evaluate(P, a_s, a_o, a_h, sol.pins, W_full)
        stats[f"status {inc_status}->{st2}"] += 1
        stats[MOVE_NAMES[int(move[0])]] += 1
        if st != st2 or not (_same(F, F2) and _same(o, o2) and _same(T, T2)):
            bad.append(f"delta (F={F!r}, overflow={o!r}, T={T!r}, status={st}) != full (F={F2!r}, "
                       f"overflow={o2!r}, T={T2!r}, status={st2})\n{_repro(d, sc, sol, move)}")
        if st2 == CYCLE:
            assert math.isnan(F2) and math.isnan(T2)
    return bad


def _check_delta(seed, want_cycle_incumbent):
    stats = collections.Counter()
    bad = []
    for label, d, sc, sol in cases(seed):
        if (int(sol.cur[3]) == CYCLE) != want_cycle_incumbent:
            continue
        stats["incumbents"] += 1
        P = problem_arrays(sc)
        for name, moves in move_sets(P, sol, seed):
            stats[name] += len(moves)
            bad += [f"{label} [{name}]: {b}" for b in delta_mismatches(d, sc, sol, moves, stats)]
    return stats, bad


# --- delta == full --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_delta_equals_full_evaluation(seed):
    """Incumbents without a wait cycle (feasible or over a shift end)."""
    stats, bad = _check_delta(seed, want_cycle_incumbent=False)
    assert stats["incumbents"] >= 20 and stats["full"] + stats["random"] >= 1000, stats
    assert stats["corrected overflow"] >= 100, stats  # moves scored with a hospital over its beds
    assert not bad, f"{len(bad)} mismatches, first:\n" + bad[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_delta_equals_full_evaluation_from_cycle_incumbents(seed):
    """Incumbents with a wait cycle: every candidate (the moves that break the cycle included)."""
    stats, bad = _check_delta(seed, want_cycle_incumbent=True)
    assert stats["incumbents"] >= 1, stats
    assert not bad, f"{len(bad)} mismatches, first:\n" + bad[0]


def test_delta_after_cycle_incumbent_minimal():
    """The smallest case of the above: a paramedic carries c002 away before treating it (cycle);
    removing that treat makes the plan feasible, and the delta score must be the full one."""
    sc = engine.load_scenario(generate("tiny", seed=0))
    routes = {"amb-01": [Task("transport", "c002", "R1H12"), Task("treat", "c002")],
              "amb-02": [Task("transport", "c001", "R1H12"), Task("transport", "c003", "R1H12"),
                         Task("transport", "c004", "RJ122")],
              "fire-01": [Task("rescue", "c001")]}
    sol = Solution.from_plan(sc, Plan(routes, sc.name, 0.0))
    incumbent(sol)
    assert int(sol.cur[3]) == CYCLE
    P = problem_arrays(sc)
    slot_owner, slot_of = tables(P, sol)
    cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
    F, o, T, st = evaluate_move(P, REMOVE_TREAT, 1, 0, 0, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur,
                                slot_owner, slot_of, count_shift(P, sol.starts, sol.W), cs, co, ch, workspace_for(P))
    F2, o2, T2, st2 = evaluate(P, *candidate(sol, (REMOVE_TREAT, 1, 0, 0)), sol.pins, workspace_for(P))
    assert st2 == FEASIBLE and st == st2
    assert abs(T - T2) <= TOL
    assert abs(F - F2) <= TOL, f"delta F={F!r}, full F={F2!r}"


def test_random_move_without_casualties():
    """No casualty, so no move at all: ``random_move`` must say so (kind -1), whatever the weights."""
    sc = engine.load_scenario(generate("random", seed=0, casualties=0, paramedics=2, fire=1, hospitals=1))
    P = problem_arrays(sc)
    sol = incumbent(construct.rule(sc))
    slot_owner, slot_of = tables(P, sol)
    paramedics = np.flatnonzero(~P.resp_fire).astype(np.int64)
    fires = np.flatnonzero(P.resp_fire).astype(np.int64)
    _seed_numba(0)
    empty = np.zeros((0, 0), dtype=np.int64)
    for w in WEIGHTS + tuple(np.eye(N_KINDS)):
        m = random_move(P, sol.starts, sol.order, sol.hosp, sol.pins, slot_owner, slot_of, paramedics, fires, w,
                        empty, empty)
        assert m[0] == -1, m


def test_moves_create_and_break_cycles_and_cover_every_kind():
    """The cases above are not vacuous: they hold every move kind, moves that create a wait cycle
    from a cycle-free plan, moves that break one, shift-end incumbents and pinned prefixes."""
    stats = collections.Counter()
    for seed in SEEDS[:4]:
        for _label, d, sc, sol in cases(seed):
            P = problem_arrays(sc)
            stats[f"incumbent {int(sol.cur[3])}"] += 1
            stats["pinned"] += int(sol.pins.sum() > 0)
            for name, moves in move_sets(P, sol, seed):
                for m in moves:
                    stats[f"{name} {MOVE_NAMES[int(m[0])]}"] += 1
                if len(moves):  # candidate statuses (sweep == full evaluation: tests above)
                    for st in run_sweep(P, sol, moves, 2)[2]:
                        stats[f"status {int(sol.cur[3])}->{int(st)}"] += 1
    for name in ("full", "granular", "random"):
        for kind in (RELOCATE, SWAP, HOSPITAL, INSERT_TREAT, REMOVE_TREAT, TWO_OPT, HOSPITAL_SWAP):
            assert stats[f"{name} {MOVE_NAMES[kind]}"] > 0, (name, MOVE_NAMES[kind], stats)
    assert stats[f"incumbent {FEASIBLE}"] > 20 and stats[f"incumbent {SHIFT}"] > 5 and stats[f"incumbent {CYCLE}"] > 5, stats
    assert stats["pinned"] > 20
    assert stats[f"status {FEASIBLE}->{CYCLE}"] > 20, stats  # moves that create a wait cycle
    assert stats[f"status {SHIFT}->{CYCLE}"] > 0, stats
    assert stats[f"status {CYCLE}->{FEASIBLE}"] + stats[f"status {CYCLE}->{SHIFT}"] > 5, stats  # break one
    assert stats[f"status {FEASIBLE}->{SHIFT}"] > 0 and stats[f"status {SHIFT}->{FEASIBLE}"] > 0, stats


def test_granular_neighbourhood_is_part_of_the_full_one():
    for seed in SEEDS[:3]:
        for label, _d, sc, sol in cases(seed):
            P = problem_arrays(sc)
            full = {tuple(m) for m in full_moves(P, sol).tolist()}
            gran = {tuple(m) for m in granular_moves(P, sol).tolist()}
            assert gran <= full, (label, sorted(gran - full)[:5])


# --- apply_move keeps a valid plan ----------------------------------------------------------

def _codes(starts, order, r):
    return [int(x) for x in order[int(starts[r]):int(starts[r + 1])]]


@pytest.mark.parametrize("seed", SEEDS)
def test_apply_move_keeps_a_valid_plan(seed):
    rng = np.random.default_rng(500 + seed)
    n_checked = n_plan_checked = 0
    for label, d, sc, sol in cases(seed):
        P = problem_arrays(sc)
        n_resp = len(sol.starts) - 1
        before = collections.Counter(int(x) for x in sol.order[: int(sol.starts[-1])])
        for name, moves in move_sets(P, sol, seed):
            if name != "random":  # a sample of the (many, similar) full and granular moves
                moves = moves[rng.random(len(moves)) < 0.3]
            for move in moves:
                kind = int(move[0])
                cs, co, ch = candidate(sol, move)
                where = f"{label} [{name}] {_repro(d, sc, sol, move)}"
                assert int(cs[0]) == 0 and np.all(np.diff(cs) >= 0), where
                # pinned prefixes (and their hospitals) are untouched
                for r in range(n_resp):
                    k = int(sol.pins[r])
                    old, new = _codes(sol.starts, sol.order, r), _codes(cs, co, r)
                    assert new[:k] == old[:k], where
                    for code in old[:k]:
                        if code % KINDS == TRANSPORT:
                            assert ch[code // KINDS] == sol.hosp[code // KINDS], where
                    # kinds: rescues with fire teams, treats and transports with paramedics
                    assert all((code % KINDS == RESCUE) == bool(P.resp_fire[r]) for code in new), where
                # the same tasks, plus or minus the one treat
                after = collections.Counter(int(x) for x in co[: int(cs[-1])])
                expected = collections.Counter(before)
                if kind == INSERT_TREAT:
                    expected[KINDS * int(move[1]) + TREAT] += 1
                elif kind == REMOVE_TREAT:
                    expected[int(sol.order[int(move[1])])] -= 1
                    assert int(sol.order[int(move[1])]) % KINDS == TREAT, where
                assert after == +expected, where
                if kind == HOSPITAL:
                    assert ch[int(move[1])] == int(move[2]) and int(move[2]) != sol.hosp[int(move[1])], where
                elif kind == HOSPITAL_SWAP:
                    a, b = int(move[1]), int(move[2])
                    assert ch[a] == sol.hosp[b] and ch[b] == sol.hosp[a] and ch[a] != ch[b], where
                    rest = np.ones(len(ch), dtype=bool)
                    rest[[a, b]] = False
                    assert np.array_equal(ch[rest], sol.hosp[rest]), where
                else:
                    assert np.array_equal(ch, sol.hosp), where
                n_checked += 1
                if rng.random() < 0.25:  # check_plan is slow: a sample
                    routes = Plan.from_arrays(sc, cs, co, ch, sol.pins).to_json()["routes"]
                    problems = check_plan(sc, routes)
                    assert not problems, f"{where}\n" + "\n".join(map(str, problems))
                    n_plan_checked += 1
    assert n_checked >= 1000 and n_plan_checked >= 300, (n_checked, n_plan_checked)


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_apply_in_place_equals_apply_move_and_fresh_slot_tables(seed):
    """What annealing takes over an accepted move with: the plan and its slot tables, changed
    in place, exactly as a full copy of the candidate and freshly built tables."""
    n = 0
    for label, _d, sc, sol in cases(seed):
        P = problem_arrays(sc)
        for name, moves in move_sets(P, sol, seed):
            for move in moves[::2]:
                cs, co, ch = candidate(sol, move)
                slot_owner, slot_of = tables(P, sol)
                starts, order, hosp = sol.starts.copy(), sol.order.copy(), sol.hosp.copy()
                apply_in_place(*(int(x) for x in move), starts, order, hosp, cs, slot_owner, slot_of)
                m = int(cs[-1])
                want_owner, want_of = np.empty_like(slot_owner), np.empty_like(slot_of)
                slot_tables(cs, co, len(P.h0), want_owner, want_of)
                where = (label, name, MOVE_NAMES[int(move[0])], tuple(int(x) for x in move))
                assert np.array_equal(starts, cs) and np.array_equal(order[:m], co[:m]), where
                assert np.array_equal(hosp, ch), where
                assert np.array_equal(slot_owner[:m], want_owner[:m]) and np.array_equal(slot_of, want_of), where
                n += 1
    assert n >= 1000


# --- sweep ----------------------------------------------------------------------------------

def run_sweep(P, sol, moves, n_threads):
    n = len(moves)
    F, T, st = np.full(n, -7.0), np.full(n, -7.0), np.full(n, -7, dtype=np.int64)
    sweep(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st, n_threads)
    return F, T, st


def relocation_run(moves, i) -> int:
    """How many consecutive relocations of the task ``moves[i]`` relocates include ``i``."""
    a = moves[i, 1]
    lo, hi = i, i + 1
    while lo > 0 and moves[lo - 1, 0] == RELOCATE and moves[lo - 1, 1] == a:
        lo -= 1
    while hi < len(moves) and moves[hi, 0] == RELOCATE and moves[hi, 1] == a:
        hi += 1
    return hi - lo


def scored_without_the_task(sol, moves, i) -> bool:
    """Whether a sweep scores ``moves[i]`` as its task's insertion into the plan without that task
    (``kernels.score._without``): a relocation of a transport or a treat, from an incumbent with
    no wait cycle, in a run of relocations of that task at least ``WITHOUT_RUN_PER_LIST`` times
    the number of lists long."""
    move = moves[i]
    return (int(move[0]) == RELOCATE and int(sol.order[int(move[1])]) % KINDS != RESCUE
            and int(sol.cur[3]) != CYCLE
            and relocation_run(moves, i) >= WITHOUT_RUN_PER_LIST * (len(sol.starts) - 1))


def test_a_relocation_is_scored_without_its_task_only_in_a_long_run():
    """``worth_without`` against counting the run plainly, from every index of every run: runs
    of one (the audit's alternative), just short of the bound, at it and beyond, the same task's
    relocations in two runs split by another move, and runs at both ends of the array."""
    n_lists = 3
    need = WITHOUT_RUN_PER_LIST * n_lists
    rows = []
    for a, length in ((5, need + 2), (6, 1), (7, need - 1), (5, need), (8, 1), (5, 1), (9, need + 9)):
        rows += [(RELOCATE, a, 0, 0)] * length
        if a == 5:
            rows.append((SWAP, a, 9, 0))  # the same task's next run is another run
    moves = np.array(rows, dtype=np.int64)
    assert (moves[:, 0] == RELOCATE).sum() > 4 * need
    for i in range(len(moves)):
        if moves[i, 0] == RELOCATE:
            assert worth_without(moves, i, moves[i, 1], n_lists) == (relocation_run(moves, i) >= need), i


@pytest.mark.parametrize("seed", SEEDS)
def test_sweep_relocations_equal_full_evaluations(seed):
    """A sweep scores a relocation of a transport or a treat against the plan without that task,
    made once per task and thread: every such score (and every other relocation's) equals the
    full evaluation of the candidate to 1e-9, status included, on one thread and on two, over
    incumbents with pins, treats, shift overruns and full hospitals."""
    checked = collections.Counter()
    for label, d, sc, sol in cases(seed):
        P = problem_arrays(sc)
        W = workspace_for(P)
        for name, moves in move_sets(P, sol, seed):
            moves = moves[moves[:, 0] == RELOCATE]
            if not len(moves):
                continue
            for threads in (1, 2):
                F, T, st = run_sweep(P, sol, moves, threads)
                for i, move in enumerate(moves):
                    F2, _o, T2, st2 = evaluate(P, *candidate(sol, move), sol.pins, W)
                    assert st[i] == st2 and _same(F[i], F2) and _same(T[i], T2), (
                        f"sweep (F={F[i]!r}, T={T[i]!r}, status={st[i]}) != full (F={F2!r}, T={T2!r}, "
                        f"status={st2}) on {threads} thread(s)\n{_repro(d, sc, sol, move)}")
                    reduced = scored_without_the_task(sol, moves, i)
                    checked["without the task" if reduced else "as relocations"] += 1
                    checked[f"status {st2}"] += 1
    assert checked["without the task"] >= 1000 and checked["as relocations"] >= 200, checked
    assert checked[f"status {SHIFT}"] >= 20 and checked[f"status {CYCLE}"] >= 20, checked


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_sweep_same_on_one_and_two_threads(seed):
    n = 0
    for label, _d, sc, sol in cases(seed):
        P = problem_arrays(sc)
        for name, moves in move_sets(P, sol, seed):
            if not len(moves):
                continue
            one = run_sweep(P, sol, moves, 1)
            two = run_sweep(P, sol, moves, 2)
            for a, b in zip(one, two):
                assert np.array_equal(a, b, equal_nan=True), (label, name)
            assert not np.any(one[2] == -7), (label, name)  # every output slot was written
            # and equal to evaluate_move, one move at a time (a relocation the sweep scores against
            # the plan without its task: to the full evaluation, in test_sweep_relocations_...)
            slot_owner, slot_of = tables(P, sol)
            n_shift = count_shift(P, sol.starts, sol.W)
            W = workspace_for(P)
            cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
            for i in range(0, len(moves), 7):
                if scored_without_the_task(sol, moves, i):
                    continue
                F, _o, T, st = evaluate_move(P, *(int(x) for x in moves[i]), sol.starts, sol.order, sol.hosp,
                                             sol.pins, sol.W, sol.cur, slot_owner, slot_of, n_shift,
                                             cs, co, ch, W)
                assert st == one[2][i], (label, name, moves[i])
                assert (F == one[0][i] or (math.isnan(F) and math.isnan(one[0][i]))), (label, name, moves[i])
                assert (T == one[1][i] or (math.isnan(T) and math.isnan(one[1][i]))), (label, name, moves[i])
            n += len(moves)
    assert n >= 1000


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_a_move_scores_the_same_whatever_the_workspace_scored_before(seed):
    """A candidate workspace puts back only what the last move changed (its casualties' times, its
    hospitals' tallies, a hospital move's hospitals): a move scored after any other, hospital
    moves above all, must score to the bit as in a workspace that scored nothing before."""
    rng = np.random.default_rng(seed)
    n = hospital = 0
    for label, _d, sc, sol in cases(seed):
        if int(sol.cur[3]) == CYCLE:
            continue
        P = problem_arrays(sc)
        moves = random_moves(P, sol, seed)
        if not len(moves):
            continue
        build_admissions(P, sol.hosp, sol.W)
        slot_owner, slot_of = tables(P, sol)
        n_shift = count_shift(P, sol.starts, sol.W)
        used = workspace_for(P)
        cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
        hosp = sol.hosp.copy()
        for i in rng.permutation(len(moves))[:150]:
            args = (*(int(x) for x in moves[i]), sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur,
                    slot_owner, slot_of, n_shift, cs, co, ch)
            got = evaluate_move(P, *args, used)
            want = evaluate_move(P, *args, workspace_for(P))
            assert np.array_equal(np.array(got), np.array(want), equal_nan=True), (label, moves[i], got, want)
            n += 1
            hospital += int(moves[i][0]) in (HOSPITAL, HOSPITAL_SWAP)
        assert np.array_equal(sol.hosp, hosp), label  # scoring never writes the incumbent's hospitals
    assert n >= 500 and hospital >= 50, (n, hospital)


# --- each hospital's admission order ---------------------------------------------------------

def test_admission_order_is_arrival_then_casualty_index():
    """``build_admissions``: each hospital's arriving casualties (planned, or in transit to it),
    sorted by arrival, ties by casualty index (SPEC §7), written out here with Python's sort;
    and each one's place in that order (``W.nxt``, which ``overflow_after`` reads)."""
    n = ties = 0
    for label, _d, sc, sol in [case for seed in SEEDS for case in cases(seed)]:
        if int(sol.cur[3]) == CYCLE:
            continue
        P = problem_arrays(sc)
        build_admissions(P, sol.hosp, sol.W)
        arrival = sol.W.arrival
        for h in range(len(P.hosp_loc)):
            members = [c for c in range(len(P.h0)) if P.status[c] != DEAD and not math.isnan(arrival[c])
                       and (P.transit_hosp[c] if P.status[c] == IN_TRANSIT else sol.hosp[c]) == h]
            want = sorted(members, key=lambda c: (arrival[c], c))
            got = sol.W.adm[sol.W.adm_start[h]:sol.W.adm_start[h + 1]].tolist()
            assert got == want, (label, h)
            assert [int(sol.W.nxt[c]) for c in want] == list(range(len(want))), (label, h)  # their places
            ties += len(want) - len({arrival[c] for c in want})
            n += len(want)
    assert n >= 500 and ties >= 5, (n, ties)


# --- adopting a locally scored candidate as the incumbent ---------------------------------------

def _workspace_mismatch(P, starts, W, W_full) -> str | None:
    """The incumbent parts of ``W`` (what later delta evaluations read) that differ from a full
    evaluation's ``W_full``; ``None`` when they agree (NaN equals NaN)."""
    n = int(starts[-1])
    parts = [(name, getattr(W, name), getattr(W_full, name))
             for name in ("rescued", "treated_at", "pickup", "arrival", "pdead", "count", "over", "free")]
    parts += [("start", W.start[:n], W_full.start[:n]), ("end", W.end[:n], W_full.end[:n])]
    for name, got, want in parts:
        if not np.allclose(got, want, rtol=0.0, atol=1e-12, equal_nan=True):
            i = int(np.flatnonzero(~np.isclose(got, want, rtol=0.0, atol=1e-12, equal_nan=True))[0])
            return f"{name}[{i}]: adopted {got[i]!r}, full {want[i]!r}"
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_adopt_equals_full_evaluation_over_chains_of_moves(seed):
    """Accept 40 random moves in a row as annealing does: a locally scored move is adopted into the
    incumbent workspace (``adopt``), any other is re-evaluated in full; after every step the
    incumbent workspace must equal a full evaluation of the new incumbent, and the next move's
    score (from the same, reused candidate workspace) a full evaluation of its candidate."""
    rng = np.random.default_rng(seed)
    adopted = 0
    for label, d, sc, sol in cases(seed):
        if int(sol.cur[3]) == CYCLE:
            continue
        P = problem_arrays(sc)
        sol = sol.copy()
        Wc, W_full = workspace_for(P), workspace_for(P)
        cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
        build_admissions(P, sol.hosp, sol.W)
        for step in range(40):
            moves = random_moves(P, sol, int(rng.integers(1 << 30)))
            if len(moves) == 0:
                break
            move = moves[int(rng.integers(len(moves)))]
            slot_owner, slot_of = tables(P, sol)
            F, o, T, st = evaluate_move(P, *(int(x) for x in move), sol.starts, sol.order, sol.hosp, sol.pins,
                                        sol.W, sol.cur, slot_owner, slot_of, count_shift(P, sol.starts, sol.W),
                                        cs, co, ch, Wc)
            if st == CYCLE:
                continue
            local = Wc.gen[LOCAL] == 1 and step % 3 != 2
            cs, co, ch = candidate(sol, move)  # the whole candidate, as the annealing loop takes it over
            if local:
                adopt(P, sol.starts, cs, sol.pins, sol.W, Wc)
                adopted += 1
            elif step % 3 == 2:
                # every third step the incumbent becomes another plan than the one just scored,
                # by a full re-evaluation: the reused candidate workspace must notice
                other = moves[int(rng.integers(len(moves)))]
                cs, co, ch = candidate(sol, other)
                move = other
            sol.starts[:], sol.order[:], sol.hosp[:] = cs, co, ch
            if not local:
                sol.reevaluate()
                if int(sol.cur[3]) == CYCLE:
                    break
                build_admissions(P, sol.hosp, sol.W)
            else:
                readmit(P, sol.hosp, sol.W, Wc)  # the admission order carried over, as annealing does
                sol.cur[:] = (F, o, T, st)
            want = evaluate(P, sol.starts, sol.order, sol.hosp, sol.pins, W_full)
            build_admissions(P, sol.hosp, W_full)
            assert has_admissions(sol.W) and np.array_equal(sol.W.adm_start, W_full.adm_start) and np.array_equal(
                sol.W.adm[:W_full.adm_start[-1]], W_full.adm[:W_full.adm_start[-1]]), \
                f"{label} step {step}: admission order carried over != built afresh\n{_repro(d, sc, sol, move)}"
            admitted = W_full.adm[:W_full.adm_start[-1]]
            assert np.array_equal(sol.W.nxt[admitted], W_full.nxt[admitted]), \
                f"{label} step {step}: admission places carried over != built afresh\n{_repro(d, sc, sol, move)}"
            assert all(_same(x, y) for x, y in zip(sol.cur[:3], want[:3])) and int(sol.cur[3]) == want[3], \
                f"{label} step {step}: objective {tuple(sol.cur)} != full {want}\n{_repro(d, sc, sol, move)}"
            wrong = _workspace_mismatch(P, sol.starts, sol.W, W_full)
            assert wrong is None, f"{label} step {step}, move {tuple(int(x) for x in move)}: {wrong}"
    assert adopted >= 50
