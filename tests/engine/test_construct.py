"""The dispatcher's ``rule`` against a plain statement of it, on random and real scenarios; ``greedy``
against ``reference.greedy`` (every insertion scored by a full plain-Python evaluation)."""

import copy
import json
import math

import numba
import numpy as np
import pytest

import engine
import factories
import reference
from engine.construct import greedy, rule
from engine.generate import generate
from engine.plan import Plan, problem_arrays
from engine.repair import repair
from kernels.layout import ACTIVE, IN_TRANSIT, KINDS, RESCUE, TRANSPORT


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
        if P.status[c] == IN_TRANSIT:  # a known-dead casualty in an ambulance takes no bed (SPEC §8.1)
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


def _repaired(sc):
    """The online repair of an empty plan: every transport inserted (``engine.repair``)."""
    return repair(sc, Plan({r.id: [] for r in sc.model.responders}, sc.model.name, sc.model.time), {})


@pytest.mark.parametrize("dead", [False, True], ids=["alive", "known-dead"])
def test_constructions_count_the_beds_ambulances_on_their_way_already_take(dead):
    """A casualty in an ambulance to the nearest hospital takes its one bed (SPEC §8.1): greedy,
    the dispatcher's rule and the online repair send the casualty still waiting to the next
    nearest. A known-dead one takes none (§8.1), so the nearest is still free."""
    d = _one_site_one_bed_each(2)
    sc0 = engine.load_scenario(d)
    P = problem_arrays(sc0)
    by_distance = np.argsort(P.travel[P.site_loc[0], P.hosp_loc], kind="stable")
    nearest = d["hospitals"][int(by_distance[0])]["id"]
    d["casualties"][0]["in_transit"] = {"hospital": nearest, "arrival": 5.0}
    if dead:
        d["casualties"][0]["health"] = "dead"
    sc = engine.load_scenario(d)
    for construct in (rule, greedy, _repaired):
        assert construct(sc).hosp[1] == by_distance[0 if dead else 1], construct.__name__


# --- greedy against tests/reference.py's plain statement of it -------------------------------------


def _twins(d: dict, rng) -> None:
    """Two to four more copies of one casualty at its site: the same health and fields, so
    positions and orders tie in the objective."""
    cas = [c for c in d["casualties"] if "in_transit" not in c]
    twin = copy.deepcopy(cas[rng.integers(len(cas))]) if cas else {"site": d["sites"][0]["id"], "health": "urgent"}
    for i in range(int(rng.integers(2, 5))):
        d["casualties"].append({**copy.deepcopy(twin), "id": f"twin{i}"})


def _tight(d: dict, rng) -> None:
    """Every hospital with 0 or 1 beds, and one or two more casualties in ambulances."""
    for h in d["hospitals"]:
        h["capacity"] = int(rng.integers(0, 2))
    for i in range(int(rng.integers(1, 3))):
        d["casualties"].append({"id": f"carried{i}", "site": d["sites"][0]["id"], "health": "immediate",
                                "in_transit": {"hospital": d["hospitals"][rng.integers(len(d["hospitals"]))]["id"],
                                               "arrival": float(d.get("time", 0.0)) + float(rng.integers(0, 20))}})


def _trapped(d: dict, rng) -> None:
    """At least one fire team, and most casualties trapped with no rescue under way: their
    transports wait for the fire teams."""
    if not any(r["kind"] == "fire" for r in d["responders"]):
        for i in range(int(rng.integers(1, 3))):
            d["responders"].append({"id": f"extra-fire{i}", "kind": "fire",
                                    "start": d["sites"][rng.integers(len(d["sites"]))]["id"]})
    for c in d["casualties"]:
        if "in_transit" not in c and rng.random() < 0.8:
            c["trapped"] = True
            c.pop("rescue_ends_at", None)
            if rng.random() < 0.5:
                c["rescue_minutes"] = float(rng.integers(0, 30))


def _pins(sc, rng):
    """Issued work: the pinned prefixes of a random valid plan, as ``greedy`` takes them."""
    starts, order, hosp, pins = factories.random_plan(sc, rng, mode="ordered", pin_share=0.6).to_arrays(sc)
    pinned = {r: order[starts[r]:starts[r] + pins[r]].tolist() for r in range(len(pins)) if pins[r]}
    hosp_pinned = {code // KINDS: int(hosp[code // KINDS]) for codes in pinned.values() for code in codes
                   if code % KINDS == TRANSPORT}
    return pinned, hosp_pinned


