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
