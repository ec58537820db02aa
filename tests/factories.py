"""Random, deliberately awkward scenarios and plans for the evaluator tests.

Everything is driven by one ``numpy.random.Generator``, so a failing case is reproduced from its
seed. The scenarios are small (a handful of places, responders and casualties) but exercise every
rule of SPEC §4–§8.1 that changes a number: geo and graph networks, places that share a location
(zero travel, so arrivals tie), HART and non-HART treats, trapped casualties with and without a
rescue under way, treated / under treatment / in transit / known dead casualties, observations
before the scenario time, non-zero scenario times, tight hospitals, non-triangular chains,
zero-length and very long durations, pinned first tasks, shift ends, and wait cycles.
"""

from __future__ import annotations

import numpy as np

from engine.plan import Plan, Task

DEAD = [0.0, 0.0, 0.0, 1.0]
CATEGORIES = ("delayed", "urgent", "immediate", "P1", "P2", "P3", "deceased", "dead")
SIEVES = (
    {"walking": True},
    {"walking": False, "breathing": False},
    {"walking": False, "breathing": True, "respiratory_rate": 35},
    {"walking": False, "breathing": True, "respiratory_rate": 16, "capillary_refill": 3.0},
    {"walking": False, "breathing": True, "respiratory_rate": 16, "pulse": 90},
    {},
)
STARTS = (
    {"walking": True},
    {"walking": False, "breathing": False},
    {"breathing": True, "respiratory_rate": 40},
    {"breathing": True, "radial_pulse": False},
    {"breathing": True, "follows_commands": False},
    {"breathing": True, "respiratory_rate": 20, "radial_pulse": True, "follows_commands": True},
)


def _f(x) -> float:
    return float(x)


def some_time(rng, scale: float = 20.0) -> float:
    """A duration: often a whole or half minute (so that times tie), sometimes 0 or very long."""
    u = rng.random()
    if u < 0.12:
        return 0.0
    if u < 0.55:
        return _f(rng.integers(1, int(scale) + 1))
    if u < 0.7:
        return _f(rng.integers(1, 2 * int(scale) + 1) / 2)
    if u < 0.97:
        return _f(rng.uniform(0, scale))
    return _f(rng.uniform(0, 10_000))


def random_chain(rng) -> list[list[float]]:
    """A row-stochastic 4x4 matrix with an absorbing last row, usually not triangular."""
    rows = []
    for i in range(3):
        eps = rng.uniform(0, 0.3)
        d = rng.dirichlet(np.full(4, 0.7))
        if rng.random() < 0.2:
            d[rng.integers(4)] = 0.0
            d = d / d.sum() if d.sum() > 0 else np.eye(4)[3]
        row = (1 - eps) * np.eye(4)[i] + eps * d
        rows.append([_f(x) for x in row])
    rows.append([0.0, 0.0, 0.0, 1.0])
    return rows


def random_health(rng):
    u = rng.random()
    if u < 0.3:
        return str(rng.choice(CATEGORIES))
    if u < 0.38:
        return list(DEAD)
    if u < 0.45:
        return {"sieve": dict(SIEVES[rng.integers(len(SIEVES))])}
    if u < 0.52:
        return {"start": dict(STARTS[rng.integers(len(STARTS))])}
    v = rng.dirichlet(np.full(4, 0.8))
    if rng.random() < 0.4:
        v[rng.integers(4)] = 0.0
        if v.sum() == 0:
            v[0] = 1.0
        v = v / v.sum()
    return [_f(x) for x in v]


def _geo_point(rng, pool, share: float = 0.6) -> dict:
    if pool and rng.random() < share:  # share a location with another place: zero travel
        lat, lon = pool[rng.integers(len(pool))]
    else:
        lat = round(_f(51.5 + rng.uniform(-0.05, 0.05)), 6)
        lon = round(_f(-0.1 + rng.uniform(-0.08, 0.08)), 6)
        pool.append((lat, lon))
    return {"lat": lat, "lon": lon}


