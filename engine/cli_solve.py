"""``goldenhour solve``: registered into the main parser by ``cli.build_parser``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
    from .evaluate import schedule_records
    from .solve import solve

    if args.iterations is not None and args.iterations < 0:
        raise InputError(Problem("--iterations", "expected a whole number >= 0"))
    if args.time_limit is not None and not args.time_limit >= 0:
        raise InputError(Problem("--time-limit", "expected seconds >= 0"))
    result = solve(args.scenario, algorithm=args.algorithm, seed=args.seed, iterations=args.iterations,
                   time_limit=args.time_limit, callbacks=_progress(args))
    if _progress(args):
        sys.stderr.write("\n")
    from .evaluate import evaluate_detail

    obj, W, arrays = evaluate_detail(args.scenario, result.plan)
    from .scenario import load_scenario

    doc = result.plan.to_json(obj, schedule_records(load_scenario(args.scenario), W, arrays))
    if args.out:
        from .cli import write_text

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
    print(f"{s.iterations} iterations, {s.evaluations} move evaluations, {s.runtime_s:.2f} s"
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
    s.add_argument("--seed", type=int, default=0)
    budget = s.add_mutually_exclusive_group()
    budget.add_argument("--time-limit", type=float, help="seconds of search")
    budget.add_argument("--iterations", type=int, help="iteration budget (reproducible)")
    s.add_argument("--out", help="write the plan file here")
    s.add_argument("--json", action="store_true", help="print objective, statistics (and plan) as JSON")
    s.add_argument("--explain", action="store_true", help="top contributors and hospital load")
    s.set_defaults(func=cmd_solve)
    register_replay(sub)


def cmd_replay(args) -> int:
    """Replay deltas and task requests (one JSON object per line) through the online engine.

    A line ``{"type": "next_task", "time": t, "responder": id}`` asks for a task; any other line is
    a delta. Before each line the search runs ``--iterations-per-minute`` iterations for every
    simulated minute since the previous line. A rejected delta is reported and the replay goes on,
    as it would in a control room.
    """
    from .errors import DeltaError
    from .planner import Planner
    from .scenario import loads

    path = Path(args.deltas)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(Problem(str(path), f"cannot read: {exc.strerror or exc}")) from None
    records = []
    for i, line in enumerate(lines, start=1):
        if line.strip():
            rec = loads(line, f"{path}:{i}", InputError)
            if not isinstance(rec, dict) or not isinstance(rec.get("time"), (int, float)):
                raise InputError(Problem(f"{path}:{i}", "expected a JSON object with a numeric \"time\""))
            records.append((i, rec))
    if args.iterations_per_minute < 0:
        raise InputError(Problem("--iterations-per-minute", "expected a whole number >= 0"))
    audit = args.audit or str(path.with_suffix(".audit.jsonl"))
    planner = Planner(args.scenario, algorithm=args.algorithm, seed=args.seed, audit=audit)
    last = planner.time
    for i, rec in records:
        minutes = max(0.0, rec["time"] - last)
        iterations = int(round(minutes * args.iterations_per_minute))
        if iterations:
            planner.step(iterations)
        last = max(last, rec["time"])
        try:
            if rec.get("type") == "next_task":
                task = planner.next_task(str(rec.get("responder")), float(rec["time"]))
                what = "wait" if task is None else (f"{task.kind} {task.casualty}"
                                                   + (f" -> {task.hospital}" if task.hospital else ""))
                print(f"{rec['time']:8.2f}  {rec.get('responder')}: {what}")
            else:
                planner.apply(rec)
        except DeltaError as err:
            for p in err.problems:
                print(f"{rec['time']:8.2f}  rejected (line {i}): {p}")
    plan, objective = planner.best()
    planner.close()
    F = objective.expected_fatalities
    print(f"final: expected fatalities {F if F is None else round(F, 4)}; audit log written to {audit}")
    return 0


def register_replay(sub) -> None:
    s = sub.add_parser("replay", help="replay deltas and task requests through the online engine")
    s.add_argument("scenario")
    s.add_argument("deltas")
    s.add_argument("--iterations-per-minute", type=int, default=2000)
    s.add_argument("--algorithm", choices=("descent", "tabu", "annealing"), default="annealing")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--audit", help="audit log path (default: DELTAS with .audit.jsonl)")
    s.set_defaults(func=cmd_replay)
