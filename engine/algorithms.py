"""Search algorithms over a ``Solution``: best-improvement descent, tabu search, annealing.

Each one advances the search by a chunk of iterations with ``run(state, n)``, compiled work
inside, so that ``solve`` (and the online planner) can check stopping criteria, call callbacks and
apply model changes between chunks. One iteration is one full neighbourhood sweep for descent
and tabu (descent applies its best move and the others that still improve after it; tabu does
the same to its first local optimum, then applies one move a sweep), one Metropolis step for
annealing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numba
import numpy as np

from kernels.config import ASSERT_REL, ASSERT_TOL
from kernels.followups import OUT_WIDTH, apply_followups
from kernels.layout import ACTIVE, CYCLE, FEASIBLE, KINDS, RESCUE, TREAT, workspace_for
from kernels.memo import META_SIZE
from kernels.moves import INSERT_TREAT, RELOCATE, enumerate_moves
from kernels.search import (TIE, anneal_chunk, better, commit, pick_best, pick_diversified, sample_deltas, sweep,
                            tabu_allowed, tabu_count, tabu_record)

from .accept import START_ACCEPT, Outcome, SimulatedAnnealing
from .memo import SweepMemo
from .neighbourhood import nearest_casualties, nearest_hospitals
from .plan import problem_arrays
from .solution import Solution

#: Above this many planned tasks, neighbourhoods become granular (k nearest casualties).
GRANULAR_ABOVE = 400


class MoveMismatch(AssertionError):
    """Assert mode: a move's delta-evaluated objective differs from a full re-evaluation."""


def assert_mode_default() -> bool:
    return os.environ.get("GOLDENHOUR_ASSERT", "") not in ("", "0")


@dataclass
class SearchState:
    """The current solution, the best one found, and counters, shared by all algorithms."""

    current: Solution
    best: Solution
    iterations: int = 0
    evaluations: int = 0
    applied: int = 0  # moves applied (accepted, for annealing)
    assert_moves: bool = False
    neigh: np.ndarray | None = None
    hosp_neigh: np.ndarray | None = None
    _moves: np.ndarray = field(default_factory=lambda: np.empty((0, 4), dtype=np.int64))
    memo: SweepMemo = field(default_factory=SweepMemo)

    def improve_best(self) -> bool:
        c, b = self.current.cur, self.best.cur
        if better(c[0], c[2], int(c[3]), b[0], b[2], int(b[3])):
            self.best = self.current.copy()
            return True
        return False

    def neighbourhoods(self) -> tuple[np.ndarray, np.ndarray]:
        """Each casualty's nearest casualties and hospitals when the plan is large enough for
        granular neighbourhoods, else arrays of width 0 (the whole neighbourhood)."""
        sol = self.current
        P = problem_arrays(sol.sc)
        if sol.starts[-1] <= GRANULAR_ABOVE:
            empty = np.zeros((len(P.h0), 0), dtype=np.int64)
            return empty, empty
        if self.neigh is None:  # built on first need
            self.neigh, self.hosp_neigh = nearest_casualties(P), nearest_hospitals(P)
        return self.neigh, self.hosp_neigh

    def moves(self) -> tuple[np.ndarray, int]:
        """The current solution's whole (or granular) neighbourhood."""
        sol = self.current
        P = problem_arrays(sol.sc)
        neigh, hneigh = self.neighbourhoods()
        while True:
            n = enumerate_moves(P, sol.starts, sol.order, sol.hosp, sol.pins, neigh, hneigh, self._moves)
            if n <= len(self._moves):
                # exactly the moves: the sweeps read runs of one task's relocations up to the
                # array's end (kernels.score.worth_without), and past n are an earlier sweep's
                moves = self._moves[:n]
                if neigh.shape[1]:
                    moves = _with_moves_to_idle_teams(P, sol, moves)
                return moves, len(moves)
            self._moves = np.empty((int(n * 1.25) + 16, 4), dtype=np.int64)


