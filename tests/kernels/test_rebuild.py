"""The repair's list filter (kernels/rebuild.py) against the reference, on random entries.

Entries are drawn to hit every rule: casualties gone (-1), known dead, in an ambulance, with a
rescue or treatment under way, already treated; tasks of the wrong kind for the team; the same
task twice (pinned and not, in one list and in two); transports whose hospital is gone, with
hospitals full, empty and tied in distance.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import engine
import factories
import reference
from engine.plan import problem_arrays
from engine.construct import beds_in_transit
from engine.repair import _rows
from kernels.layout import KINDS, RESCUE, TRANSPORT, TREAT
from kernels.rebuild import keep_lists, nearest_with_bed

CASES = 200


def _entries(rng, sc) -> dict:
    n_cas, n_hosp = len(sc.model.casualties), len(sc.model.hospitals)
    out = {}
    for resp in sc.model.responders:
        rows = []
        for _ in range(int(rng.integers(0, 6))):
            c = int(rng.integers(-1, n_cas)) if n_cas else -1
            k = int(rng.integers(0, 3))
            h = int(rng.integers(-1, n_hosp)) if k == TRANSPORT else -1
            rows.append((c, k, h))
        out[resp.id] = rows
    return out


def _kernel(sc, pinned: dict, rest: dict):
    P = problem_arrays(sc)
    may = np.empty(KINDS * len(P.status), dtype=np.bool_)
    may[RESCUE::KINDS], may[TREAT::KINDS], may[TRANSPORT::KINDS] = P.needs_rescue, P.can_treat, P.status == 0
    out = keep_lists(*_rows(sc, pinned), *_rows(sc, rest), P.resp_fire, may, P.site_loc, P.travel, P.hosp_loc,
                     P.hosp_cap, beds_in_transit(P))
    return out, may


@pytest.mark.parametrize("seed", range(CASES))
def test_keep_lists_equals_the_reference(seed):
    rng = np.random.default_rng(7000 + seed)
    sc = engine.load_scenario(factories.random_scenario(rng))
    pinned, rest = _entries(rng, sc), _entries(rng, sc)
    if seed % 3 == 0:  # the same tasks pinned and planned again, as an issue leaves them
        rest = {rid: pinned[rid] + rows for rid, rows in rest.items()}
    (order, starts, pins, hosp, taken), left = _kernel(sc, pinned, rest)
    lists, want_pins, want_hosp, want_taken = reference.kept_lists(sc, pinned, rest)
    got = [[divmod(int(code), KINDS) for code in order[starts[r]:starts[r + 1]]] for r in range(len(lists))]
    assert got == lists
    assert pins.tolist() == want_pins
    assert {c: int(h) for c, h in enumerate(hosp) if h >= 0} == want_hosp
    assert taken.tolist() == want_taken
    placed = {pair for kept in lists for pair in kept}
    for c in range(len(sc.model.casualties)):  # what is left to place: allowed and not placed
        for k in range(KINDS):
            assert left[KINDS * c + k] == (reference.may_plan(sc, c, k) and (c, k) not in placed)


@pytest.mark.parametrize("seed", range(CASES))
def test_nearest_with_bed_equals_the_reference(seed):
    rng = np.random.default_rng(9000 + seed)
    sc = engine.load_scenario(factories.random_scenario(rng))
    while not sc.model.casualties:
        sc = engine.load_scenario(factories.random_scenario(rng))
    if seed % 4 == 0:  # ties: every place as far as every other
        sc = dataclasses.replace(sc, travel=np.ones_like(sc.travel))
    P = problem_arrays(sc)
    taken = rng.integers(0, 4, size=len(sc.model.hospitals)).astype(np.int64)
    for c in range(len(sc.model.casualties)):
        got = nearest_with_bed(int(P.site_loc[c]), P.travel, P.hosp_loc, P.hosp_cap, taken)
        assert got == reference.nearest_with_bed(sc, c, taken.tolist())
