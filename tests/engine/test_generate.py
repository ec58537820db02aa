"""Tests of the scenario generator: the dicts themselves, without the scenario loader."""
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.generate import DATA_DIR, PRESETS, generate

SMALL = {"casualties": 57, "paramedics": 9, "fire": 5, "hospitals": 4}


def _options(preset):
    return SMALL if preset == "random" else {}


def _place_ids(d):
    return [p["id"] for kind in ("hospitals", "sites", "stations") for p in d.get(kind, [])]


def _walk_numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_numbers(v)
    else:
        yield obj


@pytest.mark.parametrize("preset", PRESETS)
def test_same_seed_same_dict_different_seed_different(preset):
    a = generate(preset, seed=3, **_options(preset))
    assert a == generate(preset, seed=3, **_options(preset))
    assert json.dumps(a) == json.dumps(generate(preset, seed=3, **_options(preset)))
    assert a != generate(preset, seed=4, **_options(preset))


@pytest.mark.parametrize("preset", PRESETS)
def test_wellformed(preset):
    d = generate(preset, seed=1, **_options(preset))
    assert d["format"] == "goldenhour.scenario/1"
    text = json.dumps(d, allow_nan=False)  # raises on NaN/inf and on numpy scalars
    assert json.loads(text) == d
    for x in _walk_numbers(d):
        assert type(x) in (str, int, float, bool, type(None)), type(x)
        if isinstance(x, float):
            assert math.isfinite(x)
    places = _place_ids(d)
    assert len(places) == len(set(places)), "place ids must be unique across all kinds"
    for kind in ("responders", "casualties"):
        ids = [e["id"] for e in d[kind]]
        assert len(ids) == len(set(ids))
    for h in d["hospitals"]:
        assert isinstance(h["capacity"], int) and h["capacity"] >= 0
    station_ids = {s["id"] for s in d["stations"]}
    hospital_ids = {h["id"] for h in d["hospitals"]}
    for r in d["responders"]:
        if r["kind"] == "fire":
            assert r["start"] in station_ids and "hart" not in r
        else:
            assert r["kind"] == "paramedic" and r["start"] in hospital_ids
    site_ids = {s["id"] for s in d["sites"]}
    for c in d["casualties"]:
        assert c["site"] in site_ids
        assert ("rescue_minutes" in c) == c["trapped"]
        if c["trapped"]:
            assert 10.0 <= c["rescue_minutes"] <= 40.0 and (2 * c["rescue_minutes"]).is_integer()
    if any(c["trapped"] for c in d["casualties"]):
        assert any(r["kind"] == "fire" for r in d["responders"])


def test_sieve_observations_match_their_sieve_rules():
    d = generate("paper-london", seed=0)
    sieve = [c["health"]["sieve"] for c in d["casualties"] if isinstance(c["health"], dict)]
    assert 1 <= len(sieve) <= 10
    for obs in sieve:
        assert set(obs) <= {"walking", "breathing", "respiratory_rate", "capillary_refill", "pulse"}
        if not obs["walking"]:
            assert obs["breathing"] is True and isinstance(obs["respiratory_rate"], int)


def test_paper_london_counts():
    d = generate("paper-london", seed=0)
    assert d["name"] == "london-5x18"
    assert d["network"] == {"kind": "geo", "speed_kmh": 30.0, "detour_factor": 1.4}
    assert len(d["sites"]) == 5
    cas = d["casualties"]
    assert [c["id"] for c in cas] == [f"c{i:03d}" for i in range(1, 91)]
    for s in d["sites"]:
        assert sum(c["site"] == s["id"] for c in cas) == 18
    assert sum(c["trapped"] for c in cas) == round(0.3 * 90)
    cats = [c["health"] for c in cas if isinstance(c["health"], str)]
    assert set(cats) <= {"delayed", "urgent", "immediate"}
    assert 0.4 <= cats.count("delayed") / 90 <= 0.6
    assert 0.1 <= cats.count("immediate") / 90 <= 0.3
    para = [r for r in d["responders"] if r["kind"] == "paramedic"]
    fire = [r for r in d["responders"] if r["kind"] == "fire"]
    assert [r["id"] for r in para] == [f"amb-{i:02d}" for i in range(1, 12)]
    assert sum(r["hart"] for r in para) == 2
    assert [r["id"] for r in fire] == [f"fire-{i:02d}" for i in range(1, 6)]
    assert len(d["stations"]) == 5


def test_paper_london_uses_real_places():
    import pyarrow.csv as pacsv

    d = generate("paper-london", seed=0)
    hosp = pacsv.read_csv(DATA_DIR / "london_hospitals.csv").to_pydict()
    real = dict(zip(hosp["id"], zip(hosp["lat"], hosp["lon"])))
    ids = [h["id"] for h in d["hospitals"]]
    assert 10 <= len(ids) <= 14
    for h in d["hospitals"]:
        assert (h["lat"], h["lon"]) == real[h["id"]]
    caps = {h["id"]: h["capacity"] for h in d["hospitals"]}
    for mtc in ("R1H12", "RYJ01", "RJZ01", "RJ701"):
        assert caps[mtc] > max(c for i, c in caps.items() if i not in ("R1H12", "RYJ01", "RJZ01", "RJ701"))
    fs = pacsv.read_csv(DATA_DIR / "london_fire_stations.csv").to_pydict()
    real_fs = dict(zip(fs["id"], zip(fs["lat"], fs["lon"])))
    for s in d["stations"]:
        assert (s["lat"], s["lon"]) == real_fs[s["id"]]
    for s in d["sites"]:  # central London
        assert 51.50 < s["lat"] < 51.54 and -0.18 < s["lon"] < -0.06


