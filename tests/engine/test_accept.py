"""Annealing's temperatures (``engine.accept.SimulatedAnnealing``): fitted as their docstring says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.accept import SimulatedAnnealing


def test_autofit_accepts_the_median_worse_move_at_first_and_almost_no_small_one_at_the_end():
    rng = np.random.default_rng(0)
    deltas = np.concatenate([rng.exponential(0.3, 500), -rng.exponential(0.1, 200), np.zeros(50)])
    s = SimulatedAnnealing.autofit(deltas, accept_prob=0.4, end_prob=1e-3)
    worse = deltas[deltas > 1e-12]  # improving and equal moves are accepted anyway: not fitted on
    assert math.exp(-np.median(worse) / s.start) == pytest.approx(0.4, rel=1e-12)
    assert math.exp(-np.quantile(worse, 0.1) / s.end) == pytest.approx(1e-3, rel=1e-12)
    assert 0 < s.end < s.start


def test_the_temperature_cools_geometrically_from_start_to_end():
    s = SimulatedAnnealing(2.0, 0.02)
    assert s.temperature(0.0) == pytest.approx(2.0)
    assert s.temperature(0.5) == pytest.approx(0.2)  # the geometric mean
    assert s.temperature(1.0) == pytest.approx(0.02)
    assert s.temperature(-1.0) == s.temperature(0.0) and s.temperature(2.0) == s.temperature(1.0)


def test_no_worse_move_sampled_means_no_temperature():
    s = SimulatedAnnealing.autofit(np.array([-1.0, 0.0, -0.5]))
    assert (s.start, s.end) == (0.0, 0.0) and s.temperature(0.3) == 0.0
