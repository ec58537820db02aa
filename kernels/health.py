"""Health propagation ``h · P_k(δ)`` on four scalars, for the objective's inner loop.

Whole minutes come from the power tables (one vector-matrix product below the table size, a few
more above it: no horizon cap), the fraction from one linear step ``(1 − f)·h + f·(h·P)``, taken
as ``(1 − f)·h·P^r + f·h·P^(r+1)`` for ``r`` the minutes modulo the table size: the same matrix,
since every table entry is a power of the one chain and so they commute.

A timeline's last segment, the ride to hospital, is read off a table of rides made once per
model (``fill_ride_table``), and so, while the model is small enough for it, is the wait at the
site before it, together with the ride: off a table of start rows (``fill_start_ride``) when
the wait is the casualty's first segment, else off the power tables times the rides
(``fill_ride_steps``). Both are linear in the health, so they give the products' figures to
rounding.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .borrow import borrow
from .config import JIT

#: ``small`` holds ``P^n`` for ``n < TABLE`` and ``big`` ``P^(TABLE·2^j)`` (built by
#: ``engine.health.power_tables``). A constant, so that whole minutes split into a table row and
#: ``big`` factors by a mask and a shift: a division by the table's length made the objective of
#: a 1 000-casualty plan 1.1x as long.
TABLE_BITS = 8
TABLE = 1 << TABLE_BITS


@njit(**JIT, inline="always")
def _vecmat(h0, h1, h2, h3, t, k, n):
    # Tables are (env, n, 16) with the 4x4 matrix flattened row-major: one offset for (k, n), then
    # constant column indices; taking a 2-D view instead would cost reference-count updates.
    return (
        h0 * t[k, n, 0] + h1 * t[k, n, 4] + h2 * t[k, n, 8] + h3 * t[k, n, 12],
        h0 * t[k, n, 1] + h1 * t[k, n, 5] + h2 * t[k, n, 9] + h3 * t[k, n, 13],
        h0 * t[k, n, 2] + h1 * t[k, n, 6] + h2 * t[k, n, 10] + h3 * t[k, n, 14],
        h0 * t[k, n, 3] + h1 * t[k, n, 7] + h2 * t[k, n, 11] + h3 * t[k, n, 15],
    )


@njit(**JIT, inline="always")
def _blend(a0, a1, a2, a3, b0, b1, b2, b3, f):
    """``(1 − f)·a + f·b``: the linear last step of ``P(δ)``."""
    g = 1.0 - f
    return g * a0 + f * b0, g * a1 + f * b1, g * a2 + f * b2, g * a3 + f * b3


@njit(**JIT, inline="always")
def _beyond_table(a0, a1, a2, a3, env, q, f, small, big):
    """``a · P(f) · P^(TABLE·q)``: the rest of a segment of ``TABLE·q + r`` minutes and a
    fraction once its first row is read, ``a`` being the health after its first ``r`` minutes
    and fraction (``f = 0`` then) or, when ``r + 1`` is past the table, after ``TABLE − 1``
    minutes alone (the fraction ``f > 0`` still to take). The fraction is taken before the
    ``big`` factors, not after, so it does not wait for them: a timeline past the table (a
    casualty waiting hours) costs about the products of one within it, plus one a set bit of
    ``q``."""
    if f > 0.0:
        b0, b1, b2, b3 = _vecmat(a0, a1, a2, a3, small, env, np.uint64(1))
        a0, a1, a2, a3 = _blend(a0, a1, a2, a3, b0, b1, b2, b3, f)
    j = np.uint64(0)
    while q != np.uint64(0):
        if q & np.uint64(1):
            a0, a1, a2, a3 = _vecmat(a0, a1, a2, a3, big, env, j)
        q >>= np.uint64(1)
        j += np.uint64(1)
    return a0, a1, a2, a3


@njit(**JIT, inline="always")
def propagate(h0, h1, h2, h3, env, delta, small, big):
    """Health after ``delta ≥ 0`` minutes in environment ``env``; returns the new four entries.

    ``small[k, n]`` is ``P_k^n`` and ``big[k, j]`` is ``P_k^(TABLE·2^j)``, each flattened to 16
    entries (see ``engine.health.power_tables``); ``small[k, 1]`` is the chain itself.
    """
    if delta <= 0.0:
        return h0, h1, h2, h3
    whole = math.floor(delta)
    f = delta - whole
    n = np.uint64(whole)  # unsigned: see dead_after
    q = n >> np.uint64(TABLE_BITS)
    r = n & np.uint64(TABLE - 1)
    a0, a1, a2, a3 = _vecmat(h0, h1, h2, h3, small, env, r)
    if f == 0.0:
        if q == np.uint64(0):
            return a0, a1, a2, a3
    elif r + np.uint64(1) < np.uint64(TABLE):
        # (1 − f)·h·P^r + f·h·P^(r+1): two products that do not wait for each other (4 % off
        # the objective against one after the other)
        b0, b1, b2, b3 = _vecmat(h0, h1, h2, h3, small, env, r + np.uint64(1))
        a0, a1, a2, a3 = _blend(a0, a1, a2, a3, b0, b1, b2, b3, f)
        if q == np.uint64(0):
            return a0, a1, a2, a3
        f = 0.0
    return _beyond_table(a0, a1, a2, a3, env, q, f, small, big)


@njit(**JIT, inline="always")
def dead_after(h0, h1, h2, h3, env, delta, small, big):
    """Only the deceased entry of ``propagate``: what the last segment of a timeline needs.

    Uses ``P(δ) = (1 − f)·P^n + f·P^(n+1)``, so below the table size it costs two dot products
    with table columns instead of two vector-matrix products.
    """
    if delta <= 0.0:
        return h3
    whole = math.floor(delta)
    f = delta - whole
    n = int(whole)
    if n + 1 >= TABLE:
        return propagate(h0, h1, h2, h3, env, delta, small, big)[3]
    # the minutes index the table unsigned: Numba tests a signed index for a negative one, to
    # count from the end, on every read (unsigned, London's objective took 0.87x as long)
    u = np.uint64(n)
    p = h0 * small[env, u, 3] + h1 * small[env, u, 7] + h2 * small[env, u, 11] + h3 * small[env, u, 15]
    if f > 0.0:
        m = u + np.uint64(1)
        q = h0 * small[env, m, 3] + h1 * small[env, m, 7] + h2 * small[env, m, 11] + h3 * small[env, m, 15]
        p = (1.0 - f) * p + f * q
    return p


@njit(**JIT, inline="always")
def propagate_start(h0, h1, h2, h3, env, delta, small, big, table, row):
    """``propagate`` of a casualty's health as observed (``h0``..``h3``), reading its row of
    ``table`` when that row is for ``env`` (``row >= 0``).

    ``table[row, n]`` is the health as observed times ``P_env^n``, made by the same product
    ``propagate`` takes (``fill_start_table``), so the result is the same to the bit, for two loads
    instead of two vector-matrix products: every casualty's timeline starts so, and the
    products of its first segment wait on each other's loads and sums. Beyond the table the
    row is read all the same, before the ``big`` factors (``_beyond_table``).
    """
    if row >= 0 and delta > 0.0:
        n = np.uint64(delta)  # delta > 0: the floor; unsigned, as in dead_after
        f = delta - n
        q = n >> np.uint64(TABLE_BITS)
        k = n & np.uint64(TABLE - 1)
        r = np.uint64(row)
        a0, a1, a2, a3 = table[r, k, 0], table[r, k, 1], table[r, k, 2], table[r, k, 3]
        if f == 0.0:
            if q == np.uint64(0):
                return a0, a1, a2, a3
        elif k + np.uint64(1) < np.uint64(TABLE):
            m = k + np.uint64(1)
            a0, a1, a2, a3 = _blend(a0, a1, a2, a3, table[r, m, 0], table[r, m, 1], table[r, m, 2],
                                    table[r, m, 3], f)
            if q == np.uint64(0):
                return a0, a1, a2, a3
            f = 0.0
        return _beyond_table(a0, a1, a2, a3, env, q, f, small, big)
    return propagate(h0, h1, h2, h3, env, delta, small, big)


@njit(**JIT)
def fill_start_table(h, env, small, out):
    """``out[k, n] = h[k] · P_env[k]^n`` for every ``n`` of the power tables, by ``_vecmat``: a
    start table's rows (``propagate_start``, ``engine.start_table``)."""
    for k in range(h.shape[0]):
        for n in range(small.shape[1]):
            a0, a1, a2, a3 = _vecmat(h[k, 0], h[k, 1], h[k, 2], h[k, 3], small, env[k], n)
            out[k, n, 0] = a0
            out[k, n, 1] = a1
            out[k, n, 2] = a2
            out[k, n, 3] = a3


