"""Scenario generator: presets that build ``goldenhour.scenario/1`` dicts (SPEC §4).

The generator returns plain JSON-able dicts rather than loaded scenarios so that it does not
depend on the loader, and so that ``goldenhour generate`` can write exactly what it built. One
``numpy.random.default_rng(seed)`` is the only source of randomness: the same preset, seed and
options always give an identical dict, which the benchmarks and the tests rely on.

Real places come from ``examples/data`` (see its README for sources, licences and attribution).
"""
from __future__ import annotations

import os

import math
import operator
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

DATA_DIR = Path(__file__).resolve().parent.parent / "examples" / "data"
FORMAT = "goldenhour.scenario/1"
PRESETS = ("paper-london", "helsinki", "tiny", "random")
DURATIONS = {"load": 2.0, "handover": 5.0, "treatment": 10.0, "rescue": 20.0}

_TRIAGE = ("delayed", "urgent", "immediate")
_TRIAGE_SHARE = (0.5, 0.3, 0.2)  # roughly the P3/P2/P1 mix reported for urban bombings
_TRAPPED_SHARE = 0.3
_SIEVE_SHARE = 0.05  # a few casualties arrive as raw sieve observations, to exercise triage input
_HART_SHARE = 2 / 11  # as in the paper's fleet: 2 HART teams out of 11

# The paper's five sites (Wilson et al. 2013); real central-London locations.
_LONDON_SITES = (
    ("aldgate", 51.5143, -0.0755),
    ("edgware-road", 51.5199, -0.1679),
    ("kings-cross", 51.5308, -0.1238),
    ("russell-square", 51.5230, -0.1244),
    ("liverpool-street", 51.5178, -0.0823),
)
# London's major trauma centres: Royal London, St Mary's (RYJ01 in the data), King's, St George's.
_MAJOR_TRAUMA = ("R1H12", "RYJ01", "RJZ01", "RJ701")
# Sites inside the Helsinki extract (lat 60.1642..60.1790, lon 24.9352..24.9534).
_HELSINKI_SITES = (
    ("rautatientori", 60.1711, 24.9441),
    ("senaatintori", 60.1694, 24.9520),
    ("esplanadi", 60.1677, 24.9470),
)
_HELSINKI_NODES = "helsinki_nodes.parquet"
_HELSINKI_EDGES = "helsinki_edges.parquet"


def generate(preset: str, seed: int = 0, base_dir: str | Path | None = None, **options) -> dict:
    """Build a scenario dict in the SPEC §4 format.

    Parameters
    ----------
    preset : str
        One of :data:`PRESETS`.
    seed : int
        Seed of the generator's only random source; equal inputs give equal dicts.
    base_dir : path, optional
        The directory the scenario will be saved in: network files (``helsinki``) are named
        relative to it, as SPEC §4 reads them. Default: ``examples/``, beside the data.
    **options
        Only ``random`` takes options: ``casualties``, ``paramedics``, ``fire``, ``hospitals``
        (all required) and ``sites`` (default ``max(1, casualties // 20)``, at most 200).

    Returns
    -------
    dict
        A JSON-serialisable scenario (Python scalars only, all floats finite).

    Raises
    ------
    ValueError
        For an unknown preset, or options that are missing, unknown or out of range.
    """
    builder = _BUILDERS.get(preset)
    if builder is None:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    if preset != "random" and options:
        raise ValueError(f"preset {preset!r} takes no options; got {', '.join(sorted(options))}")
    data = builder(np.random.default_rng(seed), **options)
    network = data["network"]
    for key in ("nodes_file", "edges_file"):
        if key in network:
            network[key] = _relative(DATA_DIR / network[key], DATA_DIR.parent if base_dir is None else Path(base_dir))
    return data


