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


#: The chance of accepting the median sampled worsening move at the start. A random move worsens
#: ``greedy``'s plan by about 0.3 expected fatalities (London, and a random 300-casualty scenario),
#: the tenth of them by 0.03-0.05: alns's customary 0.5 wandered so far from the start that runs
#: of up to 10 000 iterations ended on it, 50 000 on the random 300-casualty scenario. Over the London
#: example and four random scenarios (90 and 300 casualties), four seeds each, every start
#: chance from 0.005 to 0.0003 did as well as any other at 10 000, 100 000 and 1 000 000
#: iterations, and better than 0.05 and 0.5 at every budget (bench/HISTORY.md, forty-first session).
START_ACCEPT = 0.002


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
    def autofit(cls, deltas: np.ndarray, accept_prob: float = START_ACCEPT,
                end_prob: float = 1e-4) -> "SimulatedAnnealing":
        """Fit to sampled worsening deltas: the median one is accepted with chance ``accept_prob``
        at the start (``START_ACCEPT`` says why so seldom); at the end even a small one (the 10th
        percentile) is accepted only with chance ``end_prob``, so the run finishes as a descent.
        """
        worse = deltas[deltas > 1e-12]
        if len(worse) == 0:
            return cls(0.0, 0.0)
        start = -float(np.median(worse)) / math.log(accept_prob)
        end = -float(np.quantile(worse, 0.1)) / math.log(end_prob)
        return cls(start, min(end, start))
