"""Flatten a ``Scenario`` into the arrays the kernels take, once per model state."""

from __future__ import annotations

import math

import numpy as np

from kernels.health import LONG, fill_ride_long, fill_ride_steps, fill_ride_table, fill_start_ride
from kernels.layout import ACTIVE, DEAD, ENV_AMBULANCE, ENV_CCS, ENV_CCS_TREATED, IN_TRANSIT, ProblemArrays

from .health import is_known_dead, power_tables
from .scenario import Scenario, free_from
from .start_table import start_columns


def _opt(values, default=np.nan) -> np.ndarray:
    return np.array([default if v is None else v for v in values], dtype=np.float64)


#: The per-casualty columns of ``ProblemArrays`` but ``h0``, in the order of ``_casualty_row``.
_CASUALTY_COLUMNS = (
    ("site_loc", np.int64), ("obs", np.float64), ("status", np.int64), ("trapped", np.bool_),
    ("needs_rescue", np.bool_), ("rescue_fixed", np.float64), ("treat_fixed", np.float64),
    ("treated", np.bool_), ("can_treat", np.bool_), ("rescue_dur", np.float64), ("treat_dur", np.float64),
    ("transit_hosp", np.int64), ("transit_arrival", np.float64), ("rescued0", np.float64),
    ("r_known0", np.bool_), ("treated0", np.float64),
)


def _casualty_row(sc: Scenario, c, h: np.ndarray, time: float) -> tuple:
    """Casualty record ``c`` (health vector ``h``) as one value per ``_CASUALTY_COLUMNS``.

    One record at a time, in plain Python: the online engine rebuilds one or two rows per
    delta, where numpy on arrays of one element cost five times as much."""
    nan, inf = math.nan, math.inf
    status = DEAD if is_known_dead(h) else IN_TRANSIT if c.in_transit is not None else ACTIVE
    active = status == ACTIVE
    trapped = bool(c.trapped) and active
    treated = bool(c.treated) and active
    rescue_end = nan if c.rescue_ends_at is None else float(c.rescue_ends_at)
    treat_end = nan if c.treatment_ends_at is None else float(c.treatment_ends_at)
    needs_rescue = trapped and math.isnan(rescue_end)
    d = sc.model.durations
    return (
        sc.site_loc[sc.site_index[c.site]],
        time if c.observed_at is None else c.observed_at,
        status,
        trapped,
        needs_rescue,
        rescue_end if trapped else nan,
        treat_end if active else nan,
        treated,
        active and not treated and math.isnan(treat_end),
        d.rescue if c.rescue_minutes is None else c.rescue_minutes,
        d.treatment if c.treatment_minutes is None else c.treatment_minutes,
        sc.hospital_index[c.in_transit.hospital] if c.in_transit else -1,
        c.in_transit.arrival if c.in_transit else nan,
        rescue_end if trapped else -inf,  # the fixed end, nan while a rescue is to be planned
        not needs_rescue,
        -inf if treated else treat_end if active and not math.isnan(treat_end) else inf,
    )


def _casualty_columns(sc: Scenario, cas, health: np.ndarray) -> dict:
    """The per-casualty arrays of ``ProblemArrays`` for the casualty records ``cas``."""
    time = float(sc.model.time)
    rows = [_casualty_row(sc, c, health[i], time) for i, c in enumerate(cas)]
    values = list(zip(*rows)) if rows else [()] * len(_CASUALTY_COLUMNS)
    cols = {name: np.array(v, dtype=dtype) for (name, dtype), v in zip(_CASUALTY_COLUMNS, values)}
    cols["h0"] = np.ascontiguousarray(health, dtype=np.float64).reshape(-1, 4)
    return cols


def _responder_columns(sc: Scenario) -> dict:
    m = sc.model
    return dict(
        resp_fire=np.array([r.kind == "fire" for r in m.responders], dtype=np.bool_),
        resp_hart=np.array([r.hart for r in m.responders], dtype=np.bool_),
        resp_loc=np.ascontiguousarray(sc.responder_loc, dtype=np.int64),
        resp_shift=_opt([r.shift_end for r in m.responders], np.inf),
        **_responder_times(sc),
    )


def _responder_times(sc: Scenario) -> dict:
    """The responder columns that read the scenario's time: an availability left to default is
    the time, and no team sets off for a task that is not pinned before it."""
    time = float(sc.model.time)
    avail = _opt([r.available_at for r in sc.model.responders], time)
    return dict(resp_avail=avail, resp_free=free_from(avail, time))


def _hospital_columns(sc: Scenario) -> dict:
    m = sc.model
    return dict(
        hosp_cap=np.array([h.capacity for h in m.hospitals], dtype=np.int64),
        hosp_risk=_opt([h.overflow_risk for h in m.hospitals], m.hospital_overflow_risk),
    )


def _scalars(sc: Scenario) -> np.ndarray:
    m = sc.model
    return np.array([float(m.time), m.durations.load, m.durations.handover, m.delivered_fatalities])


