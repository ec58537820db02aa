"""Travel minutes between the places that matter (SPEC §4, ``network``).

``geo`` networks use great-circle distance; ``graph`` networks snap places to road nodes and run
Dijkstra (scipy.sparse.csgraph) once from each place's node. Either way the result is one dense
matrix over the scenario's locations, computed once per scenario.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from .errors import Problem

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km (broadcasts over numpy arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def geo_travel(lat: np.ndarray, lon: np.ndarray, speed_kmh: float, detour: float) -> np.ndarray:
    """Minutes between every pair of points: distance × detour ÷ speed."""
    km = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    minutes = km * detour / speed_kmh * 60.0
    same = (lat[:, None] == lat[None, :]) & (lon[:, None] == lon[None, :])
    minutes[same] = 0.0
    return np.ascontiguousarray(minutes)


@dataclass
class RoadGraph:
    """A directed road graph with minutes on its arcs, node ids as strings."""

    ids: list[str]
    lat: np.ndarray
    lon: np.ndarray
    matrix: csr_matrix

    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.ids)}

    def snap(self, lat: float, lon: float) -> int:
        """The nearest node by great-circle distance; ties go to the first node."""
        return int(np.argmin(haversine_km(lat, lon, self.lat, self.lon)))

    def travel(self, nodes: np.ndarray) -> np.ndarray:
        """Shortest-path minutes between the given nodes (rows: from, columns: to)."""
        unique, inverse = np.unique(nodes, return_inverse=True)
        dist = dijkstra(self.matrix, directed=True, indices=unique)
        return np.ascontiguousarray(dist[inverse][:, nodes])


#: The columns a network file must have (``model.Node``, ``model.Edge``), those read as text, and
#: those holding numbers (a column with one bad cell is read as text: the others still count).
REQUIRED = {"nodes": ("id", "lat", "lon"), "edges": ("from", "to")}
IDS = ("id", "from", "to")
NUMBERS = ("lat", "lon", "minutes", "length_m", "speed_kmh")


def _cell(key: str, value):
    """A file cell as the inline models take it: ids as text, numbers read as text as numbers,
    an empty cell as no value (``None``)."""
    if isinstance(value, str) and not value.strip():
        return None
    if key in IDS and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if key in NUMBERS and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _read_table(path: Path) -> pa.Table:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.read_table(path)
    # ids are text, even when they look like numbers ("004" is not "4")
    with open(path, newline="", encoding="utf-8") as f:
        names = next(csv.reader(f), [])
    types = {c: pa.string() for c in IDS if c in names}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))


def file_rows(path: Path) -> list[dict]:
    """The rows of a network file as inline records (``_cell``; empty cells left out)."""
    return [_file_row(row) for row in _read_table(path).to_pylist()]


def _file_row(row: dict) -> dict:
    return {k: c for k, v in row.items() if (c := _cell(k, v)) is not None}


def _rows(network, key: str, base_dir: Path | None, problems: list[Problem]):
    """``(rows, where)``: the inline list under ``key``, or the rows of ``key_file`` (exactly one
    must be given); ``where(i)`` names row ``i`` in problems (a JSON path, or the file and row)."""
    inline, file = getattr(network, key), getattr(network, f"{key}_file")
    path = f"network.{key}"
    if (inline is None) == (file is None):
        problems.append(Problem(path, f"give exactly one of '{key}' (inline) or '{key}_file'"))
        return None, None
    if inline is not None:
        return [row.model_dump(by_alias=True) for row in inline], lambda i: (f"network.{key}[{i}]",)
    full = (base_dir or Path.cwd()) / file
    try:
        table = _read_table(full)
    except Exception as exc:  # pyarrow raises many types for a missing or broken file
        problems.append(Problem(f"network.{key}_file", f"cannot read {full}: {str(exc).splitlines()[0]}"))
        return None, None
    missing = [c for c in REQUIRED[key] if c not in table.column_names]
    if missing:
        problems.append(Problem(f"network.{key}_file", f"{full}: no column {', '.join(map(repr, missing))} "
                                                        f"(its columns: {', '.join(table.column_names)})"))
        return None, None
    return table.to_pylist(), lambda i: (f"network.{key}_file", f"{file} row {i + 1}")


def build_graph(network, base_dir: Path | None, problems: list[Problem]) -> RoadGraph | None:
    """Validate and build the road graph of a ``graph`` network, adding problems as found."""
    from .model import Edge, Node  # the file rows follow the inline models exactly
    from pydantic import ValidationError

    from .errors import json_path

    node_rows, node_at = _rows(network, "nodes", base_dir, problems)
    edge_rows, edge_at = _rows(network, "edges", base_dir, problems)
    if node_rows is None or edge_rows is None:
        return None
    if not node_rows:
        where = "network.nodes" if network.nodes is not None else "network.nodes_file"  # the one given
        problems.append(Problem(where, "a graph needs at least one node"))
        return None
    start = len(problems)

    def name(where: tuple, field: str | None = None) -> str:
        """A row's (or one of its fields') place: a JSON path inline, the file, row and column."""
        if len(where) == 1:
            return where[0] + (f".{field}" if field else "")
        return f"{where[0]}: {where[1]}" + (f", column {field}" if field else "")

    nodes, edges = [], []  # None for a row that did not validate: its problems are reported
    for rows, at, model, out in ((node_rows, node_at, Node, nodes), (edge_rows, edge_at, Edge, edges)):
        for i, row in enumerate(rows):
            where = at(i)
            if len(where) > 1:  # a file's row: an empty cell is a missing value
                row = _file_row(row)
            try:
                out.append(model.model_validate(row))
            except ValidationError as err:
                out.append(None)
                for e in err.errors():
                    if len(where) == 1:
                        problems.append(Problem(json_path(where + tuple(e["loc"])), e["msg"]))
                    else:
                        what = "no value (an empty cell)" if e["type"] == "missing" else e["msg"]
                        problems.append(Problem(name(where, ".".join(map(str, e["loc"]))), what))
    # the other rows are still checked; an edge's ends only if every node row validated (one
    # that did not would make its edges' ends "unknown")
    all_nodes = all(n is not None for n in nodes)
    ids = [n.id for n in nodes if n is not None]
    index = {}
    for i, n in enumerate(nodes):
        if n is None:
            continue
        if n.id in index:
            problems.append(Problem(name(node_at(i), "id"), f"duplicate node id '{n.id}'"))
        index.setdefault(n.id, len(index))
    src, dst, minutes = [], [], []
    for i, e in enumerate(edges):
        if e is None:
            continue
        where = edge_at(i)
        if all_nodes:
            for end in ("from_", "to"):
                if getattr(e, end) not in index:
                    problems.append(Problem(name(where, end.rstrip("_")), f"unknown node '{getattr(e, end)}'"))
        if (e.minutes is None) == (e.length_m is None):
            problems.append(Problem(name(where), "give exactly one of 'minutes' or 'length_m'"))
            continue
        if e.minutes is not None:
            m = e.minutes
        else:
            speed = e.speed_kmh or network.speed_kmh
            if speed is None:
                problems.append(Problem(name(where), "'length_m' needs 'speed_kmh' on the edge or the network"))
                continue
            m = e.length_m / 1000.0 / speed * 60.0
        if e.from_ in index and e.to in index:
            src.append(index[e.from_]); dst.append(index[e.to]); minutes.append(m)
            if not e.oneway:
                src.append(index[e.to]); dst.append(index[e.from_]); minutes.append(m)
    if len(problems) > start:
        return None
    src, dst, w = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), np.array(minutes)
    # Parallel arcs keep the fastest: sort by (from, to, minutes) and keep each pair's first.
    order = np.lexsort((w, dst, src))
    src, dst, w = src[order], dst[order], w[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    n = len(ids)
    matrix = csr_matrix((w[first], (src[first], dst[first])), shape=(n, n))
    lat = np.array([nd.lat for nd in nodes]); lon = np.array([nd.lon for nd in nodes])
    return RoadGraph(ids, lat, lon, matrix)
