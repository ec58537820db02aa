"""The one place where compilation choices are made for every kernel.

``fastmath`` stays off: the evaluator must agree with the reference to 1e-9 and give the same
plan for the same seed on every machine, and reassociated sums would break both.
"""

from __future__ import annotations

import os

#: Options for serial kernels: compiled once to the on-disk cache, releasing the GIL.
JIT = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")

#: Options for kernels that split work across threads with ``prange``.
PARALLEL = dict(JIT, parallel=True)

#: Set GOLDENHOUR_NUMBA_CACHE=0 to compile in memory only (e.g. on a read-only install).
if os.environ.get("GOLDENHOUR_NUMBA_CACHE", "1") == "0":
    JIT["cache"] = False
    PARALLEL["cache"] = False
