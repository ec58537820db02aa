"""The benchmark report, in the manner of Timefold's benchmarker: ``python -m bench.report``.

Every algorithm runs on every scenario with the same wall-clock budget; each plan is scored by
goldenhour's exact evaluator (OR-Tools' own objective is a surrogate and is never compared). The
report holds, per scenario and algorithm, the best objective, evaluations per second and the time
to the best plan, with PNG convergence curves (best objective over time), and, unless
``--no-micro``, the table of the pytest-benchmark suite (``bench/``) measured in the same run.

Usage::

    python -m bench.report                      # London, Helsinki, 1 000 casualties; 10 s each
    python -m bench.report --quick              # London only, 2 s each, no micro-benchmarks
    python -m bench.report --scenarios london --time-limit 30 --out bench-report

Figures depend on the machine and on what else runs on it: the report records both.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numba

ROOT = Path(__file__).resolve().parent.parent

#: name -> how to get it (a path under the repository, or a ``generate`` preset and its options)
SCENARIOS = {
    "london": ("examples/london-5x18.json", None),
    "helsinki": ("examples/helsinki.json", None),
    "random-1000": ("random", dict(seed=0, casualties=1000, paramedics=150, fire=20, hospitals=30)),
    "tiny": ("tiny", dict(seed=0)),
}
DEFAULT_SCENARIOS = ("london", "helsinki", "random-1000")
ALGORITHMS = ("rule", "greedy", "descent", "tabu", "annealing", "ortools-gls")


@dataclass
class Run:
    """One algorithm on one scenario: plain data, one row of the report."""

    scenario: str
    algorithm: str
    expected_fatalities: float
    casualty_minutes: float
    feasible: bool
    runtime_s: float
    evaluations: int
    time_to_best_s: float
    history: list[tuple[float, float]] = field(default_factory=list)  # (seconds, best F)
    note: str = ""
    plan: object = None  # the engine.plan.Plan, written next to the report

    @property
    def evaluations_per_s(self) -> float:
        return self.evaluations / self.runtime_s if self.runtime_s > 0 else 0.0


def load(name: str):
    import engine
    from engine.generate import generate

    source, options = SCENARIOS[name]
    if options is None:
        return engine.load_scenario(ROOT / source)
    return engine.load_scenario(generate(source, **options))


def _ortools_available() -> bool:
    return importlib.util.find_spec("ortools") is not None


def run_goldenhour(sc, name: str, algorithm: str, time_limit: float, seed: int) -> Run:
    from engine.solve import solve

    if algorithm in ("rule", "greedy"):
        result = solve(sc, algorithm=algorithm)
    else:
        result = solve(sc, algorithm=algorithm, time_limit=time_limit, seed=seed)
    st, obj = result.stats, result.objective
    history = [(t, f) for t, _it, f, _T in st.history]
    return Run(name, algorithm, obj.expected_fatalities, obj.casualty_minutes, obj.feasible, st.runtime_s,
               st.evaluations, history[-1][0] if history else st.runtime_s, history, plan=result.plan)


def run_ortools(sc, name: str, time_limit: float, seed: int) -> Run:
    import engine

    from bench.peer_ortools import solve_ortools

    t0 = time.perf_counter()
    plan, info = solve_ortools(sc, time_limit, seed=seed)
    wall = time.perf_counter() - t0
    obj = engine.evaluate(sc, plan)
    # OR-Tools reports no evaluation count through its Python API; its own search log has branches
    return Run(name, "ortools-gls", obj.expected_fatalities, obj.casualty_minutes, obj.feasible, wall, 0,
               wall, [(wall, obj.expected_fatalities)], note=f"status {info.get('status')}", plan=plan)


def warm(algorithms) -> None:
    """Load every compiled kernel once (from Numba's cache or by compiling) before any timing."""
    from engine.solve import solve

    sc = load("tiny")
    for algorithm in algorithms:
        if algorithm != "ortools-gls":
            solve(sc, algorithm=algorithm, iterations=None if algorithm in ("rule", "greedy", "descent") else 50)


def run_all(names, algorithms, time_limit: float, seed: int, log=print) -> list[Run]:
    warm(algorithms)
    runs = []
    for name in names:
        sc = load(name)
        for algorithm in algorithms:
            if algorithm == "ortools-gls":
                if not _ortools_available():
                    log(f"{name}: ortools-gls skipped (pip install 'goldenhour[peers]')")
                    continue
                t0 = time.perf_counter()
                try:
                    run = run_ortools(sc, name, time_limit, seed)
                except RuntimeError as err:  # no solution within the budget: a row that says so
                    log(f"{name}: ortools-gls: {err}")
                    wall = time.perf_counter() - t0  # what it took, which may exceed the budget
                    run = Run(name, "ortools-gls", float("nan"), float("nan"), False, wall, 0, wall, note=str(err))
            else:
                run = run_goldenhour(sc, name, algorithm, time_limit, seed)
            log(f"{name:12s} {algorithm:12s} F={run.expected_fatalities:10.4f}  {run.runtime_s:7.2f} s")
            runs.append(run)
    return runs


def micro_benchmarks(out: Path) -> list[dict]:
    """Run the pytest-benchmark suite (``-m "not slow"``) and return its benchmarks."""
    path = out / "micro.json"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "bench"), "-m", "not slow", "-q", "-p", "no:cacheprovider",
           f"--benchmark-json={path}"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads(path.read_text())["benchmarks"]


