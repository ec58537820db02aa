"""A discrete-event simulation of the response that drives the online planner (SPEC §9).

The simulator holds the truth: each casualty's true health state (sampled per segment from the
same chains with ``P_k(δ)``) and actual task durations (log-normal around the estimates; a
rescue's or treatment's estimate is revised when the task is issued, and the actual end is
reported when it comes). Teams ask the ``Planner`` for work when they are free, report when
tasks start and end, and health observations reach the planner under an update policy:
``updates`` evenly spaced observations of every casualty over the horizon (1: only at its
start), each arriving ``delay`` minutes late. The horizon starts at the scenario's time (a
snapshot's, say). Search effort is fixed in iterations per simulated minute, so a run is
reproducible from its seed.

What the crews do follows what the planner tells them, as in the field: a team on its way to a
task checks on arrival that the task is still its own (the planner drops a task whose casualty
it learns is dead, or another team carried), and goes on to whatever it is told next from
where it is; a team waiting at a site (for a rescue or a treatment) or with nothing to do asks
again as soon as work ends or news arrives, and at least once a minute. At the same moment,
what happened (work ending, observations arriving) reaches the planner before a team asks.

Random numbers are drawn from streams keyed by what they are for (each casualty's health; each
task's actual minutes and its revised estimate), so runs with the same seed under different
policies draw the same actual durations for the same task and the same initial states (common
random numbers). The health paths are common only until the policies look at a casualty at
different times: each observation draws its state then, splitting its segment, and the draws
after it part from those of a policy that did not look (a casualty no team moves under either
policy can end in different true states). So the pairing removes the incident's spread and the
durations' noise from a comparison of policies, not the health paths'.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from .evaluate import evaluate_detail
from .health import ENVIRONMENTS, is_known_dead, step_matrix
from .deltas import team_doing
from .errors import InputError, Problem
from .planner import Planner
from .plan import problem_arrays
from .scenario import load_scenario
from .solve import MAX_SEED, whole

TRAPPED, CCS, AMBULANCE = (ENVIRONMENTS.index(k) for k in ("trapped", "ccs", "ambulance"))
#: iterations between two looks at the clock in a wall-clock (``seconds_per_minute``) run
REALTIME_STEP = 50


@dataclass(frozen=True)
class Policy:
    """``updates`` evenly spaced health updates over the horizon, each ``delay`` minutes late."""

    updates: int = 1
    delay: float = 0.0

    def observation_times(self, horizon: float, start: float = 0.0) -> list[float]:
        """When the updates are made: ``start``, then every ``horizon / updates`` minutes."""
        return [start + horizon * j / self.updates for j in range(self.updates)]


@dataclass(frozen=True)
class SimulationConfig:
    """``iterations_per_minute`` of search per simulated minute (reproducible); or, when
    ``seconds_per_minute`` is set, that much wall-clock search per simulated minute instead (a
    real-time run at 60; not reproducible across machines)."""

    horizon: float = 30.0
    iterations_per_minute: int = 200
    duration_cv: float = 0.2
    algorithm: str = "annealing"
    seconds_per_minute: float | None = None


#: What a random stream draws (the first key after the seed, see ``stream``).
HEALTH, DURATION, REVISION, LOAD, HANDOVER = range(5)
_TASK_KEY = {"rescue": 0, "treat": 1}


def stream(seed: int, *key: int) -> np.random.Generator:
    """The generator of one run (``seed``) for one purpose (``key``): independent of every other,
    and of how many numbers the others have drawn."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


class _Truth:
    """True health states, advanced per segment with ``P_k(δ)`` whenever the environment changes.

    Each casualty draws from a stream of its own (``stream(seed, HEALTH, c)``).
    """

    def __init__(self, sc, seed: int):
        self.chains = sc.chains
        n = len(sc.model.casualties)
        self.rngs = [stream(seed, HEALTH, c) for c in range(n)]
        self.state = np.array([g.choice(4, p=h / h.sum()) for g, h in zip(self.rngs, sc.health)], dtype=np.int64)
        # each casualty from its own observation, in its present environment (SPEC §4, §8.1)
        self.since = np.array([sc.model.time if c.observed_at is None else c.observed_at
                               for c in sc.model.casualties], dtype=np.float64).reshape(n)
        self.env = np.array([AMBULANCE if c.in_transit else TRAPPED if c.trapped else CCS
                             for c in sc.model.casualties], dtype=np.int64).reshape(n)
        self.treated = np.array([c.treated for c in sc.model.casualties], dtype=bool)

    def _chain(self, c):
        env = self.env[c]
        if self.treated[c] and env in (TRAPPED, CCS):
            env = ENVIRONMENTS.index(ENVIRONMENTS[env] + "_treated")
        return self.chains[env]

    def advance(self, c: int, t: float) -> int:
        if t > self.since[c] and self.state[c] != 3:
            row = step_matrix(self._chain(c), t - self.since[c])[self.state[c]]
            self.state[c] = self.rngs[c].choice(4, p=np.clip(row, 0, None) / np.clip(row, 0, None).sum())
        self.since[c] = max(self.since[c], t)
        return int(self.state[c])

    def move(self, c: int, t: float, env: int | None = None, treated: bool | None = None) -> None:
        self.advance(c, t)
        if env is not None:
            self.env[c] = env
        if treated is not None:
            self.treated[c] = treated


