"""Peers measured in the same run: OR-Tools routing (GLS) against goldenhour's tabu search.

Both get the same wall-clock budget on the London example and both plans are scored by
goldenhour's exact evaluator; ``extra_info`` carries both figures and their ratio. (The other
peers, the plain-Python reference evaluator and the dispatcher's ``rule``, sit beside the
benchmarks they are the baseline of, in ``test_kernels.py`` and ``test_search.py``.)
"""

from __future__ import annotations

from bench.peer_ortools import compare

#: seconds each for goldenhour's tabu and OR-Tools' guided local search
BUDGET_S = 10.0


def test_ortools_vs_tabu_same_wall_time(benchmark, london):
    out = benchmark.pedantic(compare, args=(london, BUDGET_S), rounds=1, iterations=1)
    benchmark.extra_info.update({k: out[k] for k in ("goldenhour_tabu", "ortools_gls", "ratio", "rule", "greedy",
                                                      "goldenhour_iterations", "ortools_status")})
