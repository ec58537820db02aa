"""The ``goldenhour`` command line (SPEC §10): schema, validate, generate, evaluate, usage errors.

Most commands run in-process through ``engine.cli.main`` (fast, output captured by ``capsys``);
a couple run the installed console script as a real process, to check the exit code it returns.
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
from engine.generate import generate

ROOT = Path(__file__).resolve().parents[2]
LONDON = ROOT / "examples" / "london-5x18.json"
BAD = ROOT / "tests" / "data" / "bad"
GOOD_SCENARIO = BAD / "good-scenario.json"
GOOD_GRAPH = BAD / "good-graph-scenario.json"
GOOD_PLAN = BAD / "good-plan.json"
LINE = re.compile(r"^goldenhour: \S.*: .+")
OBJECTIVE_KEYS = {"expected_fatalities", "overflow_fatalities", "casualty_minutes", "feasible"}

import jsonschema  # in the test extra


def _console_script() -> list[str]:
    here = Path(sys.executable).parent / "goldenhour"
    if here.exists():
        return [str(here)]
    found = shutil.which("goldenhour")
    return [found] if found else [sys.executable, "-m", "engine.cli"]


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_error_line(rc: int, out: str, err: str, mentions: str | None = None) -> str:
    assert rc == 2, (rc, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert LINE.match(lines[0]), lines[0]
    if mentions is not None:
        assert mentions in lines[0], lines[0]
    return lines[0]


# --- schema -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema() -> dict:
    from engine.model import ScenarioModel

    return ScenarioModel.model_json_schema(by_alias=True)


def test_schema_prints_a_json_schema(capsys, schema):
    rc, out, err = run(capsys, "schema")
    assert rc == 0 and err == ""
    printed = json.loads(out)
    assert printed == schema
    assert printed["type"] == "object"
    assert "casualties" in printed["properties"]
    assert set(printed["required"]) == {"format", "network", "hospitals", "sites", "responders", "casualties"}
    assert printed.get("additionalProperties") is False  # unknown keys are errors (SPEC §4)
    jsonschema.validators.validator_for(printed).check_schema(printed)


@pytest.mark.parametrize("path", [LONDON, GOOD_SCENARIO, GOOD_GRAPH], ids=lambda p: p.name)
def test_schema_accepts_valid_scenarios(schema, path):
    data = json.loads(path.read_text(encoding="utf-8"))
    errors = [e.message for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize("preset", ["tiny", "paper-london", "random"])
def test_schema_accepts_generated_scenarios(schema, preset):
    options = {"casualties": 30, "paramedics": 4, "fire": 2, "hospitals": 3} if preset == "random" else {}
    data = generate(preset, seed=5, **options)
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(data)) == []


@pytest.mark.parametrize("name", ["unknown-key-top.json", "unknown-key-nested.json", "capacity-string.json",
                                  "negative-capacity.json", "fractional-capacity.json", "unknown-kind.json",
                                  "missing-casualties.json", "wrong-format.json", "speed-bool.json"])
def test_schema_rejects_what_it_can_express(schema, name):
    data = json.loads((BAD / name).read_text(encoding="utf-8"))
    assert not jsonschema.validators.validator_for(schema)(schema).is_valid(data)


def test_schema_console_script(tmp_path):
    proc = subprocess.run(_console_script() + ["schema"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "casualties" in json.loads(proc.stdout)["properties"]


# --- validate -----------------------------------------------------------------------------

def test_validate_london(capsys):
    rc, out, err = run(capsys, "validate", LONDON)
    assert rc == 0 and err == ""
    assert "valid" in out and "90 casualties" in out


# --- generate -----------------------------------------------------------------------------

def test_generate_tiny_is_reproducible(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run(capsys, "generate", "--preset", "tiny", "--seed", 3, "--out", a) == (0, "", "")
    assert run(capsys, "generate", "--preset", "tiny", "--seed", 3, "--out", b) == (0, "", "")
    assert a.read_bytes() == b.read_bytes()
    data = json.loads(a.read_text())
    assert data == generate("tiny", seed=3)
    sc = engine.load_scenario(a)
    assert sc.model.name == "tiny" and 3 <= len(sc.model.casualties) <= 5
    assert run(capsys, "validate", a)[0] == 0
    # without --out the same document goes to stdout
    rc, out, err = run(capsys, "generate", "--preset", "tiny", "--seed", 3)
    assert rc == 0 and err == "" and json.loads(out) == data


def test_generate_random_sizes(capsys, tmp_path):
    out = tmp_path / "random.json"
    rc, stdout, err = run(capsys, "generate", "--preset", "random", "--casualties", 50, "--paramedics", 5,
                          "--fire", 2, "--hospitals", 4, "--seed", 1, "--out", out)
    assert (rc, stdout, err) == (0, "", "")
    sc = engine.load_scenario(out)
    m = sc.model
    assert len(m.casualties) == 50 and len(m.hospitals) == 4
    assert sum(r.kind == "paramedic" for r in m.responders) == 5
    assert sum(r.kind == "fire" for r in m.responders) == 2


def test_generate_helsinki_anywhere_writes_a_scenario_that_loads(capsys, tmp_path):
    """Its network files are named relative to where the scenario is written (SPEC §4)."""
    out = tmp_path / "elsewhere" / "helsinki.json"
    out.parent.mkdir()
    assert run(capsys, "generate", "--preset", "helsinki", "--out", out)[0] == 0
    sc = engine.load_scenario(out)
    assert len(sc.model.casualties) == 20
    committed = engine.load_scenario(ROOT / "examples" / "helsinki.json")
    assert (sc.travel == committed.travel).all()


def test_generate_unknown_preset(capsys):
    line = assert_one_error_line(*run(capsys, "generate", "--preset", "no-such-preset"))
    assert "no-such-preset" in line


def test_generate_random_needs_its_options(capsys):
    assert_one_error_line(*run(capsys, "generate", "--preset", "random", "--casualties", 10), mentions="paramedics")


def test_generate_bad_option_value(capsys):
    assert_one_error_line(*run(capsys, "generate", "--preset", "random", "--casualties", -5, "--paramedics", 1,
                               "--fire", 1, "--hospitals", 1))


def test_generate_writes_into_folders_it_makes(capsys, tmp_path):
    """A folder on the way of --out that does not exist yet is made, as ``solve --out`` does."""
    target = tmp_path / "new" / "deeper" / "x.json"
    assert run(capsys, "generate", "--preset", "tiny", "--out", target) == (0, "", "")
    assert json.loads(target.read_text(encoding="utf-8"))["format"] == "goldenhour.scenario/1"


def test_generate_to_an_unwritable_place(capsys, tmp_path):
    """An --out below a file, not a folder, is bad input: one line, exit 2, no traceback."""
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "x.json"
    crash = None
    try:
        result = run(capsys, "generate", "--preset", "tiny", "--out", target)
    except OSError as exc:
        crash = f"{type(exc).__name__}: {exc}"
    if crash:
        pytest.fail(f"goldenhour generate raised {crash}")
    assert_one_error_line(*result)


# --- evaluate -----------------------------------------------------------------------------

def test_evaluate_json_prints_the_objective(capsys):
    rc, out, err = run(capsys, "evaluate", GOOD_SCENARIO, GOOD_PLAN, "--json")
    assert rc == 0 and err == ""
    obj = json.loads(out)
    assert set(obj) == OBJECTIVE_KEYS
    assert isinstance(obj["feasible"], bool) and obj["feasible"]
    for key in OBJECTIVE_KEYS - {"feasible"}:
        assert isinstance(obj[key], float)
    expected = engine.evaluate(GOOD_SCENARIO, GOOD_PLAN)
    assert obj == expected.to_json()
    assert 0.0 <= obj["overflow_fatalities"] <= obj["expected_fatalities"] <= 7


def test_evaluate_text(capsys):
    rc, out, err = run(capsys, "evaluate", GOOD_SCENARIO, GOOD_PLAN)
    assert rc == 0 and err == ""
    assert "expected fatalities" in out


# --- usage errors -------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["frobnicate"],
    [],
    ["validate"],
    ["evaluate", str(GOOD_SCENARIO)],
    ["generate"],
    ["generate", "--preset", "tiny", "--seed", "abc"],
    ["generate", "--preset", "tiny", "--seed", "-1"],
    ["validate", str(GOOD_SCENARIO), "--no-such-flag"],
    ["evaluate", str(GOOD_SCENARIO), str(GOOD_PLAN), "extra"],
], ids=["unknown-command", "no-command", "validate-no-file", "evaluate-no-plan", "generate-no-preset",
        "seed-not-int", "seed-negative", "unknown-flag", "extra-argument"])
def test_usage_errors_are_one_line(capsys, argv):
    assert_one_error_line(*run(capsys, *argv))


def test_usage_error_console_script(tmp_path):
    proc = subprocess.run(_console_script() + ["frobnicate"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), lines
