"""``python -m bench.report``: every figure in the report is goldenhour's score of a saved plan."""

from __future__ import annotations

import json
import re

import pytest

import engine
from bench import report


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    code = report.main(["--scenarios", "tiny", "--algorithms", "rule,greedy,descent,annealing,ortools-gls",
                        "--time-limit", "0.5", "--no-micro", "--out", str(out)])
    return code, out


def test_report_rows_are_exact_scores_of_the_saved_plans(quick_report, tiny):
    code, out = quick_report
    assert code == 0
    rows = json.loads((out / "runs.json").read_text())
    assert [r["algorithm"] for r in rows] == ["rule", "greedy", "descent", "annealing", "ortools-gls"]
    for r in rows:
        plan = engine.load_plan(tiny, out / r["plan"])
        obj = engine.evaluate(tiny, plan)
        assert obj.expected_fatalities == pytest.approx(r["expected_fatalities"], abs=1e-12)
        assert obj.casualty_minutes == pytest.approx(r["casualty_minutes"], abs=1e-9)
        assert r["feasible"] == obj.feasible
        assert 0.0 <= r["time_to_best_s"] <= r["runtime_s"] + 1e-9


def test_searches_never_end_worse_than_their_start(quick_report):
    _code, out = quick_report
    by_alg = {r["algorithm"]: r for r in json.loads((out / "runs.json").read_text())}
    for alg in ("descent", "annealing"):  # both start from greedy
        assert by_alg[alg]["expected_fatalities"] <= by_alg["greedy"]["expected_fatalities"] + 1e-12
        history = [f for _t, f in by_alg[alg]["history"]]
        assert history == sorted(history, reverse=True)  # a best-so-far curve only goes down
        assert by_alg[alg]["evaluations"] > 0


def test_markdown_table_matches_the_runs(quick_report):
    _code, out = quick_report
    text = (out / "report.md").read_text()
    rows = json.loads((out / "runs.json").read_text())
    rule = next(r["expected_fatalities"] for r in rows if r["algorithm"] == "rule")
    for r in rows:
        line = next(line for line in text.splitlines() if line.startswith(f"| {r['algorithm']} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert float(cells[1]) == pytest.approx(r["expected_fatalities"], abs=5e-5)
        change = float(re.match(r"([+-][0-9.]+) %", cells[2]).group(1))
        assert change == pytest.approx((r["expected_fatalities"] / rule - 1) * 100, abs=0.051)
    if any(p.name.startswith("convergence-") for p in out.iterdir()):
        assert "![convergence on tiny](convergence-tiny.png)" in text


def test_unknown_names_exit_2(tmp_path, capsys):
    assert report.main(["--scenarios", "nowhere", "--out", str(tmp_path)]) == 2
    assert "unknown scenario 'nowhere'" in capsys.readouterr().err
    assert report.main(["--algorithms", "magic", "--out", str(tmp_path)]) == 2


def test_a_run_without_a_plan_leaves_no_older_plan_in_its_place(tmp_path, monkeypatch):
    """OR-Tools finding nothing in its budget is a row that says so; a plan file an earlier
    report saved for that row is removed, not left to pass for this run's."""
    import bench.peer_ortools

    def no_solution(*_args, **_kwargs):
        raise RuntimeError("OR-Tools peer found no solution")

    stale = tmp_path / "plans" / "tiny-ortools-gls.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    monkeypatch.setattr(bench.peer_ortools, "solve_ortools", no_solution)
    assert report.main(["--scenarios", "tiny", "--algorithms", "rule,ortools-gls", "--time-limit", "0.1",
                        "--no-micro", "--out", str(tmp_path)]) == 0
    rows = {r["algorithm"]: r for r in json.loads((tmp_path / "runs.json").read_text())}
    assert rows["ortools-gls"]["plan"] is None and rows["rule"]["plan"] == "plans/tiny-rule.json"
    assert not stale.exists()


def test_a_run_without_a_plan_reports_the_time_it_took(tmp_path, monkeypatch):
    """A peer that overruns its budget and finds nothing is reported with its wall time, not
    the budget it was given (at 1 000 casualties OR-Tools' model building alone overran it)."""
    import time

    import bench.peer_ortools

    def slow_no_solution(*_args, **_kwargs):
        time.sleep(0.6)
        raise RuntimeError("OR-Tools peer found no solution")

    monkeypatch.setattr(bench.peer_ortools, "solve_ortools", slow_no_solution)
    assert report.main(["--scenarios", "tiny", "--algorithms", "ortools-gls", "--time-limit", "0.1",
                        "--no-micro", "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "runs.json").read_text())
    assert row["runtime_s"] >= 0.6
    assert f"| ortools-gls | no plan | — | — | — | {row['runtime_s']:.2f} s |" in (tmp_path / "report.md").read_text()
