"""Plans (SPEC §5): ordered task lists per responder, read, checked, written and flattened.

A ``Plan`` is plain data. ``load_plan`` rejects an invalid plan (one that breaks the task table of
§5) with every problem at once; an *infeasible* plan (a cycle of waits, a shift overrun) is valid
and is scored as infeasible by the evaluator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import StrictBool, ValidationError

from kernels.layout import ACTIVE, IN_TRANSIT, KINDS, RESCUE, TRANSPORT, TREAT

from .errors import PlanError, Problem
from .model import Id, Number, Strict
from .scenario import Scenario, checked_format, loads, pydantic_problems, read_text, reported

PLAN_FORMAT = "goldenhour.plan/1"
TASK_KINDS = ("rescue", "treat", "transport")


class TaskModel(Strict):
    task: Literal["rescue", "treat", "transport"]
    casualty: Id
    hospital: Id | None = None
    pinned: StrictBool = False


class PlanModel(Strict):
    format: Literal["goldenhour.plan/1"]
    scenario: str | None = None
    time: Number | None = None
    routes: dict[str, list[TaskModel]] = {}
    objective: Any = None
    schedule: Any = None


@dataclass(frozen=True)
class Task:
    """One task of a responder's list; ``hospital`` only for a transport."""

    kind: str
    casualty: str
    hospital: str | None = None
    pinned: bool = False

    def to_json(self) -> dict:
        d = {"task": self.kind, "casualty": self.casualty}
        if self.hospital is not None:
            d["hospital"] = self.hospital
        if self.pinned:
            d["pinned"] = True
        return d


