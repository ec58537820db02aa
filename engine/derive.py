"""The scenario of a changed model, derived from the scenario it changed from (the online engine).

A delta changes a few records of the model (a casualty's health or work in progress, where a
team is and when it is free, a hospital's beds), adds some (casualties, sites, teams), removes
some (a delivered casualty, a team gone), moves the time or scales the roads. ``load_scenario``
validates and flattens every record again: several times what the delta itself costs.
``derive`` validates and flattens only the records that differ, runs the checks that relate them
to the rest, and shares everything else with the old scenario. Records are compared by
identity: a delta replaces the records it changes and never edits one in place
(``deltas.apply_delta``), so an unchanged record is the very same object.

It is exact: what it returns equals ``load_scenario(new)``, model and arrays (the tests compare
the two after every operation of random planner sessions). Whenever something is wrong, or the
change is of a kind it does not derive (a hospital moved, other stations, durations or
chains...), it returns ``load_scenario(new, reuse=...)`` instead, which reports every problem as
a reload does.
"""

from __future__ import annotations

import operator

import numpy as np
from pydantic import TypeAdapter, ValidationError

from . import checks
from .health import is_known_dead
from .model import Casualty, Fatalities, GeoNetwork, Hospital, Network, Responder, Site, Time
from .plan import problem_arrays
from .problem import OBSERVATION, patch_observations, rebuild_problem
from .scenario import Scenario, _derive, _same_but, _travel, health_vector, load_scenario, reach_sites

#: The top-level keys ``derive`` follows; a change to any other means a reload.
_FOLLOWED = {"time", "delivered_fatalities", "network", "sites", "hospitals", "responders", "casualties"}
_TIME, _FATALITIES, _NETWORK = TypeAdapter(Time), TypeAdapter(Fatalities), TypeAdapter(Network)


class _Reload(Exception):
    """The change is wrong, or not one ``derive`` follows: the caller reloads."""


def derive(sc: Scenario, old: dict, new: dict) -> Scenario:
    """``load_scenario(new)``, where ``sc`` is the scenario of the model dict ``old``.

    Raises ``ScenarioError`` naming every problem of ``new``, as a reload does.
    """
    try:
        return _derived(sc, old, new)
    except (_Reload, ValidationError):
        return load_scenario(new, reuse=sc)


def earliest_end(sc: Scenario) -> float:
    """No work in progress of ``sc`` (a rescue, a treatment, a ride) ends before this; ``-inf``
    if that is not known (a scenario loaded, not derived). Moving the clock no further than this
    clamps nothing (``deltas.advance``)."""
    bounds = getattr(sc, "_time_bounds", None)
    return -np.inf if bounds is None else bounds[1]


def _align(old: list, new: list) -> tuple[np.ndarray | None, list[int]]:
    """Which old record each new record is (or replaces), and which new records differ.

    ``src[j]`` is the index in ``old`` of the record new record ``j`` is or replaces (same
    ``id``), -1 for an added one; ``src`` is None when the records are the old ones in the same
    places (none added or removed). ``dirty`` lists the new records that are not old ones.
    """
    if new is old:
        return None, []
    if isinstance(new, list) and len(new) >= len(old):  # the commonest: records replaced or appended
        same = list(map(operator.is_, old, new))
        dirty = [] if all(same) else [j for j, kept in enumerate(same) if not kept]
        if all(isinstance(new[j], dict) and new[j].get("id") == old[j].get("id") for j in dirty):
            if len(new) == len(old):
                return None, dirty
            src = np.concatenate([np.arange(len(old)), np.full(len(new) - len(old), -1)]).astype(np.int64)
            return src, dirty + list(range(len(old), len(new)))
    if not isinstance(new, list) or not all(isinstance(row, dict) for row in new):
        raise _Reload
    src, dirty, i = np.full(len(new), -1, dtype=np.int64), [], 0
    for j, row in enumerate(new):
        while i < len(old) and old[i] is not row and old[i].get("id") != row.get("id"):
            i += 1  # old[i] was removed
        if i < len(old):
            src[j] = i
            i += 1
        if src[j] < 0 or old[src[j]] is not row:
            dirty.append(j)
    return src, dirty


def _differs(old: dict, new: dict, key: str) -> bool:
    """Whether a number of the model changed (in type too: ``True`` equals 1.0, but is no time)."""
    a, b = old.get(key, 0.0), new.get(key, 0.0)
    return type(a) is not type(b) or a != b


def _check(problems: list) -> None:
    if problems:
        raise _Reload


