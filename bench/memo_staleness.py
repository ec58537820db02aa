"""Why descent re-scores the moves it re-scores: a diagnostic of ``kernels.memo``.

Runs descent from ``rule`` to its local optimum and, before each sweep, sorts every remembered
move whose score is stale by what made it stale: a re-timed list, a touched casualty, a
hospital's bed count, all its admissions or those near its last bed (it is or was over
capacity), or it going over capacity::

    python -m bench.memo_staleness [SCENARIO] [--added 18]

``--added N`` first adds N urgent casualties at a new site, as
``bench/test_online.py::test_casualties_added_to_local_optimum`` does, which puts the London
example's hospitals over capacity. It reads the memo's private arrays: a tool for working on
the memo, not an interface.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CAUSES = ("list", "casualty", "bed count", "admissions", "going over capacity", "admissions near the last bed")


def new_site_casualties(n: int, time: float) -> dict:
    """A ``casualties_added`` delta of ``n`` urgent casualties at a new site in the City of London
    (the benchmarks' and tests' way of putting the London example's hospitals over capacity)."""
    return {"type": "casualties_added", "time": time, "sites": [{"id": "new-site", "lat": 51.5155, "lon": -0.0922}],
            "casualties": [{"id": f"n{i:02d}", "site": "new-site", "health": "urgent"} for i in range(n)]}


def _scenario(path: str, added: int):
    import engine
    from engine.planner import Planner

    if not added:
        return engine.load_scenario(path)
    p = Planner(path, algorithm="descent", seed=0)
    p.apply(new_site_casualties(added, p.time))
    return p.scenario


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "examples" / "london-5x18.json"))
    ap.add_argument("--added", type=int, default=0, metavar="N")
    args = ap.parse_args(argv)
    from engine.algorithms import Descent, SearchState
    from engine.construct import rule
    from engine.plan import problem_arrays

    sc = _scenario(args.scenario, args.added)
    sol = rule(sc)
    state = SearchState(sol, sol.copy())
    state.memo.PLAIN_ABOVE = np.inf  # every sweep through the memo: it is the memo's staleness we count
    P = problem_arrays(sc)
    R, C, H = len(P.resp_loc), len(P.h0), len(P.hosp_loc)
    bounds = np.array([0, R, R + C, R + C + H, R + C + 2 * H, R + C + 2 * H + 1])  # the id ranges of kernels.memo
    through, only = np.zeros(len(CAUSES)), np.zeros(len(CAUSES))
    checked = stale = 0
    iterations, done = 0, False
    while not done:
        memo = state.memo
        if memo._memo is not None:
            deps, _live, newer, usable, _epoch = memo.dependencies()
            kind = np.searchsorted(bounds, deps, side="right") - 1
            gone = usable & newer.any(axis=1)
            checked += int(usable.sum())
            stale += int(gone.sum())
            for k in range(len(CAUSES)):
                hit = gone & (newer & (kind == k)).any(axis=1)
                through[k] += hit.sum()
                only[k] += (hit & ~(newer & (kind != k)).any(axis=1)).sum()
        _, done = Descent().run(state, 1)
        iterations += 1
    print(f"{len(P.h0)} casualties, {len(sc.model.hospitals)} hospitals: descent took {iterations} sweeps "
          f"to F = {state.current.cur[0]:.4f}")
    print(f"remembered scores checked {checked}, stale {stale} ({stale / max(checked, 1):.0%})")
    for k, label in enumerate(CAUSES):
        print(f"  stale through {label:20s} {through[k] / max(stale, 1):4.0%} of them; "
              f"through nothing else {only[k] / max(stale, 1):4.0%}")


if __name__ == "__main__":
    main()
