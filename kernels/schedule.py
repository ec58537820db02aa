"""The exact timing rules of SPEC §6 over a solution array.

Responders are advanced one task at a time from a work stack. A task that must wait for another
responder's rescue or treatment stops its responder, which is noted against the casualty it
waits for; timing that rescue or treatment pushes it back on the stack. So every task is timed
once, whatever order the waits resolve in, and responders still stopped when the stack empties
wait on each other: a cycle. Fire teams are stacked last, so taken first: their rescues never
wait, and once they are timed an ambulance seldom stops for one.

One rule goes beyond SPEC §6's letter: **no planned task starts before the model's time.** Work
under way is a fact of the scenario (SPEC §8.1: ``rescue_ends_at``, ``treatment_ends_at``,
``in_transit``), so a task still in the plan has not started as far as the model knows. By the
letter of §6, a team issued a task sets off at ``available_at`` and chains the rest of its list
from there however long ago that was: with no report from the crew, the issued task and the
unissued ones after it were done in the past, and the expected fatalities stopped moving with
the clock (a silent crew made the plan look better than one that reported). The rule binds only
in a list that starts with an issued task, the one kind that sets off before the model's time;
every later task then sets off no earlier than the model's time too, and nothing of a casualty's
starts before its ``observed_at`` (never after the model's time), the rule it replaces.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .layout import CYCLE, FEASIBLE, RESCUE, SHIFT, SYNC_IDENT, TREAT, VERSION, casualty_of

SHIFT_TOL = 1e-9


@njit(**JIT, inline="always")
def _wake(waiting, c, stack, top):
    """Push the responder noted in ``waiting[c]`` (if any) and clear the note; returns the new top."""
    r = waiting[c]
    if r >= 0:
        waiting[c] = -1
        stack[top] = r
        top += 1
    return top


@njit(**JIT, inline="always")
def schedule(P, starts, order, hosp, pins, W):
    """Fill ``W`` with every task's start and end and every casualty's times; return a status.

    Returns FEASIBLE, CYCLE (no times for the tasks caught in it) or SHIFT (a task ends after its
    responder's shift; all times are still set).
    """
    # Arrays are taken out of the tuples once: a store into a boolean array may alias anything for
    # LLVM, which would otherwise reload every tuple field after each such store (10x slower).
    rescued, treated_at, pickup, arrival = W.rescued, W.treated_at, W.pickup, W.arrival
    r_known, t_known = W.r_known, W.t_known
    # the responder whose treatment of casualty c waits for its rescue, and the one whose
    # transport of c waits for its rescue or treatment (-1: none)
    wait_rescue, wait_ready = W.wait_rescue, W.wait_ready
    ptr, free, loc, stack = W.ptr, W.free, W.loc, W.stack
    t_start, t_end = W.start, W.end
    W.gen[VERSION] += 1  # every array of W is about to change (see layout.SYNC_VERSION)
    W.gen[SYNC_IDENT] = 0
    travel, site_loc, trapped, resp_hart, hosp_loc = P.travel, P.site_loc, P.trapped, P.resp_hart, P.hosp_loc
    rescue_dur, treat_dur = P.rescue_dur, P.treat_dur
    n_resp = P.resp_loc.shape[0]
    inf = np.inf
    # per-casualty starting values, precomputed once per model, one loop an array: LLVM makes
    # each loop a memset or vector stores, which it does not do for one loop writing eight arrays
    # that may alias each other (the batch took 0.96-0.975 of the time on two threads; eight
    # slice assignments, which make views, had taken 4 % longer than the one loop)
    rescued0, r_known0, treated0 = P.rescued0, P.r_known0, P.treated0
    nan = np.nan
    n_cas = wait_rescue.shape[0]
    for c in range(n_cas):
        wait_rescue[c] = -1
    for c in range(n_cas):
        wait_ready[c] = -1
    for c in range(n_cas):
        pickup[c] = nan
    for c in range(n_cas):
        arrival[c] = nan
    for c in range(n_cas):
        rescued[c] = rescued0[c]
    for c in range(n_cas):
        r_known[c] = r_known0[c]
    for c in range(n_cas):
        treated_at[c] = treated0[c]
    for c in range(n_cas):
        t_known[c] = True
    for s in range(starts[n_resp]):  # a transport waits for a planned treatment
        t = order[s]
        c = casualty_of(t)
        if t - 3 * c == TREAT:
            t_known[c] = False
    resp_fire = P.resp_fire
    for r in range(n_resp):
        ptr[r] = starts[r]
        free[r] = P.resp_avail[r] if pins[r] > 0 else P.resp_free[r]
        loc[r] = P.resp_loc[r]
    # fire teams on top, each kind lowest index first: with rescues timed first, London's plans
    # stop an ambulance for a rescue seldom instead of about once a trapped casualty
    top = 0
    for r in range(n_resp - 1, -1, -1):
        if not resp_fire[r]:
            stack[top] = r
            top += 1
    for r in range(n_resp - 1, -1, -1):
        if resp_fire[r]:
            stack[top] = r
            top += 1
    now = P.scalars[0]
    load = P.scalars[1]
    handover = P.scalars[2]
    while top > 0:
        top -= 1
        r = stack[top]
        # the running responder's position, clock and place live in registers until it stops; the
        # position unsigned, as the indices below, since it indexes the plan and the task times
        # (the batch about 0.97 of the time on one thread, a full evaluation 0.93-0.96)
        end_r = np.uint64(starts[r + 1])
        s = np.uint64(ptr[r])
        f = free[r]
        here = np.uint64(loc[r])
        while s < end_r:
            t = order[s]
            signed = casualty_of(t)
            k = t - 3 * signed
            # indices as unsigned, so Numba does not test each for a negative one to wrap around:
            # London's schedule took 0.68 µs so against 0.74 µs
            c = np.uint64(signed)
            site = np.uint64(site_loc[c])
            arrive = f + travel[here, site]
            if arrive < now:  # an issued task not reported started has not started yet
                arrive = now
            if k == RESCUE:
                start = arrive
                end = start + rescue_dur[c]
                rescued[c] = end
                r_known[c] = True
                top = _wake(wait_rescue, c, stack, top)
                top = _wake(wait_ready, c, stack, top)
                here = site
            elif k == TREAT:
                start = arrive
                if trapped[c] and not resp_hart[r]:
                    if not r_known[c]:
                        wait_rescue[c] = r
                        break
                    if rescued[c] > start:
                        start = rescued[c]
                end = start + treat_dur[c]
                treated_at[c] = end
                t_known[c] = True
                top = _wake(wait_ready, c, stack, top)
                here = site
            else:
                if not (r_known[c] and t_known[c]):
                    wait_ready[c] = r
                    break
                start = arrive
                if trapped[c] and rescued[c] > start:
                    start = rescued[c]
                ta = treated_at[c]
                if ta < inf and ta > start:
                    start = ta
                dest = np.uint64(hosp_loc[hosp[c]])
                arrive_h = start + load + travel[site, dest]
                end = arrive_h + handover
                pickup[c] = start
                arrival[c] = arrive_h
                here = dest
            t_start[s] = start
            t_end[s] = end
            f = end
            s += np.uint64(1)
        ptr[r] = np.int64(s)
        free[r] = f
        loc[r] = np.int64(here)
    status = FEASIBLE
    for r in range(n_resp):
        if ptr[r] < starts[r + 1]:
            return CYCLE
        if starts[r + 1] > starts[r] and t_end[starts[r + 1] - 1] > P.resp_shift[r] + SHIFT_TOL:
            status = SHIFT
    return status
