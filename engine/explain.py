"""Why a plan scores what it does: per casualty and per hospital (``solve --explain``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.layout import ACTIVE, CYCLE, DEAD, IN_TRANSIT

from .solution import Solution


@dataclass
class Explanation:
    """``casualties``: one dict per casualty; ``hospitals``: admissions, beds and overflow each.

    A casualty's ``share`` is its ``p_dead`` plus its own overflow term (SPEC §7): the shares
    and the scenario's ``delivered_fatalities`` add up to ``expected_fatalities``. A plan caught
    in a cycle of waits has no objective: ``p_dead``, ``share`` and the hospitals' overflow are
    ``None``, and only the times of the tasks timed before the cycle are given.
    """

    casualties: list[dict]
    hospitals: list[dict]
    expected_fatalities: float | None

    def top(self, n: int = 10) -> list[dict]:
        """The ``n`` casualties contributing most to expected fatalities."""
        return sorted(self.casualties, key=lambda d: -(d["share"] or 0.0))[:n]

    def to_json(self) -> dict:
        return {"casualties": self.casualties, "hospitals": self.hospitals}

    def to_text(self, n: int = 10) -> str:
        lines = [f"top {n} contributors to expected fatalities:",
                 f"  {'casualty':<10} {'p_dead':>7} {'share':>7} {'arrival':>8} {'hospital':<10} "
                 f"{'trapped':>8} {'ccs':>7} {'ambul.':>7}"]
        for d in self.top(n):
            lines.append(f"  {d['casualty']:<10} {_fmt(d['p_dead'], 4):>7} {_fmt(d['share'], 4):>7} "
                         f"{_fmt(d['arrival']):>8} {d['hospital'] or '-':<10} {_fmt(d['minutes_trapped']):>8} "
                         f"{_fmt(d['minutes_ccs']):>7} {_fmt(d['minutes_ambulance']):>7}")
        lines.append("hospital load:")
        for h in self.hospitals:
            lines.append(f"  {h['hospital']:<10} {h['admissions']:>3} admitted / {h['beds']:>3} beds"
                         f"   overflow fatalities {_fmt(h['overflow_fatalities'], 4)}")
        return "\n".join(lines)


def _fmt(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def explain(sol: Solution) -> Explanation:
    """Per-casualty times, ``p_dead`` and share of the objective; per-hospital load."""
    from .plan import problem_arrays

    sc, W = sol.sc, sol.W
    P = problem_arrays(sc)
    m = sc.model
    scored = int(sol.cur[3]) != CYCLE  # else the workspace's p_dead are not this plan's
    n_hosp = len(m.hospitals)
    cas_over = np.zeros(len(m.casualties))
    admitted = [[] for _ in range(n_hosp)]
    for c in range(len(m.casualties)):
        if P.status[c] == DEAD or np.isnan(W.arrival[c]):
            continue
        h = P.transit_hosp[c] if P.status[c] == IN_TRANSIT else sol.hosp[c]
        admitted[h].append(c)
    hospitals = []
    for h, members in enumerate(admitted):
        members.sort(key=lambda c: (W.arrival[c], c))
        over = 0.0
        for c in members[P.hosp_cap[h]:]:
            cas_over[c] = (1.0 - W.pdead[c]) * P.hosp_risk[h]
            over += cas_over[c]
        hospitals.append({"hospital": m.hospitals[h].id, "admissions": len(members), "beds": int(P.hosp_cap[h]),
                          "overflow_fatalities": over if scored else None})
    casualties = []
    for c, cas in enumerate(m.casualties):
        o = float(P.obs[c])
        dead = P.status[c] == DEAD
        arrival = None if dead or np.isnan(W.arrival[c]) else float(W.arrival[c])
        rescued = float(W.rescued[c]) if P.trapped[c] and not dead else None
        pickup = None if P.status[c] != ACTIVE or np.isnan(W.pickup[c]) else float(W.pickup[c])
        if P.status[c] == IN_TRANSIT:
            hosp = m.hospitals[P.transit_hosp[c]].id
        elif dead or sol.hosp[c] < 0:
            hosp = None
        else:
            hosp = m.hospitals[sol.hosp[c]].id
        ccs_from = rescued if rescued is not None else o
        casualties.append({
            "casualty": cas.id,
            "p_dead": float(W.pdead[c]) if scored else None,
            "share": float(W.pdead[c] + cas_over[c]) if scored else None,
            "arrival": arrival,
            "hospital": hosp,
            "minutes_trapped": None if rescued is None else max(0.0, rescued - o),
            "minutes_ccs": None if pickup is None else max(0.0, pickup - ccs_from),
            "minutes_ambulance": (arrival - pickup) if (arrival is not None and pickup is not None)
            else (arrival - o if P.status[c] == IN_TRANSIT and arrival is not None else None),  # none in a cycle
        })
    F = sol.cur[0]
    return Explanation(casualties, hospitals, None if np.isnan(F) else float(F))
