"""Loading a scenario: parse, validate, resolve health and build travel minutes, once.

``load_scenario`` is the only way in. It gathers every problem (field rules from ``model.py``,
cross-references from ``checks.py``, then the network) and raises one ``ScenarioError`` listing
them all; on success the returned ``Scenario`` holds the validated file plus the derived arrays
(health vectors, chains, travel matrix) that ``problem.py`` flattens for the kernels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from . import checks, health, triage
from .errors import Problem, ScenarioError, json_path
from .model import Casualty, GeoNetwork, Hospital, ScenarioModel, SieveHealth, StartHealth, Time
from .network import build_graph, geo_travel

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "finite_number": "must be a finite number (NaN and Infinity are not allowed)",
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
    """Read JSON from a path, a JSON string or take a dict; return (data, base_dir, label)."""
    if isinstance(source, dict):
        return source, None, "scenario"
    if isinstance(source, ScenarioModel):
        return source.model_dump(by_alias=True, exclude_none=True), None, "scenario"
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(Problem(str(path), "no such file")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(Problem(str(path), f"cannot read: {exc}")) from None
    return loads(text, str(path), ScenarioError), path.resolve().parent, str(path)


def loads(text: str, label: str, error: type) -> Any:
    """Parse JSON text; an empty file or a syntax error is one clear problem."""
    if not text.strip():
        raise error(Problem(label, "the file is empty"))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(Problem(label, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")) from None
    except RecursionError:
        raise error(Problem(label, "invalid JSON: nested too deeply")) from None


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
    if data.get("format") != "goldenhour.scenario/1":
        raise ScenarioError(Problem("format", f"expected \"goldenhour.scenario/1\", got {json.dumps(data.get('format'))}"))
    try:
        model = ScenarioModel.model_validate(data)
    except ValidationError as err:
        # report the cross-reference problems of the parts that did parse, too: all errors at once
        problems = pydantic_problems(err)
        seen = {p.path for p in problems}
        problems += [p for p in checks.check_raw(data) if not reported(p, seen)]
        raise ScenarioError(problems) from None
    problems = checks.check(model)
    if problems:
        raise ScenarioError(problems)
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

    What ``load_scenario`` would return for the model with that one change (or the problem it
    would raise: a shift ending before then), without validating and flattening the whole model
    again: everything else is shared with ``sc``.
    """
    from .plan import problem_arrays  # plan imports this module

    responders = list(sc.model.responders)
    responders[r] = responders[r].model_copy(update={"available_at": float(available_at)})
    problems: list[Problem] = []
    checks.check_shift(r, responders[r], problems)
    if problems:
        raise ScenarioError(problems)
    P = problem_arrays(sc)
    avail = P.resp_avail.copy()
    avail[r] = float(available_at)
    return _derive(sc, lambda out: P._replace(resp_avail=avail, resp_free=np.maximum(avail, P.scalars[0])),
                   model=sc.model.model_copy(update={"responders": responders}))


