"""Tuples given as indices into a set of points (``preprocessor``, issue 15).

With ``preprocessor=X`` (or a callable mapping indices to points), every
tuple learner takes tuples of shape (n_tuples, tuple_size) of integer indices
and learns exactly what it learns from the materialised tuples ``X[indices]``.
"""

import numpy as np
import pytest
from sklearn.base import clone

from skmetric._validation import COMPARED_PAIRS, IndexedTuples, check_tuples

from ._registry import TUPLE_ESTIMATORS, seeded, tuple_estimators

ESTIMATORS = tuple_estimators()
IDS = [type(e).__name__ for e in ESTIMATORS]


def _size(est):
    return TUPLE_ESTIMATORS[type(est).__name__]


def _indexed(size, n=120, n_points=60, d=4, seed=0):
    """Points, tuples of distinct indices into them, and labels set by feature 0."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_points, d))
    X[:, 1:] *= 0.5
    idx = rng.rand(n, n_points).argsort(axis=1)[:, :size]
    if size == 2:
        gap = np.abs(X[idx[:, 0], 0] - X[idx[:, 1], 0])
        return X, idx, np.where(gap < np.median(gap), 1, -1)
    (i, j), (k, m) = COMPARED_PAIRS[size]
    first = np.abs(X[idx[:, i], 0] - X[idx[:, j], 0])
    second = np.abs(X[idx[:, k], 0] - X[idx[:, m], 0])
    return X, idx, np.where(first < second, 1, -1)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_indices_fit_the_same_metric_as_points(est):
    size = _size(est)
    X, idx, y = _indexed(size)
    on_points = seeded(est).fit(X[idx], y)
    on_indices = seeded(clone(est).set_params(preprocessor=X)).fit(idx, y)
    np.testing.assert_allclose(on_indices.components_, on_points.components_,
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(on_indices.decision_function(idx),
                               on_points.decision_function(X[idx]), atol=1e-8)
    np.testing.assert_array_equal(on_indices.predict(idx), on_points.predict(X[idx]))
    assert on_indices.score(idx, y) == pytest.approx(on_points.score(X[idx], y))
    # Tuples of points still work on a learner with a preprocessor.
    np.testing.assert_allclose(on_indices.decision_function(X[idx]),
                               on_indices.decision_function(idx), atol=1e-8)
    if size == 2:
        assert on_indices.threshold_ == pytest.approx(on_points.threshold_)
        on_indices.calibrate_threshold(idx, y, strategy="f_beta", beta=2.0)
        on_points.calibrate_threshold(X[idx], y, strategy="f_beta", beta=2.0)
        assert on_indices.threshold_ == pytest.approx(on_points.threshold_)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_callable_preprocessor(est):
    size = _size(est)
    X, idx, y = _indexed(size)
    calls = []

    def lookup(indices):
        calls.append(np.asarray(indices).copy())
        return X[indices]

    on_points = seeded(est).fit(X[idx], y)
    on_calls = seeded(clone(est).set_params(preprocessor=lookup)).fit(idx, y)
    np.testing.assert_allclose(on_calls.components_, on_points.components_,
                               rtol=1e-7, atol=1e-9)
    # Called on the distinct indices only, each once per validation.
    assert all(np.array_equal(c, np.unique(c)) for c in calls)
    np.testing.assert_array_equal(on_calls.predict(idx), on_points.predict(X[idx]))


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_index_errors(est):
    size = _size(est)
    X, idx, y = _indexed(size)
    with pytest.raises(ValueError, match=r"read as indices .* only when the estimator has a "
                                         r"preprocessor"):
        clone(est).fit(idx, y)
    with_pre = clone(est).set_params(preprocessor=X)
    bad = idx.copy()
    bad[5, 0] = X.shape[0]
    with pytest.raises(ValueError, match=rf"index {X.shape[0]}, out of range .* 60 points"):
        clone(with_pre).fit(bad, y)
    bad[5, 0] = -1
    with pytest.raises(ValueError, match=r"index -1, out of range"):
        clone(with_pre).fit(bad, y)
    with pytest.raises(ValueError, match="must be integers; got dtype float64"):
        clone(with_pre).fit(idx.astype(float), y)
    with pytest.raises(ValueError, match=rf"expected tuples of {size} indices"):
        clone(with_pre).fit(np.c_[idx, idx[:, :1]], y)
    fitted = seeded(with_pre).fit(idx, y)
    with pytest.raises(ValueError, match="out of range"):
        fitted.predict(idx + X.shape[0])


def test_no_copy_of_the_points_in_validation():
    X, idx, y = _indexed(3, n=500)
    t, _ = check_tuples(idx, y, tuple_size=3, preprocessor=X, return_indexed=True)
    assert isinstance(t, IndexedTuples) and t.shape == (500, 3, X.shape[1])
    assert t.points is X  # validated in place: float64 C-ordered points are not copied
    np.testing.assert_array_equal(t.materialize(), X[idx])
    # Without return_indexed: one materialised array, equal to X[indices].
    np.testing.assert_array_equal(check_tuples(idx, tuple_size=3, preprocessor=X), X[idx])


def test_repeated_points_are_found_through_indices():
    X, idx, y = _indexed(3)
    X = np.vstack([X, X[:1]])  # row 60 repeats row 0
    bad = idx.copy()
    bad[7] = [0, 60, 1]  # a == b as rows, though the indices differ
    with pytest.raises(ValueError, match=r"1 of them have a == b .* triplet 7"):
        check_tuples(bad, tuple_size=3, preprocessor=X, return_indexed=True)
    bad[7] = [3, 5, 3]
    with pytest.raises(ValueError, match=r"have a == c"):
        check_tuples(bad, tuple_size=3, preprocessor=X, return_indexed=True)


def test_bad_preprocessor():
    X, idx, y = _indexed(2)
    with pytest.raises(ValueError, match="NaN"):
        check_tuples(idx, tuple_size=2, preprocessor=np.full_like(X, np.nan))
    with pytest.raises(ValueError, match=r"returned 3 points for \d+ indices"):
        check_tuples(idx, tuple_size=2, preprocessor=lambda i: X[:3])
