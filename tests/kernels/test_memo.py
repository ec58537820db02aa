"""The sweep memo (kernels/memo.py, engine/memo.py): remembered scores equal fresh ones.

Over the scenarios and starting solutions of ``test_moves`` (wait cycles, pins, treats, HART
teams, trapped casualties, shift ends, 0- and 1-bed hospitals), a walk applies moves one at a
time — the best one, a random one, one into a wait cycle and back out — and after every move
the memo's sweep of the full and of the granular neighbourhood is compared, move by move, with
a plain sweep that scores every move afresh. The memo must also actually reuse scores (else the
comparison proves nothing), and without its stamps the comparison must fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.memo as engine_memo
from engine import construct
from engine.algorithms import SearchState, _apply
from engine.generate import generate
from engine.memo import SweepMemo
from engine.plan import problem_arrays
from engine.solve import solve
from kernels.layout import ACTIVE, CYCLE
from kernels.memo import ROWS, STRAYS
from kernels.moves import HOSPITAL
from kernels.search import pick_best

from test_moves import SEEDS, cases, full_moves, granular_moves, run_sweep

TOL = 1e-9
STEPS = 12


def _same(memo_out, plain_out):
    F, T, st = memo_out
    F2, T2, st2 = plain_out
    ok = (st == st2) & ((np.isnan(F) & np.isnan(F2)) | (np.abs(F - F2) <= TOL)) & (
        (np.isnan(T) & np.isnan(T2)) | (np.abs(T - T2) <= TOL))
    return ok


def _memo_sweep(memo, sol, moves, n_threads=2, record_first=True):
    n = len(moves)
    F, T, st = np.full(n, -7.0), np.full(n, -7.0), np.full(n, -7, dtype=np.int64)
    fresh = memo.score(sol, moves, n, F, T, st, n_threads, record_first)
    return (F, T, st), fresh


def _pick(rng, step, moves, out):
    """The best move, a random one, or a move into a wait cycle, in turn."""
    F, T, st = out
    n = len(moves)
    if step % 3 == 0:
        best = pick_best(F, T, st, n, np.ones(n, dtype=np.bool_))
        if best >= 0 and st[best] != CYCLE:
            return best
    cyc = np.flatnonzero(st == CYCLE)
    if step % 3 == 2 and len(cyc):
        return int(rng.choice(cyc))
    ok = np.flatnonzero(st != CYCLE)
    pool = ok if len(ok) else np.arange(n)
    return int(rng.choice(pool))


def _over_capacity(P, sol):
    planned = np.bincount(sol.hosp[(sol.hosp >= 0) & (P.status == ACTIVE)], minlength=len(P.hosp_loc))
    transit = np.bincount(P.transit_hosp[P.transit_hosp >= 0], minlength=len(P.hosp_loc))
    return planned + transit > P.hosp_cap


def walk(seed, stamps=True, flips=None):
    """Walk every case of ``seed``; returns (mismatches, scores reused, scores compared). Each
    applied move that takes a hospital over its beds or back within them is appended to ``flips``."""
    rng = np.random.default_rng(seed)
    bad, reused, compared = [], 0, 0
    for label, _d, _sc, start in cases(seed):
        state = SearchState(start.copy(), start.copy())
        sol = state.current
        P = problem_arrays(sol.sc)
        memos = {"full": SweepMemo(), "granular": SweepMemo()}
        for step in range(STEPS):
            outs = {}
            for name, moves in (("full", full_moves(P, sol)), ("granular", granular_moves(P, sol))):
                if not len(moves):
                    continue
                out, fresh = _memo_sweep(memos[name], sol, moves)
                plain = run_sweep(P, sol, moves, 2)
                ok = _same(out, plain)
                compared += len(moves)
                reused += len(moves) - fresh
                if not ok.all():
                    i = int(np.flatnonzero(~ok)[0])
                    bad.append((label, name, step, tuple(int(x) for x in moves[i]),
                                tuple(float(a[i]) for a in out), tuple(float(a[i]) for a in plain)))
                outs[name] = (moves, out)
            if not outs:
                break
            name = "full" if step % 2 == 0 or "granular" not in outs else "granular"
            moves, out = outs[name]
            i = _pick(rng, step, moves, out)
            # each memo learns of the move only if it scored this very incumbent (both did)
            for memo in memos.values():
                if stamps:
                    memo.applying(sol, moves[i])
            before = _over_capacity(P, sol)
            _apply(state, moves[i].copy(), (out[0][i], out[1][i]))
            for memo in memos.values():
                memo.applied(sol)
            if flips is not None and not np.array_equal(before, _over_capacity(P, sol)):
                flips.append((label, step))
    return bad, reused, compared


@pytest.mark.parametrize("seed", SEEDS)
def test_remembered_scores_equal_fresh_ones(seed):
    flips = []
    bad, reused, compared = walk(seed, flips=flips)
    assert not bad, bad[:5]
    assert flips  # a hospital went over its beds or back within them: its one shared dependency
    assert compared > 2000
    assert reused > compared // 10  # the memo does reuse: the comparison above is not vacuous


def test_without_stamps_stale_scores_are_caught():
    """The check above has teeth: a memo never told what a move changed goes stale."""
    found = any(walk(seed, stamps=False)[0] for seed in SEEDS[:3])
    assert found


def test_a_changed_solution_is_scored_afresh():
    """A change the memo was not told about (here: a move applied behind its back, and a new
    scenario) makes it score every move again, not reuse stale scores."""
    sc = engine.load_scenario(generate("random", seed=4, casualties=12, paramedics=3, fire=1, hospitals=2))
    sol = construct.greedy(sc)
    P = problem_arrays(sc)
    moves = full_moves(P, sol)
    memo = SweepMemo()
    _out, fresh = _memo_sweep(memo, sol, moves)
    assert fresh == len(moves)
    _out, fresh = _memo_sweep(memo, sol, moves)
    assert fresh == 0  # nothing changed: every score reused
    state = SearchState(sol, sol.copy())
    out = run_sweep(P, sol, moves, 1)
    i = pick_best(*out, len(moves), np.ones(len(moves), dtype=np.bool_))
    _apply(state, moves[i].copy(), (out[0][i], out[1][i]))  # the memo is not told
    moves = full_moves(P, sol)
    out, fresh = _memo_sweep(memo, sol, moves)
    assert fresh == len(moves)
    assert _same(out, run_sweep(P, sol, moves, 1)).all()


@pytest.mark.parametrize("plain_above", [SweepMemo.PLAIN_ABOVE, math.inf])
def test_descent_with_memo_equals_descent_without(monkeypatch, plain_above):
    """The memo changes how fast descent and tabu go, not where they go: whether or not some
    sweeps score plainly (``SweepMemo.PLAIN_ABOVE``)."""
    monkeypatch.setattr(SweepMemo, "PLAIN_ABOVE", plain_above)
    scenarios = [generate("random", seed=s, casualties=14, paramedics=3, fire=2, hospitals=3) for s in (5, 6)]
    with_memo = [solve(d, algorithm=a, iterations=it, seed=0).plan.to_json()
                 for d in scenarios for a, it in (("descent", None), ("tabu", 25))]

    def plain(self, sol, moves, n, F, T, st, n_threads, record_first=True):
        F[:], T[:], st[:] = run_sweep(problem_arrays(sol.sc), sol, moves[:n], n_threads)
        return n

    monkeypatch.setattr(engine_memo.SweepMemo, "score", plain)
    without = [solve(d, algorithm=a, iterations=it, seed=0).plan.to_json()
               for d in scenarios for a, it in (("descent", None), ("tabu", 25))]
    assert with_memo == without


def test_assert_mode_catches_a_stale_memo(monkeypatch):
    """In assert mode every sweep is checked against plain scoring: a memo that forgets to stamp
    the moves it is told about fails loudly."""
    from engine.algorithms import MoveMismatch

    monkeypatch.setattr(engine_memo, "stamp_move", lambda *args: None)
    monkeypatch.setattr(SweepMemo, "PLAIN_ABOVE", math.inf)
    d = generate("random", seed=7, casualties=16, paramedics=3, fire=2, hospitals=2)
    with pytest.raises(MoveMismatch):
        solve(d, algorithm="descent", assert_moves=True)


def test_keys_too_large_to_encode_fall_back_to_plain_sweeps(monkeypatch):
    """A problem too big for 63-bit move keys is scored move by move, never from the memo."""
    monkeypatch.setattr(engine_memo, "keys_fit", lambda *args: False)
    sc = engine.load_scenario(generate("random", seed=8, casualties=10, paramedics=3, fire=1, hospitals=2))
    sol = construct.greedy(sc)
    P = problem_arrays(sc)
    moves = full_moves(P, sol)
    memo = SweepMemo()
    for _ in range(2):
        out, fresh = _memo_sweep(memo, sol, moves)
        assert fresh == len(moves)
        assert _same(out, run_sweep(P, sol, moves, 1)).all()


def test_forget_makes_every_score_stale_for_good():
    sc = engine.load_scenario(generate("random", seed=9, casualties=10, paramedics=3, fire=1, hospitals=2))
    sol = construct.greedy(sc)
    moves = full_moves(problem_arrays(sc), sol)
    memo = SweepMemo()
    _memo_sweep(memo, sol, moves)
    memo.forget()
    assert _memo_sweep(memo, sol, moves[::2])[1] == len(moves[::2])  # half the moves: all afresh
    assert _memo_sweep(memo, sol, moves)[1] == len(moves) - len(moves[::2])  # the other half too


def _counting_compact(monkeypatch):
    calls = []
    compact = engine_memo.compact

    def counted(*args):
        calls.append(args[3])
        compact(*args)

    monkeypatch.setattr(engine_memo, "compact", counted)
    return calls


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_scores_survive_compaction(seed, monkeypatch):
    """The walk above with the rows put back in order after every sweep (``kernels.memo.compact``):
    every score still equals a fresh one, and scores are still reused across compactions."""
    monkeypatch.setattr(SweepMemo, "STRAYS", -1.0)
    calls = _counting_compact(monkeypatch)
    bad, reused, compared = walk(seed)
    assert not bad, bad[:5]
    assert len(calls) > 10
    assert reused > compared // 10


def test_compaction_drops_the_rows_no_move_used(monkeypatch):
    monkeypatch.setattr(SweepMemo, "STRAYS", -1.0)
    calls = _counting_compact(monkeypatch)
    sc = engine.load_scenario(generate("random", seed=10, casualties=12, paramedics=3, fire=1, hospitals=2))
    sol = construct.greedy(sc)
    moves = full_moves(problem_arrays(sc), sol)
    # contiguous copies: a strided array would compile every sweep kernel once more (minutes)
    half, rest = np.ascontiguousarray(moves[::2]), np.ascontiguousarray(moves[1::2])
    memo = SweepMemo()
    assert _memo_sweep(memo, sol, moves)[1] == len(moves)
    assert _memo_sweep(memo, sol, half)[1] == 0  # every score remembered ...
    assert memo._meta[ROWS] == len({tuple(m) for m in half.tolist()})  # ... and only half's rows kept
    assert _memo_sweep(memo, sol, half)[1] == 0
    out, fresh = _memo_sweep(memo, sol, rest)
    assert fresh == len(rest)  # the other half was dropped: scored afresh
    assert _same(out, run_sweep(problem_arrays(sc), sol, rest, 1)).all()
    assert len(calls) == 4


def test_rows_follow_the_sweep_after_compaction(monkeypatch):
    """Moves met in a new order find their rows by probing the table (strays); once compacted,
    the same order finds each row next to the last one's."""
    sc = engine.load_scenario(generate("random", seed=11, casualties=12, paramedics=3, fire=1, hospitals=2))
    sol = construct.greedy(sc)
    moves = full_moves(problem_arrays(sc), sol)
    shuffled = np.ascontiguousarray(np.random.default_rng(0).permutation(moves))
    memo = SweepMemo()
    _memo_sweep(memo, sol, moves)
    monkeypatch.setattr(SweepMemo, "STRAYS", 2.0)  # never compacted for strays
    _memo_sweep(memo, sol, shuffled)
    assert memo._meta[STRAYS] > len(moves) // 2
    _memo_sweep(memo, sol, shuffled)
    assert memo._meta[STRAYS] > len(moves) // 2  # still out of order
    monkeypatch.setattr(SweepMemo, "STRAYS", 0.25)
    _memo_sweep(memo, sol, shuffled)  # compacted after this sweep
    assert _memo_sweep(memo, sol, shuffled)[1] == 0
    assert memo._meta[STRAYS] == 0


