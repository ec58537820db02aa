"""Experiment layer: wall time of the paper study at d = 0 (5 update policies × 50 runs)."""

from __future__ import annotations

import pytest

from engine.experiment import run_grid
from engine.simulate import SimulationConfig

from conftest import ROOT


def test_one_simulation_run(benchmark):
    """One 30-minute run of the London example with one update (the unit of every study).

    Five rounds after one untimed: with one round, in the suite's first benchmark, a report
    measured 0.66 s against 0.08 s in runs just after it."""
    from engine.simulate import Policy, simulate

    benchmark.pedantic(simulate, args=(ROOT / "examples" / "london-5x18.json", Policy(1, 0), 0,
                                       SimulationConfig(iterations_per_minute=200)), rounds=5, iterations=1,
                       warmup_rounds=1)


@pytest.mark.slow
def test_paper_study_delay_zero(benchmark):
    rows = benchmark.pedantic(run_grid, args=(ROOT / "examples" / "london-5x18.json",),
                              kwargs=dict(updates=(1, 2, 4, 10, 30), delays=(0,), runs=50,
                                          config=SimulationConfig(iterations_per_minute=200)),
                              rounds=1, iterations=1)
    benchmark.extra_info["runs"] = len(rows)
