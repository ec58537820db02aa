"""Shared fixtures: example scenarios, warmed-up kernels, and the random-case factories.

``tests/`` is on ``sys.path`` (pytest puts a rootless conftest's directory there), so test modules
import the helpers as ``import reference`` and ``import factories``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"
for p in (str(ROOT), str(TESTS)):
    if p not in sys.path:
        sys.path.append(p)

import engine  # noqa: E402
from engine.generate import generate  # noqa: E402


@pytest.fixture(scope="session")
def london():
    """The paper's five sites x 18 casualties study (examples/london-5x18.json), loaded once."""
    return engine.load_scenario(EXAMPLES / "london-5x18.json")  # tracked: its absence is a failure


@pytest.fixture(scope="session")
def tiny():
    """One site, 3-5 casualties, two paramedic teams (one HART) and a fire team."""
    return engine.load_scenario(generate("tiny", seed=0))


@pytest.fixture(scope="session")
def warm_jit():
    """Compile (or load from the cache) every evaluation kernel once per session."""
    import factories
    from kernels.evaluate import row_width

    sc = engine.load_scenario(generate("tiny", seed=0))
    plan = factories.random_plan(sc, np.random.default_rng(0), mode="ordered")
    engine.evaluate(sc, plan)
    P = engine.plan.problem_arrays(sc)
    starts, order, hosp, pins = plan.to_arrays(sc)
    R, C = len(sc.model.responders), len(sc.model.casualties)
    rows = np.zeros((1, row_width(R, C)), dtype=starts.dtype)
    rows[0, : R + 1] = starts
    rows[0, R + 1: R + 1 + 3 * C] = order
    rows[0, R + 1 + 3 * C:] = hosp
    run_batch(P, rows, pins)
    return True


def run_batch(P, rows, pins, n_threads=None):
    """``kernels.evaluate.evaluate_batch`` into fresh output arrays: ``(F, overflow, T, status)``.

    ``n_threads`` (the number of chunks the rows are split into) defaults to numba's thread count.
    """
    import inspect

    from numba import get_num_threads

    from kernels.evaluate import evaluate_batch

    n = rows.shape[0]
    out = (np.full(n, -1.0), np.full(n, -1.0), np.full(n, -1.0), np.full(n, -1, dtype=np.int64))
    params = inspect.signature(evaluate_batch.py_func).parameters
    if "n_threads" in params:
        evaluate_batch(P, rows, pins, *out, get_num_threads() if n_threads is None else n_threads)
    else:
        evaluate_batch(P, rows, pins, *out)
    return out


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, different per test."""
    seed = sum(map(ord, request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)