def _crowded_scenarios():
    """The London example with 18 casualties added at a new site (108 casualties for 96 beds),
    and small random scenarios whose hospitals have a handful of beds for 30 casualties."""
    from bench.memo_staleness import new_site_casualties
    from engine.planner import Planner

    p = Planner(engine.load_scenario("examples/london-5x18.json"), algorithm="descent", seed=0)
    p.apply(new_site_casualties(18, 0.0))
    out = [("london + 18", p.scenario)]
    p.close()
    for seed in (21, 22):
        d = generate("random", seed=seed, casualties=30, paramedics=5, fire=2, hospitals=3)
        for k, h in enumerate(d["hospitals"]):
            h["capacity"] = 3 + 4 * k
        out.append((f"random {seed}", engine.load_scenario(d)))
    return out


def _reused_past_admissions(memo, P) -> int:
    """How many remembered scores are still valid although their hospital's admissions changed
    since they were scored: what depending on the admissions near the last bed alone saves."""
    from kernels.score import WINDOWS

    R, C, H = len(P.resp_loc), len(P.h0), len(P.hosp_loc)
    base = R + C + 2 * H + 1
    deps, live, newer, usable, epoch = memo.dependencies()
    valid = usable & ~newer.any(axis=1)
    window = live & (deps >= base)
    admissions = R + C + H + np.where(window, (deps - base) // WINDOWS, 0)
    return int((valid & (window & (memo._stamp[admissions] > epoch[:, None])).any(axis=1)).sum())


def test_remembered_scores_stay_exact_at_crowded_hospitals():
    """Over-capacity hospitals whose admissions change at every step: each remembered score
    equals a fresh one, and some are reused only because a move depends on the admissions near
    the hospital's last bed rather than on all of them (``kernels.memo``)."""
    rng = np.random.default_rng(0)
    for label, sc in _crowded_scenarios():
        sol = construct.rule(sc)
        P = problem_arrays(sc)
        assert (np.bincount(sol.hosp[sol.hosp >= 0], minlength=len(P.hosp_cap)) > P.hosp_cap).any(), label
        state = SearchState(sol, sol.copy())
        memo, saved = SweepMemo(), 0
        for step in range(10):
            moves = full_moves(P, sol)
            if memo._memo is not None:
                saved += _reused_past_admissions(memo, P)
            out, _fresh = _memo_sweep(memo, sol, moves)
            ok = _same(out, run_sweep(P, sol, moves, 2))
            assert ok.all(), (label, step, tuple(moves[int(np.flatnonzero(~ok)[0])]))
            i = _pick(rng, step, moves, out)
            memo.applying(sol, moves[i])
            _apply(state, moves[i].copy(), (out[0][i], out[1][i]))
            memo.applied(sol)
        assert saved > 0, label


def _stale_beyond_the_first_block(memo) -> int:
    """How many remembered scores are stale only through dependencies past the first block of
    their memo row (``kernels.score.DEP_BLOCK``): reused, they would be wrong."""
    from kernels.score import DEP_BLOCK

    _deps, _live, newer, usable, _epoch = memo.dependencies()
    return int((usable & ~newer[:, :DEP_BLOCK].any(axis=1) & newer[:, DEP_BLOCK:].any(axis=1)).sum())


def test_moves_with_more_dependencies_than_one_block_are_remembered_exactly(monkeypatch):
    """One fire team, every casualty trapped and 45 ambulance teams waiting on its rescues:
    moving a rescue re-times dozens of lists, more dependencies than a memo row's first block
    holds. Some remembered scores go stale only through those, and every score still equals a
    fresh one, also with the rows compacted (and so copied) after every sweep."""
    monkeypatch.setattr(SweepMemo, "STRAYS", -1.0)
    d = generate("random", seed=0, casualties=70, paramedics=45, fire=1, hospitals=3)
    for c in d["casualties"]:
        c["trapped"] = True
    sc = engine.load_scenario(d)
    P = problem_arrays(sc)
    hidden = 0
    # two paths of moves: whether one meets such a stale score depends on the moves it draws
    # (one of them did not, once the neighbourhood grew)
    for path in (0, 1):
        sol = construct.rule(sc)
        state = SearchState(sol, sol.copy())
        memo, rng = SweepMemo(), np.random.default_rng(path)
        for step in range(8):
            moves = full_moves(P, sol)
            if memo._memo is not None:
                hidden += _stale_beyond_the_first_block(memo)
            out, _fresh = _memo_sweep(memo, sol, moves)
            ok = _same(out, run_sweep(P, sol, moves, 2))
            assert ok.all(), (path, step, tuple(moves[int(np.flatnonzero(~ok)[0])]))
            i = _pick(rng, step, moves, out)
            memo.applying(sol, moves[i])
            _apply(state, moves[i].copy(), (out[0][i], out[1][i]))
            memo.applied(sol)
    assert hidden > 0


def test_a_sweep_after_many_applied_moves_scores_every_move_plainly(monkeypatch):
    """Recording what each move depends on costs more than it saves once most scores are stale:
    a sweep after more applied moves than ``PLAIN_ABOVE`` of the lists scores every move plainly
    and records nothing, so the next one scores every move again, and the one after that reuses."""
    d = generate("random", seed=10, casualties=24, paramedics=6, fire=2, hospitals=5)
    for h in d["hospitals"]:
        h["capacity"] = 50  # no hospital goes over its beds, which would make every score stale
    sc = engine.load_scenario(d)
    sol = construct.greedy(sc)
    P = problem_arrays(sc)
    state = SearchState(sol, sol.copy())
    rng = np.random.default_rng(0)
    monkeypatch.setattr(SweepMemo, "PLAIN_ABOVE", 3.5 / len(P.resp_loc))  # plain after 4 moves, not 3

    def sweep_after(k):
        for _ in range(k):  # a hospital move changes one list: most scores stay valid
            moves = full_moves(P, sol)
            F, T, st = run_sweep(P, sol, moves, 1)
            i = int(rng.choice(np.flatnonzero((moves[:, 0] == HOSPITAL) & (st != CYCLE))))
            _apply(state, moves[i].copy(), (F[i], T[i]))  # the memo is told (stamp_move)
        moves = full_moves(P, sol)
        out, fresh = _memo_sweep(state.memo, sol, moves)
        assert _same(out, run_sweep(P, sol, moves, 1)).all()
        return fresh, len(moves)

    fresh, n = sweep_after(0)
    assert fresh == n
    fresh, n = sweep_after(3)
    assert 0 < fresh < n  # three moves: from the memo
    fresh, n = sweep_after(4)
    assert fresh == n  # four: plainly
    fresh, n = sweep_after(1)
    assert fresh == n  # the plain sweep recorded nothing to reuse
    fresh, n = sweep_after(1)
    assert fresh < n
    monkeypatch.setattr(SweepMemo, "PLAIN_ABOVE", 0.0)
    fresh, n = sweep_after(1)
    assert fresh < n  # never plainly after one move, however few the lists


@pytest.mark.parametrize("record_first", [True, False])
def test_a_first_sweep_records_only_if_asked(record_first):
    """Descent, whose follow-ups change most lists after each sweep, asks the memo not to record
    a sweep of a plan it does not know (``record_first=False``): that sweep scores plainly, so
    the next one, after a single move, scores every move again (and records), and the one after
    that reuses. Asked to record (tabu), the sweep after one move already reuses."""
    d = generate("random", seed=10, casualties=24, paramedics=6, fire=2, hospitals=5)
    for h in d["hospitals"]:
        h["capacity"] = 50  # no hospital over its beds: a hospital move leaves most scores valid
    sc = engine.load_scenario(d)
    sol = construct.greedy(sc)
    P = problem_arrays(sc)
    state = SearchState(sol, sol.copy())
    rng = np.random.default_rng(0)
    freshes = []
    for step in range(3):
        moves = full_moves(P, sol)
        out, fresh = _memo_sweep(state.memo, sol, moves, record_first=record_first)
        assert _same(out, run_sweep(P, sol, moves, 1)).all()
        freshes.append(fresh / len(moves))
        F, T, st = out
        i = int(rng.choice(np.flatnonzero((moves[:, 0] == HOSPITAL) & (st != CYCLE))))
        _apply(state, moves[i].copy(), (F[i], T[i]))  # the memo is told (stamp_move)
    assert freshes[0] == 1.0 and freshes[2] < 1.0
    assert (freshes[1] == 1.0) == (not record_first)
