"""Online updates (SPEC §8): one model per delta type, and how each changes the incident model.

A delta is checked in two steps: its own fields (pydantic, here), then the model it produces
(``load_scenario`` on the changed scenario file). Either failing rejects the delta whole; since
``apply`` works on a copy, the planner's model is untouched by a rejected delta.

Casualty state is tracked as SPEC §7 needs it: when a casualty changes environment (rescued,
treated, picked up, delivered), its health is first carried forward to that moment with the
chain of the environment it was in, and ``observed_at`` moves there (``engine.observations``
keeps what a report that arrives after such a change needs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, StrictBool, TypeAdapter, ValidationError

from .checks import check_shift
from .derive import earliest_end
from .errors import DeltaError, Problem
from .health import ENVIRONMENTS, is_known_dead
from .model import (GEO_SPEED_MAX, Beds, Casualty, Durations, Health, Id, Minutes, NodeId, Number, Responder, Site,
                    Strict, Time)
from .observations import (DELIVERED, bed_reports, carried, carried_again, deliveries_recorded, observe,
                           set_bed_reports)
from .scenario import Scenario, health_vector, pydantic_problems

TOL = 1e-9


class _Delta(Strict):
    time: Time


class Observation(Strict):
    casualty: Id
    health: Health


class HealthObserved(_Delta):
    """One casualty's health (``casualty``, ``health``), or many at once (``observations``)."""

    type: Literal["health_observed"]
    casualty: Id | None = None
    health: Health | None = None
    observations: list[Observation] | None = None
    observed_at: Time | None = None  # when it was observed, if it reaches us late


class CasualtiesAdded(_Delta):
    type: Literal["casualties_added"]
    sites: list[Site] = []
    casualties: list[Casualty] = []


class TaskStarted(_Delta):
    """A team started a task: at ``time``, or at ``started_at`` if the report reaches us late."""

    type: Literal["task_started"]
    responder: Id
    task: Literal["rescue", "treat", "transport"]
    casualty: Id
    hospital: Id | None = None
    started_at: Time | None = None


class TaskCompleted(_Delta):
    """A team finished a task (a transport: reached the hospital): at ``time``, or at
    ``completed_at`` if the report reaches us late."""

    type: Literal["task_completed"]
    responder: Id
    task: Literal["rescue", "treat", "transport"]
    casualty: Id
    completed_at: Time | None = None


class DurationRevised(_Delta):
    type: Literal["duration_revised"]
    task: Literal["rescue", "treat"]
    casualty: Id
    minutes: Minutes


class ResponderAdded(_Delta):
    type: Literal["responder_added"]
    responder: Responder


class ResponderUnavailable(_Delta):
    type: Literal["responder_unavailable"]
    responder: Id


class ClosedEdge(Strict):
    """A closed road: both directions of the edges between ``from`` and ``to``, as a control room
    reports one; with ``oneway``, only the way from ``from`` to ``to``."""

    from_: NodeId = Field(alias="from")
    to: NodeId
    oneway: StrictBool = False


class TravelChanged(_Delta):
    type: Literal["travel_changed"]
    factor: Annotated[Number, Field(gt=0, le=1e3)] | None = None
    closed_edge: ClosedEdge | None = None


class HospitalCapacity(_Delta):
    type: Literal["hospital_capacity"]
    hospital: Id
    capacity: Beds


class Clock(_Delta):
    type: Literal["clock"]


Delta = Annotated[
    Union[HealthObserved, CasualtiesAdded, TaskStarted, TaskCompleted, DurationRevised, ResponderAdded,
          ResponderUnavailable, TravelChanged, HospitalCapacity, Clock],
    Field(discriminator="type"),
]
_ADAPTER = TypeAdapter(Delta)
DELTA_TYPES = ("health_observed", "casualties_added", "task_started", "task_completed", "duration_revised",
               "responder_added", "responder_unavailable", "travel_changed", "hospital_capacity", "clock")


def parse_delta(data) -> _Delta:
    """A delta from its JSON dict (or a delta object); raises ``DeltaError`` naming each problem."""
    if isinstance(data, _Delta):
        return data
    if not isinstance(data, dict):
        raise DeltaError(Problem("delta", "a delta is a JSON object with \"type\" and \"time\""))
    if data.get("type") not in DELTA_TYPES:
        raise DeltaError(Problem("delta.type", f"expected one of {', '.join(DELTA_TYPES)}, got {data.get('type')!r}"))
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        problems = pydantic_problems(err)
        # the union tag is the delta type: drop it from paths, which then name the delta's own keys
        raise DeltaError([Problem("delta." + p.path.split(".", 1)[-1] if "." in p.path else "delta." + p.path,
                                  p.message) for p in problems]) from None


# --- helpers over the scenario dict --------------------------------------------------------

