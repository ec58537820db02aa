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
    size = np.bincount(site_of, minlength=len(sites))
    site_dist = P.travel[np.ix_(sites, sites)]
    for i in range(len(sites)):
        by_distance = np.argsort(site_dist[i], kind="stable")
        dist = site_dist[i, by_distance]
        # the nearest sites holding k others, and every site as near as the last of them: no
        # casualty further away can be among the k (a pool of every casualty took 2.4 s at 10 000)
        enough = int(np.searchsorted(np.cumsum(size[by_distance]), k + 1))
        reach = int(np.searchsorted(dist, dist[min(enough, len(dist) - 1)], side="right"))
        pool = np.concatenate([members[j] for j in by_distance[:reach]])
        pool_dist = dist[np.repeat(np.arange(reach), size[by_distance[:reach]])]
        for c in members[i]:
            keep = pool != c
            near = pool[keep]
            pick = np.lexsort((np.abs(near - c), pool_dist[keep]))[:k]
            out[c] = near[pick]
    return out


def nearest_hospitals(P, k: int = 4) -> np.ndarray:
    """``(C, k)``: each casualty's ``k`` nearest hospitals from its site."""
    dist = P.travel[np.ix_(P.site_loc, P.hosp_loc)]
    k = min(k, dist.shape[1])
    return np.ascontiguousarray(np.argsort(dist, axis=1, kind="stable")[:, :k].astype(np.int64))
