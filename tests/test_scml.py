"""SCML (Shi, Bellet & Sha, AAAI 2014): objective and gradient, bases, sparsity,
triplet and label forms, quality on held-out data."""

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_iris, load_wine
from sklearn.preprocessing import StandardScaler

import skmetric._scml_solver as scml_solver
from skmetric import SCML, SCMLTriplets
from skmetric._scml_solver import (
    SCMLProblem,
    bases_from_local_lda,
    bases_from_triplet_diffs,
    fit_scml,
    metric_from_bases,
    scml_objective,
    scml_smoothed_loss_grad,
)
from skmetric._solver import SolverResult
from skmetric._validation import index_points
from skmetric.constraints import pairs_from_indices, sample_triplets

from ._quality import euclidean_tuple_accuracy, held_out_split, knn_cv_error


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _problem(seed=0):
    X, y = _iris()
    T = sample_triplets(X, y, 2, 4)
    B = bases_from_local_lda(X, y, 30, random_state=seed)
    return X, y, T, B, SCMLProblem(X @ B.T, T)


def test_objective_is_the_formula_and_smoothing_is_close():
    X, _, T, B, problem = _problem()
    w = np.random.RandomState(0).uniform(0, 0.3, B.shape[0])
    M = B.T @ np.diag(w) @ B
    d = lambda u, v: np.einsum("ij,jk,ik->i", u - v, M, u - v)  # noqa: E731
    m = 1 + d(X[T[:, 0]], X[T[:, 1]]) - d(X[T[:, 0]], X[T[:, 2]])
    expected = np.maximum(m, 0).mean() + 1e-3 * w.sum()
    loss, n_active = scml_objective(w, problem, 1e-3)
    assert loss == pytest.approx(expected, rel=1e-10)
    assert n_active == np.sum(m > 0)
    smooth = scml_smoothed_loss_grad(w, problem, 1e-3, 0.1)[0]
    assert expected - 0.05 - 1e-12 <= smooth <= expected


def test_smoothed_gradient_matches_finite_differences():
    _, _, _, B, problem = _problem()
    w = np.random.RandomState(1).uniform(0.01, 0.3, B.shape[0])

    def f(x):
        return scml_smoothed_loss_grad(x, problem, 1e-3, 0.1)[0]

    def g(x):
        return scml_smoothed_loss_grad(x, problem, 1e-3, 0.1)[1]

    assert check_grad(f, g, w, epsilon=1e-7) < 1e-5 * max(1.0, np.linalg.norm(g(w)))


def test_blockwise_evaluation_matches_in_memory(monkeypatch):
    X, _, T, B, problem = _problem()
    w = np.random.RandomState(2).uniform(0, 0.3, B.shape[0])
    monkeypatch.setattr(scml_solver, "_BLOCK", 7 * B.shape[0])
    monkeypatch.setattr(scml_solver, "_IN_MEMORY", 0)
    blocked = SCMLProblem(X @ B.T, T)
    assert blocked._P is None and problem._P is not None
    np.testing.assert_allclose(blocked.margins(w), problem.margins(w))
    c = np.random.RandomState(3).rand(T.shape[0])
    np.testing.assert_allclose(blocked.pull_back(c), problem.pull_back(c))


def test_solver_result_and_sparsity():
    X, _, T, B, _ = _problem()
    res = fit_scml(X @ B.T, T, B, beta=1e-5)
    assert isinstance(res, SolverResult) and res.converged
    w = res.info["weights"]
    assert np.all(w >= 0) and res.info["n_active_bases"] < B.shape[0]
    M, L = metric_from_bases(B, w)
    np.testing.assert_allclose(M, B.T @ np.diag(w) @ B, atol=1e-12)
    np.testing.assert_allclose(res.components.T @ res.components, M, atol=1e-10)
    assert res.loss < 1.0  # the objective at w = 0
    sparse = fit_scml(X @ B.T, T, B, beta=0.05)
    assert 0 < sparse.info["n_active_bases"] < res.info["n_active_bases"]
    empty = fit_scml(X @ B.T, T, B, beta=100.0)
    assert empty.info["n_active_bases"] == 0 and np.all(empty.metric == 0)


