"""When each casualty was last observed, and what its health has been carried over since.

A casualty's ``observed_at`` is the time its health refers to, not when it was last seen: each
change of environment (rescued, treated, picked up) carries the health forward to that moment
(``deltas.roll_forward``). A report of what was seen before such a change can reach the planner
after it, so the planner keeps a *history* per casualty: when it was last observed and the
stretches its health was carried over since, ``(until, environment)`` pairs. ``observe`` uses it
to count a late observation from when it was made, and ``history_json`` / ``load_history`` keep
it across a snapshot (``Planner.snapshot``, ``Planner.restore``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError

from .errors import Problem, ScenarioError
from .health import ENVIRONMENTS, propagate_tabled
from .model import Health, Id, Strict, Time
from .plan import problem_arrays
from .scenario import Scenario, health_vector, loads, pydantic_problems

TOL = 1e-9
#: A history's record of a casualty delivered to hospital: any observation of it is older.
DELIVERED = math.inf
#: The ``format`` tag of a snapshot's history file.
HISTORY_FORMAT = "goldenhour.observations/1"

_HEALTH = TypeAdapter(Health)

#: ``{casualty id: (last observed, ((until, environment index), ...), health then)}``: the health
#: observed is kept while it is carried over stretches (None if not: nothing carried yet, or a
#: history written before it was kept), so that a change of environment reported late can carry
#: it again (``carried_again``). A delivered casualty's entry is ``(DELIVERED, (hospital id,
#: arrival, p_dead, took a bed, order of recording, ids ahead of it by SPEC §7's tie, its own
#: entry then or None), None)``, which a delivery reported late, or tied with it and reported
#: after it, needs (``deltas._bumped``), and a treatment's end reported after it
#: (``deltas._treated_before_delivery``); ``()`` instead of the record if it is not known. A hospital's reports of
#: its free beds (``hospital_capacity``) are kept under the key ``("beds", hospital id)`` as
#: ``(time of the last, ((time, beds it had left just before, deliveries recorded before it), ...),
#: None)``: a delivery reported
#: late that was made before a report is counted in the beds reported, and takes its place among
#: the admissions before it.
History = dict[str | tuple, tuple[float, tuple, tuple | None]]


def deliveries_recorded(seen: History) -> int:
    """How many deliveries ``seen`` has recorded (with their record): the next one's order."""
    return sum(1 for source, record, _h in seen.values() if source == DELIVERED and record)


def bed_reports(seen: History, hospital: str) -> tuple:
    """``((time, beds left just before, deliveries recorded before), ...)``: ``hospital``'s
    reports of its beds, in time order."""
    return seen.get(("beds", hospital), (None, ()))[1]


def set_bed_reports(seen: History, hospital: str, reports) -> None:
    reports = tuple((float(t), int(left), int(recorded)) for t, left, recorded in reports)
    seen[("beds", hospital)] = (reports[-1][0], reports, None)


def carried(sc: Scenario, h, stretches, since: float) -> list[float]:
    """Health ``h`` at ``since`` carried over ``stretches``: ``(until, environment)`` pairs in
    time order, each environment holding from the end of the one before (``since`` for the
    first) until ``until``."""
    small = problem_arrays(sc).small
    for until, env in stretches:
        h = propagate_tabled(h, small[env], sc.chains[env], until - since)
        since = until
    h = [min(max(float(x), 0.0), 1.0) for x in h]
    total = h[0] + h[1] + h[2] + h[3]
    return [x / total for x in h]