def _relative(path: Path, base: Path) -> str:
    """``path`` as seen from directory ``base`` (absolute if it has no relative path from there)."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive
        return path.resolve().as_posix()


def write_helsinki_network(data_dir: Path = DATA_DIR) -> tuple[Path, Path]:
    """Write the OSM network with the column names SPEC §4 expects of node and edge files.

    The shared extract names its columns ``u``/``v``/``maxspeed_kmh``; the loader reads
    ``from``/``to``/``speed_kmh``. Each row is already one directed arc (two-way streets appear
    in both directions), so every arc is written with ``oneway=True`` to avoid doubling them.
    """
    data_dir = Path(data_dir)
    nodes = pq.read_table(data_dir / "helsinki_drive_nodes.parquet", columns=["id", "lat", "lon"])
    edges = pq.read_table(data_dir / "helsinki_drive_edges.parquet")
    arcs = pa.table({
        "from": edges["u"], "to": edges["v"], "length_m": edges["length_m"],
        "speed_kmh": edges["maxspeed_kmh"],
        "oneway": pa.array(np.ones(edges.num_rows, dtype=bool)),
    })
    paths = data_dir / _HELSINKI_NODES, data_dir / _HELSINKI_EDGES
    pq.write_table(nodes, paths[0])
    pq.write_table(arcs, paths[1])
    return paths


# --- shared helpers -------------------------------------------------------------------------

def _read_csv(filename: str, /, **types) -> dict:
    # ids such as "RJ122" must stay strings even if a future file holds only digits
    options = pacsv.ConvertOptions(column_types=types)
    return pacsv.read_csv(DATA_DIR / filename, convert_options=options).to_pydict()


def _haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres (R = 6371.0 km, as the geo network uses)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.subtract(lon2, lon1)) / 2) ** 2)
    return 2 * 6_371_000.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _pick(rng, n: int, share: float) -> np.ndarray:
    """Exactly ``round(share * n)`` True entries at random positions (stable, testable shares)."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=round(share * n), replace=False)] = True
    return mask


def _health(rng, n: int) -> list:
    """Categories in the fixed triage mix, a few replaced by sieve observations that map to them."""
    counts = [round(s * n) for s in _TRIAGE_SHARE[1:]]
    cats = rng.permutation(np.repeat([0, 1, 2], [n - sum(counts), *counts]))
    health: list = [_TRIAGE[c] for c in cats.tolist()]
    for i in np.flatnonzero(_pick(rng, n, _SIEVE_SHARE)).tolist():
        if cats[i] == 0:
            obs = {"walking": True}
        elif cats[i] == 1:  # values inside every P2 threshold of the UK sieve
            obs = {"walking": False, "breathing": True,
                   "respiratory_rate": int(rng.integers(12, 25)),
                   "capillary_refill": float(rng.integers(2, 5)) / 2, "pulse": int(rng.integers(70, 116))}
        else:  # respiratory rate above 29 makes it P1
            obs = {"walking": False, "breathing": True, "respiratory_rate": int(rng.integers(30, 41))}
        health[i] = {"sieve": obs}
    return health


def _casualties(rng, site_ids: list[str], n_trapped: int) -> list[dict]:
    """Casualties in the order of ``site_ids``; trapped ones get a rescue time of 10..40 min."""
    n = len(site_ids)
    health = _health(rng, n)
    trapped = np.zeros(n, dtype=bool)
    trapped[rng.choice(n, size=n_trapped, replace=False)] = True
    trapped = trapped.tolist()
    rescue = (rng.integers(20, 81, size=n) / 2).tolist()  # 10..40 in steps of 0.5
    width = max(3, len(str(n)))
    out = []
    for i in range(n):
        c = {"id": f"c{i + 1:0{width}d}", "site": site_ids[i], "health": health[i], "trapped": trapped[i]}
        if trapped[i]:
            c["rescue_minutes"] = rescue[i]
        out.append(c)
    return out


def _responders(para_starts: list[str], hart: list[bool], fire_starts: list[str]) -> list[dict]:
    wp, wf = max(2, len(str(len(para_starts)))), max(2, len(str(len(fire_starts))))
    out = [{"id": f"amb-{i + 1:0{wp}d}", "kind": "paramedic", "start": s, "hart": h, "available_at": 0.0}
           for i, (s, h) in enumerate(zip(para_starts, hart))]
    out += [{"id": f"fire-{i + 1:0{wf}d}", "kind": "fire", "start": s} for i, s in enumerate(fire_starts)]
    return out


def _scenario(name, network, hospitals, sites, stations, responders, casualties) -> dict:
    return {"format": FORMAT, "name": name, "time": 0.0, "network": network,
            "hospitals": hospitals, "sites": sites, "stations": stations,
            "responders": responders, "casualties": casualties, "durations": dict(DURATIONS)}


def _geo_network() -> dict:
    # London's paper study: 30 km/h blue-light average in the centre, roads 40 % longer than the crow flies
    return {"kind": "geo", "speed_kmh": 30.0, "detour_factor": 1.4}


def _slug(text: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(ch if ch.isalnum() else " " for ch in ascii_).split())


# --- presets --------------------------------------------------------------------------------

