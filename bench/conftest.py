"""Shared fixtures for the benchmarks: scenarios built once, kernels warmed before timing.

Every benchmark fixes its amount of work (iterations, moves, plans); none is a timed assertion.
Run ``python -m pytest bench`` for figures; CI runs ``python -m pytest bench --benchmark-disable
-m "not slow"`` once so the suite never rots.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the reference implementation lives with the tests
if str(ROOT) not in sys.path:  # bench.peer_ortools, bench.report
    sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.construct import greedy, rule  # noqa: E402
from engine.generate import generate  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: large-scale benchmarks (minutes); skipped in CI's quick pass")


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    """Every search kernel compiled (or loaded from Numba's cache) before the first timing."""
    from bench.report import warm

    warm(("rule", "greedy", "descent", "tabu", "annealing"))
    p = engine.Planner(engine.load_scenario(generate("tiny", seed=0)), algorithm="annealing", seed=0)
    p.step(50)
    p.next_task(p.scenario.model.responders[0].id, p.time)


@pytest.fixture(scope="session")
def london():
    return engine.load_scenario(ROOT / "examples" / "london-5x18.json")


@pytest.fixture(scope="session")
def london_rule(london):
    return rule(london)


@pytest.fixture(scope="session")
def london_greedy(london):
    return greedy(london)


def random_scenario(casualties: int, paramedics: int, fire: int, hospitals: int, seed: int = 0):
    return engine.load_scenario(generate("random", seed=seed, casualties=casualties, paramedics=paramedics,
                                         fire=fire, hospitals=hospitals))


def random_hospital_rows(P, sol, n: int, seed: int = 0) -> np.ndarray:
    """``n`` batch rows (``kernels.evaluate.row_width``) of plan ``sol``, each with every
    transport sent to a random hospital: many hospitals over their beds, every row different."""
    from kernels.evaluate import row_width

    rows = np.empty((n, row_width(len(P.resp_loc), len(P.h0))), dtype=np.int32)
    rng = np.random.default_rng(seed)
    for i in range(n):
        hosp = sol.hosp.copy()
        hosp[hosp >= 0] = rng.integers(0, len(P.hosp_loc), size=(hosp >= 0).sum())
        rows[i] = np.concatenate([sol.starts, sol.order, hosp])
    return rows


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(0)
