"""Descent's follow-up moves (kernels/followups.py) against a pure-Python reference.

Over the scenarios and starting plans of ``test_moves`` (treats, pinned prefixes, trapped
casualties, HART teams, shift ends, 0- and 1-bed hospitals, wait cycles), each case runs a few
descent iterations as ``Descent.propose`` / ``accept`` make them: sweep the full neighbourhood,
take the best move (``first``), rank the other improving moves best first with what each gained
in the sweep, commit ``first``, then ``apply_followups``. ``reference.followups`` does the same
from the rule alone, with its own list moves and a full ``reference.evaluate`` of every candidate
plan. Both must apply the same moves in the same order (in the slots of the plan each was applied
to), score as many candidates, end on the same lists and hospitals, and the kernel's objective
must be the reference's (1e-9). Limits of 0, 1, 2 and all are used, every other call in assert
mode (``check``: each applied move's score against a full evaluation), and some cases go through
``Descent`` itself with its sweep memo (``track=True``), whose next sweep must then equal a plain
one. The cases must skip candidates for every reason and apply some; gains of +inf must stop
every move and gains of -inf let weakened ones through; a ``first`` into a wait cycle (which
descent never takes) must stop everything.
"""

from __future__ import annotations

import collections
import functools
import json
import math

import numpy as np
import pytest

import engine.algorithms as algorithms
import reference
from engine.algorithms import Descent, SearchState, _by_merit, _improving
from engine.memo import SweepMemo
from engine.plan import problem_arrays
from kernels.followups import OUT_WIDTH, apply_followups
from kernels.layout import CYCLE, FEASIBLE, SHIFT, workspace_for
from kernels.memo import META_SIZE
from kernels.moves import MOVE_NAMES
from kernels.search import better, commit, pick_best

from test_moves import SEEDS, _lists, cases, full_moves, run_sweep

TOL = 1e-9
ITERATIONS = 8  # descent iterations per case, at most (a local optimum ends them)
LIMITS = (None, 1, None, 0, 2)  # None: every candidate, as descent calls it
RANK = {FEASIBLE: 0, SHIFT: 1, CYCLE: 2}


def _sweep(sol):
    P = problem_arrays(sol.sc)
    moves = full_moves(P, sol)
    F, T, st = run_sweep(P, sol, moves, 2)
    return moves, F, T, st


def _propose(sol, moves, F, T, st):
    """``Descent.propose``'s ``(first, cand, gain)``, or ``None`` at a local optimum."""
    m = len(moves)
    best = pick_best(F, T, st, m, np.ones(m, dtype=np.bool_))
    c = sol.cur
    if best < 0 or not better(F[best], T[best], st[best], c[0], c[2], int(c[3])):
        return None
    rest = _improving(F, T, st, c)
    rest[best] = False
    ranked = _by_merit(rest, F, T, st)
    return moves[best].copy(), np.ascontiguousarray(moves[ranked]), c[0] - F[ranked]


def _kernel(sol, first, cand, gain, limit, check=False, floor=math.nan):
    """Commit ``first`` to ``sol`` and run ``apply_followups`` as ``Descent._follow`` does
    (``track=False``; ``check``: assert mode, each applied move also evaluated in full); returns
    ``(applied moves, out rows, scored, floor)``."""
    P = problem_arrays(sol.sc)
    starts0, order0 = sol.starts.copy(), sol.order.copy()
    cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
    sol.cur[:] = commit(P, *first, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, cs, co, ch)
    stamp, meta = np.zeros(1, np.int64), np.zeros(META_SIZE, np.int64)
    out = np.empty((len(cand), OUT_WIDTH))
    done, scored, floor = apply_followups(P, cand, gain, len(cand), first, starts0, order0, sol.starts, sol.order,
                                          sol.hosp, sol.pins, sol.W, sol.cur, False, stamp, meta, workspace_for(P),
                                          cs, co, ch, limit, check, out, floor)
    return _rows(out, done), out[:done], int(scored), floor


