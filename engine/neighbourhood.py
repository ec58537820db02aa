"""Granular neighbourhoods: each casualty's nearest casualties and hospitals, built once.

A move is only tried between a task and the tasks of its ``k`` nearest casualties (Toth & Vigo's
granular neighbourhoods), so one sweep costs the same per task at 10 000 casualties as at 90.
"""

from __future__ import annotations

import numpy as np


def nearest_casualties(P, k: int = 8) -> np.ndarray:
    """``(C, k)`` indices: nearest by travel between sites, then by index distance (same site)."""
    n = len(P.site_loc)
    k = min(k, max(n - 1, 0))
    out = np.empty((n, k), dtype=np.int64)
    if k == 0:
        return out
    sites, site_of = np.unique(P.site_loc, return_inverse=True)
    members = [np.flatnonzero(site_of == i) for i in range(len(sites))]
    site_dist = P.travel[np.ix_(sites, sites)]
    for i, site in enumerate(sites):
        by_distance = np.argsort(site_dist[i], kind="stable")
        pool = np.concatenate([members[j] for j in by_distance[: max(1, len(by_distance))]])
        # the pool is ordered by site distance; within a site, by index distance from c
        for c in members[i]:
            near = pool[pool != c]
            dist = site_dist[i, site_of[near]]
            pick = np.lexsort((np.abs(near - c), dist))[:k]
            out[c, : len(pick)] = near[pick]
            out[c, len(pick):] = near[pick[-1]] if len(pick) else c
    return out


def nearest_hospitals(P, k: int = 4) -> np.ndarray:
    """``(C, k)``: each casualty's ``k`` nearest hospitals from its site."""
    dist = P.travel[np.ix_(P.site_loc, P.hosp_loc)]
    k = min(k, dist.shape[1])
    return np.ascontiguousarray(np.argsort(dist, axis=1, kind="stable")[:, :k].astype(np.int64))
