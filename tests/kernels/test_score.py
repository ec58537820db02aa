"""How a sweep's moves are shared among threads (kernels/score.py: ``deal``, ``share``)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.score import deal, share


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_each_thread_is_dealt_every_kth_move(k):
    rng = np.random.default_rng(k)
    for n in list(range(12)) + [97, 1000]:
        src = rng.permutation(10 * n + 1)[:n].astype(np.int64)
        dst = np.full(n, -1, np.int64)
        deal(src, n, k, dst)
        bounds = [share.py_func(c, n, k) for c in range(k + 1)]
        assert bounds[0] == 0 and bounds[-1] == n
        for c in range(k):
            assert dst[bounds[c]:bounds[c + 1]].tolist() == src[c::k].tolist(), (n, k, c)
        sizes = np.diff(bounds)
        assert sizes.max() - sizes.min() <= 1  # as even as can be