def plot_convergence(runs: list[Run], out: Path) -> list[Path]:
    """One PNG per scenario: best expected fatalities over time per algorithm (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    for name in dict.fromkeys(r.scenario for r in runs):
        fig, ax = plt.subplots(figsize=(7, 4))
        end = max(r.runtime_s for r in runs if r.scenario == name)
        for r in (r for r in runs if r.scenario == name):
            if len(r.history) > 1:
                xs = [t for t, _ in r.history] + [r.runtime_s]
                ys = [f for _, f in r.history] + [r.history[-1][1]]
                ax.step(xs, ys, where="post", label=r.algorithm)
            else:
                ax.plot([r.runtime_s], [r.expected_fatalities], "o", label=r.algorithm)
        ax.set_xlim(0, end * 1.02 if end > 0 else 1)
        ax.set_xlabel("seconds")
        ax.set_ylabel("best expected fatalities")
        ax.set_title(f"{name}: convergence (scored by goldenhour's evaluator)")
        ax.legend()
        fig.tight_layout()
        path = out / f"convergence-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def markdown(runs: list[Run], micro: list[dict], plots: list[Path], args) -> str:
    lines = ["# goldenhour benchmark report", "",
             f"- machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, Numba {numba.__version__}, {numba.get_num_threads()} Numba threads",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- command: `python -m bench.report {' '.join(args)}`".rstrip(), "",
             "Every plan is scored by goldenhour's exact evaluator. `vs rule`: change in expected "
             "fatalities against the dispatcher's rule on the same scenario.", ""]
    for name in dict.fromkeys(r.scenario for r in runs):
        rows = [r for r in runs if r.scenario == name]
        base = next((r.expected_fatalities for r in rows if r.algorithm == "rule"), None)
        lines += [f"## {name}", "",
                  "| algorithm | expected fatalities | vs rule | casualty minutes | feasible | time | time to best "
                  "| evaluations/s |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r.plan is None:
                lines.append(f"| {r.algorithm} | no plan | — | — | — | {r.runtime_s:.2f} s | — | — |")
                continue
            vs = f"{(r.expected_fatalities / base - 1) * 100:+.1f} %" if base else "—"
            eps = f"{r.evaluations_per_s:,.0f}" if r.evaluations else "—"
            lines.append(f"| {r.algorithm} | {r.expected_fatalities:.4f} | {vs} | {r.casualty_minutes:.1f} | "
                         f"{'yes' if r.feasible else 'no'} | {r.runtime_s:.2f} s | {r.time_to_best_s:.2f} s | {eps} |")
        lines.append("")
        for p in plots:
            if p.name == f"convergence-{name}.png":
                lines += [f"![convergence on {name}]({p.name})", ""]
    if micro:
        lines += ["## Micro-benchmarks (`python -m pytest bench -m \"not slow\"`)", "",
                  "| benchmark | median | rounds | extra |", "|---|---|---|---|"]
        for b in micro:
            extra = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in b.get("extra_info", {}).items())
            lines.append(f"| {b['name']} | {_fmt_time(b['stats']['median'])} | {b['stats']['rounds']} | {extra} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=None, help=f"comma-separated, from {', '.join(SCENARIOS)}")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per search run (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench-report")
    parser.add_argument("--quick", action="store_true", help="London only, 2 s per run, no micro-benchmarks")
    parser.add_argument("--no-micro", action="store_true", help="skip the pytest-benchmark suite")
    args = parser.parse_args(argv)
    names = args.scenarios.split(",") if args.scenarios else (["london"] if args.quick else list(DEFAULT_SCENARIOS))
    algorithms = args.algorithms.split(",")
    problems = [f"unknown scenario '{n}'" for n in names if n not in SCENARIOS]
    problems += [f"unknown algorithm '{a}'" for a in algorithms if a not in ALGORITHMS]
    if problems:
        for p in problems:
            print(f"bench.report: {p}", file=sys.stderr)
        return 2
    time_limit = args.time_limit if args.time_limit is not None else (2.0 if args.quick else 10.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = run_all(names, algorithms, time_limit, args.seed)
    micro = [] if (args.quick or args.no_micro) else micro_benchmarks(out)
    plots = plot_convergence(runs, out)
    plans = out / "plans"
    plans.mkdir(exist_ok=True)
    rows = []
    for r in runs:
        path = plans / f"{r.scenario}-{r.algorithm}.json"
        if r.plan is not None:
            path.write_text(json.dumps(r.plan.to_json(), indent=1) + "\n")
        else:  # no plan this time: an older run's file would pass for this one's
            path.unlink(missing_ok=True)
            path = None
        rows.append({**{k: None if isinstance(v, float) and math.isnan(v) else v
                        for k, v in r.__dict__.items() if k != "plan"},
                     "plan": str(path.relative_to(out)) if path else None, "evaluations_per_s": r.evaluations_per_s})
    (out / "runs.json").write_text(json.dumps(rows, indent=1) + "\n")
    report = out / "report.md"
    report.write_text(markdown(runs, micro, plots, argv if argv is not None else sys.argv[1:]) + "\n")
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
