"""Observation histories (engine/observations.py) across a snapshot: a restored planner counts a
late report from when it was made, as the planner it was taken from does.

The scenario is ``generate("tiny", seed=0)`` (see ``test_deltas``): c003 is at the CCS, c002 too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import ScenarioError
from engine.observations import DELIVERED, HISTORY_FORMAT, history_json, load_history
from engine.planner import HISTORY_FILE, Planner

from test_deltas import assert_consistent, cas, tiny, vec

PICKUP = {"type": "task_started", "time": 6.0, "responder": "amb-01", "task": "transport", "casualty": "c003",
          "hospital": "RJ122"}
#: made at 3.0, before c003 was picked up at 6.0, and reported at 9.0
LATE = {"type": "health_observed", "time": 9.0, "casualty": "c003", "health": [0.5, 0.3, 0.2, 0.0],
        "observed_at": 3.0}


@pytest.fixture
def picked_up():
    """A planner that saw c003 picked up at 6.0 (its health carried from 0.0 at the CCS)."""
    p = Planner(tiny(), algorithm="descent", seed=0)
    p.apply(PICKUP)
    yield p
    p.close()


def test_a_restored_planner_takes_a_late_observation_as_the_original_does(picked_up, tmp_path):
    p = picked_up
    q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
    try:
        before = vec(cas(q, "c003")["health"]).copy()
        for planner in (p, q):
            planner.apply(LATE)
        assert cas(q, "c003") == cas(p, "c003")
        assert not np.allclose(vec(cas(q, "c003")["health"]), before)  # the report did count
        assert q.best()[1] == p.best()[1]
        assert_consistent(q)
    finally:
        q.close()


def test_without_its_history_a_restored_planner_drops_the_late_observation(picked_up, tmp_path):
    """What the history file is for: without it, the pickup's roll-forward looks like a newer
    observation, and the report made before it is taken as stale."""
    scenario, plan = picked_up.snapshot(tmp_path / "snap")
    (tmp_path / "snap" / HISTORY_FILE).unlink()
    q = Planner.restore(scenario, plan, algorithm="descent", seed=0)
    try:
        before = dict(cas(q, "c003"))
        q.apply(LATE)
        assert cas(q, "c003") == before
        picked_up.apply(LATE)
        assert cas(picked_up, "c003") != before
    finally:
        q.close()


def test_a_restored_planner_ignores_a_late_report_of_a_casualty_delivered_before_the_snapshot(tmp_path):
    p = Planner(tiny(), algorithm="descent", seed=0)
    try:
        p.apply(dict(PICKUP, time=4.0))
        arrival = cas(p, "c003")["in_transit"]["arrival"]
        p.apply({"type": "task_completed", "time": arrival, "responder": "amb-01", "task": "transport",
                 "casualty": "c003"})
        q = Planner.restore(*p.snapshot(tmp_path / "snap"), algorithm="descent", seed=0)
        try:
            batch = {"type": "health_observed", "time": arrival + 1.0, "observed_at": 3.0, "observations": [
                {"casualty": "c003", "health": "deceased"}, {"casualty": "c002", "health": "immediate"}]}
            for planner in (p, q):
                planner.apply(batch)  # not an unknown casualty: known to have been delivered
            assert cas(q, "c002") == cas(p, "c002")
            assert q._model["delivered_fatalities"] == p._model["delivered_fatalities"]
        finally:
            q.close()
    finally:
        p.close()


def test_a_history_reads_back_as_it_was_written(picked_up, tmp_path):
    p = picked_up
    p.apply({"type": "health_observed", "time": 7.0, "casualty": "c002", "health": "urgent", "observed_at": 6.5})
    p._seen["c004"] = (DELIVERED, (), None)  # as if delivered (its id is still in the scenario below)
    doc = history_json(p._seen, p._started, p._issued_at)
    assert doc["delivered"] == ["c004"] and doc["casualties"]["c003"]["carried"] == [[6.0, "ccs"]]
    path = tmp_path / "h.json"
    path.write_text(json.dumps(dict(doc, delivered=[])))
    seen, started, issued_at = load_history(path, p.scenario)
    assert started == p._started and issued_at == p._issued_at
    assert seen == {k: v for k, v in p._seen.items() if k != "c004"}


@pytest.mark.parametrize("change,where", [
    (lambda d: d.update(format="goldenhour.observations/0"), "format"),
    (lambda d: d["casualties"].update(c999={"observed": 1.0}), "casualties.c999"),
    (lambda d: d["casualties"]["c003"].update(carried=[[6.0, "ward"]]), "casualties.c003.carried[0]"),
    (lambda d: d["casualties"]["c003"].update(observed="soon"), "casualties.c003.observed"),
    (lambda d: d["casualties"]["c003"].update(seen=True), "casualties.c003.seen"),
    (lambda d: d.update(delivered=["c002"]), "delivered"),
    (lambda d: d["deliveries"].update(gone={"hospital": "R1H12", "arrival": 1.0, "p_dead": 0.1, "bed": True,
                                                   "order": 0}), "deliveries.gone"),  # not listed as delivered
    (lambda d: d.update(delivered=["gone"], deliveries={"gone": {"hospital": "H9", "arrival": 1.0, "p_dead": 0.1,
                                                                 "bed": True, "order": 0}}), "deliveries.gone.hospital"),
    (lambda d: d.update(delivered=["gone"], deliveries={"gone": {"hospital": "R1H12", "arrival": 1.0,
                                                                 "p_dead": 1.5, "bed": True, "order": 0}}),
     "deliveries.gone.p_dead"),
    (lambda d: d.update(beds_reported={"H9": [[3.0, 1, 0]]}), "beds_reported.H9"),
])
def test_a_bad_history_file_is_rejected_naming_the_file_and_the_place(picked_up, tmp_path, change, where):
    scenario, plan = picked_up.snapshot(tmp_path / "snap")
    path = tmp_path / "snap" / HISTORY_FILE
    doc = json.loads(path.read_text())
    assert doc["format"] == HISTORY_FORMAT
    change(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ScenarioError) as err:
        Planner.restore(scenario, plan, algorithm="descent", seed=0)
    assert any(p.path == f"{path}: {where}" for p in err.value.problems), err.value.problems


def test_a_history_file_that_gives_a_key_twice_is_rejected(picked_up, tmp_path):
    scenario, plan = picked_up.snapshot(tmp_path / "snap")
    path = tmp_path / "snap" / HISTORY_FILE
    text = path.read_text()
    assert text.count('"format": ') == 1
    path.write_text(text.replace('"format": ', '"delivered": ["c002"], "format": ', 1))
    with pytest.raises(ScenarioError) as err:
        Planner.restore(scenario, plan, algorithm="descent", seed=0)
    assert [p.path for p in err.value.problems] == [f"{path}: delivered"], err.value.problems


def test_a_history_can_be_given_with_a_scenario_read_elsewhere(picked_up, tmp_path):
    """The scenario as a dict (not a file, so nothing lies beside it): the history is named."""
    scenario, plan = picked_up.snapshot(tmp_path / "snap")
    q = Planner.restore(json.loads(scenario.read_text()), plan, observations=tmp_path / "snap" / HISTORY_FILE,
                        algorithm="descent", seed=0)
    try:
        for planner in (picked_up, q):
            planner.apply(LATE)
        assert cas(q, "c003") == cas(picked_up, "c003")
    finally:
        q.close()