def with_casualties(sc: Scenario, model: dict, changed: list[int]) -> Scenario:
    """What ``load_scenario(model)`` gives when ``model`` differs from ``sc``'s scenario only in
    the records of casualties ``changed`` (same ids and sites) and perhaps in its time: only
    those records are validated and flattened again (and, if the time moved, what depends on it:
    the time checks of every casualty, defaulted times), the rest is shared with ``sc``. A health
    observation and the clock (which clamps work in progress) are such changes.

    Raises ``ScenarioError`` naming each problem of the changed records, as a reload would.
    """
    from .plan import problem_arrays  # plan imports this module
    from .problem import OBSERVATION, patch_observations, patch_problem, patch_time

    try:
        time = _TIME.validate_python(model.get("time", 0.0))
    except ValidationError:
        return load_scenario(model, reuse=sc)  # raises what a reload raises about a wrong time
    moved = time != sc.model.time
    casualties = list(sc.model.casualties)
    problems: list[Problem] = []
    sites, hospitals = set(sc.site_index), set(sc.hospital_index)
    invalid = set()
    for i in changed:
        try:
            c = Casualty.model_validate(model["casualties"][i])
        except ValidationError as err:
            problems += pydantic_problems(err, ("casualties", i))
            invalid.add(i)
            continue
        if c.id != casualties[i].id or c.site != casualties[i].site:
            raise ValueError("with_casualties changes records, not which casualty is where")
        casualties[i] = c
    for i in range(len(casualties)) if moved else changed:  # every record's times against the new time
        if i not in invalid:
            checks.check_casualty(i, casualties[i], time, sites, hospitals, problems)
    if problems:
        raise ScenarioError(problems)
    hv = sc.health.copy()
    for i in changed:
        hv[i] = health_vector(casualties[i].health)
    P = problem_arrays(sc)
    new_model = sc.model.model_copy(update={"casualties": casualties, "time": time})
    if moved:
        # an observation or availability left to default is the scenario's time
        rows = sorted(set(changed) | {i for i, c in enumerate(casualties) if c.observed_at is None})
        return _derive(sc, lambda out: patch_time(patch_problem(P, out, rows) if rows else P, out),
                       model=new_model, health=hv)
    observed = all(health.is_known_dead(hv[i]) == health.is_known_dead(sc.health[i])
                   and _same_but(casualties[i], sc.model.casualties[i], OBSERVATION) for i in changed)
    patch = patch_observations if observed else patch_problem
    return _derive(sc, lambda out: patch(P, out, changed), model=new_model, health=hv)


def with_hospitals(sc: Scenario, model: dict, changed: list[int]) -> Scenario:
    """What ``load_scenario(model)`` gives when ``model`` differs from ``sc``'s scenario only in
    the beds and overflow risks of hospitals ``changed`` (what a capacity report changes):
    those records are validated again and their two columns rebuilt, the rest is shared."""
    from .plan import problem_arrays  # plan imports this module

    hospitals = list(sc.model.hospitals)
    problems: list[Problem] = []
    for i in changed:
        try:
            h = Hospital.model_validate(model["hospitals"][i])
        except ValidationError as err:
            problems += pydantic_problems(err, ("hospitals", i))
            continue
        if not _same_but(h, hospitals[i], ("capacity", "overflow_risk")):
            raise ValueError("with_hospitals changes beds and risks, not where a hospital is")
        hospitals[i] = h
    if problems:
        raise ScenarioError(problems)
    P = problem_arrays(sc)
    idx = np.asarray(changed, dtype=np.int64)
    cap, risk = P.hosp_cap.copy(), P.hosp_risk.copy()
    default = sc.model.hospital_overflow_risk
    cap[idx] = [hospitals[i].capacity for i in changed]
    risk[idx] = [default if hospitals[i].overflow_risk is None else hospitals[i].overflow_risk for i in changed]
    return _derive(sc, lambda out: P._replace(hosp_cap=cap, hosp_risk=risk),
                   model=sc.model.model_copy(update={"hospitals": hospitals}))


_TIME = TypeAdapter(Time)


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
    # which places responders start from belongs to the key: reachability is checked from them
    key = (base_dir, model.network, tuple(np.unique(responder_loc).tolist()),
           tuple((getattr(p, "lat", None), getattr(p, "lon", None), getattr(p, "node", None)) for _, p in points))
    if reuse is not None and getattr(reuse, "_travel_key", None) == key:
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
    _reachability(model, travel, site_loc, responder_loc, names, problems)
    return travel, site_loc, responder_loc, names, key


def _reachability(model, travel, site_loc, responder_loc, names, problems) -> None:
    """Every responder start reaches every site; sites reach each other and every hospital, and back."""
    H = len(model.hospitals)
    needed = [(int(a), int(s)) for a in np.unique(responder_loc) for s in site_loc]
    needed += [(int(s), int(t)) for s in site_loc for t in list(site_loc) + list(range(H))]
    needed += [(h, int(s)) for h in range(H) for s in site_loc]
    for a, b in needed:
        if not np.isfinite(travel[a, b]):
            problems.append(Problem("network", f"no route from {names[a]} to {names[b]}"))