def _treat_planned(planner: Planner, cid: str) -> bool:
    """Whether the planner's plan still has ``cid`` treated by a team that has not started yet."""
    return any(t.kind == "treat" and t.casualty == cid for ts in planner.best()[0].routes.values() for t in ts)


#: A same-time event's rank: what happened (work ending, observations) before a team asks.
_HAPPENED, _ASKS = 0, 1
#: The responder named in the completion of work under way that no team's facts claim (SPEC §8.1:
#: a crew outside the model, say); the planner takes it when no team claims the work.
OUTSIDE_TEAM = "(no team in the model)"
#: Minutes between two looks of a team that waits, at most (it is also woken by any news).
POLL = 1.0


def planner_seed(seed: int) -> int:
    """The search's seed for a run's ``seed``: itself when the search takes it (up to
    ``MAX_SEED``), else drawn from it. A run's seed has no bound (an experiment's grows with its
    base seed, ``experiment.run_seed``); the search's generator takes 32 bits."""
    return int(seed) if seed <= MAX_SEED else int(np.random.SeedSequence(int(seed)).generate_state(1)[0])


def simulate(scenario, policy: Policy = Policy(), seed: int = 0, config: SimulationConfig = SimulationConfig()) -> dict:
    """One run; returns its inputs, seed and score (expected fatalities on the truth, SPEC §9)."""
    t_wall = time.perf_counter()
    if config.seconds_per_minute is not None and not 0 < config.seconds_per_minute < math.inf:
        raise ValueError(f"seconds_per_minute must be finite and > 0, got {config.seconds_per_minute}")
    if not whole(seed) or seed < 0:
        raise InputError(Problem("seed", f"expected a whole number >= 0, got {seed!r}"))
    sc = load_scenario(scenario)
    truth = _Truth(sc, seed)
    planner = Planner(sc, algorithm=config.algorithm, seed=planner_seed(seed))
    P = problem_arrays(sc)
    m = sc.model
    start = float(m.time)
    end = start + config.horizon
    sigma = math.sqrt(math.log(1 + config.duration_cv ** 2))

    def actual(estimate: float, *key: int) -> float:
        """The true minutes of an estimate: log-normal around it, one stream per ``key``."""
        if estimate <= 0:
            return 0.0
        return float(estimate * stream(seed, *key).lognormal(-sigma * sigma / 2, sigma))

    index = dict(sc.casualty_index)
    hosp_index = dict(sc.hospital_index)
    site_of = {c.id: c.site for c in m.casualties}
    # where each team is, as a location index of the scenario's travel matrix
    loc = {r.id: int(sc.responder_loc[i]) for i, r in enumerate(m.responders)}
    site_loc = {s.id: int(sc.site_loc[i]) for i, s in enumerate(m.sites)}
    free_at = {r.id: max(r.available_at if r.available_at is not None else m.time, m.time) for r in m.responders}
    hart = {r.id: r.hart for r in m.responders}
    rescued_at: dict[str, float] = {}
    treating: dict[str, float] = {}
    carried: set[str] = set()
    delivered: dict[str, bool] = {}
    events: list = []
    seq = 0

    def push(t, kind, *payload):
        nonlocal seq
        if t <= end + 1e-9:
            rank = _ASKS if kind in ("free", "arrive") else _HAPPENED
            heapq.heappush(events, (t, rank, seq, kind, payload))
            seq += 1

    # a team has one next look at a time: a newer one (news woke it) supersedes an older one
    token = {r.id: 0 for r in m.responders}
    waiting: dict[str, tuple] = {}  # teams that wait (idle, or at a site), and what they wait with

    def look(t, kind, rid, *payload):
        token[rid] += 1
        push(t, kind, rid, token[rid], *payload)

    def wait(t, kind, rid, *payload):
        """``rid`` looks again in a minute, or as soon as news arrives."""
        waiting[rid] = (kind, payload)
        look(t + POLL, kind, rid, *payload)

    def wake(t):
        for rid, (kind, payload) in list(waiting.items()):
            look(t, kind, rid, *payload)
        waiting.clear()

    # work under way in the scenario (SPEC §8.1) ends on its own, and is reported before its team
    # asks for more at the same time
    teams = [r.model_dump(by_alias=True) for r in m.responders]

    def doing(kind: str, place: str, free: float) -> str:
        """The team the facts say does it (``team_doing``, as the planner finds it), or else the
        crew outside the model (``OUTSIDE_TEAM``)."""
        j = team_doing(teams, kind, place, free, m.time)
        return OUTSIDE_TEAM if j is None else teams[j]["id"]

    for i, c in enumerate(m.casualties):
        if is_known_dead(sc.health[i]):
            continue
        if c.in_transit is not None:
            carried.add(c.id)
            arrival = c.in_transit.arrival
            push(arrival, "wip", "transport", c.id,
                 doing("paramedic", c.in_transit.hospital, arrival + m.durations.handover))
        if c.rescue_ends_at is not None and c.trapped:
            push(c.rescue_ends_at, "wip", "rescue", c.id, doing("fire", c.site, c.rescue_ends_at))
        if c.treatment_ends_at is not None:
            treating[c.id] = c.treatment_ends_at
            push(c.treatment_ends_at, "wip", "treat", c.id, doing("paramedic", c.site, c.treatment_ends_at))
    for r in m.responders:
        look(free_at[r.id], "free", r.id)
    for u in policy.observation_times(config.horizon, start):
        push(u, "observe")
    clock = start
    budget = config.iterations_per_minute

    def search(minutes: float) -> None:
        """The planner's search effort for ``minutes`` of simulated time."""
        if config.seconds_per_minute is None:
            planner.step(int(round(minutes * budget)))
            return
        deadline = time.perf_counter() + minutes * config.seconds_per_minute
        while time.perf_counter() < deadline:
            planner.step(REALTIME_STEP)

    def travel(a: int, b: int) -> float:
        return float(sc.travel[a, b])

    rejected = []

    def apply(delta):
        from .errors import DeltaError

        try:
            planner.apply(delta)
        except DeltaError as err:  # counted in the run's record: a healthy run has none
            rejected.append(f"{delta['type']}@{delta['time']}: {err}")

    drawn: dict[tuple[str, str], float] = {}  # actual minutes of issued rescues and treats

    def true_minutes(kind: str, cid: str) -> float:
        c = index[cid]
        return actual(float(P.rescue_dur[c] if kind == "rescue" else P.treat_dur[c]), DURATION, _TASK_KEY[kind], c)

    def revise(kind: str, cid: str, t: float, dur: float) -> None:
        """On issue, the crew's estimate gets better: halfway between plan and truth in spread."""
        g = stream(seed, REVISION, _TASK_KEY[kind], index[cid])
        estimate = dur * float(g.lognormal(-sigma * sigma / 8, sigma / 2)) if dur > 0 else 0.0
        apply({"type": "duration_revised", "time": t, "task": kind, "casualty": cid, "minutes": estimate})

    def told(rid: str, t: float, task) -> bool:
        """Whether ``task`` is still what the planner has ``rid`` do (asked again, it says the same)."""
        now = planner.next_task(rid, t) if t >= planner.time else task
        return now is not None and (now.kind, now.casualty, now.hospital) == (task.kind, task.casualty, task.hospital)

    while events:
        t, _, _, kind, payload = heapq.heappop(events)
        if kind in ("free", "arrive"):
            rid, tok, *rest = payload
            if tok != token[rid]:
                continue  # superseded: news woke the team earlier
            waiting.pop(rid, None)
        if t > clock:
            search(t - clock)
            clock = t
        if kind == "observe":
            states = [(cid, truth.advance(c, t)) for cid, c in index.items() if cid not in delivered]
            push(t + policy.delay, "deliver", t, states)
        elif kind == "deliver":
            obs_t, states = payload
            alive = [(cid, s) for cid, s in states if cid not in delivered]
            if alive:
                apply({"type": "health_observed", "time": t, "observed_at": obs_t,
                       "observations": [{"casualty": cid, "health": [float(i == s) for i in range(4)]}
                                        for cid, s in alive]})
            wake(t)
        elif kind == "free":
            task = planner.next_task(rid, t) if t >= planner.time else None
            if task is None:
                wait(t, "free", rid)
                continue
            if task.kind != "transport" and (task.kind, task.casualty) not in drawn:
                drawn[(task.kind, task.casualty)] = dur = true_minutes(task.kind, task.casualty)
                revise(task.kind, task.casualty, t, dur)
            look(t + travel(loc[rid], site_loc[site_of[task.casualty]]), "arrive", rid, task)
        elif kind == "arrive":
            task = rest[0]
            cid = task.casualty
            c = index[cid]
            site = site_of[cid]
            loc[rid] = site_loc[site]
            if not told(rid, t, task):  # withdrawn on the way or while waiting: on to the next
                look(t, "free", rid)
                continue
            if task.kind == "rescue":
                dur = drawn.pop(("rescue", cid), None) or true_minutes("rescue", cid)
                apply({"type": "task_started", "time": t, "responder": rid, "task": "rescue", "casualty": cid})
                push(t + dur, "rescued", rid, cid)
            elif task.kind == "treat":
                if cid in carried:  # another team's ambulance took it first: the treat is moot
                    look(t, "free", rid)
                    continue
                if cid not in rescued_at and m.casualties[c].trapped and not hart[rid]:
                    wait(t, "arrive", rid, task)  # for the rescue
                    continue
                dur = drawn.pop(("treat", cid), None) or true_minutes("treat", cid)
                apply({"type": "task_started", "time": t, "responder": rid, "task": "treat", "casualty": cid})
                treating[cid] = t + dur
                push(t + dur, "treated", rid, cid)
            else:
                if ((m.casualties[c].trapped and cid not in rescued_at) or treating.get(cid, -1) > t
                        or _treat_planned(planner, cid)):
                    # waits for the rescue or the treatment, as the plan has it (SPEC §6: a pickup
                    # waits for a treat task in the plan, whoever is to do it)
                    wait(t, "arrive", rid, task)
                    continue
                apply({"type": "task_started", "time": t, "responder": rid, "task": "transport",
                       "casualty": cid, "hospital": task.hospital})
                carried.add(cid)
                truth.move(c, t, env=AMBULANCE)
                arrival = t + actual(m.durations.load, LOAD, c) + travel(site_loc[site], hosp_index[task.hospital])
                push(arrival, "delivered", rid, cid, task.hospital)
        elif kind == "rescued":
            rid, cid = payload
            truth.move(index[cid], t, env=CCS)
            rescued_at[cid] = t
            apply({"type": "task_completed", "time": t, "responder": rid, "task": "rescue", "casualty": cid})
            look(t, "free", rid)
            wake(t)
        elif kind == "treated":
            rid, cid = payload
            truth.move(index[cid], t, treated=True)
            apply({"type": "task_completed", "time": t, "responder": rid, "task": "treat", "casualty": cid})
            look(t, "free", rid)
            wake(t)
        elif kind == "wip":
            task, cid, rid = payload
            c = index[cid]
            if task == "rescue":
                truth.move(c, t, env=CCS)
                rescued_at[cid] = t
            elif task == "treat":
                truth.move(c, t, treated=True)
            else:
                delivered[cid] = truth.advance(c, t) == 3
            apply({"type": "task_completed", "time": t, "responder": rid, "task": task, "casualty": cid})
            wake(t)
        elif kind == "delivered":
            rid, cid, hospital = payload
            delivered[cid] = truth.advance(index[cid], t) == 3
            apply({"type": "task_completed", "time": t, "responder": rid, "task": "transport", "casualty": cid})
            loc[rid] = hosp_index[hospital]
            look(t + actual(m.durations.handover, HANDOVER, index[cid]), "free", rid)
            wake(t)
    if end > clock:
        search(end - clock)
    # score: delivered count 1 if they arrived dead; the rest their p_dead under the final plan,
    # from their true state at the horizon
    rest = [(cid, truth.advance(c, end)) for cid, c in index.items() if cid not in delivered]
    if rest:
        apply({"type": "clock", "time": end})
        apply({"type": "health_observed", "time": max(end, planner.time), "observations":
               [{"casualty": cid, "health": [float(i == s) for i in range(4)]} for cid, s in rest]})
    plan, _objective = planner.best()
    obj, W, _arrays = evaluate_detail(planner.scenario, plan)
    final = planner.scenario
    rest_pdead = float(sum(W.pdead[final.casualty_index[cid]] for cid, _ in rest if cid in final.casualty_index))
    dead_on_arrival = int(sum(delivered.values()))
    planner.close()
    return {
        **asdict(policy), **asdict(config), "seed": int(seed),
        "score": dead_on_arrival + rest_pdead,
        "delivered": len(delivered), "delivered_dead": dead_on_arrival, "rest_expected": rest_pdead,
        "rejected_deltas": len(rejected), "first_rejected": rejected[0] if rejected else "",
        "runtime_s": time.perf_counter() - t_wall,
    }