def _with_moves_to_idle_teams(P, sol: Solution, moves: np.ndarray) -> np.ndarray:
    """``moves`` and the relocation of every task that may move to each team with no task it
    may lose (an empty list, or only issued tasks), to the first place after its pins; and, to
    a paramedic team of these, the treat of every casualty that may have one and has none.

    A granular neighbourhood tries a task only next to its nearest casualties' tasks: a team
    without such tasks (one just added, or one whose list the search emptied) was never given
    work by descent or tabu. Such teams are few, so this costs little."""
    idle = np.flatnonzero(np.diff(sol.starts) == sol.pins)
    if not len(idle):
        return moves
    n = int(sol.starts[-1])
    owner = np.repeat(np.arange(len(sol.pins)), np.diff(sol.starts))
    slots = np.flatnonzero(np.arange(n) - sol.starts[owner] >= sol.pins[owner])  # the tasks that may move
    rescue = sol.order[slots] % KINDS == RESCUE
    extra = [_rows(RELOCATE, slots[rescue == P.resp_fire[r]], r, sol.pins[r]) for r in idle.tolist()]
    # and a treat for each casualty that may have one and has none (kernels.moves: the end of any
    # paramedic team's list is in the full neighbourhood)
    treated = np.zeros(len(P.status), dtype=np.bool_)
    codes = sol.order[:n]
    treated[codes[codes % KINDS == TREAT] // KINDS] = True
    untreated = np.flatnonzero(P.can_treat & (P.status == ACTIVE) & ~treated)
    extra += [_rows(INSERT_TREAT, untreated, r, sol.pins[r]) for r in idle.tolist() if not P.resp_fire[r]]
    return np.concatenate([moves, *extra]).astype(np.int64, copy=False)


def _rows(kind: int, a: np.ndarray, b: int, c: int) -> np.ndarray:
    """The moves ``(kind, x, b, c)`` for each ``x`` of ``a`` (``kernels.moves``' encoding)."""
    return np.stack([np.full(len(a), kind), a, np.full(len(a), b), np.full(len(a), c)], axis=1)


def _score_all(state: SearchState, record_first: bool = True):
    moves, n = state.moves()
    sol = state.current
    F, T, st = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    state.evaluations += state.memo.score(sol, moves, n, F, T, st, numba.get_num_threads(), record_first)
    if state.assert_moves:
        _check_sweep(state, moves, n, F, T, st)
    return moves, n, F, T, st


def _agree(x, full):
    """Assert mode's tolerance (``kernels.config.ASSERT_REL``)."""
    with np.errstate(invalid="ignore"):
        return np.abs(x - full) <= ASSERT_TOL + ASSERT_REL * np.abs(full)


def _check_sweep(state: SearchState, moves, n, F, T, st) -> None:
    """Assert mode: every remembered or new score against a plain sweep that scores them all."""
    sol = state.current
    F2, T2, st2 = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    sweep(problem_arrays(sol.sc), sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur,
          moves, n, F2, T2, st2, numba.get_num_threads())
    same = (st == st2) & ((np.isnan(F) & np.isnan(F2)) | _agree(F, F2)) & ((np.isnan(T) & np.isnan(T2)) | _agree(T, T2))
    if not same.all():
        i = int(np.flatnonzero(~same)[0])
        raise MoveMismatch(f"move {tuple(int(x) for x in moves[i])}: the sweep gave F={F[i]!r}, T={T[i]!r}, "
                           f"status {st[i]}; scoring it afresh gives F={F2[i]!r}, T={T2[i]!r}, status {st2[i]}")


def _apply(state: SearchState, move, predicted: tuple[float, float]) -> None:
    sol = state.current
    cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
    state.memo.applying(sol, move)
    sol.cur[:] = commit(problem_arrays(sol.sc), *move, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, cs, co, ch)
    state.memo.applied(sol)
    state.iterations += 1
    state.applied += 1
    if state.assert_moves:
        _check_move(move, *predicted, sol.cur[0], sol.cur[2])


def _check_move(move, F, T, F_full, T_full) -> None:
    """Assert mode: a move's predicted objective against the full evaluation after it."""
    same = (math.isnan(F) and math.isnan(F_full)) or bool(_agree(F, F_full) and _agree(T, T_full))
    if not same:
        raise MoveMismatch(f"move {tuple(int(x) for x in move)}: delta gave F={F!r}, T={T!r}; "
                           f"full evaluation gives F={F_full!r}, T={T_full!r}")


@dataclass
class Proposal:
    """The move a sweep chose, and its predicted ``(F, T)``: what ``accept`` applies; for descent
    also ``followups``: the swept plan's ``starts`` and ``order``, the sweep's other improving
    moves, best first, and what each gained in ``F`` there (``kernels.followups``)."""

    move: np.ndarray
    predicted: tuple[float, float]
    followups: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


def _improving(F, T, st, cur) -> np.ndarray:
    """Which of the scored moves are ``better`` than the incumbent ``cur``, as a mask: SPEC §7's
    rule as ``kernels.search.better`` states it (feasibility first, then ``F``, then ``T`` where
    the ``F`` differ by at most ``TIE``), so that the two agree to the last bit."""
    rank, r0 = _rank(st), _rank(cur[3])
    with np.errstate(invalid="ignore"):  # a wait cycle's F and T are NaN
        ahead = np.where(np.abs(F - cur[0]) > TIE, F < cur[0], T < cur[2] - TIE)
    return (rank < r0) | ((rank == r0) & (rank != 2) & ahead)


def _rank(status):
    """Feasibility's rank in SPEC §7's comparison: 0 feasible, 1 past a shift's end, 2 a wait cycle."""
    status = np.asarray(status).astype(np.int64)
    return np.where(status == FEASIBLE, 0, np.where(status == CYCLE, 2, 1))


def _within_tie_of(floor: float, F, st, cur):
    """Which moves keep ``F`` within ``TIE`` of ``floor``, or gain feasibility (``Descent``)."""
    with np.errstate(invalid="ignore"):  # no floor (NaN) bars nothing
        return (_rank(st) < _rank(cur[3])) | ~(F > floor + TIE)


def _by_merit(mask, F, T, st) -> np.ndarray:
    """The indices of the masked moves, best first (feasibility, then ``F``, ``T``, the sweep's order)."""
    idx = np.flatnonzero(mask)
    rank = np.where(st[idx] == FEASIBLE, 0, 1)
    return idx[np.lexsort((idx, T[idx], F[idx], rank))]


def _proposal(moves, best: int, F, T) -> Proposal:
    return Proposal(moves[best].copy(), (F[best], T[best]))


class _Sweeping:
    """An iteration is ``propose`` (a sweep of the whole neighbourhood: reads ``state.current``,
    writes only the memo) then ``accept`` (applies the chosen move), so that the online planner
    can sweep without holding its lock."""

    def reconsider(self, state: SearchState, proposal: Proposal) -> Proposal | None:
        """``proposal``, swept from a plan with the same arrays as ``state.current`` but another
        model (a delta landed during the sweep), re-scored under ``state``'s model; ``None`` if
        this algorithm would not take it there (descent: it no longer improves)."""
        trial = state.current.copy()
        cs, co, ch = np.empty_like(trial.starts), np.empty_like(trial.order), np.empty_like(trial.hosp)
        F, _o, T, st = commit(problem_arrays(trial.sc), *proposal.move, trial.starts, trial.order, trial.hosp,
                              trial.pins, trial.W, cs, co, ch)
        return Proposal(proposal.move, (F, T)) if self._takes(state, F, T, int(st)) else None

    def _takes(self, state: SearchState, F: float, T: float, status: int) -> bool:
        return True

    def run(self, state: SearchState, n: int) -> tuple[Outcome, bool]:
        """Up to ``n`` iterations; returns the last outcome and whether no move was proposed
        (descent: a local optimum)."""
        outcome = Outcome.REJECT
        for _ in range(n):
            proposal = self.propose(state)
            if proposal is None:
                return Outcome.REJECT, True
            outcome = self.accept(state, proposal)
        return outcome, False


class Descent(_Sweeping):
    """Best improvement: apply the best move of the whole neighbourhood while it helps.

    An iteration is one sweep. The paper applies its best move and sweeps again
    (``followups=False``). By default the sweep's other improving moves are applied after it,
    best first, each only if it is still the same move (the lists it changes are as they were
    swept) and still improves when scored afresh (``kernels.followups``): every applied move
    is exact and improving, and descent still stops only where a whole sweep finds nothing to
    improve. On the London example that took 27 sweeps instead of 182 from ``rule``, at 1 000
    casualties 34 instead of 1 531, to local optima as good (``bench/HISTORY.md``).
    """

    name = "descent"

    def __init__(self, followups: bool = True):
        self.followups = followups
        self._scratch = None  # (problem, workspace) for the follow-up moves' scoring
        self._floor = None  # (state, the F and rank it left the plan at, the lowest F since): _floor_of

    def fresh(self) -> "Descent":
        """A new descent with these settings and nothing of a run (``engine.solve``)."""
        return Descent(followups=self.followups)

    def propose(self, state: SearchState) -> Proposal | None:
        """The best of the moves that improve, or ``None`` at a local optimum (none does).

        The best is chosen among the improving moves only: SPEC §7's 1e-9 tie is not transitive,
        so the best of all moves (the first of two within 1e-9 in ``F``) may tie with the plan
        while a later one, 1.7e-9 lower, improves on it (one in 12 665 fuzzed descents stopped
        there).
        """
        # with follow-ups most lists change between sweeps: a first sweep recorded for the memo
        # is not reused (SweepMemo.score)
        return self.choose(state, *_score_all(state, record_first=not self.followups))

    def choose(self, state: SearchState, moves, m: int, F, T, st) -> Proposal | None:
        """``propose`` from a sweep already made of ``state.current`` (``_score_all``'s arrays)."""
        sol = state.current
        improving = _improving(F[:m], T[:m], st[:m], sol.cur) & _within_tie_of(self._floor_of(state), F[:m], st[:m],
                                                                                 sol.cur)
        best = pick_best(F, T, st, m, improving)
        if best < 0:
            return None
        proposal = _proposal(moves, best, F, T)
        if self.followups and int(sol.cur[3]) != CYCLE:  # a cycle's F is NaN: no gain to keep
            rest = improving.copy()
            rest[best] = False
            ranked = _by_merit(rest, F, T, st)
            proposal.followups = (sol.starts.copy(), sol.order.copy(), np.ascontiguousarray(moves[ranked]),
                                  sol.cur[0] - F[ranked])
        return proposal

    def accept(self, state: SearchState, proposal: Proposal) -> Outcome:
        floor, rank = self._floor_of(state), self._floor[2]
        _apply(state, proposal.move, proposal.predicted)
        c = state.current.cur
        if int(_rank(c[3])) != rank or not floor <= c[0]:  # (NaN: in a wait cycle)
            floor = c[0]
        if proposal.followups is not None and len(proposal.followups[2]):
            floor = self._follow(state, proposal, floor)
        c = state.current.cur
        self._floor = (state, c[0], int(_rank(c[3])), floor)
        return Outcome.BEST if state.improve_best() else Outcome.BETTER

    def _floor_of(self, state: SearchState) -> float:
        """The lowest ``F`` this descent has taken ``state``'s plan to (NaN in a wait cycle).

        SPEC §7's tie is not an order: a move may raise ``F`` by up to ``TIE`` if it lowers
        ``T``, and one that lowers ``F`` by just over ``TIE`` may raise ``T``, so descent went
        round a cycle of such moves for ever (a 1 000-casualty scenario, 10 000 casualties from
        ``rule``). So no move may take ``F`` more than ``TIE`` above the lowest it has reached,
        unless it gains feasibility: the floor falls with each move that wins on ``F``, and
        between two such falls every move wins on ``T``, so no plan comes round again. The
        floor starts afresh whenever the plan is not as descent left it (a delta, another
        algorithm's move) or its feasibility changed.
        """
        c = state.current.cur
        kept = self._floor
        if kept is None or kept[0] is not state or not kept[1] == c[0] or kept[2] != int(_rank(c[3])):
            self._floor = (state, c[0], int(_rank(c[3])), c[0])
        return self._floor[3]

    def _follow(self, state: SearchState, proposal: Proposal, floor: float) -> float:
        sol = state.current
        P = problem_arrays(sol.sc)
        if self._scratch is None or self._scratch[0] is not P:
            self._scratch = (P, workspace_for(P))
        starts0, order0, cand, gain = proposal.followups
        stamps = state.memo.stamps(sol)
        track = stamps is not None
        stamp, meta = stamps if track else (np.zeros(1, np.int64), np.zeros(META_SIZE, np.int64))
        cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
        out = np.empty((len(cand), OUT_WIDTH))
        done, scored, floor = apply_followups(P, cand, gain, len(cand), proposal.move, starts0, order0, sol.starts,
                                              sol.order, sol.hosp, sol.pins, sol.W, sol.cur, track, stamp, meta,
                                              self._scratch[1], cs, co, ch, len(cand), state.assert_moves, out,
                                              float(floor))
        state.applied += done
        state.evaluations += scored
        if track:
            state.memo.applied(sol)
        if state.assert_moves:
            for row in out[:done]:
                _check_move(row[:4], *row[4:])
        return floor

    def _takes(self, state: SearchState, F: float, T: float, status: int) -> bool:
        c = state.current.cur
        return better(F, T, status, c[0], c[2], int(c[3])) and bool(_within_tie_of(self._floor_of(state), F, status, c))


class Tabu(_Sweeping):
    """Best non-tabu move each iteration, even if worse; a task may not return to the responder
    it just left (nor a transport to its previous hospital) for ``tenure`` iterations, unless that
    would give a new best plan (aspiration).

    A long-term memory too (the frequency penalty of Cordeau, Gendreau & Laporte's tabu for
    routing): when no allowed move improves on the current plan, each is judged by its ``F``
    plus ``diversify`` times the plan's ``F`` times the share of the search's iterations that
    moved the tasks it moves (both of a swap). Without it, tabu left no local optimum of the
    London example: among its thousands of moves, some always changed ``F`` by about 1e-5
    (casualties of one site in the same state trading places, tasks whose times hardly matter),
    and the least worsening move was always one of those, for as long as it ran. Scaled so, the
    penalty keeps its size as a search goes on and from scenario to scenario; a fixed weight per
    time moved cost one of the 30 tiny instances its optimum (``bench/HISTORY.md``).

    Until its first local optimum, every step improves and is a new best (which aspiration
    allows whatever is tabu), so tabu descends there as ``Descent`` does, a sweep's other
    improving moves applied too (``followups=False``: one move a sweep throughout). Within the
    CLI's 100 iterations that took the London example and four random paper-size scenarios
    from 128.72 to 125.44 expected fatalities in sum; after 1 000, 123.61 against 123.71.
    """

    name = "tabu"

    def __init__(self, tenure: int = 12, diversify: float = 1.0, followups: bool = True):
        self.tenure = tenure
        self.diversify = diversify
        self.followups = followups
        self._tabu = None
        self._moved = None  # how often each task has been moved (``kernels.search.tabu_count``)
        self._descent = Descent() if followups else None  # the first descent; None from its local optimum

    def fresh(self) -> "Tabu":
        """A new tabu search with these settings and no memory of a run (``engine.solve``)."""
        return Tabu(tenure=self.tenure, diversify=self.diversify, followups=self.followups)

    def _tables(self, sol: Solution):
        if self._tabu is None or len(self._tabu[0]) != len(sol.order):
            n = len(sol.order)
            n_cas = len(sol.hosp)
            self._tabu = (np.full(n, -1, np.int64), np.zeros(n, np.int64),
                          np.full(n_cas, -1, np.int64), np.zeros(n_cas, np.int64))
            self._moved = np.zeros(n, np.int64)
        return self._tabu

    def propose(self, state: SearchState) -> Proposal | None:
        """Descent's proposal until the first local optimum; then the best allowed move (the
        best of all if every one is tabu), judged with the long-term memory when none improves;
        ``None`` if there is no move."""
        moves, m, F, T, st = _score_all(state)
        if self._descent is not None:
            proposal = self._descent.choose(state, moves, m, F, T, st)
            if proposal is not None:
                return proposal
            self._descent = None  # a local optimum: tabu from this same sweep
        if m == 0:
            return None
        sol, b, c = state.current, state.best.cur, state.current.cur
        allowed = np.empty(m, dtype=np.bool_)
        tabu_allowed(moves, m, sol.starts, sol.order, sol.hosp, *self._tables(sol), state.iterations, F, T, st,
                     b[0], b[2], int(b[3]), allowed)
        best = pick_best(F, T, st, m, allowed)
        if best < 0:  # every move is tabu: take the best one regardless, rather than stall
            best = pick_best(F, T, st, m, np.ones(m, dtype=np.bool_))
        elif self.diversify > 0 and not better(F[best], T[best], st[best], c[0], c[2], int(c[3])):
            weight = self.diversify * abs(float(c[0])) / max(state.iterations, 1) if np.isfinite(c[0]) else 0.0
            best = pick_diversified(moves, m, sol.order, F, T, st, allowed, self._moved, weight)
        return _proposal(moves, best, F, T)

    def accept(self, state: SearchState, proposal: Proposal) -> Outcome:
        sol, move = state.current, proposal.move
        # this move is iteration ``iterations + 1``, and iteration j sweeps with ``it = j - 1``: so
        # the ``tenure`` iterations after it sweep with ``it`` below this (it was one fewer: a
        # tenure of 1 forbade nothing, and tabu undid a worsening move at once)
        tabu_record(move[0], move[1], move[2], sol.starts, sol.order, sol.hosp, *self._tables(sol),
                    state.iterations + 1 + self.tenure)
        tabu_count(move[0], move[1], move[2], sol.order, self._moved)
        if self._descent is not None:  # the first descent: only the sweep's best move enters the tabu lists
            return self._descent.accept(state, proposal)
        _apply(state, move, proposal.predicted)
        return Outcome.BEST if state.improve_best() else Outcome.ACCEPT

    def _takes(self, state: SearchState, F: float, T: float, status: int) -> bool:
        return self._descent._takes(state, F, T, status) if self._descent is not None else True


class Annealing:
    """Random moves with Metropolis acceptance; temperatures auto-fitted from sampled deltas and
    cooled over the run's budget; ``reheat`` restarts the cooling after the model changes."""

    name = "annealing"
    #: chance of each move kind: relocate, swap, hospital, insert treat, remove treat, 2-opt,
    #: hospital swap (see kernels.moves.RANDOM_KINDS)
    weights = np.array([0.36, 0.22, 0.14, 0.08, 0.04, 0.08, 0.08])

    def __init__(self, seed: int | None = None, schedule: SimulatedAnnealing | None = None, samples: int = 300,
                 accept_prob: float = START_ACCEPT):
        self.seed = seed  # None: ``solve``'s seed (0 when run otherwise)
        self.accept_prob = accept_prob
        self.schedule = schedule
        self._given = schedule  # the caller's temperatures, if any (``schedule`` may be fitted)
        self.samples = samples
        self._chunk = 0
        self._fit_tasks = 0
        self._scratch = None

    def fresh(self) -> "Annealing":
        """A new annealer with these settings (the temperatures given, not those fitted) and
        nothing of a run (``engine.solve``)."""
        fresh = Annealing(seed=self.seed, schedule=self._given, samples=self.samples, accept_prob=self.accept_prob)
        fresh.weights = self.weights  # (the class's, unless the caller set its own)
        return fresh

    def fit(self, state: SearchState) -> SimulatedAnnealing:
        sol = state.current
        P = problem_arrays(sol.sc)
        out = np.empty(self.samples)
        cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
        m = sample_deltas(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, *self._pools(P),
                          self.weights, *state.neighbourhoods(), self.samples, (self.seed or 0) * 7919 + 17,
                          workspace_for(P), cs, co, ch, out)
        state.evaluations += self.samples
        self._fit_tasks = int(sol.starts[-1])
        return SimulatedAnnealing.autofit(out[:m], accept_prob=self.accept_prob)

    @staticmethod
    def _pools(P):
        return (np.flatnonzero(~P.resp_fire).astype(np.int64), np.flatnonzero(P.resp_fire).astype(np.int64))

    def _scratch_for(self, P, sol: Solution):
        """The teams' pools and the kernel's scratch (a workspace and candidate buffers), kept
        while the problem is the same: online, chunks are short and each rebuild costs a tenth of
        one. The scratch holds nothing from one chunk to the next that a chunk relies on."""
        if self._scratch is None or self._scratch[0] is not P or len(self._scratch[4]) != len(sol.order):
            self._scratch = (P, self._pools(P), workspace_for(P), np.empty_like(sol.starts),
                             np.empty_like(sol.order), np.empty_like(sol.hosp))
        return self._scratch[1:]

    #: refit the temperatures on ``reheat`` once the number of planned tasks has changed this much
    REFIT_CHANGE = 0.25

    def reheat(self, tasks: int | None = None) -> None:
        """Restart the cooling after the model changed (the caller restarts its budget fraction).

        The fitted temperatures are kept while the plan's size stays within ``REFIT_CHANGE`` of
        the size they were fitted on: a typical move's cost barely moves with one delta, and
        re-sampling after each of hundreds of deltas would cost more than the search itself.
        """
        if tasks is None or abs(tasks - self._fit_tasks) > self.REFIT_CHANGE * max(self._fit_tasks, 1):
            self.schedule = None

    def run(self, state: SearchState, n: int, fraction: float = 0.0, fraction_end: float = 1.0) -> tuple[Outcome, bool]:
        """``n`` Metropolis steps while the budget goes from ``fraction`` to ``fraction_end``."""
        schedule = self.schedule  # once: online, ``reheat`` may clear it from another thread
        if schedule is None:
            schedule = self.schedule = self.fit(state)
        sol, best = state.current, state.best
        P = problem_arrays(sol.sc)
        # the kernel cools over [it0, total): map this chunk's share of the budget onto it
        total = max(1, int(round(n / max(fraction_end - fraction, 1e-9))))
        it0 = int(round(fraction * total))
        pools, Wc, cs, co, ch = self._scratch_for(P, sol)
        stats = np.zeros(3, dtype=np.int64)
        bad = np.zeros(8)
        k = anneal_chunk(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, best.starts, best.order,
                         best.hosp, best.cur, *pools, self.weights, *state.neighbourhoods(),
                         schedule.start, schedule.end, it0, total, n, (self.seed or 0) * 1_000_003 + self._chunk,
                         Wc, cs, co, ch, stats, state.assert_moves, bad)
        if k >= 0:
            raise MoveMismatch(f"move {tuple(int(x) for x in bad[:4])}: delta gave F={bad[4]!r}, T={bad[6]!r}; "
                               f"full evaluation gives F={bad[5]!r}, T={bad[7]!r}")
        self._chunk += 1
        state.iterations += n
        state.evaluations += int(stats[0])
        state.applied += int(stats[1])
        if stats[2] > 0:
            best.reevaluate()
            return Outcome.BEST, False
        return (Outcome.ACCEPT if stats[1] else Outcome.REJECT), False


ALGORITHMS = ("rule", "greedy", "descent", "tabu", "annealing")
