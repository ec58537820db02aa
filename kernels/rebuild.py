"""The lists of a repaired plan: each team's tasks that still apply, in their old order.

The online engine repairs its plan after nearly every delta (``engine.repair``): every task of
every list is checked against the new model, and a few are dropped. In Python that check was
half the repair's cost at paper size, growing with the plan; here it is one pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .config import JIT
from .layout import KINDS, RESCUE, TRANSPORT


@njit(**JIT)
def nearest_with_bed(site, travel, hosp_loc, hosp_cap, taken):
    """The hospital nearest ``site`` (by travel, then index) with a bed left, else the nearest."""
    best, best_bed = -1, -1
    for h in range(hosp_loc.shape[0]):
        d = travel[site, hosp_loc[h]]
        if best < 0 or d < travel[site, hosp_loc[best]]:
            best = h
        if taken[h] < hosp_cap[h] and (best_bed < 0 or d < travel[site, hosp_loc[best_bed]]):
            best_bed = h
    return best_bed if best_bed >= 0 else best


@njit(**JIT)
def keep_lists(pinned, pin_bounds, rest, rest_bounds, fire, may, site_loc, travel, hosp_loc, hosp_cap, taken0):
    """Each team's pinned tasks, then its other tasks, that the model still lets it do.

    ``pinned`` and ``rest`` hold rows ``(casualty, kind, hospital)`` (-1: gone); team ``r``'s are
    rows ``pin_bounds[r, 0]:pin_bounds[r, 1]`` of ``pinned`` and ``rest_bounds[r, 0]:rest_bounds
    [r, 1]`` of ``rest``. A row is kept if its casualty is there, ``may[task code]`` (the model
    lets the task be planned) and the task is of the team's kind (a rescue for a fire team); the
    first row of a task is kept, later ones dropped (``may`` is cleared as tasks are placed:
    what is left set afterwards was not placed). A transport keeps its hospital, or goes to the
    nearest with a bed left (``nearest_with_bed``) if that hospital is gone, ``taken0[h]`` of
    hospital ``h``'s beds being taken before any (by casualties in ambulances).

    Returns ``(order, starts, pins, hosp, taken)``: the kept task codes, each team's first
    index into them, how many of its first tasks are pinned, each casualty's hospital (-1: no
    transport kept) and ``taken0`` plus the transports kept to each hospital.
    """
    n_resp = fire.shape[0]
    n_cas = may.shape[0] // KINDS
    order = np.empty(pinned.shape[0] + rest.shape[0], np.int32)
    starts = np.zeros(n_resp + 1, np.int32)
    pins = np.zeros(n_resp, np.int32)
    hosp = np.full(n_cas, -1, np.int32)
    taken = taken0.copy()
    n = 0
    for r in range(n_resp):
        starts[r] = n
        for part in range(2):
            rows = pinned if part == 0 else rest
            lo, hi = (pin_bounds[r, 0], pin_bounds[r, 1]) if part == 0 else (rest_bounds[r, 0], rest_bounds[r, 1])
            for i in range(lo, hi):
                c, k, h = rows[i, 0], rows[i, 1], rows[i, 2]
                if c < 0:
                    continue
                code = KINDS * c + k
                if not may[code] or (k == RESCUE) != fire[r]:
                    continue  # no longer applies, placed already, or not this team's kind of task
                may[code] = False
                order[n] = code
                n += 1
                if k == TRANSPORT:
                    if h < 0:
                        h = nearest_with_bed(site_loc[c], travel, hosp_loc, hosp_cap, taken)
                    hosp[c] = h
                    taken[h] += 1
                if part == 0:
                    pins[r] += 1
    starts[n_resp] = n
    return order[:n], starts, pins, hosp, taken