def _find_index(items: list[dict], key: str, value: str, what: str, path: str) -> int:
    for i, item in enumerate(items):
        if item.get(key) == value:
            return i
    raise DeltaError(Problem(path, f"unknown {what} '{value}'"))


def _find(items: list[dict], key: str, value: str, what: str, path: str) -> dict:
    return items[_find_index(items, key, value, what, path)]


def _own(items: list[dict], key: str, value: str, what: str, path: str) -> dict:
    """The record of ``items`` whose ``key`` is ``value``, replaced in ``items`` (the delta's own
    list) by a copy the delta may edit: the old record may be shared with the previous model."""
    i = _find_index(items, key, value, what, path)
    row = items[i] = dict(items[i])
    if isinstance(row.get("in_transit"), dict):
        row["in_transit"] = dict(row["in_transit"])
    return row


def _environment(cas: dict, t: float) -> int:
    """Index of the chain a casualty is in just before ``t``."""
    if cas.get("in_transit"):
        return ENVIRONMENTS.index("ambulance")
    treated = cas.get("treated", False) or (cas.get("treatment_ends_at") is not None and cas["treatment_ends_at"] < t)
    base = "trapped" if cas.get("trapped", False) else "ccs"
    return ENVIRONMENTS.index(base + ("_treated" if treated else ""))


def roll_forward(sc: Scenario, cas: dict, t: float, seen: dict | None = None) -> None:
    """Carry a casualty's health to time ``t`` in its present environment; ``observed_at = t``.

    ``seen`` (``engine.observations``) gets the stretch appended, so that a late observation made
    during it can be carried over it again in the right chain.
    """
    i = sc.casualty_index.get(cas["id"])
    h = sc.health[i] if i is not None else health_vector(_health_model(cas))
    o = cas.get("observed_at", sc.model.time)
    if o is None:
        o = sc.model.time
    if is_known_dead(h) or t <= o:
        return
    # apply_delta moves the clock first, which pushes any treatment still under way to end no
    # earlier than t: the whole stretch from o to t is one environment
    env = _environment(cas, t)
    cas["health"] = carried(sc, h, ((t, env),), o)
    cas["observed_at"] = float(t)
    if seen is not None:
        source, stretches, h_source = seen.get(cas["id"], (o, (), None))
        if not stretches:
            h_source = tuple(float(x) for x in h)
        seen[cas["id"]] = (source, stretches + ((float(t), env),), h_source)


def _env_map(**changes: str) -> tuple:
    """Each environment's index after a change of environment (``changes``: by name)."""
    return tuple(ENVIRONMENTS.index(changes.get(e, e)) for e in ENVIRONMENTS)


RESCUED = _env_map(trapped="ccs", trapped_treated="ccs_treated")
TREATED = _env_map(trapped="trapped_treated", ccs="ccs_treated")
PICKED_UP = _env_map(trapped="ambulance", ccs="ambulance", trapped_treated="ambulance", ccs_treated="ambulance")


def _changes_at(sc: Scenario, cas: dict, t: float, seen: dict, after: tuple) -> None:
    """Carry the casualty's health to ``t``, where its environment changes (to ``after[env]``):
    forward in its present one (``roll_forward``), or, if a change reported before this one but
    made after it carried the health past ``t`` already, again from its last observation with
    the environments from ``t`` on changed (``carried_again``)."""
    o = cas.get("observed_at")
    if t >= (sc.model.time if o is None else o) - TOL:
        roll_forward(sc, cas, t, seen)
        return
    h = carried_again(sc, seen, cas["id"], t, after)
    if h is not None:
        cas["health"] = h


def _health_model(cas: dict):
    return TypeAdapter(Health).validate_python(cas["health"])


def _travel(sc: Scenario, site: str, hospital: str) -> float:
    return float(sc.travel[sc.site_loc[sc.site_index[site]], sc.hospital_index[hospital]])


def _clamp_work_in_progress(m: dict, t: float, handover: float, started: dict) -> None:
    """Work estimated to end before ``t`` but not reported done is taken to end at ``t`` at the
    earliest, and the team doing it to be free then, as ``duration_revised`` moves it: else its
    next task, if issued, would be planned before ``t``, while it is still at this work. A
    clamped record is replaced by a changed copy (``m``'s lists are its own, their records
    perhaps shared with the model it was copied from)."""
    rows, teams = m["casualties"], m["responders"]
    for i, cas in enumerate(rows):
        new = None
        for key, task in (("rescue_ends_at", "rescue"), ("treatment_ends_at", "treat")):
            if cas.get(key) is not None and cas[key] < t:
                new = new or dict(cas)
                new[key] = t
                _free_at(teams, task, cas["id"], cas["site"], cas[key], t, started)
        if cas.get("in_transit") and cas["in_transit"]["arrival"] < t:
            new = new or dict(cas)
            new["in_transit"] = dict(cas["in_transit"], arrival=t)
            hospital, arrival = cas["in_transit"]["hospital"], cas["in_transit"]["arrival"]
            _free_at(teams, "transport", cas["id"], hospital, arrival + handover, t + handover, started)
        if new is not None:
            rows[i] = new


