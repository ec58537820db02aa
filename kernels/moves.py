"""Moves over the solution arrays: how they are encoded, enumerated, sampled and applied.

A move is four integers ``(kind, a, b, c)``:

=================  ==========================================================================
``RELOCATE``       task at slot ``a`` to responder ``b`` at index ``c`` of its list (the list
                   without the task, so a move within one list is expressed the same way)
``SWAP``           tasks at slots ``a`` and ``b`` exchange places
``HOSPITAL``       casualty ``a``'s transport goes to hospital ``b``
``INSERT_TREAT``   a treat of casualty ``a`` into responder ``b``'s list at index ``c``
``REMOVE_TREAT``   the treat at slot ``a`` is dropped
``TWO_OPT``        slots ``a..b`` of one list are reversed
``INSERT_TASK``    task code ``a`` into responder ``b``'s list at index ``c`` (construction only)
``HOSPITAL_SWAP``  casualties ``a`` and ``b`` exchange destination hospitals
=================  ==========================================================================

Pinned tasks (the first ``pins[r]`` of each list) are never moved, and nothing is inserted in
front of them. Rescues stay with fire teams, treats and transports with paramedics.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .borrow import borrow
from .config import JIT
from .layout import ACTIVE, RESCUE, TRANSPORT, TREAT, casualty_of, kind_of

RELOCATE, SWAP, HOSPITAL, INSERT_TREAT, REMOVE_TREAT, TWO_OPT, INSERT_TASK, HOSPITAL_SWAP = range(8)
MOVE_NAMES = ("relocate", "swap", "hospital", "insert_treat", "remove_treat", "two_opt", "insert_task",
              "hospital_swap")
#: Kinds drawn by ``random_move`` (indices into its ``weights``): all but construction's INSERT_TASK.
RANDOM_KINDS = np.array([RELOCATE, SWAP, HOSPITAL, INSERT_TREAT, REMOVE_TREAT, TWO_OPT, HOSPITAL_SWAP])
N_KINDS = len(RANDOM_KINDS)


@njit(**JIT)
def slot_tables(starts, order, n_cas, slot_owner, slot_of):
    """Fill ``slot_owner[s]`` (responder of slot ``s``) and ``slot_of[code]`` (slot, -1 if absent)."""
    starts, order, slot_owner, slot_of = borrow((starts, order, slot_owner, slot_of))
    slot_of[:] = -1
    for r in range(starts.shape[0] - 1):
        for s in range(starts[r], starts[r + 1]):
            slot_owner[s] = r
            slot_of[order[s]] = s


@njit(**JIT, inline="always")
def fits(P, code, r):
    """A rescue belongs to a fire team, a treat or transport to a paramedic team."""
    return (kind_of(code) == RESCUE) == P.resp_fire[r]


@njit(**JIT)
def _rebuild(starts, order, out_starts, out_order, skip, r_ins, pos, code):
    """Copy the lists without slot ``skip`` and with ``code`` inserted at ``pos`` of ``r_ins``."""
    starts, order, out_starts, out_order = borrow((starts, order, out_starts, out_order))
    n_resp = starts.shape[0] - 1
    w = 0
    for r in range(n_resp):
        out_starts[r] = w
        k = 0
        for s in range(starts[r], starts[r + 1]):
            if s == skip:
                continue
            if r == r_ins and k == pos:
                out_order[w] = code
                w += 1
            out_order[w] = order[s]
            w += 1
            k += 1
        if r == r_ins and k == pos:
            out_order[w] = code
            w += 1
    out_starts[n_resp] = w


@njit(**JIT)
def apply_move(kind, a, b, c, starts, order, hosp, out_starts, out_order, out_hosp):
    """Write the solution after move ``(kind, a, b, c)`` into the ``out_*`` arrays."""
    starts, order, hosp = borrow((starts, order, hosp))
    out_starts, out_order, out_hosp = borrow((out_starts, out_order, out_hosp))
    out_hosp[:] = hosp
    if kind == RELOCATE:
        _rebuild(starts, order, out_starts, out_order, a, b, c, order[a])
    elif kind == INSERT_TREAT:
        _rebuild(starts, order, out_starts, out_order, -1, b, c, 3 * a + TREAT)
    elif kind == INSERT_TASK:
        _rebuild(starts, order, out_starts, out_order, -1, b, c, a)
    elif kind == REMOVE_TREAT:
        _rebuild(starts, order, out_starts, out_order, a, -1, 0, 0)
    else:
        n = starts[starts.shape[0] - 1]
        out_starts[:] = starts
        out_order[:n] = order[:n]
        if kind == SWAP:
            out_order[a] = order[b]
            out_order[b] = order[a]
        elif kind == TWO_OPT:
            for i in range(b - a + 1):
                out_order[a + i] = order[b - i]
        elif kind == HOSPITAL:
            out_hosp[a] = b
        elif kind == HOSPITAL_SWAP:
            out_hosp[a] = hosp[b]
            out_hosp[b] = hosp[a]


@njit(**JIT, inline="always")
def _write_list(r, starts, order, cs, co, skip, pos, code):
    """Candidate list ``r``: the incumbent's without slot ``skip``, with ``code`` at ``pos`` (or
    neither, with -1), written at its candidate offset ``cs[r]``."""
    w = cs[r]
    k = 0
    for s in range(starts[r], starts[r + 1]):
        if s == skip:
            continue
        if k == pos:
            co[w] = code
            w += 1
        co[w] = order[s]
        w += 1
        k += 1
    if k == pos:
        co[w] = code


@njit(**JIT)
def candidate_view(kind, a, b, c, starts, order, slot_owner, cs, co):
    """The candidate of move ``(kind, a, b, c)`` without copying the whole plan.

    Writes its ``starts`` into ``cs`` (O(teams)) and the codes of the one or two lists the move
    changes into ``co`` at their candidate offsets, and returns those lists ``(A, B)`` (-1: none).
    Every other list of the candidate is the incumbent's, shifted to ``cs``: whoever reads one
    copies it first (``kernels.local``). ``apply_move`` writes the whole candidate.
    """
    starts, order, slot_owner, cs, co = borrow((starts, order, slot_owner, cs, co))
    n_resp = starts.shape[0] - 1
    A, B = -1, -1
    if kind == RELOCATE or kind == REMOVE_TREAT:
        A = slot_owner[a]
        B = b if kind == RELOCATE else -1
        for r in range(n_resp + 1):
            cs[r] = starts[r] - (1 if r > A else 0) + (1 if B >= 0 and r > B else 0)
        if kind == RELOCATE:
            if B != A:
                _write_list(A, starts, order, cs, co, a, -1, 0)
            else:
                A = -1
            _write_list(B, starts, order, cs, co, a, c, order[a])
        else:
            _write_list(A, starts, order, cs, co, a, -1, 0)
    elif kind == INSERT_TREAT or kind == INSERT_TASK:
        B = b
        for r in range(n_resp + 1):
            cs[r] = starts[r] + (1 if r > B else 0)
        _write_list(B, starts, order, cs, co, -1, c, 3 * a + TREAT if kind == INSERT_TREAT else a)
    else:
        cs[:] = starts
        if kind == SWAP or kind == TWO_OPT:
            A = slot_owner[a]
            B = slot_owner[b]
            _write_list(A, starts, order, cs, co, -1, -1, 0)
            if B != A:
                _write_list(B, starts, order, cs, co, -1, -1, 0)
            else:
                B = -1
            if kind == SWAP:
                co[a], co[b] = order[b], order[a]
            else:
                for i in range(b - a + 1):
                    co[a + i] = order[b - i]
    return A, B


@njit(**JIT)
def apply_in_place(kind, a, b, c, starts, order, hosp, cs, slot_owner, slot_of):
    """Apply move ``(kind, a, b, c)`` to the plan itself, slot tables included.

    ``cs`` holds the candidate's starts (``candidate_view`` or ``apply_move`` wrote them). Only
    the slots between where a task leaves and where it lands move, so a move costs what it
    shifts rather than the whole plan: what taking over an accepted move costs in annealing.
    Gives exactly ``apply_move`` followed by ``slot_tables``.
    """
    starts, order, hosp, cs, slot_owner, slot_of = borrow((starts, order, hosp, cs, slot_owner, slot_of))
    n_resp = starts.shape[0] - 1
    n = starts[n_resp]
    lo, hi = 0, -1  # the slots whose task or owner changes
    if kind == RELOCATE or kind == INSERT_TREAT or kind == INSERT_TASK or kind == REMOVE_TREAT:
        if kind == RELOCATE:
            code = order[a]
            src = a
            dst = cs[b] + c
        elif kind == REMOVE_TREAT:
            code = -1
            slot_of[order[a]] = -1
            src = a
            dst = n - 1
        else:
            code = 3 * a + TREAT if kind == INSERT_TREAT else a
            src = n
            dst = cs[b] + c
        if dst >= src:
            for s in range(src, dst):
                order[s] = order[s + 1]
            lo, hi = src, dst
        else:
            for s in range(src, dst, -1):
                order[s] = order[s - 1]
            lo, hi = dst, src
        order[dst] = code
        starts[:] = cs
        # slots outside [lo, hi] keep their task and their list; inside, find each one's list
        r = 0
        while r < n_resp - 1 and starts[r + 1] <= lo:
            r += 1
        for s in range(lo, min(hi + 1, starts[n_resp])):
            while starts[r + 1] <= s:
                r += 1
            slot_owner[s] = r
    elif kind == SWAP:
        order[a], order[b] = order[b], order[a]
        lo, hi = a, a
        slot_of[order[b]] = b
    elif kind == TWO_OPT:
        i, j = a, b
        while i < j:
            order[i], order[j] = order[j], order[i]
            i += 1
            j -= 1
        lo, hi = a, b
    elif kind == HOSPITAL:
        hosp[a] = b
    elif kind == HOSPITAL_SWAP:
        hosp[a], hosp[b] = hosp[b], hosp[a]
    for s in range(lo, hi + 1):
        if s < starts[n_resp]:
            slot_of[order[s]] = s


@njit(**JIT, inline="always")
def _push(out, n, kind, a, b, c):
    if n < out.shape[0]:
        out[n, 0] = kind
        out[n, 1] = a
        out[n, 2] = b
        out[n, 3] = c
    return n + 1


@njit(**JIT, inline="always")
def _hospital_swap(P, out, n, c, c2, hosp, starts, pins, slot_owner, slot_of):
    s2 = slot_of[3 * c2 + TRANSPORT]
    if s2 < 0 or hosp[c2] == hosp[c]:
        return n
    r2 = slot_owner[s2]
    if s2 - starts[r2] < pins[r2]:
        return n
    return _push(out, n, HOSPITAL_SWAP, c, c2, 0)


@njit(**JIT)
def enumerate_moves(P, starts, order, hosp, pins, neigh, hosp_neigh, out):
    """Write every move of the neighbourhood into ``out`` (rows of 4); return how many there are.

    Treats are inserted before the casualty's own transport, anywhere on a HART team for a
    trapped casualty, or at the end of any other paramedic team's list. With ``neigh`` of shape ``(C, k > 0)`` the neighbourhood is granular: a task is only tried
    next to the tasks of its ``k`` nearest casualties, and a transport only at the hospitals in
    ``hosp_neigh``; so a sweep costs the same per task at any scale. With ``k = 0`` it is full.
    If the return value exceeds ``len(out)``, only the first ``len(out)`` were written.
    """
    P, starts, order, hosp, pins = borrow((P, starts, order, hosp, pins))
    neigh, hosp_neigh, out = borrow((neigh, hosp_neigh, out))
    n_resp = starts.shape[0] - 1
    n_cas = P.h0.shape[0]
    n_slots = starts[n_resp]
    slot_owner = np.empty(max(n_slots, 1), np.int64)
    slot_of = np.empty(3 * n_cas, np.int64)
    slot_tables(starts, order, n_cas, slot_owner, slot_of)
    granular = neigh.shape[1] > 0
    n = 0
    for s in range(n_slots):
        r1 = slot_owner[s]
        if s - starts[r1] < pins[r1]:
            continue
        code = order[s]
        c = casualty_of(code)
        # relocate
        if not granular:
            for r2 in range(n_resp):
                if not fits(P, code, r2):
                    continue
                length = starts[r2 + 1] - starts[r2] - (1 if r2 == r1 else 0)
                for pos in range(pins[r2], length + 1):
                    if r2 == r1 and pos == s - starts[r1]:
                        continue
                    n = _push(out, n, RELOCATE, s, r2, pos)
        else:
            for j in range(neigh.shape[1]):
                c2 = neigh[c, j]
                for kind2 in range(3):
                    s2 = slot_of[3 * c2 + kind2]
                    if s2 < 0 or s2 == s:
                        continue
                    r2 = slot_owner[s2]
                    if not fits(P, code, r2):
                        continue
                    idx = s2 - starts[r2]
                    if r2 == r1 and s < s2:
                        idx -= 1  # index in the list without the moved task
                    for pos in (idx, idx + 1):
                        if pos < pins[r2] or (r2 == r1 and pos == s - starts[r1]):
                            continue
                        n = _push(out, n, RELOCATE, s, r2, pos)
                    # swap with the neighbour's task
                    if s < s2 and s2 - starts[r2] >= pins[r2] and fits(P, order[s2], r1):
                        n = _push(out, n, SWAP, s, s2, 0)
        # swap (full)
        if not granular:
            for s2 in range(s + 1, n_slots):
                r2 = slot_owner[s2]
                if s2 - starts[r2] < pins[r2]:
                    continue
                if fits(P, code, r2) and fits(P, order[s2], r1):
                    n = _push(out, n, SWAP, s, s2, 0)
        kind = code - 3 * c
        if kind == TRANSPORT:
            if not granular:
                for h in range(P.hosp_loc.shape[0]):
                    if h != hosp[c]:
                        n = _push(out, n, HOSPITAL, c, h, 0)
            else:
                for j in range(hosp_neigh.shape[1]):
                    h = hosp_neigh[c, j]
                    if h != hosp[c]:
                        n = _push(out, n, HOSPITAL, c, h, 0)
            # exchange destinations with another unpinned transport going elsewhere
            if not granular:
                for c2 in range(c + 1, n_cas):
                    n = _hospital_swap(P, out, n, c, c2, hosp, starts, pins, slot_owner, slot_of)
            else:
                for j in range(neigh.shape[1]):
                    c2 = neigh[c, j]
                    if c2 > c:
                        n = _hospital_swap(P, out, n, c, c2, hosp, starts, pins, slot_owner, slot_of)
        elif kind == TREAT:
            n = _push(out, n, REMOVE_TREAT, s, 0, 0)
        # 2-opt within the list, windowed for long lists
        end = starts[r1 + 1]
        for s2 in range(s + 2, min(end, s + 12)):
            n = _push(out, n, TWO_OPT, s, s2, 0)
    # treat insertions
    for c in range(n_cas):
        if not (P.can_treat[c] and P.status[c] == ACTIVE) or slot_of[3 * c + TREAT] >= 0:
            continue
        if not granular:
            # a treat goes before its casualty's transport on the same team, or, for a trapped
            # casualty, anywhere on a HART team (the only one that can treat under the debris);
            # any other paramedic team may treat it once its own work is done (at the end of its
            # list: an idle team nearby), since its carrier then waits for the treatment, and
            # every place on every team would add two fifths to a sweep at paper size
            ts = slot_of[3 * c + TRANSPORT]
            owner = slot_owner[ts] if ts >= 0 else -1
            for r in range(n_resp):
                if P.resp_fire[r]:
                    continue
                first = pins[r]
                if r == owner:
                    last = ts - starts[r]
                elif P.resp_hart[r] and P.trapped[c]:
                    last = starts[r + 1] - starts[r]
                else:
                    first = last = starts[r + 1] - starts[r]
                for pos in range(first, last + 1):
                    n = _push(out, n, INSERT_TREAT, c, r, pos)
        else:
            # next to its own transport, and next to the tasks of its nearest casualties, where
            # the full neighbourhood allows a treat (see above)
            ts = slot_of[3 * c + TRANSPORT]
            owner = slot_owner[ts] if ts >= 0 else -1
            for j in range(-1, neigh.shape[1]):
                c2 = c if j < 0 else neigh[c, j]
                for kind2 in (TREAT, TRANSPORT):
                    s2 = slot_of[3 * c2 + kind2]
                    if s2 < 0:
                        continue
                    r2 = slot_owner[s2]
                    if r2 == owner:
                        last = ts - starts[r2]
                    elif P.resp_hart[r2] and P.trapped[c]:
                        last = starts[r2 + 1] - starts[r2]
                    else:  # at the end of its list only, as in the full neighbourhood
                        end = starts[r2 + 1] - starts[r2]
                        if s2 - starts[r2] == end - 1:
                            n = _push(out, n, INSERT_TREAT, c, r2, end)
                        continue
                    idx = s2 - starts[r2]
                    for pos in (idx, idx + 1):
                        if pins[r2] <= pos <= last:
                            n = _push(out, n, INSERT_TREAT, c, r2, pos)
    return n


#: With granular neighbourhoods, the share of random moves drawn near the task (the rest stay
#: uniform, so that a task can still reach an empty list or a far hospital).
NEAR_SHARE = 0.9


@njit(**JIT)
def random_move(P, starts, order, hosp, pins, slot_owner, slot_of, paramedics, fires, weights, neigh, hosp_neigh):
    """Draw one applicable move at random (numba's seeded generator); kind -1 if none was found.

    ``weights`` gives the chance of each move kind; a kind that has no applicable move here is
    retried a few times before giving up. With granular neighbourhoods (``neigh`` and
    ``hosp_neigh`` of width > 0), most moves are drawn near the task, as in ``enumerate_moves``:
    next to a task of one of its nearest casualties, to one of its nearest hospitals. In a large
    incident a uniform draw almost always moves a task across the city, which never helps.
    """
    P, starts, order, hosp, pins, slot_owner, slot_of = borrow((P, starts, order, hosp, pins, slot_owner, slot_of))
    paramedics, fires, weights, neigh, hosp_neigh = borrow((paramedics, fires, weights, neigh, hosp_neigh))
    n_resp = starts.shape[0] - 1
    n_slots = starts[n_resp]
    n_cas = P.h0.shape[0]
    granular = neigh.shape[1] > 0
    for _attempt in range(16):
        u = np.random.random() * weights.sum()
        i = 0
        while i < weights.shape[0] - 1 and u >= weights[i]:
            u -= weights[i]
            i += 1
        kind = RANDOM_KINDS[i]
        near = granular and np.random.random() < NEAR_SHARE
        if kind == INSERT_TREAT:
            if n_cas == 0:
                continue
            c = np.random.randint(0, n_cas)
            if not (P.can_treat[c] and P.status[c] == ACTIVE) or slot_of[3 * c + TREAT] >= 0:
                continue
            if paramedics.shape[0] == 0:
                continue
            if near:  # just before the casualty's own transport
                tslot = slot_of[3 * c + TRANSPORT]
                if tslot < 0:
                    continue
                r = slot_owner[tslot]
                pos = tslot - starts[r]
                if pos < pins[r]:
                    continue
                return INSERT_TREAT, c, r, pos
            r = paramedics[np.random.randint(0, paramedics.shape[0])]
            length = starts[r + 1] - starts[r]
            if length < pins[r]:
                continue
            return INSERT_TREAT, c, r, np.random.randint(pins[r], length + 1)
        if n_slots == 0:
            continue
        s = np.random.randint(0, n_slots)
        r1 = slot_owner[s]
        if s - starts[r1] < pins[r1]:
            continue
        code = order[s]
        c = casualty_of(code)
        c2 = neigh[c, np.random.randint(0, neigh.shape[1])] if near else -1
        if kind == RELOCATE and near:  # just before or after a task of a nearby casualty
            s2 = slot_of[3 * c2 + (RESCUE if P.resp_fire[r1] else TRANSPORT)]
            if s2 < 0 or s2 == s:
                continue
            r2 = slot_owner[s2]
            idx = s2 - starts[r2] - (1 if r2 == r1 and s < s2 else 0)
            pos = idx + np.random.randint(0, 2)
            length = starts[r2 + 1] - starts[r2] - (1 if r2 == r1 else 0)
            if pos < pins[r2] or pos > length or (r2 == r1 and pos == s - starts[r1]):
                continue
            return RELOCATE, s, r2, pos
        if kind == SWAP and near:
            s2 = slot_of[3 * c2 + np.random.randint(0, 3)]
            if s2 < 0 or s2 == s:
                continue
            r2 = slot_owner[s2]
            if s2 - starts[r2] < pins[r2] or not (fits(P, code, r2) and fits(P, order[s2], r1)):
                continue
            return SWAP, min(s, s2), max(s, s2), 0
        if kind == HOSPITAL and near:
            tslot = slot_of[3 * c + TRANSPORT]
            if tslot < 0:
                continue
            rt = slot_owner[tslot]
            h = hosp_neigh[c, np.random.randint(0, hosp_neigh.shape[1])]
            if tslot - starts[rt] < pins[rt] or h == hosp[c]:
                continue
            return HOSPITAL, c, h, 0
        if kind == HOSPITAL_SWAP and near:
            s2 = slot_of[3 * c2 + TRANSPORT]
            if kind_of(order[s]) != TRANSPORT or s2 < 0 or hosp[c] == hosp[c2]:
                continue
            r2 = slot_owner[s2]
            if s2 - starts[r2] < pins[r2]:
                continue
            return HOSPITAL_SWAP, min(c, c2), max(c, c2), 0
        if kind == RELOCATE:
            pool = fires if P.resp_fire[r1] else paramedics
            r2 = pool[np.random.randint(0, pool.shape[0])]
            length = starts[r2 + 1] - starts[r2] - (1 if r2 == r1 else 0)
            if length < pins[r2]:
                continue
            pos = np.random.randint(pins[r2], length + 1)
            if r2 == r1 and pos == s - starts[r1]:
                continue
            return RELOCATE, s, r2, pos
        if kind == SWAP:
            s2 = np.random.randint(0, n_slots)
            r2 = slot_owner[s2]
            if s2 == s or s2 - starts[r2] < pins[r2]:
                continue
            if not (fits(P, code, r2) and fits(P, order[s2], r1)):
                continue
            return SWAP, min(s, s2), max(s, s2), 0
        if kind == HOSPITAL:
            tslot = slot_of[3 * c + TRANSPORT]
            if tslot < 0:
                continue
            rt = slot_owner[tslot]
            if tslot - starts[rt] < pins[rt]:
                continue
            h = np.random.randint(0, P.hosp_loc.shape[0])
            if h == hosp[c]:
                continue
            return HOSPITAL, c, h, 0
        if kind == REMOVE_TREAT:
            tslot = slot_of[3 * c + TREAT]
            if tslot < 0:
                continue
            rt = slot_owner[tslot]
            if tslot - starts[rt] < pins[rt]:
                continue
            return REMOVE_TREAT, tslot, 0, 0
        if kind == HOSPITAL_SWAP:
            s2 = np.random.randint(0, n_slots)
            c2 = casualty_of(order[s2])
            if kind_of(order[s]) != TRANSPORT or kind_of(order[s2]) != TRANSPORT or hosp[c] == hosp[c2]:
                continue
            r2 = slot_owner[s2]
            if s2 - starts[r2] < pins[r2]:
                continue
            return HOSPITAL_SWAP, min(c, c2), max(c, c2), 0
        if kind == TWO_OPT:
            end = starts[r1 + 1]
            if end - s < 3:
                continue
            s2 = np.random.randint(s + 2, min(end, s + 12))
            return TWO_OPT, s, s2, 0
    return -1, 0, 0, 0
