"""LSML (Liu et al., ICDM 2012): objective and gradient, solver, prior, weights,
quadruplet and label forms, quality on held-out data."""

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_iris, load_wine
from sklearn.preprocessing import StandardScaler

from skmetric import LSML, LSMLQuadruplets
from skmetric._lsml_solver import LSMLProblem, fit_lsml, lsml_loss_grad
from skmetric._solver import SolverResult
from skmetric.constraints import pairs_from_indices, sample_quadruplets

from ._quality import euclidean_tuple_accuracy, held_out_split, knn_cv_error


def _problem(n=40, d=4, seed=0):
    rng = np.random.RandomState(seed)
    vab, vcd = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    B = rng.normal(size=(d, d))
    prior = B @ B.T + d * np.eye(d)
    return LSMLProblem(vab, vcd, rng.uniform(0.5, 2.0, n), prior), rng


def _sym(x, d):
    A = np.zeros((d, d))
    A[np.triu_indices(d)] = x
    return A + A.T - np.diag(np.diag(A))


def test_gradient_matches_finite_differences():
    problem, rng = _problem()
    d = 4
    B = rng.normal(size=(d, d))
    M = B @ B.T + np.eye(d)
    iu = np.triu_indices(d)
    assert 0 < np.sum(np.greater(*problem.residuals(M))) < 40  # some violated, some not

    def f(x):
        return lsml_loss_grad(_sym(x, d), problem, return_grad=False)

    def g(x):
        G = lsml_loss_grad(_sym(x, d), problem)[1]
        return (2 * G - np.diag(np.diag(G)))[iu]  # d/dx of a symmetric parametrisation

    x0 = M[iu]
    err = check_grad(f, g, x0, epsilon=1e-7)
    assert err < 1e-5 * max(1.0, np.linalg.norm(g(x0)))


def test_loss_is_the_formula():
    problem, _ = _problem(n=6)
    M = np.diag([1.0, 2.0, 0.5, 1.5])
    loss = 0.0
    for vab, vcd, w in zip(problem.vab, problem.vcd, problem.weights):
        r = np.sqrt(vab @ M @ vab) - np.sqrt(vcd @ M @ vcd)
        loss += w * max(r, 0.0) ** 2
    P = np.linalg.inv(problem.prior)
    A = M @ P
    loss += np.trace(A) - np.log(np.linalg.det(A)) - 4
    assert lsml_loss_grad(M, problem, return_grad=False) == pytest.approx(loss, rel=1e-12)
    assert problem.weights.sum() == pytest.approx(1.0)
    # Outside the positive definite cone the loss is infinite.
    assert lsml_loss_grad(-np.eye(4), problem, return_grad=False) == np.inf


def _quadruplets(X, y, n, seed=0):
    return pairs_from_indices(X, sample_quadruplets(y, n, random_state=seed))


def test_solver_decreases_the_loss_and_returns_a_solver_result():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    q = _quadruplets(X, y, 300)
    vab, vcd = q[:, 0] - q[:, 1], q[:, 2] - q[:, 3]
    res = fit_lsml(vab, vcd, np.eye(4), tol=1e-6)
    assert isinstance(res, SolverResult) and res.converged
    problem = LSMLProblem(vab, vcd, np.ones(300), np.eye(4))
    assert res.loss < lsml_loss_grad(np.eye(4), problem, return_grad=False)
    assert res.loss == pytest.approx(lsml_loss_grad(res.metric, problem, return_grad=False))
    np.testing.assert_allclose(res.components.T @ res.components, res.metric, atol=1e-10)
    assert np.linalg.eigvalsh(res.metric).min() > 0
    assert res.info["n_violated"] == np.sum(np.greater(*problem.residuals(res.metric)))
    # Stationary at the end: the projected gradient is small.
    assert np.linalg.norm(lsml_loss_grad(res.metric, problem)[1]) < 1e-4


def test_prior_kept_when_every_quadruplet_holds():
    rng = np.random.RandomState(0)
    a = rng.normal(size=(30, 3))
    q = np.stack([a, a + 0.01 * rng.normal(size=(30, 3)), a, a + 5 + rng.normal(size=(30, 3))], 1)
    B = rng.normal(size=(3, 3))
    M0 = B @ B.T + np.eye(3)
    est = LSMLQuadruplets(prior=M0).fit(q)
    np.testing.assert_allclose(est.get_mahalanobis_matrix(), M0, atol=1e-10)
    assert est.converged_ and est.n_iter_ == 1 and est.loss_ == pytest.approx(0.0, abs=1e-10)


def test_weights_are_normalised_and_zero_weight_drops_a_quadruplet():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    q = _quadruplets(X, y, 200)
    w = np.random.RandomState(0).uniform(0.5, 2.0, 200)
    a = LSMLQuadruplets(tol=1e-8).fit(q, weights=w)
    b = LSMLQuadruplets(tol=1e-8).fit(q, weights=10 * w)
    np.testing.assert_allclose(a.get_mahalanobis_matrix(), b.get_mahalanobis_matrix(), atol=1e-8)
    w0 = w.copy()
    w0[:50] = 0.0
    c = LSMLQuadruplets(tol=1e-8).fit(q, weights=w0)
    d = LSMLQuadruplets(tol=1e-8).fit(q[50:], weights=w[50:])
    np.testing.assert_allclose(c.get_mahalanobis_matrix(), d.get_mahalanobis_matrix(), atol=1e-6)
    with pytest.raises(ValueError, match=r"weights must have shape \(200,\)"):
        LSMLQuadruplets().fit(q, weights=w[:10])
    with pytest.raises(ValueError, match="non-negative"):
        LSMLQuadruplets().fit(q, weights=-w)


def test_prior_options_and_errors():
    X, y = load_iris(return_X_y=True)
    est = LSML(prior="covariance", max_iter=1, tol=1e9, random_state=0).fit(X, y)
    np.testing.assert_allclose(
        est.get_mahalanobis_matrix(), np.linalg.inv(np.cov(X, rowvar=False)), rtol=1e-8
    )
    with pytest.raises(ValueError, match="positive definite prior"):
        LSML(prior=np.diag([1.0, 1.0, 0.0, 1.0]), random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="positive definite prior"):
        LSML(prior="lda", random_state=0).fit(X, y)  # rank 2 of 4
    with pytest.raises(ValueError, match="prior"):
        LSML(prior="nope").fit(X, y)


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_knn_no_worse_than_euclidean(loader):
    """3-NN error on 3 stratified folds, standardised: at most Euclidean's + 2 points."""
    assert knn_cv_error(loader, LSML(random_state=0)) <= knn_cv_error(loader) + 0.02


def test_held_out_quadruplet_accuracy():
    X_train, y_train, X_test, y_test = held_out_split(load_wine)
    q_train = _quadruplets(X_train, y_train, 500, seed=0)
    q_test = _quadruplets(X_test, y_test, 500, seed=1)
    score = LSMLQuadruplets().fit(q_train).score(q_test)
    assert score > 0.8 and score >= euclidean_tuple_accuracy(q_test)