def _ride(travel: np.ndarray, hosp_loc: np.ndarray, load: float, small: np.ndarray, big: np.ndarray) -> np.ndarray:
    """``ProblemArrays.ride``: every place's ride to every hospital, as a column of its step
    matrix (``kernels.health.fill_ride_table``). It depends on the roads, the hospitals and the
    loading time only: made again when the roads change, shared by every other delta."""
    out = np.empty((travel.shape[0], len(hosp_loc), 4))
    fill_ride_table(travel, hosp_loc, float(load), ENV_AMBULANCE, small, big, out)
    return out


#: ``ProblemArrays.ride_steps`` and ``start_ride`` each take at most this many bytes: 4.3 and
#: 3.2 MB for the London example (22 places, 12 hospitals, 6 start rows). A problem with
#: thousands of places and dozens of hospitals would need gigabytes: its kernels propagate
#: the wait before a ride instead, as they do for start rows beyond ``start_ride``'s.
RIDE_TABLES_MAX_BYTES = 32 << 20


#: The environments of a wait at the site, in the order ``ride_steps`` and ``ride_long`` hold
#: them: the kernels index both by ``env == ENV_CCS_TREATED``.
_SITE_ENVS = np.array([ENV_CCS, ENV_CCS_TREATED], dtype=np.int64)


def _ride_steps(small: np.ndarray, ride: np.ndarray) -> np.ndarray:
    """``ProblemArrays.ride_steps``: a wait at a site, treated or not, then the ride to each
    hospital (``kernels.health.fill_ride_steps``); empty if it would take more than
    ``RIDE_TABLES_MAX_BYTES``. It depends on what ``ride`` does and the chains only."""
    shape = (len(_SITE_ENVS),) + ride.shape[:2] + (small.shape[1], 4)
    if 8 * math.prod(shape) > RIDE_TABLES_MAX_BYTES:
        shape = (len(_SITE_ENVS), 0, 0) + shape[3:]
    out = np.empty(shape)
    fill_ride_steps(small, ride, _SITE_ENVS, out)
    return out


def _ride_long(big: np.ndarray, ride: np.ndarray) -> np.ndarray:
    """``ProblemArrays.ride_long``: a wait of whole multiples of the power table at a site,
    treated or not, then the ride to each hospital (``kernels.health.fill_ride_long``), for
    waits up to ``LONG`` multiples; empty if it would take more than ``RIDE_TABLES_MAX_BYTES``
    (London's: 135 KB). Cheap enough (16 products an entry) to be made again with the rides."""
    shape = (len(_SITE_ENVS),) + ride.shape[:2] + (LONG, 4)
    if 8 * math.prod(shape) > RIDE_TABLES_MAX_BYTES:
        shape = (len(_SITE_ENVS), 0, 0, 0, 4)
    out = np.empty(shape)
    fill_ride_long(big, ride, _SITE_ENVS, out)
    return out


