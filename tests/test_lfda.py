"""LFDA: local scaling and scatters against a direct n x n computation, the
generalised eigenproblem, embeddings, kNN gain on multimodal classes, errors."""

import numpy as np
import pytest
from sklearn import config_context
from sklearn.neighbors import KNeighborsClassifier

from skmetric import LFDA
from skmetric.lfda import local_fisher_scatters, local_scaling


def _direct_scatters(X, y, k):
    """S^lb and S^lw from the paper's n x n weight matrices (tiny data only)."""
    n = len(X)
    diff = X[:, None, :] - X[None, :, :]
    D = np.sum(diff**2, axis=-1)
    sigma = np.empty(n)
    for i in range(n):
        same = D[i, y == y[i]]
        sigma[i] = np.sqrt(np.sort(same)[min(k, same.size - 1)])
    A = np.exp(-D / np.outer(sigma, sigma))
    same = y[:, None] == y[None, :]
    n_c = np.array([np.sum(y == c) for c in y])[:, None]
    W_lw = np.where(same, A / n_c, 0.0)
    W_lb = np.where(same, A * (1.0 / n - 1.0 / n_c), 1.0 / n)

    def scatter(W):
        return 0.5 * np.einsum("ij,ijk,ijl->kl", W, diff, diff)

    return scatter(W_lb), scatter(W_lw)


def _multimodal_problem(n=240, n_noise=4, noise=2.0, seed=0):
    """Sugiyama's multimodal layout: class 0 is two clusters far apart along
    feature 0, class 1 sits between them (shifted along feature 1); plus
    noise features of standard deviation ``noise``."""
    rng = np.random.RandomState(seed)
    mode = rng.randint(0, 4, n)
    centers = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 1.5], [0.0, 1.5]])
    y = mode // 2
    informative = centers[mode] + 0.4 * rng.randn(n, 2)
    return np.hstack([informative, noise * rng.randn(n, n_noise)]), y


def test_local_scaling_is_kth_neighbour_distance():
    rng = np.random.RandomState(0)
    X = rng.randn(12, 3)
    D = np.sqrt(np.sum((X[:, None] - X[None]) ** 2, axis=-1))
    np.testing.assert_allclose(local_scaling(X, 3), np.sort(D, axis=1)[:, 3], atol=1e-7)
    # k is capped at n - 1 (the farthest point).
    np.testing.assert_allclose(local_scaling(X, 50), D.max(axis=1), atol=1e-7)


@pytest.mark.parametrize("working_memory", [1024, 0.001])  # whole matrix / 1-row chunks
def test_scatters_match_direct_computation(working_memory):
    rng = np.random.RandomState(1)
    X, y = rng.randn(25, 3), rng.randint(0, 3, 25)
    with config_context(working_memory=working_memory):
        S_lb, S_lw = local_fisher_scatters(X, y, k=3)
    ref_lb, ref_lw = _direct_scatters(X, y, k=3)
    np.testing.assert_allclose(S_lb, ref_lb, atol=1e-10)
    np.testing.assert_allclose(S_lw, ref_lw, atol=1e-10)


def test_plain_embedding_solves_generalised_eigenproblem():
    X, y = _multimodal_problem(n=80)
    lfda = LFDA(n_components=3, embedding_type="plain").fit(X, y)
    S_lb, S_lw = _direct_scatters(X, y, k=7)
    T = lfda.components_.T
    np.testing.assert_allclose(T.T @ S_lw @ T, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(T.T @ S_lb @ T, np.diag(lfda.eigenvalues_), atol=1e-6)
    assert np.all(np.diff(lfda.eigenvalues_) <= 0)
    # No direction outside the kept ones has a larger eigenvalue.
    from scipy.linalg import eigh

    assert lfda.eigenvalues_[0] == pytest.approx(eigh(S_lb, S_lw, eigvals_only=True)[-1], rel=1e-6)


def test_embedding_types_relate():
    X, y = _multimodal_problem(n=80)
    plain = LFDA(n_components=2, embedding_type="plain").fit(X, y)
    weighted = LFDA(n_components=2, embedding_type="weighted").fit(X, y)
    ortho = LFDA(n_components=2, embedding_type="orthonormalized").fit(X, y)
    scaled = plain.components_ * np.sqrt(plain.eigenvalues_)[:, None]
    np.testing.assert_allclose(weighted.components_, scaled, rtol=1e-8)
    np.testing.assert_allclose(ortho.components_ @ ortho.components_.T, np.eye(2), atol=1e-10)
    # Same subspace: projecting plain's rows onto ortho's rows loses nothing.
    P = ortho.components_
    np.testing.assert_allclose(plain.components_ @ P.T @ P, plain.components_, atol=1e-8)


def test_improves_knn_on_multimodal_classes():
    X, y = _multimodal_problem(n=300, n_noise=20)
    tr, te = slice(0, 200), slice(200, None)
    knn = KNeighborsClassifier(n_neighbors=3)
    euclid_err = 1 - knn.fit(X[tr], y[tr]).score(X[te], y[te])
    lfda = LFDA(n_components=2).fit(X[tr], y[tr])
    lfda_err = 1 - knn.fit(lfda.transform(X[tr]), y[tr]).score(lfda.transform(X[te]), y[te])
    assert euclid_err > 0.15
    assert lfda_err < euclid_err - 0.1


def test_independent_of_sample_order_and_deterministic():
    X, y = _multimodal_problem(n=80)
    perm = np.random.RandomState(0).permutation(len(X))
    a = LFDA(n_components=2).fit(X, y).components_
    b = LFDA(n_components=2).fit(X[perm], y[perm]).components_
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


def test_constant_feature_gets_zero_weight():
    X, y = _multimodal_problem(n=80)
    X = np.hstack([X, np.full((len(X), 1), -1.0)])
    for kind in ("weighted", "orthonormalized", "plain"):
        lfda = LFDA(embedding_type=kind).fit(X, y)
        assert lfda.components_.shape == (7, 7)
        assert np.all(np.isfinite(lfda.components_))
        np.testing.assert_allclose(lfda.components_[:, -1], 0.0, atol=1e-8)


def test_bad_input_raises():
    X, y = _multimodal_problem(n=40)
    with pytest.raises(ValueError, match="n_components=7 must not exceed"):
        LFDA(n_components=7).fit(X, y)
    with pytest.raises(ValueError, match="embedding_type"):
        LFDA(embedding_type="whitened").fit(X, y)
    with pytest.raises(ValueError, match="'k' parameter"):
        LFDA(k=0).fit(X, y)
    with pytest.raises(ValueError, match="within-class variation"):
        LFDA().fit(X[:4], [0, 1, 2, 3])
