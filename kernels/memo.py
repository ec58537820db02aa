"""A sweep that re-scores only the moves the last applied move can have changed.

Descent and tabu apply one move between two sweeps, and that move re-times a few lists, touches a
few casualties and changes a few hospitals' admissions; most other moves score exactly as they
did. A move's delta (``kernels.delta``) reads nothing but

- the lists it re-times (their tasks, times and destinations: ``W.stack[:N_LISTS]``),
- the casualties it touches (their times, ``p_dead`` and hospital: ``W.touched[:N_TOUCHED]``),
- for each hospital whose admissions it changes: the bed count if it moves a casualty in or out;
  if the hospital is over capacity before or after the move, the admissions near its last bed
  (below); otherwise only that the hospital stays within its beds,
- the number of teams that end after their shift (its status counts them).

So each scored move records those *dependencies*, and each applied move stamps what it changed
with the new epoch: a remembered score stays valid while every one of its dependencies is older
than it. Dependencies are ids in one index space: list ``r``; ``R + c`` for casualty ``c``;
``R + C + h`` for hospital ``h``'s bed count, ``R + C + H + h`` for its admissions, and one id,
``R + C + 2H``, for which hospitals are over capacity. That last one is shared: any hospital
going over or back within its beds makes every score that counted on one staying within them
stale. It happens in about one descent iteration in a hundred, and one id per hospital made
hospitals most of a move's dependencies (12 of 20 at 10 000 casualties, where one move in 60 had
more than ``MAX_DEPS`` and could never be reused).

An over-capacity hospital's overflow is every admission beyond its ``cap`` beds. A move that
takes ``s`` of its admissions out of the order and puts them back (their new arrivals, or none)
leaves everyone else's place on the same side of the last bed except the ``s`` admissions
before it, which it may push beyond; and the others it may let in are those ``s`` places around
it too. So the move's change of that hospital's overflow depends only on the incumbent's
admissions within ``s`` places of the last bed (places ``cap - s`` to ``cap + s - 1``: who, their
arrival and ``p_dead``), besides its own casualties. Ids ``score.window_id(h, k)``, after the
ones above, stand for the windows of radius ``2^k`` (``k < score.WINDOWS``); a move re-admitting
more than the widest depends on all the admissions, ``R + C + H + h``. An applied move stamps
each window whose entries it changes. With 18 casualties added to the London example (108
casualties for 96 beds), every admission was the only stale dependency of 45 % of the moves
re-scored; with the windows, descent there re-scores 0.71 as many moves.

Moves are matched from one sweep to the next by where they are within lists (``_key``), not by
flat slot indices, which shift whenever an earlier list grows or shrinks; a matched move on
unchanged lists is the same move. A key keeps its row until the rows are compacted
(``compact``: into the order of the last sweep, without the keys it did not meet), so a sweep
reads a remembered score in place, mostly from the row after the last one read. A reused score
equals a fresh delta evaluation up to rounding (about 1e-15): ``dF`` and ``dT`` are kept relative
to the incumbent they were scored against.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

from .admissions import merge_admissions
from .borrow import borrow
from .config import JIT, PARALLEL
from .delta import evaluate_move
from .layout import CYCLE, GEN, KINDS, N_DIRTY, N_LISTS, N_TOUCHED, TRANSPORT, casualty_of, kind_of
from .moves import HOSPITAL, HOSPITAL_SWAP, INSERT_TASK, INSERT_TREAT, RELOCATE, REMOVE_TREAT, apply_move
from .score import DEP_BLOCK, WINDOWS, deal, incumbent_tables, score_moves, share, window_id

#: Dependencies kept per move; a move with more is always re-scored (at 1 000 casualties, one
#: move in a thousand: those with the longest chains of waits).
MAX_DEPS = 128

#: ``meta``: the current epoch; the first epoch whose scores may be reused (older ones are
#: stale for good: the shift-overrun count changed, or a move was applied without stamps);
#: that count; whether the last sweep's scores may be used at all; how many rows are taken; how
#: many moves of the last sweep found their row away from where the one before left off; how
#: many moves all sweeps so far have met (``MoveMemo.met``).
EPOCH, VALID_FROM, N_SHIFT, READY, ROWS, STRAYS, MET = range(7)
META_SIZE = 7

MoveMemo = namedtuple(
    "MoveMemo",
    [
        "keys",     # i8[2^k] open-addressing table of move keys (-1: empty)
        "index",    # i8[2^k] the row of each key
        "row_key",  # i8[rows] the key of each row
        "dF",       # f8[rows] F after the move minus the incumbent's, when scored
        "dT",       # f8[rows] the same for T
        "status",   # i8[rows]
        "epoch",    # i8[rows] the epoch the move was scored in
        "deps",     # i2[MAX_DEPS // DEP_BLOCK, rows, DEP_BLOCK]: dependency k of a row in block k // DEP_BLOCK
        "n_deps",   # i8[rows]; -1: not reusable
        "move_row",  # i8[rows] the row each move of the last sweep used (``compact`` reads it)
        "met",      # i8[rows] meta[MET] + i when move i of this sweep met the row (earlier sweeps: less)
    ],
)


def make_memo(rows: int, n_ids: int) -> MoveMemo:
    """Room for ``rows`` distinct moves (the table at most half full) with dependency ids below
    ``n_ids`` (16-bit while they fit: the dependencies are most of the memo's memory)."""
    size = 1 << max(4, int(2 * max(rows, 1) - 1).bit_length())
    return MoveMemo(np.full(size, -1, np.int64), np.zeros(size, np.int64), np.full(rows, -1, np.int64),
                    np.zeros(rows), np.zeros(rows),
                    np.zeros(rows, np.int64), np.zeros(rows, np.int64),
                    np.zeros((MAX_DEPS // DEP_BLOCK, rows, DEP_BLOCK), np.int16 if n_ids < 2 ** 15 else np.int32),
                    np.full(rows, -1, np.int64), np.zeros(rows, np.int64), np.zeros(rows, np.int64))


def dependency_table(memo: MoveMemo, rows: int) -> np.ndarray:
    """The dependencies of rows ``[0, rows)`` as one ``(rows, MAX_DEPS)`` array (for tests and tools;
    entries past a row's ``n_deps`` are meaningless)."""
    return memo.deps[:, :rows, :].transpose(1, 0, 2).reshape(rows, MAX_DEPS).astype(np.int64)


def keys_fit(n_resp: int, n_cas: int, n_hosp: int) -> bool:
    """Whether every move key of a problem this size fits in 63 bits (always, in practice)."""
    rr, pos, ids = n_resp + 1, 3 * n_cas + 2, max(n_cas, n_hosp) + 1
    return 8 * max(rr * pos * rr * pos, ids * rr * pos, ids * ids) < 2 ** 62


@njit(**JIT, inline="always")
def _key(kind, a, b, c, starts, slot_owner, rr, pos, ids):
    """A move's identity in list coordinates: (kind, list, index[, list, index]) or casualties."""
    if kind == HOSPITAL or kind == HOSPITAL_SWAP:
        return kind + 8 * (a + ids * b)
    if kind == INSERT_TREAT:
        return kind + 8 * (a + ids * (b + rr * c))
    A = slot_owner[a]
    pA = a - starts[A]
    if kind == REMOVE_TREAT:
        return kind + 8 * (A + rr * pA)
    if kind == RELOCATE:
        B, pB = b, c
    else:  # SWAP, TWO_OPT
        B = slot_owner[b]
        pB = b - starts[B]
    return kind + 8 * (A + rr * (pA + pos * (B + rr * pB)))


@njit(**JIT, inline="always")
def _row(keys, index, row_key, key, meta):
    """The row of ``key``, taking the next free one (and a table slot) for a new key."""
    mask = keys.shape[0] - 1
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the high bits mix well
    i = np.int64(h >> np.uint64(30)) & mask
    while keys[i] != -1:
        if keys[i] == key:
            return index[i], False
        i = (i + 1) & mask
    j = meta[ROWS]
    meta[ROWS] = j + 1
    keys[i] = key
    index[i] = j
    row_key[j] = key
    return j, True


@njit(**JIT)
def _rows(P, starts, slot_owner, moves, n_moves, memo, meta, first, dup, dup_first):
    """Find each move's row (``memo.move_row``), taking a new one for a new key. Lists the moves
    met for the first time in this sweep in ``first``, and the others in ``dup`` with the index
    of the first time, whose outputs they copy. Returns both counts."""
    P, starts, slot_owner, moves, memo, meta = borrow((P, starts, slot_owner, moves, memo, meta))
    first, dup, dup_first = borrow((first, dup, dup_first))
    n_cas = P.h0.shape[0]
    rr, pos, ids = P.resp_loc.shape[0] + 1, 3 * n_cas + 2, max(n_cas, P.hosp_loc.shape[0]) + 1
    # every array is taken out of its tuple once, so that LLVM need not reload them after stores
    keys, index, row_key, n_deps, move_row, met = (memo.keys, memo.index, memo.row_key, memo.n_deps,
                                                   memo.move_row, memo.met)
    base = meta[MET]
    n_first = 0
    n_dup = 0
    strays = 0
    at = -1  # the row where the sequence of rows left off
    for i in range(n_moves):
        key = _key(moves[i, 0], moves[i, 1], moves[i, 2], moves[i, 3], starts, slot_owner, rr, pos, ids)
        # neighbourhoods are enumerated in nearly the same order every sweep and ``compact`` keeps
        # the rows in that order: this move's row is usually the next one, or the one after when
        # a move of the last sweep is gone, which spares a random probe of the table
        if at + 1 < meta[ROWS] and row_key[at + 1] == key:
            j, new = at + 1, False
        elif at + 2 < meta[ROWS] and row_key[at + 2] == key:
            j, new = at + 2, False
        else:
            j, new = _row(keys, index, row_key, key, meta)
            if not new:
                strays += 1
        if not new or j == at + 1:  # a new row elsewhere (at the end) leaves the sequence alone
            at = j
        move_row[i] = j
        if new:
            n_deps[j] = -1  # never scored: whatever the row held is not this move's
        elif met[j] >= base:  # the same move twice in one neighbourhood: scored once
            dup[n_dup] = i
            dup_first[n_dup] = met[j] - base
            n_dup += 1
            continue
        met[j] = base + i
        first[n_first] = i
        n_first += 1
    meta[MET] = base + n_moves
    meta[STRAYS] = strays
    return n_first, n_dup


@njit(**JIT)
def _reuse(first, lo, hi, move_row, inc, out_F, out_T, out_status, dF, dT, status, when, deps, n_deps, stamp,
           valid_from, reuse, stale):
    """Moves ``first[lo:hi]``: fill in those whose remembered score is still valid (every
    dependency stamped no later than it was scored) and flag the others in ``stale``."""
    first, move_row, inc, out_F, out_T, out_status = borrow((first, move_row, inc, out_F, out_T, out_status))
    dF, dT, status, when, deps, n_deps, stamp, stale = borrow((dF, dT, status, when, deps, n_deps, stamp, stale))
    F0, T0 = inc[0], inc[2]
    for t in range(lo, hi):
        i = first[t]
        j = move_row[i]
        e = when[j]
        ok = reuse and n_deps[j] >= 0 and e >= valid_from
        if ok:
            for x in range(n_deps[j]):
                if stamp[deps[x // DEP_BLOCK, j, x % DEP_BLOCK]] > e:
                    ok = False
                    break
        stale[t] = not ok
        if ok:
            st = status[j]
            out_F[i] = np.nan if st == CYCLE else F0 + dF[j]
            out_T[i] = np.nan if st == CYCLE else T0 + dT[j]
            out_status[i] = st


@njit(**JIT)
def compact(src, dst, meta, n_moves):
    """Copy the rows the last sweep's ``n_moves`` moves used into ``dst``, in the order of those
    moves, and rebuild its table; the rows no move used are dropped.

    Rows are taken in the order moves are first met and stay put, so as lists change the
    sweep's order drifts from the rows' (a move's row is found by a random probe instead of
    the next row) and rows of moves that no longer occur pile up; this restores both.
    """
    src, dst, meta = borrow((src, dst, meta))
    keys, index, row_key, dF, dT, status, when, deps, n_deps, move_row, _met = dst
    placed = np.full(meta[ROWS], -1, np.int64)
    keys[:] = -1
    meta[ROWS] = 0
    for i in range(n_moves):
        j = src.move_row[i]
        if placed[j] >= 0:  # a move met twice in the sweep
            move_row[i] = placed[j]
            continue
        t, _new = _row(keys, index, row_key, src.row_key[j], meta)
        placed[j] = t
        move_row[i] = t
        dF[t] = src.dF[j]
        dT[t] = src.dT[j]
        status[t] = src.status[j]
        when[t] = src.epoch[j]
        n_deps[t] = src.n_deps[j]
        for x in range(max(src.n_deps[j], 0)):
            deps[x // DEP_BLOCK, t, x % DEP_BLOCK] = src.deps[x // DEP_BLOCK, j, x % DEP_BLOCK]


@njit(**PARALLEL)
def sweep_memo(P, starts, order, hosp, pins, Winc, inc, moves, n_moves, out_F, out_T, out_status, n_threads,
               memo, stamp, meta):
    """``kernels.search.sweep`` that reuses the still-valid scores in ``memo``.

    Writes every move's ``F``, ``T`` and status like ``sweep``, and the scores and dependencies
    of the moves it scores anew into their rows. The memo needs a free row for every move (the
    caller makes room). Moves needing a new score are split across ``n_threads`` threads as in
    ``sweep``. Returns how many were scored anew.
    """
    slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
    epoch = meta[EPOCH]
    if n_shift != meta[N_SHIFT]:  # every status may have changed
        meta[N_SHIFT] = n_shift
        meta[VALID_FROM] = epoch
    # an incumbent in a wait cycle is scored by full evaluations, which record no dependencies
    local = int(inc[3]) != CYCLE
    m = max(n_moves, 1)
    first, dup, dup_first = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m, np.int64)
    n_first, n_dup = _rows(P, starts, slot_owner, moves, n_moves, memo, meta, first, dup, dup_first)
    # the rows are taken out of the tuple first: stores through a tuple's field inside ``prange``
    # are lost (the parfor works on a copy of the tuple)
    dF, dT, status, when, deps, n_deps = memo.dF, memo.dT, memo.status, memo.epoch, memo.deps, memo.n_deps
    move_row = memo.move_row
    # checking the remembered scores' dependencies took a fifth of a descent iteration at 1 000
    # casualties on one thread; it is split across the threads too, in halves
    stale = np.empty(m, np.bool_)
    reuse, valid_from = meta[READY] == 1 and local, meta[VALID_FROM]
    n_parts = min(n_threads, max(n_first, 1))
    for part in prange(n_parts):
        _reuse(first, n_first * part // n_parts, n_first * (part + 1) // n_parts, move_row, inc, out_F, out_T,
               out_status, dF, dT, status, when, deps, n_deps, stamp, valid_from, reuse, stale)
    todo, todo_row = np.empty(m, np.int64), np.empty(m, np.int64)
    n_todo = 0
    for t in range(n_first):
        if stale[t]:
            todo[n_todo] = first[t]
            todo_row[n_todo] = move_row[first[t]]
            n_todo += 1
    n_chunks = min(n_threads, max(n_todo, 1))
    dealt, dealt_row = np.empty(max(n_todo, 1), np.int64), np.empty(max(n_todo, 1), np.int64)
    deal(todo, n_todo, n_chunks, dealt)
    deal(todo_row, n_todo, n_chunks, dealt_row)
    scored = moves[:n_moves]  # score.worth_without reads runs to the array's end, not a buffer's
    for chunk in prange(n_chunks):
        score_moves(P, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, scored, dealt,
                    share(chunk, n_todo, n_chunks), share(chunk + 1, n_todo, n_chunks), out_F, out_T, out_status,
                    dealt_row, dF, dT, status, when, deps, n_deps, epoch, local)
    for t in range(n_dup):
        i, first = dup[t], dup_first[t]
        out_F[i] = out_F[first]
        out_T[i] = out_T[first]
        out_status[i] = out_status[first]
    meta[READY] = 1
    return n_todo


@njit(**JIT, inline="always")
def _differs(x, y):
    return x != y and not (np.isnan(x) and np.isnan(y))


@njit(**JIT)
def stamp_move(P, kind, a, b, c, starts, order, hosp, pins, Winc, inc, stamp, meta, W, cs, co, ch):
    """Before move ``(kind, a, b, c)`` is applied: stamp what it changes with the next epoch.

    Scores the move once more in ``W`` and compares with the incumbent (``stamp_scored``). After a
    move out of a wait cycle nothing is reused.
    """
    if int(inc[3]) == CYCLE:
        e = meta[EPOCH] + 1
        meta[EPOCH] = e
        meta[VALID_FROM] = e  # no local scoring to learn from: every older score is stale
        return
    slot_owner, slot_of, n_shift = incumbent_tables(P, starts, order, hosp, Winc)
    _F, _o, _T, st = evaluate_move(P, kind, a, b, c, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of,
                                   n_shift, cs, co, ch, W)
    stamp_scored(P, kind, a, b, c, st, starts, order, hosp, Winc, slot_owner, slot_of, stamp, meta, W, cs, co, ch)


@njit(**JIT)
def stamp_scored(P, kind, a, b, c, st, starts, order, hosp, Winc, slot_owner, slot_of, stamp, meta, W, cs, co, ch):
    """``stamp_move`` for a move ``W`` has just scored against the incumbent (status ``st``; the
    incumbent's slot tables given), as descent's follow-ups have (``kernels.followups``).

    A re-timed list is stamped if its tasks, their times or their destinations change, a touched
    casualty if its times, ``p_dead`` or hospital change, a hospital's admissions if one of theirs
    does, its bed count if that changes, and which hospitals are over capacity if one goes over or
    back within its beds. After a move into a wait cycle nothing is reused.
    """
    starts, order, hosp, Winc, slot_owner, slot_of = borrow((starts, order, hosp, Winc, slot_owner, slot_of))
    P, stamp, meta, W, cs, co, ch = borrow((P, stamp, meta, W, cs, co, ch))
    n_resp = P.resp_loc.shape[0]
    n_cas = P.h0.shape[0]
    n_hosp = P.hosp_loc.shape[0]
    e = meta[EPOCH] + 1
    meta[EPOCH] = e
    if st == CYCLE:
        meta[VALID_FROM] = e
        return
    apply_move(kind, a, b, c, starts, order, hosp, cs, co, ch)  # the whole candidate, to compare
    for x in range(W.gen[N_LISTS]):
        r = W.stack[x]
        n = cs[r + 1] - cs[r]
        changed = n != starts[r + 1] - starts[r]
        j = 0
        while not changed and j < n:
            old, new = starts[r] + j, cs[r] + j
            code = co[new]
            changed = code != order[old] or (j >= W.tail[r] and (
                W.start[new] != Winc.start[old] or W.end[new] != Winc.end[old])) or (
                kind_of(code) == TRANSPORT and ch[casualty_of(code)] != hosp[casualty_of(code)])
            j += 1
        if changed:
            stamp[r] = e
    # a treat added or dropped changes its casualty through a list that may be outside what a
    # remembered move re-timed; every list holding one of its tasks is where such moves look
    if kind == INSERT_TREAT or kind == REMOVE_TREAT or kind == INSERT_TASK:
        if kind == INSERT_TREAT:
            cc = a
        elif kind == REMOVE_TREAT:
            cc = casualty_of(order[a])
        else:
            cc = casualty_of(a)
        for k in range(KINDS):
            s = slot_of[KINDS * cc + k]
            if s >= 0:
                stamp[slot_owner[s]] = e
    state = n_resp + n_cas + n_hosp
    for x in range(W.gen[N_TOUCHED]):
        cc = W.touched[x]
        moved = ch[cc] != hosp[cc]
        if (moved or _differs(W.rescued[cc], Winc.rescued[cc]) or _differs(W.treated_at[cc], Winc.treated_at[cc])
                or _differs(W.pickup[cc], Winc.pickup[cc]) or _differs(W.arrival[cc], Winc.arrival[cc])
                or _differs(W.pdead[cc], Winc.pdead[cc])):
            stamp[n_resp + cc] = e
            if hosp[cc] >= 0:
                stamp[state + hosp[cc]] = e
            if ch[cc] >= 0:
                stamp[state + ch[cc]] = e
    for h in range(n_hosp):
        if W.count[h] != Winc.count[h]:
            stamp[n_resp + n_cas + h] = e
            cap = P.hosp_cap[h]
            if (W.count[h] > cap) != (Winc.count[h] > cap):
                stamp[n_resp + n_cas + 2 * n_hosp] = e
    _stamp_windows(P, Winc, W, ch, stamp, e)


@njit(**JIT, inline="always")
def _stamp_windows(P, Winc, W, ch, stamp, e):
    """Stamp each admission window (``score.window_id``) of the hospitals the move scored in
    ``W`` changed whose entries change: who is admitted at each place, their arrival or ``p_dead``
    (``ch``: the candidate's hospitals). A window reaching past the last admission counts the
    places beyond it as empty."""
    n_resp, n_cas, n_hosp = P.resp_loc.shape[0], P.h0.shape[0], P.hosp_loc.shape[0]
    adm, start, after = Winc.adm, Winc.adm_start, W.buf
    for x in range(W.gen[N_DIRTY]):
        h = W.hlist[x]
        n_old = start[h + 1] - start[h]
        n_new = merge_admissions(h, adm, start, W.arrival, ch, P.status, W.touched, W.gen[N_TOUCHED], W.mark,
                                 W.gen[GEN], W.nxt, after, 0)
        cap = P.hosp_cap[h]
        for k in range(WINDOWS):
            changed = False
            for q in range(max(cap - (1 << k), 0), cap + (1 << k)):
                old = adm[start[h] + q] if q < n_old else -1
                new = after[q] if q < n_new else -1
                if old != new or (old >= 0 and (_differs(W.arrival[old], Winc.arrival[old])
                                                or _differs(W.pdead[old], Winc.pdead[old]))):
                    changed = True
                    break
            if changed:  # and so every wider window
                for j in range(k, WINDOWS):
                    stamp[window_id(n_resp, n_cas, n_hosp, h, j)] = e
                break
