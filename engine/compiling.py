"""What the kernels' compilation costs a run: a notice for the command line, and the seconds.

The first call of each kernel compiles it with Numba: minutes on a fresh install (README), then
never again while ``kernels/`` is unchanged, as the compiled code is cached on disk. Numba
announces each compilation (a cache miss, not a cache load) with its ``numba:compile`` event; a
kernel's callees compile within its own event. Two listeners use it:

- ``compile_notice``: the command line says once, on standard error, that kernels are
  compiling, so that a first run does not look hung; a warm run prints nothing.
- ``compile_clock``: the seconds the calling thread spent compiling, which ``solve`` leaves out
  of its time limit and ``runtime_s``: ten seconds of search should not be spent compiling it.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

from numba.core import event

#: Not the ``goldenhour: <path>: <what>`` of an error line: a script reading those keeps working.
NOTICE = "goldenhour note: compiling the kernels on first use; this takes minutes, once (then cached on disk)"


def _ours(dispatcher) -> bool:
    module = getattr(dispatcher.py_func, "__module__", None) or ""
    return module == "kernels" or module.startswith("kernels.")


class _FirstCompilation(event.Listener):
    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.told = False

    def on_start(self, ev) -> None:
        if not self.told and _ours(ev.data["dispatcher"]):
            self.told = True
            print(NOTICE, file=self.stream if self.stream is not None else sys.stderr, flush=True)

    def on_end(self, ev) -> None:
        pass


@contextmanager
def compile_notice(stream: TextIO | None = None) -> Iterator[_FirstCompilation]:
    """Within the block, the first compilation of a kernel prints ``NOTICE`` to ``stream``
    (standard error by default); the listener's ``told`` says whether it did."""
    listener = _FirstCompilation(stream)
    with event.install_listener("numba:compile", listener):
        yield listener


class CompileClock(event.Listener):
    """Seconds the thread that made it spent compiling, from the outermost compilation of each
    nest. Numba compiles in the calling thread; another thread's compilation does not stop this
    one's work, so it is not counted."""

    def __init__(self):
        self._lock = threading.Lock()
        self._thread = threading.get_ident()
        self._done = 0.0
        self._depth = 0
        self._since = 0.0

    def on_start(self, ev) -> None:
        if threading.get_ident() != self._thread:
            return
        with self._lock:
            if self._depth == 0:
                self._since = time.perf_counter()
            self._depth += 1

    def on_end(self, ev) -> None:
        if threading.get_ident() != self._thread:
            return
        with self._lock:
            if self._depth == 0:  # began before the clock was installed
                return
            self._depth -= 1
            if self._depth == 0:
                self._done += time.perf_counter() - self._since

    @property
    def seconds(self) -> float:
        """The seconds compiled so far, the compilation under way included."""
        with self._lock:
            return self._done + (time.perf_counter() - self._since if self._depth else 0.0)


@contextmanager
def compile_clock() -> Iterator[CompileClock]:
    """A ``CompileClock`` counting the calling thread's compilations within the block."""
    clock = CompileClock()
    with event.install_listener("numba:compile", clock):
        yield clock
