"""Granular neighbourhoods against their definition, worked out by brute force."""

from types import SimpleNamespace

import numpy as np
import pytest

from engine.neighbourhood import nearest_casualties, nearest_hospitals


def _brute_nearest(site_loc, travel, k):
    """Every other casualty, by travel from c's site, then by index distance from c; ties after
    that go to the site first in a stable sort of the distances, then to the lower index."""
    sites = np.unique(site_loc)
    out = []
    for c in range(len(site_loc)):
        row = travel[site_loc[c], sites]
        site_rank = {int(s): i for i, s in enumerate(sites[np.argsort(row, kind="stable")])}
        others = [o for o in range(len(site_loc)) if o != c]
        others.sort(key=lambda o: (travel[site_loc[c], site_loc[o]], abs(o - c), site_rank[int(site_loc[o])], o))
        out.append(others[:k])
    return np.array(out, dtype=np.int64).reshape(len(site_loc), -1)


@pytest.mark.parametrize("seed", range(40))
def test_nearest_casualties_is_the_brute_force_order(seed):
    rng = np.random.default_rng(seed)
    n_places = int(rng.integers(1, 9))
    # small whole distances, so that ties between sites are common; not symmetric
    travel = rng.integers(0, 4, size=(n_places, n_places)).astype(float)
    np.fill_diagonal(travel, 0.0)
    n = int(rng.integers(1, 40))
    site_loc = rng.integers(0, n_places, size=n)
    P = SimpleNamespace(site_loc=site_loc, travel=travel)
    for k in (1, 3, 8, 50):
        got = nearest_casualties(P, k)
        assert got.shape == (n, min(k, n - 1))
        assert np.array_equal(got, _brute_nearest(site_loc, travel, min(k, n - 1)))


def test_nearest_hospitals_by_travel_from_the_site():
    travel = np.array([[0, 5, 1, 3], [5, 0, 2, 2], [1, 2, 0, 4], [3, 2, 4, 0]], dtype=float)
    P = SimpleNamespace(site_loc=np.array([0, 1]), hosp_loc=np.array([1, 2, 3]), travel=travel)
    # from place 0: hospital places 1, 2, 3 at 5, 1, 3; from place 1: 0, 2, 2 (a tie: lower index first)
    assert nearest_hospitals(P, 2).tolist() == [[1, 2], [0, 1]]
