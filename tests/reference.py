"""A slow, obviously-correct reference of SPEC §6 (schedule) and §7 (objective).

Written from the SPEC, not from the kernels: plain Python loops, one casualty and one task at a
time, ``numpy.linalg.matrix_power`` for ``P_k(δ)``. It reads only the validated scenario
(``sc.model``), the travel matrix with its location indices (``sc.travel``, ``sc.site_loc``,
``sc.responder_loc``; hospital ``i`` is location ``i``), the initial health vectors (``sc.health``)
and the five chains (``sc.chains``, in the order trapped, ccs, ambulance, trapped_treated,
ccs_treated).

Times are computed with exactly the float operations the SPEC writes, in the same order, so that
ties (hospital admission order) come out bit for bit the same as in any faithful implementation:

- ``arrive = max(free + travel[loc, site], time)``: one rule beyond SPEC §6's letter (see
  ``kernels/schedule.py``): a planned task has not started, as far as the model knows, so it
  starts no earlier than the model's time
- rescue: ``end = start + rescue_minutes``
- treat: ``start = max(arrive, rescued_at)`` (only a non-HART team on a still-trapped casualty),
  ``end = start + treatment_minutes``
- transport: ``pickup = max(arrive, rescued_at if still trapped, treated_at if a treat is planned
  or under way)``; ``arrival = (pickup + load) + travel[site, hospital]``;
  ``end = arrival + handover``

Health walks the casualty's timeline from ``observed_at`` to its arrival; the segment durations
are ``boundary - previous boundary``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TRAPPED, CCS, AMBULANCE, TRAPPED_TREATED, CCS_TREATED = range(5)
ENV_NAMES = ("trapped", "ccs", "ambulance", "trapped_treated", "ccs_treated")
SHIFT_TOL = 1e-9
INF = math.inf


def step_matrix(P: np.ndarray, delta: float) -> np.ndarray:
    """``P(δ) = P^n · ((1 − f)·I + f·P)`` with ``n = floor(δ)``, ``f = δ − n`` (SPEC §3)."""
    if not (delta >= 0.0) or math.isinf(delta):
        raise ValueError(f"bad duration {delta}")
    n = math.floor(delta)
    f = delta - n
    return np.linalg.matrix_power(np.asarray(P, dtype=np.float64), n) @ ((1.0 - f) * np.eye(4) + f * P)


def propagate(h, P, delta: float) -> np.ndarray:
    """``h · P(δ)``."""
    return np.asarray(h, dtype=np.float64) @ step_matrix(P, delta)


@dataclass
class TaskTime:
    responder: str
    kind: str
    casualty: str
    hospital: str | None
    start: float
    end: float
    arrival: float | None = None


@dataclass
class RefResult:
    expected_fatalities: float | None
    overflow_fatalities: float | None
    casualty_minutes: float | None
    feasible: bool
    cycle: bool
    shift_violated: bool
    status: list[str]                         # "active", "dead" or "in_transit", per casualty
    p_dead: list[float | None]                # None for everything when there is a cycle
    arrival: list[float | None]               # None for known-dead casualties (and untimed ones)
    pickup: list[float | None]
    rescued_at: list[float | None]            # None: never trapped, or the rescue was not timed
    treated_at: list[float | None]            # -inf: treated before observation; inf: never
    segments: list[list[tuple[int, float]]]   # per casualty: (environment, duration) in order
    tasks: dict[str, list[TaskTime | None]] = field(default_factory=dict)  # None: not timed
    admissions: dict[int, list[int]] = field(default_factory=dict)  # hospital -> casualties in order


def is_known_dead(h) -> bool:
    return [float(x) for x in h] == [0.0, 0.0, 0.0, 1.0]


def evaluate(sc, plan, partial: bool = False) -> RefResult:
    """Schedule and score ``plan`` (a ``Plan``: responder id -> list of ``Task``) under ``sc``.

    With ``partial``, ``plan`` may be a plan under construction (``greedy``): a casualty that may
    be carried but has no transport in it yet is left out of ``F``, ``T`` and every hospital's
    admissions (its ``p_dead`` stays None), as ``kernels/objective.py`` scores such a plan.
    """
    m = sc.model
    time = float(m.time)
    load = float(m.durations.load)
    handover = float(m.durations.handover)
    site_number = {s.id: i for i, s in enumerate(m.sites)}
    hospital_number = {h.id: i for i, h in enumerate(m.hospitals)}
    cas_number = {c.id: i for i, c in enumerate(m.casualties)}
    n_cas = len(m.casualties)
    travel = sc.travel

    # --- casualties at the scenario time ---------------------------------------------------
    status, site, obs, trapped = [], [], [], []
    rescued_at: list[float | None] = []
    treated_at: list[float | None] = []
    rescue_dur, treat_dur = [], []
    for i, c in enumerate(m.casualties):
        h = sc.health[i]
        if is_known_dead(h):
            st = "dead"
        elif c.in_transit is not None:
            st = "in_transit"
        else:
            st = "active"
        status.append(st)
        site.append(int(sc.site_loc[site_number[c.site]]))
        obs.append(time if c.observed_at is None else float(c.observed_at))
        still_trapped = st == "active" and c.trapped
        trapped.append(still_trapped)
        rescued_at.append(float(c.rescue_ends_at) if still_trapped and c.rescue_ends_at is not None else None)
        if st != "active":
            treated_at.append(INF)
        elif c.treated:
            treated_at.append(-INF)
        elif c.treatment_ends_at is not None:
            treated_at.append(float(c.treatment_ends_at))
        else:
            treated_at.append(INF)  # becomes None below if a treat is planned (unknown until timed)
        rescue_dur.append(float(m.durations.rescue if c.rescue_minutes is None else c.rescue_minutes))
        treat_dur.append(float(m.durations.treatment if c.treatment_minutes is None else c.treatment_minutes))

    routes = {r.id: list(plan.routes.get(r.id, [])) for r in m.responders}
    treat_planned = [False] * n_cas
    treat_under_way = [m.casualties[i].treatment_ends_at is not None and status[i] == "active"
                       for i in range(n_cas)]
    for tasks in routes.values():
        for t in tasks:
            if t.kind == "treat":
                ci = cas_number[t.casualty]
                treat_planned[ci] = True
                treated_at[ci] = None

    # --- responders --------------------------------------------------------------------------
    free, loc, pos = {}, {}, {}
    for ri, r in enumerate(m.responders):
        avail = time if r.available_at is None else float(r.available_at)
        tasks = routes[r.id]
        free[r.id] = avail if tasks and tasks[0].pinned else max(avail, time)
        loc[r.id] = int(sc.responder_loc[ri])
        pos[r.id] = 0
    times: dict[str, list[TaskTime | None]] = {rid: [None] * len(ts) for rid, ts in routes.items()}
    pickup: list[float | None] = [None] * n_cas
    arrival: list[float | None] = [None] * n_cas
    dest: list[int | None] = [None] * n_cas

    # --- fixed point: sweep until no responder can advance -----------------------------------
    progress = True
    while progress:
        progress = False
        for r in m.responders:
            tasks = routes[r.id]
            while pos[r.id] < len(tasks):
                t = tasks[pos[r.id]]
                c = cas_number[t.casualty]
                s = site[c]
                arrive = max(free[r.id] + travel[loc[r.id], s], time)
                if t.kind == "rescue":
                    start = arrive
                    end = start + rescue_dur[c]
                    rescued_at[c] = end
                    new_loc = s
                    rec = TaskTime(r.id, "rescue", t.casualty, None, start, end)
                elif t.kind == "treat":
                    start = arrive
                    if trapped[c] and not r.hart:
                        if rescued_at[c] is None:
                            break  # waits for the rescue
                        start = max(arrive, rescued_at[c])
                    end = start + treat_dur[c]
                    treated_at[c] = end
                    new_loc = s
                    rec = TaskTime(r.id, "treat", t.casualty, None, start, end)
                elif t.kind == "transport":
                    if trapped[c] and rescued_at[c] is None:
                        break
                    if treat_planned[c] and treated_at[c] is None:
                        break
                    p = arrive
                    if trapped[c]:
                        p = max(p, rescued_at[c])
                    if treat_planned[c] or treat_under_way[c]:
                        p = max(p, treated_at[c])
                    hi = hospital_number[t.hospital]
                    a = (p + load) + travel[s, hi]
                    end = a + handover
                    pickup[c], arrival[c], dest[c] = p, a, hi
                    new_loc = hi
                    start = p
                    rec = TaskTime(r.id, "transport", t.casualty, t.hospital, start, end, a)
                else:
                    raise ValueError(f"unknown task kind {t.kind!r}")
                times[r.id][pos[r.id]] = rec
                free[r.id] = end
                loc[r.id] = new_loc
                pos[r.id] += 1
                progress = True

    cycle = any(pos[rid] < len(ts) for rid, ts in routes.items())
    shift_violated = False
    for r in m.responders:
        if r.shift_end is None:
            continue
        for rec in times[r.id]:
            if rec is not None and rec.end > r.shift_end + SHIFT_TOL:
                shift_violated = True

    result = RefResult(None, None, None, False, cycle, shift_violated, status,
                       [None] * n_cas, arrival, pickup,
                       [rescued_at[c] if trapped[c] else None for c in range(n_cas)],
                       treated_at, [[] for _ in range(n_cas)], times)
    if cycle:
        return result

    # --- health -------------------------------------------------------------------------------
    chains = sc.chains
    for c, cas in enumerate(m.casualties):
        if status[c] == "dead":
            result.p_dead[c] = 1.0
            continue
        if status[c] == "in_transit":
            arrival[c] = float(cas.in_transit.arrival)
            dest[c] = hospital_number[cas.in_transit.hospital]
            phases = [(AMBULANCE, AMBULANCE, arrival[c])]
            ta = INF
        elif partial and arrival[c] is None:
            continue  # not carried yet: no p_dead, no T, no bed
        else:
            phases = []
            if trapped[c]:
                phases.append((TRAPPED, TRAPPED_TREATED, rescued_at[c]))
            phases.append((CCS, CCS_TREATED, pickup[c]))
            phases.append((AMBULANCE, AMBULANCE, arrival[c]))
            ta = treated_at[c]
        segs = _segments(obs[c], phases, ta)
        result.segments[c] = segs
        h = np.array(sc.health[c], dtype=np.float64)
        for env, d in segs:
            h = propagate(h, chains[env], d)
        result.p_dead[c] = float(h[3])

    # --- hospitals: admission in arrival order, ties by casualty index -------------------------
    overflow = 0.0
    for hi, hosp in enumerate(m.hospitals):
        members = [c for c in range(n_cas) if status[c] != "dead" and dest[c] == hi]
        members.sort(key=lambda c: (arrival[c], c))
        result.admissions[hi] = members
        risk = m.hospital_overflow_risk if hosp.overflow_risk is None else hosp.overflow_risk
        for rank, c in enumerate(members):
            if rank >= hosp.capacity:
                overflow += (1.0 - result.p_dead[c]) * risk

    F = float(m.delivered_fatalities) + sum(p for p in result.p_dead if p is not None) + overflow
    T = sum(arrival[c] - obs[c] for c in range(n_cas) if status[c] != "dead" and arrival[c] is not None)
    result.expected_fatalities = F
    result.overflow_fatalities = overflow
    result.casualty_minutes = T
    result.feasible = not shift_violated
    return result


def _segments(o: float, phases, treated_at: float) -> list[tuple[int, float]]:
    """Maximal one-environment segments from ``o``.

    ``phases`` are ``(env, treated_env, phase_end)`` in time order; each phase covers the time up
    to its end not yet covered (a phase that ends before the walk's current time is empty), and
    switches to its treated variant from ``treated_at`` on.
    """
    out = []
    t = o
    for env, env_treated, end in phases:
        if not end > t:
            continue
        if treated_at <= t:
            out.append((env_treated, end - t))
        elif treated_at >= end:
            out.append((env, end - t))
        else:
            out.append((env, treated_at - t))
            out.append((env_treated, end - treated_at))
        t = end
    return out


def other_first_plans(sc, plan, rid: str):
    """The audit's counterfactuals (SPEC §8): every plan in which team ``rid`` (nothing of it
    pinned) starts with another task it may do, taken from wherever it is not pinned and moved
    to the front, or, if it is another team's first task not pinned, swapped with ``rid``'s
    first task (when that one fits the other team). Returns ``(task, rank, F)`` for each, with
    ``task`` the one it starts ``rid`` with and rank 0 feasible, 1 over a shift end, 2 a cycle of
    waits (``F`` nan)."""
    fire = {r.id: r.kind == "fire" for r in sc.model.responders}
    first = plan.routes[rid][0] if plan.routes[rid] else None
    candidates = []
    for q, tasks in plan.routes.items():
        for i, task in enumerate(tasks):
            if task.pinned or (q == rid and i == 0) or (task.kind == "rescue") != fire[rid]:
                continue
            routes = {k: list(v) for k, v in plan.routes.items()}
            del routes[q][i]
            routes[rid].insert(0, task)
            candidates.append((task, routes))
            own_first = q != rid and i == sum(1 for x in tasks if x.pinned)
            if own_first and first is not None and (first.kind == "rescue") == fire[q]:
                routes = {k: list(v) for k, v in plan.routes.items()}
                routes[rid][0], routes[q][i] = task, first
                candidates.append((task, routes))
    out = []
    for task, routes in candidates:
        res = evaluate(sc, type(plan)(routes, plan.scenario, plan.time))
        rank = 2 if res.cycle else (0 if res.feasible else 1)
        out.append((task, rank, math.nan if res.cycle else res.expected_fatalities))
    return out


def best_other_first(sc, plan, rid: str, besides=None):
    """The best of ``other_first_plans`` (those starting ``rid`` with a task other than
    ``besides``, if given) by SPEC §7's order: ``(rank, F)``, or ``None`` if there is none.
    Among plans whose ``F`` differ by at most 1e-9 the casualty minutes decide, so ``F`` may
    differ by that much from the one an implementation picks."""
    scored = [(rank, F) for task, rank, F in other_first_plans(sc, plan, rid)
              if besides is None or (task.kind, task.casualty) != (besides.kind, besides.casualty)]
    if not scored:
        return None
    rank = min(r for r, _ in scored)
    return rank, min(F for r, F in scored if r == rank)


def may_plan(sc, c: int, kind: int) -> bool:
    """Whether the model lets a task of ``kind`` (0 rescue, 1 treat, 2 transport) be planned for
    casualty ``c`` (SPEC §5, §8): nobody plans for the known dead or those in an ambulance; a
    rescue only for the trapped with no rescue under way, a treat only for the untreated with
    no treatment under way."""
    cas = sc.model.casualties[c]
    if is_known_dead(sc.health[c]) or cas.in_transit is not None:
        return False
    if kind == 0:
        return bool(cas.trapped) and cas.rescue_ends_at is None
    if kind == 1:
        return not cas.treated and cas.treatment_ends_at is None
    return True


def nearest_with_bed(sc, c: int, taken: list[int]) -> int:
    """The hospital nearest casualty ``c``'s site (by travel, then index) of those with fewer
    transports ``taken`` than beds, else the nearest of all."""
    site = sc.site_loc[sc.site_index[sc.model.casualties[c].site]]
    by_distance = sorted(range(len(sc.model.hospitals)), key=lambda i: (sc.travel[site, i], i))
    with_bed = [i for i in by_distance if taken[i] < sc.model.hospitals[i].capacity]
    return (with_bed or by_distance)[0]


def beds_in_ambulances(sc) -> list[int]:
    """Per hospital, one bed for each casualty in an ambulance to it; a known-dead one takes
    none (SPEC §8.1)."""
    taken = [0] * len(sc.model.hospitals)
    number = {h.id: i for i, h in enumerate(sc.model.hospitals)}
    for c, cas in enumerate(sc.model.casualties):
        if cas.in_transit is not None and not is_known_dead(sc.health[c]):
            taken[number[cas.in_transit.hospital]] += 1
    return taken


def kept_lists(sc, pinned: dict, rest: dict):
    """The lists a repair keeps (SPEC §8): per team, its pinned then its other entries
    ``(casualty, kind, hospital)`` (-1: gone) whose casualty is there, whose task the model
    lets be planned and is of the team's kind, and that no earlier entry placed; a kept
    transport keeps its hospital, or goes to ``nearest_with_bed`` if it is gone, counting a bed
    taken for each casualty in an ambulance (a known-dead one takes none, SPEC §8.1).

    Returns ``(lists, pins, hosp, taken)``: per team the kept ``(casualty, kind)`` pairs, how many
    of them are pinned, each casualty's hospital, and beds taken per hospital."""
    taken = beds_in_ambulances(sc)
    placed, lists, pins, hosp = set(), [], [], {}
    for resp in sc.model.responders:
        kept, n_pinned = [], 0
        for is_pin, entries in ((True, pinned.get(resp.id, [])), (False, rest.get(resp.id, []))):
            for c, kind, h in entries:
                if c < 0 or (c, kind) in placed or (kind == 0) != (resp.kind == "fire") or not may_plan(sc, c, kind):
                    continue
                placed.add((c, kind))
                kept.append((c, kind))
                n_pinned += is_pin
                if kind == 2:
                    hosp[c] = h if h >= 0 else nearest_with_bed(sc, c, taken)
                    taken[hosp[c]] += 1
        lists.append(kept)
        pins.append(n_pinned)
    return lists, pins, hosp, taken


