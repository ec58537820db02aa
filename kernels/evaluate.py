"""Full evaluation of one solution, and of many in parallel (SPEC §6 + §7)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .borrow import borrow
from .config import JIT, PARALLEL
from .layout import CYCLE, make_workspace
from .objective import objective
from .schedule import schedule


@njit(**JIT, inline="always")
def _evaluate(P, starts, order, hosp, pins, W):
    """``evaluate``'s body, for a caller that inlines it (the batch); its arrays borrowed by that caller."""
    status = schedule(P, starts, order, hosp, pins, W)
    if status == CYCLE:
        return np.nan, np.nan, np.nan, status
    F, overflow, T = objective(P, hosp, W)
    return F, overflow, T, status


@njit(**JIT)
def evaluate(P, starts, order, hosp, pins, W):
    """Schedule and score one solution; returns ``(F, overflow, T, status)``.

    A cycle of waits has no objective: ``F``, ``overflow`` and ``T`` are nan. ``schedule`` and
    ``objective`` are inlined here: 9 % faster than calling them (``python -m bench.ab_kernels``).
    """
    P, starts, order, hosp, pins, W = borrow((P, starts, order, hosp, pins, W))
    return _evaluate(P, starts, order, hosp, pins, W)


@njit(**JIT)
def evaluate_repeat(P, starts, order, hosp, pins, W, repeats):
    """Evaluate the same solution ``repeats`` times: an evaluation's cost without a call's.

    The evaluation is inlined, as the batch and the searches run it. Calling ``evaluate``
    instead adds the passing of the problem's and workspace's sixty arrays to each (0.2-0.3 µs
    at paper size: ``bench/test_kernels.py::test_full_evaluation_called``).
    """
    P, starts, order, hosp, pins, W = borrow((P, starts, order, hosp, pins, W))
    F = 0.0
    for _ in range(repeats):
        F, _o, _t, _s = _evaluate(P, starts, order, hosp, pins, W)
    return F


def row_width(n_resp: int, n_cas: int) -> int:
    """Width of one batch row: ``starts`` (R + 1), ``order`` (3·C slots), ``hosp`` (C)."""
    return n_resp + 1 + 3 * n_cas + n_cas


@njit(**JIT)
def _evaluate_rows(P, rows, pins, lo, hi, W, out_F, out_overflow, out_T, out_status):
    """One thread's share of ``evaluate_batch``: rows ``lo`` to ``hi`` in workspace ``W``."""
    P, rows, pins, W = borrow((P, rows, pins, W))
    out_F, out_overflow, out_T, out_status = borrow((out_F, out_overflow, out_T, out_status))
    n_cas = P.h0.shape[0]
    n_resp = P.resp_loc.shape[0]
    for i in range(lo, hi):
        row = rows[i]
        starts = row[: n_resp + 1]
        order = row[n_resp + 1: n_resp + 1 + 3 * n_cas]
        hosp = row[n_resp + 1 + 3 * n_cas:]
        # inlined: a call passes the problem's and workspace's sixty arrays, which cost 0.3 µs of
        # a 3.4 µs evaluation, 0.65 µs of a 5.1 µs one with hospitals over their beds
        F, o, T, s = _evaluate(P, starts, order, hosp, pins, W)
        out_F[i] = F
        out_overflow[i] = o
        out_T[i] = T
        out_status[i] = s


@njit(**PARALLEL)
def evaluate_batch(P, rows, pins, out_F, out_overflow, out_T, out_status, n_threads):
    """Evaluate every row of ``rows`` (see ``row_width``) in parallel.

    Rows are split into one contiguous chunk per thread; each chunk has its own workspace, and
    each row writes only its own output slots, so no reduction is needed.
    """
    n_rows = rows.shape[0]
    n_cas = P.h0.shape[0]
    n_resp = P.resp_loc.shape[0]
    n_hosp = P.hosp_loc.shape[0]
    n_chunks = min(n_threads, max(n_rows, 1))
    for chunk in prange(n_chunks):
        W = make_workspace(n_cas, n_resp, n_hosp, 3 * n_cas)
        _evaluate_rows(P, rows, pins, chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks, W,
                       out_F, out_overflow, out_T, out_status)
