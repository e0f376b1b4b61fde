"""MCML: objective/gradient, numerical stability, the PSD solver, the estimator."""

import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric._mcml_objective import default_chunk_size, mcml_loss, mcml_loss_grad
from skmetric._mcml_solver import fit_mcml
from skmetric._projected_gradient import minimize_psd_projected_gradient
from skmetric._psd import components_from_metric, psd_project
from skmetric._solver import SolverResult
from skmetric.mcml import MCML


def _toy(n=24, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) + 3.0
    y = rng.randint(0, 3, size=n)
    y[0] = 7  # a class with one member: no target distribution for it
    A = rng.normal(size=(d, d))
    return X, y, A @ A.T / d


def _dense_kl(M, X, y):
    """Reference: mean KL[p0 || p_M] with explicit n x n matrices."""
    diff = X[:, None, :] - X[None, :, :]
    D = np.einsum("ijk,kl,ijl->ij", diff, M, diff)
    np.fill_diagonal(D, np.inf)
    logits = -D - (-D).max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    same = y[:, None] == y[None, :]
    np.fill_diagonal(same, False)
    n_same = same.sum(axis=1)
    rows = []
    for i in np.flatnonzero(n_same):
        p0 = 1.0 / n_same[i]
        rows.append(np.sum(p0 * (np.log(p0) - logp[i, same[i]])))
    return float(np.mean(rows))


def test_loss_matches_dense_reference_for_any_chunk_size():
    X, y, M = _toy()
    ref = _dense_kl(M, X, y)
    for chunk in (1, 5, 24, None):
        loss, _ = mcml_loss_grad(M, X, y, chunk_size=chunk)
        assert loss == pytest.approx(ref, rel=1e-10)
        assert mcml_loss(M, X, y, chunk_size=chunk) == pytest.approx(ref, rel=1e-10)
    assert ref > 0


@pytest.mark.parametrize("chunk", [4, None])
def test_gradient_matches_finite_differences(chunk):
    X, y, M = _toy()
    d = M.shape[0]

    def f(m):
        return mcml_loss_grad(m.reshape(d, d), X, y, chunk)[0]

    def g(m):
        return mcml_loss_grad(m.reshape(d, d), X, y, chunk)[1].ravel()

    grad = g(M.ravel())
    assert np.linalg.norm(grad) > 1e-3  # a non-trivial point
    err = check_grad(f, g, M.ravel(), epsilon=1e-6)
    assert err < 1e-5 * np.linalg.norm(grad) + 1e-7
    G = grad.reshape(d, d)
    np.testing.assert_array_equal(G, G.T)


def test_no_overflow_or_nan_with_huge_distances():
    X, y, M = _toy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = mcml_loss_grad(1e6 * M, 1e3 * X, y)
    assert np.isfinite(loss) and loss > 1e6
    assert np.all(np.isfinite(grad))
    # The whole fit stays finite too.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MCML(max_iter=5).fit(1e4 * X, y)
    assert np.all(np.isfinite(est.components_))


def test_single_member_classes_are_left_out():
    X = np.arange(6, dtype=float).reshape(3, 2)
    loss, grad = mcml_loss_grad(np.eye(2), X, np.array([0, 1, 2]))
    assert loss == 0.0 and not np.any(grad)


def test_default_chunk_bounds_memory():
    assert default_chunk_size(10) == 10
    assert default_chunk_size(100_000) * 100_000 <= 2**20 + 100_000
    assert default_chunk_size(10**7) == 1


def test_psd_solver_reaches_the_projection():
    """min ||M - C||^2 / 2 over PSD M is the PSD projection of C."""
    rng = np.random.RandomState(0)
    B = rng.normal(size=(5, 5))
    C = (B + B.T) / 2.0  # indefinite

    def fun(M):
        return 0.5 * np.sum((M - C) ** 2), M - C

    res = minimize_psd_projected_gradient(fun, np.eye(5), max_iter=500, tol=1e-12)
    assert isinstance(res, SolverResult) and res.converged
    M = res.metric
    np.testing.assert_allclose(M, psd_project(C), atol=1e-5)
    np.testing.assert_allclose(res.components.T @ res.components, M, atol=1e-10)
    assert np.linalg.eigvalsh(M).min() > -1e-10
    assert res.n_iter >= 1 and res.loss <= fun(np.eye(5))[0]
    assert res.loss == pytest.approx(fun(M)[0])


def test_fit_mcml_returns_truncated_solver_result():
    X, y = _noisy_blobs()
    full = fit_mcml(X, y, np.eye(X.shape[1]), max_iter=5)
    low = fit_mcml(X, y, np.eye(X.shape[1]), 2, max_iter=5)
    assert isinstance(full, SolverResult) and isinstance(low, SolverResult)
    np.testing.assert_allclose(full.components, components_from_metric(full.metric, strict=False))
    np.testing.assert_allclose(low.components, full.components[:2])
    np.testing.assert_allclose(low.metric, low.components.T @ low.components)
    np.testing.assert_allclose(low.info["full_metric"], full.metric)
    assert low.loss == full.loss == pytest.approx(mcml_loss(full.metric, X, y))
    assert full.n_iter == 5 and not full.converged