def observe(sc: Scenario, cas: dict, health, at: float, seen: History) -> dict | None:
    """The casualty's record after its health was observed at ``at``; None if that is older than
    what the model already holds.

    An observation made at or after ``observed_at`` replaces the health; one made during the
    stretches of ``seen`` (it reached us after the casualty was rescued, treated or picked up)
    replaces what they were carried from and is carried over the rest of them in the chains
    they had; one made before the last observation is stale and changes nothing (the newer one
    stands), and so does one of a casualty delivered since (``DELIVERED``: it has left the
    model). A casualty ``seen`` knows nothing of counts as last observed at its ``observed_at``.
    """
    cid = cas["id"]
    o = cas.get("observed_at", sc.model.time)
    if o is None:
        o = sc.model.time
    source, stretches, _h = seen.get(cid, (o, (), None))
    if at < source - TOL:
        return None
    if at >= o - TOL or not stretches:
        seen[cid] = (float(at), (), None)
        return dict(cas, health=health, observed_at=float(at))
    later = tuple((until, env) for until, env in stretches if until > at)
    h = health_vector(_HEALTH.validate_python(health))
    seen[cid] = (float(at), later, tuple(float(x) for x in h))
    return dict(cas, health=carried(sc, h, later, at), observed_at=float(o))


def carried_again(sc: Scenario, seen: History, cid: str, at: float, after: tuple) -> list[float] | None:
    """The casualty's health carried again from when it was last observed, each stretch from
    ``at`` on in environment ``after[environment]`` instead (a stretch across ``at`` split
    there); None (and ``seen`` unchanged) if no stretch changes or the history does not keep
    the health observed.

    For a change of environment at ``at`` reported after the health was carried past it (a
    later change, reported first, moved ``observed_at``): the model then is the one it would be
    had the reports arrived in time.
    """
    source, stretches, h = seen.get(cid, (None, (), None))
    if h is None or not any(until > at + TOL and after[env] != env for until, env in stretches):
        return None
    again, since = [], source
    for until, env in stretches:
        if since < at < until - TOL:
            again.append((float(at), env))
            since = at
        again.append((until, after[env] if since >= at - TOL else env))
        since = until
    seen[cid] = (source, tuple(again), h)
    return carried(sc, h, again, source)


class _Carried(Strict):
    observed: Time
    carried: list[tuple[Time, str]] = []
    health: Annotated[list[Annotated[float, Field(ge=0, le=1 + TOL)]], Field(min_length=4, max_length=4)] | None = None


class _Delivery(Strict):
    hospital: Id
    arrival: Time
    p_dead: Annotated[float, Field(ge=0, le=1 + TOL)]  # (a health vector's entries sum to 1 within TOL)
    bed: bool
    order: Annotated[int, Field(ge=0)]
    ahead: list[Id] = []
    history: _Carried | None = None


class _Started(Strict):
    task: Literal["rescue", "treat", "transport"]
    casualty: Id
    at: Time
    responder: Id


class _Latest(Strict):
    at: Time
    task: Literal["rescue", "treat", "transport"]
    casualty: Id


class _HistoryFile(Strict):
    format: str
    casualties: dict[Id, _Carried] = {}
    delivered: list[Id] = Field(default_factory=list)
    deliveries: dict[Id, _Delivery] = {}
    beds_reported: dict[Id, Annotated[list[tuple[Time, Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]],
                                      Field(min_length=1)]] = {}
    started: list[_Started] = []  # the planner's record of who started what (``Planner._started``)
    latest: dict[Id, _Latest] = {}
    issued_at: dict[Id, Time] = {}


def history_json(seen: History, started: dict | None = None, issued_at: dict | None = None) -> dict:
    """``seen`` as a JSON document, environments by name, delivered casualties listed apart; with
    the planner's record of who started what (``Planner._started``) and when it last issued each
    team a task (``Planner._issued_at``)."""
    casualties = {cid: _entry_json(source, stretches, h)
                  for cid, (source, stretches, h) in sorted(_casualties(seen)) if source != DELIVERED}
    delivered = sorted(cid for cid, (source, _s, _h) in _casualties(seen) if source == DELIVERED)
    deliveries = {cid: _delivery_json(seen[cid][1]) for cid in delivered if seen[cid][1]}
    beds = {key[1]: [list(r) for r in reports] for key, (_t, reports, _h) in sorted(seen.items(), key=str)
            if isinstance(key, tuple)}
    started = started or {}
    return {"format": HISTORY_FORMAT, "casualties": casualties, "delivered": delivered, "deliveries": deliveries,
            "beds_reported": beds,
            "started": [{"task": key[0], "casualty": key[1], "at": value[0], "responder": value[1]}
                        for key, value in sorted(started.items(), key=str) if key[0] != "latest"],
            "latest": {key[1]: {"at": value[0], "task": value[1][0], "casualty": value[1][1]}
                       for key, value in sorted(started.items(), key=str) if key[0] == "latest"},
            "issued_at": dict(sorted((issued_at or {}).items()))}