def _derived(sc: Scenario, old: dict, new: dict) -> Scenario:
    for a, b in ((old, new), (new, old)):
        for k, v in a.items():
            if v is not b.get(k) and k not in _FOLLOWED:
                raise _Reload
    m = sc.model
    update: dict = {}
    problems: list = []
    if _differs(old, new, "time"):
        update["time"] = _TIME.validate_python(new.get("time", 0.0))
    if _differs(old, new, "delivered_fatalities"):
        update["delivered_fatalities"] = _FATALITIES.validate_python(new.get("delivered_fatalities", 0.0))
    time = update.get("time", m.time)
    moved = time != m.time
    # the places, or the roads between them, changed: the travel matrix goes with them
    relocate = _network(m, old, new, update) | _sites(m, old, new, update, problems)
    _hospitals(m, old, new, update)
    resp_src, resp_dirty, moves = _responders(m, old, new, update, problems)
    cas_src, cas_dirty = _casualties(m, old, new, update)
    relocate |= moves
    site_index = sc.site_index if "sites" not in update else {s.id: i for i, s in enumerate(update["sites"])}
    bounds = _check_casualties(sc, update, cas_dirty, time, moved, set(site_index), problems)
    _check(problems)

    model = m.model_copy(update=update)
    travel, site_loc, names, key = sc.travel, sc.site_loc, sc.location_names, getattr(sc, "_travel_key", None)
    responder_loc = sc.responder_loc
    if relocate:
        travel, site_loc, responder_loc, names, key = _travel(model, sc.base_dir, problems, reuse=sc)
    elif "responders" in update:
        responder_loc = _responder_loc(sc, model.responders, resp_src, resp_dirty)
        reach_sites(travel, site_loc, responder_loc[resp_dirty], names, problems)  # (the others were)
    _check(problems)

    hv = sc.health
    if "casualties" in update:
        hv = hv.copy() if cas_src is None else (hv[np.maximum(cas_src, 0)] if len(hv) else
                                                 np.empty((len(cas_src), 4)))
        for j in cas_dirty:
            hv[j] = health_vector(model.casualties[j].health)
    index = {"responder_index": sc.responder_index, "casualty_index": sc.casualty_index}
    for name, src, records in (("responder_index", resp_src, model.responders),
                               ("casualty_index", cas_src, model.casualties)):
        if src is not None:  # records added or removed
            index[name] = {r.id: j for j, r in enumerate(records)}
            if len(index[name]) != len(records):
                raise _Reload  # a duplicate id
    P = problem_arrays(sc)
    fields = dict(model=model, health=hv, travel=travel, site_loc=site_loc, responder_loc=responder_loc,
                  location_names=names, site_index=site_index, **index)
    unobserved = _unobserved(sc, model.casualties, cas_src, cas_dirty)
    # an observation time left to default is the scenario's time: those rows move with it
    rows = sorted(set(cas_dirty) | unobserved) if moved else cas_dirty
    observed = cas_src is None and update.keys() <= {"casualties", "time"} and all(
        is_known_dead(hv[j]) == is_known_dead(sc.health[j])
        and _same_but(model.casualties[j], m.casualties[j], OBSERVATION) for j in cas_dirty)
    if observed:  # health observations, the clock (nothing clamped): health, times, the clock's columns
        out = _derive(sc, lambda out: patch_observations(P, out, rows, clock=moved), **fields)
    else:
        out = _derive(sc, lambda out: rebuild_problem(P, out, cas_src, rows,
                                                      responders="responders" in update or relocate,
                                                      hospitals="hospitals" in update, clock=moved), **fields)
    object.__setattr__(out, "_travel_key", key)
    object.__setattr__(out, "_time_bounds", bounds)
    object.__setattr__(out, "_unobserved", unobserved)
    return out


def _unobserved(sc: Scenario, casualties: list, src: np.ndarray | None, dirty: list[int]) -> frozenset[int]:
    """The casualties whose observation time is left to default to the scenario's time, kept
    with each derived scenario so that moving the clock need not look at every record."""
    known = getattr(sc, "_unobserved", None)
    if known is None or src is not None:
        return frozenset(j for j, c in enumerate(casualties) if c.observed_at is None)
    if not dirty:
        return known
    return (known - set(dirty)) | {j for j in dirty if casualties[j].observed_at is None}


def _network(m, old: dict, new: dict, update: dict) -> bool:
    """Validate new roads into ``update``; whether there are any."""
    if new.get("network") is old.get("network"):
        return False
    network = update["network"] = _NETWORK.validate_python(new.get("network"))
    if type(network) is not type(m.network):
        raise _Reload  # every place's location is checked against the network's kind
    return True


def _sites(m, old: dict, new: dict, update: dict, problems: list) -> bool:
    """Validate added sites into ``update``; whether there are any (sites are never removed)."""
    if new.get("sites") is old.get("sites"):
        return False
    old_rows, rows = old["sites"], new.get("sites")
    if not isinstance(rows, list) or len(rows) < len(old_rows) or any(a is not b for a, b in zip(old_rows, rows)):
        raise _Reload
    if len(rows) == len(old_rows):
        return False
    places = _places(m)
    sites = update["sites"] = list(m.sites)
    for i in range(len(old_rows), len(rows)):
        site = Site.model_validate(rows[i])
        if site.id in places:
            raise _Reload  # a duplicate id
        places.add(site.id)
        checks._location(site, f"sites[{i}]", isinstance(m.network, GeoNetwork), problems)
        sites.append(site)
    return True


