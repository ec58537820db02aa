"""Loading a scenario: parse, validate, resolve health and build travel minutes, once.

``load_scenario`` is the only way in. It gathers every problem (field rules from ``model.py``,
cross-references from ``checks.py``, then the network) and raises one ``ScenarioError`` listing
them all; on success the returned ``Scenario`` holds the validated file plus the derived arrays
(health vectors, chains, travel matrix) that ``problem.py`` flattens for the kernels.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from . import checks, health, triage
from .errors import Problem, ScenarioError, json_path
from .model import FORMAT as SCENARIO_FORMAT, MAX_MINUTES, GeoNetwork, ScenarioModel, SieveHealth, StartHealth
from .network import build_graph, geo_travel

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "finite_number": "must be a finite number (NaN and Infinity are not allowed)",
    "too_short": "at least one is needed",
}


@dataclass
class Scenario:
    """A validated incident model with its derived arrays; treat it as read-only.

    Locations (rows and columns of ``travel``) are the hospitals, then the sites, then the
    stations, then responders' own start points, in file order.
    """

    model: ScenarioModel
    base_dir: Path | None
    travel: np.ndarray
    site_loc: np.ndarray
    responder_loc: np.ndarray
    health: np.ndarray
    chains: np.ndarray
    location_names: list[str]
    hospital_index: dict[str, int] = field(default_factory=dict)
    site_index: dict[str, int] = field(default_factory=dict)
    responder_index: dict[str, int] = field(default_factory=dict)
    casualty_index: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def time(self) -> float:
        return self.model.time

    def to_dict(self) -> dict:
        """The scenario file as a JSON-able dict (defaults made explicit).

        Network files are given as absolute paths, so the dict loads the same from anywhere.
        """
        d = self.model.model_dump(mode="json", by_alias=True, exclude_none=True)
        net = d["network"]
        for key in ("nodes_file", "edges_file"):
            if net.get(key) and self.base_dir is not None:
                net[key] = str((self.base_dir / net[key]).resolve())
        return d


def _parse(source: Any) -> tuple[Any, Path | None, str]:
    """Read JSON from a path or take a dict; return (data, base_dir, label)."""
    if isinstance(source, dict):
        return source, None, "scenario"
    if isinstance(source, ScenarioModel):
        return source.model_dump(by_alias=True, exclude_none=True), None, "scenario"
    if not isinstance(source, (str, os.PathLike)):
        raise ScenarioError(Problem("scenario", f"expected a file path or a dict, got {type(source).__name__}"))
    path = Path(source)
    return loads(read_text(path, ScenarioError), str(path), ScenarioError), path.resolve().parent, str(path)


def read_text(path: Path, error: type) -> str:
    """A scenario's or plan's text; a file that cannot be read is one problem naming it. A
    byte-order mark, which some Windows editors write, is read past (RFC 8259 lets a parser
    ignore it); the CSV network files were already read so."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(Problem(str(path), "no such file")) from None
    except UnicodeDecodeError:
        raise error(Problem(str(path), "cannot read: not UTF-8 text")) from None
    except OSError as exc:
        raise error(Problem(str(path), f"cannot read: {exc.strerror or exc}")) from None


class _Twice(dict):
    """A JSON object given some key more than once: ``twice`` names those keys."""

    twice: list[str]


def _object(pairs: list[tuple[str, Any]], repeated: list) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    out = _Twice(obj)
    seen: set[str] = set()
    out.twice = [k for k, _v in pairs if k in seen or seen.add(k)]
    repeated.append(out)
    return out