def _entry_json(source: float, stretches: tuple, h) -> dict:
    return {"observed": source, "carried": [[until, ENVIRONMENTS[env]] for until, env in stretches],
            **({} if h is None else {"health": list(h)})}


def _delivery_json(record: tuple) -> dict:
    out = dict(zip(("hospital", "arrival", "p_dead", "bed", "order", "ahead"), record))
    if len(record) > 6 and record[6] is not None:
        out["history"] = _entry_json(*record[6])
    return out


def _casualties(seen: History) -> list:
    return [(k, v) for k, v in seen.items() if isinstance(k, str)]


def _entry(entry: _Carried, path: str, problems: list) -> tuple:
    """A casualty's ``History`` entry from its record in a history file (``path`` names it)."""
    stretches = []
    for k, (until, env) in enumerate(entry.carried):
        if env not in ENVIRONMENTS:
            problems.append(Problem(f"{path}.carried[{k}]", f"unknown environment '{env}'"))
            continue
        stretches.append((float(until), ENVIRONMENTS.index(env)))
    h = None if entry.health is None or not stretches else tuple(entry.health)
    return float(entry.observed), tuple(stretches), h


def load_history(path, sc: Scenario) -> tuple[History, dict, dict]:
    """Read a history written by ``history_json`` for scenario ``sc``: the history, who was
    reported starting what, and when each team was last issued a task; raises ``ScenarioError``
    naming the file and the JSON path of every problem (nothing is half read)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ScenarioError([Problem(where, f"cannot read the observation history: {exc}")]) from None
    doc = loads(text, where, ScenarioError)
    try:
        data = _HistoryFile.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError([Problem(f"{where}: {p.path}", p.message) for p in pydantic_problems(exc)]) from None
    problems = []
    if data.format != HISTORY_FORMAT:
        problems.append(Problem(f"{where}: format", f"expected \"{HISTORY_FORMAT}\", got \"{data.format}\""))
    seen: History = {}
    for cid, entry in data.casualties.items():
        if cid not in sc.casualty_index:
            problems.append(Problem(f"{where}: casualties.{cid}", f"unknown casualty '{cid}'"))
        seen[cid] = _entry(entry, f"{where}: casualties.{cid}", problems)
    for cid in data.delivered:
        if cid in sc.casualty_index:
            problems.append(Problem(f"{where}: delivered", f"casualty '{cid}' is still in the scenario"))
        seen[cid] = (DELIVERED, (), None)
    for cid, d in data.deliveries.items():
        if cid not in data.delivered:
            problems.append(Problem(f"{where}: deliveries.{cid}", f"casualty '{cid}' is not listed as delivered"))
        if d.hospital not in sc.hospital_index:
            problems.append(Problem(f"{where}: deliveries.{cid}.hospital", f"unknown hospital '{d.hospital}'"))
        history = None if d.history is None else _entry(d.history, f"{where}: deliveries.{cid}.history", problems)
        seen[cid] = (DELIVERED, (d.hospital, float(d.arrival), float(d.p_dead), d.bed, d.order, tuple(d.ahead),
                                 history if history is None or history[2] is not None else None), None)
    for hid, reports in data.beds_reported.items():
        if hid not in sc.hospital_index:
            problems.append(Problem(f"{where}: beds_reported.{hid}", f"unknown hospital '{hid}'"))
        set_bed_reports(seen, hid, sorted(reports, key=lambda r: r[0]))  # stable: one minute's in order
    if problems:
        raise ScenarioError(problems)
    started = {(s.task, s.casualty): (float(s.at), s.responder) for s in data.started}
    started.update({("latest", rid): (float(w.at), (w.task, w.casualty)) for rid, w in data.latest.items()})
    return seen, started, {rid: float(t) for rid, t in data.issued_at.items()}
