"""Tuple input: validation, the comparison classifiers, the samplers, and the API
checks over every tuple-input estimator (pairs, triplets, quadruplets).

scikit-learn's estimator checks feed 2-D feature matrices, so they cannot run
on estimators fitted on tuples X of shape (n_tuples, tuple_size, n_features);
this file runs the tuple-input versions of the checks that matter (clone and
parameters, fit returns self, pickling, refit, n_features_in_, not-fitted
errors, inputs left untouched, predictions consistent with the decision
function, clear errors for bad input) over ``TUPLE_ESTIMATORS``.
tests/test_pair_estimators.py keeps the pair-only checks (threshold, label
encodings).
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import StandardScaler

from skmetric import LSML, SCML

from skmetric._validation import (
    COMPARED_PAIRS,
    check_pairs,
    check_partially_labeled_data,
    check_tuple_labels,
    check_tuples,
)
from skmetric.base import BaseMahalanobis, QuadrupletsClassifierMixin, TripletsClassifierMixin
from skmetric.constraints import sample_quadruplets, sample_triplets

from ._registry import TUPLE_ESTIMATORS, seeded, tuple_estimators

ESTIMATORS = tuple_estimators()
IDS = [type(e).__name__ for e in ESTIMATORS]


def _size(est):
    return TUPLE_ESTIMATORS[type(est).__name__]


def _tuples(size, n=120, d=4, seed=0):
    """Labelled tuples where only feature 0 decides.

    Pairs: similar pairs differ by noise, dissimilar ones also by 2 to 3 along
    feature 0. Triplets / quadruplets: distinct random points, labelled by the
    comparison of feature-0 distances (+1 holds, -1 reversed).
    """
    rng = np.random.RandomState(seed)
    if size == 2:
        a = rng.normal(size=(n, d))
        b = a + 0.3 * rng.normal(size=(n, d))
        y = np.where(np.arange(n) < n // 2, 1, -1)
        flip = rng.choice([-1.0, 1.0], size=(y == -1).sum())
        b[y == -1, 0] += flip * rng.uniform(2, 3, (y == -1).sum())
        return np.stack([a, b], axis=1), y
    X = rng.normal(size=(60, d))
    X[:, 1:] *= 0.5
    t = X[rng.rand(n, 60).argsort(axis=1)[:, :size]]
    (i, j), (k, m) = COMPARED_PAIRS[size]
    first = np.abs(t[:, i, 0] - t[:, j, 0])
    second = np.abs(t[:, k, 0] - t[:, m, 0])
    return t, np.where(first < second, 1, -1)


class _Fixed(BaseMahalanobis):
    """A metric set by hand, to test the comparison classifiers alone."""

    def __init__(self, components=None):
        self.components = components

    def fit(self, X=None, y=None):
        self.components_ = np.asarray(self.components, dtype=float)
        self.n_features_in_ = self.components_.shape[1]
        return self


class _FixedTriplets(TripletsClassifierMixin, _Fixed):
    pass


class _FixedQuadruplets(QuadrupletsClassifierMixin, _Fixed):
    pass


# ------------------------------------------------------------ validation ---
def test_check_tuples_shapes_and_arity_messages():
    t = np.random.RandomState(0).normal(size=(5, 3, 2))
    out = check_tuples(t, tuple_size=3)
    assert out.shape == (5, 3, 2) and out.dtype == np.float64
    with pytest.raises(ValueError, match=r"expected tuples of 3 points, got 2"):
        check_tuples(t[:, :2], tuple_size=3)
    with pytest.raises(ValueError, match=r"expected tuples of 4 points, got 3"):
        check_tuples(t, tuple_size=4)
    with pytest.raises(ValueError, match=r"shape \(n_triplets, 3, n_features\)"):
        check_tuples(t[:, 0], tuple_size=3)
    with pytest.raises(ValueError, match=r"shape \(n_quadruplets, 4, n_features\)"):
        check_tuples(np.zeros(4), tuple_size=4)
    # Pairs keep their messages.
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2, n_features\)"):
        check_pairs(t)
    with pytest.raises(ValueError, match="0 sample"):
        check_tuples(np.empty((0, 3, 2)), tuple_size=3)


def test_check_tuples_nan_inf_and_labels():
    t = np.random.RandomState(0).normal(size=(4, 4, 3))
    for bad in (np.nan, np.inf):
        u = t.copy()
        u[2, 3, 1] = bad
        with pytest.raises(ValueError, match=r"quadruplets contains (NaN|infinity)"):
            check_tuples(u, tuple_size=4)
    _, y = check_tuples(t, [1, 0, 1, 1], tuple_size=4)
    np.testing.assert_array_equal(y, [1, -1, 1, 1])
    message = r"Quadruplet labels must be \+1 \(d\(a, b\) < d\(c, d\)\)"
    with pytest.raises(ValueError, match=message):
        check_tuples(t, [1, 2, 1, 1], tuple_size=4)
    with pytest.raises(ValueError, match="Got 2 quadruplet labels for 4 quadruplets"):
        check_tuples(t, [1, -1], tuple_size=4)
    with pytest.raises(ValueError, match="Triplet labels must be numeric"):
        check_tuple_labels(np.array(["a", "b"]), tuple_size=3)
    with pytest.raises(ValueError, match="All triplets are labelled -1"):
        check_tuples(t[:, :3], [-1] * 4, tuple_size=3, require_both_labels=True)


@pytest.mark.parametrize(
    "size, i, j, letters",
    [(3, 0, 1, "a == b"), (3, 0, 2, "a == c"), (4, 0, 1, "a == b"), (4, 2, 3, "c == d")],
)
def test_check_tuples_repeated_point(size, i, j, letters):
    t = np.random.RandomState(0).normal(size=(6, size, 2))
    t[4, j] = t[4, i]
    orig = t.copy()
    message = rf"compare distinct points, but 1 of them have {letters}.*4"
    with pytest.raises(ValueError, match=message):
        check_tuples(t, tuple_size=size)
    np.testing.assert_array_equal(t, orig)
    # At prediction time repeated points are allowed; pairs never check.
    check_tuples(t, tuple_size=size, require_distinct=False)
    check_pairs(np.zeros((3, 2, 2)))


def test_check_tuples_does_not_modify_input():
    t = np.random.RandomState(0).normal(size=(5, 3, 2)).astype(np.float32)
    orig = t.copy()
    out = check_tuples(t, [1, -1, 1, 1, -1], tuple_size=3)[0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(t, orig)


# ------------------------------------------- the comparison classifiers ---
def test_triplet_classifier_semantics():
    est = _FixedTriplets(np.diag([1.0, 0.0])).fit()
    # d(a, b) along feature 0 = 1, d(a, c) = 2: holds; second triplet reversed.
    t = np.array(
        [
            [[0, 0], [1, 5], [2, 0]],
            [[0, 0], [3, 0], [1, 9]],
            [[0, 0], [1, 0], [-1, 0]],  # a tie: the comparison does not hold
        ],
        dtype=float,
    )
    np.testing.assert_allclose(est.decision_function(t), [1.0, -2.0, 0.0])
    np.testing.assert_array_equal(est.predict(t), [1, -1, -1])
    assert est.score(t) == pytest.approx(1 / 3)  # no y: all taken as +1
    assert est.score(t, [1, -1, -1]) == 1.0
    assert est.score(t, [1, 0, 0]) == 1.0  # {0, 1} reads as {-1, +1}
    with pytest.raises(ValueError, match="expected tuples of 3 points, got 4"):
        est.predict(np.zeros((2, 4, 2)))
    message = "Triplets have 3 features, but _FixedTriplets was fitted with 2"
    with pytest.raises(ValueError, match=message):
        est.predict(np.zeros((2, 3, 3)))


def test_quadruplet_classifier_semantics():
    est = _FixedQuadruplets(np.eye(2)).fit()
    q = np.array(
        [[[0, 0], [1, 0], [5, 5], [5, 8]], [[0, 0], [4, 0], [1, 1], [1, 2]]], dtype=float
    )
    np.testing.assert_allclose(est.decision_function(q), [2.0, -3.0])
    np.testing.assert_array_equal(est.predict(q), [1, -1])
    assert est.score(q) == 0.5
    with pytest.raises(NotFittedError):
        _FixedQuadruplets(np.eye(2)).predict(q)


def test_fit_orients_reversed_tuples():
    t, y = _tuples(3)
    est = _FixedTriplets(np.eye(4))
    oriented = est._validate_tuples_for_fit(t, y)
    np.testing.assert_array_equal(oriented[y == 1], t[y == 1])
    np.testing.assert_array_equal(oriented[y == -1], t[y == -1][:, [0, 2, 1]])
    q, yq = _tuples(4)
    oriented = _FixedQuadruplets(np.eye(4))._validate_tuples_for_fit(q, yq)
    np.testing.assert_array_equal(oriented[yq == -1], q[yq == -1][:, [2, 3, 0, 1]])
    assert est.n_features_in_ == 4


# -------------------------------------------------------------- samplers ---
def _labelled(n_per_class=(12, 9, 2), d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = np.vstack([rng.normal(loc=3 * c, size=(n, d)) for c, n in enumerate(n_per_class)])
    return X, np.repeat(np.arange(len(n_per_class)), n_per_class)


def test_sample_triplets_are_knn_genuine_and_impostors():
    X, y = _labelled()
    T = sample_triplets(X, y, k_genuine=2, k_impostor=3)
    a, b, c = T.T
    assert np.all(y[a] == y[b]) and np.all(a != b) and np.all(y[a] != y[c])
    # Every anchor: all k_genuine x k_impostor combinations; the class of 2
    # has one genuine neighbour per anchor.
    counts = np.bincount(a, minlength=y.size)
    np.testing.assert_array_equal(counts, np.where(y == 2, 1 * 3, 2 * 3))
    # Genuine = nearest same-class points; impostors = nearest other-class points.
    for anchor in (0, 13, 22):
        same = np.flatnonzero((y == y[anchor]) & (np.arange(y.size) != anchor))
        other = np.flatnonzero(y != y[anchor])
        dist = np.linalg.norm(X - X[anchor], axis=1)
        kg = min(2, same.size)
        assert set(b[a == anchor]) == set(same[np.argsort(dist[same])[:kg]])
        assert set(c[a == anchor]) == set(other[np.argsort(dist[other])[:3]])


def test_sample_triplets_drops_duplicates_of_the_anchor():
    X, y = _labelled((10, 10))
    X[1] = X[0]  # a same-class duplicate: would give a == b
    X[15] = X[2]  # an other-class duplicate: would give a == c
    T = sample_triplets(X, y, 2, 3)
    assert not np.any(np.all(X[T[:, 0]] == X[T[:, 1]], axis=1))
    assert not np.any(np.all(X[T[:, 0]] == X[T[:, 2]], axis=1))
    check_tuples(X[T], tuple_size=3)
    assert T.shape[0] < 20 * 2 * 3


def test_samplers_leave_unlabelled_out():
    X, y = _labelled((15, 15, 15))
    y = y.copy()
    y[::4] = -1
    T = sample_triplets(X, y)
    assert not np.any(y[T] == -1)
    Q = sample_quadruplets(y, 400, random_state=0)
    assert Q.shape == (400, 4)
    assert not np.any(y[Q] == -1)
    assert np.all(y[Q[:, 0]] == y[Q[:, 1]]) and np.all(Q[:, 0] != Q[:, 1])
    assert np.all(y[Q[:, 2]] != y[Q[:, 3]])
    np.testing.assert_array_equal(Q, sample_quadruplets(y, 400, random_state=0))
    # Estimators: -1 stays unlabelled through the label encoding (numbers only).
    est = _Fixed()
    _, y_enc, classes = check_partially_labeled_data(est, X[:4], [7, -1, 3, 7])
    np.testing.assert_array_equal(y_enc, [1, -1, 0, 1])
    np.testing.assert_array_equal(classes, [-1, 3, 7])
    _, y_enc, _ = check_partially_labeled_data(est, X[:3], ["b", "-1", "a"])
    np.testing.assert_array_equal(y_enc, [2, 0, 1])
    with pytest.raises(ValueError, match=r"_Fixed needs at least 2 labelled classes in y"):
        check_partially_labeled_data(est, X[:4], [7, -1, 7, -1])


def test_sampler_errors():
    X, y = _labelled()
    with pytest.raises(ValueError, match="at least 1"):
        sample_triplets(X, y, k_genuine=0)
    message = r"2 labelled classes in y \(label -1 is unlabelled\); got 1"
    with pytest.raises(ValueError, match=message):
        sample_triplets(X, np.where(y == 0, 0, -1))
    with pytest.raises(ValueError, match="at least 2 samples"):
        sample_triplets(X[[0, 12, 21]], y[[0, 12, 21]])
    with pytest.raises(ValueError, match="2 labelled classes"):
        sample_quadruplets(np.r_[np.zeros(5), -np.ones(5)], 10)
    with pytest.raises(ValueError, match="at least 1"):
        sample_quadruplets(y, 0)


def test_sample_triplets_does_not_build_an_n_by_n_matrix():
    """Neighbours come class by class from NearestNeighbors: peak memory stays
    far below one n x n float64 matrix (128 MB here)."""
    import tracemalloc

    X, y = _labelled((2000, 2000), d=3)
    tracemalloc.start()
    try:
        T = sample_triplets(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert T.shape == (4000 * 3 * 10, 3)
    assert peak < 32e6, peak


# ------------------------------------------------ API over the estimators ---
@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_clone_params_and_fit_returns_self(est):
    params = est.get_params()
    cloned = clone(est)
    assert cloned.get_params() == params
    X, y = _tuples(_size(est))
    assert seeded(cloned).fit(X, y) is not None
    fitted = seeded(est)
    assert fitted.fit(X, y) is fitted
    assert fitted.n_features_in_ == X.shape[2]
    assert fitted.components_.shape == (X.shape[2], X.shape[2])


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_not_fitted(est):
    X, _ = _tuples(_size(est))
    with pytest.raises(NotFittedError):
        clone(est).predict(X)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_pickle_and_refit_identical(est):
    X, y = _tuples(_size(est))
    fitted = seeded(est).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.decision_function(X), fitted.decision_function(X))
    again = seeded(est).fit(X, y)
    np.testing.assert_allclose(again.components_, fitted.components_)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_predictions_consistent_and_accurate(est):
    X, y = _tuples(_size(est))
    fitted = seeded(est).fit(X, y)
    scores = fitted.decision_function(X)
    pred = fitted.predict(X)
    assert set(np.unique(pred)) <= {-1, 1}
    if _size(est) == 2:
        np.testing.assert_array_equal(pred, np.where(scores >= 0, 1, -1))
    else:
        np.testing.assert_array_equal(pred, np.where(scores > 0, 1, -1))
    assert fitted.score(X, y) > 0.8
    # Distances derive from the fitted components.
    diff = (X[:, 0] - X[:, 1]) @ fitted.components_.T
    np.testing.assert_allclose(
        fitted.pair_distance(X[:, :2]), np.linalg.norm(diff, axis=1), atol=1e-10
    )


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_inputs_not_modified(est):
    X, y = _tuples(_size(est))
    X_orig, y_orig = X.copy(), y.copy()
    fitted = seeded(est).fit(X, y)
    fitted.predict(X)
    fitted.score(X, y)
    fitted.transform(X[:, 0])
    np.testing.assert_array_equal(X, X_orig)
    np.testing.assert_array_equal(y, y_orig)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_bad_input(est):
    size = _size(est)
    X, y = _tuples(size)
    with pytest.raises(ValueError, match=rf"\(n_\w+, {size}, n_features\)"):
        clone(est).fit(X[:, 0], y)
    other = _tuples({2: 3, 3: 4, 4: 3}[size])[0]
    message = rf"expected tuples of {size} points, got {other.shape[1]}"
    with pytest.raises(ValueError, match=message):
        clone(est).fit(other, y[: other.shape[0]])
    bad = X.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clone(est).fit(bad, y)
    with pytest.raises(ValueError, match=r"must be \+1"):
        clone(est).fit(X, np.where(y == 1, 2, -1))
    fitted = seeded(est).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.ones((3, size, X.shape[2] + 1)))


@pytest.mark.parametrize("est", [e for e in ESTIMATORS if _size(e) > 2],
                         ids=[n for e, n in zip(ESTIMATORS, IDS) if _size(e) > 2])
def test_comparison_learners_accept_unlabelled_tuples_and_reject_repeats(est):
    X, y = _tuples(_size(est))
    oriented = seeded(est).fit(X, y)
    # Swapping the compared pairs of the -1 tuples gives tuples that all hold.
    (i, j), (k, m) = COMPARED_PAIRS[_size(est)]
    order = np.arange(_size(est))
    order[[i, j, k, m]] = [k, m, i, j]
    X_pos = np.where((y == -1)[:, None, None], X[:, order], X)
    unlabelled = seeded(est).fit(X_pos)
    np.testing.assert_allclose(unlabelled.components_, oriented.components_, atol=1e-8)
    assert unlabelled.score(X_pos) == pytest.approx(oriented.score(X, y))
    X_rep = X.copy()
    X_rep[3, j] = X_rep[3, i]
    with pytest.raises(ValueError, match="compare distinct points"):
        clone(est).fit(X_rep, y)


# ------------------------------------- label forms drawing tuples from labels ---
# name: (class, why a max_iter=1, tol=0 fit stops, as a regular expression)
LABEL_FORMS = {
    "LSML": (LSML, r"max_iter=1 steps reached with projected gradient >= tol"),
    "SCML": (SCML, r"max_iter=1 L-BFGS-B iterations reached"),
}


@pytest.mark.parametrize("name", LABEL_FORMS)
def test_label_form_progress_and_convergence_warning(name, capsys):
    cls, reason = LABEL_FORMS[name]
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    cls(verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert f"[{name}] iter     1  loss" in out and f"[{name}] done:" in out
    loss = r"\(final loss [0-9.e+-]+\)"
    match = rf"^{name} did not converge: {reason} {loss}; increase max_iter or tol\.$"
    with pytest.warns(ConvergenceWarning, match=match):
        cls(max_iter=1, tol=0, random_state=0).fit(X, y)


@pytest.mark.parametrize("name", LABEL_FORMS)
def test_label_form_leaves_unlabelled_samples_out(name):
    """Samples labelled -1 enter no tuple (and no 'lda' basis): far outliers
    among them change nothing, and the fit equals the one on the labelled rows."""
    cls = LABEL_FORMS[name][0]
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y_part = y.copy()
    y_part[1::3] = -1
    X_out = X.copy()
    X_out[1::3] *= 100.0
    lab = y_part != -1
    a = cls(random_state=0).fit(X_out, y_part)
    b = cls(random_state=0).fit(X[lab], y[lab])
    np.testing.assert_allclose(a.get_mahalanobis_matrix(), b.get_mahalanobis_matrix(), atol=1e-8)
