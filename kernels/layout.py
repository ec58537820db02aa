"""The flat data the kernels work on: problem arrays, solution arrays, and scratch space.

The engine fills a ``ProblemArrays`` once per scenario. A solution is three integer arrays:
``starts`` (responder ``r``'s tasks are ``order[starts[r]:starts[r+1]]``), ``order`` (task codes
``3·casualty + kind``) and ``hosp`` (destination hospital of each casualty's transport, -1 if
none). ``pins[r]`` counts the issued tasks at the front of ``r``'s list.
"""

from __future__ import annotations

import functools
import itertools
from collections import namedtuple

import numpy as np
from numba import njit

from .config import JIT

RESCUE, TREAT, TRANSPORT = 0, 1, 2
KINDS = 3


@njit(**JIT, inline="always")
def casualty_of(code):
    """The casualty of task code ``code >= 0`` (``code // KINDS``), by unsigned division.

    Numba divides a signed integer as Python does, rounding towards minus infinity, which costs
    a sign test and a correction after the division by a constant. A task code is never
    negative, and on the path from a task to its site and travel time the correction showed:
    London's schedule took 0.73 µs with this division against 1.10 µs with ``//``."""
    return np.int64(np.uint64(code) // np.uint64(KINDS))


@njit(**JIT, inline="always")
def kind_of(code):
    """The kind of task code ``code >= 0`` (``code % KINDS``), from ``casualty_of``."""
    return code - KINDS * casualty_of(code)


#: Casualty status codes.
ACTIVE, DEAD, IN_TRANSIT = 0, 1, 2

#: Schedule status codes: feasible, a cycle of waits, or a task ending after its shift.
FEASIBLE, CYCLE, SHIFT = 0, 1, 2

#: Environment indices of the chain arrays (trapped, ccs, ambulance, then the treated variants).
ENV_TRAPPED, ENV_CCS, ENV_AMBULANCE, ENV_TRAPPED_TREATED, ENV_CCS_TREATED = range(5)

ProblemArrays = namedtuple(
    "ProblemArrays",
    [
        "travel",          # f8[L, L] minutes between locations
        "site_loc",        # i8[C] location of each casualty's site
        "h0",              # f8[C, 4] health at observation
        "obs",             # f8[C] observation time
        "status",          # i8[C] ACTIVE / DEAD / IN_TRANSIT
        "trapped",         # b1[C] still trapped (a rescue is needed or under way)
        "needs_rescue",    # b1[C] a rescue task is required
        "rescue_fixed",    # f8[C] end of a rescue under way (nan if none)
        "treat_fixed",     # f8[C] end of a treatment under way (nan if none)
        "treated",         # b1[C] treated before the observation: treated chains throughout
        "can_treat",       # b1[C] a treat task may be planned
        "rescue_dur",      # f8[C]
        "treat_dur",       # f8[C]
        "transit_hosp",    # i8[C] hospital of a casualty in transit (-1 otherwise)
        "transit_arrival", # f8[C]
        "resp_fire",       # b1[R]
        "resp_hart",       # b1[R]
        "resp_loc",        # i8[R] start location
        "resp_avail",      # f8[R] available_at: the free time when the first task is pinned
        "resp_free",       # f8[R] max(available_at, time): the free time otherwise
        "resp_shift",      # f8[R] shift end (inf if none)
        "hosp_loc",        # i8[H]
        "hosp_cap",        # i8[H] beds free at the model's time
        "hosp_risk",       # f8[H] overflow risk
        "small",           # f8[5, T, 4, 4] P^n for n < T
        "big",             # f8[5, B, 4, 4] P^(T·2^j)
        "chains",          # f8[5, 4, 4]
        "scalars",         # f8[4]: time, load, handover, delivered fatalities
        "rescued0",        # f8[C] rescue end before planning: -inf free, fixed end, or nan (planned)
        "r_known0",        # b1[C] rescue end known before planning (no rescue task needed)
        "treated0",        # f8[C] treated-chain start before planning: -inf, fixed end, or inf
        "start_table",     # f8[K, T, 4] health as observed times P_env^n (kernels.health.propagate_start)
        "start_row",       # i8[C] each casualty's row of start_table (-1: none)
        "start_env",       # i8[C] the environment that row is for: its first segment's (-1: none)
        "ride",            # f8[L, H, 4] P_ambulance(load + travel to hospital h)[:, dead] (health.fill_ride_table)
        "ride_steps",      # f8[2, L, H, T, 4] P_env^n · ride[l, h], env CCS then CCS treated (health.fill_ride_steps)
        "start_ride",      # f8[K', L, H, T] start_table[k, n] · ride[l, h], K' <= K (health.fill_start_ride)
        "ride_long",       # f8[2, L, H, Q, 4] P_env^(T·q) · ride[l, h], q = 1..Q (health.fill_ride_long)
    ],
)

Workspace = namedtuple(
    "Workspace",
    [
        "rescued", "treated_at", "pickup", "arrival", "pdead",  # f8[C]
        "r_known", "t_known",                                   # b1[C]
        "wait_rescue", "wait_ready",                            # i8[C] schedule's waits; scratch: chain_touched, ranks
        "ptr", "free", "loc", "stack",                          # per responder
        "start", "end",                                         # f8[slots]
        "count",                                                # i8[H]
        "over",                                                 # f8[H] overflow per hospital
        "dirty",                                                # b1[H] scratch for delta scoring
        "need", "head",                                         # b1[H], i8[H]: overflow groups, chains
        "nxt",                                                  # i8[C] chains; admission places
        "buf",                                                  # i8[C]
        "touched",                                              # i8[C] casualties a move touches
        "mark",                                                 # i8[C] generation stamps for touched
        "rmark", "tail", "scanned",                             # i8[R] re-timed lists (kernels.local)
        "adm", "adm_start",                                     # i8[C], i8[H + 1]: kernels.admissions
        "hosp",                                                 # i8[C] a hospital move's hospitals
        "hlist",                                                # i8[H + 1] hospitals a move changed
        "gen",                                                  # i8[12]: counters, see GEN ... below
    ],
)


#: ``Workspace.gen``: ``GEN`` stamps ``mark``/``rmark`` for one local re-timing, which touched
#: ``N_TOUCHED`` casualties and re-timed ``N_LISTS`` lists, locally if ``LOCAL`` (kernels.local).
#: ``IDENT`` names an incumbent workspace and ``VERSION`` counts its changes; a candidate
#: workspace that equals incumbent ``SYNC_IDENT`` at ``SYNC_VERSION`` except for its touched
#: casualties is restored from it in O(touched) instead of being copied whole. ``ADM`` is the
#: ``VERSION`` whose admission order ``adm`` holds (-1: none; see kernels.admissions).
#: ``N_DIRTY`` hospitals in ``hlist`` and casualties ``HOSP_A``, ``HOSP_B`` (-1: none) are what
#: the last move changed in ``count``/``over`` and ``hosp`` (kernels.local.sync puts them back).
(GEN, N_TOUCHED, N_LISTS, LOCAL, IDENT, VERSION, SYNC_IDENT, SYNC_VERSION, ADM, N_DIRTY, HOSP_A, HOSP_B) = range(12)


@njit(**JIT)
def make_workspace(n_cas, n_resp, n_hosp, n_slots):
    """Scratch arrays for one evaluation at a time (one per thread in batch kernels)."""
    gen = np.zeros(12, np.int64)
    gen[ADM] = -1
    gen[HOSP_A] = -1
    gen[HOSP_B] = -1
    return Workspace(
        np.empty(n_cas), np.empty(n_cas), np.empty(n_cas), np.empty(n_cas), np.empty(n_cas),
        np.empty(n_cas, np.bool_), np.empty(n_cas, np.bool_),
        np.empty(n_cas, np.int64), np.empty(n_cas, np.int64),
        np.empty(n_resp, np.int64), np.empty(n_resp), np.empty(n_resp, np.int64), np.empty(n_resp, np.int64),
        np.empty(max(n_slots, 1)), np.empty(max(n_slots, 1)),
        np.empty(n_hosp, np.int64),
        np.zeros(n_hosp),
        np.zeros(n_hosp, np.bool_),
        np.zeros(n_hosp, np.bool_), np.empty(n_hosp, np.int64),
        np.empty(max(n_cas, 1), np.int64),
        np.empty(max(n_cas, 1), np.int64),
        np.empty(max(n_cas, 1), np.int64),
        np.zeros(max(n_cas, 1), np.int64),
        np.zeros(n_resp, np.int64), np.zeros(n_resp, np.int64), np.zeros(n_resp, np.int64),
        np.empty(max(n_cas, 1), np.int64), np.zeros(n_hosp + 1, np.int64),
        np.empty(n_cas, np.int64), np.empty(n_hosp + 1, np.int64),
        gen,
    )


_ident = itertools.count(1)


@functools.lru_cache(maxsize=16)
def _template(n_cas: int, n_resp: int, n_hosp: int) -> Workspace:
    # a compiled kernel returning the workspace's arrays costs ~70 µs to box into Python objects, copying them
    # ~10 µs: the template is made once per size by make_workspace, the one source of the layout
    return make_workspace(n_cas, n_resp, n_hosp, KINDS * n_cas)


def workspace_for(p: ProblemArrays) -> Workspace:
    """A fresh workspace from Python, named as an incumbent's (``gen[IDENT]``)."""
    W = Workspace(*(a.copy() for a in _template(p.h0.shape[0], p.resp_loc.shape[0], p.hosp_loc.shape[0])))
    W.gen[IDENT] = next(_ident)  # workspaces made inside kernels keep 0: never an incumbent
    return W


def copy_workspace(W: Workspace) -> Workspace:
    """A copy of an incumbent's workspace, times and scratch alike, under a new name."""
    out = Workspace(*(a.copy() for a in W))
    out.gen[IDENT] = next(_ident)
    return out