def _check_greedy(d, sc, pinned=None, hosp_pinned=None) -> None:
    sol = greedy(sc, pinned, hosp_pinned)
    lists, hosp = reference.greedy(sc, pinned, hosp_pinned)
    got = [sol.order[sol.starts[r]:sol.starts[r + 1]].tolist() for r in range(len(lists))]
    repro = "scenario = " + json.dumps(d) + f"\npinned = {pinned}\nhosp_pinned = {hosp_pinned}"
    assert (got, sol.hosp.tolist()) == (lists, hosp), repro
    assert sol.pins.tolist() == [len((pinned or {}).get(r, [])) for r in range(len(lists))]
    ref = reference.evaluate(sc, reference.plan_of(sc, lists, hosp, sol.pins.tolist()))
    obj = sol.objective
    assert obj.feasible == ref.feasible, repro
    for key in ("expected_fatalities", "overflow_fatalities", "casualty_minutes"):
        a, b = getattr(obj, key), getattr(ref, key)
        assert (a is None and b is None) or abs(a - b) <= 1e-9, (key, a, b, repro)


@pytest.mark.parametrize("seed", range(40))
def test_greedy_is_cheapest_insertion_on_random_scenarios(seed):
    d = factories.random_scenario(np.random.default_rng(seed), max_casualties=7)
    sc = engine.load_scenario(d)
    _check_greedy(d, sc)


@pytest.mark.parametrize("seed", range(30))
def test_greedy_is_cheapest_insertion_after_pinned_prefixes(seed):
    rng = np.random.default_rng(1000 + seed)
    d = factories.random_scenario(rng, max_casualties=7)
    sc = engine.load_scenario(d)
    _check_greedy(d, sc, *_pins(sc, rng))


@pytest.mark.parametrize("awkward", [_twins, _tight, _trapped, (_twins, _tight, _trapped)],
                         ids=["twins", "tight", "trapped", "all"])
@pytest.mark.parametrize("seed", range(12))
def test_greedy_is_cheapest_insertion_on_awkward_scenarios(awkward, seed):
    """Identical casualties at one site (ties), hospitals of 0-1 beds, trapped casualties waiting for
    fire teams; every other case with pinned prefixes too."""
    rng = np.random.default_rng(2000 + seed)
    d = factories.random_scenario(rng, max_casualties=5)
    for mutate in awkward if isinstance(awkward, tuple) else (awkward,):
        mutate(d, rng)
    sc = engine.load_scenario(d)
    _check_greedy(d, sc, *(_pins(sc, rng) if seed % 2 else ()))


@pytest.fixture
def one_thread():
    """Numba on one thread: ``insert_cheapest`` scores in this thread (``score_serial``), not in a sweep."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(threads)


@pytest.mark.parametrize("seed", range(12))
def test_greedy_is_cheapest_insertion_on_one_thread(one_thread, seed):
    rng = np.random.default_rng(3000 + seed)
    d = factories.random_scenario(rng, max_casualties=6)
    _twins(d, rng)
    sc = engine.load_scenario(d)
    _check_greedy(d, sc, *(_pins(sc, rng) if seed % 2 else ()))


def test_greedy_gives_a_known_dead_casualty_in_transit_no_bed():
    """SPEC §8.1: a known-dead casualty takes no bed, even in an ambulance; the objective agrees
    (it admits none). The one bed of the nearer hospital is free, so greedy and rule send the
    living casualty there (both sent it farther, counting the dead one's bed)."""
    d = {"format": "goldenhour.scenario/1", "name": "dead-in-transit", "time": 0.0,
         "network": {"kind": "geo", "speed_kmh": 30.0},
         "hospitals": [{"id": "near", "lat": 51.52, "lon": -0.07, "capacity": 1},
                       {"id": "far", "lat": 51.45, "lon": -0.20, "capacity": 5}],
         "sites": [{"id": "S", "lat": 51.514, "lon": -0.076}],
         "responders": [{"id": "amb", "kind": "paramedic", "start": "S"}],
         "casualties": [{"id": "gone", "site": "S", "health": "dead",
                         "in_transit": {"hospital": "near", "arrival": 5.0}},
                        {"id": "c", "site": "S", "health": "immediate"}]}
    sc = engine.load_scenario(d)
    assert reference.greedy(sc) == ([[KINDS * 1 + TRANSPORT]], [-1, 0])
    _check_greedy(d, sc)
    assert rule(sc).hosp.tolist() == [-1, 0]


@pytest.mark.parametrize("construct", [rule, greedy])
def test_a_pinned_transport_needs_its_hospital(construct):
    """Without it the transport's hospital would be -1: silently the last hospital."""
    sc = engine.load_scenario(_one_site_one_bed_each(2))
    medic = int(np.flatnonzero(~problem_arrays(sc).resp_fire)[0])
    with pytest.raises(ValueError, match=r"casualties \[1\]"):
        construct(sc, {medic: [KINDS * 1 + TRANSPORT]})
    assert construct(sc, {medic: [KINDS * 1 + TRANSPORT]}, {1: 2}).hosp[1] == 2
