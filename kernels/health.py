"""Health propagation ``h · P_k(δ)`` on four scalars, for the objective's inner loop.

Whole minutes come from the power tables (one vector-matrix product below the table size, a few
more above it: no horizon cap), the fraction from one linear step ``(1 − f)·h + f·(h·P)``.
"""

from __future__ import annotations

import math

from numba import njit

from .config import JIT


@njit(**JIT, inline="always")
def _vecmat(h0, h1, h2, h3, m):
    return (
        h0 * m[0, 0] + h1 * m[1, 0] + h2 * m[2, 0] + h3 * m[3, 0],
        h0 * m[0, 1] + h1 * m[1, 1] + h2 * m[2, 1] + h3 * m[3, 1],
        h0 * m[0, 2] + h1 * m[1, 2] + h2 * m[2, 2] + h3 * m[3, 2],
        h0 * m[0, 3] + h1 * m[1, 3] + h2 * m[2, 3] + h3 * m[3, 3],
    )


@njit(**JIT)
def propagate(h0, h1, h2, h3, env, delta, small, big, chains):
    """Health after ``delta ≥ 0`` minutes in environment ``env``; returns the new four entries."""
    if delta <= 0.0:
        return h0, h1, h2, h3
    whole = math.floor(delta)
    f = delta - whole
    n = int(whole)
    table = small.shape[1]
    if n < table:
        h0, h1, h2, h3 = _vecmat(h0, h1, h2, h3, small[env, n])
    else:
        q = n // table
        h0, h1, h2, h3 = _vecmat(h0, h1, h2, h3, small[env, n - q * table])
        j = 0
        while q > 0:
            if q & 1:
                h0, h1, h2, h3 = _vecmat(h0, h1, h2, h3, big[env, j])
            q >>= 1
            j += 1
    if f > 0.0:
        p0, p1, p2, p3 = _vecmat(h0, h1, h2, h3, chains[env])
        g = 1.0 - f
        h0, h1, h2, h3 = g * h0 + f * p0, g * h1 + f * p1, g * h2 + f * p2, g * h3 + f * p3
    return h0, h1, h2, h3


@njit(**JIT)
def dead_after(h0, h1, h2, h3, env, delta, small, big, chains):
    """Only the deceased entry of ``propagate``: what the last segment of a timeline needs.

    Uses ``P(δ) = (1 − f)·P^n + f·P^(n+1)``, so below the table size it costs two dot products
    with table columns instead of two vector-matrix products.
    """
    if delta <= 0.0:
        return h3
    whole = math.floor(delta)
    f = delta - whole
    n = int(whole)
    if n + 1 >= small.shape[1]:
        return propagate(h0, h1, h2, h3, env, delta, small, big, chains)[3]
    m = small[env, n]
    p = h0 * m[0, 3] + h1 * m[1, 3] + h2 * m[2, 3] + h3 * m[3, 3]
    if f > 0.0:
        m = small[env, n + 1]
        q = h0 * m[0, 3] + h1 * m[1, 3] + h2 * m[2, 3] + h3 * m[3, 3]
        p = (1.0 - f) * p + f * q
    return p
