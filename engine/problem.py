"""Flatten a ``Scenario`` into the arrays the kernels take, once per model state."""

from __future__ import annotations

import numpy as np

from kernels.layout import ACTIVE, DEAD, IN_TRANSIT, ProblemArrays

from .health import is_known_dead, power_tables
from .scenario import Scenario


def _opt(values, default=np.nan) -> np.ndarray:
    return np.array([default if v is None else v for v in values], dtype=np.float64)


def _casualty_columns(sc: Scenario, cas, health: np.ndarray) -> dict:
    """The per-casualty arrays of ``ProblemArrays`` for the casualty records ``cas``."""
    m = sc.model
    time = float(m.time)
    status = np.array(
        [DEAD if is_known_dead(health[i]) else IN_TRANSIT if c.in_transit is not None else ACTIVE
         for i, c in enumerate(cas)], dtype=np.int64)
    active = status == ACTIVE
    trapped = np.array([c.trapped for c in cas], dtype=np.bool_) & active
    rescue_fixed = _opt([c.rescue_ends_at for c in cas])
    treat_fixed = _opt([c.treatment_ends_at for c in cas])
    treated = np.array([c.treated for c in cas], dtype=np.bool_) & active
    return dict(
        site_loc=np.array([sc.site_loc[sc.site_index[c.site]] for c in cas], dtype=np.int64),
        h0=np.ascontiguousarray(health, dtype=np.float64).reshape(-1, 4),
        obs=_opt([c.observed_at for c in cas], time),
        status=status,
        trapped=trapped,
        needs_rescue=trapped & np.isnan(rescue_fixed),
        rescue_fixed=np.where(trapped, rescue_fixed, np.nan),
        treat_fixed=np.where(active, treat_fixed, np.nan),
        treated=treated,
        can_treat=active & ~treated & np.isnan(treat_fixed),
        rescue_dur=_opt([c.rescue_minutes for c in cas], m.durations.rescue),
        treat_dur=_opt([c.treatment_minutes for c in cas], m.durations.treatment),
        transit_hosp=np.array([sc.hospital_index[c.in_transit.hospital] if c.in_transit else -1 for c in cas],
                              dtype=np.int64),
        transit_arrival=_opt([c.in_transit.arrival if c.in_transit else None for c in cas]),
        rescued0=np.where(trapped, np.where(trapped & np.isnan(rescue_fixed), np.nan, rescue_fixed), -np.inf),
        r_known0=~(trapped & np.isnan(rescue_fixed)),
        treated0=np.where(treated, -np.inf, np.where(active & ~np.isnan(treat_fixed), treat_fixed, np.inf)),
    )


def _responder_columns(sc: Scenario) -> dict:
    m = sc.model
    time = float(m.time)
    avail = _opt([r.available_at for r in m.responders], time)
    return dict(
        resp_fire=np.array([r.kind == "fire" for r in m.responders], dtype=np.bool_),
        resp_hart=np.array([r.hart for r in m.responders], dtype=np.bool_),
        resp_loc=np.ascontiguousarray(sc.responder_loc, dtype=np.int64),
        resp_avail=avail,
        resp_free=np.maximum(avail, time),
        resp_shift=_opt([r.shift_end for r in m.responders], np.inf),
    )


def _hospital_columns(sc: Scenario) -> dict:
    m = sc.model
    return dict(
        hosp_cap=np.array([h.capacity for h in m.hospitals], dtype=np.int64),
        hosp_risk=_opt([h.overflow_risk for h in m.hospitals], m.hospital_overflow_risk),
    )


def _scalars(sc: Scenario) -> np.ndarray:
    m = sc.model
    return np.array([float(m.time), m.durations.load, m.durations.handover, m.delivered_fatalities])


def build_problem(sc: Scenario) -> ProblemArrays:
    """Every array of ``ProblemArrays``, C-contiguous with fixed dtypes."""
    small, big = power_tables(sc.chains)
    return ProblemArrays(
        **_casualty_columns(sc, sc.model.casualties, sc.health),
        **_responder_columns(sc),
        **_hospital_columns(sc),
        travel=np.ascontiguousarray(sc.travel, dtype=np.float64),
        hosp_loc=np.arange(len(sc.model.hospitals), dtype=np.int64),
        small=small,
        big=big,
        chains=np.ascontiguousarray(sc.chains),
        scalars=_scalars(sc),
    )


def rebuild_problem(P: ProblemArrays, sc: Scenario, src: np.ndarray | None, rows, responders: bool,
                    hospitals: bool) -> ProblemArrays:
    """``build_problem(sc)`` from ``P``, the arrays of a scenario that ``sc`` was derived from
    (``engine.derive``) with the same chains and durations.

    Casualty ``j`` takes row ``src[j]`` of ``P`` (``src`` None: row ``j``), except the rows
    ``rows``, rebuilt from ``sc`` (as must be every ``j`` with ``src[j] < 0``: an added casualty).
    The responder and hospital columns are rebuilt when asked; travel is ``sc``'s; chains and
    their power tables are shared.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = {}
    # the same casualty records: their columns are shared (repair.carry_over then knows by
    # identity that the plan's tasks still apply)
    cols = _casualty_columns(sc, [sc.model.casualties[j] for j in rows], sc.health[rows]) \
        if src is not None or len(rows) else {}
    take = None if src is None else np.maximum(src, 0)
    for name, new in cols.items():
        old = getattr(P, name)
        if src is None:
            a = old.copy()
        else:  # (an empty column cannot be indexed, even by rows that are all rebuilt)
            a = old[take] if len(old) else np.empty((len(src),) + old.shape[1:], old.dtype)
        a[rows] = new
        out[name] = a
    if responders:
        out.update(_responder_columns(sc))
    if hospitals:
        out.update(_hospital_columns(sc))
    if sc.travel is not P.travel:
        out["travel"] = np.ascontiguousarray(sc.travel, dtype=np.float64)
    out["scalars"] = _scalars(sc)
    return P._replace(**out)


#: The fields of a casualty record that a new observation changes.
OBSERVATION = ("health", "observed_at")


def patch_observations(P: ProblemArrays, sc: Scenario, changed: list[int]) -> ProblemArrays:
    """``rebuild_problem`` when the records ``changed`` differ from those of ``P`` only in
    ``OBSERVATION`` and no casualty became (or stopped being) known dead: every other column
    (status, trapped, what may be planned...) is then the same, so only health and observation
    time are rebuilt (a fifth of the cost of a health observation otherwise)."""
    idx = np.asarray(changed, dtype=np.int64)
    h0, obs = P.h0.copy(), P.obs.copy()
    h0[idx] = sc.health[idx]
    time = float(sc.model.time)
    obs[idx] = [time if sc.model.casualties[i].observed_at is None else sc.model.casualties[i].observed_at
                for i in changed]
    return P._replace(h0=h0, obs=obs)
