"""Scale: load + validate + travel-time build of large random scenarios."""

from __future__ import annotations

import pytest

import engine
from engine.generate import generate
from engine.plan import problem_arrays


@pytest.mark.parametrize("casualties,paramedics,hospitals", [(1000, 150, 30), (10_000, 1000, 150)])
def test_load_validate_travel(benchmark, casualties, paramedics, hospitals):
    data = generate("random", seed=0, casualties=casualties, paramedics=paramedics, fire=casualties // 100,
                    hospitals=hospitals)

    def load():
        sc = engine.load_scenario(data)
        return problem_arrays(sc)

    P = benchmark.pedantic(load, rounds=3, iterations=1)
    benchmark.extra_info["locations"] = int(P.travel.shape[0])
