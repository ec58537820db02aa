"""Each casualty's health along its first segment, tabled once per model.

Every casualty's timeline starts from its health as observed, in the environment it is in then
(trapped or at the casualty clearing station, treated or not). ``ProblemArrays.start_table``
holds that health times ``P_env^n`` for every ``n`` of the power tables, so the kernels start
each timeline with two loads instead of two vector-matrix products (``kernels.health.
propagate_start``): the same numbers to the bit, a full evaluation at paper size about a tenth
shorter.

Casualties share a row when their health and environment are equal (a scenario's triage
categories give a handful), so the table is small. Rows are kept per set of power tables for
the process and only ever appended: a row never changes once made, so models derived from one
another (every online delta) share the table and look up only the casualties they rebuilt.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from kernels.health import fill_start_table
from kernels.layout import ACTIVE, ENV_CCS, ENV_CCS_TREATED, ENV_TRAPPED, ENV_TRAPPED_TREATED

#: Rows one set of power tables keeps (8 KiB each); a start beyond them is not tabled, only
#: slower. A long online incident makes a row per health report.
MAX_ROWS = 4096


class _Rows:
    """The rows made so far for the power tables ``small``, each once per (environment, health)."""

    def __init__(self, small: np.ndarray):
        self.small = small  # held, so that its id names it while this lives
        self.index: dict[tuple[int, bytes], int] = {}
        self.table = np.empty((16, small.shape[1], 4))
        # the arrays handed out, weakly: one that no model views any more is freed
        self.issued = [weakref.ref(self.table)]
        self.n = 0
        self.lock = threading.Lock()

    def owns(self, table: np.ndarray) -> bool:
        """Whether ``table`` is one this keeps (the rows made when it was handed out)."""
        return table.base is not None and any(table.base is t() for t in self.issued)

    def look_up(self, h0: np.ndarray, env: np.ndarray, which, row: np.ndarray) -> np.ndarray:
        """Set ``row[i]`` for every ``i`` in ``which``, making the rows not made yet; returns the
        rows made so far (a view: those made later are not part of it)."""
        with self.lock:
            new = []
            for i in which:
                e = int(env[i])
                if e < 0:
                    row[i] = -1
                    continue
                key = (e, h0[i].tobytes())
                r = self.index.get(key)
                if r is None and self.n + len(new) < MAX_ROWS:
                    r = self.index[key] = self.n + len(new)
                    new.append(i)
                row[i] = -1 if r is None else r
            if new:
                self._append(h0[new], env[new])
            return self.table[: self.n]

    def _append(self, h: np.ndarray, env: np.ndarray) -> None:
        k = len(env)
        if self.n + k > len(self.table):
            # a new array: models made before keep the old one, which holds all their rows
            grown = np.empty((max(2 * len(self.table), self.n + k), self.small.shape[1], 4))
            grown[: self.n] = self.table[: self.n]
            self.table = grown
            self.issued = [t for t in self.issued if t() is not None] + [weakref.ref(grown)]
        fill_start_table(np.ascontiguousarray(h), np.ascontiguousarray(env, dtype=np.int64), self.small,
                         self.table[self.n: self.n + k])
        self.n += k


_ROWS: dict[int, _Rows] = {}
_ROWS_LOCK = threading.Lock()


def _rows_for(small: np.ndarray) -> _Rows:
    with _ROWS_LOCK:
        rows = _ROWS.get(id(small))
        if rows is None:
            if len(_ROWS) >= 64:  # as engine.health.power_tables: a handful per process
                _ROWS.clear()
            rows = _ROWS[id(small)] = _Rows(small)
        return rows


def environments(status: np.ndarray, trapped: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """The environment of each casualty's first segment (-1: dead or in transit, none planned)."""
    env = np.where(trapped, np.where(treated, ENV_TRAPPED_TREATED, ENV_TRAPPED),
                   np.where(treated, ENV_CCS_TREATED, ENV_CCS)).astype(np.int64)
    env[status != ACTIVE] = -1
    return env


def start_columns(small: np.ndarray, h0: np.ndarray, status: np.ndarray, trapped: np.ndarray,
                  treated: np.ndarray, previous: tuple | None = None, refresh=None) -> dict:
    """``start_table``, ``start_row`` and ``start_env`` of ``ProblemArrays``.

    ``previous`` is ``(start_table, start_row)`` of a model these casualties come from, its rows
    already moved to their new places: only the casualties ``refresh`` are then looked up, the
    others keep their rows (unless that table is no longer this process's for ``small``).
    """
    rows = _rows_for(small)
    env = environments(status, trapped, treated)
    if previous is not None and rows.owns(previous[0]):
        table, row = previous[0], previous[1]
        if len(refresh):
            table = rows.look_up(h0, env, refresh, row)
    else:
        row = np.empty(len(env), dtype=np.int64)
        table = rows.look_up(h0, env, range(len(env)), row)
    return dict(start_table=table, start_row=row, start_env=env)
