"""``goldenhour solve``: registered into the main parser by ``cli.build_parser``."""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

from .cli import seed
from .errors import InputError, Problem


def _progress(args):
    """A one-line progress display on a terminal (standard error), nothing otherwise."""
    if args.json or not sys.stderr.isatty():
        return None

    def on_iteration(stats, objective):
        F = objective.expected_fatalities
        sys.stderr.write(f"\r{stats.algorithm}: {stats.iterations} iterations, {stats.evaluations} moves, "
                         f"{stats.runtime_s:6.1f} s, best F = {F if F is None else round(F, 4)}   ")
        sys.stderr.flush()

    return {"on_iteration": on_iteration}


def cmd_solve(args) -> int:
    from .scenario import load_scenario
    from .solve import solve

    problems = []  # every one at once: the arguments', the output's and the scenario's
    if args.iterations is not None and args.iterations < 0:
        problems.append(Problem("--iterations", "expected a whole number >= 0"))
    if args.time_limit is not None and not 0 <= args.time_limit < float("inf"):
        problems.append(Problem("--time-limit", "expected a finite number of seconds >= 0"))
    if args.out:
        problems += _problems(_writable, Path(args.out), "--out")  # before the search, not after it
    sc = None
    try:
        sc = load_scenario(args.scenario)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    result = solve(sc, algorithm=args.algorithm, seed=args.seed, iterations=args.iterations,
                   time_limit=args.time_limit, callbacks=_progress(args))
    if _progress(args):
        sys.stderr.write("\n")
    obj = result.plan.objective  # a full evaluation of the plan found (engine.solve)
    doc = result.plan.to_json()  # objective and schedule included
    if args.out:
        from .cli import write_text

        # the folders on the way, as simulate's and experiment's --out: _writable let them pass
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.out, json.dumps(doc, indent=1) + "\n")
    if args.json:
        out = {"objective": obj.to_json(), "stats": result.stats.to_json()}
        if args.explain:
            out["explanation"] = result.explanation.to_json()
        if not args.out:
            out["plan"] = doc
        print(json.dumps(out, indent=1))
        return 0
    s = result.stats
    F = obj.expected_fatalities
    print(f"{args.algorithm}: expected fatalities {F:.4f} (overflow {obj.overflow_fatalities:.4f}), "
          f"casualty minutes {obj.casualty_minutes:.1f}, feasible: {'yes' if obj.feasible else 'no'}"
          if F is not None else f"{args.algorithm}: infeasible plan (cycle of waits)")
    print(f"{s.iterations} iterations, {s.moves} moves applied, {s.evaluations} move evaluations, "
          f"{s.runtime_s:.2f} s" + (f" (and {s.compile_s:.0f} s compiling kernels)" if s.compile_s >= 0.5 else "")
          + (f"; plan written to {args.out}" if args.out else ""))
    if args.explain:
        print(result.explanation.to_text())
    return 0


def register(sub) -> None:
    """Add the search commands to the ``goldenhour`` sub-command parser."""
    from .algorithms import ALGORITHMS

    s = sub.add_parser("solve", help="search for the plan with the fewest expected fatalities")
    s.add_argument("scenario")
    s.add_argument("--algorithm", choices=ALGORITHMS, default="tabu")
    s.add_argument("--seed", type=seed, default=0)
    budget = s.add_mutually_exclusive_group()
    budget.add_argument("--time-limit", type=float, help="seconds of search (kernels compiling on first use not counted)")
    budget.add_argument("--iterations", type=int, help="iteration budget (reproducible)")
    s.add_argument("--out", help="write the plan file here")
    s.add_argument("--json", action="store_true", help="print objective, statistics (and plan) as JSON")
    s.add_argument("--explain", action="store_true", help="top contributors and hospital load")
    s.set_defaults(func=cmd_solve)
    register_replay(sub)
    register_simulation(sub)


#: ``replay`` searches a gap between two lines of the log as at most this many simulated minutes.
MAX_GAP_MINUTES = 60.0


