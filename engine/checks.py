"""Rules that relate one part of a scenario to another (SPEC §4): ids, references, work in progress.

Each check appends to a list of problems instead of raising, so a planner sees every error at once.
"""

from __future__ import annotations

import math

from .errors import Problem
from .model import GeoNetwork, ScenarioModel

TOL = 1e-9


def _unique(items, path: str, what: str, problems: list[Problem], seen: dict | None = None) -> dict:
    seen = {} if seen is None else seen
    for i, item in enumerate(items):
        if item.id in seen:
            problems.append(Problem(f"{path}[{i}].id", f"duplicate {what} id '{item.id}' (first at {seen[item.id]})"))
        else:
            seen[item.id] = f"{path}[{i}]"
    return seen


def _location(place, path: str, geo: bool, problems: list[Problem]) -> None:
    has_point = place.lat is not None or place.lon is not None
    if has_point and (place.lat is None or place.lon is None):
        problems.append(Problem(path, "give both 'lat' and 'lon'"))
    if geo:
        if place.node is not None:
            problems.append(Problem(f"{path}.node", "a 'geo' network has no nodes; give 'lat' and 'lon'"))
        elif not has_point:
            problems.append(Problem(path, "a 'geo' network needs 'lat' and 'lon' for every place"))
    elif place.node is None and not has_point:
        problems.append(Problem(path, "give 'node' or 'lat' and 'lon'"))


def check(model: ScenarioModel) -> list[Problem]:
    """Every cross-reference problem of a scenario whose fields already validated."""
    problems: list[Problem] = []
    geo = isinstance(model.network, GeoNetwork)
    places = _unique(model.hospitals, "hospitals", "place", problems)
    places = _unique(model.sites, "sites", "place", problems, places)
    places = _unique(model.stations, "stations", "place", problems, places)
    _unique(model.responders, "responders", "responder", problems)
    _unique(model.casualties, "casualties", "casualty", problems)
    hospitals = {h.id for h in model.hospitals}
    sites = {s.id for s in model.sites}
    for kind in ("hospitals", "sites", "stations"):
        for i, place in enumerate(getattr(model, kind)):
            _location(place, f"{kind}[{i}]", geo, problems)

    for i, r in enumerate(model.responders):
        path = f"responders[{i}]"
        if r.kind == "fire" and r.hart:
            problems.append(Problem(f"{path}.hart", "a fire team cannot be HART (HART is a paramedic capability)"))
        if isinstance(r.start, str):
            if r.start not in places:
                problems.append(Problem(f"{path}.start", f"unknown place '{r.start}'"))
        elif geo and getattr(r.start, "node", None) is not None:
            problems.append(Problem(f"{path}.start", "a 'geo' network has no nodes; give 'lat' and 'lon'"))

    for i, c in enumerate(model.casualties):
        check_casualty(i, c, model.time, sites, hospitals, problems)
    return problems


def check_shift(i: int, r, problems: list[Problem]) -> None:
    """A team is not sent off after its shift's end: the issue that would do it is refused
    (``Planner.next_task``), and so is a team that joins with its shift over (``responder_added``).

    A model may still hold a team available only after its shift's end: work reported under way
    that runs over (reality is not refused), and a snapshot of it. No task can be planned for it
    then: a plan that gives it one is infeasible (SPEC §6)."""
    if r.shift_end is not None and r.available_at is not None and r.shift_end < r.available_at:
        problems.append(Problem(f"responders[{i}].shift_end",
                                f"ends at {r.shift_end} before the team is available at {r.available_at}"))


def check_casualty(i: int, c, t, sites: set, hospitals: set, problems: list[Problem]) -> None:
    """The cross-reference problems of casualty ``i`` (record ``c``) at scenario time ``t``."""
    path = f"casualties[{i}]"
    if c.site is not None and c.site not in sites:  # None: a mistyped site, reported already
        problems.append(Problem(f"{path}.site", f"unknown site '{c.site}'"))
    if t is not None and c.observed_at is not None and c.observed_at > t + TOL:
        problems.append(Problem(f"{path}.observed_at", f"{c.observed_at} is after the scenario time {t}"))
    if c.rescue_ends_at is not None:
        if not c.trapped:
            problems.append(Problem(f"{path}.rescue_ends_at", "only a trapped casualty can have a rescue under way"))
        if t is not None and c.rescue_ends_at < t - TOL:
            problems.append(Problem(f"{path}.rescue_ends_at", f"{c.rescue_ends_at} is before the scenario time {t}"))
    if c.treatment_ends_at is not None:
        if c.treated:
            problems.append(Problem(f"{path}.treatment_ends_at", "a treated casualty has no treatment under way"))
        if t is not None and c.treatment_ends_at < t - TOL:
            problems.append(Problem(f"{path}.treatment_ends_at", f"{c.treatment_ends_at} is before the scenario time {t}"))
    if c.in_transit is not None:
        if c.in_transit.hospital is not None and c.in_transit.hospital not in hospitals:
            problems.append(Problem(f"{path}.in_transit.hospital", f"unknown hospital '{c.in_transit.hospital}'"))
        if t is not None and c.in_transit.arrival < t - TOL:
            problems.append(Problem(f"{path}.in_transit.arrival", f"{c.in_transit.arrival} is before the scenario time {t}"))
        if c.trapped or c.rescue_ends_at is not None or c.treatment_ends_at is not None:
            problems.append(Problem(f"{path}.in_transit", "a casualty in transit cannot be trapped or have a rescue or treatment under way"))


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: What each field the checks read must be for them to compare it; anything else reads as None
#: (it is reported by field validation already): a string ``observed_at`` compared with the
#: time raised, and the whole second pass, every unknown reference and duplicate id, was lost.
_KINDS = {**dict.fromkeys(("observed_at", "rescue_ends_at", "treatment_ends_at", "arrival"), _number),
          **dict.fromkeys(("id", "site", "hospital"), lambda v: isinstance(v, str))}


class _Raw:
    """Attribute access over raw JSON (missing or mistyped keys read as None), so that the
    cross-reference checks can also run on a file whose fields did not all validate."""

    def __init__(self, data):
        self._d = data if isinstance(data, dict) else {}

    def __getattr__(self, key):
        v = self._d.get(key)
        if key in _KINDS and not _KINDS[key](v):
            return None
        if isinstance(v, dict):
            return _Raw(v) if key != "start" or "lat" in v or "node" in v else None
        if isinstance(v, list):
            return [_Raw(x) if isinstance(x, dict) else x for x in v]
        return v


def check_raw(data) -> list[Problem]:
    """``check`` on a file that failed field validation; best effort, never raises."""
    from .model import GeoNetwork

    raw = _Raw(data)
    for key in ("hospitals", "sites", "stations", "responders", "casualties"):
        if not isinstance(data.get(key, []), list):
            return []
    try:
        fake = type("Raw", (), {})()
        for key in ("hospitals", "sites", "stations", "responders", "casualties"):
            items = [x for x in (getattr(raw, key) or []) if isinstance(x, _Raw) and isinstance(x.id, str)]
            setattr(fake, key, items)
        t = data.get("time", 0.0)
        fake.time = t if _number(t) else None  # an invalid time is already reported; compare nothing to it
        net = data.get("network") if isinstance(data.get("network"), dict) else {}
        fake.network = GeoNetwork.model_construct() if net.get("kind") == "geo" else None
        return check(fake)
    except Exception:  # a best-effort second opinion must never hide the first
        return []
