"""The dispatcher's ``rule`` against a plain statement of it, on random and real scenarios."""

import math

import numpy as np
import pytest

import engine
import factories
from engine.construct import greedy, rule
from engine.generate import generate
from engine.plan import problem_arrays
from kernels.layout import ACTIVE, KINDS, RESCUE, TRANSPORT


def _dispatcher(P):
    """What a control room does by hand, one decision at a time, in plain Python.

    Fire teams: whichever is free first (then the lower index) goes to the nearest trapped
    casualty still waiting for a rescue (ties: the more severe). Then, most severe first
    (p(immediate) + p(urgent), then p(immediate), then index), each casualty still to be carried
    gets the paramedic team that can be there first (then the lower index) and the nearest
    hospital (then the lower index) with a bed left, or the nearest of all when none has one.
    """
    n_resp, n_cas, n_hosp = len(P.resp_loc), len(P.h0), len(P.hosp_loc)
    travel = P.travel
    free = [float(P.resp_free[r]) for r in range(n_resp)]
    loc = [int(P.resp_loc[r]) for r in range(n_resp)]
    load, handover = float(P.scalars[1]), float(P.scalars[2])
    h0 = P.h0
    severe = sorted(range(n_cas), key=lambda c: (-(h0[c, 1] + h0[c, 2]), -h0[c, 2], c))
    rank = {c: i for i, c in enumerate(severe)}
    lists = [[] for _ in range(n_resp)]
    rescued_at = {}
    for c in range(n_cas):
        fixed = P.rescue_fixed[c]
        rescued_at[c] = (0.0 if math.isnan(fixed) else float(fixed)) if P.trapped[c] else -math.inf
    fires = [r for r in range(n_resp) if P.resp_fire[r]]
    waiting = [c for c in severe if P.needs_rescue[c]]
    while fires and waiting:
        f = min(fires, key=lambda r: (free[r], r))
        c = min(waiting, key=lambda c: (travel[loc[f], P.site_loc[c]], rank[c]))
        waiting.remove(c)
        free[f] += travel[loc[f], P.site_loc[c]] + P.rescue_dur[c]
        loc[f] = int(P.site_loc[c])
        rescued_at[c] = free[f]
        lists[f].append(KINDS * c + RESCUE)
    medics = [r for r in range(n_resp) if not P.resp_fire[r]]
    taken = [0] * n_hosp
    for c in range(n_cas):
        if P.transit_hosp[c] >= 0:
            taken[P.transit_hosp[c]] += 1
    hosp = [-1] * n_cas
    for c in severe:
        if P.status[c] != ACTIVE or not medics:
            continue
        site = int(P.site_loc[c])
        r = min(medics, key=lambda r: (free[r] + travel[loc[r], site], r))
        pickup = max(free[r] + travel[loc[r], site], rescued_at[c])
        with_bed = [h for h in range(n_hosp) if taken[h] < P.hosp_cap[h]]
        h = min(with_bed or range(n_hosp), key=lambda h: (travel[site, P.hosp_loc[h]], h))
        taken[h] += 1
        hosp[c] = h
        lists[r].append(KINDS * c + TRANSPORT)
        free[r] = pickup + load + travel[site, P.hosp_loc[h]] + handover
        loc[r] = int(P.hosp_loc[h])
    return lists, hosp


def _check(sc):
    P = problem_arrays(sc)
    sol = rule(sc)
    lists, hosp = _dispatcher(P)
    got = [sol.order[sol.starts[r]:sol.starts[r + 1]].tolist() for r in range(len(lists))]
    assert got == lists
    assert sol.hosp.tolist() == hosp
    return sum(len(x) for x in lists)


@pytest.mark.parametrize("seed", range(60))
def test_rule_is_the_dispatchers_rule_on_awkward_scenarios(seed):
    sc = engine.load_scenario(factories.random_scenario(np.random.default_rng(seed)))
    _check(sc)


@pytest.mark.parametrize("preset,options", [
    ("tiny", {}),
    ("random", dict(casualties=60, paramedics=6, fire=3, hospitals=4)),
    ("random", dict(casualties=300, paramedics=20, fire=8, hospitals=6)),
])
@pytest.mark.parametrize("seed", range(3))
def test_rule_is_the_dispatchers_rule_on_generated_scenarios(preset, options, seed):
    sc = engine.load_scenario(generate(preset, seed=seed, **options))
    assert _check(sc) > 0


def test_rule_on_the_london_example(london):
    P = problem_arrays(london)
    assert _check(london) == int(P.needs_rescue.sum()) + int((P.status == ACTIVE).sum())


def _one_site_one_bed_each(casualties: int) -> dict:
    """``casualties`` untrapped casualties at one site, three hospitals with one bed each."""
    d = generate("random", seed=2, casualties=casualties, paramedics=2, fire=1, hospitals=3, sites=1)
    for c in d["casualties"]:
        c["trapped"] = False
    for h in d["hospitals"]:
        h["capacity"] = 1
    return d


def test_greedy_sends_each_casualty_to_the_nearest_hospital_with_a_bed_left():
    """Three casualties at one site, three hospitals with one bed each: the nearest hospital takes
    one, and the others go on to the next nearest (not all three to the nearest, over its beds)."""
    sol = greedy(engine.load_scenario(_one_site_one_bed_each(3)))
    assert sorted(sol.hosp.tolist()) == [0, 1, 2]
    assert sol.objective.overflow_fatalities == 0.0


def test_greedy_counts_the_beds_ambulances_on_their_way_already_take():
    """A casualty in an ambulance to the nearest hospital takes its one bed (SPEC §8.1): greedy,
    like the dispatcher's rule, sends the casualty still waiting to the next nearest."""
    d = _one_site_one_bed_each(2)
    sc0 = engine.load_scenario(d)
    P = problem_arrays(sc0)
    by_distance = np.argsort(P.travel[P.site_loc[0], P.hosp_loc], kind="stable")
    nearest = d["hospitals"][int(by_distance[0])]["id"]
    d["casualties"][0]["in_transit"] = {"hospital": nearest, "arrival": 5.0}
    sc = engine.load_scenario(d)
    for construct in (rule, greedy):
        assert construct(sc).hosp[1] == by_distance[1], construct.__name__
