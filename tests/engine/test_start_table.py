"""The start table (``engine.start_table``): each casualty's health as observed, times ``P_env^n``.

The kernels read a timeline's first segment from it instead of multiplying; these tests hold it
to what it stands for, and the evaluator to the same numbers, to the bit, with it and without it.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
import factories
import reference
from engine import start_table
from engine.derive import derive
from engine.generate import generate
from engine.plan import problem_arrays
from kernels.evaluate import evaluate
from kernels.layout import ACTIVE, ENV_CCS, ENV_CCS_TREATED, ENV_TRAPPED, ENV_TRAPPED_TREATED, workspace_for


def assert_rows_hold_health_as_observed(P, chains) -> None:
    """Every active casualty's row starts at its health and steps by its first environment's chain."""
    for c in range(len(P.h0)):
        env = P.start_env[c]
        if P.status[c] != ACTIVE:
            assert env == -1 and P.start_row[c] == -1
            continue
        want = (ENV_TRAPPED_TREATED if P.treated[c] else ENV_TRAPPED) if P.trapped[c] else (
            ENV_CCS_TREATED if P.treated[c] else ENV_CCS)
        assert env == want
        row = P.start_table[P.start_row[c]]
        assert np.array_equal(row[0], P.h0[c])
        for n in (1, 7, row.shape[0] - 1):
            np.testing.assert_allclose(row[n], P.h0[c] @ np.linalg.matrix_power(chains[env], n), rtol=0, atol=1e-12)


def untabled(P):
    """``P`` with no start read from the table: every segment multiplied, as before the table."""
    return P._replace(start_row=np.full_like(P.start_row, -1))


def scores(P, plan_arrays) -> tuple:
    """What evaluating a plan gives, the ride tables left out: they read a wait and a ride
    together, the same only to rounding (``tests/kernels/test_ride_tables.py``), where the start
    table gives the same bits as the products it replaces."""
    P = factories.without_ride_tables(P)
    starts, order, hosp, pins = plan_arrays
    W = workspace_for(P)
    F, overflow, T, status = evaluate(P, starts, order, hosp, pins, W)
    return F, overflow, T, status, W.pdead.copy(), W.arrival.copy()


def test_equal_starts_share_a_row_and_every_row_is_the_health_as_observed(london):
    P = problem_arrays(london)
    assert_rows_hold_health_as_observed(P, london.chains)
    keys = {(int(P.start_env[c]), P.h0[c].tobytes()) for c in range(len(P.h0))}
    assert len(set(P.start_row.tolist())) == len(keys)  # three triage vectors, trapped or not
    assert len(keys) < 10


def test_the_evaluator_gives_the_same_bits_with_the_table_and_without(rng, warm_jit):
    """Random scenarios (treated, under treatment, trapped with and without a rescue under way,
    observed in the past, random non-triangular chains) and random plans, some with segments of
    thousands of minutes (beyond the table), scored with every start read from the table and
    with none; and against the reference."""
    checked = 0
    for _ in range(150):
        sc = engine.load_scenario(factories.random_scenario(rng))
        P = problem_arrays(sc)
        assert_rows_hold_health_as_observed(P, sc.chains)
        plan = factories.random_plan(sc, rng)
        arrays = plan.to_arrays(sc)
        got, plain = scores(P, arrays), scores(untabled(P), arrays)
        assert got[3] == plain[3]
        for a, b in zip(got[:3] + got[4:], plain[:3] + plain[4:]):
            assert np.array_equal(a, b, equal_nan=True)
        want = reference.evaluate(sc, plan)
        if not want.cycle:
            assert got[0] == pytest.approx(want.expected_fatalities, abs=1e-9)
            checked += 1
    assert checked > 100


def test_rows_follow_the_casualties_through_deltas():
    """New observations, casualties added, a rescue that ended: each derived model (as the
    online engine makes them, ``engine.derive``) has its own casualties' starts in its rows, and
    the evaluator's bits do not depend on them."""
    d = generate("random", seed=5, casualties=25, paramedics=4, fire=2, hospitals=3)
    sc = engine.load_scenario(d)
    site = d["casualties"][0]["site"]
    changes = [
        lambda cas: cas.__setitem__(0, dict(cas[0], health=[0.1, 0.2, 0.3, 0.4], observed_at=-3.0)),
        lambda cas: cas.__setitem__(1, dict(cas[1], health="immediate", trapped=True)),
        lambda cas: cas.extend([{"id": "new-1", "site": site, "health": [0.5, 0.3, 0.15, 0.05], "trapped": True},
                                {"id": "new-2", "site": site, "health": "urgent", "treated": True}]),
        lambda cas: cas.__setitem__(1, dict(cas[1], trapped=False)),
    ]
    for change in changes:
        m = dict(d, casualties=list(d["casualties"]))  # as a delta makes a model: unchanged records shared
        change(m["casualties"])
        sc, d = derive(sc, d, m), m
        P = problem_arrays(sc)
        assert_rows_hold_health_as_observed(P, sc.chains)
        plan = factories.random_plan(sc, np.random.default_rng(0), mode="ordered")
        arrays = plan.to_arrays(sc)
        got, plain = scores(P, arrays), scores(untabled(P), arrays)
        assert np.array_equal(np.array(got[:3]), np.array(plain[:3]), equal_nan=True)


