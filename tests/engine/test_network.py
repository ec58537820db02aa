"""Travel minutes (SPEC §4 ``network``): geo great circles and road graphs, files, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import engine

R_KM = 6371.0


def _scenario(network, hospitals, sites, responders=None, stations=None):
    d = {"format": "goldenhour.scenario/1", "network": network, "hospitals": hospitals, "sites": sites,
         "responders": responders if responders is not None else
         [{"id": "amb", "kind": "paramedic", "start": hospitals[0]["id"]}],
         "casualties": []}
    if stations is not None:
        d["stations"] = stations
    return d


def _loc(sc, place_id):
    """Location index (row of ``travel``) of a place: hospitals, then sites, then stations."""
    ids = [p.id for p in sc.model.hospitals] + [p.id for p in sc.model.sites] + [p.id for p in sc.model.stations]
    return ids.index(place_id)


def _t(sc, a, b):
    return float(sc.travel[_loc(sc, a), _loc(sc, b)])


# --- geo -----------------------------------------------------------------------------------------

def test_geo_one_degree_along_the_equator():
    # One degree of a great circle is 6371 * pi / 180 = 111.19492664... km. At 60 km/h a km takes a
    # minute; with detour factor 1.5 the drive takes 1.5 minutes per km of great circle.
    d = _scenario({"kind": "geo", "speed_kmh": 60.0, "detour_factor": 1.5},
                  [{"id": "H", "lat": 0.0, "lon": 0.0, "capacity": 1}], [{"id": "S", "lat": 0.0, "lon": 1.0}])
    sc = engine.load_scenario(d)
    km = R_KM * math.pi / 180
    assert km == pytest.approx(111.19492664, abs=1e-8)
    assert _t(sc, "H", "S") == pytest.approx(km * 1.5, rel=1e-12)
    assert _t(sc, "S", "H") == pytest.approx(km * 1.5, rel=1e-12)
    assert _t(sc, "H", "H") == 0.0


def test_geo_quarter_meridian_and_default_detour():
    # Equator to the North Pole: a quarter of the circumference, 6371 * pi / 2 km = 10007.543 km.
    # At 30 km/h (detour factor default 1.0): 10007.543 / 30 * 60 minutes.
    d = _scenario({"kind": "geo", "speed_kmh": 30.0},
                  [{"id": "H", "lat": 0.0, "lon": 45.0, "capacity": 1}], [{"id": "S", "lat": 90.0, "lon": -120.0}])
    sc = engine.load_scenario(d)
    assert _t(sc, "H", "S") == pytest.approx(R_KM * math.pi / 2 / 30 * 60, rel=1e-12)


def test_geo_a_hand_computed_london_distance():
    # Two points 0.01 degrees of latitude apart on the same meridian: 6371 * 0.01 * pi / 180 km
    # = 1.1119492664 km; at 30 km/h with detour 1.4: 1.1119492664 * 1.4 / 30 * 60 = 3.11345794... min.
    d = _scenario({"kind": "geo", "speed_kmh": 30.0, "detour_factor": 1.4},
                  [{"id": "H", "lat": 51.50, "lon": -0.1, "capacity": 1}], [{"id": "S", "lat": 51.51, "lon": -0.1}])
    sc = engine.load_scenario(d)
    assert _t(sc, "H", "S") == pytest.approx(6371 * 0.01 * math.pi / 180 * 1.4 / 30 * 60, rel=1e-9)


def test_geo_same_location_is_zero_travel_including_own_starts():
    d = _scenario({"kind": "geo", "speed_kmh": 30.0, "detour_factor": 1.3},
                  [{"id": "H", "lat": 51.5, "lon": -0.1, "capacity": 1}],
                  [{"id": "S", "lat": 51.5, "lon": -0.1}, {"id": "T", "lat": 51.52, "lon": -0.1}],
                  responders=[{"id": "amb", "kind": "paramedic", "start": {"lat": 51.52, "lon": -0.1}}],
                  stations=[{"id": "F", "lat": 51.52, "lon": -0.1}])
    sc = engine.load_scenario(d)
    assert _t(sc, "H", "S") == 0.0 and _t(sc, "S", "H") == 0.0
    assert _t(sc, "T", "F") == 0.0
    own = int(sc.responder_loc[0])
    assert own == 4  # after the 1 hospital, 2 sites and 1 station
    assert sc.travel[own, _loc(sc, "T")] == 0.0
    assert sc.travel[own, _loc(sc, "S")] == pytest.approx(_t(sc, "T", "S"), rel=1e-12) and _t(sc, "T", "S") > 0


# --- graph ---------------------------------------------------------------------------------------

def _nodes(*ids, spacing=0.01):
    return [{"id": n, "lat": 0.0, "lon": spacing * i} for i, n in enumerate(ids)]


def test_graph_parallel_edges_keep_the_fastest():
    net = {"kind": "graph", "nodes": _nodes("a", "b"),
           "edges": [{"from": "a", "to": "b", "minutes": 10.0},
                     {"from": "a", "to": "b", "minutes": 4.0},
                     {"from": "b", "to": "a", "minutes": 7.0, "oneway": True}]}
    sc = engine.load_scenario(_scenario(net, [{"id": "H", "node": "a", "capacity": 1}], [{"id": "S", "node": "b"}]))
    assert _t(sc, "H", "S") == 4.0
    assert _t(sc, "S", "H") == 4.0  # the 4-minute edge is two-way, faster than the 7-minute oneway


def test_graph_oneway_is_respected_and_shortest_paths_combine_edges():
    # a -> b oneway 3; b -> c -> a back (5 + 6). So a to b is 3 but b to a is 11.
    net = {"kind": "graph", "nodes": _nodes("a", "b", "c"),
           "edges": [{"from": "a", "to": "b", "minutes": 3.0, "oneway": True},
                     {"from": "b", "to": "c", "minutes": 5.0, "oneway": True},
                     {"from": "c", "to": "a", "minutes": 6.0, "oneway": True}]}
    sc = engine.load_scenario(_scenario(net, [{"id": "H", "node": "a", "capacity": 1}], [{"id": "S", "node": "b"}]))
    assert _t(sc, "H", "S") == 3.0
    assert _t(sc, "S", "H") == 11.0


def test_graph_lengths_and_speeds():
    # 1500 m at the edge's 45 km/h: 1.5 / 45 * 60 = 2 min; 1000 m at the network's 20 km/h: 3 min.
    net = {"kind": "graph", "speed_kmh": 20.0, "nodes": _nodes("a", "b", "c"),
           "edges": [{"from": "a", "to": "b", "length_m": 1500.0, "speed_kmh": 45.0},
                     {"from": "b", "to": "c", "length_m": 1000.0}]}
    sc = engine.load_scenario(_scenario(net, [{"id": "H", "node": "a", "capacity": 1}],
                                        [{"id": "S", "node": "b"}, {"id": "T", "node": "c"}]))
    assert _t(sc, "H", "S") == pytest.approx(2.0, abs=1e-12)
    assert _t(sc, "S", "T") == pytest.approx(3.0, abs=1e-12)
    assert _t(sc, "H", "T") == pytest.approx(5.0, abs=1e-12)


def test_graph_minutes_and_length_together_is_an_error():
    net = {"kind": "graph", "speed_kmh": 20.0, "nodes": _nodes("a", "b"),
           "edges": [{"from": "a", "to": "b", "minutes": 1.0, "length_m": 100.0}]}
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(_scenario(net, [{"id": "H", "node": "a", "capacity": 1}], [{"id": "S", "node": "b"}]))
    assert any(p.path.startswith("network.edges[0]") for p in err.value.problems), err.value


def test_graph_snaps_to_the_nearest_node_and_adds_no_time():
    # Nodes a (0, 0), b (0, 0.001), c (0, 0.002). H at (0, 0.0004) is 0.0004 degrees from a and
    # 0.0006 from b: it snaps to a. S at (0, 0.0019) snaps to c. a -> b 2 min, b -> c 3 min: 5 min.
    net = {"kind": "graph", "nodes": _nodes("a", "b", "c", spacing=0.001),
           "edges": [{"from": "a", "to": "b", "minutes": 2.0}, {"from": "b", "to": "c", "minutes": 3.0}]}
    sc = engine.load_scenario(_scenario(net, [{"id": "H", "lat": 0.0, "lon": 0.0004, "capacity": 1}],
                                        [{"id": "S", "lat": 0.0, "lon": 0.0019}]))
    assert _t(sc, "H", "S") == 5.0


@pytest.mark.parametrize("first, want", [("near5", 5.0), ("near9", 9.0)])
def test_graph_snapping_ties_go_to_the_first_node(first, want):
    # H at (0, 0) is exactly as far from (0, 0.01) as from (0, -0.01); whichever node is listed
    # first wins. From node "near5" the site is 5 minutes away, from "near9" 9 minutes.
    nodes = {"near5": {"id": "near5", "lat": 0.0, "lon": 0.01},
             "near9": {"id": "near9", "lat": 0.0, "lon": -0.01},
             "site": {"id": "site", "lat": 1.0, "lon": 0.0}}
    order = [first, "near9" if first == "near5" else "near5", "site"]
    net = {"kind": "graph", "nodes": [nodes[k] for k in order],
           "edges": [{"from": "near5", "to": "site", "minutes": 5.0}, {"from": "near9", "to": "site", "minutes": 9.0}]}
    sc = engine.load_scenario(_scenario(net, [{"id": "H", "lat": 0.0, "lon": 0.0, "capacity": 1}],
                                        [{"id": "S", "node": "site"}]))
    assert _t(sc, "H", "S") == want


def test_graph_same_node_is_zero_travel():
    net = {"kind": "graph", "nodes": _nodes("a", "b"), "edges": [{"from": "a", "to": "b", "minutes": 4.0}]}
    sc = engine.load_scenario(_scenario(net, [{"id": "H", "node": "a", "capacity": 1}],
                                        [{"id": "S", "node": "a"}, {"id": "T", "node": "b"}],
                                        responders=[{"id": "amb", "kind": "paramedic", "start": {"node": "b"}}]))
    assert _t(sc, "H", "S") == 0.0
    assert sc.travel[int(sc.responder_loc[0]), _loc(sc, "T")] == 0.0
    assert sc.travel[int(sc.responder_loc[0]), _loc(sc, "S")] == 4.0


def test_unreachable_place_names_both_ends():
    # a -> b oneway only: the site at b cannot get back to the hospital at a
    net = {"kind": "graph", "nodes": _nodes("a", "b"), "edges": [{"from": "a", "to": "b", "minutes": 4.0, "oneway": True}]}
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(_scenario(net, [{"id": "RLH", "node": "a", "capacity": 1}], [{"id": "aldgate", "node": "b"}]))
    lines = [str(p) for p in err.value.problems]
    assert any("aldgate" in line and "RLH" in line for line in lines), lines
    assert not any(line.index("aldgate") > line.index("RLH") for line in lines if "aldgate" in line and "RLH" in line), \
        "the error names the route from the site to the hospital"


def test_unreachable_responder_start_names_both_ends():
    net = {"kind": "graph", "nodes": _nodes("a", "b", "island"), "edges": [{"from": "a", "to": "b", "minutes": 4.0}]}
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(_scenario(net, [{"id": "RLH", "node": "a", "capacity": 1}], [{"id": "aldgate", "node": "b"}],
                                       responders=[{"id": "amb-7", "kind": "paramedic", "start": {"node": "island"}}]))
    lines = [str(p) for p in err.value.problems]
    assert any("amb-7" in line and "aldgate" in line for line in lines), lines


# --- node and edge files ---------------------------------------------------------------------------

def _network_files(directory, fmt):
    directory.mkdir(parents=True)
    nodes = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "lat": [0.0, 0.0, 0.0], "lon": [0.0, 0.01, 0.02]})
    edges = pa.table({"from": pa.array([1, 2, 2], pa.int64()), "to": pa.array([2, 3, 3], pa.int64()),
                      "minutes": pa.array([2.5, None, 9.0], pa.float64()),
                      "length_m": pa.array([None, 1000.0, None], pa.float64()),
                      "oneway": [False, False, True]})
    if fmt == "parquet":
        pq.write_table(nodes, directory / "nodes.parquet")
        pq.write_table(edges, directory / "edges.parquet")
    else:
        pacsv.write_csv(nodes, directory / "nodes.csv")
        pacsv.write_csv(edges, directory / "edges.csv")
    return f"net/nodes.{fmt}", f"net/edges.{fmt}"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_node_and_edge_files_relative_to_the_scenario_file(fmt, tmp_path, monkeypatch):
    home = tmp_path / "incident"
    nodes_file, edges_file = _network_files(home / "net", fmt)
    net = {"kind": "graph", "speed_kmh": 30.0, "nodes_file": nodes_file, "edges_file": edges_file}
    d = _scenario(net, [{"id": "H", "node": "1", "capacity": 1}], [{"id": "S", "node": 3}])
    path = home / "scenario.json"
    path.write_text(json.dumps(d))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the scenario file, not to the working directory
    sc = engine.load_scenario(path)
    # 1 -> 2 2.5 min; 2 -> 3 1000 m at the network's 30 km/h = 2 min (faster than the 9-min parallel edge)
    assert _t(sc, "H", "S") == pytest.approx(4.5, abs=1e-12)
    assert _t(sc, "S", "H") == pytest.approx(4.5, abs=1e-12)


def test_missing_network_file_is_an_error_naming_the_key(tmp_path):
    d = _scenario({"kind": "graph", "nodes_file": "nope.parquet", "edges_file": "nope.csv"},
                  [{"id": "H", "node": "1", "capacity": 1}], [{"id": "S", "node": "1"}])
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(d))
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(path)
    paths = {p.path for p in err.value.problems}
    assert "network.nodes_file" in paths and "network.edges_file" in paths


def _csv_scenario(tmp_path, nodes_csv: str, edges_csv: str, hospital_node="1", site_node="3"):
    (tmp_path / "nodes.csv").write_text(nodes_csv)
    (tmp_path / "edges.csv").write_text(edges_csv)
    d = _scenario({"kind": "graph", "speed_kmh": 30.0, "nodes_file": "nodes.csv", "edges_file": "edges.csv"},
                  [{"id": "H", "node": hospital_node, "capacity": 1}], [{"id": "S", "node": site_node}])
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(d))
    return path


def _problems(path):
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(path)
    return [(p.path, p.message) for p in err.value.problems]


def test_csv_ids_are_text_even_when_they_look_like_numbers(tmp_path):
    """'001' is a node id, not the number 1: a place at node '003' finds it."""
    path = _csv_scenario(tmp_path, "id,lat,lon\n001,0,0\n002,0,0.01\n003,0,0.02\n",
                         "from,to,minutes\n001,002,2\n002,003,3\n", hospital_node="001", site_node="003")
    assert _t(engine.load_scenario(path), "H", "S") == pytest.approx(5.0)


def test_a_file_without_a_column_is_one_problem_naming_file_and_column(tmp_path):
    rows = "".join(f"{i},0,{i / 100}\n" for i in range(1, 500))
    path = _csv_scenario(tmp_path, "id,latitude,lon\n" + rows, "from,to,minutes\n1,2,1\n")
    problems = _problems(path)
    assert len(problems) == 1, problems[:3]
    assert problems[0][0] == "network.nodes_file" and "nodes.csv" in problems[0][1] and "'lat'" in problems[0][1]


def test_a_bad_cell_is_one_problem_naming_its_row_and_column(tmp_path):
    path = _csv_scenario(tmp_path, "id,lat,lon\n1,0,0\n2,abc,0.01\n3,0,0.02\n4,,0.03\n",
                         "from,to,minutes\n1,2,1\n2,3,1\n")
    problems = _problems(path)
    assert problems == [("network.nodes_file: nodes.csv row 2, column lat", "Input should be a valid number"),
                        ("network.nodes_file: nodes.csv row 4, column lat", "no value (an empty cell)")], problems


def test_a_graph_needs_a_node(tmp_path):
    d = _scenario({"kind": "graph", "nodes": [], "edges": []},
                  [{"id": "H", "lat": 0.0, "lon": 0.0, "capacity": 1}], [{"id": "S", "lat": 0.0, "lon": 0.01}])
    with pytest.raises(engine.ScenarioError) as err:
        engine.load_scenario(d)
    assert [(p.path, p.message) for p in err.value.problems] == [("network.nodes", "a graph needs at least one node")]


def test_a_nodes_file_with_no_rows_is_named_as_the_file(tmp_path):
    """Only a header: the problem is the file's, named as it was given (it was "network.nodes")."""
    path = _csv_scenario(tmp_path, "id,lat,lon\n", "from,to,minutes\n")
    assert _problems(path) == [("network.nodes_file", "a graph needs at least one node")]


def test_travel_matrix_is_a_metric_closure_on_random_graphs():
    """Shortest paths: no detour through a third place is shorter (triangle inequality)."""
    import factories

    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(40):
        d = factories.random_scenario(rng)
        if d["network"]["kind"] != "graph":
            continue
        sc = engine.load_scenario(d)
        t = sc.travel
        assert np.all(np.isfinite(t)) and np.all(t >= 0) and np.all(np.diag(t) == 0)
        via = (t[:, :, None] + t[None, :, :]).min(axis=1)
        assert np.all(t <= via + 1e-9)
        checked += 1
    assert checked >= 10
