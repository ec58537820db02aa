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
    time = m.time
    if new.get("time", 0.0) != old.get("time", 0.0):
        time = update["time"] = _TIME.validate_python(new.get("time", 0.0))
    moved = time != m.time
    if new.get("delivered_fatalities", 0.0) != old.get("delivered_fatalities", 0.0):
        update["delivered_fatalities"] = _FATALITIES.validate_python(new.get("delivered_fatalities", 0.0))
    relocate = False  # the places, or the roads between them, changed: the travel matrix with them
    if new.get("network") is not old.get("network"):
        network = update["network"] = _NETWORK.validate_python(new.get("network"))
        if type(network) is not type(m.network):
            raise _Reload  # every place's location is checked against the network's kind
        relocate = True
    geo = isinstance(m.network, GeoNetwork)

    sites = m.sites
    if new.get("sites") is not old.get("sites"):
        old_rows, rows = old["sites"], new.get("sites")
        if not isinstance(rows, list) or len(rows) < len(old_rows) or any(a is not b for a, b in zip(old_rows, rows)):
            raise _Reload  # (sites are only ever added)
        if len(rows) > len(old_rows):
            sites = update["sites"] = list(sites)
            places = _places(m)
        for i in range(len(old_rows), len(rows)):
            site = Site.model_validate(rows[i])
            if site.id in places:
                raise _Reload  # a duplicate id
            places.add(site.id)
            checks._location(site, f"sites[{i}]", geo, problems)
            sites.append(site)
            relocate = True
    site_index = sc.site_index if sites is m.sites else {s.id: i for i, s in enumerate(sites)}

    hospitals = m.hospitals
    src, dirty = _align(old["hospitals"], new.get("hospitals"))
    if src is not None:
        raise _Reload  # (hospitals are never added or removed)
    if dirty:
        hospitals = update["hospitals"] = list(hospitals)
        for i in dirty:
            h = Hospital.model_validate(new["hospitals"][i])
            if not _same_but(h, m.hospitals[i], ("capacity", "overflow_risk")):
                raise _Reload  # moved or renamed
            hospitals[i] = h

    responders, resp_src, resp_dirty = m.responders, None, []
    responder_index, responder_loc = sc.responder_index, sc.responder_loc
    rows = new.get("responders")
    resp_src, resp_dirty = _align(old["responders"], rows)
    if resp_src is not None or resp_dirty:
        responders = update["responders"] = list(responders) if resp_src is None else \
            [m.responders[i] if i >= 0 else None for i in resp_src]
        # a start of its own is a location of its own, after all the places: adding, moving or
        # removing one moves the others'
        was = resp_dirty if resp_src is None else [int(resp_src[j]) for j in resp_dirty if resp_src[j] >= 0]
        if resp_src is not None:
            was += sorted(set(range(len(m.responders))) - set(resp_src.tolist()))
        relocate |= any(not isinstance(m.responders[i].start, str) for i in was)
        if resp_dirty and sites is m.sites:
            places = _places(m)
        for j in resp_dirty:
            r = responders[j] = Responder.model_validate(rows[j])
            if r.kind == "fire" and r.hart:
                raise _Reload
            if isinstance(r.start, str):
                if r.start not in places:
                    raise _Reload
            elif geo and getattr(r.start, "node", None) is not None:
                raise _Reload
            else:
                relocate = True
            checks.check_shift(j, r, problems)
        if resp_src is not None:
            responder_index = {r.id: j for j, r in enumerate(responders)}
            if len(responder_index) != len(responders):
                raise _Reload  # a duplicate id

    casualties, cas_src, cas_dirty = m.casualties, None, []
    casualty_index = sc.casualty_index
    rows = new.get("casualties")
    cas_src, cas_dirty = _align(old["casualties"], rows)
    if cas_src is not None or cas_dirty:
        casualties = update["casualties"] = list(casualties) if cas_src is None else \
            [m.casualties[i] if i >= 0 else None for i in cas_src]
        for j in cas_dirty:
            casualties[j] = Casualty.model_validate(rows[j])
        if cas_src is not None:
            casualty_index = {c.id: j for j, c in enumerate(casualties)}
            if len(casualty_index) != len(casualties):
                raise _Reload
    hospital_ids = set(sc.hospital_index)
    site_ids = set(site_index)
    # the other records' checks read the time only through their bounds: unless the time moved
    # beyond one, only the changed records need checking
    bounds, checked = getattr(sc, "_time_bounds", None), cas_dirty
    if moved and bounds is None:
        bounds = _merge((-np.inf, np.inf), m.casualties)
    if bounds is not None:
        bounds = _merge(bounds, [casualties[j] for j in cas_dirty])
    if moved and not (bounds[0] <= time + checks.TOL and bounds[1] >= time - checks.TOL):
        bounds, checked = _merge((-np.inf, np.inf), casualties), range(len(casualties))
    for j in checked:
        checks.check_casualty(j, casualties[j], time, site_ids, hospital_ids, problems)
    _check(problems)

    model = m.model_copy(update=update)
    travel, site_loc, names, key = sc.travel, sc.site_loc, sc.location_names, getattr(sc, "_travel_key", None)
    if relocate:
        travel, site_loc, responder_loc, names, key = _travel(model, sc.base_dir, problems, reuse=sc)
    elif responders is not m.responders:
        responder_loc = _responder_loc(sc, responders, resp_src, resp_dirty)
        reach_sites(travel, site_loc, responder_loc[resp_dirty], names, problems)  # (the others were)
    _check(problems)

    hv = sc.health
    if casualties is not m.casualties:
        hv = hv.copy() if cas_src is None else (hv[np.maximum(cas_src, 0)] if len(hv) else
                                                 np.empty((len(cas_src), 4)))
        for j in cas_dirty:
            hv[j] = health_vector(casualties[j].health)
    P = problem_arrays(sc)
    fields = dict(model=model, health=hv, travel=travel, site_loc=site_loc, responder_loc=responder_loc,
                  location_names=names, site_index=site_index, responder_index=responder_index,
                  casualty_index=casualty_index)
    observed = cas_src is None and not update.keys() - {"casualties"} and all(
        is_known_dead(hv[j]) == is_known_dead(sc.health[j]) and _same_but(casualties[j], m.casualties[j], OBSERVATION)
        for j in cas_dirty)
    if observed:  # a health observation: only health and observation times change
        out = _derive(sc, lambda out: patch_observations(P, out, cas_dirty), **fields)
    else:
        rows = set(cas_dirty)
        if moved:  # an observation time left to default is the scenario's time
            rows |= {j for j, c in enumerate(casualties) if c.observed_at is None}
        out = _derive(sc, lambda out: rebuild_problem(P, out, cas_src, sorted(rows),
                                                      responders=responders is not m.responders or moved
                                                      or relocate,
                                                      hospitals=hospitals is not m.hospitals), **fields)
    object.__setattr__(out, "_travel_key", key)
    object.__setattr__(out, "_time_bounds", bounds)
    return out


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
