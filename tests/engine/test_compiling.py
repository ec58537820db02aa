"""What compilation costs a run (``engine.compiling``): the command line's notice, and the seconds
that ``solve`` leaves out of its time limit."""

from __future__ import annotations

import argparse
import io
import threading
import time
from pathlib import Path

import numba
from numba.core import event

from engine import cli
import engine
from engine.compiling import NOTICE, compile_clock, compile_notice

LONDON = Path(__file__).resolve().parents[2] / "examples" / "london-5x18.json"


def _fresh(module: str):
    """A new, uncompiled jitted function that claims to live in ``module``."""

    def probe(x):
        return x + 1

    probe.__module__ = module
    return numba.njit(cache=False)(probe)


def test_the_first_kernel_compilation_is_announced_once():
    stream = io.StringIO()
    with compile_notice(stream) as listener:
        assert _fresh("kernels.probe")(1) == 2
        _fresh("kernels.probe")(2.5)
    assert stream.getvalue().splitlines() == [NOTICE]
    assert listener.told


def test_other_compilations_and_cached_kernels_are_not_announced():
    warm = _fresh("kernels.probe")
    warm(1)
    stream = io.StringIO()
    with compile_notice(stream) as listener:
        _fresh("tests.probe")(1)  # not a goldenhour kernel
        warm(3)  # compiled already: no compilation
    assert stream.getvalue() == ""
    assert not listener.told


def test_after_the_block_nothing_is_announced():
    stream = io.StringIO()
    with compile_notice(stream):
        pass
    _fresh("kernels.probe")(1)
    assert stream.getvalue() == ""


def test_the_command_line_announces_compilation_on_standard_error(monkeypatch, capsys):
    class Parser:
        def parse_args(self, argv):
            return argparse.Namespace(func=lambda args: _fresh("kernels.probe")(41) - 42)

    monkeypatch.setattr(cli, "build_parser", Parser)
    assert cli.main([]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [NOTICE]


def test_a_warm_command_prints_no_notice(capsys):
    argv = ["solve", str(LONDON), "--algorithm", "greedy", "--json"]
    cli.main(argv)  # compiles what it needs, if anything is left to compile
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert capsys.readouterr().err == ""


def test_the_clock_counts_compilation_and_nothing_else():
    warm = _fresh("kernels.probe")
    warm(1)

    @numba.njit(cache=False)
    def outer(x):  # its callee compiles within its own compilation: counted once
        return inner(x) * 2

    inner = _fresh("kernels.inner")
    with compile_clock() as clock:
        t0 = time.perf_counter()
        warm(2)
        assert clock.seconds == 0.0
        assert outer(3) == 8
        wall = time.perf_counter() - t0
        compiled = clock.seconds
        time.sleep(0.05)
        assert clock.seconds == compiled  # not ticking between compilations
    assert 0.0 < compiled <= wall


def _compiles_for(seconds: float):
    """An ``on_iteration`` callback that, the first time, stands for a kernel compiling."""
    done = []

    def on_iteration(stats, objective):
        if not done:
            done.append(stats.iterations)
            with event.trigger_event("numba:compile", data={"dispatcher": None}):
                time.sleep(seconds)

    return on_iteration, done


def test_a_time_limit_is_search_time_not_compile_time(london, warm_jit):
    on_iteration, done = _compiles_for(1.0)
    t0 = time.perf_counter()
    # a limit several chunks long even on a loaded machine (a chunk of 2 000 steps took 0.4 s
    # beside two other busy processes): the compilation must not have used it up
    result = engine.solve(london, algorithm="annealing", time_limit=2.0, callbacks={"on_iteration": on_iteration})
    wall = time.perf_counter() - t0
    s = result.stats
    assert done == [2_000]  # compiled after the first chunk...
    assert s.iterations > 2_000  # ...and searched on for the time limit
    assert s.compile_s >= 1.0  # the compilation it stood in for...
    assert s.runtime_s >= 2.0  # ...left the whole limit to the search...
    assert s.runtime_s + s.compile_s <= wall + 0.05  # ...and was not counted in it (no upper bound
    # on either alone: a loaded machine stretches both)
    assert all(t <= s.runtime_s for t, *_ in s.history)
    assert s.to_json()["compile_s"] == s.compile_s


def test_another_threads_compilation_is_not_counted():
    """Numba compiles in the calling thread: while another thread compiles, this one works on."""
    def elsewhere():
        with event.trigger_event("numba:compile", data={"dispatcher": None}):
            time.sleep(0.2)

    with compile_clock() as clock:
        other = threading.Thread(target=elsewhere)
        other.start()
        other.join()
        assert clock.seconds == 0.0
        with event.trigger_event("numba:compile", data={"dispatcher": None}):
            time.sleep(0.05)
        assert clock.seconds >= 0.05
