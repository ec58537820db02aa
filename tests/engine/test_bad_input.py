"""Malformed inputs are rejected with every problem named, on the library and on the command line.

The corpus is ``tests/data/bad``: one file per malformed scenario or plan, and ``manifest.json``
saying, for each file, which problems must be reported (SPEC §4, §5, §10, §11):

- ``kind`` ``scenario``: ``engine.load_scenario(FILE)`` raises ``engine.ScenarioError`` and
  ``goldenhour validate FILE`` exits 2;
- ``kind`` ``plan``: ``engine.load_plan(good, FILE)`` raises ``engine.PlanError`` and
  ``goldenhour evaluate good-scenario.json FILE`` exits 2;
- each ``expect`` entry: some problem has exactly that ``path`` (``$FILE`` = the file name as
  given) and a message containing that substring (case-insensitive); ``count``: exactly that many
  problems (one per stderr line), ``min_count``: at least that many.

The command line runs in-process (``engine.cli.main``) for every file, and as a real subprocess of
the installed console script for a handful of representative ones (each start imports numba).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine import cli
from engine.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data" / "bad"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]
GOOD_SCENARIO = DATA / MANIFEST["good_scenario"]
GOOD_PLAN = DATA / MANIFEST["good_plan"]
GOOD_GRAPH = DATA / MANIFEST["good_graph_scenario"]
LINE = re.compile(r"^goldenhour: \S.*: .+")
ERROR_TYPE = {"scenario": engine.ScenarioError, "plan": engine.PlanError}

#: A few files that also run through the real console script: file-level, field, network,
#: several-at-once and plan errors.
SUBPROCESS_CASES = ("syntax-error.json", "nan-health.json", "graph-unreachable.json",
                    "multi-field-errors.json", "plan-fire-transport.json", "deep-nesting.json")
#: Files with three independent errors each (SPEC §4: all errors at once).
MULTI_CASES = ("unknown-key-nested.json", "multi-field-errors.json", "multi-reference-errors.json",
               "multi-mixed-errors.json", "plan-multi-errors.json", "plan-multi-mixed-errors.json",
               "multi-layer-errors.json", "multi-layer-reference-errors.json")

CASE_BY_FILE = {c["file"]: c for c in CASES}


def _ids(case) -> str:
    return case["file"]


@pytest.fixture(scope="module")
def good():
    return engine.load_scenario(GOOD_SCENARIO)


def _command(case, file: str) -> list[str]:
    if case["kind"] == "scenario":
        return ["validate", file]
    return ["evaluate", str(GOOD_SCENARIO), file]


def _console_script() -> list[str]:
    """The installed ``goldenhour`` next to this interpreter, else on PATH, else ``-m engine.cli``."""
    here = Path(sys.executable).parent / "goldenhour"
    if here.exists():
        return [str(here)]
    found = shutil.which("goldenhour")
    return [found] if found else [sys.executable, "-m", "engine.cli"]


def _library_problems(case, good) -> list:
    """The problems the library reports for a corpus file; fails on any other outcome."""
    file = DATA / case["file"]
    expected = ERROR_TYPE[case["kind"]]
    crash = None
    try:
        if case["kind"] == "scenario":
            engine.load_scenario(file)
        else:
            engine.load_plan(good, file)
    except InputError as err:
        assert type(err) is expected, f"raised {type(err).__name__}, expected {expected.__name__}"
        return err.problems
    except Exception as exc:  # noqa: BLE001 - anything else is the bug under test
        crash = f"{type(exc).__name__} ({str(exc)[:200]})"
    if crash:
        pytest.fail(f"{case['file']}: raised {crash} instead of {expected.__name__}")
    pytest.fail(f"{case['file']}: accepted, expected {expected.__name__}")


def _expected(case, file_label: str) -> list[tuple[str, str]]:
    return [(e["path"].replace("$FILE", file_label), e["message"]) for e in case["expect"]]


def _check_count(case, n: int, what: str) -> None:
    if "count" in case:
        assert n == case["count"], f"{case['file']}: {n} {what}, expected exactly {case['count']}"
    assert n >= case.get("min_count", 1), f"{case['file']}: {n} {what}, expected at least {case.get('min_count', 1)}"


def _main(name: str, argv: list[str]) -> int:
    """``engine.cli.main(argv)``; an exception escaping it (a traceback for the user) fails the test."""
    crash = None
    try:
        return cli.main(argv)
    except Exception as exc:  # noqa: BLE001
        crash = f"{type(exc).__name__}: {str(exc)[:200]}"
    pytest.fail(f"{name}: goldenhour raised {crash}")


def _check_stderr(case, out: str, err: str, file_label: str) -> list[str]:
    assert "Traceback" not in out and "Traceback" not in err, f"{case['file']}: a traceback was printed"
    assert out.strip() == "", f"{case['file']}: bad input printed on stdout: {out[:300]!r}"
    lines = err.splitlines()
    assert lines, f"{case['file']}: nothing on stderr"
    for line in lines:
        assert LINE.match(line), f"{case['file']}: stderr line not 'goldenhour: <path>: <what>': {line!r}"
    for path, message in _expected(case, file_label):
        prefix = f"goldenhour: {path}: "
        assert any(line.startswith(prefix) and message.lower() in line[len(prefix):].lower() for line in lines), (
            f"{case['file']}: no stderr line starts with {prefix!r} and contains {message!r}; got {lines}")
    _check_count(case, len(lines), "stderr lines")
    return lines


# --- the corpus itself ---------------------------------------------------------------------

def test_corpus_is_complete():
    files = ({p.name for p in DATA.iterdir() if p.is_file()}  # files/: the network files some cases read
             - {"manifest.json", GOOD_SCENARIO.name, GOOD_PLAN.name, GOOD_GRAPH.name})
    listed = [c["file"] for c in CASES]
    assert len(listed) == len(set(listed)), "a file is listed twice in manifest.json"
    assert files == set(listed), f"unlisted: {sorted(files - set(listed))}, missing: {sorted(set(listed) - files)}"
    assert len(CASES) >= 30
    for c in CASES:
        assert c["kind"] in ERROR_TYPE and c["expect"], c["file"]
    for name in SUBPROCESS_CASES + MULTI_CASES:
        assert name in CASE_BY_FILE, name


def test_good_bases_are_valid(good):
    """Every bad file is a good base with one thing broken: the bases themselves must pass."""
    assert engine.evaluate(good, GOOD_PLAN).feasible
    graph = engine.load_scenario(GOOD_GRAPH)
    assert engine.evaluate(graph, GOOD_PLAN).feasible
    # the plan exercises every status the plan cases rely on
    dead, in_transit, under_way, treated = (good.casualty_index[c] for c in ("c3", "c7", "c5", "c6"))
    assert good.health[dead].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert good.model.casualties[in_transit].in_transit is not None
    assert good.model.casualties[under_way].rescue_ends_at is not None
    assert good.model.casualties[treated].treated


def test_good_bases_pass_the_command_line(capsys):
    assert cli.main(["validate", str(GOOD_SCENARIO)]) == 0
    assert cli.main(["validate", str(GOOD_GRAPH)]) == 0
    assert cli.main(["evaluate", str(GOOD_SCENARIO), str(GOOD_PLAN), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""


# --- the library ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_library_names_every_problem(case, good):
    problems = _library_problems(case, good)
    for p in problems:
        assert isinstance(p, engine.Problem)
        assert p.path and p.message, p
        assert "\n" not in p.path and "\n" not in p.message, p
    for path, message in _expected(case, str(DATA / case["file"])):
        assert any(p.path == path and message.lower() in p.message.lower() for p in problems), (
            f"{case['file']}: no problem at {path!r} mentioning {message!r}; got {[str(p) for p in problems]}")
    _check_count(case, len(problems), "problems")


def test_library_accepts_dicts_too(good):
    """The same rules apply to a dict as to a file (no file label is needed)."""
    data = json.loads(GOOD_SCENARIO.read_text())
    data["casualties"][1]["health"] = [0.5, 0.5, 0.2, 0.0]
    data["hospitals"][0]["capacity"] = -1
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(data)
    assert {p.path for p in err.value.problems} == {"casualties[1].health", "hospitals[0].capacity"}
    plan = json.loads(GOOD_PLAN.read_text())
    plan["routes"]["fire-2"] = [{"task": "rescue", "casualty": "c2"}]
    with pytest.raises(engine.PlanError) as err:
        engine.load_plan(good, plan)
    assert [p.path for p in err.value.problems] == ["routes.fire-2[0].casualty"]


def test_missing_files_are_one_clean_problem(good, tmp_path):
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(tmp_path / "nope.json")
    assert len(err.value.problems) == 1 and "nope.json" in err.value.problems[0].path
    with pytest.raises(engine.PlanError) as err:
        engine.load_plan(good, tmp_path / "nope.json")
    assert len(err.value.problems) == 1
    # said as for a scenario, not as Python's errno text
    assert str(err.value.problems[0]) == f"{tmp_path / 'nope.json'}: no such file"
    with pytest.raises(engine.PlanError) as err:
        engine.load_plan(good, tmp_path)  # a folder
    assert str(err.value.problems[0]).startswith(f"{tmp_path}: cannot read: ") and "Errno" not in str(err.value)


# --- the command line, in-process ------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_cli_prints_one_line_per_problem(case, capsys):
    file = str(DATA / case["file"])
    rc = _main(case["file"], _command(case, file))
    out, err = capsys.readouterr()
    assert rc == 2, f"{case['file']}: exit {rc}, expected 2; stderr {err[:300]!r}"
    _check_stderr(case, out, err, file)


@pytest.mark.parametrize("name", MULTI_CASES)
def test_several_errors_are_reported_at_once(name, capsys):
    """SPEC §4: "all errors at once": three independent errors give three lines, in one run."""
    case = CASE_BY_FILE[name]
    file = str(DATA / name)
    rc = _main(case["file"], _command(case, file))
    out, err = capsys.readouterr()
    assert rc == 2
    lines = _check_stderr(case, out, err, file)
    assert len(lines) >= 3


def test_missing_file_on_the_command_line(capsys, tmp_path):
    assert cli.main(["validate", str(tmp_path / "nope.json")]) == 2
    assert cli.main(["evaluate", str(GOOD_SCENARIO), str(tmp_path / "nope.json")]) == 2
    assert cli.main(["validate", str(tmp_path)]) == 2  # a directory
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3 and all(LINE.match(line) for line in lines), lines


# --- the command line, as a real process -------------------------------------------------------

@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_console_script(name, tmp_path):
    case = CASE_BY_FILE[name]
    file = str(DATA / name)
    proc = subprocess.run(_console_script() + _command(case, file), capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, f"{name}: exit {proc.returncode}; stderr tail {proc.stderr[-500:]!r}"
    _check_stderr(case, proc.stdout, proc.stderr, file)


# --- extreme but well-formed values ------------------------------------------------------------

EXTREMES = [
    pytest.param(("hospitals", 0, "capacity"), 2**63, id="capacity-2^63"),
    pytest.param(("casualties", 0, "rescue_minutes"), 1e19, id="rescue-minutes-1e19"),
    pytest.param(("casualties", 1, "treatment_minutes"), 1e300, id="treatment-minutes-1e300"),
]


@pytest.mark.parametrize("where, value", EXTREMES)
def test_extreme_values_are_rejected_or_scored_sanely(where, value, tmp_path):
    """A value that ``validate`` lets through must not crash ``evaluate`` or give impossible numbers.

    Either the loader rejects it (exit 2, one clean line per problem) or the objective is a real
    expected number of deaths: 0 <= overflow <= F <= number of casualties. Run as a subprocess,
    since an out-of-range table index in a kernel could take the interpreter down.
    """
    data = json.loads(GOOD_SCENARIO.read_text())
    kind, i, key = where
    data[kind][i][key] = value
    scenario = tmp_path / "extreme.json"
    scenario.write_text(json.dumps(data))
    proc = subprocess.run(_console_script() + ["evaluate", str(scenario), str(GOOD_PLAN), "--json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, f"evaluate crashed: {proc.stderr.strip().splitlines()[-1]}"
    if proc.returncode == 2:
        lines = proc.stderr.splitlines()
        assert lines and all(LINE.match(line) for line in lines), lines
        return
    assert proc.returncode == 0, proc.stderr[-500:]
    obj = json.loads(proc.stdout)
    F, overflow = obj["expected_fatalities"], obj["overflow_fatalities"]
    assert F is not None and overflow is not None, obj
    assert 0.0 <= overflow <= F <= len(data["casualties"]) + 1e-9, obj


# --- what the loaders take, and what validate checks beyond the file -------------------------------

@pytest.mark.parametrize("source", [None, 5, b"{}"])
def test_loaders_name_what_they_were_given_instead_of_a_path(source):
    with pytest.raises(engine.ScenarioError, match="expected a file path or a dict"):
        engine.load_scenario(source)
    sc = engine.load_scenario(GOOD_SCENARIO)
    with pytest.raises(engine.PlanError, match="expected a file path, a dict or a Plan"):
        engine.load_plan(sc, source)


def test_an_integer_literal_of_thousands_of_digits_is_invalid_json(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text('{"format": "goldenhour.scenario/1", "time": ' + "9" * 5000 + "}")
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(path)
    assert [p.path for p in err.value.problems] == [str(path)]
    assert err.value.problems[0].message.startswith("invalid JSON")


def test_validate_refuses_what_solve_refuses_a_trapped_casualty_and_no_fire_team(tmp_path, capsys):
    d = json.loads(GOOD_SCENARIO.read_text(encoding="utf-8"))
    d["responders"] = [r for r in d["responders"] if r["kind"] != "fire"]
    assert any(c.get("trapped") for c in d["casualties"])
    path = tmp_path / "s.json"
    path.write_text(json.dumps(d))
    engine.load_scenario(path)  # a valid file...
    assert cli.main(["validate", str(path)]) == 2  # ...for which no plan can be made
    err = capsys.readouterr().err
    assert err == "goldenhour: responders: trapped casualties wait for a rescue but no fire team is left\n"
    assert cli.main(["solve", str(path), "--iterations", "1"]) == 2
    assert capsys.readouterr().err == err


def test_a_whole_number_of_beds_as_a_float_and_a_byte_order_mark_are_valid(tmp_path):
    """The published schema's "integer" admits 2.0, as exporters write it, and some editors
    start a file with a byte-order mark (RFC 8259 lets a parser ignore it): both load. 2.5 beds
    do not."""
    d = json.loads(GOOD_SCENARIO.read_text(encoding="utf-8"))
    d["hospitals"][0]["capacity"] = 2.0
    path = tmp_path / "beds.json"
    path.write_text(json.dumps(d), encoding="utf-8-sig")  # with the mark
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    sc = engine.load_scenario(path)
    assert sc.model.hospitals[0].capacity == 2 and type(sc.model.hospitals[0].capacity) is int
    assert cli.main(["validate", str(path)]) == 0
    d["hospitals"][0]["capacity"] = 2.5
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(d)
    assert [p.path for p in err.value.problems] == ["hospitals[0].capacity"]


def test_evaluate_given_its_two_files_swapped_says_which_is_which(capsys):
    """Both formats have a ``format`` path, so the line says what was given where."""
    assert cli.main(["evaluate", str(GOOD_SCENARIO), str(GOOD_SCENARIO)]) == 2
    assert capsys.readouterr().err.strip().endswith("a scenario file where a plan file was expected")
    assert cli.main(["evaluate", str(GOOD_PLAN), str(GOOD_PLAN)]) == 2
    assert capsys.readouterr().err.strip().endswith("a plan file where a scenario file was expected")
