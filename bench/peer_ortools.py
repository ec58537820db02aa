"""An OR-Tools routing "peer": the same incident as a pickup-and-delivery VRP, solved by GLS.

goldenhour benchmarks its own search against this peer. :func:`solve_ortools` models a scenario
for OR-Tools' routing library (``ortools.constraint_solver.pywrapcp``), solves it with guided
local search, and turns the routes into an ordinary goldenhour :class:`engine.plan.Plan`, which
goldenhour then scores with its own exact evaluator (``engine.evaluate``). OR-Tools' objective is
only a surrogate: every figure that is compared is goldenhour's. :func:`compare` runs both.

Modelling choices, and why
--------------------------
Vehicles
    Every responder is a vehicle (paramedic teams and fire teams alike). A vehicle starts at its
    start location at its free time ``max(available_at, time)`` (the start cumul is fixed to it;
    slack lets it wait) and ends at one shared dummy end node reached at zero travel cost, so
    routes are open, as goldenhour's task lists are. A finite ``shift_end`` bounds the end cumul:
    the dummy end is reached right after the last task ends, so that is "every task ends by its
    shift end" (SPEC §4). A responder free only after its shift end can do nothing and may visit
    no node (if that leaves nobody for some task: :class:`RuntimeError`).
Transports: one pickup, K alternative deliveries
    A casualty that needs transport (active: not known dead, not in transit) has one pickup node
    at its site (service time ``load``) and one delivery node at each of its ``K`` (default 3)
    nearest hospitals (service time ``handover``), plus the hospital of the initial plan if that
    is not among them. The hospital choice is ``AddPickupAndDeliverySets`` over a one-node pickup
    disjunction and a K-node delivery disjunction, both mandatory (no penalty: exactly one node
    active). This is the cleaner form of "one pickup/delivery pair per candidate hospital": the
    K pickups would all stand at the same site anyway, so one pickup serves every alternative,
    the pickup is always active, and the rescue precedence below never involves an inactive node
    (whose cumul var would be free). Pickup-and-delivery semantics follow (same vehicle, pickup
    first).
Who may visit what
    Transport nodes: paramedic vehicles only; rescue nodes: fire vehicles only. The intended call,
    ``RoutingModel.SetAllowedVehiclesForIndex``, cannot be called from Python in OR-Tools 9.15
    (its ``absl::Span<int const>`` argument has no SWIG typemap: every list is rejected), so the
    peer restricts each node's ``VehicleVar`` domain instead, which is what that call does and
    what the local-search filters read.
A transport is atomic
    In goldenhour a transport is pickup, load, drive, handover, with nothing in between. Two things
    make OR-Tools' routes the same: a capacity dimension (``+1`` at a pickup, ``-1`` at a delivery,
    capacity 1 for paramedics, 0 for fire teams) so no other node fits between a pickup and its
    delivery, and the slack var of every pickup fixed to 0 so the ambulance does not idle on the
    way: the delivery's cumul is then exactly the hospital arrival time of SPEC §6.
Rescues and the precedence
    Each casualty still needing a rescue has one rescue node at its site with service time
    ``rescue_minutes``. Its pickup may start only after the rescue ends:
    ``RoutingDimension.AddNodePrecedence(rescue, pickup, rescue_minutes)`` on every time
    dimension, i.e. ``cumul(pickup) >= cumul(rescue) + rescue_minutes`` across vehicles. A node
    precedence, unlike ``solver().Add`` on the cumul vars, is seen by OR-Tools' filters and
    cumul optimizers: in trials on the London example, ``solver().Add`` left the first-solution
    heuristic blind to the wait (its first solution scored 33.5 expected fatalities against 23.3
    with the precedence) and had the CP check reject most of the moves the filters accepted.
    Both nodes are mandatory, so the inactive-node caveat does not arise. Fire teams never wait
    for anybody, hence no cycle of waits is possible. A rescue or a treatment already under way
    (SPEC §8.1 ``rescue_ends_at`` / ``treatment_ends_at``) is a lower bound on the pickup cumul.
Time
    Minutes are scaled to integers, ``TIME_SCALE`` = 100 units a minute, always rounding *up*
    (travel, service times, free times) and the shift end *down*. OR-Tools' times are therefore
    never earlier than goldenhour's schedule of the same lists (which starts every task as early as
    SPEC §6 allows), so a route OR-Tools finds within a shift end is within it for goldenhour too.
    The time dimensions allow slack (waiting for a rescue) up to a horizon no schedule reaches.
Objective: a surrogate for expected fatalities
    OR-Tools cannot evaluate goldenhour's Markov death risk of an arrival time; the richest thing
    its routing API offers per node is a soft upper bound per dimension, i.e. a cost
    ``coef * max(0, cumul - bound)``. There are ``len(bounds)`` time dimensions (default 4: the
    time dimension itself and three copies with the same transits, slack, start times and
    precedences; only the first carries shift ends), and each delivery node gets one soft upper
    bound on each, at ``BOUNDS`` = 0, 30, 60, 120 minutes after the scenario time. Their sum is a
    convex piecewise-linear penalty of the arrival time, the only shape that the API's
    non-negative coefficients can give. Per casualty the coefficients are fitted by non-negative
    least squares (with a free constant) to the casualty's ``p_dead(arrival)`` over the arrival
    times a plan can plausibly produce (from its earliest possible arrival to a rough makespan):
    the casualty waits trapped (until the earliest a fire team could end its rescue), then at the
    CCS (the treated variant from a treatment already done or under way), then rides ``load``
    plus the drive to its nearest hospital in the ambulance, each stretch propagated as
    ``engine.health.propagate`` does with the scenario's chains (SPEC §3, §7; ``_Steps``). For a
    convex risk curve (delayed and urgent casualties) the fit approaches the curve's
    piecewise-linear interpolation, whose coefficients are the increase of ``p_dead``'s slope
    from one bound to the next; for a concave one (immediate casualties, whose risk saturates)
    it is the closest convex approximation, which overstates very late arrivals. Every casualty
    keeps a coefficient of at least 1 on the first bound (SPEC §7's tie-breaker, casualty
    minutes). Coefficients are scaled to integers at ``COST_PER_FATALITY`` cost units per
    expected fatality.
Arc costs: driving and beds
    Every arc costs ``arc_weight`` expected fatalities per minute of driving (all vehicles), which
    keeps routes sensible and gives guided local search, which penalises arcs, something to work
    on. Hospital capacity is global across vehicles, which no routing dimension or filter can
    express (a ``solver().Add`` count would be checked by CP only, after the filters, and would
    make the first solution fail outright), so it enters as a price: the arc from a casualty's
    pickup to its delivery at hospital ``h`` also costs ``pressure(h) * overflow_risk(h) *
    (1 - p_dead)``, where ``pressure(h)`` is the share of ``h``'s arrivals that would find no
    bed if every casualty went to its nearest hospital (a mean-field estimate of the chance that
    one more arrival overflows) and ``p_dead`` the median of the casualty's fitted risk curve.
Left out (goldenhour scores them, the peer does not model them)
    Treat tasks are optional in goldenhour and the peer plans none (an optional node whose effect
    on the risk curve depends on its timing is beyond soft bounds), so an initial plan's treats
    are dropped. Hospitals beyond each site's K nearest (and the initial plan's choice) are never
    used. Casualties known dead or already in transit get no nodes (SPEC §5, §8.1). Pinned tasks
    are not supported: the peer plans from a scenario file, not from an issued plan.
Search
    By default the search starts from goldenhour's ``greedy`` plan, which is where goldenhour's
    tabu search starts too, so that :func:`compare` compares the two searches and not two
    constructions. With ``initial=None`` OR-Tools builds its own first solution, by default with
    ``LOCAL_CHEAPEST_COST_INSERTION``, which prices an insertion with the whole model cost
    (soft bounds included); ``PARALLEL_CHEAPEST_INSERTION`` (OR-Tools' own choice for
    pickup-and-delivery models) prices arcs only and piles nearly every transport on the three
    or four ambulances nearest the sites (52.0 expected fatalities on London, against 25.6 for
    goldenhour's dispatcher rule). Then ``GUIDED_LOCAL_SEARCH`` runs for what is left of
    ``time_limit_s`` after model building (closing the model and reading in the start
    included), or ``MIN_SEARCH_S`` if nothing is left. A time-limited GLS is not reproducible; with
    ``solution_limit`` (and a time limit that is not reached) the search is deterministic.
    OR-Tools' routing search takes no random seed, so ``seed`` permutes the numbering of the
    casualty nodes (``seed=0``: file order), which changes tie-breaking and hence the search.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from scipy.optimize import nnls

import engine
from engine import health
from engine.plan import Plan, Task, check_plan, problem_arrays
from engine.scenario import Scenario
from kernels.layout import ACTIVE

#: Integer time units per minute.
TIME_SCALE = 100
#: Integer cost units per expected fatality.
COST_PER_FATALITY = 10**10
#: Soft upper bounds on each delivery's arrival, minutes after the scenario time (one per dimension).
BOUNDS = (0.0, 30.0, 60.0, 120.0)
#: Default number of candidate hospitals per casualty (its nearest).
K_HOSPITALS = 3
#: Default arc cost, in expected fatalities per minute of driving.
ARC_WEIGHT = 1e-3
#: The least search time (seconds) OR-Tools is given, whatever the model building took.
MIN_SEARCH_S = 0.05

_PICKUP, _DELIVERY, _RESCUE, _START, _END = range(5)
_STATUS = dict(routing_enums_pb2.RoutingSearchStatus.Value.items())
_STATUS_NAME = {v: k for k, v in _STATUS.items()}


def _up(minutes: float) -> int:
    """Minutes to time units, rounded up (1e-9 guards against 2.0000000001 becoming 201)."""
    return int(math.ceil(minutes * TIME_SCALE - 1e-9))


@dataclass
class _Model:
    """The node table of one scenario: what each routing node stands for."""

    kind: list[int] = field(default_factory=list)        # _PICKUP / _DELIVERY / _RESCUE / _START / _END
    loc: list[int] = field(default_factory=list)         # location index in sc.travel, -1 for the end
    casualty: list[int] = field(default_factory=list)    # casualty index, -1 for starts and the end
    hospital: list[int] = field(default_factory=list)    # hospital index of a delivery, else -1
    service: list[int] = field(default_factory=list)     # service time in units

    def add(self, kind, loc, casualty=-1, hospital=-1, service=0) -> int:
        self.kind.append(kind)
        self.loc.append(loc)
        self.casualty.append(casualty)
        self.hospital.append(hospital)
        self.service.append(service)
        return len(self.kind) - 1


class _Steps:
    """``engine.health.step_matrix`` of the scenario's chains, each made once per environment and
    duration, and each whole-minute power once per environment: the same products in the same
    order, so the same bits as ``health.propagate``. A risk curve samples 121 arrivals whose
    ambulance stretch is one duration and whose powers repeat: at 1 000 casualties, propagating
    each stretch afresh took 5.4 s of the 11 s spent building the routing model."""

    def __init__(self, chains: np.ndarray):
        self.chains = chains
        self._powers: dict[tuple[int, int], np.ndarray] = {}
        self._steps: dict[tuple[int, float], np.ndarray] = {}

    def propagate(self, h: np.ndarray, k: int, delta: float) -> np.ndarray:
        """``health.propagate(h, chains[k], delta)`` for ``delta > 0``."""
        step = self._steps.get((k, delta))
        if step is None:
            n = math.floor(delta)
            f = delta - n
            power = self._powers.get((k, n))
            if power is None:
                power = self._powers[k, n] = np.linalg.matrix_power(self.chains[k], n)
            step = self._steps[k, delta] = power @ ((1.0 - f) * np.eye(4) + f * self.chains[k])
        return np.asarray(h, dtype=np.float64) @ step


def _risk_curve(sc: Scenario, P, c: int, arrivals: np.ndarray, rescue_end: float, drive: float,
                steps: _Steps | None = None) -> np.ndarray:
    """``p_dead`` of casualty ``c`` for each arrival time, under the peer's simplified timeline.

    From its observation it is trapped until ``rescue_end`` (if trapped), then at the CCS until the
    pickup ``arrival - drive - load``, then in the ambulance; the treated variants apply from the
    end of a treatment already done or under way. ``steps`` (one per scenario) keeps the step
    matrices from one casualty to the next.
    """
    steps = steps if steps is not None else _Steps(sc.chains)
    load = float(P.scalars[1])
    o = float(P.obs[c])
    treated_from = float(P.treated0[c])  # -inf: treated throughout; inf: never
    trapped = bool(P.trapped[c])
    out = np.empty(len(arrivals))
    for i, t in enumerate(arrivals):
        pickup = max(o, t - drive - load)
        cuts = sorted({o, pickup, max(o, t)} | {x for x in (rescue_end, treated_from) if o < x < pickup})
        h = P.h0[c]
        for a, b in zip(cuts, cuts[1:]):
            if b <= a:
                continue
            if a >= pickup:
                k = health.AMBULANCE
            elif trapped and a < rescue_end:
                k = health.TRAPPED_TREATED if a >= treated_from else health.TRAPPED
            else:
                k = health.CCS_TREATED if a >= treated_from else health.CCS
            h = steps.propagate(h, k, b - a)
        out[i] = h[health.DECEASED]
    return out


def _fit_bounds(arrivals: np.ndarray, risk: np.ndarray, t0: float, bounds) -> np.ndarray:
    """Non-negative coefficients (per minute) of ``max(0, t - t0 - b)`` for each ``b`` in
    ``bounds``, plus a free constant, fitting ``risk`` over ``arrivals`` in least squares."""
    basis = np.stack([np.maximum(0.0, arrivals - t0 - b) for b in bounds], axis=1)
    ones = np.ones((len(arrivals), 1))
    coef, _ = nnls(np.hstack([basis, ones, -ones]), risk - risk[0])
    return coef[: len(bounds)]


def _build(sc: Scenario, seed: int, k_hospitals: int, arc_weight: float, bounds: tuple[float, ...],
           extra_hospital: dict | None = None):
    """The routing model of ``sc``: ``(manager, routing, node table, time dimensions, extras)``."""
    P = problem_arrays(sc)
    m = sc.model
    t0 = float(m.time)
    load, handover = float(P.scalars[1]), float(P.scalars[2])
    n_resp = len(m.responders)
    fire = np.asarray(P.resp_fire, dtype=bool)
    usable = P.resp_free <= P.resp_shift + 1e-9
    medics = [int(r) for r in np.flatnonzero(~fire & usable)]
    fires = [int(r) for r in np.flatnonzero(fire & usable)]

    transport = [int(c) for c in np.flatnonzero(P.status == ACTIVE)]
    rescue = [int(c) for c in np.flatnonzero(P.needs_rescue)]
    _check_teams(P)
    order = list(dict.fromkeys(transport + rescue))
    if seed:
        order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]

    # Nodes: one start per vehicle, the shared end, then each casualty's nodes.
    nodes = _Model()
    for r in range(n_resp):
        nodes.add(_START, int(P.resp_loc[r]))
    end = nodes.add(_END, -1)
    k = max(1, min(k_hospitals, len(P.hosp_loc)))
    pickup_of, deliveries_of, rescue_of = {}, {}, {}
    for c in order:
        site = int(P.site_loc[c])
        if P.needs_rescue[c]:
            rescue_of[c] = nodes.add(_RESCUE, site, c, -1, _up(P.rescue_dur[c]))
        if P.status[c] == ACTIVE:
            pickup_of[c] = nodes.add(_PICKUP, site, c, -1, _up(load))
            near = [int(h) for h in np.argsort(P.travel[site, P.hosp_loc], kind="stable")[:k]]
            if extra_hospital and c in extra_hospital and extra_hospital[c] not in near:
                near.append(extra_hospital[c])
            deliveries_of[c] = [nodes.add(_DELIVERY, int(P.hosp_loc[h]), c, int(h), _up(handover)) for h in near]
    n = len(nodes.kind)
    free = np.array([_up(x) for x in P.resp_free], dtype=np.int64)

    # Risk curves: the soft-bound coefficients, and each casualty's survival for the bed surcharge.
    fire_reach = {c: min(free[f] / TIME_SCALE + P.travel[P.resp_loc[f], P.site_loc[c]] for f in fires)
                  for c in rescue}
    medic_reach = {c: min(free[r] / TIME_SCALE + P.travel[P.resp_loc[r], P.site_loc[c]] for r in medics)
                   for c in transport}
    est = _makespan(P, transport, medics, load, handover)
    soft, survive = {}, {}
    steps = _Steps(sc.chains)
    for c in transport:
        drive = float(P.travel[P.site_loc[c], P.hosp_loc].min())
        if P.needs_rescue[c]:
            rescue_end = fire_reach[c] + float(P.rescue_dur[c])
        elif P.trapped[c]:
            rescue_end = float(P.rescue_fixed[c])
        else:
            rescue_end = -math.inf
        ready = max(medic_reach[c], rescue_end, float(np.nan_to_num(P.treat_fixed[c], nan=-np.inf)))
        first = ready + load + drive
        arrivals = np.linspace(first, max(first + 60.0, t0 + est), 121)
        risk = _risk_curve(sc, P, c, arrivals, rescue_end, drive, steps)
        coef = _fit_bounds(arrivals, risk, t0, bounds)
        soft[c] = [int(round(x * COST_PER_FATALITY / TIME_SCALE)) for x in coef]
        soft[c][0] = max(soft[c][0], 1)  # casualty minutes, SPEC §7's tie-breaker
        survive[c] = 1.0 - float(np.median(risk))

    # Travel and transit (service time at the from-node) in units; arc costs with bed surcharges.
    # worked out per place, then spread to the nodes in one gather each: nodes outnumber places
    # fifty to one at 1 000 casualties, where every step over the 4 791 x 4 791 node matrix took
    # a fifth of a second; the end (place -1) reads the zero row and column appended last
    places = np.zeros((len(P.travel) + 1, len(P.travel) + 1), dtype=np.int64)
    places[:-1, :-1] = np.maximum(np.ceil(P.travel * TIME_SCALE - 1e-9).astype(np.int64), 0)
    by_node = np.ix_(nodes.loc, nodes.loc)
    transit = places[by_node] + np.array(nodes.service, dtype=np.int64)[:, None]
    arc = np.rint(places * (arc_weight * COST_PER_FATALITY / TIME_SCALE)).astype(np.int64)[by_node]
    pressure = _bed_pressure(P, transport)
    for c in transport:
        for d in deliveries_of[c]:
            h = nodes.hospital[d]
            arc[pickup_of[c], d] += int(round(pressure[h] * P.hosp_risk[h] * survive[c] * COST_PER_FATALITY))

    # A horizon no schedule reaches: everyone free, then every service and a longest drive per node.
    fixed = [x for x in np.concatenate([P.rescue_fixed, P.treat_fixed]) if np.isfinite(x)]
    horizon = int(max(free.max(initial=0), _up(max(fixed, default=t0))) + transit.max(initial=0) * (n + 1) + 1)

    manager = pywrapcp.RoutingIndexManager(n, n_resp, list(range(n_resp)), [end] * n_resp)
    routing = pywrapcp.RoutingModel(manager)
    idx = manager.NodeToIndex
    transit_cb = routing.RegisterTransitMatrix(transit.tolist())
    arc_cb = routing.RegisterTransitMatrix(arc.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(arc_cb)
    dims = []
    for j in range(len(bounds)):
        name = "time" if j == 0 else f"time_b{j}"
        routing.AddDimension(transit_cb, horizon, horizon, False, name)
        dims.append(routing.GetDimensionOrDie(name))
    onboard = [1 if kd == _PICKUP else -1 if kd == _DELIVERY else 0 for kd in nodes.kind]
    onboard_cb = routing.RegisterUnaryTransitVector(onboard)
    routing.AddDimensionWithVehicleCapacity(onboard_cb, 0, [0 if fire[r] else 1 for r in range(n_resp)],
                                            True, "onboard")
    for r in range(n_resp):
        for j, dim in enumerate(dims):
            dim.CumulVar(routing.Start(r)).SetValue(int(free[r]))
            if j == 0 and np.isfinite(P.resp_shift[r]) and usable[r]:
                shift = int(math.floor(P.resp_shift[r] * TIME_SCALE + 1e-9))
                dim.CumulVar(routing.End(r)).SetMax(max(shift, int(free[r])))

    # Rescues: fire teams only.
    for c in rescue:
        _allow(routing, fires, idx(rescue_of[c]))
    # Transports: one pickup, K alternative deliveries, paramedics only, atomic, after the rescue.
    for c in transport:
        p = idx(pickup_of[c])
        ds = [idx(d) for d in deliveries_of[c]]
        routing.AddPickupAndDeliverySets(routing.AddDisjunction([p]), routing.AddDisjunction(ds))
        for i in [p] + ds:
            _allow(routing, medics, i)
        for dim in dims:
            dim.SlackVar(p).SetValue(0)
        lower = max(float(np.nan_to_num(P.treat_fixed[c], nan=-np.inf)),
                    float(P.rescue_fixed[c]) if P.trapped[c] and not P.needs_rescue[c] else -math.inf)
        if np.isfinite(lower):
            for dim in dims:
                dim.CumulVar(p).SetMin(_up(lower))
        if c in rescue_of:
            for dim in dims:
                dim.AddNodePrecedence(idx(rescue_of[c]), p, _up(P.rescue_dur[c]))
        for d in ds:
            for dim, b, w in zip(dims, bounds, soft[c]):
                if w > 0:
                    dim.SetCumulVarSoftUpperBound(d, _up(t0 + b), w)
    # Report the earliest times (the finalizer otherwise leaves cost-free cumuls anywhere feasible):
    # rescues first, since pickups wait for them.
    for c in rescue:
        routing.AddVariableMinimizedByFinalizer(dims[0].CumulVar(idx(rescue_of[c])))
    for c in transport:
        for i in [pickup_of[c]] + deliveries_of[c]:
            routing.AddVariableMinimizedByFinalizer(dims[0].CumulVar(idx(i)))
    extras = {"pickup": pickup_of, "deliveries": deliveries_of, "rescue": rescue_of, "soft": soft,
              "horizon": horizon, "bed_pressure": pressure}
    return manager, routing, nodes, dims, extras


def _check_teams(P) -> None:
    """Raise RuntimeError when a required task has nobody who could do it."""
    fire = np.asarray(P.resp_fire, dtype=bool)
    usable = P.resp_free <= P.resp_shift + 1e-9
    if (P.status == ACTIVE).any() and not (~fire & usable).any():
        raise RuntimeError("OR-Tools peer: casualties need transport but no paramedic team can work")
    if P.needs_rescue.any() and not (fire & usable).any():
        raise RuntimeError("OR-Tools peer: trapped casualties need a rescue but no fire team can work")


def _bed_pressure(P, transport) -> np.ndarray:
    """Per hospital, the share of its arrivals beyond its free beds if every casualty went to its
    nearest hospital: a mean-field estimate of the chance that one more arrival overflows."""
    H = len(P.hosp_loc)
    if not transport:
        return np.zeros(H)
    nearest = np.argmin(P.travel[np.ix_(P.site_loc[transport], P.hosp_loc)], axis=1)
    demand = np.bincount(nearest, minlength=H) + np.bincount(P.transit_hosp[P.transit_hosp >= 0], minlength=H)
    return np.clip(1.0 - P.hosp_cap / np.maximum(demand, 1), 0.0, 1.0)


def _initial_assignment(sc, routing, manager, nodes, extras, plan: Plan):
    """``plan``'s routes as an OR-Tools assignment (treat tasks dropped), or None if OR-Tools
    rejects them (e.g. a shift end that only the rounded-up times overrun)."""
    idx = manager.NodeToIndex
    delivery_at = {(nodes.casualty[d], nodes.hospital[d]): d for ds in extras["deliveries"].values() for d in ds}
    routes = []
    for resp in sc.model.responders:
        route = []
        for t in plan.routes.get(resp.id, []):
            c = sc.casualty_index[t.casualty]
            if t.kind == "rescue":
                route.append(idx(extras["rescue"][c]))
            elif t.kind == "transport":
                route += [idx(extras["pickup"][c]), idx(delivery_at[c, sc.hospital_index[t.hospital]])]
        routes.append(route)
    return routing.ReadAssignmentFromRoutes(routes, True)


def _allow(routing, vehicles: list[int], index: int) -> None:
    """Only ``vehicles`` may visit ``index`` (-1 keeps "not performed" possible for alternatives).

    ``RoutingModel.SetAllowedVehiclesForIndex`` is the intended call, but its Python binding in
    OR-Tools 9.15 rejects every argument (``absl::Span<int const>`` has no SWIG typemap); the
    vehicle var's domain is what that call sets, and the local-search filters read it too.
    """
    routing.VehicleVar(index).SetValues([-1] + list(vehicles))


def _makespan(P, transport, medics, load, handover) -> float:
    """A rough length (minutes) of the transport phase: every trip, shared among the paramedics."""
    if not transport:
        return 60.0
    sites = P.site_loc[transport]
    drive = P.travel[np.ix_(sites, P.hosp_loc)].min(axis=1)
    trip = float(np.mean(2 * drive + load + handover))
    return max(60.0, len(transport) * trip / max(1, len(medics)) + trip)


def solve_ortools(sc: Scenario, time_limit_s: float, seed: int = 0, *, solution_limit: int | None = None,
                  initial: str | Plan | None = "greedy", first_solution: str = "LOCAL_CHEAPEST_COST_INSERTION",
                  k_hospitals: int = K_HOSPITALS, bounds: tuple[float, ...] = BOUNDS,
                  arc_weight: float = ARC_WEIGHT, log_search: bool = False) -> tuple[Plan, dict]:
    """Model ``sc`` as an OR-Tools pickup-and-delivery VRP, solve it with GLS, return the plan.

    Parameters
    ----------
    sc : engine.scenario.Scenario
        The incident (a path or dict is loaded too).
    time_limit_s : float
        Wall-clock seconds for the whole call: building the model (and the initial plan) comes out
        of it, OR-Tools' search (first solution included) gets the rest, at least ``MIN_SEARCH_S``.
    seed : int
        Permutes the numbering of the casualty nodes (OR-Tools' routing search has no seed);
        ``0`` keeps file order.
    solution_limit : int, optional
        Stop after this many solutions: with it (and a time limit that is not reached) the search
        is deterministic; ``1`` keeps the first solution only.
    initial : {"greedy", "rule"} or Plan or None
        Where the search starts: goldenhour's construction of that name (``"greedy"`` is where
        goldenhour's tabu search starts too), a plan, or ``None`` for OR-Tools' own first solution
        (``first_solution``). If OR-Tools rejects the initial routes it builds its own.
    first_solution : str
        A ``FirstSolutionStrategy`` name, used when there is no initial plan.
    k_hospitals : int
        Candidate hospitals per casualty, its nearest by drive time (plus the initial plan's).
    bounds : tuple of float
        Minutes after the scenario time of the soft upper bounds on arrival, one time dimension
        each.
    arc_weight : float
        Arc cost in expected fatalities per minute of driving.
    log_search : bool
        Let OR-Tools log its search to standard error.

    Returns
    -------
    plan : engine.plan.Plan
        A valid plan (SPEC §5): one rescue per casualty needing one, one transport per casualty
        neither known dead nor in transit, no treat tasks.
    info : dict
        ``status`` (OR-Tools' routing status name), ``ortools_objective`` (its integer surrogate
        cost, ``COST_PER_FATALITY`` a fatality), ``wall_s`` (the whole call), ``build_s`` (until
        the search starts), ``search_limit_s``, ``nodes``, ``started_from`` and ``times``:
        OR-Tools' own minutes per casualty (``pickup``, ``arrival``, ``hospital``, and
        ``rescue_start`` / ``rescue_end`` when it has a rescue), earliest feasible values.

    Raises
    ------
    RuntimeError
        When OR-Tools finds no solution, or nobody can do a required task.
    """
    t_start = time.perf_counter()
    sc = engine.load_scenario(sc)
    m = sc.model
    P = problem_arrays(sc)
    _check_teams(P)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, first_solution)
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    if solution_limit is not None:
        params.solution_limit = int(solution_limit)
    params.log_search = log_search

    start_plan = None
    if isinstance(initial, str):
        start_plan = engine.solve(sc, algorithm=initial).plan
    elif initial is not None:
        start_plan = engine.load_plan(sc, initial)
    chosen = None
    if start_plan is not None:
        chosen = {sc.casualty_index[t.casualty]: sc.hospital_index[t.hospital]
                  for ts in start_plan.routes.values() for t in ts if t.kind == "transport"}
    manager, routing, nodes, dims, extras = _build(sc, seed, k_hospitals, arc_weight, tuple(bounds), chosen)
    params.time_limit.FromMilliseconds(int(round(time_limit_s * 1000)))  # OR-Tools warns without one
    routing.CloseModelWithParameters(params)
    start = None if start_plan is None else _initial_assignment(sc, routing, manager, nodes, extras, start_plan)
    # the budget is what is left once the model is closed and the start read in (at 1 000
    # casualties, most of a minute): set before, the search ran on for its whole limit after it
    build_s = time.perf_counter() - t_start
    search_s = max(MIN_SEARCH_S, time_limit_s - build_s)
    params.time_limit.FromMilliseconds(int(round(search_s * 1000)))
    if start is not None:
        solution = routing.SolveFromAssignmentWithParameters(start, params)
    else:
        solution = routing.SolveWithParameters(params)
    wall = time.perf_counter() - t_start
    status = _STATUS_NAME.get(routing.status(), str(routing.status()))
    if solution is None:
        raise RuntimeError(f"OR-Tools peer found no solution for scenario '{m.name}' "
                           f"(routing status {status}, {len(nodes.kind)} nodes, {search_s:.2f} s of search)")

    routes: dict[str, list[Task]] = {}
    times: dict[str, dict] = {}
    time_dim = dims[0]
    for r, resp in enumerate(m.responders):
        tasks = []
        i = routing.Start(r)
        while not routing.IsEnd(i):
            node = manager.IndexToNode(i)
            kind, c = nodes.kind[node], nodes.casualty[node]
            at = solution.Min(time_dim.CumulVar(i)) / TIME_SCALE
            if c >= 0:
                rec = times.setdefault(m.casualties[c].id, {})
                if kind == _RESCUE:
                    tasks.append(Task("rescue", m.casualties[c].id))
                    rec["rescue_start"] = at
                    rec["rescue_end"] = at + nodes.service[node] / TIME_SCALE
                elif kind == _PICKUP:
                    rec["pickup"] = at
                elif kind == _DELIVERY:
                    hid = m.hospitals[nodes.hospital[node]].id
                    tasks.append(Task("transport", m.casualties[c].id, hid))
                    rec["arrival"] = at
                    rec["hospital"] = hid
            i = solution.Value(routing.NextVar(i))
        routes[resp.id] = tasks
    plan = Plan(routes, m.name, float(m.time))
    problems = check_plan(sc, {r: [t.to_json() for t in ts] for r, ts in routes.items()})
    if problems:  # the model guarantees validity; this would be a bug in the peer
        raise RuntimeError("OR-Tools peer produced an invalid plan: " + "; ".join(map(str, problems)))
    started_from = (initial if isinstance(initial, str) else "plan") if start is not None else first_solution
    info = {"status": status, "ortools_objective": int(solution.ObjectiveValue()), "wall_s": wall,
            "build_s": build_s, "search_limit_s": search_s, "nodes": len(nodes.kind),
            "vehicles": len(m.responders), "started_from": started_from, "times": times,
            "transports": int((P.status == ACTIVE).sum()), "rescues": int(P.needs_rescue.sum())}
    return plan, info


def compare(sc, time_limit_s: float, seed: int = 0) -> dict:
    """goldenhour's tabu search against the OR-Tools peer at the same time limit, both scored by
    goldenhour's exact evaluator (expected fatalities; fewer is better).

    Returns
    -------
    dict
        ``goldenhour_tabu``, ``ortools_gls``, ``ratio`` (= ortools / goldenhour), ``rule`` and
        ``greedy`` (goldenhour's constructions, for scale), the casualty minutes, overflow
        fatalities and feasibility of both searches, their wall times (each budget covers its own
        construction: goldenhour's greedy start, or the peer's greedy start plus model building),
        OR-Tools' status and starting point, and the tabu iteration count.
    """
    sc = engine.load_scenario(sc)
    rule = engine.solve(sc, algorithm="rule")
    greedy = engine.solve(sc, algorithm="greedy")
    t = time.perf_counter()
    tabu = engine.solve(sc, algorithm="tabu", time_limit=time_limit_s, seed=seed)
    tabu_wall = time.perf_counter() - t
    tabu_obj = engine.evaluate(sc, tabu.plan)
    plan, info = solve_ortools(sc, time_limit_s, seed=seed)
    peer = engine.evaluate(sc, plan)
    f1, f2 = tabu_obj.expected_fatalities, peer.expected_fatalities
    return {
        "goldenhour_tabu": f1, "ortools_gls": f2,
        "ratio": (f2 / f1) if f1 and f2 is not None else None,
        "rule": rule.objective.expected_fatalities, "greedy": greedy.objective.expected_fatalities,
        "goldenhour_tabu_minutes": tabu_obj.casualty_minutes, "ortools_gls_minutes": peer.casualty_minutes,
        "goldenhour_tabu_feasible": tabu_obj.feasible, "ortools_gls_feasible": peer.feasible,
        "goldenhour_tabu_overflow": tabu_obj.overflow_fatalities, "ortools_gls_overflow": peer.overflow_fatalities,
        "goldenhour_wall_s": tabu_wall, "ortools_wall_s": info["wall_s"],
        "goldenhour_iterations": tabu.stats.iterations, "ortools_status": info["status"],
        "ortools_nodes": info["nodes"], "ortools_started_from": info["started_from"],
        "time_limit_s": time_limit_s, "seed": seed,
    }