def _hospitals(m, old: dict, new: dict, update: dict) -> None:
    """Validate changed beds and risks into ``update`` (hospitals never move, come or go)."""
    src, dirty = _align(old["hospitals"], new.get("hospitals"))
    if src is not None:
        raise _Reload
    if dirty:
        hospitals = update["hospitals"] = list(m.hospitals)
        for i in dirty:
            h = Hospital.model_validate(new["hospitals"][i])
            if not _same_but(h, m.hospitals[i], ("capacity", "overflow_risk")):
                raise _Reload  # moved or renamed
            hospitals[i] = h


def _responders(m, old: dict, new: dict, update: dict, problems: list):
    """Validate changed and added teams into ``update``; ``_align``'s result, and whether a
    start of a team's own (not a named place) changed: a location of its own, after all the
    places, so that adding, moving or removing one moves the others'."""
    rows = new.get("responders")
    src, dirty = _align(old["responders"], rows)
    if src is None and not dirty:
        return src, dirty, False
    responders = update["responders"] = list(m.responders) if src is None else \
        [m.responders[i] if i >= 0 else None for i in src.tolist()]
    was = dirty if src is None else [int(src[j]) for j in dirty if src[j] >= 0]
    if src is not None:
        was += sorted(set(range(len(m.responders))) - set(src.tolist()))
    moves = any(not isinstance(m.responders[i].start, str) for i in was)
    places = _places(m) | {s.id for s in update.get("sites", ())} if dirty else set()
    for j in dirty:
        r = responders[j] = Responder.model_validate(rows[j])
        if r.kind == "fire" and r.hart:
            raise _Reload
        if isinstance(r.start, str):
            if r.start not in places:
                raise _Reload
        elif isinstance(m.network, GeoNetwork) and getattr(r.start, "node", None) is not None:
            raise _Reload
        else:
            moves = True
    return src, dirty, moves


def _casualties(m, old: dict, new: dict, update: dict):
    """Validate changed and added casualty records into ``update``; ``_align``'s result."""
    rows = new.get("casualties")
    src, dirty = _align(old["casualties"], rows)
    if src is not None or dirty:
        casualties = update["casualties"] = list(m.casualties) if src is None else \
            [m.casualties[i] if i >= 0 else None for i in src.tolist()]
        for j in dirty:
            casualties[j] = Casualty.model_validate(rows[j])
    return src, dirty


def _check_casualties(sc: Scenario, update: dict, dirty: list[int], time: float, moved: bool, sites: set,
                      problems: list) -> tuple[float, float] | None:
    """The cross-checks of the changed casualty records, and of every record if the time moved
    beyond the bounds of their times (``_merge``): the other records' checks read the time only
    through those. Returns the new scenario's bounds (None: not known yet)."""
    old = sc.model.casualties
    casualties = update.get("casualties", old)
    bounds, checked = getattr(sc, "_time_bounds", None), dirty
    if moved and bounds is None:
        bounds = _merge((-np.inf, np.inf), old)
    if bounds is not None:
        bounds = _merge(bounds, [casualties[j] for j in dirty])
    if moved and not (bounds[0] <= time + checks.TOL and bounds[1] >= time - checks.TOL):
        bounds, checked = _merge((-np.inf, np.inf), casualties), range(len(casualties))
    hospitals = set(sc.hospital_index)
    for j in checked:
        checks.check_casualty(j, casualties[j], time, sites, hospitals, problems)
    return bounds


def _merge(bounds: tuple[float, float], casualties) -> tuple[float, float]:
    """``bounds`` (the latest observation, the earliest end of work in progress) widened by the
    records ``casualties``. A derived scenario keeps them from the scenario it came from, merged
    with its changed records: bounds, perhaps from records since replaced or removed."""
    latest, earliest = bounds
    for c in casualties:
        if c.observed_at is not None:
            latest = max(latest, c.observed_at)
        for end in (c.rescue_ends_at, c.treatment_ends_at, c.in_transit.arrival if c.in_transit else None):
            if end is not None:
                earliest = min(earliest, end)
    return latest, earliest


def _places(m) -> set[str]:
    return {p.id for kind in (m.hospitals, m.sites, m.stations) for p in kind}


def _responder_loc(sc: Scenario, responders: list, src: np.ndarray | None, dirty: list[int]) -> np.ndarray:
    """Each responder's location when only named places changed hands (no start of its own
    added, removed or moved: their locations, after all places, stay where they were)."""
    H, S = len(sc.model.hospitals), len(sc.model.sites)
    place = {**sc.hospital_index, **{s: H + i for s, i in sc.site_index.items()},
             **{st.id: H + S + k for k, st in enumerate(sc.model.stations)}}
    loc = sc.responder_loc[np.maximum(src, 0)] if src is not None else sc.responder_loc.copy()
    for j in dirty:
        loc[j] = place[responders[j].start]
    return loc