@dataclass
class Plan:
    """Each responder's ordered task list (every responder present, possibly empty)."""

    routes: dict[str, list[Task]] = field(default_factory=dict)
    scenario: str = ""
    time: float = 0.0
    #: what ``engine.solve`` found the plan to score and its timetable (SPEC §5), written by
    #: ``to_json``; not part of the plan itself (two plans with the same routes are equal)
    objective: Any = field(default=None, compare=False, repr=False)
    schedule: list | None = field(default=None, compare=False, repr=False)

    def to_json(self, objective=None, schedule=None) -> dict:
        """The plan file of SPEC §5; ``objective`` and ``schedule`` are added when given or known."""
        objective = self.objective if objective is None else objective
        schedule = self.schedule if schedule is None else schedule
        out: dict[str, Any] = {"format": PLAN_FORMAT, "scenario": self.scenario, "time": self.time,
                               "routes": {r: [t.to_json() for t in ts] for r, ts in self.routes.items()}}
        if objective is not None:
            out["objective"] = objective.to_json()
        if schedule is not None:
            out["schedule"] = schedule
        return out

    def to_arrays(self, sc: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(starts, order, hosp, pins)`` as the kernels take them (see ``kernels.layout``)."""
        n_resp, n_cas = len(sc.model.responders), len(sc.model.casualties)
        starts = np.zeros(n_resp + 1, dtype=np.int32)
        order = np.full(KINDS * n_cas, -1, dtype=np.int32)
        hosp = np.full(n_cas, -1, dtype=np.int32)
        pins = np.zeros(n_resp, dtype=np.int32)
        kind_code = {"rescue": RESCUE, "treat": TREAT, "transport": TRANSPORT}
        s = 0
        for r, resp in enumerate(sc.model.responders):
            starts[r] = s
            for task in self.routes.get(resp.id, []):
                c = sc.casualty_index[task.casualty]
                order[s] = KINDS * c + kind_code[task.kind]
                if task.kind == "transport":
                    hosp[c] = sc.hospital_index[task.hospital]
                pins[r] += task.pinned
                s += 1
        starts[n_resp] = s
        return starts, order, hosp, pins

    @classmethod
    def from_arrays(cls, sc: Scenario, starts, order, hosp, pins=None) -> "Plan":
        """The plan a kernel solution describes."""
        routes = {}
        for r, resp in enumerate(sc.model.responders):
            tasks = []
            for i, s in enumerate(range(int(starts[r]), int(starts[r + 1]))):
                tasks.append(task_of(sc, order[s], hosp, pins is not None and i < int(pins[r])))
            routes[resp.id] = tasks
        return cls(routes, sc.model.name, float(sc.model.time))


def task_of(sc: Scenario, code: int, hosp, pinned: bool = False) -> Task:
    """The task a solution array's ``code`` (``3·casualty + kind``) stands for."""
    c, k = divmod(int(code), KINDS)
    hospital = sc.model.hospitals[int(hosp[c])].id if k == TRANSPORT else None
    return Task(TASK_KINDS[k], sc.model.casualties[c].id, hospital, pinned)


def load_plan(sc: Scenario, source: Any) -> Plan:
    """Read a plan file (a path, a dict or a ``Plan``) for scenario ``sc`` and check it (SPEC §5).

    Raises
    ------
    PlanError
        With every problem found, each naming its JSON path.
    """
    if isinstance(source, Plan):
        data = source.to_json()
    elif isinstance(source, dict):
        data = source
    elif not isinstance(source, (str, os.PathLike)):
        raise PlanError(Problem("plan", f"expected a file path, a dict or a Plan, got {type(source).__name__}"))
    else:
        path = Path(source)
        data = loads(read_text(path, PlanError), str(path), PlanError)
    if not isinstance(data, dict):
        raise PlanError(Problem("plan", "a plan is a JSON object"))
    data, wrong_format = checked_format(data, PLAN_FORMAT, PlanError)
    try:
        model = PlanModel.model_validate(data)
    except ValidationError as err:
        problems = wrong_format + pydantic_problems(err)
        routes = data.get("routes")
        if isinstance(routes, dict) and all(isinstance(v, list) for v in routes.values()):
            # the task rules of the parts that did parse too: all errors at once
            seen = {p.path for p in problems}
            clean = {r: [t for t in ts if isinstance(t, dict)] for r, ts in routes.items()}
            try:
                extra = check_plan(sc, clean)
            except Exception:  # best effort: never hide the first report
                extra = []
            problems += [p for p in extra if not reported(p, seen)]
        raise PlanError(problems) from None
    routes = {r.id: [] for r in sc.model.responders}
    for rid, tasks in model.routes.items():
        routes[rid] = [Task(t.task, t.casualty, t.hospital, t.pinned) for t in tasks]
    plan = Plan(routes, sc.model.name, float(sc.model.time))
    problems = wrong_format + check_plan(sc, model.routes)
    if problems:
        raise PlanError(problems)
    return plan


def check_plan(sc: Scenario, routes: dict[str, list]) -> list[Problem]:
    """Every way ``routes`` breaks the task table of SPEC §5 for scenario ``sc``."""
    p = problem_arrays(sc)
    problems: list[Problem] = []
    responders = {r.id: r for r in sc.model.responders}
    seen: dict[tuple[int, str], str] = {}
    for rid, tasks in routes.items():
        base = f"routes.{rid}"
        if rid not in responders:
            problems.append(Problem(base, f"unknown responder '{rid}'"))
            continue
        fire = responders[rid].kind == "fire"
        pinned_run = True
        for i, t in enumerate(tasks):
            path = f"{base}[{i}]"
            kind, cid, hid = _get(t, "task"), _get(t, "casualty"), _get(t, "hospital")
            if _get(t, "pinned"):
                if not pinned_run:
                    problems.append(Problem(f"{path}.pinned", "pinned tasks must come first in a list"))
            else:
                pinned_run = False
            if fire and kind != "rescue":
                problems.append(Problem(f"{path}.task", f"fire team '{rid}' cannot {kind} (fire teams only rescue)"))
            if not fire and kind == "rescue":
                problems.append(Problem(f"{path}.task", f"paramedic team '{rid}' cannot rescue (fire teams rescue)"))
            if kind == "transport":
                if hid is None:
                    problems.append(Problem(path, "a transport needs a 'hospital'"))
                elif hid not in sc.hospital_index:
                    problems.append(Problem(f"{path}.hospital", f"unknown hospital '{hid}'"))
            elif hid is not None:
                problems.append(Problem(f"{path}.hospital", f"only a transport has a hospital, not a {kind}"))
            if cid not in sc.casualty_index:
                problems.append(Problem(f"{path}.casualty", f"unknown casualty '{cid}'"))
                continue
            c = sc.casualty_index[cid]
            if (c, kind) in seen:
                problems.append(Problem(path, f"duplicate {kind} of casualty '{cid}' (also at {seen[c, kind]})"))
            seen[(c, kind)] = path
            if p.status[c] != ACTIVE:
                why = "is known dead" if p.status[c] != IN_TRANSIT else "is already in transit"
                problems.append(Problem(f"{path}.casualty", f"casualty '{cid}' {why} and takes no tasks"))
            elif kind == "rescue" and not p.needs_rescue[c]:
                why = "has a rescue under way" if p.trapped[c] else "is not trapped"
                problems.append(Problem(f"{path}.casualty", f"casualty '{cid}' {why}: no rescue can be planned"))
            elif kind == "treat" and not p.can_treat[c]:
                problems.append(Problem(f"{path}.casualty", f"casualty '{cid}' is treated or under treatment: no treat can be planned"))
    for c, cas in enumerate(sc.model.casualties):
        if p.needs_rescue[c] and (c, "rescue") not in seen:
            problems.append(Problem("routes", f"no rescue task for trapped casualty '{cas.id}'"))
        if p.status[c] == ACTIVE and (c, "transport") not in seen:
            problems.append(Problem("routes", f"no transport task for casualty '{cas.id}'"))
    return problems


def _get(task, key):
    return task.get(key) if isinstance(task, dict) else getattr(task, key, None)


def problem_arrays(sc: Scenario):
    """The scenario's kernel arrays, built on first use and kept with it."""
    cached = getattr(sc, "_problem", None)
    if cached is None:
        from .problem import build_problem

        cached = build_problem(sc)
        object.__setattr__(sc, "_problem", cached)
    return cached
