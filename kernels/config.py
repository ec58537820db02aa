"""The one place where compilation choices are made for every kernel.

``fastmath`` stays off: the evaluator must agree with the reference to 1e-9 and give the same
plan for the same seed on every machine, and reassociated sums would break both.

LLVM's superword-level (SLP) vectoriser is switched on, which Numba leaves off by default: it
packs the four lanes of a health vector-matrix product (``health._vecmat``) into vector
instructions. It only packs operations that are already independent, so without ``fastmath``
every result stays the same to the bit; it made the objective 0.79x as long at paper size and a
full evaluation 0.89x (``bench/HISTORY.md``). It is Numba's process-wide setting, so it applies
to whatever else the process compiles too; set ``NUMBA_SLP_VECTORIZE=0`` to keep it off.

On-disk caching is keyed by the whole package's sources. Numba keys a cached function by its own
file only, but kernels inline and call kernels of other files and take tuples whose layout is
defined in ``layout.py``: after an edit there, a stale cached kernel would be loaded and could
crash the process. So every kernel's cache stamp is a hash of every file of ``kernels/``, and
any edit recompiles them all (``_WholePackage``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from numba.core import config as _numba_config

#: Options for serial kernels: compiled once to the on-disk cache, releasing the GIL.
JIT = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")

#: Options for kernels that split work across threads with ``prange``.
PARALLEL = dict(JIT, parallel=True)

#: Assert mode's tolerance between a move's delta score and a full evaluation: ``ASSERT_TOL``
#: plus ``ASSERT_REL`` of the value (``kernels.search._agrees``, ``engine.algorithms._agree``).
#: The relative part is for casualty minutes of a long incident (a million or more), whose
#: last bits differ between the two sums; F, a few tens, is held to 1e-9 as before.
ASSERT_TOL = 1e-9
ASSERT_REL = 1e-12

#: Set GOLDENHOUR_NUMBA_CACHE=0 to compile in memory only (e.g. on a read-only install).
if os.environ.get("GOLDENHOUR_NUMBA_CACHE", "1") == "0":
    JIT["cache"] = False
    PARALLEL["cache"] = False

if "NUMBA_SLP_VECTORIZE" not in os.environ:
    _numba_config.SLP_VECTORIZE = 1

_HERE = Path(__file__).resolve().parent


def package_stamp(directory: Path = _HERE) -> bytes:
    """A hash of every source file of the package in ``directory``: the kernels' cache stamp."""
    h = hashlib.sha256()
    for f in sorted(directory.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.digest()


_STAMP = package_stamp()


class _WholePackage:
    """A Numba cache locator for this package's kernels, stamped with every source file."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != _HERE:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return _STAMP


def _install_locators() -> bool:
    # numba.core.caching is not public API: if it changes, caching falls back to Numba's own
    # per-file stamps (correct as long as kernels/ is not edited in place)
    try:
        from numba.core import caching

        bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
        ours = [type(f"Kernels{b.__name__}", (_WholePackage, b), {}) for b in bases]
        classes = caching.CacheImpl._locator_classes
    except AttributeError:
        return False
    if not any(issubclass(c, _WholePackage) for c in classes):
        classes[:0] = ours
    return True


LOCATORS_INSTALLED = _install_locators()