def _paper_london(rng) -> dict:
    """The ISCRAM 2013 study: 5 sites x 18 casualties, 11 paramedic teams (2 HART), 5 fire teams."""
    sites = [{"id": s, "lat": lat, "lon": lon} for s, lat, lon in _LONDON_SITES]
    s_lat = np.array([s["lat"] for s in sites])
    s_lon = np.array([s["lon"] for s in sites])
    hosp = _read_csv("london_hospitals.csv", id=pa.string())
    dist = _haversine_m(s_lat.mean(), s_lon.mean(), np.array(hosp["lat"]), np.array(hosp["lon"]))
    order = np.argsort(dist, kind="stable").tolist()
    # the trauma centres always take part: P1 casualties are routed to them in London's plans
    chosen = [i for i in order if hosp["id"][i] in _MAJOR_TRAUMA]
    chosen += [i for i in order if i not in chosen][: 12 - len(chosen)]
    chosen.sort(key=order.index)
    hospitals = []
    for i in chosen:
        big = hosp["id"][i] in _MAJOR_TRAUMA
        cap = int(rng.integers(10, 16) if big else rng.integers(4, 9))
        hospitals.append({"id": hosp["id"][i], "lat": hosp["lat"][i], "lon": hosp["lon"][i], "capacity": cap})
    # each site's nearest station not yet taken, so every site has a fire team close by
    fs = _read_csv("london_fire_stations.csv", id=pa.string())
    f_lat, f_lon = np.array(fs["lat"]), np.array(fs["lon"])
    stations = []
    for lat, lon in zip(s_lat, s_lon):
        taken = {st["id"] for st in stations}
        j = next(j for j in np.argsort(_haversine_m(lat, lon, f_lat, f_lon), kind="stable").tolist()
                 if fs["id"][j] not in taken)
        stations.append({"id": fs["id"][j], "lat": fs["lat"][j], "lon": fs["lon"][j]})
    central = [h["id"] for h in hospitals[:6]]  # ambulances wait at the most central A&Es
    para = [central[i % len(central)] for i in range(11)]
    hart = _pick(rng, 11, _HART_SHARE).tolist()
    site_ids = [s["id"] for s in sites for _ in range(18)]
    return _scenario("london-5x18", _geo_network(), hospitals, sites, stations,
                     _responders(para, hart, [s["id"] for s in stations]),
                     _casualties(rng, site_ids, round(_TRAPPED_SHARE * len(site_ids))))


def _helsinki(rng) -> dict:
    """Central Helsinki on the real OSM road graph; the health POIs stand in for hospitals."""
    if not all((DATA_DIR / f).exists() for f in (_HELSINKI_NODES, _HELSINKI_EDGES)):
        write_helsinki_network()
    nodes = pq.read_table(DATA_DIR / _HELSINKI_NODES).to_pydict()
    n_lat, n_lon = np.array(nodes["lat"]), np.array(nodes["lon"])
    # snap here (first node on ties, as the loader does) so the file names its nodes explicitly
    sites = [{"id": s, "node": str(nodes["id"][int(np.argmin(_haversine_m(lat, lon, n_lat, n_lon)))])}
             for s, lat, lon in _HELSINKI_SITES]
    pois = _read_csv("helsinki_pois.csv", kind=pa.string(), name=pa.string(), nearest_node=pa.int64())
    hospitals, stations = [], []
    for kind, name, node in zip(pois["kind"], pois["name"], pois["nearest_node"]):
        place = {"id": f"{kind.replace('_', '-')}-{_slug(name)}", "node": str(node)}
        if kind == "fire_station":
            stations.append(place)
        else:  # private clinics take few casualties: a deliberately tight setting
            hospitals.append({**place, "capacity": int(rng.integers(2, 6))})
    n = 20
    site_idx = np.sort(np.concatenate([np.arange(len(sites)), rng.integers(len(sites), size=n - len(sites))]))
    para = [hospitals[i]["id"] for i in rng.choice(len(hospitals), size=4, replace=False).tolist()]
    hart = _pick(rng, 4, 0.25).tolist()
    network = {"kind": "graph", "speed_kmh": 30.0,
               "nodes_file": _HELSINKI_NODES, "edges_file": _HELSINKI_EDGES}  # in DATA_DIR: see generate
    return _scenario("helsinki", network, hospitals, sites, stations,
                     _responders(para, hart, [stations[0]["id"]] * 2),
                     _casualties(rng, [sites[i]["id"] for i in site_idx.tolist()], round(_TRAPPED_SHARE * n)))


