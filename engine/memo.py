"""Scores kept from one neighbourhood sweep to the next (see ``kernels.memo``).

Descent and tabu sweep the whole neighbourhood once per applied move. ``SweepMemo`` holds the
last sweep's scores and what each depended on; the next sweep re-scores only the moves whose
lists, casualties or hospitals the applied move changed. It belongs to one ``SearchState`` and
notices any change it was not told about (a delta, a pin, annealing moves, another scenario):
then it simply scores everything again.

Recording what each move depends on has a price: a sweep that re-scores every move and records
it took 1.2–1.5 times a plain sweep. It pays when few moves are applied between sweeps (tabu
applies one: two thirds of the scores reused), not after descent's follow-ups, which change
most lists between its sweeps (London: 5–37 moves a sweep, 90–100 % of the scores stale until
the last two sweeps). So a sweep after more applied moves than ``PLAIN_ABOVE`` of the lists
(and more than one) scores every move plainly and records nothing, and so does descent's first
sweep of a plan (``record_first``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kernels.layout import workspace_for
from kernels.memo import (EPOCH, META_SIZE, ROWS, STRAYS, VALID_FROM, compact, dependency_table, keys_fit, make_memo,
                          stamp_move, sweep_memo)
from kernels.score import n_dep_ids
from kernels.search import sweep

from .plan import problem_arrays
from .solution import Solution


class Dependencies(NamedTuple):
    """What the remembered rows depend on, for tools and tests (``SweepMemo.dependencies``)."""

    deps: np.ndarray    # (rows, MAX_DEPS) dependency ids; entries past a row's count are not
    live: np.ndarray    # (rows, MAX_DEPS) which entries are the row's
    newer: np.ndarray   # (rows, MAX_DEPS) which of those were stamped after the row was scored
    usable: np.ndarray  # (rows,) whether the row's score could be reused at all
    epoch: np.ndarray   # (rows,) when each row was scored


class SweepMemo:
    #: rows kept per move of a neighbourhood: room for the keys that stop occurring as lists change
    ROOM = 3
    #: the rows are put back in the sweep's order (``kernels.memo.compact``) once more than this
    #: share of a sweep's moves found theirs out of order
    STRAYS = 1 / 4
    #: a sweep after more applied moves than this share of the lists (and more than one) scores
    #: every move plainly: measured on London (16 lists) and 1 000 casualties (170), the memo
    #: re-scored 63–100 % of the moves above it, and below it 23–66 % (``bench/HISTORY.md``)
    PLAIN_ABOVE = 0.07

    def __init__(self):
        self._memo = None
        self._spare = None  # the memo ``compact`` copies into next
        self._stamp = self._meta = None
        self._P = None
        self._scratch = None  # a workspace for stamp_move
        self._seen: tuple | None = None  # the solution as the memo last knew it
        self._swept_at = 0  # the epoch after the last sweep: moves applied since are stamped after it

    def _matches(self, sol: Solution, P) -> bool:
        seen = self._seen
        return (seen is not None and P is self._P and sol.W is seen[0]
                and all(np.array_equal(a, b) for a, b in zip((sol.starts, sol.order, sol.hosp, sol.pins, sol.cur),
                                                             seen[1:])))

    def _remember(self, sol: Solution) -> None:
        self._seen = (sol.W, sol.starts.copy(), sol.order.copy(), sol.hosp.copy(), sol.pins.copy(), sol.cur.copy())

    def _reset(self, P, rows: int) -> None:
        n_resp, n_cas, n_hosp = len(P.resp_loc), len(P.h0), len(P.hosp_loc)
        self._P = P
        n_ids = n_dep_ids(n_resp, n_cas, n_hosp)
        self._memo = make_memo(rows, n_ids)
        self._spare = None
        self._stamp = np.zeros(n_ids, np.int64)
        self._meta = np.zeros(META_SIZE, np.int64)
        self._meta[EPOCH] = 1
        self._swept_at = 1
        self._scratch = workspace_for(P)

    def score(self, sol: Solution, moves: np.ndarray, n: int, F, T, st, n_threads: int,
              record_first: bool = True) -> int:
        """Fill ``F``, ``T``, ``st`` for ``moves[:n]`` like ``kernels.search.sweep``; returns how
        many moves were scored anew (the rest kept their last score).

        With ``record_first=False``, a sweep of a plan the memo does not know (the search's
        first, or the first after a delta) scores plainly and records nothing, for a caller that
        applies many moves after it (descent's follow-ups), which leave nothing of it to reuse:
        descent from ``rule`` at 1 000 casualties took 0.94 times as long (London 0.99).
        """
        P = problem_arrays(sol.sc)
        moves = np.ascontiguousarray(moves)  # a strided view would compile the kernels once more
        if not keys_fit(len(P.resp_loc), len(P.h0), len(P.hosp_loc)):
            # move keys could collide (never below ~10^5 casualties): score every move plainly
            sweep(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st, n_threads)
            self._seen = None
            return n
        known = self._matches(sol, P)
        if not known or self._meta[ROWS] + n > len(self._memo.dF):
            self._reset(P, self.ROOM * n + 16)
            if not known and not record_first:
                return self._plainly(sol, P, moves, n, F, T, st, n_threads)
        elif self._plain(len(P.resp_loc)):
            return self._plainly(sol, P, moves, n, F, T, st, n_threads)
        done = sweep_memo(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st,
                          n_threads, self._memo, self._stamp, self._meta)
        self._swept_at = int(self._meta[EPOCH])
        self._remember(sol)
        capacity = len(self._memo.dF)
        if self._meta[STRAYS] > self.STRAYS * n or self._meta[ROWS] + n + n // 4 > capacity:
            if self._spare is None or len(self._spare.dF) != capacity:
                self._spare = make_memo(capacity, len(self._stamp))
            compact(self._memo, self._spare, self._meta, n)
            self._memo, self._spare = self._spare, self._memo
        return int(done)

    def _plainly(self, sol: Solution, P, moves, n: int, F, T, st, n_threads: int) -> int:
        """A plain sweep, recording nothing: the next sweep scores every move afresh."""
        sweep(P, sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur, moves, n, F, T, st, n_threads)
        self.forget()  # what the rows remember is older than this sweep's scores
        self._swept_at = int(self._meta[EPOCH])
        self._remember(sol)  # moves applied from here are still stamped, and so counted
        return n

    def _plain(self, n_lists: int) -> bool:
        """Whether so many moves were applied since the last sweep that this one scores plainly."""
        applied = int(self._meta[EPOCH]) - self._swept_at  # each stamped move is an epoch
        return applied > max(1.0, self.PLAIN_ABOVE * n_lists)

    def dependencies(self) -> Dependencies:
        """Every remembered row's dependencies and which of them have changed since (the memo
        must have swept once): a score is still valid where its row is ``usable`` and no entry
        is ``newer``."""
        mm, n = self._memo, int(self._meta[ROWS])
        n_deps, epoch = mm.n_deps[:n], mm.epoch[:n]
        deps = dependency_table(mm, n)
        live = np.arange(deps.shape[1])[None, :] < np.maximum(n_deps, 0)[:, None]
        newer = live & (self._stamp[deps] > epoch[:, None])
        return Dependencies(deps, live, newer, (n_deps >= 0) & (epoch >= self._meta[VALID_FROM]), epoch)

    def forget(self) -> None:
        """Keep the buffers but no score: the next sweep scores every move afresh."""
        if self._meta is not None:
            self._meta[EPOCH] += 1
            self._meta[VALID_FROM] = self._meta[EPOCH]

    def applying(self, sol: Solution, move: np.ndarray) -> None:
        """Call just before ``move`` is applied to ``sol``; call ``applied`` just after."""
        if not self._matches(sol, problem_arrays(sol.sc)):
            self._seen = None
            return
        cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
        stamp_move(self._P, *(int(x) for x in move), sol.starts, sol.order, sol.hosp, sol.pins, sol.W, sol.cur,
                   self._stamp, self._meta, self._scratch, cs, co, ch)

    def stamps(self, sol: Solution) -> tuple[np.ndarray, np.ndarray] | None:
        """The memo's ``stamp`` and ``meta`` arrays, for a kernel that stamps the moves it applies
        to ``sol`` (``kernels.followups``; call ``applied`` after it), or ``None`` if the memo
        does not know ``sol`` (its next sweep then scores every move)."""
        if self._seen is None or not self._matches(sol, problem_arrays(sol.sc)):
            return None
        return self._stamp, self._meta

    def applied(self, sol: Solution) -> None:
        if self._seen is not None:
            self._remember(sol)