def _rows(out, done):
    return [tuple(int(x) for x in row[:4]) for row in out[:done]]


def _repro(d, sc, lists0, hosp0, pins, first, cand, gain, limit, floor) -> str:
    plan = reference.plan_of(sc, lists0, hosp0, pins)
    return (f"scenario = {json.dumps(d)}\nplan = {json.dumps(plan.to_json())}\n"
            f"first = {tuple(int(x) for x in first)}\ncand = {cand.tolist()}\ngain = {gain.tolist()}\nlimit = {limit}"
            f"\nfloor = {floor!r}")


def compare(d, sc, before, sol, first, cand, gain, limit, got, out, scored, stats, floor=math.nan,
            got_floor=math.nan) -> str | None:
    """What differs between the kernel's follow-ups (``got``, ``out``, ``scored``, ``got_floor``,
    ``sol`` after them, from ``floor``) and the reference's from the swept plan ``before =
    (lists, hosp, pins)``; ``None`` if nothing. Counts each candidate's outcome in ``stats``."""
    lists0, hosp0, pins = before
    want_lists, want_hosp, want, outcome, want_scored, want_floor = reference.followups(
        sc, lists0, hosp0, pins, first, cand, gain, limit, floor)
    stats.update(outcome)
    for move, what in zip(cand, outcome):
        if what == "applied":
            stats[f"applied {MOVE_NAMES[int(move[0])]}"] += 1
    final = reference.objective(reference.evaluate(sc, reference.plan_of(sc, want_lists, want_hosp, pins)))
    problems = []
    if got != want:
        problems.append(f"applied {got}, reference {want}")
    if scored != want_scored:
        problems.append(f"scored {scored}, reference {want_scored}")
    if not (abs(got_floor - want_floor) <= TOL or math.isnan(got_floor) and math.isnan(want_floor)):
        problems.append(f"floor {got_floor!r}, reference {want_floor!r}")
    if _lists(sol) != want_lists or sol.hosp.tolist() != list(want_hosp):
        problems.append(f"final plan {_lists(sol)} {sol.hosp.tolist()}, reference {want_lists} {list(want_hosp)}")
    F, T, st = sol.cur[0], sol.cur[2], int(sol.cur[3])
    if RANK[st] != final[0] or (st != CYCLE and not (abs(F - final[1]) <= TOL and abs(T - final[2]) <= TOL)):
        problems.append(f"objective F={F!r} T={T!r} status {st}, reference {final}")
    for row in out:  # each applied move's score against the full evaluation after it (assert mode)
        if not (abs(row[4] - row[6]) <= TOL and abs(row[5] - row[7]) <= TOL):
            problems.append(f"move {_rows(row[None], 1)}: predicted F, T {row[4:6]}, full {row[6:]}")
    if not problems:
        return None
    return "\n".join(problems + [f"outcomes {outcome}",
                                  _repro(d, sc, lists0, hosp0, pins, first, cand, gain, limit, floor)])


@functools.lru_cache(maxsize=None)
def run_seed(seed):
    """Descent iterations from every case of ``seed``, kernel against reference; returns
    ``(mismatches, stats)``."""
    bad, stats = [], collections.Counter()
    k = 0
    for label, d, sc, start in cases(seed):
        sol = start.copy()
        stats[f"start {int(sol.cur[3])}"] += 1
        for it in range(ITERATIONS):
            moves, F, T, st = _sweep(sol)
            prop = _propose(sol, moves, F, T, st)
            if prop is None:
                stats["local optimum"] += 1
                break
            first, cand, gain = prop
            limit = LIMITS[k % len(LIMITS)]
            limit = len(cand) if limit is None else limit
            k += 1
            stats["calls"] += 1
            stats["candidates"] += len(cand)
            stats["no candidates"] += len(cand) == 0
            stats[f"swept {int(sol.cur[3])}"] += 1
            before = (_lists(sol), sol.hosp.tolist(), sol.pins.tolist())
            check = k % 2 == 0
            # none; the swept plan's F (descent's floor when it has only gone down); below it, so
            # that moves gaining less than the swept plan's gap to it are barred
            floor = (math.nan, sol.cur[0], sol.cur[0] - 1e-3, sol.cur[0] - 0.05)[k % 4]
            got, out, scored, got_floor = _kernel(sol, first, cand, gain, limit, check, floor)
            stats[f"limit {min(limit, 3)}"] += 1
            stats["checked"] += check and len(got) > 0
            wrong = compare(d, sc, before, sol, first, cand, gain, limit, got, out, scored, stats, floor, got_floor)
            if wrong:
                bad.append(f"{label}, iteration {it}:\n{wrong}")
                break
    return bad, stats