def _start_ride(table: np.ndarray, ride: np.ndarray, previous: ProblemArrays | None = None) -> np.ndarray:
    """``ProblemArrays.start_ride``: each row of the start ``table`` then each ride
    (``kernels.health.fill_start_ride``), for as many of the first rows as
    ``RIDE_TABLES_MAX_BYTES`` allows.

    The start table's rows are the process's (``engine.start_table``): a model derived from
    ``previous`` shares its ``start_ride`` while the rides and the rows it was made of are the
    same, rather than making it again at every delta (rows made since are read off
    ``ride_steps``). A delta that changes the rides leaves both tables empty
    (``rebuild_problem``)."""
    if previous is not None:
        old = previous.start_ride
        k = old.shape[0]
        if (ride is previous.ride and table.shape[0] >= k
                and (table is previous.start_table or np.array_equal(table[:k], previous.start_table[:k]))):
            return old
    per_row = 8 * ride.shape[0] * ride.shape[1] * table.shape[1]
    out = np.empty((min(table.shape[0], RIDE_TABLES_MAX_BYTES // max(per_row, 1)),) + ride.shape[:2]
                   + (table.shape[1],))
    fill_start_ride(table, ride, out)
    return out


def build_problem(sc: Scenario) -> ProblemArrays:
    """Every array of ``ProblemArrays``, C-contiguous with fixed dtypes."""
    small, big = power_tables(sc.chains)
    cas = _casualty_columns(sc, sc.model.casualties, sc.health)
    travel = np.ascontiguousarray(sc.travel, dtype=np.float64)
    hosp_loc = np.arange(len(sc.model.hospitals), dtype=np.int64)
    ride = _ride(travel, hosp_loc, sc.model.durations.load, small, big)
    start = start_columns(small, cas["h0"], cas["status"], cas["trapped"], cas["treated"])
    return ProblemArrays(
        **cas,
        **start,
        **_responder_columns(sc),
        **_hospital_columns(sc),
        travel=travel,
        hosp_loc=hosp_loc,
        small=small,
        big=big,
        chains=np.ascontiguousarray(sc.chains),
        scalars=_scalars(sc),
        ride=ride,
        ride_steps=_ride_steps(small, ride),
        start_ride=_start_ride(start["start_table"], ride),
        ride_long=_ride_long(big, ride),
    )


def rebuild_problem(P: ProblemArrays, sc: Scenario, src: np.ndarray | None, rows, responders: bool,
                    hospitals: bool, clock: bool = False) -> ProblemArrays:
    """``build_problem(sc)`` from ``P``, the arrays of a scenario that ``sc`` was derived from
    (``engine.derive``) with the same chains and durations.

    Casualty ``j`` takes row ``src[j]`` of ``P`` (``src`` None: row ``j``), except the rows
    ``rows``, rebuilt from ``sc`` (as must be every ``j`` with ``src[j] < 0``: an added casualty).
    The responder and hospital columns are rebuilt when asked (with ``clock``, the time moved:
    the responder columns that read it); travel is ``sc``'s; chains and their power tables are
    shared.
    """
    rows = [int(j) for j in rows]
    out = {}
    take = None if src is None else np.maximum(src, 0)

    def column(old):
        if src is None:
            return old.copy()
        # (an empty column cannot be indexed, even by rows that are all rebuilt)
        return old[take] if len(old) else np.empty((len(src),) + old.shape[1:], old.dtype)

    # the same casualty records: their columns are shared (repair.carry_over then knows by
    # identity that the plan's tasks still apply)
    if src is not None or rows:
        time = float(sc.model.time)
        values = [_casualty_row(sc, sc.model.casualties[j], sc.health[j], time) for j in rows]
        for k, (name, _) in enumerate(_CASUALTY_COLUMNS):
            a = out[name] = column(getattr(P, name))
            for j, row in zip(rows, values):
                a[j] = row[k]
        h0 = out["h0"] = column(P.h0)
        h0[rows] = sc.health[rows]
        out.update(start_columns(P.small, h0, out["status"], out["trapped"], out["treated"],
                                 (P.start_table, column(P.start_row)), rows))
    if responders:
        out.update(_responder_columns(sc))
    elif clock:
        out.update(_responder_times(sc))
    if hospitals:
        out.update(_hospital_columns(sc))
    n_hosp = len(sc.model.hospitals)
    if sc.travel is not P.travel or P.ride.shape[1] != n_hosp:
        out["travel"] = travel = np.ascontiguousarray(sc.travel, dtype=np.float64)
        out["hosp_loc"] = hosp_loc = np.arange(n_hosp, dtype=np.int64)
        out["ride"] = _ride(travel, hosp_loc, sc.model.durations.load, P.small, P.big)
        # the wait tables below 256 minutes are not made again here: 1 ms for London's, where a
        # delta's whole repair has a millisecond (bench/test_online.py); the kernels propagate
        # those waits instead until a reload. ride_long is: 0.05 ms for London's
        out["ride_steps"] = np.empty(P.ride_steps.shape[:1] + (0, 0) + P.ride_steps.shape[3:])
        out["start_ride"] = np.empty((0,) + P.start_ride.shape[1:])
        out["ride_long"] = _ride_long(P.big, out["ride"])
    else:
        out["start_ride"] = _start_ride(out.get("start_table", P.start_table), P.ride, P)
    out["scalars"] = _scalars(sc)
    return P._replace(**out)


#: The fields of a casualty record that a new observation changes.
OBSERVATION = ("health", "observed_at")


def patch_observations(P: ProblemArrays, sc: Scenario, changed: list[int], clock: bool = False) -> ProblemArrays:
    """``rebuild_problem`` when the records ``changed`` differ from those of ``P`` only in
    ``OBSERVATION`` and no casualty became (or stopped being) known dead, and perhaps the time
    moved (``clock``) with nothing to clamp: every other casualty column (status, trapped, what
    may be planned...) is then the same, so only health and observation time are rebuilt (a
    fifth of the cost of a health observation otherwise), and with the time the columns that
    read it. ``changed`` must then hold every casualty whose observation time defaults to it."""
    out = {}
    if changed:
        idx = np.asarray(changed, dtype=np.int64)
        h0, obs = out["h0"], out["obs"] = P.h0.copy(), P.obs.copy()
        h0[idx] = sc.health[idx]
        time = float(sc.model.time)
        obs[idx] = [time if sc.model.casualties[i].observed_at is None else sc.model.casualties[i].observed_at
                    for i in changed]
        out.update(start_columns(P.small, h0, P.status, P.trapped, P.treated, (P.start_table, P.start_row.copy()),
                                 changed))
    if clock:
        out.update(_responder_times(sc), scalars=_scalars(sc))
    if "start_table" in out:
        out["start_ride"] = _start_ride(out["start_table"], P.ride, P)
    return P._replace(**out)
