"""Scoring a list of moves against the incumbent: the loop every sweep spends its time in.

``sweep`` and ``sweep_memo`` each split their moves across threads and call ``score_moves`` once
per thread; its loop (``_score``, which borrows every array it is given: ``kernels.borrow``)
inlines ``evaluate_move``, as the annealing loop does: a call per move passing the problem
and two workspaces cost a fifth of a move's time in a sweep at paper size (``python -m
bench.ab_kernels``), and inlining it everywhere it is called made the kernels take four times as
long to compile. It is inlined twice here: against the incumbent, and for a relocation against
the plan without the moved task (``_without``), where only the list it joins is re-timed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .admissions import ensure_admissions
from .borrow import borrow
from .config import JIT
from .delta import evaluate_move_inline
from .evaluate import evaluate
from .layout import ACTIVE, CYCLE, GEN, IDENT, KINDS, N_DIRTY, N_LISTS, N_TOUCHED, RESCUE, kind_of, make_workspace
from .local import count_shift
from .moves import INSERT_TASK, RELOCATE, _rebuild, slot_tables


@njit(**JIT)
def incumbent_tables(P, starts, order, hosp, Winc):
    """What delta evaluation needs about the incumbent: slot owners, task slots, shift overruns,
    and (kept in ``Winc``) every hospital's admission order (``kernels.admissions``)."""
    ensure_admissions(P, hosp, Winc)
    slot_owner = np.empty(max(order.shape[0], 1), np.int64)
    slot_of = np.empty(3 * P.h0.shape[0], np.int64)
    slot_tables(starts, order, P.h0.shape[0], slot_owner, slot_of)
    return slot_owner, slot_of, count_shift(P, starts, Winc)


#: Moves are dealt to threads in blocks of this many: threads writing the outputs and memo rows
#: of neighbouring moves would share their cache lines (dealt one by one, descent at paper size
#: was a tenth slower on two threads)
BLOCK = 64


