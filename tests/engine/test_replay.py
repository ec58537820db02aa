"""``goldenhour replay`` (SPEC §10, engine/cli_solve.py ``cmd_replay``) on the London example.

examples/london-deltas.jsonl holds four task requests and five deltas, one of which (line 5)
names an unknown casualty and must be rejected without stopping the replay.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.audit import FIELDS, read_audit
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "london-5x18.json"
DELTAS = ROOT / "examples" / "london-deltas.jsonl"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_replay_prints_issues_and_rejections_and_writes_the_audit(tmp_path, capsys):
    audit = tmp_path / "audit.jsonl"
    code = main(["replay", str(SCENARIO), str(DELTAS), "--audit", str(audit), "--iterations-per-minute", "100"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    recs = records(DELTAS)
    requests = [(i, r) for i, r in enumerate(recs, start=1) if r["type"] == "next_task"]
    assert len(requests) == 4
    # one line per task request, naming the responder, in order
    issue_lines = [ln for ln in lines if re.match(r"^\s*\d+\.\d\d\s+[\w-]+: ", ln)]
    assert len(issue_lines) == len(requests), out
    for ln, (_, r) in zip(issue_lines, requests):
        assert f"{r['responder']}:" in ln
        assert f"{r['time']:8.2f}" in ln
        what = ln.split(": ", 1)[1]
        assert what == "wait" or re.match(r"^(rescue|treat|transport) c\d+( -> \S+)?$", what), ln
        if what.startswith("transport"):
            assert " -> " in what
    # exactly one rejection: the unknown casualty on line 5
    rejected = [ln for ln in lines if "rejected" in ln]
    assert len(rejected) == 1, out
    assert "line 5" in rejected[0] and "c999" in rejected[0]
    assert lines[-1].startswith("final: expected fatalities ")
    assert str(audit) in lines[-1]
    # the audit log: one row per issued task, matching what was printed
    issued = [ln for ln in issue_lines if not ln.endswith(": wait")]
    table = read_audit(audit)
    assert table.num_rows == len(issued)
    assert table.column_names == list(FIELDS)
    rows = table.to_pylist()
    for row, ln in zip(rows, issued):
        assert f"{row['responder']}: {row['task']} {row['casualty']}" in ln
        if row["task"] == "transport":
            assert ln.endswith(f"-> {row['hospital']}")
        else:
            assert row["hospital"] is None
        assert ln.lstrip().startswith(f"{row['time']:.2f}")
    for r in rows:
        assert r["objective"] is not None and r["objective"] >= 0


def test_replay_is_reproducible(tmp_path, capsys):
    outs = []
    for k in range(2):
        audit = tmp_path / f"audit{k}.jsonl"
        assert main(["replay", str(SCENARIO), str(DELTAS), "--audit", str(audit),
                     "--iterations-per-minute", "50", "--seed", "3"]) == 0
        out = capsys.readouterr().out
        outs.append((out.replace(str(audit), "AUDIT"), audit.read_text(encoding="utf-8")))
    assert outs[0] == outs[1]


def test_replay_default_audit_path_next_to_the_deltas(tmp_path, capsys):
    deltas = tmp_path / "d.jsonl"
    deltas.write_text(json.dumps({"type": "next_task", "time": 0.0, "responder": "amb-01"}) + "\n", encoding="utf-8")
    assert main(["replay", str(SCENARIO), str(deltas), "--iterations-per-minute", "0"]) == 0
    out = capsys.readouterr().out
    assert "amb-01:" in out
    assert read_audit(tmp_path / "d.audit.jsonl").num_rows == 1


def test_replay_malformed_line_is_bad_input(tmp_path, capsys):
    deltas = tmp_path / "bad.jsonl"
    good = DELTAS.read_text(encoding="utf-8").splitlines()
    lines = good[:2] + ['{"type": "clock", "time": 1.0'] + good[2:]  # line 3 is cut short
    deltas.write_text("\n".join(lines) + "\n", encoding="utf-8")
    audit = tmp_path / "audit.jsonl"
    code = main(["replay", str(SCENARIO), str(deltas), "--audit", str(audit), "--iterations-per-minute", "10"])
    out, err = capsys.readouterr()
    assert code == 2
    err_lines = err.splitlines()
    assert len(err_lines) == 1, err
    assert err_lines[0].startswith(f"goldenhour: {deltas}:3: "), err
    assert "Traceback" not in err
    assert out == ""  # nothing is replayed from a file that does not parse
    assert not audit.exists() or audit.read_text() == ""


@pytest.mark.parametrize("line", ['[1, 2]', '{"type": "clock"}', '{"type": "clock", "time": "soon"}', 'nonsense'])
def test_replay_line_that_is_not_a_timed_object(tmp_path, capsys, line):
    deltas = tmp_path / "bad.jsonl"
    deltas.write_text(json.dumps({"type": "clock", "time": 0.0}) + "\n\n" + line + "\n", encoding="utf-8")
    code = main(["replay", str(SCENARIO), str(deltas), "--audit", str(tmp_path / "a.jsonl")])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == [err.splitlines()[0]] and err.startswith(f"goldenhour: {deltas}:3: ")


def test_replay_prints_a_refused_huge_time_as_one_short_field(tmp_path, capsys):
    """A finite time past the model's 1e9 minutes is rejected and the replay goes on; the
    transcript gave it in full (1e300 as 301 digits)."""
    deltas = tmp_path / "far.jsonl"
    deltas.write_text(json.dumps({"type": "clock", "time": 1e300}) + "\n"
                      + json.dumps({"type": "next_task", "time": 1.0, "responder": "nope"}) + "\n", encoding="utf-8")
    code = main(["replay", str(SCENARIO), str(deltas), "--audit", str(tmp_path / "a.jsonl")])
    out, err = capsys.readouterr()
    assert code == 0, err
    refused = [ln for ln in out.splitlines() if "rejected (line 1)" in ln]
    assert len(refused) == 1 and refused[0].split()[0] == "1e+300" and len(refused[0]) < 200, out


def test_replay_writes_its_own_audit_log_not_after_a_previous_one(tmp_path, capsys):
    """Run twice to one log, the second run's rows came after the first's, time going back."""
    audit = tmp_path / "audit.jsonl"
    for _ in range(2):
        assert main(["replay", str(SCENARIO), str(DELTAS), "--audit", str(audit), "--iterations-per-minute", "10"]) == 0
    once = read_audit(audit).num_rows
    assert 0 < once == len([ln for ln in capsys.readouterr().out.splitlines() if "rejected" not in ln
                            and re.match(r"^\s*\d+\.\d\d\s+[\w-]+: (rescue|treat|transport)", ln)]) // 2


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full (a disk that is always full)")
def test_replay_whose_audit_log_the_disk_refuses_is_bad_input(tmp_path, capsys):
    code = main(["replay", str(SCENARIO), str(DELTAS), "--audit", "/dev/full"])
    err = capsys.readouterr().err
    assert code == 2 and err == "goldenhour: /dev/full: cannot write the audit log: No space left on device\n"


def test_replay_missing_deltas_file(tmp_path, capsys):
    code = main(["replay", str(SCENARIO), str(tmp_path / "nope.jsonl")])
    _, err = capsys.readouterr()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("goldenhour: ")


def test_replay_bad_scenario(tmp_path, capsys):
    bad = tmp_path / "s.json"
    bad.write_text("{}", encoding="utf-8")
    code = main(["replay", str(bad), str(DELTAS), "--audit", str(tmp_path / "a.jsonl")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("goldenhour: ") and "Traceback" not in err


def test_replay_negative_iterations(tmp_path, capsys):
    code = main(["replay", str(SCENARIO), str(DELTAS), "--iterations-per-minute", "-1",
                 "--audit", str(tmp_path / "a.jsonl")])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("goldenhour: --iterations-per-minute")


def test_replay_searches_a_long_gap_as_an_hour(tmp_path, capsys, monkeypatch):
    # a log that jumps a year between two lines: searched as 60 minutes, not as 525 600
    from engine.planner import Planner
    asked = []
    real_step = Planner.step
    monkeypatch.setattr(Planner, "step", lambda self, n: (asked.append(n), real_step(self, min(n, 10)))[1])
    log = tmp_path / "jump.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"type": "clock", "time": 10.0},
        {"type": "next_task", "time": 525_600.0, "responder": "fire-01"},
        {"type": "clock", "time": 525_630.0},
    ]) + "\n", encoding="utf-8")
    code = main(["replay", str(SCENARIO), str(log), "--iterations-per-minute", "7",
                 "--audit", str(tmp_path / "a.jsonl")])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert asked == [70, 60 * 7, 30 * 7]


def test_replay_reports_every_malformed_line_and_replays_none(tmp_path, capsys):
    deltas = tmp_path / "bad.jsonl"
    huge = "9" * 400
    deltas.write_text("\n".join([
        '{"type": "clock", "time": 1.0}',
        '{"type": "next_task", "time": 1.0, "responder": "amb-01", "hospital": "RLH"}',  # not a request's key
        '{"type": "clock", "time": 1e999}',
        f'{{"type": "clock", "time": {huge}}}',  # an integer no float holds
        'nonsense',
    ]) + "\n", encoding="utf-8")
    audit = tmp_path / "a.jsonl"
    code = main(["replay", str(SCENARIO), str(deltas), "--audit", str(audit)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert [line.split(": ")[1] for line in lines] == [f"{deltas}:{i}" for i in (2, 3, 4, 5)], err
    assert "unknown keys: hospital" in lines[0]
    assert not audit.exists()


def test_replay_refuses_a_line_that_gives_a_key_twice(tmp_path, capsys):
    """JSON keeps the last of two ``time`` keys silently: a delta meant for 1.0 would apply at 9.0."""
    deltas = tmp_path / "twice.jsonl"
    deltas.write_text('{"type": "clock", "time": 1.0}\n{"type": "clock", "time": 1.0, "time": 9.0}\n',
                      encoding="utf-8")
    code = main(["replay", str(SCENARIO), str(deltas), "--audit", str(tmp_path / "a.jsonl")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"goldenhour: {deltas}:2: time: the key is given more than once"), err
    assert err.count("\n") == 1


def test_replay_of_a_file_that_is_not_utf8_names_the_line(tmp_path, capsys):
    deltas = tmp_path / "bad.jsonl"
    deltas.write_bytes(b'{"type": "clock", "time": 1.0}\n{"type": "clock", "time": 2.0, "x": "\xff"}\n')
    code = main(["replay", str(SCENARIO), str(deltas), "--audit", str(tmp_path / "a.jsonl")])
    _, err = capsys.readouterr()
    assert code == 2 and err == f"goldenhour: {deltas}:2: not UTF-8 text\n"


def test_replay_with_an_audit_log_it_cannot_write_is_bad_input(tmp_path, capsys):
    code = main(["replay", str(SCENARIO), str(DELTAS), "--audit", str(tmp_path)])  # a folder
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith(f"goldenhour: {tmp_path}: cannot write the audit log") and "Traceback" not in err


def test_a_rejected_delta_changes_nothing_not_even_the_search_before_it(tmp_path, capsys):
    """A delta far in the future that is refused must not have the search run for the minutes up
    to it (nor move where the next line's minutes are counted from): the replay with it is the
    replay without it, but for the line saying it was rejected."""
    lines = DELTAS.read_text(encoding="utf-8").splitlines()
    bad = json.dumps({"type": "health_observed", "time": 999.0, "casualty": "nobody", "health": "immediate"})
    outs = []
    for k, body in enumerate((lines, lines[:2] + [bad] + lines[2:])):
        deltas, audit = tmp_path / f"deltas{k}.jsonl", tmp_path / f"audit{k}.jsonl"
        deltas.write_text("\n".join(body) + "\n", encoding="utf-8")
        assert main(["replay", str(SCENARIO), str(deltas), "--audit", str(audit), "--iterations-per-minute", "40",
                     "--algorithm", "tabu"]) == 0
        out = capsys.readouterr().out.replace(str(audit), "AUDIT")
        out = re.sub(r"\(line \d+\)", "(line)", out)  # the lines after the extra one are numbered one more
        outs.append(([ln for ln in out.splitlines() if "nobody" not in ln], audit.read_text(encoding="utf-8")))
    assert outs[1] == outs[0]