def test_helsinki_files_and_nodes():
    d = generate("helsinki", seed=0)
    net = d["network"]
    assert net["kind"] == "graph"
    nodes = pq.read_table(DATA_DIR / net["nodes_file"].removeprefix("data/"))
    edges = pq.read_table(DATA_DIR / net["edges_file"].removeprefix("data/"))
    assert nodes.column_names == ["id", "lat", "lon"]
    assert edges.column_names == ["from", "to", "length_m", "speed_kmh", "oneway"]
    assert edges.num_rows > 1000 and all(edges["oneway"].to_pylist())  # a city's roads, not a stub
    node_ids = {str(i) for i in nodes["id"].to_pylist()}
    assert {str(i) for i in edges["from"].to_pylist()} <= node_ids
    assert {str(i) for i in edges["to"].to_pylist()} <= node_ids
    for pid, place in [(p["id"], p) for k in ("hospitals", "sites", "stations") for p in d[k]]:
        assert isinstance(place["node"], str) and place["node"] in node_ids, pid
    assert len(d["hospitals"]) == 6
    assert all(h["id"].startswith(("clinic-", "doctors-")) for h in d["hospitals"])
    assert 2 <= len(d["sites"]) <= 3 and len(d["stations"]) == 1
    para = [r for r in d["responders"] if r["kind"] == "paramedic"]
    assert len(para) == 4 and sum(r["hart"] for r in para) == 1
    assert sum(r["kind"] == "fire" for r in d["responders"]) == 2
    assert 15 <= len(d["casualties"]) <= 25


@pytest.mark.parametrize("seed", range(8))
def test_tiny(seed):
    d = generate("tiny", seed=seed)
    assert 3 <= len(d["casualties"]) <= 5 and len(d["sites"]) == 1
    assert len(d["hospitals"]) == 2
    assert any(c["trapped"] for c in d["casualties"])
    kinds = [r["kind"] for r in d["responders"]]
    assert kinds.count("paramedic") == 2 and kinds.count("fire") == 1


def test_random_counts_and_defaults():
    d = generate("random", seed=2, **SMALL)
    kinds = [r["kind"] for r in d["responders"]]
    assert len(d["casualties"]) == 57 and kinds.count("paramedic") == 9 and kinds.count("fire") == 5
    assert len(d["hospitals"]) == 4 and len(d["sites"]) == 57 // 20
    assert 1 <= len(d["stations"]) <= 5
    assert sum(c["trapped"] for c in d["casualties"]) == round(0.3 * 57)
    total = sum(h["capacity"] for h in d["hospitals"])
    assert 57 <= total <= 1.25 * 57
    lat = np.array([p["lat"] for p in d["hospitals"] + d["sites"] + d["stations"]])
    assert np.all(np.abs(lat - 51.5074) < 0.1)
    assert len(generate("random", casualties=5, paramedics=1, fire=1, hospitals=1)["sites"]) == 1
    assert len(generate("random", casualties=5, paramedics=1, fire=1, hospitals=1, sites=3)["sites"]) == 3


def test_random_without_fire_has_nobody_trapped():
    d = generate("random", casualties=40, paramedics=3, fire=0, hospitals=2)
    assert not any(c["trapped"] for c in d["casualties"]) and d["stations"] == []


def test_random_scales():
    # how long it takes is bench/test_scale.py's to measure, not a test's to assert
    d = generate("random", seed=0, casualties=10_000, paramedics=1_000, fire=100, hospitals=30)
    assert len(d["casualties"]) == 10_000
    assert sum(r["kind"] == "paramedic" for r in d["responders"]) == 1_000
    assert sum(r["kind"] == "fire" for r in d["responders"]) == 100
    assert len(d["sites"]) == 200  # default N // 20, capped
    assert len({c["id"] for c in d["casualties"]}) == 10_000


@pytest.mark.parametrize("preset, options", [
    ("nope", {}),
    ("random", {}),
    ("random", {"casualties": 10, "paramedics": 2, "fire": 1}),
    ("random", {**SMALL, "casualties": -1}),
    ("random", {**SMALL, "fire": 1.5}),
    ("random", {**SMALL, "hospitals": 0}),
    ("random", {**SMALL, "sites": 0}),
    ("random", {**SMALL, "colour": "red"}),
    ("random", {**SMALL, "casualties": 10**11}),  # an out-of-memory traceback once
    ("random", {**SMALL, "hospitals": 10**11}),
    ("random", {**SMALL, "paramedics": 0}),  # the file would not validate
    ("tiny", {"casualties": 3}),
])
def test_bad_input_raises_value_error(preset, options):
    with pytest.raises(ValueError):
        generate(preset, **options)


def test_random_without_casualties_needs_no_team():
    d = generate("random", casualties=0, paramedics=0, fire=0, hospitals=1)
    assert d["casualties"] == [] and d["responders"] == []


def test_unknown_preset_message_lists_presets():
    with pytest.raises(ValueError, match="unknown preset 'x'; expected one of .*paper-london"):
        generate("x")
