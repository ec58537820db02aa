"""The online engine (SPEC §8): a model that changes under a running search.

``Planner`` holds the incident model at its current time, the incumbent plan and a search. The
search runs in chunks, compiled and without the GIL, either in a background thread (``start``) or
synchronously (``step``, for reproducible use). Deltas, issues and snapshots take the planner's
lock (``turns.TurnLock``: issues first, then in the order asked), so each one happens between
two chunks, atomically: it is validated first and either fully applied (model changed,
incumbent repaired, search continued, annealing re-heated) or rejected with ``DeltaError`` and
no change at all. A delta or an issue leaves what it need not do before it answers (a new
search state; an issue, also the scenario with the team's start) to the next holder of the lock,
which does it before anything else (``Planner._settle``; a delta or an issue installs no search
state, so that a stream of them installs one, when the search next takes the lock). The
background search does its work without the lock, on plans nothing else changes (an annealing
chunk on a private copy, a descent or tabu sweep on the search's current plan), and takes the
result over under the lock: as it is if the model did not change meanwhile, re-scored if a
delta only re-scored the plans, else not at all.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, NamedTuple

import numba
import numpy as np
from pydantic import ValidationError

from kernels.alternative import best_other_first
from kernels.layout import CYCLE
from kernels.schedule import SHIFT_TOL
from kernels.search import better, commit, score_serial

from . import construct
from .accept import Outcome
from .algorithms import Annealing, Descent, SearchState, Tabu, assert_mode_default
from .audit import AuditLog
from .checks import check_shift
from .deltas import Clock, actual_time, apply_delta, copy_model, parse_delta
from .derive import derive
from .errors import DeltaError, InputError, PlanError, Problem, ScenarioError
from .objective import Objective
from .observations import History, history_json, load_history
from .plan import Plan, Task, load_plan, problem_arrays, task_of
from .repair import carries_over, carry_over, repair, repair_solution, rescored, same_rules
from .scenario import Scenario, free_from, load_scenario, pydantic_problems, with_available
from .solution import Solution
from .solve import seed_problem
from .turns import TurnLock

#: Online, annealing re-heats at every delta (to ``engine.accept.START_ACCEPT``, as offline) and
#: cools again over this many iterations, then holds its end temperature: a control room needs a
#: good plan within seconds of every change, not the best one in an hour. Deltas are many (every
#: task started or ended, every observation): simulated at 200 and 2 000 iterations a minute, a
#: search cooling over 20 000 never cooled and ended 0.5-3.3 expected fatalities a run behind one
#: cooling over 200 (1 000 was in between, 100 a tie; bench/HISTORY.md, forty-first session). In
#: the field, with thousands of background chunks between two deltas, either is cold nearly always.
ANNEAL_EPOCH = 200
#: Annealing steps per chunk of the background search (about 0.2 ms at paper size), each taken
#: over under the planner's lock; ``step`` uses the planner's ``chunk``.
BACKGROUND_CHUNK = 20
#: A snapshot's observation history, beside its scenario and plan files (``snapshot``).
HISTORY_FILE = "observations.json"
#: How much lower than its callers the background search runs (a nice increment, ``start``).
SEARCH_NICENESS = 10


class _Change(NamedTuple):
    """What a delta changes (``Planner._prepare``), to be committed at once (``_commit``)."""

    model: dict
    pins: dict
    started: dict
    seen: History
    sc: Scenario
    sol: Solution


def _same_plan(a: Solution, b: Solution) -> bool:
    return all(np.array_equal(x, y) for x, y in ((a.starts, b.starts), (a.order, b.order), (a.hosp, b.hosp),
                                                 (a.pins, b.pins)))


def issued(sol: Solution) -> dict[str, list[Task]]:
    """Each team's issued tasks that ``sol`` holds pinned: after a repair, an issued task the
    model no longer allows (its casualty dead or in another team's ambulance, its rescue done
    or under way by another team) is gone from the plan, and so from what the team is told."""
    sc = sol.sc
    return {sc.model.responders[r].id: [task_of(sc, sol.order[s], sol.hosp, True)
                                        for s in range(int(sol.starts[r]), int(sol.starts[r] + sol.pins[r]))]
            for r in np.flatnonzero(sol.pins).tolist()}


#: The records each delta type appends to the model, and how the delta names them.
_ADDED = {"casualties_added": (("casualties", "delta.casualties[{}]"), ("sites", "delta.sites[{}]")),
          "responder_added": (("responders", "delta.responder"),)}


def _set_off_when_issued(model: dict, before: dict, d, issued_at: float | None) -> None:
    """A team issued its next task while at the work ``d`` reports done set off when it was
    told, or when the work ended if that was later: not at the end alone, which a late report
    puts before the issue. Not knowing when it was told (restored from a history that does not
    say), the late report leaves it setting off when the model had it."""
    j = next(j for j, r in enumerate(model["responders"]) if r["id"] == d.responder)
    now, old = model["responders"][j], next(r for r in before["responders"] if r["id"] == d.responder)
    if (now.get("start"), now.get("available_at")) == (old.get("start"), old.get("available_at")):
        return  # the report did not move the team (it had set off for other work)
    if issued_at is not None:
        model["responders"][j] = dict(now, available_at=max(now["available_at"], issued_at))
    elif actual_time(d) < d.time:
        model["responders"][j] = dict(now, available_at=old.get("available_at", now["available_at"]))


def _sent_on(model: dict, before: dict, sc: Scenario, pins: dict, kept: dict) -> dict:
    """``model`` with each team whose issued task the repair dropped (its casualty known dead,
    or in another team's care) free at that task's site when it gets there.

    The team set off for it, and a crew checks on arrival that the work is still its own (as the
    simulator's crews do); the model has no place between two places. Left where it set off, it
    was planned from there, minutes nearer its next work than it can be. A team the delta itself
    moved (a report of its own work) is where the delta put it."""
    P = problem_arrays(sc)
    out = None
    for rid, tasks in pins.items():
        first = kept.get(rid, [None])[0]
        if first is not None and (first.kind, first.casualty) == (tasks[0].kind, tasks[0].casualty):
            continue
        r = sc.responder_index[rid]
        team, was = model["responders"][r], before["responders"][r]
        if (team.get("start"), team.get("available_at")) != (was.get("start"), was.get("available_at")):
            continue
        c = sc.casualty_index[tasks[0].casualty]
        if out is None:
            out = dict(model, responders=list(model["responders"]))
        out["responders"][r] = dict(team, start=model["casualties"][c]["site"],
                                    available_at=float(P.resp_avail[r] + P.travel[P.resp_loc[r], P.site_loc[c]]))
    return model if out is None else out


def _delta_path(path: str, d, before: dict) -> str:
    """Where a problem of the changed model lies for the sender: a record the delta added by its
    place in the delta (the model's index, ``casualties[4]``, is one the sender cannot know),
    anything else by its place in the model."""
    for key, name in _ADDED.get(d.type, ()):
        m = re.fullmatch(rf"{key}\[(\d+)\](.*)", path)
        if m and int(m[1]) >= len(before[key]):
            return name.format(int(m[1]) - len(before[key])) + m[2]
    return f"delta -> {path}"


def _ends_after_shift(sc: Scenario, sol: Solution, r: int) -> bool:
    """Whether team ``r``'s first task in ``sol`` (timed as it would be issued) ends after its
    shift: it is not issued then (the plan would be infeasible for good, SPEC §6), and the team
    is told to wait while the search gives the task to another."""
    shift_end = sc.model.responders[r].shift_end
    if shift_end is None or int(sol.cur[3]) == CYCLE:  # in a cycle of waits nothing is timed
        return False
    return bool(sol.W.end[sol.starts[r]] > shift_end + SHIFT_TOL)


def _lower_priority(niceness: int) -> None:
    """Lower the calling thread's scheduling priority by ``niceness``, where threads have their
    own (Linux); elsewhere that would lower the whole process, so nothing is done."""
    if sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
        except OSError:  # not allowed: the search competes with its callers as an equal
            pass


def _staging(path: Path) -> Path:
    """Where ``path`` is written before it is put in place (``os.replace``, within one folder)."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def require_teams(sc: Scenario, error: type, checked: Scenario | None = None) -> None:
    """A valid plan needs a fire team if anyone waits for a rescue, a paramedic team if anyone
    waits for transport: without one, no plan can be kept valid. Nothing to check if ``sc``
    shares the columns read with ``checked``, a scenario that passed (an observation, the clock)."""
    P = problem_arrays(sc)
    if checked is not None:
        Q = problem_arrays(checked)
        if P.needs_rescue is Q.needs_rescue and P.status is Q.status and P.resp_fire is Q.resp_fire:
            return
    problems = []
    if P.needs_rescue.any() and not P.resp_fire.any():
        problems.append(Problem("responders", "trapped casualties wait for a rescue but no fire team is left"))
    if (P.status == 0).any() and P.resp_fire.all():
        problems.append(Problem("responders", "casualties wait for transport but no paramedic team is left"))
    if problems:
        raise error(problems)


class Planner:
    """Online planning over one incident (see the module docstring and SPEC §8, §11).

    ``issue_better``: an issue sends the team where a better plan than the incumbent sends it,
    when sending it to another task first is one (``_first_choice``); ``False`` carries the
    incumbent out as it stands.

    Callbacks, each called in the thread that caused it: ``on_best(plan, objective)`` whenever
    the incumbent changes (the search finds a better plan, between two of its chunks and holding
    the planner's lock, so keep it short; a delta is applied, which changes the model and so the
    plan and its score; a task is issued, which pins it, or issues a better plan than the
    incumbent), ``on_delta(delta)`` after each accepted delta, and ``on_issue(record)`` after
    each issue, with its audit record; those two, and ``on_best`` for a delta or an issue, once
    the lock is released. A delta's or an issue's ``on_best`` may so arrive after one the search
    made since: ``best()`` is always the latest.
    """

    def __init__(self, scenario, algorithm: str = "annealing", seed: int = 0, audit=None,
                 chunk: int | None = None, plan=None, assert_moves: bool | None = None,
                 on_best: Callable | None = None, on_delta: Callable | None = None,
                 on_issue: Callable | None = None, issue_better: bool = True):
        if algorithm not in ("descent", "tabu", "annealing"):
            raise ValueError(f"unknown algorithm '{algorithm}'; expected descent, tabu or annealing")
        if (problem := seed_problem(seed)) is not None:
            raise InputError(problem)
        model = load_scenario(scenario).to_dict()
        for cas in model["casualties"]:  # explicit, so that moving the clock cannot change them
            cas.setdefault("observed_at", float(model.get("time", 0.0)))
        for resp in model["responders"]:
            resp.setdefault("available_at", float(model.get("time", 0.0)))
        sc = load_scenario(model)  # our own copy: the caller's scenario is never changed
        require_teams(sc, ScenarioError)
        self.algorithm, self.seed = algorithm, int(seed)
        self.on_best, self.on_delta, self.on_issue = on_best, on_delta, on_issue
        self.issue_better = issue_better  # see _first_choice
        self._assert = assert_mode_default() if assert_moves is None else assert_moves
        self._chunk = chunk or (200 if algorithm == "annealing" else 1)
        self._lock = TurnLock()  # the model, the search state and the pins (issues first, then in turn)
        self._searching = threading.Lock()  # the search state's current plan (see _sweep_step)
        self._best_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = threading.Lock()  # start and stop, from any thread, one at a time
        self._idle = False
        self._audit = audit if isinstance(audit, AuditLog) or audit is None else AuditLog(audit)
        self._unlogged: dict[str, tuple[Task, dict]] = {}  # issues whose record the disk refused, by team
        self._model = model
        self._pins: dict[str, list[Task]] = {}
        # (task, casualty id) -> (start, team) for the work reported started and not done;
        # ("latest", team) -> (start, (task, casualty id)): the work the team started last
        self._started: dict[tuple[str, str], tuple] = {}
        self._issued_at: dict[str, float] = {}  # when each team was last issued a task (``_issue``)
        self._seen: History = {}  # observation histories (engine.observations)
        self._unsettled: tuple | None = None  # what the next holder of the lock installs (``_settle``)
        # the unsettled incumbent is a delta's own, shared with no search state (``_apply_locked``)
        self._own_incumbent = False
        self._alg = None
        if plan is not None:
            loaded = load_plan(sc, plan)
            pins = {r: [t for t in ts if t.pinned] for r, ts in loaded.routes.items() if any(t.pinned for t in ts)}
            sol = repair(sc, loaded, pins)
            self._pins = issued(sol)
        else:
            sol = construct.greedy(sc) if len(sc.model.casualties) <= 2000 else construct.rule(sc)
        self._install(sc, sol)
        if sc.model.responders:  # load the issue's and the repair's kernels now: 50 ms each at first use
            self._first_choice(sol, 0)
            none = np.empty((0, 4), np.int64)
            score_serial(problem_arrays(sc), sol.starts, sol.order, sol.hosp, sol.pins, sol.copy().W, sol.cur, none, 0,
                         np.empty(0), np.empty(0), np.empty(0, np.int64))

    # -- model and search state ----------------------------------------------------------------

    def _install(self, sc: Scenario, sol: Solution, publish: bool = True) -> None:
        self._sc, self._unsettled, self._own_incumbent = sc, None, False
        # a best plan is never changed in place, only replaced: ``sol`` may share its arrays with
        # the best plan it came from (``_settle``); the search changes only its own copy
        self._state = SearchState(sol.copy(), sol, assert_moves=self._assert)
        if self.algorithm == "annealing":
            if self._alg is None:
                self._alg = Annealing(seed=self.seed)
            else:  # the search carries on, re-heated; its random stream continues
                self._alg.reheat(int(sol.starts[-1]))
        else:
            self._alg = Descent() if self.algorithm == "descent" else Tabu()
        self._anneal_it = 0
        self._idle = False
        if publish:
            self._publish()

    @contextmanager
    def _turn(self, urgent: bool = False, install: bool = True):
        """Hold the planner's lock (an issue ``urgent``ly), having first settled what the last
        deltas and issue left unsettled (``_settle``): installed in a search state, or with
        ``install`` false (a delta, an issue: they work from the incumbent) only made whole."""
        with self._lock.hold(urgent):
            self._settle(install)
            yield

    def _settle(self, install: bool = True) -> None:
        """Finish what the last deltas and issue left to the next holder of the lock: the
        incumbent they answered from, published but not installed in a search state (a delta's
        result, an issue's clock; ``_apply_locked``). An issue left its pin too (``_issue``):
        the team's first task pinned and its start time in the scenario, the pinned plan scored
        as the incumbent was (that is what let it wait). With ``install``, the search state
        follows; without, a delta or an issue works from the incumbent and leaves it unsettled
        in turn, so that a stream of them installs once, when the search next takes the lock."""
        if self._unsettled is None:
            return
        sc, sol, pin = self._unsettled
        if pin is not None:
            r, avail = pin
            sc = with_available(sc, r, avail)  # its shift was checked by the issue
            pins = sol.pins.copy()
            pins[r] = 1
            sol = replace(sol, sc=sc, pins=pins)
            self._sc, self._unsettled = sc, (sc, sol, None)
        if install:  # (published already, by the delta or the issue that left it)
            self._install(sc, sol, publish=False)

    def _incumbent(self) -> Solution:
        """The best plan: the search state's, or the one the next holder of the lock installs."""
        return self._state.best if self._unsettled is None else self._unsettled[1]

    def _publish(self, best: Solution | None = None) -> None:
        # a copy of the arrays now; the Plan is built only when someone asks (``best``)
        best = self._state.best if best is None else best
        raw = (best.sc, best.starts.copy(), best.order.copy(), best.hosp.copy(), best.pins.copy(), best.objective)
        with self._best_lock:
            self._best_raw, self._best = raw, None

    @property
    def time(self) -> float:
        """The model's current time (minutes)."""
        return float(self._model.get("time", 0.0))

    @property
    def scenario(self) -> Scenario:
        """The scenario of the model now, which the incumbent is scored on."""
        with self._turn():
            return self._sc

    def best(self) -> tuple[Plan, Objective]:
        """The incumbent plan and its objective; safe to call from any thread at any time."""
        with self._best_lock:
            if self._best is None:
                sc, starts, order, hosp, pins, objective = self._best_raw
                self._best = (Plan.from_arrays(sc, starts, order, hosp, pins), objective)
            return self._best

    # -- search ---------------------------------------------------------------------------------

    def _run_chunk(self, n: int | None = None) -> None:
        state = self._state
        if self.algorithm == "annealing":
            n = n or self._chunk
            f0 = min(1.0, self._anneal_it / ANNEAL_EPOCH)
            f1 = min(1.0, (self._anneal_it + n) / ANNEAL_EPOCH)
            outcome, _ = self._alg.run(state, n, f0, max(f1, f0 + 1e-9))
            self._anneal_it += n
        else:
            if self._idle:
                return
            outcome, finished = self._alg.run(state, self._chunk)
            self._idle = finished and self.algorithm == "descent"
        self._searched(outcome)

    def _searched(self, outcome: Outcome) -> None:
        if outcome == Outcome.BEST:
            self._publish()
            self._announce()

    def _announce(self) -> None:
        """``on_best`` with the incumbent just published (see the class docstring for which
        thread calls it, and under which lock)."""
        if self.on_best:
            plan, objective = self.best()
            self.on_best(plan, objective)

    def _anneal_step(self, n: int) -> None:
        """One annealing chunk of the background search, run without the planner's lock on a
        private copy of the search state (deltas and issues read its best plan meanwhile), and
        taken over under the lock unless a delta or an issue changed the model meanwhile."""
        with self._turn():
            state, pins = self._state, self._pins
            f0 = min(1.0, self._anneal_it / ANNEAL_EPOCH)
            f1 = min(1.0, (self._anneal_it + n) / ANNEAL_EPOCH)
            work = replace(state, current=state.current.copy(), best=state.best.copy())
        outcome, _ = self._alg.run(work, n, f0, max(f1, f0 + 1e-9))
        with self._turn():
            if state is not self._state:
                self._carry_chunk(work, pins)
                return
            state.current, state.best = work.current, work.best
            state.iterations, state.evaluations = work.iterations, work.evaluations
            state.neigh, state.hosp_neigh = work.neigh, work.hosp_neigh
            self._anneal_it += n
            self._searched(outcome)

    def _carry_chunk(self, work: SearchState, pins: dict) -> None:
        """An annealing chunk overtaken by deltas that only re-scored the plans (same pins, every
        task still valid: ``carry_over``) is carried over to the new model: its current plan
        becomes the search's, its best one the incumbent if better there. Under a stream of
        health observations most chunks are overtaken; without this the search would stall."""
        state = self._state
        if pins != self._pins:
            return  # an issue or a started task: the chunk's plans lack that change
        # the chunk's plans are its own copies: re-scored in place
        current = carry_over(self._sc, work.current, in_place=True)
        best = carry_over(self._sc, work.best, in_place=True)
        if current is None or best is None:
            return  # the model changed what the plans must hold
        state.current = current
        b, c = state.best.cur, best.cur
        if better(c[0], c[2], int(c[3]), b[0], b[2], int(b[3])):
            state.best = best
            self._searched(Outcome.BEST)

    def _sweep_step(self) -> bool:
        """One descent or tabu iteration of the background search; returns whether it is idle.

        Its sweep (tens of milliseconds at paper size) runs without the planner's lock, so that
        deltas and issues need not wait for it: it reads only the search state's current plan,
        which nothing but the search changes (a delta or an issue leaves a new state instead).
        The chosen move is applied under the lock: to that state if it is still the planner's,
        else to the new one if its plan has the same arrays (a delta that only re-scored it),
        the new model allows the same tasks (else the move may plan one it forbids: a treatment
        another team reported starting meanwhile) and the move, scored again under the new
        model, is still one the algorithm takes. Under a stream of deltas, every sweep is
        overtaken by one; without this the search would stop.
        """
        with self._turn():
            if self._idle:
                return True
            state, alg = self._state, self._alg
        proposal = alg.propose(state)
        with self._turn():
            if state is not self._state or alg is not self._alg:
                if (proposal is None or not _same_plan(state.current, self._state.current)
                        or not same_rules(self._state.current.sc, state.current.sc)):
                    return False  # the swept plan is gone, or the model forbids what it may do
                state, alg = self._state, self._alg
                proposal = alg.reconsider(state, proposal)
                if proposal is None:
                    return False
            if proposal is None:
                self._idle = self.algorithm == "descent"
                return self._idle
            self._searched(alg.accept(state, proposal))
            return False

    def step(self, iterations: int) -> None:
        """Run the search for ``iterations`` iterations now, in this thread (reproducible)."""
        done = 0
        while done < iterations:
            with self._searching, self._turn():
                if self.algorithm == "annealing":
                    n = min(self._chunk, iterations - done)
                    self._run_chunk(n)
                    done += n
                else:
                    self._run_chunk()
                    done += 1
                    if self._idle:
                        break

    def start(self) -> None:
        """Search in a background thread until ``stop``; the kernels release the GIL meanwhile."""
        with self._running:
            if self._thread is not None:
                return
            self._stop.clear()
            thread = threading.Thread(target=self._loop, name="goldenhour-search", daemon=True)
            thread.start()
            self._thread = thread

    def _loop(self) -> None:
        n = min(self._chunk, BACKGROUND_CHUNK) if self.algorithm == "annealing" else None
        # this thread's sweeps leave one core to the callers: with every core sweeping, an issue
        # waited for the scheduler (p99 4.4 ms under load at paper size, against 1 ms)
        numba.set_num_threads(max(1, numba.config.NUMBA_NUM_THREADS - 1))
        # and it gives way to them at once: on two cores, the search, a stream of deltas and an
        # issue make three threads that want one, and the scheduler let the search run on for
        # its time slice while a delta or an issue holding the planner's lock waited (holds of
        # 3-5 ms, a p99 of 1.1-2.7 ms for an issue under load as the clock moves, with tabu)
        _lower_priority(SEARCH_NICENESS)
        while not self._stop.is_set():
            with self._searching:
                if self.algorithm == "annealing":
                    self._anneal_step(n)
                    idle = False
                else:
                    idle = self._sweep_step()
            time.sleep(0.01 if idle else 0)

    def stop(self) -> None:
        """End the background search cleanly (the incumbent is kept)."""
        with self._running:
            if self._thread is None:
                return
            self._stop.set()
            self._thread.join()
            self._thread = None

    # -- deltas ---------------------------------------------------------------------------------

    def _duration_of(self, kind: str, casualty: str) -> float:
        c = self._sc.casualty_index[casualty]
        P = problem_arrays(self._sc)
        return float(P.rescue_dur[c] if kind == "rescue" else P.treat_dur[c])

    def apply(self, delta) -> None:
        """Validate and apply one delta (object or JSON dict), between two search chunks.

        Raises ``DeltaError`` (and changes nothing) if the delta is wrong.
        """
        with self._turn(install=False):
            self._apply_locked(delta)
        self._announce()
        if self.on_delta:
            self.on_delta(delta)

    def check(self, delta) -> None:
        """Raise ``DeltaError`` if ``apply(delta)`` would now; change nothing either way. A caller
        can vet a delta before it spends search time on the minutes leading up to it
        (``goldenhour replay``)."""
        with self._turn(install=False):
            self._prepare(delta, dry_run=True)

    def _apply_locked(self, delta) -> None:
        """Apply ``delta``. The new incumbent is published at once but installed in a search
        state only when the search next takes the lock (``_settle``): a stream of deltas, or an
        issue's clock and its pin, install once (a search state is a copy of the plan, its
        workspace included: a fifth of a health observation's time)."""
        self._commit(self._prepare(delta))

    def _prepare(self, delta, dry_run: bool = False, vet=None) -> "_Change":
        """Everything ``delta`` changes, computed and checked, nothing changed yet; with
        ``dry_run`` (``check``), not even the incumbent a delta may re-score in place.

        ``vet``, if given, is called with the change before the incumbent is re-scored in place,
        its plan's lists final but not yet scored, and may raise to refuse it: a refusal after
        the re-score would leave the incumbent scored under a model that never came to be
        (``next_task``'s shift check)."""
        d = parse_delta(delta)
        seen = dict(self._seen)
        model = apply_delta(self._sc, self._model, d, self._duration_of, self._started, seen)
        if d.type == "task_completed" and self._pins.get(d.responder):
            _set_off_when_issued(model, self._model, d, self._issued_at.get(d.responder))
        try:
            sc = derive(self._sc, self._model, model)
        except ScenarioError as err:
            raise DeltaError([Problem(_delta_path(p.path, d, self._model), p.message) for p in err.problems]) from None
        require_teams(sc, DeltaError, checked=self._sc)
        started = dict(self._started)
        if d.type == "task_started":
            at, latest = actual_time(d), ("latest", d.responder)
            started[(d.task, d.casualty)] = (at, d.responder)
            if latest not in started or at >= started[latest][0] - 1e-9:
                started[latest] = (at, (d.task, d.casualty))
        elif d.type == "task_completed":
            started.pop((d.task, d.casualty), None)
        pins = {r: list(ts) for r, ts in self._pins.items()}
        if d.type == "task_started" and pins.get(d.responder):
            first = pins[d.responder][0]
            if first.kind == d.task and first.casualty == d.casualty:
                pins[d.responder] = pins[d.responder][1:]
            else:  # the team is doing something else: what it was issued goes back to the plan
                pins[d.responder] = []
        if d.type == "responder_unavailable":
            pins.pop(d.responder, None)
        pins = {r: ts for r, ts in pins.items() if ts}
        # the last delta's incumbent, if no search state or issue shares it, is re-scored in
        # place: its copy was a tenth of an observation's time, in a stream of them
        in_place = self._own_incumbent and not dry_run
        inc = self._incumbent()
        if pins == self._pins and carries_over(sc, inc):
            if vet is not None:
                vet(_Change(model, pins, started, seen, sc, inc))
            return _Change(model, pins, started, seen, sc, rescored(sc, inc, in_place))
        sol = repair_solution(sc, inc, pins)  # a new solution: the incumbent stays as it was
        kept = issued(sol)
        sent = _sent_on(model, self._model, sc, pins, kept)
        if sent is not model:  # rare: planned again from where the teams will be
            try:
                sc = derive(sc, model, sent)
            except ScenarioError as err:
                raise DeltaError([Problem(_delta_path(p.path, d, self._model), p.message)
                                  for p in err.problems]) from None
            model, sol = sent, repair_solution(sc, inc, kept)
        change = _Change(model, kept, started, seen, sc, sol)
        if vet is not None:
            vet(change)
        return change

    def _commit(self, change: "_Change") -> None:
        model, pins, started, seen, sc, sol = change
        self._model, self._pins, self._started, self._seen = model, pins, started, seen
        self._sc, self._unsettled, self._own_incumbent = sc, (sc, sol, None), True
        if self.algorithm == "annealing":
            self._alg.reheat(int(sol.starts[-1]))  # at every delta, as an install would
        self._publish(sol)

    # -- issuing --------------------------------------------------------------------------------

    def next_task(self, responder: str, now: float) -> Task | None:
        """Issue ``responder`` its next task: the first of its list in the best plan, now pinned.

        ``None`` means wait: the team has nothing planned, or its first task would end after its
        shift. Asking again before the issued task is reported started returns the same task.
        Each issue is appended to the audit log before this returns.
        """
        try:
            finite = not isinstance(now, (bool, np.bool_)) and isinstance(now, numbers.Real) and math.isfinite(now)
        except OverflowError:  # an int too large for a float
            finite = False
        if not finite:
            raise DeltaError(Problem("now", f"must be a finite number of minutes, got {now!r}"))
        now = float(now)
        moved = None
        with self._turn(urgent=True, install=False):
            if responder not in self._sc.responder_index:
                raise DeltaError(Problem("responder", f"unknown responder '{responder}'"))
            if now > self.time:
                try:
                    clock = Clock(type="clock", time=now)  # within the bounds of any delta's time
                except ValidationError as err:
                    raise DeltaError([Problem("now", p.message) for p in pydantic_problems(err)]) from None
                # refused, if it is, before the clock moves or the incumbent is re-scored under it:
                # nothing half-done
                moved = self._prepare(clock, vet=lambda change: self._refuse_after_shift(responder, now, change))
                self._commit(moved)
            elif now < self.time - 1e-9:
                raise DeltaError(Problem("now", f"{now} is before the model's time {self.time}"))
            if self._pins.get(responder):
                pinned, issued = self._pins[responder][0], self._unlogged.pop(responder, None)
                if issued is not None and (issued[1]["task"], issued[1]["casualty"]) != (pinned.kind, pinned.casualty):
                    issued = None  # that issue's task is gone from the plan: not told now
            else:
                pinned, issued = None, self._issue(responder, now)
        if pinned is not None and issued is not None:  # told only once its record is on disk
            self._log(responder, *issued)
            if self.on_issue:
                self.on_issue(issued[1])
        if pinned is not None or issued is None:
            if moved is not None:  # the clock moved: the incumbent is re-scored
                self._announce()
            return pinned
        # the wait for the disk is outside the planner's lock, so that the search and the
        # deltas go on meanwhile; the task is returned once its record is on disk. (Scoring the
        # alternative outside the lock too let twice as many deltas land under load, but the
        # issue then competed with them for the cores: its p99 doubled; see the README.)
        task, record = issued
        self._log(responder, task, record)
        self._announce()  # the plan with the task pinned (or the better one issued)
        if self.on_issue:
            self.on_issue(record)
        return task

    def _log(self, rid: str, task: Task, record: dict) -> None:
        """Write an issue's audit record. If the disk refuses it, the error is raised and the
        team is not told the task, which stays pinned; it is written when the team asks again,
        and only then told: no task is handed out that the log lacks."""
        if self._audit is None:
            return
        try:
            self._audit.write(record)
        except OSError:
            self._unlogged[rid] = (task, record)
            raise

    def _refuse_after_shift(self, rid: str, now: float, moved: "_Change") -> None:
        """Raise what ``_issue`` would raise, once the clock has ``moved`` to ``now``, for a team
        with work to do whose shift ends before it sets off. Its start is read from the moved
        model: work it is at that was due to end before ``now`` ends at ``now`` at the earliest
        (``deltas.advance``)."""
        r = moved.sc.responder_index[rid]
        if moved.pins.get(rid) or moved.sol.starts[r + 1] == moved.sol.starts[r]:
            return
        avail = moved.model["responders"][r].get("available_at")
        self._refuse_shift_end(r, float(now) if avail is None else max(float(now), float(avail)))

    def _refuse_shift_end(self, r: int, avail: float) -> None:
        """Raise ``DeltaError`` if team ``r``'s shift ends before ``avail``: it is not sent off
        after its shift (``checks.check_shift``)."""
        resp = self._sc.model.responders[r]
        if resp.shift_end is None:
            return
        problems: list[Problem] = []
        check_shift(r, resp.model_copy(update={"available_at": avail}), problems)
        if problems:
            raise DeltaError([Problem(f"now -> {p.path}", p.message) for p in problems])

    def _issue(self, rid: str, now: float) -> tuple[Task, dict] | None:
        """Pin ``rid``'s first task; returns it and its audit record.

        The team sets off now (or when its current work ends): a pinned first task starts from
        ``available_at`` (SPEC §6), the one number of the model that changes. An evaluation reads
        it, for team ``r``, from ``resp_avail[r]`` if ``r``'s first task is pinned, else from
        ``resp_free[r]`` (``kernels.layout``). Usually (a team asking at the model's time) neither
        number an evaluation of the plan reads changes, so the incumbent's scores stand as they
        are: the alternative is scored against it at once, and the new scenario and search state
        (45 of the issue's 150 µs on a warm machine, 240 of 570 µs after an idle moment, when
        memory is cold) are left to the next holders of the lock (``_settle``), off the crew's
        clock: the scenario to the next (the search within a fraction of a millisecond, a delta,
        or the next issue), the search state to the search. Until then the pin is in ``_pins``,
        the model and the published plan, which is all anyone reads without the lock. A clock
        the issue moved first (``next_task``) waits with it: the two are installed once. A
        better plan the alternative found (``_first_choice``) is issued the same way.
        """
        sc, best = self._sc, self._incumbent()
        r = sc.responder_index[rid]
        if best.starts[r + 1] == best.starts[r]:
            return None
        model = dict(self._model)  # records are replaced, never edited (apply_delta): share the rest
        model["responders"] = list(model["responders"])
        resp = model["responders"][r] = dict(model["responders"][r])
        avail = resp["available_at"] = max(float(now), float(resp.get("available_at", now)))
        self._refuse_shift_end(r, avail)  # e.g. its shift is over: nothing is issued
        # where an evaluation of the plan reads the team's start: the same after the issue as
        # before, and the same once its first task is pinned (read from resp_avail then)?
        P, pinned = problem_arrays(sc), bool(best.pins[r])
        read = avail if pinned else free_from(avail, P.scalars[0])
        same_start = read == (P.resp_avail[r] if pinned else P.resp_free[r]) and read == avail
        if not same_start:  # the team's start moves: the plans are scored under the new scenario
            sc = with_available(sc, r, avail)
            best = Solution.from_arrays(sc, best.starts, best.order, best.hosp, best.pins)
        sol, alternative = self._first_choice(best, r)
        if sol is not best and _ends_after_shift(sc, sol, r):  # a better plan, but not one to send it on
            sol, alternative = best, float(sol.cur[0])  # (the one case its log shows a better plan)
        if same_start:  # the plan issued is scored as it will be pinned: the pin waits too
            if _ends_after_shift(sc, sol, r):
                return None
            self._unsettled = (sc, sol, (r, avail))
            self._publish_pin(r, None if sol is best else sol)
        else:
            pins = sol.pins.copy()
            pins[r] = 1
            sol = Solution.from_arrays(sc, sol.starts, sol.order, sol.hosp, pins)
            if _ends_after_shift(sc, sol, r):
                return None
            self._install(sc, sol)
        task = task_of(sc, sol.order[sol.starts[r]], sol.hosp, True)
        self._model = model
        self._pins = {**self._pins, rid: [task]}  # a new dict: a chunk in flight compares them
        self._issued_at = {**self._issued_at, rid: float(now)}
        record = {"time": float(now), "responder": rid, "task": task.kind, "casualty": task.casualty,
                  "hospital": task.hospital, "objective": sol.objective.expected_fatalities,
                  "alternative_objective": alternative}
        return task, record

    def _publish_pin(self, r: int, sol: Solution | None = None) -> None:
        """The published incumbent, or ``sol`` (a better plan an issue found), with team ``r``'s
        first task pinned (``_issue``)."""
        raw = None if sol is None else (sol.sc, sol.starts.copy(), sol.order.copy(), sol.hosp.copy(), sol.pins,
                                        sol.objective)
        with self._best_lock:  # at once: no reader sees the plan without its pin
            sc, starts, order, hosp, pins, objective = self._best_raw if raw is None else raw
            pins = pins.copy()
            pins[r] = 1
            self._best_raw, self._best = (sc, starts, order, hosp, pins, objective), None

    def _first_choice(self, sol: Solution, r: int) -> tuple[Solution, float | None]:
        """``sol``, or the better plan in which team ``r`` starts with another task; and the
        expected fatalities had ``r`` been sent elsewhere first instead (the audit's alternative).

        The alternative is a plan too (``kernels.alternative``), and it can be better than the
        incumbent: one the search has not improved since the clock moved or news came in (in
        421 of 799 issues of a tabu planner under deltas, the logged alternative was lower than
        the logged objective). Then that plan is issued, and becomes the incumbent. The
        alternative logged is the best plan scored that starts the team with another task than
        the one issued: the best of the front moves when the incumbent's first task is issued;
        when the better plan's is, the better of the incumbent and the best front move that
        starts the team with yet another task. So it is not better than the objective logged
        (``_issue`` keeps the incumbent if the better plan's first task would end after the
        team's shift, and logs that plan).
        A planner made with ``issue_better=False`` always issues the incumbent's first task (a
        plan to be carried out as it stands, such as one approved by hand).
        """
        move, second = np.empty(4, np.int64), np.empty(3)
        F, T, status = best_other_first(problem_arrays(sol.sc), sol.starts, sol.order, sol.hosp, sol.pins, sol.W,
                                        sol.cur, r, move, second)
        if status < 0 or math.isnan(F):  # nothing else to do, or only cycles of waits
            return sol, None
        c = sol.cur
        if not self.issue_better or not better(F, T, int(status), c[0], c[2], int(c[3])):
            return sol, float(F)
        issued = sol.copy()  # a best plan is never changed in place (``_install``)
        cs, co, ch = np.empty_like(sol.starts), np.empty_like(sol.order), np.empty_like(sol.hosp)
        issued.cur[:] = commit(problem_arrays(sol.sc), *(int(x) for x in move), issued.starts, issued.order,
                               issued.hosp, issued.pins, issued.W, cs, co, ch)
        runner_up = second[2] >= 0 and better(second[0], second[1], int(second[2]), c[0], c[2], int(c[3]))
        alternative = second[0] if runner_up else c[0]
        return issued, None if math.isnan(alternative) else float(alternative)

    # -- snapshots ------------------------------------------------------------------------------

    def snapshot(self, directory) -> tuple[Path, Path]:
        """Write ``scenario.json`` (the model now, work in progress as facts) and ``plan.json``
        (the incumbent, issued tasks pinned) into ``directory``; returns both paths.

        Beside them, ``observations.json`` keeps when each casualty was last observed and what
        its health has been carried over since (``engine.observations``), which no scenario
        file can say: ``restore`` reads it, so that a report reaching the restored planner late
        counts from when it was made, as it would have in this one. A road network read from
        files is copied in too (``network-nodes.*``, ``network-edges.*``, named relatively in
        ``scenario.json``), so the snapshot can be moved or sent as a whole.
        """
        from .evaluate import evaluate_detail, schedule_records

        with self._turn():
            model = copy_model(self._model)
            plan = self._state.best.to_plan()
            sc = self._sc
            history = history_json(self._seen, self._started, self._issued_at)
        out = Path(directory)
        scenario_path, plan_path = out / "scenario.json", out / "plan.json"
        obj, W, arrays = evaluate_detail(sc, plan)
        files = ((scenario_path, model), (plan_path, plan.to_json(obj, schedule_records(sc, W, arrays))),
                 (out / HISTORY_FILE, history))
        # every file is written in full beside its place first, and only then put in place: a
        # snapshot refused half-way (a full disk) or cut short leaves the last one as it was,
        # never a scenario of one snapshot beside the plan of another
        staged: list[tuple[Path, Path]] = []
        try:
            out.mkdir(parents=True, exist_ok=True)
            net = model["network"] = dict(model["network"])
            for key in ("nodes_file", "edges_file"):  # absolute in the model (Scenario.to_dict)
                if net.get(key):
                    src = Path(net[key])
                    name = f"network-{key[:-5]}{''.join(src.suffixes)}"
                    if not ((out / name).exists() and (out / name).samefile(src)):  # a restored snapshot's own
                        staged.append((_staging(out / name), out / name))
                        shutil.copyfile(src, staged[-1][0])
                    net[key] = name
            for path, doc in files:
                staged.append((_staging(path), path))
                _write_synced(staged[-1][0], (json.dumps(doc, indent=1) + "\n").encode("utf-8"))
            for tmp, path in staged:
                os.replace(tmp, path)
        except OSError as exc:  # e.g. a file where the folder should be: bad input, not a crash
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise InputError(Problem(str(directory), f"cannot write a snapshot there: {exc.strerror or exc}")) from None
        return scenario_path, plan_path

    @classmethod
    def restore(cls, scenario_path, plan_path=None, observations=None, **kwargs) -> "Planner":
        """Continue from a ``snapshot``: same model, same incumbent, same pins, and the same
        observation history, read from ``observations`` (default: ``observations.json`` beside
        the scenario, if there is one; without it, each casualty counts as last observed at
        its ``observed_at``).

        ``restore(directory)`` reads the three files ``snapshot(directory)`` wrote;
        ``restore(scenario, plan)`` takes the scenario and the plan each as a path or a dict.
        """
        if plan_path is None:
            if not (isinstance(scenario_path, (str, os.PathLike)) and Path(scenario_path).is_dir()):
                raise PlanError(Problem("plan_path", "give the plan, or a snapshot's directory instead of the "
                                                     f"scenario; {scenario_path!r} is not a directory"))
            scenario_path, plan_path = Path(scenario_path) / "scenario.json", Path(scenario_path) / "plan.json"
        if observations is None and isinstance(scenario_path, (str, os.PathLike)):
            beside = Path(scenario_path).parent / HISTORY_FILE
            observations = beside if beside.exists() else None
        planner = cls(scenario_path, plan=plan_path, **kwargs)
        if observations is not None:
            try:
                seen, started, issued_at = load_history(observations, planner.scenario)
            except Exception:
                planner.close()
                raise
            with planner._turn():
                planner._seen, planner._started, planner._issued_at = seen, started, issued_at
        return planner

    def close(self) -> None:
        """Stop the background search and close the audit log."""
        self.stop()
        if self._audit is not None:
            self._audit.close()