@pytest.mark.parametrize("seed", SEEDS)
def test_followups_equal_the_reference(seed):
    bad, stats = run_seed(seed)
    assert stats["calls"] >= 20, stats
    assert not bad, f"{len(bad)} mismatches, first:\n" + bad[0]


def test_cases_apply_some_and_skip_for_every_reason():
    """Not vacuous: across the cases the follow-ups apply moves of several kinds, and skip
    candidates for each reason: a list changed, a treat changed, a gain weakened, no longer
    better, above the floor, the limit reached; with limits 0, 1 and all, empty candidate
    lists, and swept plans that were feasible, over a shift end or in a wait cycle."""
    stats = collections.Counter()
    for seed in SEEDS:
        stats.update(run_seed(seed)[1])
    assert stats["applied"] >= 50, stats
    for reason in ("list", "treat", "gain", "worse", "floor", "stopped"):
        assert stats[reason] >= 3, (reason, stats)
    assert sum(stats[f"applied {name}"] > 0 for name in MOVE_NAMES) >= 4, stats
    assert stats["limit 0"] >= 5 and stats["limit 1"] >= 5 and stats["no candidates"] >= 1, stats
    assert stats[f"swept {FEASIBLE}"] >= 20 and stats[f"swept {SHIFT}"] >= 5 and stats[f"swept {CYCLE}"] >= 5, stats


def test_descent_with_its_memo_equals_the_reference(monkeypatch):
    """The same through ``Descent`` itself, its sweep memo stamping each follow-up
    (``track=True``), every other case in assert mode: the same moves as the reference, and the
    memo's next sweep equals a plain sweep of the plan the follow-ups left."""
    calls = []

    def spy(*args):
        done, scored, floor = apply_followups(*args)
        calls.append((args[13], args[-2][:done].copy(), int(scored), args[-1]))  # (track, out, scored, floor)
        return done, scored, floor

    monkeypatch.setattr(algorithms, "apply_followups", spy)
    # the memo itself after every sweep's follow-ups: never a plain sweep in its stead
    monkeypatch.setattr(SweepMemo, "PLAIN_ABOVE", math.inf)
    bad, stats = [], collections.Counter()
    for seed in SEEDS[:4]:
        for i, (label, d, sc, start) in enumerate(cases(seed)[::2]):
            state = SearchState(start.copy(), start.copy(), assert_moves=i % 2 == 1)  # assert mode: check
            descent = Descent()
            for it in range(ITERATIONS):
                sol = state.current
                before = (_lists(sol), sol.hosp.tolist(), sol.pins.tolist())
                proposal = descent.propose(state)
                if proposal is None:
                    break
                if proposal.followups is None:  # swept in a wait cycle: the best move alone
                    assert int(sol.cur[3]) == CYCLE
                    stats["cycle"] += 1
                    cand, gain = np.empty((0, 4), np.int64), np.empty(0)
                else:
                    cand, gain = proposal.followups[2:]
                del calls[:]
                descent.accept(state, proposal)
                if not len(cand):
                    assert not calls
                    continue
                (track, out, scored, floor), = calls
                stats["tracked"] += track
                got = _rows(out, len(out))
                wrong = compare(d, sc, before, state.current, proposal.move, cand, gain, len(cand), got, out, scored,
                                stats, floor, descent._floor[3])
                if wrong:
                    bad.append(f"{label}, iteration {it}:\n{wrong}")
                    break
                P = problem_arrays(sc)
                moves = full_moves(P, state.current)
                n = len(moves)
                F, T, st = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
                state.memo.score(state.current, moves, n, F, T, st, 2)
                F2, T2, st2 = run_sweep(P, state.current, moves, 2)
                ok = (st == st2) & ((np.isnan(F) & np.isnan(F2)) | (np.abs(F - F2) <= TOL)) & (
                    (np.isnan(T) & np.isnan(T2)) | (np.abs(T - T2) <= TOL))
                if not ok.all():
                    j = int(np.flatnonzero(~ok)[0])
                    bad.append(f"{label}, iteration {it}: after the follow-ups the memo scores move "
                               f"{tuple(moves[j])} {F[j], T[j], st[j]}, a plain sweep {F2[j], T2[j], st2[j]}")
                    break
    assert not bad, f"{len(bad)} mismatches, first:\n" + bad[0]
    assert stats["tracked"] >= 20 and stats["applied"] >= 10, stats