def test_triplet_diff_bases():
    X, y = _iris()
    T = sample_triplets(X, y)
    B = bases_from_triplet_diffs(X, T, n_basis=25, random_state=0)
    assert B.shape == (25, 4)
    np.testing.assert_allclose(np.linalg.norm(B, axis=1), 1.0)
    lead = np.abs(B).argmax(axis=1)
    assert np.all(B[np.arange(25), lead] > 0)  # canonical sign
    # Few distinct directions: they are the bases themselves.
    X2 = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    B2 = bases_from_triplet_diffs(X2, np.array([[0, 1, 2], [0, 3, 2]]), n_basis=10)
    np.testing.assert_allclose(B2, [[0.0, 1.0], [1.0, 0.0]])


def test_local_lda_bases_find_the_discriminant_direction():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3)) * [0.3, 3.0, 3.0]
    y = (rng.rand(200) < 0.5).astype(int)
    X[:, 0] += 2.0 * y  # only feature 0 separates the classes
    B = bases_from_local_lda(X, y, n_basis=10, random_state=0)
    assert B.shape == (10, 3)
    np.testing.assert_allclose(np.linalg.norm(B, axis=1), 1.0)
    assert np.median(np.abs(B[:, 0])) > 0.9


def test_basis_options_and_errors():
    X, y = _iris()
    est = SCML(basis="triplet_diffs", n_basis=12, random_state=0).fit(X, y)
    assert est.bases_.shape == (12, 4) and est.weights_.shape == (12,)
    B = np.eye(4)
    est = SCML(basis=B).fit(X, y)
    np.testing.assert_allclose(est.get_mahalanobis_matrix(), np.diag(est.weights_), atol=1e-12)
    with pytest.raises(ValueError, match=r"basis array must have shape \(n_basis, 4\)"):
        SCML(basis=np.eye(3)).fit(X, y)
    with pytest.raises(ValueError, match="basis"):
        SCMLTriplets(basis="lda").fit(pairs_from_indices(X, sample_triplets(X, y)))


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_knn_no_worse_than_euclidean(loader):
    """3-NN error on 3 stratified folds, standardised: at most Euclidean's + 2 points."""
    assert knn_cv_error(loader, SCML(random_state=0)) <= knn_cv_error(loader) + 0.02


def test_held_out_triplet_accuracy():
    X_train, y_train, X_test, y_test = held_out_split(load_wine)
    t_train = pairs_from_indices(X_train, sample_triplets(X_train, y_train))
    t_test = pairs_from_indices(X_test, sample_triplets(X_test, y_test))
    score = SCMLTriplets(random_state=0).fit(t_train).score(t_test)
    assert score > 0.8 and score >= euclidean_tuple_accuracy(t_test)


def test_index_points_recovers_the_tuples():
    rng = np.random.RandomState(0)
    P = rng.normal(size=(30, 3))
    t = P[rng.randint(30, size=(200, 3))]
    points, index = index_points(t)
    np.testing.assert_array_equal(points[index], t)
    assert points.shape[0] == np.unique(t.reshape(-1, 3), axis=0).shape[0]


def test_working_set_solves_the_full_problem():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    T = sample_triplets(X, y)
    B = bases_from_local_lda(X, y, 60, random_state=0)
    whole = fit_scml(X @ B.T, T, B, working_set=T.shape[0], tol=1e-8)
    parts = fit_scml(X @ B.T, T, B, working_set=500, tol=1e-8)
    assert parts.converged and whole.converged
    assert 500 < parts.info["working_set"] < T.shape[0]
    # Same optimum (the smoothed problem is convex): the exact objectives agree.
    assert parts.loss == pytest.approx(whole.loss, rel=1e-3, abs=1e-6)
    m = SCMLProblem(X @ B.T, T).margins(parts.info["weights"])
    assert parts.info["n_violated"] == np.sum(m > 0)
