"""Triage algorithms (SPEC §3) that turn field observations into a health category.

A missing observation never triggers its rule: a half-filled triage card still gives a category.
"""

from __future__ import annotations

from typing import Mapping


def sieve(obs: Mapping[str, object]) -> str:
    """UK triage sieve: returns ``"P3"``, ``"P2"``, ``"P1"`` or ``"dead"``."""
    if obs.get("walking") is True:
        return "P3"
    if obs.get("breathing") is False:
        return "dead"
    rr = obs.get("respiratory_rate")
    if rr is not None and (rr < 10 or rr > 29):
        return "P1"
    crt = obs.get("capillary_refill")
    pulse = obs.get("pulse")
    if (crt is not None and crt > 2) or (pulse is not None and pulse > 120):
        return "P1"
    return "P2"


def start(obs: Mapping[str, object]) -> str:
    """START: returns a category of SPEC §3 (START's yellow "delayed" is our ``"urgent"``)."""
    if obs.get("walking") is True:
        return "delayed"
    if obs.get("breathing") is False:
        return "deceased"
    rr = obs.get("respiratory_rate")
    if rr is not None and rr > 30:
        return "immediate"
    crt = obs.get("capillary_refill")
    if obs.get("radial_pulse") is False or (crt is not None and crt > 2):
        return "immediate"
    if obs.get("follows_commands") is False:
        return "immediate"
    return "urgent"
