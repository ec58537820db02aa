"""The simulator (SPEC §9): the sampled truth, the update policy, the scoring rule, reproducibility.

The truth tests compare empirical state frequencies of thousands of identical casualties with the
distribution SPEC §3 gives (``h · P_k1(δ1) · P_k2(δ2) …``, computed here independently of
``engine.health``), with a tolerance of 4.5 binomial standard errors per state. The scoring tests use
hand-built scenarios whose score is known exactly (known dead only, chains that never kill, chains
that kill within a minute). Runs are kept small: the machine is shared.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.simulate as simulate_mod
from engine.simulate import Policy, SimulationConfig, _Truth, simulate

ROOT = Path(__file__).resolve().parents[2]
LONDON = ROOT / "examples" / "london-5x18.json"
I4 = np.eye(4)
DEAD_ROW = [0.0, 0.0, 0.0, 1.0]
FAST = SimulationConfig(iterations_per_minute=20)

# Non-triangular chains with large rates, so that a wrong matrix, a wrong environment or a wrong
# duration shows up far outside the sampling noise.
# Segments are a few minutes long: whole-minute powers and the fractional step both matter.
CCS = [[0.60, 0.25, 0.10, 0.05], [0.15, 0.55, 0.20, 0.10], [0.00, 0.20, 0.55, 0.25], DEAD_ROW]
TRAPPED = [[0.45, 0.30, 0.15, 0.10], [0.05, 0.45, 0.30, 0.20], [0.00, 0.05, 0.55, 0.40], DEAD_ROW]
CCS_TREATED = [[0.95, 0.04, 0.01, 0.00], [0.40, 0.58, 0.02, 0.00], [0.10, 0.40, 0.48, 0.02], DEAD_ROW]
AMBULANCE = [[0.70, 0.20, 0.05, 0.05], [0.10, 0.60, 0.20, 0.10], [0.00, 0.10, 0.60, 0.30], DEAD_ROW]
SLOWDOWN = 0.3  # trapped_treated is left to the derivation I + s·(P − I)
H0 = np.array([0.2, 0.5, 0.3, 0.0])
N = 3000  # casualties per environment


def P_delta(chain, delta: float) -> np.ndarray:
    """SPEC §3, written out: ``P^n · ((1 − f)·I + f·P)``."""
    P = np.asarray(chain, dtype=np.float64)
    n = math.floor(delta)
    f = delta - n
    return np.linalg.matrix_power(P, n) @ ((1 - f) * I4 + f * P)


def assert_frequencies(states, expected, what=""):
    states = np.asarray(states)
    n = len(states)
    freq = np.bincount(states, minlength=4) / n
    expected = np.asarray(expected, dtype=np.float64)
    assert abs(expected.sum() - 1) < 1e-9
    for s in range(4):
        p = expected[s]
        se = math.sqrt(p * (1 - p) / n)
        assert abs(freq[s] - p) <= 4.5 * se + 1e-12, (
            f"{what}: state {s}: observed {freq[s]:.4f} over {n}, expected {p:.4f} (se {se:.4f}); "
            f"all observed {np.round(freq, 4)}, expected {np.round(expected, 4)}")


# --- hand-built scenarios ----------------------------------------------------------------------

def scenario(casualties, chains=None, **extra) -> dict:
    """One site, one hospital about 2.2 km away (about 4.5 min at 30 km/h), a fire station."""
    d = {"format": "goldenhour.scenario/1", "name": "hand", "network": {"kind": "geo", "speed_kmh": 30.0},
         "hospitals": [{"id": "H", "lat": 51.5343, "lon": -0.0755, "capacity": 1000}],
         "sites": [{"id": "S", "lat": 51.5143, "lon": -0.0755}],
         "stations": [{"id": "FS", "lat": 51.5243, "lon": -0.0755}],
         "responders": [{"id": "amb-1", "kind": "paramedic", "start": "H", "hart": True},
                        {"id": "amb-2", "kind": "paramedic", "start": "H"},
                        {"id": "fire-1", "kind": "fire", "start": "FS"}],
         "casualties": list(casualties)}
    if chains is not None:
        d["chains"] = chains
    d.update(extra)
    return d


def cas(i, health, trapped=False, **extra):
    return {"id": f"c{i:03d}", "site": "S", "health": health, "trapped": trapped, **extra}


@pytest.fixture(scope="module")
def many():
    """N trapped then N ccs casualties, all with health H0, under the chains above."""
    d = scenario([cas(i, list(H0), trapped=i < N) for i in range(2 * N)],
                 chains={"trapped": TRAPPED, "ccs": CCS, "ccs_treated": CCS_TREATED, "ambulance": AMBULANCE},
                 treatment_slowdown=SLOWDOWN)
    return engine.load_scenario(d)


TRAPPED_IDX = np.arange(0, N)
CCS_IDX = np.arange(N, 2 * N)


# --- the sampled truth (SPEC §3, §9) --------------------------------------------------------------

def test_truth_initial_states_follow_the_initial_health(many):
    truth = _Truth(many, 11)
    assert_frequencies(truth.state, H0, "initial")
    assert (truth.env[TRAPPED_IDX] == simulate_mod.TRAPPED).all()
    assert (truth.env[CCS_IDX] == simulate_mod.CCS).all()
    assert not truth.treated.any()


@pytest.mark.parametrize("delta", [3.0, 2.5, 0.35])
def test_truth_one_segment_in_ccs_follows_P_delta(many, delta):
    truth = _Truth(many, int(delta * 100))
    states = [truth.advance(int(c), delta) for c in CCS_IDX]
    assert_frequencies(states, H0 @ P_delta(CCS, delta), f"ccs over {delta}")


def test_truth_whole_minute_pieces_compose_to_one_segment(many):
    """Advancing at whole minutes (P^a·P^b = P^(a+b)) gives the distribution of one segment."""
    truth = _Truth(many, 5)
    for t in (1.0, 2.0, 4.0):
        for c in CCS_IDX:
            truth.advance(int(c), t)
    assert_frequencies(truth.state[CCS_IDX], H0 @ P_delta(CCS, 4.0), "ccs 0-1-2-4")


def test_truth_trapped_then_ccs_is_the_product_of_the_segment_matrices(many):
    truth = _Truth(many, 21)
    t1, t2 = 1.5, 3.75
    for c in TRAPPED_IDX:
        truth.move(int(c), t1, env=simulate_mod.CCS)
    mid = truth.state[TRAPPED_IDX].copy()
    assert_frequencies(mid, H0 @ P_delta(TRAPPED, t1), "trapped 0-1.5")
    states = [truth.advance(int(c), t2) for c in TRAPPED_IDX]
    expected = H0 @ P_delta(TRAPPED, t1) @ P_delta(CCS, t2 - t1)
    assert_frequencies(states, expected, "trapped 0-1.5 then ccs to 3.75")
    # the environment really matters: the all-trapped answer is far off
    wrong = H0 @ P_delta(TRAPPED, t2)
    assert np.abs(expected - wrong).max() > 0.03


def test_truth_treated_flag_switches_to_the_treated_chain(many):
    truth = _Truth(many, 33)
    t1, t2 = 1.0, 2.5
    for c in CCS_IDX:
        truth.move(int(c), t1, treated=True)
    for c in TRAPPED_IDX:
        truth.move(int(c), t1, treated=True)
    assert truth.treated.all()
    ccs = [truth.advance(int(c), t2) for c in CCS_IDX]
    trapped = [truth.advance(int(c), t2) for c in TRAPPED_IDX]
    assert_frequencies(ccs, H0 @ P_delta(CCS, t1) @ P_delta(CCS_TREATED, t2 - t1), "ccs then ccs_treated")
    derived = I4 + SLOWDOWN * (np.array(TRAPPED) - I4)
    assert_frequencies(trapped, H0 @ P_delta(TRAPPED, t1) @ P_delta(derived, t2 - t1),
                       "trapped then trapped_treated (derived)")


def test_truth_three_segments_trapped_treated_ccs_treated_ambulance(many):
    """A HART treatment under debris, the rescue, then the ambulance (treated no longer applies)."""
    truth = _Truth(many, 44)
    for c in TRAPPED_IDX:
        c = int(c)
        truth.move(c, 0.5, treated=True)
        truth.move(c, 1.5, env=simulate_mod.CCS)
        truth.move(c, 2.25, env=simulate_mod.AMBULANCE)
        truth.advance(c, 4.0)
    derived = I4 + SLOWDOWN * (np.array(TRAPPED) - I4)
    expected = (H0 @ P_delta(TRAPPED, 0.5) @ P_delta(derived, 1.0) @ P_delta(CCS_TREATED, 0.75)
                @ P_delta(AMBULANCE, 1.75))
    assert_frequencies(truth.state[TRAPPED_IDX], expected, "four segments")


def test_truth_deceased_is_absorbing_and_time_never_goes_back(many):
    truth = _Truth(many, 3)
    for c in CCS_IDX[:500]:
        truth.advance(int(c), 3.0)
    dead = [int(c) for c in CCS_IDX[:500] if truth.state[c] == 3]
    assert dead, "3 minutes under these chains kill some"
    before = truth.state[CCS_IDX[:500]].copy()
    for c in CCS_IDX[:500]:
        assert truth.advance(int(c), 1.0) == truth.state[c]  # earlier time: no change
        assert truth.since[c] == 3.0
        assert truth.advance(int(c), 3.0) == truth.state[c]  # zero-length segment: no change
    assert (truth.state[CCS_IDX[:500]] == before).all()
    for c in dead:
        assert truth.advance(c, 1000.0) == 3


# --- the update policy ---------------------------------------------------------------------------

@pytest.mark.parametrize("k, horizon, expected", [
    (1, 30.0, [0.0]),
    (2, 30.0, [0.0, 15.0]),
    (4, 30.0, [0.0, 7.5, 15.0, 22.5]),
    (10, 30.0, [3.0 * j for j in range(10)]),
    (30, 30.0, [float(j) for j in range(30)]),
    (3, 20.0, [0.0, 20 / 3, 40 / 3]),
])
def test_observation_times_are_k_evenly_spaced_from_zero(k, horizon, expected):
    times = Policy(k, 1.0).observation_times(horizon)
    assert len(times) == k
    assert times == pytest.approx(expected, abs=1e-12)
    assert all(0.0 <= t < horizon for t in times)


class _Recorder:
    """Wraps ``engine.simulate.Planner`` to record every delta the simulator applies."""

    def __init__(self, monkeypatch):
        self.deltas: list[dict] = []
        self.issues: list[tuple] = []
        real = simulate_mod.Planner
        outer = self

        class Recording(real):
            def apply(self, delta):
                outer.deltas.append(delta)
                return super().apply(delta)

            def next_task(self, responder, now):
                task = super().next_task(responder, now)
                outer.issues.append((now, responder, task))
                return task

        monkeypatch.setattr(simulate_mod, "Planner", Recording)

    def of(self, kind):
        return [d for d in self.deltas if d["type"] == kind]


@pytest.mark.parametrize("k, delay", [(3, 2.0), (2, 20.0), (1, 0.0)])
def test_observations_reach_the_engine_delay_minutes_late(monkeypatch, k, delay):
    rec = _Recorder(monkeypatch)
    d = scenario([cas(i, ["urgent", "immediate", "delayed"][i % 3], trapped=i == 0) for i in range(4)])
    H = 30.0
    row = simulate(d, Policy(k, delay), seed=2, config=SimulationConfig(horizon=H, iterations_per_minute=10))
    obs = rec.of("health_observed")
    sent = [u for u in Policy(k, delay).observation_times(H) if u + delay <= H + 1e-9]
    final = [o for o in obs if "observed_at" not in o]
    policy_obs = [o for o in obs if "observed_at" in o]
    assert len(final) <= 1
    if final:
        assert obs[-1] is final[0], "the scoring observation comes last"
    assert [o["time"] for o in policy_obs] == pytest.approx([u + delay for u in sent])
    assert [o["observed_at"] for o in policy_obs] == pytest.approx(sent)
    for o in obs:
        for item in o["observations"]:
            h = item["health"]
            assert sorted(h) == [0.0, 0.0, 0.0, 1.0], "the truth is reported as a one-hot state"
    # every casualty not yet delivered is observed, and a dead one stays dead
    done = {x["casualty"]: x["time"] for x in rec.of("task_completed") if x["task"] == "transport"}
    everyone = {c["id"] for c in d["casualties"]}
    for o in policy_obs:
        seen = {item["casualty"] for item in o["observations"]}
        assert {c for c in everyone if done.get(c, math.inf) > o["time"]} <= seen
        assert not {c for c in seen if done.get(c, math.inf) < o["time"]}
    last_state: dict[str, int] = {}
    for o in obs:
        for item in o["observations"]:
            s = item["health"].index(1.0)
            assert not (last_state.get(item["casualty"]) == 3 and s != 3), "the truth came back to life"
            last_state[item["casualty"]] = s
    for o in final:
        assert o["time"] >= H - 1e-9
    assert row["rejected_deltas"] == 0


@pytest.mark.parametrize("start", ["FS", {"lat": 51.5543, "lon": -0.0755}])
def test_a_responder_travels_from_its_start_before_its_first_task(monkeypatch, start):
    """A fire team at a station (or a team at a location of its own) needs the travel time to reach
    the site; the simulated truth must not let it start work there at time zero."""
    rec = _Recorder(monkeypatch)
    d = scenario([cas(0, "urgent", trapped=True, rescue_minutes=5.0)])
    d["stations"] = [{"id": "FS", "lat": 51.5543, "lon": -0.0755}]  # about 4.4 km from the site
    d["responders"][2]["start"] = start
    sc = engine.load_scenario(d)
    r = sc.responder_index["fire-1"]
    travel = float(sc.travel[sc.responder_loc[r], sc.site_loc[0]])
    assert travel > 5.0
    simulate(d, Policy(1, 0), seed=0, config=SimulationConfig(horizon=30.0, iterations_per_minute=10,
                                                              duration_cv=0.0))
    started = [x for x in rec.of("task_started") if x["task"] == "rescue"]
    assert started, "the rescue was started"
    assert started[0]["time"] >= travel - 1e-6, (
        f"rescue started at {started[0]['time']} but the fire team needs {travel:.2f} min to get there")


def test_a_pickup_waits_for_the_treatment_the_plan_has_another_team_do(monkeypatch):
    """SPEC §6: a pickup waits for a treat task in the plan. The nearby ambulance is told to carry
    the casualty that a team from the hospital is to treat first; the simulated truth must wait
    for that treatment, not pick the casualty up on arrival (which left the treating team with a
    task it could not start, and the run with rejected deltas)."""
    d = scenario([cas(0, "immediate")])
    d["responders"] = [{"id": "near", "kind": "paramedic", "start": "S"},
                       {"id": "far", "kind": "paramedic", "start": "H"},
                       {"id": "fire-1", "kind": "fire", "start": "FS"}]
    plan = {"format": "goldenhour.plan/1", "routes": {"far": [{"task": "treat", "casualty": "c000"}],
                                                      "near": [{"task": "transport", "casualty": "c000",
                                                                "hospital": "H"}]}}
    real = simulate_mod.Planner

    class AsPlanned(real):  # this plan, and no search: the truth has to follow it as it is
        def __init__(self, scenario, algorithm, seed):
            super().__init__(scenario, algorithm="descent", seed=seed, plan=plan, issue_better=False)

        def step(self, iterations):
            pass

    monkeypatch.setattr(simulate_mod, "Planner", AsPlanned)
    rec = _Recorder(monkeypatch)
    row = simulate(d, Policy(1, 0), seed=0, config=SimulationConfig(horizon=60.0, iterations_per_minute=0,
                                                                    duration_cv=0.0))
    assert row["rejected_deltas"] == 0
    started = {x["task"]: x for x in rec.of("task_started")}
    treated = [x for x in rec.of("task_completed") if x["task"] == "treat"]
    assert started["treat"]["responder"] == "far" and started["transport"]["responder"] == "near"
    assert treated and started["transport"]["time"] >= treated[0]["time"]


def test_work_under_way_in_the_scenario_ends_and_is_reported(monkeypatch):
    """SPEC §8.1 facts in the scenario a run starts from: a rescue under way until 3 (its fire
    team at the site, free then), a treatment under way until 4, a casualty in an ambulance
    arriving at 6. Each ends on its own in the truth and is reported by its team; the rescued and
    treated are then carried, and everyone is delivered."""
    rec = _Recorder(monkeypatch)
    d = scenario([cas(0, "urgent", trapped=True, rescue_ends_at=3.0),
                  cas(1, "urgent", treatment_ends_at=4.0),
                  cas(2, "urgent", in_transit={"hospital": "H", "arrival": 6.0})])
    d["responders"] = [{"id": "amb-1", "kind": "paramedic", "start": "H", "available_at": 11.0},  # carrying c002
                       {"id": "amb-2", "kind": "paramedic", "start": "S", "available_at": 4.0},  # treating c001
                       {"id": "fire-1", "kind": "fire", "start": "S", "available_at": 3.0}]  # rescuing c000
    row = simulate(d, Policy(1, 0), seed=0, config=SimulationConfig(horizon=60.0, iterations_per_minute=10,
                                                                    duration_cv=0.0))
    assert row["rejected_deltas"] == 0
    assert row["delivered"] == 3
    done = {(x["task"], x["casualty"]): (x["time"], x["responder"]) for x in rec.of("task_completed")}
    assert done[("rescue", "c000")] == (3.0, "fire-1")
    assert done[("treat", "c001")] == (4.0, "amb-2")
    assert done[("transport", "c002")] == (6.0, "amb-1")


def test_the_truth_starts_at_each_casualty_s_observation():
    """SPEC §4: a casualty observed at -600 has been in its environment since then: one seen
    'immediate' that long ago at the CCS is all but surely dead at time 0 (P(alive) ~ 2.5e-7 under
    the default chains), and scores 1 in every run."""
    d = scenario([cas(0, "immediate", observed_at=-600.0)])
    for s in range(3):
        row = simulate(d, Policy(1, 0), seed=s, config=SimulationConfig(horizon=30.0, iterations_per_minute=2))
        assert row["score"] == 1.0


# --- the scoring rule ------------------------------------------------------------------------------

def check_bookkeeping(row, n_casualties):
    assert 0 <= row["delivered"] <= n_casualties
    assert 0 <= row["delivered_dead"] <= row["delivered"]
    assert -1e-12 <= row["rest_expected"] <= (n_casualties - row["delivered"]) + 1e-9
    assert row["score"] == pytest.approx(row["delivered_dead"] + row["rest_expected"], abs=1e-9)
    assert row["rejected_deltas"] == 0


def test_known_dead_only_score_their_count():
    d = scenario([cas(i, "deceased", trapped=i % 2 == 0) for i in range(5)])
    row = simulate(d, Policy(2, 1.0), seed=1, config=FAST)
    check_bookkeeping(row, 5)
    assert row["delivered"] == 0
    assert row["score"] == pytest.approx(5.0, abs=1e-9)


def test_chains_that_never_kill_score_only_the_known_dead():
    identity = [list(map(float, r)) for r in I4]
    cs = [cas(i, ["delayed", "urgent", "immediate"][i % 3], trapped=i in (1, 4)) for i in range(6)]
    cs += [cas(10 + i, "dead") for i in range(2)]
    d = scenario(cs, chains={"trapped": identity, "ccs": identity, "ambulance": identity})
    for seed in (0, 1):
        row = simulate(d, Policy(3, 0.0), seed=seed, config=FAST)
        check_bookkeeping(row, 8)
        assert row["delivered"] > 0, "some casualties reach hospital within 30 minutes"
        assert row["delivered_dead"] == 0
        assert row["score"] == pytest.approx(2.0, abs=1e-9)


def test_chains_that_kill_within_a_minute_score_every_casualty():
    kill = [DEAD_ROW, DEAD_ROW, DEAD_ROW, DEAD_ROW]
    cs = [cas(i, ["delayed", "urgent", "immediate"][i % 3]) for i in range(6)]
    d = scenario(cs, chains={"trapped": kill, "ccs": kill, "ambulance": kill})
    cfg = SimulationConfig(iterations_per_minute=20, duration_cv=0.0)
    row = simulate(d, Policy(1, 0.0), seed=0, config=cfg)
    check_bookkeeping(row, 6)
    assert row["delivered"] > 0
    assert row["delivered_dead"] == row["delivered"]
    assert row["score"] == pytest.approx(6.0, abs=1e-9)


def test_run_record_bookkeeping_on_tiny_scenarios():
    from engine.generate import generate

    for seed in (1, 2):
        d = generate("tiny", seed=seed)
        row = simulate(d, Policy(3, 2.0), seed=seed, config=FAST)
        check_bookkeeping(row, len(d["casualties"]))
        assert row["updates"] == 3 and row["delay"] == 2.0 and row["seed"] == seed
        assert row["horizon"] == 30.0 and row["iterations_per_minute"] == 20
        assert row["algorithm"] == FAST.algorithm and row["duration_cv"] == FAST.duration_cv
        assert row["runtime_s"] > 0


# --- reproducibility -----------------------------------------------------------------------------

def _without_runtime(row):
    return {k: v for k, v in row.items() if k != "runtime_s"}


def test_same_seed_same_record_different_seeds_differ():
    from engine.generate import generate

    d = generate("tiny", seed=1)
    a = simulate(d, Policy(2, 1.0), seed=7, config=FAST)
    b = simulate(engine.load_scenario(d), Policy(2, 1.0), seed=7, config=FAST)
    assert _without_runtime(a) == _without_runtime(b)
    others = [simulate(d, Policy(2, 1.0), seed=s, config=FAST) for s in (8, 9, 10)]
    scores = {r["score"] for r in [a] + others}
    assert len(scores) > 1, f"four seeds gave the same score {scores}"


def test_london_example_run_has_no_rejected_deltas():
    row = simulate(LONDON, Policy(4, 1.0), seed=0, config=FAST)
    assert row["rejected_deltas"] == 0
    check_bookkeeping(row, 90)
    assert row["delivered"] > 0


def test_estimates_are_revised_when_a_task_is_issued(monkeypatch):
    """Each rescue and treatment gets one ``duration_revised`` at the moment it is issued, in
    issue order, and never after the task has started."""
    events = []

    class Spy(simulate_mod.Planner):
        def next_task(self, responder, now):
            task = super().next_task(responder, now)
            if task is not None:
                events.append(("issue", now, task.kind, task.casualty))
            return task

        def apply(self, delta):
            events.append(("delta", delta["time"], delta["type"], delta))
            return super().apply(delta)

    monkeypatch.setattr(simulate_mod, "Planner", Spy)
    from engine.generate import generate

    sc = engine.load_scenario(generate("random", seed=4, casualties=12, paramedics=3, fire=2, hospitals=2))
    simulate(sc, Policy(updates=2, delay=0), seed=1, config=SimulationConfig(horizon=120.0, iterations_per_minute=20))
    # a team asked again (on arrival, while waiting) is told the same task: the first telling issues it
    first_issue: dict[tuple, float] = {}
    for e, t, kind, cid in events:
        if e == "issue" and kind != "transport":
            first_issue.setdefault((kind, cid), t)
    revised = [(d["time"], d["task"], d["casualty"]) for e, _t, typ, d in events
               if e == "delta" and typ == "duration_revised"]
    assert first_issue and len(revised) == len({(k, c) for _t, k, c in revised}), "one revision a task"
    assert {(k, c): t for t, k, c in revised} == first_issue
    started = {(d["task"], d["casualty"]): d["time"] for e, _t, typ, d in events
               if e == "delta" and typ == "task_started" and d["task"] != "transport"}
    for e, _t, typ, d in events:
        if e == "delta" and typ == "duration_revised":
            assert started.get((d["task"], d["casualty"]), math.inf) >= d["time"]


def test_wall_clock_budget_searches_for_that_long(tiny):
    """``seconds_per_minute``: the search gets that much wall-clock time per simulated minute
    (a lower bound on the run's time), and the run records the budget it had."""
    config = SimulationConfig(horizon=20.0, seconds_per_minute=0.01)
    row = simulate(tiny, Policy(updates=2), seed=0, config=config)
    assert row["seconds_per_minute"] == 0.01
    assert row["runtime_s"] >= 20.0 * 0.01
    assert math.isfinite(row["score"]) and row["rejected_deltas"] == 0


# --- crews follow what they are told; news wakes them; same-time order; common random numbers ----

class _AsPlanned:
    """Monkeypatch ``engine.simulate.Planner`` to start from ``plan`` and never search: the truth
    has to follow that plan (and its repairs) as it is."""

    def __init__(self, monkeypatch, plan):
        real = simulate_mod.Planner

        class AsPlanned(real):
            def __init__(self, scenario, algorithm, seed):
                super().__init__(scenario, algorithm="descent", seed=seed, plan=plan, issue_better=False)

            def step(self, iterations):
                pass

        monkeypatch.setattr(simulate_mod, "Planner", AsPlanned)


def _route(**routes) -> dict:
    return {"format": "goldenhour.plan/1", "routes": {r: [dict(zip(("task", "casualty", "hospital"), t)) for t in ts]
                                                      for r, ts in routes.items()}}


def _seed_with_true_state(sc, c: int, state: int) -> int:
    """A run seed whose sampled true initial state of casualty ``c`` is ``state``."""
    return next(s for s in range(1000) if _Truth(sc, s).state[c] == state)


def test_a_team_on_its_way_to_a_casualty_learnt_dead_does_not_carry_it(monkeypatch):
    """SPEC §5: a casualty known dead gets no tasks. The ambulance is told to carry c000 at 0;
    the observation that c000 is dead (made at 0) reaches the planner at 2, while the ambulance
    is on its way (about 4.5 minutes). On arrival it must not pick c000 up, but do what it is
    told next: carry c001, waiting at the same site, from there, at once."""
    d = scenario([cas(0, [0.0, 0.0, 0.5, 0.5]), cas(1, "urgent")])
    d["responders"] = [{"id": "amb-1", "kind": "paramedic", "start": "H"},
                       {"id": "fire-1", "kind": "fire", "start": "FS"}]
    seed = _seed_with_true_state(engine.load_scenario(d), 0, 3)
    _AsPlanned(monkeypatch, _route(**{"amb-1": [("transport", "c000", "H"), ("transport", "c001", "H")]}))
    rec = _Recorder(monkeypatch)
    row = simulate(d, Policy(1, 2.0), seed=seed, config=SimulationConfig(horizon=60.0, iterations_per_minute=0,
                                                                       duration_cv=0.0))
    assert row["rejected_deltas"] == 0, row["first_rejected"]
    started = rec.of("task_started")
    assert [x["casualty"] for x in started] == ["c001"], "c000 was known dead before the ambulance got there"
    sc = engine.load_scenario(d)
    travel = float(sc.travel[sc.responder_loc[0], sc.site_loc[0]])
    assert travel > 2.0
    assert started[0]["time"] == pytest.approx(travel, abs=1e-9), "it carries c001 on arrival, not later"


def test_a_pickup_starts_when_the_rescue_ends_not_at_the_next_minute(monkeypatch):
    """SPEC §6: pickup = max(arrival, rescue end). The ambulance arrives first and waits; the fire
    team's report that the rescue is done wakes it, so it starts then, not up to a minute later."""
    d = scenario([cas(0, "urgent", trapped=True, rescue_minutes=5.3)])
    d["responders"] = [{"id": "amb-2", "kind": "paramedic", "start": "S"},
                       {"id": "fire-1", "kind": "fire", "start": "FS"}]
    _AsPlanned(monkeypatch, _route(**{"fire-1": [("rescue", "c000")], "amb-2": [("transport", "c000", "H")]}))
    rec = _Recorder(monkeypatch)
    row = simulate(d, Policy(1, 0.0), seed=0, config=SimulationConfig(horizon=60.0, iterations_per_minute=0,
                                                                    duration_cv=0.0))
    assert row["rejected_deltas"] == 0, row["first_rejected"]
    rescued = [x for x in rec.of("task_completed") if x["task"] == "rescue"]
    picked = [x for x in rec.of("task_started") if x["task"] == "transport"]
    assert rescued and picked
    assert rescued[0]["time"] % 1.0 != 0.0, "a rescue ending between two whole minutes"
    assert picked[0]["time"] == rescued[0]["time"]


def test_an_observation_reaches_the_planner_before_teams_ask_at_the_same_moment(monkeypatch):
    """With no delay, the update made at the start is in the model before the first task is issued."""
    order = []
    real = simulate_mod.Planner

    class Spy(real):
        def apply(self, delta):
            order.append(("delta", delta["type"], delta["time"]))
            return super().apply(delta)

        def next_task(self, responder, now):
            order.append(("ask", responder, now))
            return super().next_task(responder, now)

    monkeypatch.setattr(simulate_mod, "Planner", Spy)
    d = scenario([cas(i, "urgent") for i in range(3)])
    simulate(d, Policy(3, 0.0), seed=0, config=SimulationConfig(horizon=30.0, iterations_per_minute=5))
    first_ask = next(i for i, e in enumerate(order) if e[0] == "ask")
    assert ("delta", "health_observed", 0.0) in order[:first_ask]
    # and at every later update, before any team asks at that moment
    for t in (10.0, 20.0):
        at = [e for e in order if e[-1] == t]
        if any(e[0] == "ask" for e in at):
            assert at[0] == ("delta", "health_observed", t)


def test_the_horizon_starts_at_the_scenario_s_time(monkeypatch):
    """A snapshot taken at 40: its updates are made at 40, 50, 60 and the run ends at 70, with
    nothing rejected for being before the model's time."""
    rec = _Recorder(monkeypatch)
    d = scenario([cas(i, "urgent", observed_at=35.0) for i in range(3)], time=40.0)
    row = simulate(d, Policy(3, 1.0), seed=0, config=SimulationConfig(horizon=30.0, iterations_per_minute=5))
    assert row["rejected_deltas"] == 0, row["first_rejected"]
    policy_obs = [o for o in rec.of("health_observed") if "observed_at" in o]
    assert [o["observed_at"] for o in policy_obs] == pytest.approx([40.0, 50.0, 60.0])
    assert [o["time"] for o in policy_obs] == pytest.approx([41.0, 51.0, 61.0])
    assert rec.of("clock") and rec.of("clock")[-1]["time"] == pytest.approx(70.0) or row["delivered"] == 3
    assert all(x["time"] <= 70.0 + 1e-9 for x in rec.deltas)
    assert rec.of("task_started"), "the teams worked"


def test_policies_share_their_random_numbers(monkeypatch):
    """Common random numbers: under the same seed, two policies draw the same initial true states
    (their updates at 0 agree) and every task both runs start takes the same actual minutes."""
    from engine.generate import generate

    d = generate("random", seed=3, casualties=15, paramedics=4, fire=2, hospitals=3)
    runs = []
    for policy in (Policy(1, 0.0), Policy(5, 2.0)):
        rec = _Recorder(monkeypatch)
        simulate(d, policy, seed=11, config=SimulationConfig(horizon=60.0, iterations_per_minute=20))
        start = {(x["task"], x["casualty"]): x["time"] for x in rec.of("task_started")}
        took = {k: x["time"] - start[k] for x in rec.of("task_completed")
                if (k := (x["task"], x["casualty"])) in start and x["task"] != "transport"}
        first = next(o for o in rec.of("health_observed") if o.get("observed_at") == 0.0)
        runs.append((took, {o["casualty"]: o["health"] for o in first["observations"]}))
    (took1, seen1), (took2, seen2) = runs
    assert seen1 == seen2
    common = took1.keys() & took2.keys()
    assert len(common) >= 2
    assert all(took1[k] == pytest.approx(took2[k], abs=1e-9) for k in common), (took1, took2)


def test_work_under_way_that_no_team_claims_is_reported_done_all_the_same(monkeypatch):
    """A rescue under way by a crew the model does not hold (SPEC §8.1 facts, no fire team at the
    site): its end is reported to the planner, which takes it, and the casualty is carried once."""
    rec = _Recorder(monkeypatch)
    d = scenario([cas(0, "urgent", trapped=True, rescue_ends_at=3.0)])
    row = simulate(d, Policy(1, 0), seed=0, config=SimulationConfig(horizon=60.0, iterations_per_minute=10,
                                                                    duration_cv=0.0))
    assert row["rejected_deltas"] == 0, row["first_rejected"]
    done = [x for x in rec.of("task_completed") if x["task"] == "rescue"]
    assert [(x["time"], x["responder"]) for x in done] == [(3.0, simulate_mod.OUTSIDE_TEAM)]
    assert [x["casualty"] for x in rec.of("task_started") if x["task"] == "transport"] == ["c000"]
    assert row["delivered"] == 1


def test_online_annealing_cools_between_the_deltas_of_a_simulated_incident(monkeypatch):
    """Every task started or ended and every observation re-heats the planner's annealing; it must
    cool again before the next (``engine.planner.ANNEAL_EPOCH``). Cooling over 20 000 iterations,
    as it once did, the search at 200 iterations a simulated minute never cooled, and the same
    incidents (paired by seed) ended with more expected fatalities: 1.07 +- 0.21 a run over 24
    London incidents with one update (blocks of eight 1.03 to 1.13). With ten updates the gap
    is within the noise (0.13 +- 0.13 over 48, blocks of eight -0.25 to +0.50), so the test
    does not use them: it did once, and passed on its first eight seeds by chance."""
    import engine.planner as planner_mod

    sc = engine.load_scenario(LONDON)
    config = SimulationConfig(iterations_per_minute=200)
    policy = Policy(updates=1)
    now = [simulate(sc, policy, seed=s, config=config)["score"] for s in range(8)]
    monkeypatch.setattr(planner_mod, "ANNEAL_EPOCH", 20_000)
    slow = [simulate(sc, policy, seed=s, config=config)["score"] for s in range(8)]
    assert np.mean(slow) - np.mean(now) > 0.5, (now, slow)
