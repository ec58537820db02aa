"""Same-run A/B of the kernels: a git revision's ``kernels/`` against the working tree's.

The machines this project runs on are shared and their speed drifts by tens of percent between
days, so a kernel change is measured against the previous kernels in one process, interleaved,
the fastest of several rounds each::

    python -m bench.ab_kernels HEAD~1 [--rounds 9]

The old kernels are unpacked into a temporary package (``git archive``); both are compiled in
memory (a few minutes), then both score every move of the London example's ``rule``
neighbourhood in a sweep on one thread (delta evaluation), evaluate its plan in full in a
compiled loop, and run 20 000 annealing steps from it (fixed seed and temperatures). They also
sweep the neighbourhood of descent's local optimum from ``rule``, where two hospitals are over
their beds (the ``rule`` plan has none): what descent's later sweeps and tabu score; and evaluate
on one thread the batch benchmark's plans (random hospitals: about five over their beds each).
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _unpack(rev: str, into: Path) -> str:
    (into / "kbase").mkdir()
    archive = subprocess.run(["git", "archive", rev, "kernels"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into / "kbase"), "--strip-components=1"], input=archive, check=True)
    sys.path.insert(0, str(into))
    return "kbase"


def _harness(pkg: str):
    search = importlib.import_module(pkg + ".search")
    evaluate_repeat = importlib.import_module(pkg + ".evaluate").evaluate_repeat
    evaluate_batch = importlib.import_module(pkg + ".evaluate").evaluate_batch
    layout = importlib.import_module(pkg + ".layout")

    def moves_loop(P, starts, order, hosp, pins, Winc, inc, moves, n):
        """A sweep of every move on one thread; returns the sum of their scores."""
        F, T, st = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        search.sweep(P, starts, order, hosp, pins, Winc, inc, moves, n, F, T, st, 1)
        return float(np.nansum(F))

    def anneal_loop(P, sol, Winc, n_iter):
        """``n_iter`` annealing steps from ``sol``, fixed seed and temperatures; returns the best ``F``."""
        from engine.algorithms import Annealing, SearchState

        starts, order, hosp, cur = sol.starts.copy(), sol.order.copy(), sol.hosp.copy(), sol.cur.copy()
        W, best = layout.copy_workspace(Winc), cur.copy()
        neigh, hosp_neigh = SearchState(sol, sol.copy()).neighbourhoods()
        stats, bad = np.zeros(3, dtype=np.int64), np.zeros(8)
        search.anneal_chunk(P, starts, order, hosp, sol.pins, W, cur, starts.copy(), order.copy(), hosp.copy(), best,
                            *Annealing._pools(P), Annealing.weights, neigh, hosp_neigh, 0.1, 1e-4, 0, n_iter,
                            n_iter, 7, layout.workspace_for(P), np.empty_like(starts), np.empty_like(order),
                            np.empty_like(hosp), stats, False, bad)
        return float(best[0])

    def batch_loop(P, rows, pins):
        """Every row of ``rows`` evaluated by ``evaluate_batch`` on one thread; returns the sum of ``F``."""
        n = rows.shape[0]
        out = [np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)]
        evaluate_batch(P, rows, pins, *out, 1)
        return float(np.nansum(out[0]))

    return moves_loop, evaluate_repeat, layout, anneal_loop, batch_loop


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="git revision whose kernels/ are the baseline")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    # compile in memory only: specialisations for the other package's tuple types would otherwise
    # enter the project's on-disk cache index and break its later loads
    os.environ["GOLDENHOUR_NUMBA_CACHE"] = "0"
    if "kernels.config" in sys.modules:
        raise SystemExit("run as its own process (python -m bench.ab_kernels): kernels is already imported")
    sys.path.insert(0, str(ROOT))
    import engine
    from engine.algorithms import SearchState
    from engine.construct import rule
    from engine.plan import problem_arrays

    from engine.algorithms import Descent

    sc = engine.load_scenario(ROOT / "examples" / "london-5x18.json")
    sol = rule(sc)
    moves, n = SearchState(sol, sol.copy()).moves()
    P = problem_arrays(sc)
    state = SearchState(sol.copy(), sol.copy())
    Descent().run(state, 10 ** 6)
    opt = state.current
    opt_moves, n_opt = SearchState(opt, opt.copy()).moves()
    steps = 20_000
    from bench.conftest import random_hospital_rows

    rows = random_hospital_rows(P, sol, 2_000)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name in (_unpack(args.rev, Path(tmp)), "kernels"):
            moves_loop, evaluate_repeat, layout, anneal_loop, batch_loop = _harness(name)
            W = layout.workspace_for(P)  # each package's own workspace type
            W_opt = layout.workspace_for(P)
            cur = float(evaluate_repeat(P, sol.starts, sol.order, sol.hosp, sol.pins, W, 1))
            evaluate_repeat(P, opt.starts, opt.order, opt.hosp, opt.pins, W_opt, 1)
            runs[name] = (moves_loop, evaluate_repeat, anneal_loop, batch_loop, W, W_opt)
            total = moves_loop(P, sol.starts, sol.order, sol.hosp, sol.pins, W, sol.cur, moves, n)
            total_opt = moves_loop(P, opt.starts, opt.order, opt.hosp, opt.pins, W_opt, opt.cur, opt_moves, n_opt)
            annealed = anneal_loop(P, sol, W, steps)
            batch = batch_loop(P, rows, sol.pins)
            print(f"{name}: compiled; sum of move scores {total:.9f} (at the local optimum {total_opt:.9f}), "
                  f"F {cur:.12f}, best F after {steps} annealing steps {annealed:.12f}, "
                  f"sum of F over the batch {batch:.9f}")
        best = {(name, what): np.inf for name in runs for what in ("move", "opt", "full", "anneal", "batch")}
        for _ in range(args.rounds):
            for name, (moves_loop, evaluate_repeat, anneal_loop, batch_loop, W, W_opt) in runs.items():
                t = time.perf_counter()
                moves_loop(P, sol.starts, sol.order, sol.hosp, sol.pins, W, sol.cur, moves, n)
                best[name, "move"] = min(best[name, "move"], (time.perf_counter() - t) / n)
                t = time.perf_counter()
                moves_loop(P, opt.starts, opt.order, opt.hosp, opt.pins, W_opt, opt.cur, opt_moves, n_opt)
                best[name, "opt"] = min(best[name, "opt"], (time.perf_counter() - t) / n_opt)
                t = time.perf_counter()
                evaluate_repeat(P, sol.starts, sol.order, sol.hosp, sol.pins, W, 2000)
                best[name, "full"] = min(best[name, "full"], (time.perf_counter() - t) / 2000)
                t = time.perf_counter()
                anneal_loop(P, sol, W, steps)
                best[name, "anneal"] = min(best[name, "anneal"], (time.perf_counter() - t) / steps)
                t = time.perf_counter()
                batch_loop(P, rows, sol.pins)
                best[name, "batch"] = min(best[name, "batch"], (time.perf_counter() - t) / len(rows))
    base, new = list(runs)
    for what, label in (("move", f"delta evaluation in a one-thread sweep ({n} moves)"),
                        ("opt", f"the same at descent's local optimum ({n_opt} moves)"), ("full", "full evaluation"),
                        ("anneal", f"annealing step ({steps} from rule)"),
                        ("batch", f"full evaluation of a batch plan, one thread ({len(rows)} plans)")):
        print(f"{label}: {args.rev} {best[base, what] * 1e6:.2f} µs, working tree {best[new, what] * 1e6:.2f} µs, "
              f"ratio {best[new, what] / best[base, what]:.3f}")


if __name__ == "__main__":
    main()