@njit(**JIT)
def fill_ride_table(travel, hosp_loc, load, env, small, big, out):
    """``out[l, h, i]``: the deceased entry of ``e_i · P_env(load + travel[l, hosp_loc[h]])``, the
    chance that a casualty in state ``i`` when picked up at place ``l`` is dead on arrival at
    hospital ``h``: a ride's column of its step matrix (``dead_on_ride``).

    Each entry is ``propagate`` of a one-hot health, so it is the step matrix the kernels use,
    by the same products, whatever the ride's length. Its arrays are borrowed
    (``kernels.borrow``): with their reference counts, 10 000 casualties' table took 5 ms, 0.7 ms
    without."""
    travel, hosp_loc, small, big, out = borrow((travel, hosp_loc, small, big, out))
    for l in range(out.shape[0]):
        for h in range(out.shape[1]):
            delta = load + travel[l, hosp_loc[h]]
            out[l, h, 0] = propagate(1.0, 0.0, 0.0, 0.0, env, delta, small, big)[3]
            out[l, h, 1] = propagate(0.0, 1.0, 0.0, 0.0, env, delta, small, big)[3]
            out[l, h, 2] = propagate(0.0, 0.0, 1.0, 0.0, env, delta, small, big)[3]
            out[l, h, 3] = propagate(0.0, 0.0, 0.0, 1.0, env, delta, small, big)[3]


