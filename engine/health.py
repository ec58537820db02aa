"""Casualty health (SPEC §3): states, triage input, Markov chains and their propagation.

Health is a probability vector over ``delayed, urgent, immediate, deceased``. It evolves by a
per-minute chain that depends on the casualty's environment. ``propagate`` is the one definition of
``P_k(δ)`` used by the engine; the compiled kernels use the power tables built here, which give the
same numbers (whole minutes by matrix power, the fraction by one linear step).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from kernels.health import TABLE

STATES = ("delayed", "urgent", "immediate", "deceased")
DECEASED = 3

#: Environment order of every chain array: ``chains[k]`` is the chain of ``ENVIRONMENTS[k]``.
ENVIRONMENTS = ("trapped", "ccs", "ambulance", "trapped_treated", "ccs_treated")
TRAPPED, CCS, AMBULANCE, TRAPPED_TREATED, CCS_TREATED = range(5)

#: Category names accepted as health input, each a one-hot state (``"delayed"`` is P3, state 0).
CATEGORIES = {
    "delayed": 0, "urgent": 1, "immediate": 2, "deceased": 3,
    "P3": 0, "P2": 1, "P1": 2, "dead": 3,
}

# Our illustrative per-minute one-step deterioration rates (the paper does not publish its own):
# delayed->urgent, urgent->immediate, immediate->deceased.
DEFAULT_RATES = {
    "trapped": (0.004, 0.020, 0.040),
    "ccs": (0.002, 0.010, 0.025),
    "ambulance": (0.001, 0.005, 0.0125),
}

#: Power tables hold P^n for n < POWER_TABLE; longer segments combine them with P^(POWER_TABLE·2^j).
#: The kernels fix the size (``kernels.health.TABLE``): they split minutes by a shift, not a division.
POWER_TABLE = TABLE
POWER_BITS = 48


def one_hot(state: int) -> np.ndarray:
    h = np.zeros(4)
    h[state] = 1.0
    return h


def category_vector(category: str) -> np.ndarray:
    """The one-hot health vector of a triage category such as ``"P1"`` or ``"immediate"``."""
    return one_hot(CATEGORIES[category])


def is_known_dead(h: np.ndarray) -> bool:
    """Known dead means exactly ``[0, 0, 0, 1]`` (SPEC §5): such a casualty gets no tasks."""
    return bool(h[0] == 0.0 and h[1] == 0.0 and h[2] == 0.0 and h[3] == 1.0)


def rate_chain(rates: tuple[float, float, float]) -> np.ndarray:
    """A one-step deterioration chain from its three per-minute rates."""
    a, b, c = rates
    return np.array(
        [[1 - a, a, 0, 0], [0, 1 - b, b, 0], [0, 0, 1 - c, c], [0, 0, 0, 1]], dtype=np.float64
    )


def treated_chain(chain: np.ndarray, slowdown: float) -> np.ndarray:
    """``I + s·(P − I)``: treatment scales every transition probability by ``s``."""
    eye = np.eye(4)
    return eye + slowdown * (chain - eye)


def resolve_chains(given: Mapping[str, object] | None, slowdown: float) -> np.ndarray:
    """All five chains as one ``(5, 4, 4)`` array, defaults and derived treated chains filled in."""
    given = dict(given or {})
    out = np.empty((5, 4, 4))
    for k, name in enumerate(ENVIRONMENTS[:3]):
        m = given.get(name)
        out[k] = np.asarray(m, dtype=np.float64) if m is not None else rate_chain(DEFAULT_RATES[name])
    for k, (name, base) in enumerate((("trapped_treated", TRAPPED), ("ccs_treated", CCS)), start=3):
        m = given.get(name)
        out[k] = np.asarray(m, dtype=np.float64) if m is not None else treated_chain(out[base], slowdown)
    return out


def step_matrix(chain: np.ndarray, delta: float) -> np.ndarray:
    """``P(δ) = P^n · ((1 − f)·I + f·P)`` with ``n = floor(δ)``, ``f = δ − n``."""
    if not (delta >= 0.0) or math.isinf(delta):
        raise ValueError(f"a duration must be finite and >= 0, got {delta}")
    n = math.floor(delta)
    f = delta - n
    return np.linalg.matrix_power(chain, n) @ ((1.0 - f) * np.eye(4) + f * chain)


def propagate(h: np.ndarray, chain: np.ndarray, delta: float) -> np.ndarray:
    """Health after ``delta`` minutes in the environment whose chain is ``chain``."""
    if delta == 0.0:
        return np.asarray(h, dtype=np.float64).copy()
    return np.asarray(h, dtype=np.float64) @ step_matrix(chain, delta)


def propagate_tabled(h: np.ndarray, powers: np.ndarray, chain: np.ndarray, delta: float) -> np.ndarray:
    """``propagate``, reading ``P^n`` from ``powers[n]`` (``chain``'s row of ``power_tables``,
    flattened) as far as the table reaches: one vector-matrix product instead of a matrix power
    (the online engine rolls a casualty's health forward on nearly every report of work)."""
    n = math.floor(delta)
    if n >= powers.shape[0]:
        return propagate(h, chain, delta)
    f = delta - n
    h = np.asarray(h, dtype=np.float64) @ powers[n].reshape(4, 4)
    return (1.0 - f) * h + f * (h @ chain) if f > 0.0 else h


_TABLES: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}


def power_tables(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_power_tables``, shared between scenarios with the same chains.

    The online engine reloads its model after every delta while the chains almost never change,
    so the tables are kept per distinct set of chains (a handful per process). The kernels only
    read them.
    """
    chains = np.ascontiguousarray(chains, dtype=np.float64)
    key = chains.shape[0].to_bytes(2, "little") + chains.tobytes()
    tables = _TABLES.get(key)
    if tables is None:
        if len(_TABLES) >= 64:
            _TABLES.clear()
        tables = _TABLES[key] = _power_tables(chains)
    return tables


def _power_tables(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tables the kernels propagate with, so a segment costs one or a few vector-matrix products.

    Returns ``small[k, n] = P_k^n`` for ``n < POWER_TABLE`` and
    ``big[k, j] = P_k^(POWER_TABLE · 2^j)`` for ``j < POWER_BITS``, each matrix flattened row-major
    to 16 entries: any whole number of minutes is ``small[n mod T]`` times the ``big`` factors of
    the bits of ``n // T`` (no horizon cap).
    """
    n_env = chains.shape[0]
    small = np.empty((n_env, POWER_TABLE, 4, 4))
    big = np.empty((n_env, POWER_BITS, 4, 4))
    for k in range(n_env):
        small[k, 0] = np.eye(4)
        for n in range(1, POWER_TABLE):
            small[k, n] = small[k, n - 1] @ chains[k]
        big[k, 0] = small[k, POWER_TABLE - 1] @ chains[k]
        for j in range(1, POWER_BITS):
            big[k, j] = big[k, j - 1] @ big[k, j - 1]
    return (np.ascontiguousarray(small.reshape(n_env, POWER_TABLE, 16)),
            np.ascontiguousarray(big.reshape(n_env, POWER_BITS, 16)))
