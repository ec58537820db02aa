"""How a sweep's moves are shared among threads (kernels/score.py: ``deal``, ``share``)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from kernels.score import BLOCK, deal, share


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_each_thread_is_dealt_every_kth_block(k):
    rng = np.random.default_rng(k)
    for n in [0, 1, 5, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 3 * BLOCK + 7, 97, 1000, 4321]:
        src = rng.permutation(10 * n + 1)[:n].astype(np.int64)
        dst = np.full(n, -1, np.int64)
        deal(src, n, k, dst)
        bounds = [share.py_func(c, n, k) for c in range(k + 1)]
        assert bounds[0] == 0 and bounds[-1] == n
        blocks = [src[b * BLOCK:(b + 1) * BLOCK].tolist() for b in range(-(-n // BLOCK))]
        for c in range(k):
            mine = [x for b in blocks[c::k] for x in b]
            assert dst[bounds[c]:bounds[c + 1]].tolist() == mine, (n, k, c)
        sizes = np.diff(bounds)
        assert sizes.max() - sizes.min() <= BLOCK  # as even as blocks allow


def test_a_share_passed_on_compiles_its_callee_once():
    """The sweeps pass ``share``'s result (inlined) to ``score_moves``. A sum begun at the literal
    0 made Numba compile the callee a second time, for literal arguments no call uses: minutes
    of a cold compilation for ``score_moves``."""

    @numba.njit(cache=False)
    def callee(lo, hi):
        return hi - lo

    @numba.njit(cache=False)
    def caller(n, k):
        total = 0
        for c in range(k):
            total += callee(share(c, n, k), share(c + 1, n, k))
        return total

    assert caller(1000, 3) == 1000
    assert len(callee.signatures) == 1, callee.signatures