def _free_at(teams: list[dict], task: str, cid: str, place: str, free: float, later: float, started: dict) -> None:
    """The team doing ``cid``'s ``task`` at ``place`` until ``free`` is free at ``later`` instead
    (a changed copy of its record): the one reported starting it, while its facts still say it is
    at this work, or (none reported: a restored model) the one its facts name; past its shift's
    end if the work runs over (``checks.check_shift``)."""
    rid = started.get((task, cid), (None, None))[1]
    j = _at_work(teams, task, place, free, rid, rid is None or _doing(started, rid, task, cid))
    if j is not None:
        teams[j] = dict(teams[j], available_at=later)


def _at_work(teams: list[dict], task: str, place: str, free: float, rid: str | None,
             latest: bool = True) -> int | None:
    """The index of the team at ``task`` at ``place`` until ``free``: ``rid`` (who the planner
    saw start it) if this is the ``latest`` work it was reported starting and its facts still
    say so, else, if no one was seen (a model loaded with the work under way, e.g. a restored
    snapshot), the first team they name (``team_doing``)."""
    if rid is not None:
        j = next((j for j, r in enumerate(teams) if r["id"] == rid), None)
        return j if j is not None and latest and _still_at(teams[j], place, free) else None
    return team_doing(teams, "fire" if task == "rescue" else "paramedic", place, free)


def _doing(started: dict, rid: str, task: str, cid: str) -> bool:
    """Whether ``cid``'s ``task`` is the work team ``rid`` was last reported starting (by when
    it started; true if none is known). A team that has set off for other work is not moved back
    by a late report of the work before, nor by that work running over, though the facts of the
    two may look alike (two rides to one hospital, both held at the clock)."""
    latest = started.get(("latest", rid))
    return latest is None or latest[1] == (task, cid)


def advance(m: dict, t: float, earliest_end: float = -math.inf, started: dict | None = None) -> None:
    """Move the model's clock to ``t`` (never backwards). No work in progress ends before
    ``earliest_end`` (``derive.earliest_end``): up to then, none needs clamping. ``started``:
    who was reported starting each task under way (``apply_delta``)."""
    if t > m.get("time", 0.0):
        m["time"] = float(t)
        if t > earliest_end:
            handover = (m.get("durations") or {}).get("handover", Durations().handover)
            _clamp_work_in_progress(m, t, handover, started or {})


# --- applying a delta -------------------------------------------------------------------------

