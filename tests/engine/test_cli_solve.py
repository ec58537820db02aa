"""``goldenhour solve`` (SPEC §10) through ``engine.cli.main``: output, plan files, errors."""

from __future__ import annotations

import json
import re

import pytest

import engine
from engine.cli import main
from engine.generate import generate

ALGORITHMS = ("rule", "greedy", "descent", "tabu", "annealing")
LINE = re.compile(r"^(\w+): expected fatalities (\d+\.\d{4}) \(overflow (\d+\.\d{4})\), "
                  r"casualty minutes (\d+\.\d), feasible: (yes|no)$")


@pytest.fixture
def scenario_file(tmp_path):
    d = generate("random", seed=4, casualties=9, paramedics=3, fire=1, hospitals=2, sites=2)
    d["hospitals"][0]["capacity"] = 1
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_solve_each_algorithm_writes_a_plan_that_evaluates_to_the_printed_objective(
        capsys, tmp_path, scenario_file, algorithm):
    plan_path = tmp_path / f"{algorithm}.plan.json"
    code, out, err = run(capsys, "solve", scenario_file, "--algorithm", algorithm, "--iterations", 7,
                         "--seed", 2, "--out", plan_path)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    m = LINE.match(lines[0])
    assert m, lines[0]
    assert m.group(1) == algorithm
    it = int(re.match(r"^(\d+) iterations, (\d+) moves applied, (\d+) move evaluations, ", lines[1]).group(1))
    assert lines[1].endswith(f"; plan written to {plan_path}")
    if algorithm in ("tabu", "annealing"):
        assert it == 7
    elif algorithm in ("rule", "greedy"):
        assert it == 0
    else:
        assert 0 <= it <= 7
    doc = json.loads(plan_path.read_text(encoding="utf-8"))
    assert doc["format"] == "goldenhour.plan/1"
    assert doc["schedule"] and all("start" in rec and "end" in rec for rec in doc["schedule"])
    code, out, err = run(capsys, "evaluate", scenario_file, plan_path, "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj == doc["objective"]
    assert obj["feasible"] == (m.group(5) == "yes")
    assert abs(obj["expected_fatalities"] - float(m.group(2))) <= 0.5e-4 + 1e-12
    assert abs(obj["overflow_fatalities"] - float(m.group(3))) <= 0.5e-4 + 1e-12
    assert abs(obj["casualty_minutes"] - float(m.group(4))) <= 0.05 + 1e-9


def test_solve_json_output_and_out_file_score_identically(capsys, tmp_path, scenario_file):
    plan_path = tmp_path / "plan.json"
    code, out, err = run(capsys, "solve", scenario_file, "--algorithm", "tabu", "--iterations", 10, "--json",
                         "--out", plan_path)
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"objective", "stats"}  # the plan went to the file
    assert set(data["stats"]) >= {"algorithm", "iterations", "evaluations", "moves", "runtime_s", "history"}
    assert data["stats"]["algorithm"] == "tabu" and data["stats"]["iterations"] == data["stats"]["moves"] == 10
    assert data["stats"]["evaluations"] > 0 and data["stats"]["history"]
    code, out, err = run(capsys, "evaluate", scenario_file, plan_path, "--json")
    assert code == 0, err
    assert json.loads(out) == data["objective"]  # identical, not just close
    # and the library agrees with both
    obj = engine.evaluate(str(scenario_file), str(plan_path))
    assert obj.to_json() == data["objective"]


def test_solve_json_without_out_includes_the_plan(capsys, scenario_file):
    code, out, err = run(capsys, "solve", scenario_file, "--algorithm", "greedy", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"objective", "stats", "plan"}
    sc = engine.load_scenario(str(scenario_file))
    plan = engine.load_plan(sc, data["plan"])
    assert engine.evaluate(sc, plan).to_json() == data["objective"] == data["plan"]["objective"]