@njit(**JIT, inline="always")
def _dealt(c, n, k):
    """How many of ``n`` moves dealt to ``k`` threads thread ``c`` gets."""
    blocks = n // BLOCK
    m = max(0, (blocks - c + k - 1) // k) * BLOCK
    if blocks % k == c:
        m += n - blocks * BLOCK
    return m


@njit(**JIT, inline="always")
def share(c, n, k):
    """Where thread ``c``'s share of ``n`` moves dealt to ``k`` threads begins (see ``deal``)."""
    # not ``s = 0``: inlined, a sum begun at the literal 0 had the callee it is passed to
    # (score_moves) compiled twice, once for literal arguments, which no call uses: 2-3 minutes
    # of a cold compilation (bench/HISTORY.md, twentieth session)
    s = c * 0
    for x in range(c):
        s += _dealt(x, n, k)
    return s


@njit(**JIT)
def deal(src, n, k, dst):
    """Deal ``src[:n]`` to ``k`` threads like cards, in blocks of ``BLOCK``: thread ``c`` gets
    blocks ``c, c + k, ...`` as ``dst[share(c, n, k):share(c + 1, n, k)]``.

    Neighbouring moves cost alike (the moves out of one fire team's long list re-time the same
    chains of waits), so contiguous slices gave one thread most of the work: at 1 000
    casualties, descent's sweeps ran 1.15 times faster on two threads than on one.
    """
    starts = np.empty(k, np.int64)
    for c in range(k):
        starts[c] = share(c, n, k)
    for i in range(n):
        b = i // BLOCK
        dst[starts[b % k] + (b // k) * BLOCK + i % BLOCK] = src[i]


@njit(**JIT)
def move_buffers(P, starts, order, hosp):
    """A workspace and candidate buffers for scoring moves: one set per thread."""
    W = make_workspace(P.h0.shape[0], P.resp_loc.shape[0], P.hosp_loc.shape[0], order.shape[0])
    return W, np.empty_like(starts), np.empty_like(order), np.empty_like(hosp)


@njit(**JIT)
def without_buffers(P, starts, order):
    """A plan, its workspace and tables for ``_without``: one set per thread."""
    W = make_workspace(P.h0.shape[0], P.resp_loc.shape[0], P.hosp_loc.shape[0], order.shape[0])
    # an incumbent's name (``layout.SYNC_IDENT``), so a candidate workspace puts back only what
    # its last move changed; Python names its workspaces 1, 2, ...
    W.gen[IDENT] = -1
    return (W, np.empty_like(starts), np.empty_like(order), np.empty(4),
            np.empty(max(order.shape[0], 1), np.int64), np.empty(3 * P.h0.shape[0], np.int64))


@njit(**JIT)
def _without(P, s, starts, order, hosp, pins, Wr, rs, ro, incr, so_r, sof_r):
    """The incumbent without the task in slot ``s``, evaluated in full into ``Wr`` with its
    tables; returns its shift overruns, or -1 if it is caught in a wait cycle.

    A relocation of that task is then scored as its insertion into this plan: the same
    candidate, so the same times and, to rounding, the same ``F`` and ``T``. The relocations of
    one task are enumerated together (about a hundred at paper size, to every list and place),
    and each re-timed the tail of the list it leaves, the same for every destination: scored
    against the plan without it, each re-times only the list it joins.
    """
    P, starts, order, hosp, pins = borrow((P, starts, order, hosp, pins))
    Wr, rs, ro, incr, so_r, sof_r = borrow((Wr, rs, ro, incr, so_r, sof_r))
    # as apply_move drops a treat, with the same literal arguments: no specialisation of its own
    _rebuild(starts, order, rs, ro, s, -1, 0, 0)
    ro[rs[rs.shape[0] - 1]:] = -1
    F, overflow, T, status = evaluate(P, rs, ro, hosp, pins, Wr)
    incr[0], incr[1], incr[2], incr[3] = F, overflow, T, status
    if status == CYCLE:
        return -1
    ensure_admissions(P, hosp, Wr)
    slot_tables(rs, ro, P.h0.shape[0], so_r, sof_r)
    return count_shift(P, rs, Wr)


#: A relocation is scored against the plan without its task only when that task's relocations
#: come in a run of at least this many times the number of lists (``worth_without``).
WITHOUT_RUN_PER_LIST = 2


@njit(**JIT, inline="always")
def worth_without(moves, i, a, n_lists):
    """Whether relocation ``moves[i]`` of the task in slot ``a`` is scored against the plan
    without that task: whether the run of consecutive relocations of it around ``i`` is at least
    ``WITHOUT_RUN_PER_LIST`` times the number of lists long.

    Making that plan is a full evaluation, O(the plan), and each relocation scored against it
    saves the re-timing of the list the task leaves, about the plan over the number of lists: a
    full neighbourhood relocates every task to a hundred or so places at paper size, where it
    pays, but a granular one to a few dozen among thousands of tasks (at 1 000 casualties
    descent took twice as long with it) and the audit's alternative each task once (an issue
    took four times as long). The run is counted in ``moves`` itself, not in a thread's share,
    so every thread decides as one would: the same scores on one thread as on two.
    """
    lo = i
    while lo > 0 and moves[lo - 1, 0] == RELOCATE and moves[lo - 1, 1] == a:
        lo -= 1
    need = WITHOUT_RUN_PER_LIST * n_lists
    hi = i + 1
    while hi < moves.shape[0] and hi - lo < need and moves[hi, 0] == RELOCATE and moves[hi, 1] == a:
        hi += 1
    return hi - lo >= need


#: An over-capacity hospital's overflow change under a move that re-admits ``s`` of its
#: casualties depends only on the admissions within ``s`` places of its last bed (``kernels.memo``):
#: windows of radius 1, 2, 4, ... ``2^(WINDOWS - 1)`` get an id each; a move re-admitting more
#: depends on every admission.
WINDOWS = 5


#: A memo keeps a move's dependencies in blocks of this many (``kernels.memo.MoveMemo.deps``),
#: block ``b`` of every row together: a sweep reads and writes the first block of row after row
#: (a median move has 8), and rows 128 wide made that a cache miss per move, a sixth of the time
#: of a sweep that scores every move at paper size (18.2 against 15.2 ms, one thread). The other
#: blocks are touched only by the few moves with more (at 1 000 casualties, 3 %); otherwise
#: their pages are never allocated.
DEP_BLOCK = 32


def n_dep_ids(n_resp, n_cas, n_hosp):
    """How many dependency ids a problem this size has (``kernels.memo`` lists them)."""
    return n_resp + n_cas + 2 * n_hosp + 1 + WINDOWS * n_hosp


@njit(**JIT, inline="always")
def window_id(n_resp, n_cas, n_hosp, h, k):
    """The id of hospital ``h``'s admissions within ``2^k`` places of its last bed."""
    return n_resp + n_cas + 2 * n_hosp + 1 + WINDOWS * h + k


@njit(**JIT, inline="always")
def _put(deps, i, k, dep):
    """Write ``dep`` as row ``i``'s dependency ``k`` if there is room; returns ``k + 1``."""
    if k < deps.shape[0] * DEP_BLOCK:
        deps[k // DEP_BLOCK, i, k % DEP_BLOCK] = dep
    return k + 1


@njit(**JIT, inline="always")
def record_deps(P, hosp, Winc, W, st, slot_owner, slot_of, deps, n_deps, i):
    """Write the dependencies of the move just scored in ``W`` into memo row ``i``
    (see ``kernels.memo`` for what they are and why).

    A touched casualty all of whose tasks are in re-timed lists needs no entry of its own:
    whatever changes its times changes (and stamps) one of those lists.
    """
    n_resp = P.resp_loc.shape[0]
    n_cas = P.h0.shape[0]
    n_hosp = P.hosp_loc.shape[0]
    rmark, g = W.rmark, W.gen[GEN]
    k = 0
    for x in range(W.gen[N_LISTS]):
        k = _put(deps, i, k, W.stack[x])
    for x in range(W.gen[N_TOUCHED]):
        c = W.touched[x]
        inside = True
        for kind in range(KINDS):
            s = slot_of[KINDS * c + kind]
            if s >= 0 and rmark[slot_owner[s]] != g:
                inside = False
        if not inside:
            k = _put(deps, i, k, n_resp + c)
    within = False  # some hospital's score counts on its staying within its beds
    if st != CYCLE:  # a cycle is found before any hospital is looked at
        # how many of each changed hospital's incumbent admissions the move re-admits (W.head is
        # free scratch once the move is scored); as many as it admits there after the move are
        # those, plus the change in its count
        left = W.head
        for x in range(W.gen[N_DIRTY]):
            left[W.hlist[x]] = 0
        for x in range(W.gen[N_TOUCHED]):
            c = W.touched[x]
            if P.status[c] == ACTIVE and not np.isnan(Winc.arrival[c]):
                left[hosp[c]] += 1
        for x in range(W.gen[N_DIRTY]):
            h = W.hlist[x]
            cap = P.hosp_cap[h]
            if W.count[h] != Winc.count[h]:
                k = _put(deps, i, k, n_resp + n_cas + h)  # its admissions depend on the count
            if W.count[h] > cap or Winc.count[h] > cap:
                s = max(left[h], left[h] + W.count[h] - Winc.count[h])
                level = 0
                while (1 << level) < s:
                    level += 1
                # the overflow depends on the admissions near the last bed, or on all of them
                k = _put(deps, i, k, window_id(n_resp, n_cas, n_hosp, h, level) if level < WINDOWS
                         else n_resp + n_cas + n_hosp + h)
            else:
                within = True
    if within:  # no overflow while no hospital goes over its beds
        k = _put(deps, i, k, n_resp + n_cas + 2 * n_hosp)
    n_deps[i] = k if k <= deps.shape[0] * DEP_BLOCK else -1


@njit(**JIT)
def score_moves(P, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, moves, todo, lo, hi,
                out_F, out_T, out_status, rows, dF, dT, status, when, deps, n_deps, epoch, record):
    """Score moves ``moves[todo[lo:hi]]`` into the outputs at their indices, in buffers of its own.

    With a memo (``rows`` not empty), move ``todo[t]`` also gets its score relative to ``inc``,
    status and ``epoch`` in row ``rows[t]``, and with ``record`` its dependencies (else it is
    marked not reusable). ``sweep`` passes empty memo arrays.
    """
    W, cs, co, ch = move_buffers(P, starts, order, hosp)
    Wr, rs, ro, incr, so_r, sof_r = without_buffers(P, starts, order)
    _score(P, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, moves, todo, lo, hi, out_F, out_T,
           out_status, rows, dF, dT, status, when, deps, n_deps, epoch, record, W, cs, co, ch,
           Wr, rs, ro, incr, so_r, sof_r)


@njit(**JIT)
def _score(P, starts, order, hosp, pins, Winc, inc, slot_owner, slot_of, n_shift, moves, todo, lo, hi,
           out_F, out_T, out_status, rows, dF, dT, status, when, deps, n_deps, epoch, record, W, cs, co, ch,
           Wr, rs, ro, incr, so_r, sof_r):
    """``score_moves`` in the buffers it made: every array borrowed (``kernels.borrow``).

    A relocation of a transport or a treat is scored as that task's insertion into the plan
    without it (``_without``, in ``Wr``, made again when the moved task changes): its list's
    tail is re-timed once for all its destinations, when they are many (``worth_without``). Not
    while recording what each score depends on (the memo's dependencies are the incumbent's
    lists), nor for a rescue, without which its transport would wait for ever.
    """
    P, starts, order, hosp, pins, Winc, inc = borrow((P, starts, order, hosp, pins, Winc, inc))
    slot_owner, slot_of, moves, todo, out_F, out_T = borrow((slot_owner, slot_of, moves, todo, out_F, out_T))
    out_status, rows, dF, dT, status, when = borrow((out_status, rows, dF, dT, status, when))
    deps, n_deps, W, cs, co, ch = borrow((deps, n_deps, W, cs, co, ch))
    Wr, rs, ro, incr, so_r, sof_r = borrow((Wr, rs, ro, incr, so_r, sof_r))
    memo = rows.shape[0] > 0
    F0, T0 = inc[0], inc[2]
    reducible = not (memo and record) and int(inc[3]) != CYCLE
    n_lists = starts.shape[0] - 1
    # the run the last move was part of (-1: none): its task, its last index, whether it is reduced
    source, last, use = -1, -1, False
    built = -1  # the task Wr is the plan without
    shift_r = -1
    for t in range(lo, hi):
        i = todo[t]
        kind, a = moves[i, 0], moves[i, 1]
        reduced = False
        if reducible and kind == RELOCATE and kind_of(order[a]) != RESCUE:
            if a != source or i != last + 1:  # a run entered (a thread's share may start inside one)
                source = a
                use = worth_without(moves, i, a, n_lists)
            last = i
            if use:
                if a != built:
                    built = a
                    shift_r = _without(P, a, starts, order, hosp, pins, Wr, rs, ro, incr, so_r, sof_r)
                reduced = shift_r >= 0
        else:
            source = -1
        if reduced:
            # typed as the moves' own kind and task: a literal would compile the callees again
            F, _o, T, st = evaluate_move_inline(P, kind * 0 + INSERT_TASK, a * 0 + order[a], moves[i, 2], moves[i, 3],
                                                rs, ro, hosp, pins, Wr, incr, so_r, sof_r, shift_r, cs, co, ch, W)
        else:
            F, _o, T, st = evaluate_move_inline(P, kind, a, moves[i, 2], moves[i, 3], starts, order, hosp, pins,
                                                Winc, inc, slot_owner, slot_of, n_shift, cs, co, ch, W)
        out_F[i] = F
        out_T[i] = T
        out_status[i] = st
        if memo:
            j = rows[t]
            dF[j] = F - F0
            dT[j] = T - T0
            status[j] = st
            when[j] = epoch
            if record:
                record_deps(P, hosp, Winc, W, st, slot_owner, slot_of, deps, n_deps, j)
            else:
                n_deps[j] = -1
