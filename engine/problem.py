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


def build_problem(sc: Scenario) -> ProblemArrays:
    """Every array of ``ProblemArrays``, C-contiguous with fixed dtypes."""
    m = sc.model
    time = float(m.time)
    small, big = power_tables(sc.chains)
    avail = _opt([r.available_at for r in m.responders], time)
    return ProblemArrays(
        **_casualty_columns(sc, m.casualties, sc.health),
        travel=np.ascontiguousarray(sc.travel, dtype=np.float64),
        resp_fire=np.array([r.kind == "fire" for r in m.responders], dtype=np.bool_),
        resp_hart=np.array([r.hart for r in m.responders], dtype=np.bool_),
        resp_loc=np.ascontiguousarray(sc.responder_loc, dtype=np.int64),
        resp_avail=avail,
        resp_free=np.maximum(avail, time),
        resp_shift=_opt([r.shift_end for r in m.responders], np.inf),
        hosp_loc=np.arange(len(m.hospitals), dtype=np.int64),
        hosp_cap=np.array([h.capacity for h in m.hospitals], dtype=np.int64),
        hosp_risk=_opt([h.overflow_risk for h in m.hospitals], m.hospital_overflow_risk),
        small=small,
        big=big,
        chains=np.ascontiguousarray(sc.chains),
        scalars=np.array([time, m.durations.load, m.durations.handover, m.delivered_fatalities]),
    )


def patch_problem(P: ProblemArrays, sc: Scenario, changed: list[int]) -> ProblemArrays:
    """``build_problem(sc)`` when ``sc`` differs from the scenario of ``P`` only in the records of
    casualties ``changed``: those rows are rebuilt, every other array is shared."""
    idx = np.asarray(changed, dtype=np.int64)
    cols = _casualty_columns(sc, [sc.model.casualties[i] for i in changed], sc.health[idx])
    out = {}
    for name, rows in cols.items():
        a = getattr(P, name).copy()
        a[idx] = rows
        out[name] = a
    return P._replace(**out)


#: The fields of a casualty record that a new observation changes.
OBSERVATION = ("health", "observed_at")


def patch_observations(P: ProblemArrays, sc: Scenario, changed: list[int]) -> ProblemArrays:
    """``patch_problem`` when the records ``changed`` differ from those of ``P`` only in
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


def patch_time(P: ProblemArrays, sc: Scenario) -> ProblemArrays:
    """``P`` at the time of ``sc``, whose responders are those of ``P``: the columns that read
    the scenario's time (its value; when each team is free; availability left to default).
    Casualty rows with a defaulted observation time are the caller's to patch."""
    time = float(sc.model.time)
    avail = _opt([r.available_at for r in sc.model.responders], time)
    scalars = P.scalars.copy()
    scalars[0] = time
    return P._replace(resp_avail=avail, resp_free=np.maximum(avail, time), scalars=scalars)