def test_solve_is_reproducible_from_the_command_line(capsys, tmp_path, scenario_file):
    texts = []
    for k in range(2):
        path = tmp_path / f"p{k}.json"
        code, _out, err = run(capsys, "solve", scenario_file, "--algorithm", "annealing", "--iterations", 3000,
                              "--seed", 5, "--out", path)
        assert code == 0, err
        doc = json.loads(path.read_text(encoding="utf-8"))
        texts.append(json.dumps({k: doc[k] for k in ("routes", "objective", "schedule")}, sort_keys=True))
    assert texts[0] == texts[1]


def test_solve_explain_prints_the_hospital_load(capsys, scenario_file):
    code, out, err = run(capsys, "solve", scenario_file, "--algorithm", "greedy", "--explain")
    assert code == 0, err
    lines = out.splitlines()
    i = lines.index("hospital load:")
    sc = engine.load_scenario(str(scenario_file))
    rows = lines[i + 1: i + 1 + len(sc.model.hospitals)]
    admitted = 0
    for h, row in zip(sc.model.hospitals, rows):
        m = re.match(rf"^\s+{re.escape(h.id)}\s+(\d+) admitted /\s+(\d+) beds\s+overflow fatalities (\d+\.\d+)$", row)
        assert m, row
        assert int(m.group(2)) == h.capacity
        admitted += int(m.group(1))
    assert admitted == len(sc.model.casualties)  # every casualty of this scenario is carried
    assert any(line.startswith("top ") for line in lines)


def test_solve_json_explain(capsys, scenario_file):
    code, out, err = run(capsys, "solve", scenario_file, "--algorithm", "greedy", "--json", "--explain")
    assert code == 0, err
    data = json.loads(out)
    ex = data["explanation"]
    assert sum(h["admissions"] for h in ex["hospitals"]) == 9
    assert abs(sum(c["share"] for c in ex["casualties"]) - data["objective"]["expected_fatalities"]) <= 1e-9


def test_solve_with_a_time_limit(capsys, scenario_file):
    code, out, err = run(capsys, "solve", scenario_file, "--algorithm", "annealing", "--time-limit", 0.3)
    assert code == 0, err
    assert LINE.match(out.splitlines()[0])


def test_solve_annealing_default_budget(capsys, tmp_path):
    """No budget given: annealing runs its default iteration budget (SPEC §11: reproducible)."""
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(generate("tiny", seed=1)), encoding="utf-8")
    code, out, err = run(capsys, "solve", path, "--algorithm", "annealing")
    assert code == 0, err
    assert "200000 iterations" in out.splitlines()[1]


# --- bad input ------------------------------------------------------------------------------

def _invalid_scenario(path):
    d = generate("tiny", seed=0)
    d["hospitals"][0]["capacity"] = -1
    d["responders"][0]["colour"] = "green"
    d["casualties"][1]["site"] = "atlantis"
    path.write_text(json.dumps(d), encoding="utf-8")
    return path


def _check_errors(code, out, err, n_lines):
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == n_lines, err
    assert all(line.startswith("goldenhour: ") for line in lines), err
    return lines


@pytest.mark.parametrize("argv,expect", [
    (["--algorithm", "magic"], "magic"),
    (["--iterations", "-1"], "iterations"),
    (["--time-limit", "-2"], "time-limit"),
    (["--iterations", "ten"], "ten"),
    (["--time-limit", "1", "--iterations", "5"], "iterations"),
    (["--seed", "-1"], "seed"),
    (["--time-limit", "inf"], "time-limit"),
    (["--time-limit", "nan"], "time-limit"),
])
def test_bad_arguments(capsys, scenario_file, argv, expect):
    code, out, err = run(capsys, "solve", scenario_file, *argv)
    lines = _check_errors(code, out, err, 1)
    assert expect in lines[0]


def test_missing_scenario_file(capsys, tmp_path):
    missing = tmp_path / "nowhere.json"
    code, out, err = run(capsys, "solve", missing, "--algorithm", "greedy")
    lines = _check_errors(code, out, err, 1)
    assert str(missing) in lines[0]