@njit(**JIT, inline="always")
def dead_on_ride(h0, h1, h2, h3, ride, l, h):
    """``p_dead`` on arrival at hospital ``h`` of a casualty picked up at place ``l`` with health
    ``h0``..``h3``: one dot product with its ride's column (``fill_ride_table``), where
    ``dead_after`` took two with table columns and the fraction's step, on every timeline."""
    return h0 * ride[l, h, 0] + h1 * ride[l, h, 1] + h2 * ride[l, h, 2] + h3 * ride[l, h, 3]


@njit(**JIT)
def fill_start_ride(table, ride, out):
    """``out[k, l, h, n]``: row ``k`` of a start ``table`` (a health as observed times
    ``P_env^n``) then the ride from place ``l`` to hospital ``h``: its dot product with the
    ride's column (``fill_ride_table``). A casualty whose first segment ends at its pickup, in
    less than the table's minutes, is then read off two entries (``dead_from_start``)."""
    table, ride, out = borrow((table, ride, out))
    for k in range(out.shape[0]):
        for l in range(out.shape[1]):
            for h in range(out.shape[2]):
                for n in range(out.shape[3]):
                    total = 0.0
                    for i in range(4):
                        total += table[k, n, i] * ride[l, h, i]
                    out[k, l, h, n] = total


@njit(**JIT, inline="always")
def dead_from_start(start_ride, row, l, h, delta):
    """``p_dead`` on arrival at hospital ``h`` of a casualty who waits ``0 <= delta < TABLE - 1``
    minutes from its observation before its ride from place ``l``, its first segment being row
    ``row`` of the start table (``fill_start_ride``): ``dead_on_ride(propagate_start(...))`` to
    rounding, as in ``dead_by_steps``."""
    n = np.uint64(delta)  # delta >= 0: the floor; unsigned, as in dead_after
    f = delta - n
    p = start_ride[row, l, h, n]
    if f > 0.0:
        p = (1.0 - f) * p + f * start_ride[row, l, h, n + np.uint64(1)]
    return p


@njit(**JIT)
def fill_ride_steps(small, ride, envs, out):
    """``out[e, l, h, n, i]``: the deceased entry of ``e_i · P_env^n`` then the ride from place
    ``l`` to hospital ``h``, for ``env = envs[e]`` and every ``n`` of the power table: ``P_env^n``
    times the ride's column (``fill_ride_table``). A timeline's last segment before its ride,
    ``n`` whole minutes and a fraction in ``env``, is then two dot products (``dead_by_steps``)
    where it was two vector-matrix products and a dot product with the ride's column."""
    small, ride, envs, out = borrow((small, ride, envs, out))
    for e in range(out.shape[0]):
        k = envs[e]
        for l in range(out.shape[1]):
            for h in range(out.shape[2]):
                for n in range(out.shape[3]):
                    for i in range(4):
                        total = 0.0
                        for j in range(4):
                            total += small[k, n, 4 * i + j] * ride[l, h, j]
                        out[e, l, h, n, i] = total


