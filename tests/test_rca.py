"""RCA and chunklet sampling: whitening, closed form, invariance, singular cases, errors."""

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from skmetric import RCA
from skmetric.constraints import sample_chunklets


def _correlated_noise_problem(n=200, seed=0):
    """Three classes separated along a low-variance direction; the within-class
    noise is large along another direction, which swamps Euclidean kNN."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, n)
    noise = rng.randn(n, 4) * np.array([4.0, 0.3, 0.3, 3.0])
    X = noise + np.outer(y, [0.0, 1.0, 0.0, 0.0])
    R = np.linalg.qr(rng.randn(4, 4))[0]  # rotate so no feature is clean
    return X @ R, y


def _chunklet_cov(Z, chunks):
    rows = []
    for c in np.unique(chunks[chunks >= 0]):
        members = Z[chunks == c]
        rows.append(members - members.mean(axis=0))
    centred = np.vstack(rows)
    return centred.T @ centred / centred.shape[0]


# --- sample_chunklets -------------------------------------------------------


def test_sample_chunklets_are_disjoint_same_class_and_sized():
    y = np.repeat(["a", "b", "c"], [7, 5, 2])
    chunks = sample_chunklets(y, num_chunks=4, chunk_size=2, random_state=0)
    ids, sizes = np.unique(chunks[chunks >= 0], return_counts=True)
    np.testing.assert_array_equal(ids, np.arange(4))
    assert np.all(sizes == 2)
    for c in ids:
        assert np.unique(y[chunks == c]).size == 1


def test_sample_chunklets_all_by_default_and_reproducible():
    y = np.repeat([0, 1, 2], [7, 5, 2])
    chunks = sample_chunklets(y, chunk_size=3, random_state=1)
    assert chunks.max() + 1 == 7 // 3 + 5 // 3 + 2 // 3
    np.testing.assert_array_equal(chunks, sample_chunklets(y, chunk_size=3, random_state=1))
    draws = {tuple(sample_chunklets(y, chunk_size=3, random_state=s)) for s in range(5)}
    assert len(draws) > 1


def test_sample_chunklets_errors():
    y = np.array([0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="at most 2"):
        sample_chunklets(y, num_chunks=3, chunk_size=2)
    with pytest.raises(ValueError, match="chunk_size must be at least 2"):
        sample_chunklets(y, chunk_size=1)
    with pytest.raises(ValueError, match="No class has chunk_size=4"):
        sample_chunklets(y, chunk_size=4)


# --- RCA --------------------------------------------------------------------


def test_transformed_chunklet_covariance_is_identity():
    X, y = _correlated_noise_problem()
    chunks = sample_chunklets(y, num_chunks=40, chunk_size=3, random_state=0)
    rca = RCA(reg=0.0).fit_chunklets(X, chunks)
    np.testing.assert_allclose(_chunklet_cov(rca.transform(X), chunks), np.eye(4), atol=1e-8)
    assert rca.n_chunks_ == 40


def test_class_chunklets_give_inverse_within_class_covariance():
    # With each class as one chunklet, M is the inverse pooled within-class covariance.
    X, y = _correlated_noise_problem(n=90)
    rca = RCA(reg=0.0).fit_chunklets(X, y)
    Sw = sum(np.cov(X[y == c], rowvar=False, bias=True) * np.sum(y == c) for c in range(3))
    np.testing.assert_allclose(
        rca.get_mahalanobis_matrix(), np.linalg.inv(Sw / len(y)), rtol=1e-8
    )


def test_distances_invariant_to_linear_reparametrisation():
    X, y = _correlated_noise_problem(n=90)
    B = np.random.RandomState(5).randn(4, 4) + 3 * np.eye(4)
    a = RCA(reg=0.0, random_state=0).fit(X, y)
    b = RCA(reg=0.0, random_state=0).fit(X @ B, y)
    pairs = np.stack([X[:20], X[20:40]], axis=1)
    np.testing.assert_allclose(a.pair_distance(pairs), b.pair_distance(pairs @ B), rtol=1e-7)


def test_improves_knn():
    X, y = _correlated_noise_problem(n=300)
    tr, te = slice(0, 200), slice(200, None)
    knn = KNeighborsClassifier(n_neighbors=3)
    euclid_err = 1 - knn.fit(X[tr], y[tr]).score(X[te], y[te])
    rca = RCA(random_state=0).fit(X[tr], y[tr])
    rca_err = 1 - knn.fit(rca.transform(X[tr]), y[tr]).score(rca.transform(X[te]), y[te])
    assert euclid_err > 0.25
    assert rca_err < euclid_err - 0.2


def test_constant_feature_gets_zero_weight():
    X, y = _correlated_noise_problem(n=90)
    X = np.hstack([X, np.full((len(X), 1), 2.0)])
    rca = RCA(random_state=0).fit(X, y)
    assert rca.components_.shape == (5, 5)
    np.testing.assert_allclose(rca.components_[:, -1], 0.0, atol=1e-8)
    assert np.all(np.isfinite(rca.components_))
    # A test point that differs only in the constant feature is not moved away.
    x, x2 = X[0].copy(), X[0].copy()
    x2[-1] = 50.0
    assert rca.pair_distance(np.array([[x, x2]]))[0] < 1e-6


def test_too_few_chunklets_regularised_or_rejected():
    X, y = _correlated_noise_problem(n=60)
    chunks = np.full(len(X), -1)
    chunks[:2] = 0  # one pair: within-chunklet covariance of rank 1 in 4-D
    with pytest.warns(UserWarning, match="rank deficient: 3 of 4 directions .* reg=0.001"):
        rca = RCA().fit_chunklets(X, chunks)
    assert np.all(np.isfinite(rca.components_))
    chunks[2:4] = 1  # two pairs: rank 2, two directions regularised
    with pytest.warns(UserWarning, match="2 of 4 directions"):
        RCA(reg=0.1).fit_chunklets(X, chunks)
    with pytest.raises(ValueError, match="within-chunklet covariance is singular"):
        RCA(reg=0.0).fit_chunklets(X, chunks)


def test_no_warning_when_chunklets_span_the_data(recwarn):
    X, y = _correlated_noise_problem(n=90)
    rca = RCA(random_state=0).fit(X, y)
    assert not recwarn.list
    assert (rca.n_iter_, rca.converged_) == (0, True) and np.isnan(rca.loss_)


def test_n_components_keeps_leading_principal_directions():
    X, y = _correlated_noise_problem(n=90)
    rca = RCA(n_components=2, random_state=0).fit(X, y)
    assert rca.transform(X).shape == (90, 2)
    # The rows span the top-2 principal subspace of X.
    V = np.linalg.svd(X - X.mean(0), full_matrices=False)[2][:2]
    residual = rca.components_ - rca.components_ @ V.T @ V
    np.testing.assert_allclose(residual, 0.0, atol=1e-8)


def test_random_state_reproducible():
    X, y = _correlated_noise_problem(n=90)
    a = RCA(num_chunks=10, random_state=0).fit(X, y).components_
    b = RCA(num_chunks=10, random_state=0).fit(X, y).components_
    c = RCA(num_chunks=10, random_state=1).fit(X, y).components_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_chunklets_raise():
    X, y = _correlated_noise_problem(n=30)
    with pytest.raises(ValueError, match="one id per sample"):
        RCA().fit_chunklets(X, np.zeros(29, dtype=int))
    with pytest.raises(ValueError, match="integer chunklet ids"):
        RCA().fit_chunklets(X, np.full(30, 0.5))
    with pytest.raises(ValueError, match="-1 for points in no chunklet"):
        RCA().fit_chunklets(X, np.full(30, -2))
    with pytest.raises(ValueError, match="none with 2 points"):
        RCA().fit_chunklets(X, np.arange(30))
    with pytest.raises(ValueError, match="(?i)nan"):
        X_nan = X.copy()
        X_nan[0, 0] = np.nan
        RCA().fit_chunklets(X_nan, y)


def test_bad_parameters_raise():
    X, y = _correlated_noise_problem(n=30)
    with pytest.raises(ValueError, match="at most"):
        RCA(num_chunks=1000).fit(X, y)
    with pytest.raises(ValueError, match="chunk_size"):
        RCA(chunk_size=1).fit(X, y)
    with pytest.raises(ValueError, match="n_components=5 must not exceed"):
        RCA(n_components=5).fit(X, y)
    with pytest.raises(ValueError, match="identical"):
        RCA().fit(np.ones((10, 3)), np.repeat([0, 1], 5))