def test_scenario_not_json(capsys, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{\"format\": ", encoding="utf-8")
    code, out, err = run(capsys, "solve", path)
    lines = _check_errors(code, out, err, 1)
    assert str(path) in lines[0]


def test_invalid_scenario_one_line_per_problem(capsys, tmp_path):
    path = _invalid_scenario(tmp_path / "bad.json")
    with pytest.raises(engine.ScenarioError) as info:
        engine.load_scenario(str(path))
    problems = info.value.problems
    assert len(problems) >= 2
    code, out, err = run(capsys, "solve", path, "--algorithm", "tabu", "--iterations", 3)
    lines = _check_errors(code, out, err, len(problems))
    assert lines == [f"goldenhour: {p}" for p in problems]
    assert any("capacity" in line for line in lines) and any("colour" in line for line in lines)


@pytest.mark.parametrize("command", ["simulate", "experiment", "replay"])
def test_a_negative_seed_is_bad_input_for_every_command(capsys, tmp_path, scenario_file, command):
    """numpy's generators take no negative seed: refused up front, one line, exit 2."""
    extra = [tmp_path / "requests.jsonl"] if command == "replay" else []
    code, out, err = run(capsys, command, scenario_file, *extra, "--seed", "-3")
    lines = _check_errors(code, out, err, 1)
    assert "seed" in lines[0]


@pytest.mark.parametrize("time", ["Infinity", "NaN", "true"])
def test_replay_refuses_a_time_that_is_not_a_finite_number(capsys, tmp_path, scenario_file, time):
    log = tmp_path / "requests.jsonl"
    log.write_text(f'{{"type": "clock", "time": 1.0}}\n{{"type": "clock", "time": {time}}}\n', encoding="utf-8")
    code, out, err = run(capsys, "replay", scenario_file, log)
    lines = _check_errors(code, out, err, 1)
    assert f"{log}:2" in lines[0]


def test_solve_refuses_an_unwritable_out_before_searching(capsys, tmp_path, scenario_file, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["engine.solve"], "solve", lambda *a, **k: pytest.fail("searched before checking --out"))
    (tmp_path / "a-file").write_text("")
    code, out, err = run(capsys, "solve", scenario_file, "--out", tmp_path / "a-file" / "plan.json")
    assert code == 2 and err.startswith("goldenhour: --out: ") and out == ""


def test_solve_reports_every_problem_at_once(capsys, tmp_path):
    """The arguments', the output's and the scenario's problems together, one line each."""
    missing = tmp_path / "nowhere.json"
    code, out, err = run(capsys, "solve", missing, "--iterations", "-1", "--out", tmp_path)
    lines = _check_errors(code, out, err, 3)
    assert lines[0].startswith("goldenhour: --iterations: ")
    assert lines[1].startswith("goldenhour: --out: ")
    assert str(missing) in lines[2]


def test_solve_writes_its_plan_into_folders_it_makes(capsys, tmp_path, scenario_file):
    """A folder on the way of ``--out`` that does not exist yet is made, as ``simulate`` and
    ``experiment`` make theirs (it passed the check made before the search, and the plan was
    then lost)."""
    plan_path = tmp_path / "new" / "deeper" / "plan.json"
    code, out, err = run(capsys, "solve", scenario_file, "--algorithm", "greedy", "--out", plan_path, "--json")
    assert code == 0, err
    doc = json.loads(plan_path.read_text(encoding="utf-8"))
    assert doc["objective"] == json.loads(out)["objective"]


def test_generate_names_the_option_that_is_wrong(capsys):
    code, out, err = run(capsys, "generate", "--preset", "random", "--casualties", "-5")
    assert code == 2 and err.startswith("goldenhour: --casualties: ") and out == ""


def test_statistics_json_has_null_not_nan_for_a_plan_in_a_cycle_of_waits():
    from engine.result import Statistics

    s = Statistics("tabu", history=[(0.0, 0, float("nan"), float("nan")), (0.1, 1, 2.5, 30.0)])
    text = json.dumps(s.to_json(), allow_nan=False)  # NaN is not JSON
    assert json.loads(text)["history"] == [[0.0, 0, None, None], [0.1, 1, 2.5, 30.0]]