def apply_delta(sc: Scenario, m: dict, d: _Delta, duration_of, started=None, seen=None) -> dict:
    """The scenario dict after delta ``d`` (``m`` is not modified).

    ``duration_of(kind, casualty_id)`` gives the current estimate of a task's minutes;
    ``started[(kind, casualty_id)] = (time, responder)`` for the tasks under way; ``seen``, the
    casualties' observation histories (``observe``), is updated in place: the caller passes a
    copy and keeps it only if the delta is accepted.

    The records a delta changes are replaced by changed copies, never edited in place; all
    others are shared with ``m``, so that ``engine.derive`` finds what changed by identity (a
    full ``copy_model`` was a tenth of a health observation's time).
    """
    started = started or {}
    seen = {} if seen is None else seen
    now = m.get("time", 0.0)
    if d.time < now - TOL:
        raise DeltaError(Problem("delta.time", f"{d.time} is before the model's time {now}"))
    kind = d.type
    m = dict(m, casualties=list(m["casualties"]), hospitals=list(m["hospitals"]), responders=list(m["responders"]))
    advance(m, d.time, earliest_end(sc), started)
    t = d.time
    if kind == "health_observed":
        obs = t if d.observed_at is None else d.observed_at
        if obs > t + TOL:
            raise DeltaError(Problem("delta.observed_at", f"{obs} is after the delta's time {t}"))
        dumped = d.model_dump(mode="json")
        if (d.casualty is None) == (d.observations is None) or (d.casualty is None) != (d.health is None):
            raise DeltaError(Problem("delta", "give 'casualty' and 'health', or 'observations'"))
        items = [(d.casualty, dumped["health"], "delta.casualty")] if d.casualty is not None else \
            [(o["casualty"], o["health"], f"delta.observations[{i}].casualty")
             for i, o in enumerate(dumped["observations"])]
        index = {c["id"]: i for i, c in enumerate(m["casualties"])}
        for cid, health, path in items:
            if cid not in index and seen.get(cid, (None,))[0] == DELIVERED:
                continue  # a report from before the delivery, reaching us after it: the hospital has them
            if cid not in index:
                raise DeltaError(Problem(path, f"unknown casualty '{cid}'"))
            i = index[cid]
            row = observe(sc, m["casualties"][i], health, obs, seen)
            if row is not None:
                m["casualties"][i] = row
    elif kind == "casualties_added":
        m["sites"] = m["sites"] + [s.model_dump(mode="json", exclude_none=True) for s in d.sites]
        for i, c in enumerate(d.casualties):
            if seen.get(c.id, (None,))[0] == DELIVERED:  # its reports still to come must not be taken as the new one's
                raise DeltaError(Problem(f"delta.casualties[{i}].id",
                                         f"casualty '{c.id}' was delivered to hospital already; give an id of its own"))
            row = c.model_dump(mode="json", by_alias=True, exclude_none=True)
            row.setdefault("observed_at", float(t))
            m["casualties"].append(row)
    elif kind == "duration_revised":
        rows = m["casualties"]
        i = _find_index(rows, "id", d.casualty, "casualty", "delta.casualty")
        cas = rows[i] = dict(rows[i])
        key, running = ("rescue_minutes", "rescue_ends_at") if d.task == "rescue" else \
            ("treatment_minutes", "treatment_ends_at")
        if cas.get(running) is not None:
            began, rid = started.get((d.task, d.casualty), (cas[running] - duration_of(d.task, d.casualty), None))
            teams = m["responders"]
            j = _at_work(teams, d.task, cas["site"], cas[running], rid,
                         rid is None or _doing(started, rid, d.task, d.casualty))
            cas[running] = max(t, began + d.minutes)
            if j is not None:  # the team doing it is free when it ends
                teams[j] = dict(teams[j], available_at=cas[running])
        cas[key] = float(d.minutes)
    elif kind == "responder_added":
        row = d.responder.model_dump(mode="json", exclude_none=True)
        row.setdefault("available_at", float(t))  # SPEC §4's default
        problems: list[Problem] = []
        check_shift(len(m["responders"]), d.responder.model_copy(update={"available_at": row["available_at"]}),
                    problems)
        if problems:  # a team joining with its shift over: most likely a slip of the dispatcher's
            raise DeltaError([Problem("delta.responder.shift_end", p.message) for p in problems])
        m["responders"].append(row)
    elif kind == "responder_unavailable":
        j = _find_index(m["responders"], "id", d.responder, "responder", "delta.responder")
        _abandon_work(m, j, started)
        m["responders"] = [r for r in m["responders"] if r["id"] != d.responder]
    elif kind == "hospital_capacity":
        rows = m["hospitals"]
        i = _find_index(rows, "id", d.hospital, "hospital", "delta.hospital")
        report = (t, rows[i]["capacity"], deliveries_recorded(seen))
        set_bed_reports(seen, d.hospital, bed_reports(seen, d.hospital) + (report,))
        rows[i] = dict(rows[i], capacity=d.capacity)
    elif kind == "travel_changed":
        _travel_changed(m, d, sc.base_dir)
    elif kind == "task_started":
        _task_started(sc, m, d, duration_of, started, seen)
    elif kind == "task_completed":
        _task_completed(sc, m, d, started, seen)
    return m


def _clone(x):
    """A copy of a JSON value (dicts, lists, scalars): several times faster than ``deepcopy``."""
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clone(v) for v in x]
    return x


def copy_model(m: dict) -> dict:
    """A copy of the scenario dict that a delta may change freely.

    Deltas set fields of casualties, responders, hospitals and sites, and of a casualty's
    ``in_transit``; they replace anything else inside a record (``health``, a ``start`` point)
    whole and never edit it in place. So those records and ``in_transit`` are copied, the rest
    shared; the network (possibly thousands of inline edges) is copied only by a
    ``travel_changed`` delta.
    """
    out = dict(m)
    for key in ("casualties", "responders", "hospitals", "sites"):
        if isinstance(m.get(key), list):
            out[key] = [dict(row) if isinstance(row, dict) else row for row in m[key]]
    for row in out.get("casualties") or ():
        if isinstance(row, dict) and isinstance(row.get("in_transit"), dict):
            row["in_transit"] = dict(row["in_transit"])  # the one nested record edited in place
    return out