def _record(line: str, where: str) -> dict:
    """One line of a replay log: a JSON object with a finite numeric ``time``; a task request
    (``"type": "next_task"``) has only a ``responder`` besides (a delta is checked when applied)."""
    from .scenario import loads

    rec = loads(line, where, InputError)
    t = rec.get("time") if isinstance(rec, dict) else None
    try:
        finite = not isinstance(t, bool) and isinstance(t, (int, float)) and math.isfinite(t)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise InputError(Problem(where, "expected a JSON object with a finite numeric \"time\""))
    if rec.get("type") == "next_task":
        extra = sorted(set(rec) - {"type", "time", "responder"})
        if extra or not isinstance(rec.get("responder"), str):
            raise InputError(Problem(where, "a task request has a \"responder\" (text) and a \"time\""
                                     + (f"; unknown keys: {', '.join(extra)}" if extra else "")))
    return rec


def _clock(t: float) -> str:
    """A line's time for the transcript: a time the model refuses (past 1e9 minutes) is still
    one short field, not three hundred digits."""
    return f"{t:8.2f}" if abs(t) < 1e9 else f"{t:8.3g}"


def cmd_replay(args) -> int:
    """Replay deltas and task requests (one JSON object per line) through the online engine.

    A line ``{"type": "next_task", "time": t, "responder": id}`` asks for a task; any other line is
    a delta. Before each line the search runs ``--iterations-per-minute`` iterations for every
    simulated minute since the previous line, for at most ``MAX_GAP_MINUTES`` of them: nothing
    changes the model in a gap, so more search there finds nothing a control room would wait
    for (and a log that jumps a year would otherwise search for a year's worth). A rejected
    delta is reported in the transcript and the replay goes on, as it would in a control room;
    it is vetted before the search runs for the minutes up to it, so it changes nothing, not
    even how long the search ran.
    """
    from .errors import DeltaError
    from .planner import Planner

    path = Path(args.deltas)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(Problem(str(path), f"cannot read: {exc.strerror or exc}")) from None
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(Problem(f"{path}:{line}", "not UTF-8 text")) from None
    if args.iterations_per_minute < 0:
        raise InputError(Problem("--iterations-per-minute", "expected a whole number >= 0"))
    records, problems = [], []
    for i, line in enumerate(lines, start=1):  # every malformed line is reported, before any is replayed
        if line.strip():
            try:
                records.append((i, _record(line, f"{path}:{i}")))
            except InputError as err:
                problems += err.problems
    if problems:
        raise InputError(problems)
    audit = args.audit or str(path.with_suffix(".audit.jsonl"))
    from .audit import AuditLog
    from .scenario import load_scenario

    scenario = load_scenario(args.scenario)  # a bad scenario leaves an old log alone
    log = AuditLog(audit, fresh=True)  # this replay's issues only, not a previous run's too
    try:
        planner = Planner(scenario, algorithm=args.algorithm, seed=args.seed, audit=log)
    except Exception:
        log.close()
        raise
    last = planner.time
    for i, rec in records:
        try:
            if rec.get("type") != "next_task":
                planner.check(rec)  # a rejected delta changes nothing, the search's minutes included
        except DeltaError as err:
            for p in err.problems:
                print(f"{_clock(rec['time'])}  rejected (line {i}): {p}")
            continue
        minutes = min(max(0.0, rec["time"] - last), MAX_GAP_MINUTES)
        iterations = int(round(minutes * args.iterations_per_minute))
        if iterations:
            planner.step(iterations)
        last = max(last, rec["time"])
        try:
            if rec.get("type") == "next_task":
                try:
                    task = planner.next_task(rec["responder"], float(rec["time"]))
                except OSError as exc:  # the disk refused the audit record: the task was not issued
                    planner.close()
                    raise InputError(Problem(audit, f"cannot write the audit log: {exc.strerror or exc}")) from None
                what = "wait" if task is None else (f"{task.kind} {task.casualty}"
                                                   + (f" -> {task.hospital}" if task.hospital else ""))
                print(f"{_clock(rec['time'])}  {rec.get('responder')}: {what}")
            else:
                planner.apply(rec)
        except DeltaError as err:
            for p in err.problems:
                print(f"{_clock(rec['time'])}  rejected (line {i}): {p}")
    plan, objective = planner.best()
    planner.close()
    F = objective.expected_fatalities
    print(f"final: expected fatalities {F if F is None else round(F, 4)}; audit log written to {audit}")
    return 0


