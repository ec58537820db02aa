"""The README's library examples run as written and do what their comments say."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_the_library_examples_run_as_written(tmp_path, monkeypatch, warm_jit):
    blocks = _python_blocks()
    assert len(blocks) >= 2
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), ns)
    result, plan = ns["result"], ns["plan"]
    assert ns["scenario"].model.casualties and result.stats.iterations == 100
    assert json.loads((tmp_path / "plan.json").read_text())["format"] == "goldenhour.plan/1"
    assert engine.evaluate(ns["scenario"], plan).expected_fatalities == result.objective.expected_fatalities
    for block in blocks[1:]:  # the online example goes on from the first one's scenario
        exec(compile(block, "README.md", "exec"), ns)
    assert ns["task"] is not None and ns["task"].pinned
    assert {"scenario.json", "plan.json", "observations.json"} <= set(os.listdir(tmp_path / "state"))
    later = ns["later"]
    try:
        assert later.time == ns["planner"].time
        assert later._pins == ns["planner"]._pins
    finally:
        later.close()
    audit = engine.audit.read_audit(tmp_path / "audit.jsonl")
    assert audit.column("responder").to_pylist() == ["amb-01"]