def _tiny(rng) -> dict:
    """One site, 3-5 casualties (at least one trapped): small enough to follow by hand."""
    sid, lat, lon = _LONDON_SITES[0]
    hosp = _read_csv("london_hospitals.csv", id=pa.string())
    near = np.argsort(_haversine_m(lat, lon, np.array(hosp["lat"]), np.array(hosp["lon"])), kind="stable")
    hospitals = [{"id": hosp["id"][i], "lat": hosp["lat"][i], "lon": hosp["lon"][i],
                  "capacity": int(rng.integers(1, 4))} for i in near[:2].tolist()]
    fs = _read_csv("london_fire_stations.csv", id=pa.string())
    j = int(np.argmin(_haversine_m(lat, lon, np.array(fs["lat"]), np.array(fs["lon"]))))
    stations = [{"id": fs["id"][j], "lat": fs["lat"][j], "lon": fs["lon"][j]}]
    n = int(rng.integers(3, 6))
    casualties = _casualties(rng, [sid] * n, max(1, round(_TRAPPED_SHARE * n)))
    return _scenario("tiny", _geo_network(), hospitals, [{"id": sid, "lat": lat, "lon": lon}], stations,
                     _responders([h["id"] for h in hospitals], [True, False], [stations[0]["id"]]),
                     casualties)


#: The largest ``random`` scenario: ten times the scale ladder's top rung in people, and places
#: few enough that the travel matrix over them fits in memory (at most 1 000 hospitals, 1 000
#: sites and 5 000 stations: 0.4 GB).
MAXIMUM = {"casualties": 100_000, "paramedics": 10_000, "fire": 10_000, "hospitals": 1_000, "sites": 1_000}


def _count(name: str, value, minimum: int) -> int:
    if value is None:
        raise ValueError(f"preset 'random' requires option {name!r}")
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"option {name!r}: expected an integer, got {value!r}") from None
    if not minimum <= value <= MAXIMUM[name]:
        raise ValueError(f"option {name!r}: expected an integer from {minimum} to {MAXIMUM[name]}, got {value}")
    return value


def _random(rng, casualties=None, paramedics=None, fire=None, hospitals=None, sites=None, **unknown) -> dict:
    """Synthetic geo scenario of any size in a 20 km box around central London (vectorised)."""
    if unknown:
        raise ValueError(f"unknown option(s) for preset 'random': {', '.join(sorted(unknown))}")
    n, m = _count("casualties", casualties, 0), _count("paramedics", paramedics, 0)
    k, h = _count("fire", fire, 0), _count("hospitals", hospitals, 1)
    s = min(200, max(1, n // 20)) if sites is None else _count("sites", sites, 1)
    if n and not m:  # the file would not validate (planner.require_teams)
        raise ValueError("option 'paramedics': casualties need at least one paramedic team to carry them")
    n_st = math.ceil(k / 2)  # stations usually house more than one pump

    dlat = 10.0 / 111.195  # +-10 km
    dlon = dlat / math.cos(math.radians(51.5074))

    def points(count: int, prefix: str) -> list[dict]:
        lat = np.round(51.5074 + rng.uniform(-dlat, dlat, count), 6).tolist()
        lon = np.round(-0.1278 + rng.uniform(-dlon, dlon, count), 6).tolist()
        w = max(3, len(str(count)))
        return [{"id": f"{prefix}-{i + 1:0{w}d}", "lat": a, "lon": b} for i, (a, b) in enumerate(zip(lat, lon))]

    hosp, site_list, stations = points(h, "hosp"), points(s, "site"), points(n_st, "stn")
    # ~10 % spare beds overall, split unevenly so that some hospitals fill up early
    caps = rng.multinomial(math.ceil(1.1 * n), rng.dirichlet(np.full(h, 2.0))).tolist()
    for place, cap in zip(hosp, caps):
        place["capacity"] = cap
    first = min(n, s)  # every site gets at least one casualty when there are enough
    site_idx = np.sort(np.concatenate([np.arange(first), rng.integers(s, size=n - first)]))
    para = [hosp[i]["id"] for i in rng.integers(h, size=m).tolist()]
    hart = _pick(rng, m, _HART_SHARE).tolist()
    fire_starts = [stations[i % n_st]["id"] for i in range(k)]
    # without fire teams a trapped casualty could never be rescued, so nobody is trapped then
    cas = _casualties(rng, [site_list[i]["id"] for i in site_idx.tolist()], round(_TRAPPED_SHARE * n) if k else 0)
    return _scenario(f"random-{n}x{m}", _geo_network(), hosp, site_list, stations,
                     _responders(para, hart, fire_starts), cas)


_BUILDERS = {"paper-london": _paper_london, "helsinki": _helsinki, "tiny": _tiny, "random": _random}