def _travel_changed(m: dict, d: TravelChanged, base_dir) -> None:
    m["network"] = _clone(m["network"])
    net = m["network"]
    if (d.factor is None) == (d.closed_edge is None):
        raise DeltaError(Problem("delta", "give exactly one of 'factor' or 'closed_edge'"))
    if net["kind"] == "graph" and net.get("edges") is None:
        # edges given as a file are read in, once: the model holds them inline from then on
        # (and so does a snapshot), since a change to them is no longer the file's
        from .network import file_rows

        full = (base_dir or Path.cwd()) / net["edges_file"]
        try:
            net["edges"] = file_rows(full)
        except Exception as exc:  # pyarrow raises many types for a missing or broken file
            raise DeltaError(Problem("network.edges_file", f"cannot read {full}: {str(exc).splitlines()[0]}")) from None
        del net["edges_file"]
    if d.factor is not None:  # travel takes `factor` times as long
        if net["kind"] == "geo":
            speed = net["speed_kmh"] / d.factor
            if speed > GEO_SPEED_MAX:  # the factor's fault, so named as it, not as the network
                raise DeltaError(Problem("delta.factor", f"makes the network's speed {speed:g} km/h, "
                                                         f"above the {GEO_SPEED_MAX:g} km/h a geo network allows"))
            net["speed_kmh"] = speed
        else:
            if net.get("speed_kmh"):
                net["speed_kmh"] = net["speed_kmh"] / d.factor
            for e in net["edges"]:
                if e.get("minutes") is not None:
                    e["minutes"] = e["minutes"] * d.factor
                elif e.get("speed_kmh") is not None:
                    e["speed_kmh"] = e["speed_kmh"] / d.factor
        return
    if net["kind"] != "graph":
        raise DeltaError(Problem("delta.closed_edge", "closing an edge needs a graph network"))
    a, b = str(d.closed_edge.from_), str(d.closed_edge.to)
    both = not d.closed_edge.oneway
    kept, closed = [], False
    for e in net["edges"]:
        ends = (str(e["from"]), str(e["to"]))
        two_way = not e.get("oneway", False)
        if ends == (a, b) or (ends == (b, a) and (both or two_way)):
            closed = True
            if two_way and not both:  # only a -> b closes: b -> a stays open
                rev = dict(e, oneway=True)
                rev["from"], rev["to"] = (e["to"], e["from"]) if ends == (a, b) else (e["from"], e["to"])
                kept.append(rev)
            continue
        kept.append(e)
    if not closed:
        raise DeltaError(Problem("delta.closed_edge", f"no edge from '{a}' to '{b}'"))
    net["edges"] = kept


def _responder(m: dict, rid: str) -> dict:
    return _own(m["responders"], "id", rid, "responder", "delta.responder")


def _work(sc: Scenario, cas: dict, task: str) -> tuple[str | None, float | None]:
    """Where ``cas``'s ``task`` under way keeps its team, and until when (``None`` if not under way)."""
    if task == "transport":
        transit = cas.get("in_transit")
        return (transit["hospital"], transit["arrival"] + sc.model.durations.handover) if transit else (None, None)
    return cas["site"], cas.get("rescue_ends_at" if task == "rescue" else "treatment_ends_at")


def _still_at(team: dict, place: str, free: float) -> bool:
    """Whether ``team``'s facts still say it is at ``place`` until ``free``: not, once it has
    been reported starting other work."""
    return team.get("start") == place and abs(team.get("available_at", -math.inf) - free) <= TOL


def team_doing(teams: list[dict], kind: str, place: str, free: float, now: float = 0.0,
               loose: bool = False) -> int | None:
    """The index of the first team whose facts say it does work under way (SPEC §8.1): of
    ``kind``, starting at ``place``, available when the work ends (``free``; a team without
    ``available_at`` is available ``now``); with ``loose``, failing that, the first of that kind
    waiting at ``place`` before then. None if there is none."""
    at = [(j, now if r.get("available_at") is None else r["available_at"])
          for j, r in enumerate(teams) if r["kind"] == kind and r.get("start") == place]
    exact = next((j for j, a in at if abs(a - free) <= TOL), None)
    return exact if exact is not None or not loose else next((j for j, a in at if a <= free), None)


def _abandon_work(m: dict, j: int, started: dict) -> None:
    """The rescue or treatment that team ``j``, reported unavailable, is at stops with it: the
    casualty is trapped, or untreated, with no work under way, so the plan rescues it (treats
    it) again. Left under way with no team, as it was, the model had the rescue end on time:
    no fire team was planned for a casualty still trapped, and its transport was timed from
    then. A transport under way is not work that stops: its casualty is in the ambulance."""
    team = m["responders"][j]
    task, key = ("rescue", "rescue_ends_at") if team["kind"] == "fire" else ("treat", "treatment_ends_at")
    for i, cas in enumerate(m["casualties"]):
        end = cas.get(key)
        if end is None:
            continue
        by = started.get((task, cas["id"]), (None, None))[1]
        latest = by is None or _doing(started, by, task, cas["id"])
        if _at_work(m["responders"], task, cas["site"], end, by, latest) == j:
            m["casualties"][i] = {k: v for k, v in cas.items() if k != key}  # a copy: records are shared


