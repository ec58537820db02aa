"""Acceptance: the ``Outcome`` vocabulary and the annealing temperature schedule.

The Metropolis test itself runs compiled (``kernels.search.anneal_chunk``); this module decides
its temperatures. ``SimulatedAnnealing.autofit`` picks the start temperature from sampled move
deltas, as in alns: a typical worsening move is accepted with probability ``accept_prob`` at the
start and ``end_prob`` at the end (see ``autofit``).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class Outcome(enum.IntEnum):
    """What became of one step's candidate."""

    BEST = 0  # a new best plan
    BETTER = 1  # better than the current plan, not the best
    ACCEPT = 2  # accepted although not better
    REJECT = 3  # not accepted


@dataclass
class SimulatedAnnealing:
    """Geometric cooling from ``start`` to ``end`` over the run's budget."""

    start: float
    end: float

    def temperature(self, fraction: float) -> float:
        if self.start <= 0:
            return 0.0
        return self.start * (self.end / self.start) ** min(max(fraction, 0.0), 1.0)

    @classmethod
    def autofit(cls, deltas: np.ndarray, accept_prob: float = 0.5, end_prob: float = 1e-4) -> "SimulatedAnnealing":
        """Fit to sampled worsening deltas: the median one is accepted with chance ``accept_prob``
        at the start (wide exploration); at the end even a small one (the 10th percentile) is
        accepted only with chance ``end_prob``, so the run finishes as a descent.
        """
        worse = deltas[deltas > 1e-12]
        if len(worse) == 0:
            return cls(0.0, 0.0)
        start = -float(np.median(worse)) / math.log(accept_prob)
        end = -float(np.quantile(worse, 0.1)) / math.log(end_prob)
        return cls(start, min(end, start))