def register_replay(sub) -> None:
    s = sub.add_parser("replay", help="replay deltas and task requests through the online engine")
    s.add_argument("scenario")
    s.add_argument("deltas")
    s.add_argument("--iterations-per-minute", type=int, default=2000,
                   help="search iterations per simulated minute between two lines (a gap counts "
                        f"{MAX_GAP_MINUTES:g} minutes at most)")
    s.add_argument("--algorithm", choices=("descent", "tabu", "annealing"), default="annealing")
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--audit", help="audit log path (default: DELTAS with .audit.jsonl)")
    s.set_defaults(func=cmd_replay)


def _int_list(text: str, name: str) -> list[int]:
    """``1,2,4`` or a range ``0..5``; a value listed twice counts once (it would double its runs)."""
    try:
        if ".." in text:
            lo, hi = text.split("..")
            return list(range(int(lo), int(hi) + 1))
        return list(dict.fromkeys(int(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise InputError(Problem(name, f"expected numbers like 1,2,4 or 0..5, got '{text}'")) from None


def _finite(value: float, name: str, what: str, ok) -> None:
    if not (math.isfinite(value) and ok(value)):
        raise InputError(Problem(name, f"expected {what}, got {value!r}"))


def _config(args):
    from .model import MAX_MINUTES
    from .simulate import SimulationConfig

    if args.iterations_per_minute < 0:
        raise InputError(Problem("--iterations-per-minute", "expected a whole number >= 0"))
    _finite(args.horizon, "--horizon", f"a number of minutes > 0 and at most {MAX_MINUTES:.0e}",
            lambda x: 0 < x <= MAX_MINUTES)  # the model's longest time (an endless run had hung)
    _finite(args.duration_cv, "--duration-cv", "a finite coefficient of variation >= 0", lambda x: x >= 0)
    if args.seconds_per_minute is not None:
        _finite(args.seconds_per_minute, "--seconds-per-minute", "a finite number of seconds > 0", lambda x: x > 0)
    return SimulationConfig(horizon=args.horizon, iterations_per_minute=args.iterations_per_minute,
                            duration_cv=args.duration_cv, seconds_per_minute=args.seconds_per_minute)


def _problems(check, *args) -> list[Problem]:
    """The problems ``check(*args)`` raises, as a list (empty if none)."""
    try:
        check(*args)
    except InputError as exc:
        return exc.problems
    return []


def _writable(path: Path, name: str, directory: bool = False) -> Path:
    """Check before the runs (which may take hours) that their output can be written there,
    creating nothing: a folder (``directory``) or a file where the path says, and a file can be
    made in the nearest folder that exists on the way."""
    if directory and path.exists() and not path.is_dir():
        raise InputError(Problem(name, f"'{path}' is a file, expected a folder"))
    if not directory and path.is_dir():
        raise InputError(Problem(name, f"'{path}' is a folder, expected a file"))
    near = path if directory else path.parent
    while not near.exists() and near != near.parent:
        near = near.parent
    try:
        if not near.is_dir():
            raise NotADirectoryError(20, "not a folder", str(near))
        with tempfile.TemporaryFile(dir=near):
            pass
    except OSError as exc:
        raise InputError(Problem(name, f"cannot write '{path}': {exc.strerror or exc}")) from None
    return path


def _rejected_note(rows: list[dict]) -> None:
    """Say on standard error when the planner refused what a run reported: in such a run the
    truth and the plan drifted apart, and its score is not the policy's alone."""
    bad = [r for r in rows if r["rejected_deltas"]]
    if bad:
        sys.stderr.write(f"goldenhour note: in {len(bad)} of {len(rows)} runs the planner rejected reported facts "
                         f"({sum(r['rejected_deltas'] for r in bad)} in all; column rejected_deltas); the first: "
                         f"{bad[0]['first_rejected']}\n")


def cmd_simulate(args) -> int:
    from .experiment import run_grid, summarise, summary_markdown, write_runs
    from .scenario import load_scenario

    load_scenario(args.scenario)
    if args.updates < 1 or args.runs < 1:
        raise InputError(Problem("--updates/--runs", "expected updates >= 1, runs >= 1"))
    _finite(args.delay, "--delay", "a finite number of minutes >= 0", lambda x: x >= 0)
    config = _config(args)
    out = _writable(Path(args.out), "--out") if args.out else None
    rows = run_grid(args.scenario, [args.updates], [args.delay], args.runs, args.seed, config)
    if out:
        _save(lambda: write_runs(rows, out), "--out")
    sys.stdout.write(summary_markdown(summarise(rows)))
    _rejected_note(rows)
    return 0


def _save(write, name: str):
    try:
        return write()
    except OSError as exc:
        raise InputError(Problem(name, f"cannot write: {exc.strerror or exc}")) from None


def cmd_experiment(args) -> int:
    from .experiment import plot, run_grid, summarise, summary_markdown, write_runs
    from .scenario import load_scenario

    load_scenario(args.scenario)
    updates, delays = _int_list(args.updates, "--updates"), _int_list(args.delays, "--delays")
    if not updates or min(updates) < 1 or not delays or min(delays) < 0 or args.runs < 1:
        raise InputError(Problem("--updates/--delays/--runs", "expected updates >= 1, delays >= 0, runs >= 1"))
    config = _config(args)
    out = _writable(Path(args.out), "--out", directory=True)
    rows = run_grid(args.scenario, updates, delays, args.runs, args.seed, config, scheduler=args.scheduler)
    summary = summarise(rows)
    text = summary_markdown(summary)

    def write():
        write_runs(rows, out / "runs.parquet")
        (out / "summary.md").write_text(text, encoding="utf-8")
        return plot(summary, out / "summary.png")

    png = _save(write, "--out")
    sys.stdout.write(text)
    print(f"runs: {out / 'runs.parquet'}; summary: {out / 'summary.md'}" + (f"; plot: {png}" if png else ""))
    _rejected_note(rows)
    return 0


def register_simulation(sub) -> None:
    for name, func in (("simulate", cmd_simulate), ("experiment", cmd_experiment)):
        s = sub.add_parser(name, help="run the online engine in simulation" if name == "simulate"
                           else "the value-of-information study: a grid of update policies")
        s.add_argument("scenario")
        if name == "simulate":
            s.add_argument("--updates", type=int, default=1)
            s.add_argument("--delay", type=float, default=0.0)
            s.add_argument("--runs", type=int, default=1)
            s.add_argument("--out", help="Parquet file of every run")
        else:
            s.add_argument("--updates", default="1,2,4,10,30")
            s.add_argument("--delays", default="0..5")
            s.add_argument("--runs", type=int, default=50)
            s.add_argument("--scheduler", help="a Dask scheduler address, or 'local' for a LocalCluster")
            s.add_argument("--out", default="experiment")
        s.add_argument("--seed", type=seed, default=0)
        s.add_argument("--horizon", type=float, default=30.0)
        s.add_argument("--iterations-per-minute", type=int, default=200)
        s.add_argument("--seconds-per-minute", type=float, default=None,
                       help="wall-clock search per simulated minute instead of iterations (60: real time)")
        s.add_argument("--duration-cv", type=float, default=0.2)
        s.set_defaults(func=func)