def _worked_on(m: dict, kind: str, cas: dict, key: str) -> bool:
    """Whether casualty ``cas`` has work under way (its ``key``, ``rescue_ends_at`` or
    ``treatment_ends_at``) that a team of the model is doing. Work that no team's facts claim
    (a model loaded with it under way, its team gone) may be taken over by another team's
    report (it starts afresh; the first team's progress is not known); work whose team is
    reported unavailable stops with it (``_abandon_work``)."""
    end = cas.get(key)
    return end is not None and team_doing(m["responders"], kind, cas["site"], end) is not None


def actual_time(d: TaskStarted | TaskCompleted) -> float:
    """When a reported task really started or ended: ``started_at`` / ``completed_at`` if the
    report reached us late, else its ``time``. A time after the report's is refused."""
    name = "started_at" if d.type == "task_started" else "completed_at"
    at = getattr(d, name)
    if at is None:
        return d.time
    if at > d.time + TOL:
        raise DeltaError(Problem(f"delta.{name}", f"{at} is after the delta's time {d.time}"))
    return float(at)


def _task_started(sc: Scenario, m: dict, d: TaskStarted, duration_of, started: dict, seen: dict) -> None:
    """A start reported late counts from when it happened, but, like work not reported done
    (``advance``), nothing under way ends before the model's time; and it does not move a team
    reported starting other work since (``_doing``)."""
    cas = _own(m["casualties"], "id", d.casualty, "casualty", "delta.casualty")
    resp = _responder(m, d.responder)
    t, now = actual_time(d), d.time
    latest = started.get(("latest", d.responder))
    if latest is not None and latest[0] > t + TOL:
        resp = dict(resp)  # checked below as the team's, but its record stays as it is
    if d.task == "rescue":
        if resp["kind"] != "fire":
            raise DeltaError(Problem("delta.responder", f"'{d.responder}' is not a fire team"))
        if not cas.get("trapped") or _worked_on(m, "fire", cas, "rescue_ends_at"):
            raise DeltaError(Problem("delta.casualty", f"casualty '{d.casualty}' is not waiting for a rescue"))
        # its health is not rolled forward: it stays trapped, in one segment until the rescue
        # ends (SPEC §7), and two segments would not give the same health as one
        cas["rescue_ends_at"] = max(t + duration_of("rescue", d.casualty), now)
        resp["start"], resp["available_at"] = cas["site"], cas["rescue_ends_at"]
    elif d.task == "treat":
        if resp["kind"] != "paramedic":
            raise DeltaError(Problem("delta.responder", f"'{d.responder}' is not a paramedic team"))
        if cas.get("treated") or _worked_on(m, "paramedic", cas, "treatment_ends_at") or cas.get("in_transit"):
            raise DeltaError(Problem("delta.casualty", f"casualty '{d.casualty}' cannot start a treatment"))
        # (not rolled forward either: its environment changes only when the treatment ends)
        cas["treatment_ends_at"] = max(t + duration_of("treat", d.casualty), now)
        resp["start"], resp["available_at"] = cas["site"], cas["treatment_ends_at"]
    else:
        if resp["kind"] != "paramedic":
            raise DeltaError(Problem("delta.responder", f"'{d.responder}' is not a paramedic team"))
        if d.hospital is None:
            raise DeltaError(Problem("delta.hospital", "a transport needs a 'hospital'"))
        _find(m["hospitals"], "id", d.hospital, "hospital", "delta.hospital")
        if cas.get("in_transit") or cas.get("trapped"):
            raise DeltaError(Problem("delta.casualty", f"casualty '{d.casualty}' cannot be picked up now"))
        _changes_at(sc, cas, t, seen, PICKED_UP)
        cas.pop("treatment_ends_at", None)
        cas["treated"] = False
        arrival = max(t + sc.model.durations.load + _travel(sc, cas["site"], d.hospital), now)
        cas["in_transit"] = {"hospital": d.hospital, "arrival": arrival}
        resp["start"], resp["available_at"] = d.hospital, arrival + sc.model.durations.handover


