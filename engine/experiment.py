"""The value-of-information experiment (SPEC §9): a grid of update policies × runs.

Runs are independent, so they go to a local process pool by default, or to a Dask cluster
(``scheduler="local"`` starts a ``LocalCluster``; any other string is a scheduler address). Each
run's seed depends only on the base seed and the run number — the same across policies (common
random numbers), and the same however the runs are executed — so results are identical for the
same seeds whichever way they ran.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numba
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError, Problem
from .scenario import load_scenario
from .simulate import Policy, SimulationConfig, simulate

SCHEMA = pa.schema([
    ("updates", pa.int64()), ("delay", pa.float64()), ("run", pa.int64()), ("seed", pa.int64()),
    ("horizon", pa.float64()), ("iterations_per_minute", pa.int64()), ("duration_cv", pa.float64()),
    ("algorithm", pa.string()), ("score", pa.float64()), ("delivered", pa.int64()),
    ("delivered_dead", pa.int64()), ("rest_expected", pa.float64()), ("rejected_deltas", pa.int64()),
    ("first_rejected", pa.string()), ("runtime_s", pa.float64()), ("seconds_per_minute", pa.float64()),
])


def run_seed(base: int, run: int) -> int:
    return base * 100_003 + run


def _one_per_core(job) -> dict:
    """``_one`` in a pool process: one Numba thread, since the pool already has a process per core
    and two busy processes each waking a second thread would fight over the same two cores."""
    numba.set_num_threads(1)
    return _one(job)


def _one(job) -> dict:
    scenario, updates, delay, run, seed, config = job
    row = simulate(scenario, Policy(updates, delay), seed=seed, config=config)
    row["run"] = run
    return row


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{done}/{total} runs")
        sys.stderr.flush()


def run_grid(scenario, updates=(1, 2, 4, 10, 30), delays=(0,), runs: int = 50, seed: int = 0,
             config: SimulationConfig = SimulationConfig(), scheduler: str | None = None,
             workers: int | None = None) -> list[dict]:
    """Every (updates, delay, run) of the grid; rows sorted by updates, delay, run."""
    data = load_scenario(scenario).to_dict()
    jobs = [(data, int(k), float(d), r, run_seed(seed, r), config) for k in updates for d in delays
            for r in range(runs)]
    rows: list[dict] = []
    if scheduler is None:
        workers = workers or os.cpu_count() or 1
        if workers == 1:
            for job in jobs:
                rows.append(_one(job))
                _progress(len(rows), len(jobs))
        else:
            # spawn, not fork: a process that already ran a parallel (OpenMP) kernel cannot fork safely
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for row in pool.map(_one_per_core, jobs, chunksize=max(1, len(jobs) // (8 * workers))):
                    rows.append(row)
                    _progress(len(rows), len(jobs))
    else:
        rows = _run_dask(jobs, scheduler, workers)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    return sorted(rows, key=lambda r: (r["updates"], r["delay"], r["run"]))


def _run_dask(jobs, scheduler: str, workers: int | None) -> list[dict]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # an optional extra
        raise InputError(Problem("--scheduler", "needs Dask: pip install 'goldenhour[distributed]'")) from None

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, ValueError, TypeError) as exc:  # unreachable, or not an address at all
            raise InputError(Problem("--scheduler", f"cannot reach a Dask scheduler at '{scheduler}': {exc}")) from None
    try:
        futures = client.map(_one_per_core, jobs, pure=False)
        for done, _ in enumerate(as_completed(futures), start=1):
            _progress(done, len(jobs))
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def write_runs(rows: list[dict], path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in SCHEMA.names} for r in rows], schema=SCHEMA), path)
    return path


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation of the score per policy (the paper's Figure 4)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["updates"], r["delay"]), []).append(r["score"])
    out = []
    for (k, d), scores in sorted(groups.items()):
        n = len(scores)
        mean = sum(scores) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in scores) / (n - 1)) if n > 1 else math.nan  # no spread of one
        out.append({"updates": k, "delay": d, "runs": n, "mean": mean, "std": std})
    return out


def summary_markdown(summary: list[dict]) -> str:
    lines = ["| updates | delay (min) | runs | mean expected fatalities | std |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {s['updates']} | {s['delay']:g} | {s['runs']} | {s['mean']:.2f} | "
              + ("–" if math.isnan(s["std"]) else f"{s['std']:.2f}") + " |" for s in summary]
    return "\n".join(lines) + "\n"


def plot(summary: list[dict], path) -> Path | None:
    """Mean score with standard-deviation error bars per policy; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for d in sorted({s["delay"] for s in summary}):
        pts = [s for s in summary if s["delay"] == d]
        ax.errorbar([s["updates"] for s in pts], [s["mean"] for s in pts], yerr=[s["std"] for s in pts],
                    marker="o", capsize=3, label=f"delay {d:g} min")
    ax.set_xscale("log")
    ax.set_xlabel("health updates over the horizon")
    ax.set_ylabel("expected fatalities (truth)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