def test_the_gain_rule_matters():
    """With every gain +inf nothing is applied, though candidates are scored; with every gain
    -inf moves the true gains leave out (weakened ones) are applied, as the reference applies them."""
    scored = weakened = 0
    for seed in SEEDS[:4]:
        for label, d, sc, start in cases(seed):
            sol = start.copy()
            prop = _propose(sol, *_sweep(sol))
            if prop is None:
                continue
            first, cand, gain = prop
            runs = {}
            for name, g in (("true", gain), ("+inf", np.full(len(cand), math.inf)),
                            ("-inf", np.full(len(cand), -math.inf))):
                trial = sol.copy()
                before = (_lists(trial), trial.hosp.tolist(), trial.pins.tolist())
                got, out, n, got_floor = _kernel(trial, first, cand, g, len(cand))
                if name != "true":  # (the true gains: test_followups_equal_the_reference)
                    wrong = compare(d, sc, before, trial, first, cand, g, len(cand), got, out, n,
                                    collections.Counter(), got_floor=got_floor)
                    assert wrong is None, f"{label}, gains {name}:\n{wrong}"
                runs[name] = got
                scored += n if name == "+inf" else 0
            assert runs["+inf"] == [], label
            weakened += runs["-inf"] != runs["true"]
    assert scored >= 50 and weakened >= 3, (scored, weakened)


def test_nothing_follows_a_first_move_into_a_wait_cycle():
    """Descent never takes a move into a wait cycle, but if ``first`` left one, nothing would be
    scored or applied: the reference stops there too."""
    n = 0
    for seed in SEEDS[:4]:
        for label, d, sc, start in cases(seed):
            sol = start.copy()
            if int(sol.cur[3]) == CYCLE:
                continue
            moves, F, T, st = _sweep(sol)
            into = np.flatnonzero(st == CYCLE)
            prop = _propose(sol, moves, F, T, st)
            if prop is None or not len(into) or not len(prop[1]):
                continue
            _first, cand, gain = prop
            first = moves[into[0]].copy()
            before = (_lists(sol), sol.hosp.tolist(), sol.pins.tolist())
            got, out, scored, got_floor = _kernel(sol, first, cand, gain, len(cand))
            assert int(sol.cur[3]) == CYCLE and got == [] and scored == 0, label
            wrong = compare(d, sc, before, sol, first, cand, gain, len(cand), got, out, scored, collections.Counter(),
                            got_floor=got_floor)
            assert wrong is None, f"{label}:\n{wrong}"
            n += 1
    assert n >= 10, n
