"""The shared selection of each row's k nearest entries (skmetric._neighbors)."""

import numpy as np
import pytest

from skmetric._neighbors import k_smallest


@pytest.mark.parametrize("k", [1, 3, 7, 10, 15])
def test_k_smallest_matches_a_full_sort(k):
    D = np.random.RandomState(0).rand(20, 10)
    idx, val = k_smallest(D, k)
    full = np.argsort(D, axis=1)[:, :k]
    np.testing.assert_array_equal(idx, full)
    np.testing.assert_array_equal(val, np.take_along_axis(D, full, axis=1))
    assert idx.shape == (20, min(k, 10))