#: ``ProblemArrays.ride_long`` tables a wait of ``TABLE·q`` minutes times the ride for ``q`` up to
#: this many: waits before a ride up to 38 hours, as a thousand casualties' later ones can be.
LONG = 8


@njit(**JIT)
def fill_ride_long(big, ride, envs, out):
    """``out[e, l, h, q - 1, i]``: the deceased entry of ``e_i · P_env^(TABLE·q)`` then the ride
    from place ``l`` to hospital ``h``, for ``env = envs[e]`` and ``q`` from 1 to
    ``out.shape[3]``: the ride's column (``fill_ride_table``) times ``P_env^TABLE`` (``big[env,
    0]``), ``q`` times. A wait of ``TABLE·q + r`` minutes and a fraction before a ride, past
    ``fill_ride_steps``'s and ``fill_start_ride``'s tables, is then its ``r`` minutes and fraction
    propagated and one dot product (``dead_long``), where the ``big`` factors took one
    vector-matrix product a set bit of ``q`` and the ride another dot product."""
    big, ride, envs, out = borrow((big, ride, envs, out))
    for e in range(out.shape[0]):
        k = envs[e]
        for l in range(out.shape[1]):
            for h in range(out.shape[2]):
                c0, c1, c2, c3 = ride[l, h, 0], ride[l, h, 1], ride[l, h, 2], ride[l, h, 3]
                for q in range(out.shape[3]):
                    # (P^TABLE · c)_i = sum_j P^TABLE[i, j] c_j, the matrix flattened row-major
                    c0, c1, c2, c3 = (
                        big[k, 0, 0] * c0 + big[k, 0, 1] * c1 + big[k, 0, 2] * c2 + big[k, 0, 3] * c3,
                        big[k, 0, 4] * c0 + big[k, 0, 5] * c1 + big[k, 0, 6] * c2 + big[k, 0, 7] * c3,
                        big[k, 0, 8] * c0 + big[k, 0, 9] * c1 + big[k, 0, 10] * c2 + big[k, 0, 11] * c3,
                        big[k, 0, 12] * c0 + big[k, 0, 13] * c1 + big[k, 0, 14] * c2 + big[k, 0, 15] * c3,
                    )
                    out[e, l, h, q, 0] = c0
                    out[e, l, h, q, 1] = c1
                    out[e, l, h, q, 2] = c2
                    out[e, l, h, q, 3] = c3


@njit(**JIT, inline="always")
def dead_long(h0, h1, h2, h3, long, e, l, h, q):
    """``p_dead`` on arrival at hospital ``h`` of a casualty with health ``h0``..``h3`` who waits
    ``TABLE·(q + 1)`` minutes in environment ``e`` of ``long`` (``fill_ride_long``) before its ride
    from place ``l``: ``dead_on_ride(propagate(...))`` to rounding, the powers of one chain
    commuting."""
    return h0 * long[e, l, h, q, 0] + h1 * long[e, l, h, q, 1] + h2 * long[e, l, h, q, 2] + h3 * long[e, l, h, q, 3]


@njit(**JIT, inline="always")
def dead_by_steps(h0, h1, h2, h3, steps, e, l, h, delta):
    """``p_dead`` on arrival at hospital ``h`` of a casualty with health ``h0``..``h3`` who waits
    ``0 <= delta < TABLE - 1`` minutes in environment ``e`` of ``steps`` (``fill_ride_steps``)
    before its ride from place ``l``: ``dead_on_ride(propagate(...))`` to rounding, since
    ``P(δ) = (1 − f)·P^n + f·P^(n+1)`` and the ride's column is linear in the health."""
    n = np.uint64(delta)  # delta >= 0: the floor; unsigned, as in dead_after
    f = delta - n
    p = h0 * steps[e, l, h, n, 0] + h1 * steps[e, l, h, n, 1] + h2 * steps[e, l, h, n, 2] + h3 * steps[e, l, h, n, 3]
    if f > 0.0:
        m = n + np.uint64(1)
        q = (h0 * steps[e, l, h, m, 0] + h1 * steps[e, l, h, m, 1] + h2 * steps[e, l, h, m, 2]
             + h3 * steps[e, l, h, m, 3])
        p = (1.0 - f) * p + f * q
    return p
