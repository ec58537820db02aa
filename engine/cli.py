"""The ``goldenhour`` command (SPEC §10): the only place that prints or exits.

Bad input is reported as one line per problem, ``goldenhour: <path>: <what>``, on standard error
with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .compiling import compile_notice
from .errors import InputError, Problem
from .solve import MAX_SEED

EXIT_BAD_INPUT = 2


def seed(text: str) -> int:
    """An ``--seed``: a whole number from 0 to ``MAX_SEED`` (numpy's generators take no negative
    seeds)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {MAX_SEED}, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 like any other bad input."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(Problem(self.prog.split()[-1] if " " in self.prog else "usage", message))


def _write(obj, out: str | None) -> None:
    text = json.dumps(obj, indent=1) + "\n"
    if out:
        write_text(out, text)
    else:
        sys.stdout.write(text)


def write_text(path: str, text: str) -> None:
    """Write an output file, making its folder if need be (as ``solve --out`` does); a path that
    cannot be written is bad input, not a crash."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(Problem(path, f"cannot write: {exc.strerror or exc}")) from None


def cmd_validate(args) -> int:
    from .errors import ScenarioError
    from .planner import require_teams
    from .scenario import load_scenario

    sc = load_scenario(args.scenario)
    require_teams(sc, ScenarioError)  # as solve and the planner do: no plan could be made else
    m = sc.model
    print(f"{args.scenario}: valid: {len(m.casualties)} casualties, {len(m.responders)} responders, "
          f"{len(m.hospitals)} hospitals, {len(m.sites)} sites")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    obj = evaluate(args.scenario, args.plan)
    if args.json:
        _write(obj.to_json(), None)
    else:
        if obj.expected_fatalities is None:
            print("infeasible: the plan has a cycle of waits")
        else:
            print(f"expected fatalities {obj.expected_fatalities:.6f} (overflow {obj.overflow_fatalities:.6f}), "
                  f"casualty minutes {obj.casualty_minutes:.2f}, feasible: {'yes' if obj.feasible else 'no'}")
    return 0


def cmd_schema(args) -> int:
    from .model import ScenarioModel

    _write(ScenarioModel.model_json_schema(by_alias=True), None)
    return 0


def cmd_generate(args) -> int:
    from .generate import generate

    options = {k: getattr(args, k) for k in ("casualties", "paramedics", "fire", "hospitals", "sites")
               if getattr(args, k) is not None}
    try:
        # network files are named relative to where the scenario is written (stdout: here)
        base = Path(args.out).resolve().parent if args.out else Path.cwd()
        data = generate(args.preset, seed=args.seed, base_dir=base, **options)
    except ValueError as exc:  # the generator names the option that is wrong
        message = str(exc)
        name = next((f"--{k}" for k in options if f"'{k}'" in message), "--preset")
        raise InputError(Problem(name, message)) from None
    _write(data, args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="goldenhour", description="Decision support for the first hours of a major incident.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("validate", help="check a scenario and print every error")
    s.add_argument("scenario")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("evaluate", help="score a plan")
    s.add_argument("scenario")
    s.add_argument("plan")
    s.add_argument("--json", action="store_true", help="print the objective object")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("schema", help="print the scenario JSON Schema")
    s.set_defaults(func=cmd_schema)

    s = sub.add_parser("generate", help="write a scenario from a preset")
    s.add_argument("--preset", required=True)
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--out")
    for name in ("casualties", "paramedics", "fire", "hospitals", "sites"):
        s.add_argument(f"--{name}", type=int, help="for --preset random")
    s.set_defaults(func=cmd_generate)

    from . import cli_solve  # the search commands register themselves

    cli_solve.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        with compile_notice():
            return args.func(args)
    except InputError as err:
        for problem in err.problems:
            print(f"goldenhour: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("goldenhour: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
