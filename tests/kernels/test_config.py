"""The kernels' on-disk cache is keyed by the whole package's sources (``kernels.config``).

Numba keys a cached function by its own file only; a kernel that inlines code from another file
(or takes ``layout.py``'s tuples) would otherwise be loaded stale after an edit there, and a
stale kernel can crash the process.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys

import kernels
from kernels import config
from numba.core.registry import CPUDispatcher


def _cached_kernels():
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__ and obj._cache is not None \
                    and hasattr(obj._cache, "_impl"):
                yield f"{info.name}.{name}", obj


def test_every_cached_kernel_is_stamped_with_the_whole_package():
    assert config.LOCATORS_INSTALLED
    found = dict(_cached_kernels())
    assert {"evaluate.evaluate", "search.sweep", "memo.sweep_memo", "layout.make_workspace"} <= set(found)
    for name, kernel in found.items():
        locator = kernel._cache._impl._locator
        assert isinstance(locator, config._WholePackage), name
        assert locator.get_source_stamp() == config.package_stamp(), name


def test_the_stamp_changes_with_any_file_of_the_package(tmp_path):
    copy = tmp_path / "kernels"
    shutil.copytree(config._HERE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert config.package_stamp(copy) == config.package_stamp()
    layout = copy / "layout.py"
    layout.write_text(layout.read_text() + "\n# an edit elsewhere than in the cached kernel's file\n")
    assert config.package_stamp(copy) != config.package_stamp()


def _slp_after_import(env: dict) -> str:
    code = "import kernels.config; from numba.core import config; print(config.SLP_VECTORIZE)"
    clean = {k: v for k, v in os.environ.items() if k != "NUMBA_SLP_VECTORIZE"}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_kernels_switch_on_slp_vectorisation_unless_told_otherwise():
    # Numba's default is off; the kernels' health products rely on it for their speed
    assert _slp_after_import({}) == "1"
    assert _slp_after_import({"NUMBA_SLP_VECTORIZE": "0"}) == "0"