def _noisy_blobs(n_per_class=30, n_noise=4, seed=0):
    """Two informative features; high-variance noise features hide them."""
    rng = np.random.RandomState(seed)
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    X_inf = np.vstack([c + 0.4 * rng.normal(size=(n_per_class, 2)) for c in centers])
    X_noise = 3.0 * rng.normal(size=(X_inf.shape[0], n_noise))
    y = np.repeat(np.arange(3), n_per_class)
    return np.hstack([X_inf, X_noise]), y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_decreases_loss_keeps_psd_and_beats_euclidean_knn():
    X, y = _noisy_blobs()
    est = MCML(max_iter=60).fit(X, y)
    M = est.get_mahalanobis_matrix()
    assert np.linalg.eigvalsh(M).min() > -1e-8 * np.abs(M).max()
    assert est.loss_ < mcml_loss(np.eye(X.shape[1]), X, y)
    assert est.loss_ == pytest.approx(mcml_loss(M, X, y), rel=1e-6)
    knn = KNeighborsClassifier(n_neighbors=3)
    err_euclid = 1 - cross_val_score(knn, X, y, cv=3).mean()
    err_mcml = 1 - cross_val_score(make_pipeline(MCML(max_iter=60), knn), X, y, cv=3).mean()
    assert err_mcml < err_euclid


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_n_components_keeps_leading_directions():
    X, y = _noisy_blobs()
    full = MCML(max_iter=20).fit(X, y)
    low = MCML(n_components=2, max_iter=20).fit(X, y)
    assert low.components_.shape == (2, X.shape[1])
    np.testing.assert_allclose(low.components_, full.components_[:2])
    assert low.transform(X).shape == (X.shape[0], 2)


def test_convergence_flags_and_warning():
    X, y = _noisy_blobs()
    with pytest.warns(ConvergenceWarning, match="max_iter=1 steps reached"):
        est = MCML(max_iter=1).fit(X, y)
    assert est.n_iter_ == 1 and not est.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = MCML(max_iter=500, tol=1e-3).fit(X, y)
    assert est.converged_ and est.n_iter_ < 500


def test_verbose_prints_iterations(capsys):
    X, y = _noisy_blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MCML(max_iter=3, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("[MCML] iter") for line in lines) == 3
    assert "loss" in lines[0] and "step" in lines[0]
    assert lines[-1].startswith("[MCML] done: 3 iterations")


def test_random_state_makes_random_init_reproducible():
    X, y = _noisy_blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MCML(init="random", max_iter=3, random_state=1).fit(X, y)
        b = MCML(init="random", max_iter=3, random_state=1).fit(X, y)
        c = MCML(init="random", max_iter=3, random_state=2).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.allclose(a.components_, c.components_)


def test_init_array_is_used_as_metric():
    X, y = _noisy_blobs()
    M0 = np.diag(np.r_[1.0, 1.0, np.full(X.shape[1] - 2, 0.01)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MCML(init=M0, max_iter=1, step_size=1e-12).fit(X, y)
    np.testing.assert_allclose(est.get_mahalanobis_matrix(), M0, atol=1e-6)


def test_bad_input_raises_clear_errors():
    X, y = _noisy_blobs()
    with pytest.raises(ValueError, match="at least 2 classes"):
        MCML().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="n_components=9 must not exceed"):
        MCML(n_components=9).fit(X, y)
    with pytest.raises(ValueError, match="init array"):
        MCML(init=np.ones((2, 3))).fit(X, y)
    with pytest.raises(ValueError, match="max_iter"):
        MCML(max_iter=0).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        MCML().fit(np.where(X > 5, np.nan, X), y)


def test_wide_data_is_solved_exactly_in_the_data_span():
    # d > n: the reduced problem gives the same metric as the full d x d one.
    from skmetric._mcml_solver import _minimize, fit_mcml

    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 60))
    y = np.repeat(np.arange(3), 10)
    X[y == 1, :5] += 2.0
    full = _minimize(X, y, np.eye(60), 40, 1e-5, None, None, None)
    reduced = fit_mcml(X, y, np.eye(60), max_iter=40)
    np.testing.assert_allclose(reduced.metric, full.metric, atol=1e-9)
    assert reduced.loss == pytest.approx(full.loss, rel=1e-9)
    # A start that couples the span with its complement takes the full path.
    M0 = np.eye(60) + 0.1 * np.ones((60, 60))
    coupled = fit_mcml(X, y, M0, max_iter=5)
    np.testing.assert_allclose(coupled.metric, _minimize(X, y, M0, 5, 1e-5, None, None, None).metric)