def _bumped(seen: dict, hospital: str, t: float, report: tuple, cid: str) -> str | None:
    """Whose bed casualty ``cid``, delivered at ``t`` to a full ``hospital``, takes: of the
    deliveries ``seen`` records there that took a bed and are admitted after it (after ``t``, or
    at ``t`` with ``cid`` ahead of them by SPEC §7's tie, ``_ahead_of``) and counted by ``report``
    (the hospital's first report of its beds from ``t`` on, ``(time, deliveries recorded before
    it)``: those before it, and those at its minute recorded before it), the last admitted,
    now beyond the beds; None if there is none (``cid`` is beyond them). Of other deliveries at
    one time, the last recorded counts as the last admitted: their casualty indices left the
    model with them."""
    last, when = None, None
    for other, (source, record, _h) in seen.items():
        if source != DELIVERED or not record or record[0] != hospital or not record[3]:
            continue
        if record[1] > report[0] + TOL or (record[1] >= report[0] - TOL and record[4] >= report[1]):
            continue  # not counted by the report: admitted from the beds it reported
        after = record[1] > t + TOL or (abs(record[1] - t) <= TOL and cid in record[5])
        if after and (when is None or (record[1], record[4]) > when):
            last, when = other, (record[1], record[4])
    return last


def _overflow_risk(m: dict, hosp: dict) -> float:
    """The chance that a casualty admitted beyond ``hosp``'s beds dies of it (SPEC §7)."""
    return hosp.get("overflow_risk", m.get("hospital_overflow_risk", 0.05))


def _treated_before_delivery(sc: Scenario, m: dict, cid: str, t: float, seen: dict) -> None:
    """Casualty ``cid``, delivered, was treated from ``t``: its p_dead at arrival, carried again
    from its history then (kept in its delivery record), and the delivered fatalities with it.
    Nothing if the history was not kept (a history file written before it was)."""
    record = seen[cid][1]
    if len(record) < 7 or record[6] is None or t >= record[1]:
        return
    again = {cid: record[6]}
    h = carried_again(sc, again, cid, t, TREATED)
    if h is None:
        return
    p = float(h[3])
    risk = _overflow_risk(m, next(x for x in m["hospitals"] if x["id"] == record[0]))
    beyond = not record[3] and not is_known_dead(h)
    m["delivered_fatalities"] = m.get("delivered_fatalities", 0.0) + (p - record[2]) * (1.0 - risk if beyond else 1.0)
    seen[cid] = (DELIVERED, record[:2] + (p,) + record[3:6] + (again[cid],), None)


def _ahead_of(rows: list[dict], cid: str, hospital: str, t: float) -> tuple[str, ...]:
    """The casualties still in an ambulance to ``hospital`` that SPEC §7's tie would admit before
    casualty ``cid``, delivered at ``t``, should they be delivered at ``t`` too: those whose
    arrival is ``t`` (an estimate, or an overdue one held at the clock) and listed before it.
    ``cid`` takes a free bed all the same; one of them reported delivered at ``t`` takes it back
    (``_bumped``), one delivered later does not. The known dead take no bed."""
    ahead = []
    for c in rows:
        if c["id"] == cid:
            break
        transit = c.get("in_transit")
        if transit and transit["hospital"] == hospital and transit["arrival"] == t and not _known_dead(c):
            ahead.append(c["id"])
    return tuple(ahead)


def _health_of(c: dict):
    """A casualty record's health as a vector (a record may hold a category or observations)."""
    return c["health"] if isinstance(c["health"], list) else health_vector(_health_model(c))


def _known_dead(c: dict) -> bool:
    return is_known_dead(_health_of(c))