def random_graph(rng) -> tuple[dict, list]:
    """A small strongly connected road graph (a directed ring plus random extra edges)."""
    n = int(rng.integers(2, 7))
    int_ids = rng.random() < 0.3
    ids = [int(i * 10 + 1) for i in range(n)] if int_ids else [f"n{i}" for i in range(n)]
    nodes = [{"id": ids[i], "lat": round(_f(60.17 + rng.uniform(-0.01, 0.01)), 6),
              "lon": round(_f(24.94 + rng.uniform(-0.02, 0.02)), 6)} for i in range(n)]
    network: dict = {"kind": "graph"}
    if rng.random() < 0.6:
        network["speed_kmh"] = _f(rng.choice([20.0, 30.0, 45.0]))

    def edge(a, b) -> dict:
        e = {"from": ids[a], "to": ids[b]}
        if "speed_kmh" in network and rng.random() < 0.4:
            e["length_m"] = _f(rng.integers(0, 4000))
        elif rng.random() < 0.2:
            e["length_m"] = _f(rng.integers(0, 4000))
            e["speed_kmh"] = _f(rng.choice([15.0, 50.0]))
        else:
            e["minutes"] = _f(rng.integers(0, 12)) if rng.random() < 0.7 else _f(rng.uniform(0, 12))
        if rng.random() < 0.5:
            e["oneway"] = True
        return e

    edges = []
    for i in range(n):  # a oneway ring makes the graph strongly connected
        e = edge(i, (i + 1) % n)
        e["oneway"] = True
        edges.append(e)
    for _ in range(int(rng.integers(0, 2 * n))):
        a, b = rng.integers(n, size=2)
        edges.append(edge(int(a), int(b)))  # may be a parallel edge or a loop
    network["nodes"] = nodes
    network["edges"] = edges
    return network, nodes


def _graph_point(rng, nodes) -> dict:
    node = nodes[rng.integers(len(nodes))]
    if rng.random() < 0.6:
        return {"node": node["id"]}
    # near a node: snapped to the nearest one
    return {"lat": round(node["lat"] + _f(rng.uniform(-1e-4, 1e-4)), 6),
            "lon": round(node["lon"] + _f(rng.uniform(-1e-4, 1e-4)), 6)}