def test_a_model_whose_rows_were_forgotten_is_looked_up_afresh(monkeypatch):
    """The process keeps rows for a handful of power tables; a model derived from one whose rows
    were dropped must not read another's rows by their old numbers."""
    sc = engine.load_scenario(generate("random", seed=6, casualties=12, paramedics=3, fire=1, hospitals=2))
    problem_arrays(sc)
    monkeypatch.setattr(start_table, "_ROWS", {})
    other = start_table._rows_for(problem_arrays(sc).small)
    other.look_up(np.array([[0.25, 0.25, 0.25, 0.25]]), np.array([ENV_CCS]), [0], np.empty(1, np.int64))
    d = sc.to_dict()
    m = dict(d, casualties=list(d["casualties"]))
    m["casualties"][3] = dict(m["casualties"][3], health=[0.3, 0.3, 0.3, 0.1])
    sc2 = derive(sc, d, m)
    P2 = problem_arrays(sc2)
    assert other.owns(P2.start_table)
    assert_rows_hold_health_as_observed(P2, sc2.chains)


def test_starts_beyond_the_rows_kept_are_multiplied_instead(monkeypatch, rng, warm_jit):
    monkeypatch.setattr(start_table, "MAX_ROWS", 2)
    monkeypatch.setattr(start_table, "_ROWS", {})
    for _ in range(20):
        sc = engine.load_scenario(factories.random_scenario(rng))
        P = problem_arrays(sc)
        assert len(P.start_table) <= 2
        plan = factories.random_plan(sc, rng, mode="ordered")
        arrays = plan.to_arrays(sc)
        got, plain = scores(P, arrays), scores(untabled(P), arrays)
        assert np.array_equal(np.array(got[:3]), np.array(plain[:3]), equal_nan=True)


def test_an_array_grown_out_of_is_freed_once_no_model_views_it():
    small = np.ascontiguousarray(np.broadcast_to(np.eye(4).reshape(1, 1, 16), (5, 8, 16)))  # any tables do
    rows = start_table._Rows(small)
    env = np.full(40, ENV_CCS)
    h = np.random.default_rng(0).dirichlet(np.ones(4), size=40)
    old = rows.look_up(h, env, range(16), np.empty(40, np.int64))
    first = rows.issued[0]
    kept = rows.look_up(h, env, range(40), np.empty(40, np.int64))  # grows past 16 rows
    assert rows.owns(old) and rows.owns(kept) and old.base is not kept.base
    np.testing.assert_array_equal(kept[:16], old)
    del old
    assert first() is None  # nothing views it: gone
    assert rows.owns(kept) and not rows.owns(np.empty((1, 8, 4)))
    rows.look_up(h, env, range(40), np.empty(40, np.int64))
    assert rows.owns(kept)  # looked up again, nothing new: the same array