def _repeated_keys(value: Any, loc: tuple, label: str, out: list[Problem]) -> None:
    if isinstance(value, dict):
        for k in getattr(value, "twice", ()):
            out.append(Problem(f"{label}: {json_path(loc + (k,))}", "the key is given more than once in "
                               "this object; keep the one you mean"))
        for k, v in value.items():
            _repeated_keys(v, loc + (k,), label, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _repeated_keys(v, loc + (i,), label, out)


def loads(text: str, label: str, error: type) -> Any:
    """Parse JSON text; an empty file or a syntax error is one clear problem.

    A key given twice in one object is refused, each such key named by its JSON path: Python's
    reader would silently keep the last value (a hospital's second ``capacity``, say), which
    the person who wrote the file may not have meant.
    """
    if not text.strip():
        raise error(Problem(label, "the file is empty"))
    try:
        repeated: list[_Twice] = []
        data = json.loads(text, object_pairs_hook=lambda pairs: _object(pairs, repeated))
    except json.JSONDecodeError as exc:
        raise error(Problem(label, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")) from None
    except RecursionError:
        raise error(Problem(label, "invalid JSON: nested too deeply")) from None
    except ValueError as exc:  # an integer literal of thousands of digits
        raise error(Problem(label, f"invalid JSON: {exc}")) from None
    if repeated:  # walked only then, to name each repeated key by its path
        problems: list[Problem] = []
        _repeated_keys(data, (), label, problems)
        raise error(problems)
    return data


def checked_format(data: dict, expected: str, error: type) -> tuple[dict, list[Problem]]:
    """``data`` ready to validate against ``expected``, and the problem with its ``format`` if any.

    Another goldenhour format (a plan given as a scenario, a later version) is the one problem
    worth reporting, raised at once: its fields would only add noise. A missing or mistyped
    format is reported together with everything else wrong in the file.
    """
    fmt = data.get("format")
    if fmt == expected:
        return data, []
    problem = Problem("format", f"expected \"{expected}\", got {json.dumps(fmt, default=repr)}")
    if isinstance(fmt, str) and fmt.startswith("goldenhour."):
        kinds = {"goldenhour.scenario/1": "scenario", "goldenhour.plan/1": "plan"}
        if fmt in kinds and expected in kinds:  # two files swapped (``evaluate``): say which is which
            problem = Problem("format", f"{problem.message}: a {kinds[fmt]} file where a {kinds[expected]} "
                                        f"file was expected")
        raise error(problem)
    return {**data, "format": expected}, [problem]


def reported(problem: Problem, paths: set[str]) -> bool:
    """Is ``problem`` about a value already reported (same path, or inside one)?"""
    return any(problem.path == q or problem.path.startswith(q + ".") or problem.path.startswith(q + "[")
               for q in paths)


def pydantic_problems(err: ValidationError, prefix: tuple = ()) -> list[Problem]:
    out = []
    for e in err.errors():
        msg = _MESSAGES.get(e["type"], e["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(Problem(json_path(prefix + tuple(e["loc"])), msg))
    return out


def health_vector(value: Any) -> np.ndarray:
    """A validated health input (vector, category or observations) as a probability vector."""
    if isinstance(value, SieveHealth):
        return health.category_vector(triage.sieve(value.sieve.model_dump()))
    if isinstance(value, StartHealth):
        return health.category_vector(triage.start(value.start.model_dump()))
    if isinstance(value, str):
        return health.category_vector(value)
    return np.asarray(value, dtype=np.float64)


def load_scenario(source: Any, reuse: Scenario | None = None) -> Scenario:
    """Load and validate a scenario from a path, a dict, or a ``ScenarioModel``.

    ``reuse``: a scenario loaded before (the online engine's previous model); when the network
    and every place are the same, its travel matrix is taken as it is, already checked for
    unreachable places, instead of being built again.

    Raises
    ------
    ScenarioError
        With every problem found, each naming its JSON path.
    """
    if isinstance(source, Scenario):
        return source
    data, base_dir, label = _parse(source)
    if not isinstance(data, dict):
        raise ScenarioError(Problem(label, "a scenario is a JSON object"))
    data, wrong_format = checked_format(data, SCENARIO_FORMAT, ScenarioError)
    try:
        model = ScenarioModel.model_validate(data)
    except ValidationError as err:
        # report the cross-reference problems of the parts that did parse, too: all errors at once
        problems = wrong_format + pydantic_problems(err)
        seen = {p.path for p in problems}
        problems += [p for p in checks.check_raw(data) if not reported(p, seen)]
        raise ScenarioError(problems + _network_problems(data, base_dir)) from None
    problems = wrong_format + checks.check(model)
    if problems:
        raise ScenarioError(problems + _network_problems(data, base_dir))
    travel, site_loc, responder_loc, names, key = _travel(model, base_dir, problems, reuse)
    if problems:
        raise ScenarioError(problems)
    hv = np.array([health_vector(c.health) for c in model.casualties], dtype=np.float64).reshape(-1, 4)
    chains = health.resolve_chains(model.chains.model_dump(exclude_none=True), model.treatment_slowdown)
    sc = Scenario(
        model=model, base_dir=base_dir, travel=travel, site_loc=site_loc, responder_loc=responder_loc,
        health=hv, chains=chains, location_names=names,
        hospital_index={h.id: i for i, h in enumerate(model.hospitals)},
        site_index={s.id: i for i, s in enumerate(model.sites)},
        responder_index={r.id: i for i, r in enumerate(model.responders)},
        casualty_index={c.id: i for i, c in enumerate(model.casualties)},
    )
    object.__setattr__(sc, "_travel_key", key)
    return sc


def with_available(sc: Scenario, r: int, available_at: float) -> Scenario:
    """``sc`` with responder ``r`` available from ``available_at`` (a finite number of minutes).

    What ``load_scenario`` would return for the model with that one change, without validating
    and flattening the whole model again: everything else is shared with ``sc``. (Whether the
    team may set off then is the issue's to check: ``Planner.next_task``.)
    """
    from .plan import problem_arrays  # plan imports this module

    responders = list(sc.model.responders)
    responders[r] = responders[r].model_copy(update={"available_at": float(available_at)})
    P = problem_arrays(sc)
    avail = P.resp_avail.copy()
    avail[r] = float(available_at)
    out = _derive(sc, lambda out: P._replace(resp_avail=avail, resp_free=free_from(avail, P.scalars[0])),
                  model=sc.model.model_copy(update={"responders": responders}))
    for name in CASUALTY_FACTS:  # no casualty record and not the time changed
        if hasattr(sc, name):
            object.__setattr__(out, name, getattr(sc, name))
    return out


#: What ``engine.derive`` keeps with a scenario it derives about its casualty records and time
#: (the bounds of their times; who leaves the observation time to default to the scenario's),
#: so that the next move of the clock need not look at every record.
CASUALTY_FACTS = ("_time_bounds", "_unobserved")


def free_from(available_at, time):
    """When a team (or each of an array of teams) available from ``available_at`` can set off
    for a task that is not pinned: not before the scenario's ``time`` (``resp_free``)."""
    return np.maximum(available_at, time)


def _same_but(a, b, fields: tuple[str, ...]) -> bool:
    """Whether two records of one pydantic model differ in nothing but ``fields``."""
    return all(v == b.__dict__[k] for k, v in a.__dict__.items() if k not in fields)


def _derive(sc: Scenario, problem, **fields) -> Scenario:
    """``sc`` with ``fields`` replaced, its travel-matrix key kept (``load_scenario(reuse=)``),
    and its problem arrays ``problem(new scenario)`` cached as ``plan.problem_arrays`` would."""
    out = replace(sc, **fields)
    object.__setattr__(out, "_travel_key", getattr(sc, "_travel_key", None))
    object.__setattr__(out, "_problem", problem(out))
    return out


#: What the travel matrix is built from (``_travel``): the network and every place.
_PLACES = ("format", "time", "network", "hospitals", "sites", "stations", "responders")


def _network_problems(data: dict, base_dir: Path | None) -> list[Problem]:
    """The network's problems (unknown nodes, unreachable places) in a scenario whose other parts
    failed, so that a bad health sum does not hide an unreachable hospital: every error at once,
    across layers too. Only when the network and the places validate and refer to each other
    correctly on their own; else their own problems are what is reported."""
    try:
        model = ScenarioModel.model_validate({k: data[k] for k in _PLACES if k in data} | {"casualties": []})
    except ValidationError:
        return []
    if checks.check(model):
        return []
    problems: list[Problem] = []
    _travel(model, base_dir, problems)
    return problems


def _travel(model: ScenarioModel, base_dir: Path | None, problems: list[Problem], reuse: Scenario | None = None):
    """The travel matrix over all locations, each site's and responder's location index, the
    location names, and the key under which the matrix may be reused (see ``load_scenario``)."""
    places = [("hospitals", p) for p in model.hospitals] + [("sites", p) for p in model.sites] + [
        ("stations", p) for p in model.stations]
    place_loc = {p.id: i for i, (_, p) in enumerate(places)}
    names = [f"{kind[:-1]} '{p.id}'" for kind, p in places]
    points: list[tuple[str, Any]] = [(f"{kind}[{i}]", p) for kind in ("hospitals", "sites", "stations")
                                     for i, p in enumerate(getattr(model, kind))]
    responder_loc = np.empty(len(model.responders), dtype=np.int64)
    for i, r in enumerate(model.responders):
        if isinstance(r.start, str):
            responder_loc[i] = place_loc[r.start]
        else:
            responder_loc[i] = len(points)
            points.append((f"responders[{i}].start", r.start))
            names.append(f"the start of responder '{r.id}'")
    H, S = len(model.hospitals), len(model.sites)
    site_loc = np.arange(H, H + S, dtype=np.int64)
    key = (base_dir, model.network,
           tuple((getattr(p, "lat", None), getattr(p, "lon", None), getattr(p, "node", None)) for _, p in points))
    if reuse is not None and getattr(reuse, "_travel_key", None) == key:
        reach_sites(reuse.travel, site_loc, responder_loc, names, problems)
        return reuse.travel, site_loc, responder_loc, names, key

    if isinstance(model.network, GeoNetwork):
        lat = np.array([p.lat for _, p in points], dtype=np.float64)
        lon = np.array([p.lon for _, p in points], dtype=np.float64)
        travel = geo_travel(lat, lon, model.network.speed_kmh, model.network.detour_factor)
    else:
        graph = build_graph(model.network, base_dir, problems)
        if graph is None:
            return None, site_loc, responder_loc, names, key
        index = graph.index()
        nodes = np.zeros(len(points), dtype=np.int64)
        for j, (path, p) in enumerate(points):
            node = getattr(p, "node", None)
            if node is not None:
                if node not in index:
                    problems.append(Problem(f"{path}.node", f"unknown node '{node}'"))
                else:
                    nodes[j] = index[node]
            else:
                nodes[j] = graph.snap(p.lat, p.lon)
        if problems:
            return None, site_loc, responder_loc, names, key
        travel = graph.travel(nodes)
    reach_sites(travel, site_loc, responder_loc, names, problems)
    _reachability(model, travel, site_loc, names, problems)
    return travel, site_loc, responder_loc, names, key


def reach_sites(travel, site_loc, responder_loc, names, problems) -> None:
    """Every responder start reaches every site. Checked at every load (a few array reads): a
    reused travel matrix was checked from the starts of its own responders only. Starts at a
    hospital or a site (the first locations, ``_travel``) are left to ``_reachability``, which
    checks those places with every matrix."""
    _reach(travel, np.unique(responder_loc[responder_loc > site_loc.max(initial=-1)]), site_loc, names, problems)


def _reachability(model, travel, site_loc, names, problems) -> None:
    """Sites reach each other and every hospital, and back: checked once per travel matrix."""
    hospitals = np.arange(len(model.hospitals))
    _reach(travel, site_loc, np.concatenate([site_loc, hospitals]), names, problems)
    _reach(travel, hospitals, site_loc, names, problems)


def _reach(travel, sources, targets, names, problems) -> None:
    """A problem for each source that has no route to a target, or one longer than any time the
    model holds (``MAX_MINUTES``), in row-major order. (A crawling speed made routes of 1e18
    minutes and more, past the health tables' reach: the kernels read outside them, and a plan
    scored negative expected fatalities.)"""
    if not len(sources):
        return
    minutes = travel[np.ix_(sources, targets)]
    ok = minutes <= MAX_MINUTES  # (false for an infinite one, and a NaN)
    if not ok.all():
        for a, b in zip(*np.nonzero(~ok)):
            x = minutes[a, b]
            what = "no route" if not np.isfinite(x) else f"a route of {x:.3g} minutes (at most {MAX_MINUTES:.0e})"
            problems.append(Problem("network", f"{what} from {names[sources[a]]} to {names[targets[b]]}"))