def random_scenario(rng, *, max_casualties: int = 7) -> dict:
    """A valid scenario dict (SPEC §4 + §8.1) full of corner cases."""
    graph = rng.random() < 0.4
    compact = rng.random() < 0.35  # every place on one or two spots: many zero travels and ties
    pool: list = []
    if graph:
        network, nodes = random_graph(rng)
        spots = nodes[: int(rng.integers(1, 3))] if compact else nodes
        point = lambda: _graph_point(rng, spots)  # noqa: E731
    else:
        network = {"kind": "geo", "speed_kmh": _f(rng.choice([20.0, 30.0, 50.0]))}
        if rng.random() < 0.5:
            network["detour_factor"] = _f(rng.uniform(1.0, 1.6))
        if compact:
            for _ in range(int(rng.integers(1, 3))):
                _geo_point(rng, pool, share=0.0)
        point = lambda: _geo_point(rng, pool, share=1.0 if compact else 0.6)  # noqa: E731

    # compact scenarios use short whole-minute durations so that arrivals tie often
    st = (lambda rng, scale=20.0: _f(rng.integers(0, 4))) if compact else some_time
    u = rng.random()
    time = 0.0 if u < 0.4 else _f(rng.integers(1, 60)) if u < 0.7 else _f(rng.uniform(0, 100)) if u < 0.95 \
        else _f(rng.uniform(1000, 5000))

    hospitals = []
    for i in range(int(rng.integers(1, 4))):
        h = {"id": f"H{i}", **point(), "capacity": int(rng.choice([0, 1, 1, 2, 2, 3, 5]))}
        if rng.random() < 0.3:
            h["overflow_risk"] = _f(rng.choice([0.0, 0.2, 1.0, rng.uniform(0, 1)]))
        hospitals.append(h)
    sites = [{"id": f"S{i}", **point()} for i in range(int(rng.integers(1, 4)))]
    stations = [{"id": f"F{i}", **point()} for i in range(int(rng.integers(0, 3)))]
    places = [p["id"] for p in hospitals + sites + stations]

    n_para = int(rng.integers(1, 5))
    n_fire = int(rng.integers(0, 3))
    responders = []
    for i in range(n_para + n_fire):
        fire = i >= n_para
        r = {"id": f"fire{i - n_para}" if fire else f"amb{i}", "kind": "fire" if fire else "paramedic"}
        r["start"] = str(rng.choice(places)) if rng.random() < 0.75 else point()
        if not fire and rng.random() < 0.4:
            r["hart"] = True
        elif not fire and rng.random() < 0.2:
            r["hart"] = False
        u = rng.random()
        if u < (0.7 if compact else 0.3):
            avail = None
        elif u < 0.5:
            avail = time - st(rng, 30)  # before the scenario time
        elif u < 0.95:
            avail = time + st(rng, 30)
        else:
            avail = time + _f(rng.uniform(0, 10_000))
        if avail is not None:
            r["available_at"] = avail
        if rng.random() < 0.25:
            base = time if avail is None else avail
            r["shift_end"] = base + _f(rng.choice([0.0, rng.uniform(0, 60), rng.uniform(0, 300)]))
        responders.append(r)

    if rng.random() < 0.3:
        rng.shuffle(responders)  # fire teams need not come last

    casualties = []
    for i in range(int(rng.integers(0, max_casualties + 1))):
        c = {"id": f"c{i}", "site": str(rng.choice([s["id"] for s in sites])), "health": random_health(rng)}
        if rng.random() < 0.35:
            u = rng.random()
            c["observed_at"] = time if u < 0.2 else time - st(rng, 40) if u < 0.9 \
                else time - _f(rng.uniform(0, 10_000))
        kind = rng.choice(["plain", "trapped", "rescuing", "treated", "treating", "transit"],
                          p=[0.25, 0.25, 0.12, 0.12, 0.12, 0.14])
        if kind in ("trapped", "rescuing"):
            c["trapped"] = True
            if kind == "rescuing" or n_fire == 0:
                c["rescue_ends_at"] = time + st(rng, 30)
            if rng.random() < 0.25:
                c["treated"] = True
            elif rng.random() < 0.25:
                c["treatment_ends_at"] = time + st(rng, 30)
        elif kind == "treated":
            c["treated"] = True
        elif kind == "treating":
            c["treatment_ends_at"] = time + st(rng, 30)
        elif kind == "transit":
            c["in_transit"] = {"hospital": str(rng.choice([h["id"] for h in hospitals])),
                               "arrival": time + st(rng, 30)}
            if rng.random() < 0.3:
                c["treated"] = True
        elif rng.random() < 0.1:
            c["trapped"] = False
        if rng.random() < 0.3:
            c["rescue_minutes"] = st(rng, 30)
        if rng.random() < 0.3:
            c["treatment_minutes"] = st(rng, 20)
        casualties.append(c)

    out = {"format": "goldenhour.scenario/1", "name": "random-test", "network": network,
           "hospitals": hospitals, "sites": sites, "responders": responders, "casualties": casualties}
    if time != 0.0 or rng.random() < 0.5:
        out["time"] = time
    if stations or rng.random() < 0.5:
        out["stations"] = stations
    if rng.random() < 0.6:
        out["durations"] = {k: st(rng, s) for k, s in
                            (("load", 5), ("handover", 10), ("treatment", 20), ("rescue", 30))
                            if rng.random() < 0.7}
    if rng.random() < 0.5:
        keys = ["trapped", "ccs", "ambulance", "trapped_treated", "ccs_treated"]
        out["chains"] = {k: random_chain(rng) for k in keys if rng.random() < 0.5}
    if rng.random() < 0.3:
        out["treatment_slowdown"] = _f(rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
    if rng.random() < 0.3:
        out["hospital_overflow_risk"] = _f(rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
    if rng.random() < 0.2:
        out["delivered_fatalities"] = _f(rng.uniform(0, 5))
    return out


def required_tasks(sc):
    """``(rescue, treat_ok, transport)`` casualty index lists of a loaded scenario (SPEC §5, §8.1)."""
    rescue, treat_ok, transport = [], [], []
    for i, c in enumerate(sc.model.casualties):
        dead = [float(x) for x in sc.health[i]] == DEAD
        if dead or c.in_transit is not None:
            continue
        transport.append(i)
        if c.trapped and c.rescue_ends_at is None:
            rescue.append(i)
        if not c.treated and c.treatment_ends_at is None:
            treat_ok.append(i)
    return rescue, treat_ok, transport


def random_plan(sc, rng, mode: str | None = None, pin_share: float = 0.3) -> Plan:
    """A valid plan for the loaded scenario ``sc``.

    ``mode``: ``"ordered"`` (every list follows one global order that respects the waits: never a
    cycle), ``"shuffled"`` (lists in random order: sometimes a cycle) or ``"cycle"`` (a wait cycle
    injected when the scenario allows one). Default: drawn at random.
    """
    if mode is None:
        mode = str(rng.choice(["ordered", "shuffled", "cycle"], p=[0.65, 0.15, 0.2]))
    model = sc.model
    cas = model.casualties
    paras = [r.id for r in model.responders if r.kind == "paramedic"]
    fires = [r.id for r in model.responders if r.kind == "fire"]
    hospitals = [h.id for h in model.hospitals]
    rescue, treat_ok, transport = required_tasks(sc)
    items = []  # (key, responder, Task)
    base = {i: rng.random() for i in range(len(cas))}
    treats = [i for i in treat_ok if rng.random() < 0.5]
    for i in rescue:
        items.append((base[i], str(rng.choice(fires)), Task("rescue", cas[i].id)))
    treat_owner = {}
    for i in treats:
        treat_owner[i] = str(rng.choice(paras))
        items.append((base[i] + rng.random(), treat_owner[i], Task("treat", cas[i].id)))
    transport_owner = {}
    for i in transport:
        transport_owner[i] = treat_owner[i] if i in treat_owner and rng.random() < 0.5 else str(rng.choice(paras))
        items.append((base[i] + 1.0 + rng.random(), transport_owner[i],
                      Task("transport", cas[i].id, str(rng.choice(hospitals)))))
    routes: dict[str, list] = {r.id: [] for r in model.responders}
    items.sort(key=lambda x: x[0])
    for _key, rid, task in items:
        routes[rid].append(task)

    if mode == "shuffled":
        for rid in routes:
            order = rng.permutation(len(routes[rid]))
            routes[rid] = [routes[rid][j] for j in order]
    elif mode == "cycle":
        _inject_cycle(rng, routes, treats, treat_owner, transport_owner, cas, paras)

    for rid, tasks in routes.items():
        if tasks and rng.random() < pin_share:
            k = 1 if rng.random() < 0.7 else int(rng.integers(1, len(tasks) + 1))
            routes[rid] = [Task(t.kind, t.casualty, t.hospital, j < k) for j, t in enumerate(tasks)]
    return Plan(routes, model.name, float(model.time))


def _inject_cycle(rng, routes, treats, treat_owner, transport_owner, cas, paras) -> None:
    """Make the responders wait on each other, if this plan has the tasks for it."""
    def move(i, kind, rid, where):
        """Move casualty ``i``'s task to ``rid`` at index ``where`` (-1: last; a callable: of the list)."""
        cid = cas[i].id
        for tasks in routes.values():
            for j, t in enumerate(tasks):
                if t.casualty == cid and t.kind == kind:
                    task = tasks.pop(j)
                    dst = routes[rid]
                    k = where(dst) if callable(where) else where
                    dst.insert(len(dst) if k < 0 else k, task)
                    return

    if len(treats) >= 2 and len(paras) >= 2 and rng.random() < 0.5:
        # r1: transport(b) then treat(a); r2: transport(a) then treat(b): each waits for the other
        a, b = [int(x) for x in rng.choice(treats, size=2, replace=False)]
        r1, r2 = [str(x) for x in rng.choice(paras, size=2, replace=False)]
        move(a, "treat", r1, -1)
        move(b, "transport", r1, 0)
        move(b, "treat", r2, -1)
        move(a, "transport", r2, 0)
    elif treats:
        # the transport before the treat of the same casualty on the same paramedic
        i = int(rng.choice(treats))
        r = str(rng.choice(paras))
        move(i, "treat", r, -1)
        move(i, "transport", r, lambda dst: int(rng.integers(0, len(dst))))  # before the treat (last)


def one_site(*, fire_teams: int = 2, h1_beds: int = 5, rescue_minutes: float = 10.0) -> dict:
    """A hand-sized incident for the online tests: one site, hospitals H1 and H2, paramedic teams
    amb1 (at H1) and amb2 (at H2), fire teams fire1, fire2... at a station; casualties c1
    (immediate), c2 (urgent, trapped) and c3 (delayed)."""
    return {
        "format": "goldenhour.scenario/1", "name": "one-site", "time": 0.0,
        "network": {"kind": "geo", "speed_kmh": 30.0},
        "hospitals": [{"id": "H1", "lat": 51.52, "lon": -0.06, "capacity": h1_beds},
                      {"id": "H2", "lat": 51.50, "lon": -0.10, "capacity": 5}],
        "sites": [{"id": "S", "lat": 51.514, "lon": -0.076}],
        "stations": [{"id": "FS", "lat": 51.517, "lon": -0.066}],
        "responders": [{"id": "amb1", "kind": "paramedic", "start": "H1"},
                       {"id": "amb2", "kind": "paramedic", "start": "H2"}]
                      + [{"id": f"fire{i + 1}", "kind": "fire", "start": "FS"} for i in range(fire_teams)],
        "casualties": [{"id": "c1", "site": "S", "health": "immediate"},
                       {"id": "c2", "site": "S", "health": "urgent", "trapped": True, "rescue_minutes": rescue_minutes},
                       {"id": "c3", "site": "S", "health": "delayed"}],
    }


def differing_arrays(fast, slow) -> list[str]:
    """The fields in which two ``ProblemArrays`` of one model differ, each compared exactly.

    The start table and its rides (``start_table``, ``start_ride``) are compared by the rows
    each casualty reads: rows are numbered as the process made them, and a model derived from
    another keeps the rides of the rows it had (``engine.problem._start_ride``), where a reload
    has the rides of every row made since. A model derived across a change of roads has neither
    ride table (``engine.problem.rebuild_problem``): what it lacks is not a difference.
    """
    out = [name for name, a, b in zip(fast._fields, fast, slow) if name not in ("start_table", "start_ride")
           and not (a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True))
           and not (name == "ride_steps" and a.size == 0)]  # left empty by a change of roads
    rows = [(int(f), int(s)) for f, s in zip(fast.start_row, slow.start_row) if f >= 0 and s >= 0]
    if any(not np.array_equal(fast.start_table[f], slow.start_table[s]) for f, s in rows):
        out.append("start_table")
    if any(not np.array_equal(fast.start_ride[f], slow.start_ride[s]) for f, s in rows
           if f < len(fast.start_ride) and s < len(slow.start_ride)):
        out.append("start_ride")
    return out


def without_ride_tables(P):
    """``P`` with empty ride tables (``engine.problem.RIDE_TABLES_MAX_BYTES``): every wait before
    a ride propagated and the ride read after it, as for a problem too big for the tables."""
    return P._replace(ride_steps=P.ride_steps[:, :0, :0], start_ride=P.start_ride[:0],
                      ride_long=P.ride_long[:, :0, :0, :0])