# --- descent's follow-up moves (kernels/followups.py) ------------------------------------------

#: Move kinds, as ``kernels/moves.py`` encodes a move ``(kind, a, b, c)``
RELOCATE, SWAP, HOSPITAL, INSERT_TREAT, REMOVE_TREAT, TWO_OPT, INSERT_TASK, HOSPITAL_SWAP = range(8)
TASK_NAMES = ("rescue", "treat", "transport")  # task code = 3·casualty + kind
TIE = 1e-9


def plan_of(sc, lists, hosp, pins):
    """The ``Plan`` of per-team lists of task codes, each casualty's hospital index and each team's
    number of pinned tasks."""
    from engine.plan import Plan, Task

    cas, hospitals = sc.model.casualties, sc.model.hospitals
    routes = {}
    for r, resp in enumerate(sc.model.responders):
        routes[resp.id] = [Task(TASK_NAMES[code % 3], cas[code // 3].id,
                                hospitals[hosp[code // 3]].id if code % 3 == 2 else None, i < pins[r])
                           for i, code in enumerate(lists[r])]
    return Plan(routes, sc.model.name, float(sc.model.time))


def objective(res: RefResult) -> tuple[int, float, float]:
    """``(rank, F, T)``: rank 0 feasible, 1 over a shift end, 2 a cycle of waits (F, T nan)."""
    if res.cycle:
        return 2, math.nan, math.nan
    return (0 if res.feasible else 1), res.expected_fatalities, res.casualty_minutes


def better(x, y) -> bool:
    """SPEC §7: is objective ``x`` better than ``y`` (rank, then F beyond 1e-9, then T)?"""
    if x[0] != y[0]:
        return x[0] < y[0]
    if x[0] == 2:
        return False
    if abs(x[1] - y[1]) > TIE:
        return x[1] < y[1]
    return x[2] < y[2] - TIE


def best_of(scores) -> int | None:
    """SPEC §7's best of a set: the index of the best of ``scores`` (``objective`` triples).

    The best rank; among those, the ones with ``F <= F_min + 1e-9``; among those, the first
    with ``T <= T_min + 1e-9`` (their smallest ``T``; casualty minutes equal to rounding tie,
    as ``better`` has them). Plans in a wait cycle have no ``F``: the first of them, if all
    are. ``None`` for no scores.
    """
    if not scores:
        return None
    rank = min(x[0] for x in scores)
    ranked = [i for i, x in enumerate(scores) if x[0] == rank]
    if rank == 2:
        return ranked[0]
    f_min = min(scores[i][1] for i in ranked)
    near = [i for i in ranked if scores[i][1] - f_min <= TIE]
    t_min = min(scores[i][2] for i in near)
    return next(i for i in near if scores[i][2] - t_min <= TIE)


def apply_move(lists, hosp, move, at):
    """New ``(lists, hosp)`` after ``move = (kind, a, b, c)`` of ``kernels/moves.py``; ``at(slot)``
    gives a slot's ``(list, index)``. RELOCATE: the task at ``a`` to list ``b`` at index ``c`` of
    the list without it; SWAP: the tasks at ``a`` and ``b`` exchange places; HOSPITAL: casualty
    ``a`` to hospital ``b``; INSERT_TREAT: casualty ``a``'s treat into list ``b`` at ``c``;
    REMOVE_TREAT: the treat at ``a`` goes; TWO_OPT: slots ``a..b`` of one list reversed;
    HOSPITAL_SWAP: casualties ``a`` and ``b`` exchange hospitals."""
    kind, a, b, c = (int(x) for x in move)
    lists, hosp = [list(codes) for codes in lists], list(hosp)
    if kind == RELOCATE:
        r, i = at(a)
        lists[b].insert(c, lists[r].pop(i))
    elif kind == SWAP:
        (r, i), (q, j) = at(a), at(b)
        lists[r][i], lists[q][j] = lists[q][j], lists[r][i]
    elif kind == HOSPITAL:
        hosp[a] = b
    elif kind == INSERT_TREAT:
        lists[b].insert(c, 3 * a + 1)
    elif kind == REMOVE_TREAT:
        r, i = at(a)
        assert lists[r][i] % 3 == 1
        del lists[r][i]
    elif kind == TWO_OPT:
        (r, i), (q, j) = at(a), at(b)
        assert r == q and i < j
        lists[r][i:j + 1] = lists[r][i:j + 1][::-1]
    elif kind == HOSPITAL_SWAP:
        hosp[a], hosp[b] = hosp[b], hosp[a]
    else:
        raise ValueError(f"move kind {kind}")
    return lists, hosp


def followups(sc, lists0, hosp0, pins, first, cand, gain, limit, floor=math.nan):
    """Descent's follow-up moves (``kernels/followups.py::apply_followups``), from the rule it
    states, with a full ``evaluate`` of the plan after every candidate move.

    ``lists0`` (per team, task codes), ``hosp0`` (per casualty, hospital index) and ``pins`` are
    the swept plan; ``first`` and the rows ``(kind, a, b, c)`` of ``cand`` are its moves, ``a``
    and ``b`` flat slots of it. ``first`` is applied, then each candidate in turn, until
    ``limit`` have been applied or the plan is in a wait cycle:

    - skipped (``"list"``) if a list it reads was changed by ``first`` or a move applied since.
      It reads: RELOCATE the lists of ``a`` and ``b``; SWAP those of ``a`` and ``b``; REMOVE_TREAT
      and TWO_OPT that of ``a``; INSERT_TREAT list ``b`` and the list that held casualty ``a``'s
      transport in the swept plan; hospital moves none;
    - skipped (``"treat"``) if it inserts a treat for a casualty whose treat ``first`` or a move
      applied since inserted or removed;
    - else it is the same tasks of the same lists (same list, same index): it is applied to the
      plan as it is now and the result evaluated; kept if ``F_now - F_new >= gain[t] - 1e-9``
      (else ``"gain"``), the new plan is ``better`` (else ``"worse"``) and, unless it is of a
      better feasibility rank, ``F_new <= floor + 1e-9`` (else ``"floor"``). A NaN gain (descent
      swept a plan in a wait cycle, which has no F, so the sweep measured no gain) is never met;
      a NaN floor bars nothing. ``floor`` becomes each applied move's ``F`` if lower, or if the
      move changed the rank.

    Returns ``(lists, hosp, applied, outcome, scored, floor)``: the final plan, the applied
    moves in the slots of the plan each was applied to, each candidate's outcome
    (``"applied"``, the reasons above, or ``"stopped"``), how many candidates were evaluated,
    and the floor at the end.
    """
    at0 = [(r, i) for r, codes in enumerate(lists0) for i in range(len(codes))]  # slot -> (list, index)

    def reads(kind, a, b):
        if kind == RELOCATE:
            return {at0[a][0], b}
        if kind == SWAP:
            return {at0[a][0], at0[b][0]}
        if kind in (REMOVE_TREAT, TWO_OPT):
            return {at0[a][0]}
        if kind == INSERT_TREAT:
            return {b} | {r for r, codes in enumerate(lists0) if 3 * a + 2 in codes}
        return set()

    def treated(lists):
        return {code // 3 for codes in lists for code in codes if code % 3 == 1}

    def slot(lists, r, i):  # the flat slot of index i of list r
        return sum(len(codes) for codes in lists[:r]) + i

    lists, hosp = apply_move(lists0, hosp0, first, at0.__getitem__)
    changed = {r for r in range(len(lists)) if lists[r] != lists0[r]}
    treat_changed = treated(lists) ^ treated(lists0)
    now = objective(evaluate(sc, plan_of(sc, lists, hosp, pins)))
    applied, outcome, scored = [], [], 0
    for t, move in enumerate(cand):
        kind, a, b, c = (int(x) for x in move)
        if len(applied) >= limit or now[0] == 2:
            outcome += ["stopped"] * (len(cand) - t)
            break
        if reads(kind, a, b) & changed:
            outcome.append("list")
            continue
        if kind == INSERT_TREAT and a in treat_changed:
            outcome.append("treat")
            continue
        new_lists, new_hosp = apply_move(lists, hosp, move, at0.__getitem__)
        new = objective(evaluate(sc, plan_of(sc, new_lists, new_hosp, pins)))
        scored += 1
        if not now[1] - new[1] >= gain[t] - TIE:
            outcome.append("gain")
            continue
        if not better(new, now):
            outcome.append("worse")
            continue
        if new[0] == now[0] and new[1] > floor + TIE:
            outcome.append("floor")
            continue
        if new[0] != now[0] or not floor <= new[1]:
            floor = new[1]
        a1 = slot(lists, *at0[a]) if kind in (RELOCATE, SWAP, REMOVE_TREAT, TWO_OPT) else a
        b1 = slot(lists, *at0[b]) if kind in (SWAP, TWO_OPT) else b
        applied.append((kind, a1, b1, c))
        outcome.append("applied")
        changed |= {r for r in range(len(lists)) if new_lists[r] != lists[r]}
        treat_changed |= treated(new_lists) ^ treated(lists)
        lists, hosp, now = new_lists, new_hosp, new
    return lists, hosp, applied, outcome, scored, floor


# --- greedy cheapest insertion (engine/construct.py) ---------------------------------------------

def greedy(sc, pinned=None, hosp_pinned=None):
    """Cheapest insertion (``engine.construct.greedy``), from the rule its docstring states.

    It exists because the engine scores every insertion position with compiled kernels (delta
    evaluation of ``INSERT_TASK`` moves, in parallel sweeps or ``score_serial``) and picks one
    with ``kernels.search.pick_best``, and nothing else checks that the plan it builds is the
    one the rule describes. This builds every candidate plan in full, scores it with
    ``evaluate`` and picks by ``better``, one casualty at a time, in plain Python.

    Parameters
    ----------
    sc : Scenario
        A loaded scenario.
    pinned : dict[int, list[int]], optional
        Team index -> its issued task codes (``3·casualty + kind``), a prefix of its list.
    hosp_pinned : dict[int, int], optional
        Casualty index -> the hospital of its pinned transport (one for each pinned transport).

    Returns
    -------
    lists : list[list[int]]
        Per team, its task codes.
    hosp : list[int]
        Per casualty, its hospital index (-1: no transport planned).

    Notes
    -----
    The rule:

    1. Each team's list starts with its pinned tasks; a fire team's then go on with the rescues
       the dispatcher's rule gives it. These rescues are taken from the lists of
       ``engine.construct.rule(sc, pinned, hosp_pinned)`` (its transports dropped): ``rule`` is
       checked against a plain statement of itself in ``tests/engine/test_construct.py``.
    2. Beds already taken: one at its hospital for each casualty in an ambulance (a known-dead
       one takes none: SPEC §8.1, and §7's admissions) and one for each pinned transport.
    3. Casualties most severe first (``p(immediate) + p(urgent)``, then ``p(immediate)``, then
       index), each that may be carried (not known dead, not in transit) and whose transport is
       not pinned: its hospital is ``nearest_with_bed`` (which then has one bed fewer); its
       transport is put into each paramedic team's list (teams in index order) at each index
       from the end of the pinned prefix to the end of the list, in that order; each candidate
       plan is scored by ``evaluate(..., partial=True)`` (casualties not carried yet left out);
       the one kept is SPEC §7's best of the set (``best_of``: the best rank, then among
       those with ``F`` within 1e-9 of the smallest the first with ``T`` within 1e-9 of theirs).
    """
    from engine.construct import rule

    m = sc.model
    n_resp, n_cas = len(m.responders), len(m.casualties)
    pinned = {r: [int(x) for x in codes] for r, codes in (pinned or {}).items()}
    hosp_pinned = dict(hosp_pinned or {})
    pins = [len(pinned.get(r, [])) for r in range(n_resp)]

    # 1. pinned prefixes, then the rule's rescues
    base = rule(sc, pinned, hosp_pinned)
    lists = []
    for r in range(n_resp):
        ruled = [int(x) for x in base.order[base.starts[r]:base.starts[r + 1]]]
        assert ruled[:pins[r]] == pinned.get(r, []), "rule keeps the pinned prefix"
        lists.append(ruled[:pins[r]] + [code for code in ruled[pins[r]:] if code % 3 == 0])

    # 2. beds already taken
    hosp = [-1] * n_cas
    taken = beds_in_ambulances(sc)
    carried = set()
    for codes in pinned.values():
        for code in codes:
            if code % 3 == 2:
                c = code // 3
                hosp[c] = hosp_pinned[c]
                taken[hosp[c]] += 1
                carried.add(c)

    # 3. transports, most severe first, each at its cheapest place
    h0 = [[float(x) for x in sc.health[c]] for c in range(n_cas)]
    severe = sorted(range(n_cas), key=lambda c: (-(h0[c][1] + h0[c][2]), -h0[c][2], c))
    medics = [r for r, resp in enumerate(m.responders) if resp.kind != "fire"]
    for c in severe:
        if not may_plan(sc, c, 2) or c in carried:
            continue
        hosp[c] = nearest_with_bed(sc, c, taken)
        taken[hosp[c]] += 1
        cands, scores = [], []
        for r in medics:
            for i in range(pins[r], len(lists[r]) + 1):
                cand = [list(codes) for codes in lists]
                cand[r].insert(i, 3 * c + 2)
                cands.append(cand)
                scores.append(objective(evaluate(sc, plan_of(sc, cand, hosp, pins), partial=True)))
        assert cands, "no paramedic team to carry the casualty"
        lists = cands[best_of(scores)]
    return lists, hosp