def _task_completed(sc: Scenario, m: dict, d: TaskCompleted, started: dict, seen: dict) -> None:
    """A completion reported late changes the casualty's environment from when it happened; a
    late delivery takes its place in its hospital's admission order (``_bumped``)."""
    t = actual_time(d)
    began, by = started.get((d.task, d.casualty), (None, None))  # the team reported starting it, if one was
    if began is not None and t < began - TOL:
        raise DeltaError(Problem("delta.completed_at",
                                 f"{t} is before the {d.task} of '{d.casualty}' started ({began})"))
    present = {r["id"] for r in m["responders"]}
    if d.task != "transport" and seen.get(d.casualty, (None,))[0] == DELIVERED:
        # reported after the casualty was delivered: a treatment that ended before the arrival
        # changes its p_dead then; the team that did the work, if still at it, is free since then
        if d.task == "treat":
            _treated_before_delivery(sc, m, d.casualty, t, seen)
        if by == d.responder and by in present and _doing(started, by, d.task, d.casualty):
            _responder(m, by)["available_at"] = t
        return
    cas = _own(m["casualties"], "id", d.casualty, "casualty", "delta.casualty")
    if by is not None and by != d.responder and by in present:
        raise DeltaError(Problem("delta.responder", f"the {d.task} of '{d.casualty}' was started by '{by}', "
                                                    f"not '{d.responder}'"))
    place, end = _work(sc, cas, d.task)
    if d.responder in present:
        resp = _responder(m, d.responder)
        if (resp["kind"] == "fire") != (d.task == "rescue"):
            raise DeltaError(Problem("delta.responder",
                                     f"'{d.responder}' is a {resp['kind']} team and cannot {d.task}"))
        if by == d.responder and ((end is not None and not _still_at(resp, place, end))
                                  or not _doing(started, d.responder, d.task, d.casualty)):
            resp = {}  # reported late, after it set off to other work: it stays where that work has it
    elif by == d.responder or (by is None and end is not None and _at_work(m["responders"], d.task, place, end,
                                                                            None) is None):
        # reported unavailable since it started (or, in a restored model, no team's facts claim
        # the work): the work still ends, but there is no team record to move
        resp = {}
    else:
        raise DeltaError(Problem("delta.responder", f"unknown responder '{d.responder}'"))
    if d.task == "rescue":
        if not cas.get("trapped"):
            raise DeltaError(Problem("delta.casualty", f"casualty '{d.casualty}' is not trapped"))
        _changes_at(sc, cas, t, seen, RESCUED)
        cas["trapped"] = False
        cas.pop("rescue_ends_at", None)
        resp["start"], resp["available_at"] = cas["site"], t
    elif d.task == "treat":
        picked_up = started.get(("transport", d.casualty), (None, None))
        if cas.get("in_transit") and picked_up[0] is not None and t <= picked_up[0] + TOL and not cas.get("treated"):
            # done before the casualty was picked up, reported after: treated until then (in the
            # ambulance, treated or not is the same chain)
            _changes_at(sc, cas, t, seen, TREATED)
            moved_on = picked_up[1] == d.responder or (by == d.responder and not _doing(started, by, "treat",
                                                                                           d.casualty))
            if not moved_on:  # (else it carries the casualty now, or has set off for other work)
                resp["start"], resp["available_at"] = cas["site"], t
            return
        if cas.get("treated") or cas.get("in_transit"):
            raise DeltaError(Problem("delta.casualty", f"casualty '{d.casualty}' is not under treatment"))
        cas["treatment_ends_at"] = t  # untreated chain until now, then treated
        _changes_at(sc, cas, t, seen, TREATED)
        cas.pop("treatment_ends_at", None)
        cas["treated"] = True
        resp["start"], resp["available_at"] = cas["site"], t
    else:
        transit = cas.get("in_transit")
        if not transit:
            raise DeltaError(Problem("delta.casualty", f"casualty '{d.casualty}' is not in an ambulance"))
        # ``time`` is the arrival at the hospital; the handover follows
        transit["arrival"] = t
        # (health observed after the arrival, reported before the delivery, is taken as the
        # health at arrival: what it was carried from is gone)
        roll_forward(sc, cas, t, seen)
        h = _health_of(cas)
        hospital = transit["hospital"]
        p, over, bed = float(h[3]), 0.0, False
        if not is_known_dead(h):  # a casualty known dead takes no bed (SPEC §8.1)
            hosp = _own(m["hospitals"], "id", hospital, "hospital", "delta.casualty")
            risk = _overflow_risk(m, hosp)
            reports = bed_reports(seen, hospital)
            # a report at the minute of a delivery reported late counted it, one at the minute of
            # a delivery reported on time came before it
            late = t < d.time - TOL
            k = next((k for k, (c, _left, _n) in enumerate(reports) if c > t + TOL or (late and c >= t - TOL)), None)
            if k is None:
                bed = hosp["capacity"] > 0
                if bed:
                    hosp["capacity"] -= 1
            else:  # the hospital reported its beds since, net of this admission: as it had them before
                c, left, recorded = reports[k]
                bed = left > 0
                if bed:
                    set_bed_reports(seen, hospital, reports[:k] + ((c, left - 1, recorded),) + reports[k + 1:])
            if not bed:
                report = (math.inf, 0) if k is None else (reports[k][0], reports[k][2])  # (time, recorded before)
                bumped = _bumped(seen, hospital, t, report, d.casualty)
                if bumped is None:
                    over = (1.0 - p) * risk
                else:  # it takes the bed of the last admitted after it, who is beyond the beds now
                    record = seen[bumped][1]
                    seen[bumped] = (DELIVERED, record[:3] + (False,) + record[4:], None)
                    over, bed = (1.0 - record[2]) * risk, True
        ahead = _ahead_of(m["casualties"], d.casualty, hospital, t) if bed else ()
        m["delivered_fatalities"] = m.get("delivered_fatalities", 0.0) + p + over
        m["casualties"] = [c for c in m["casualties"] if c["id"] != d.casualty]
        order = deliveries_recorded(seen)
        carried_over = seen.get(d.casualty)  # (its history then: a treatment's end reported later needs it)
        if carried_over is None or carried_over[2] is None:
            carried_over = None
        seen[d.casualty] = (DELIVERED, (hospital, t, p, bed, order, ahead, carried_over), None)
        resp["start"], resp["available_at"] = transit["hospital"], t + sc.model.durations.handover
