"""MLKR: objective and gradient, numerical stability, blocks, quality, errors."""

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from skmetric import MLKR
from skmetric._mlkr_solver import fit_mlkr, mlkr_loss_grad, mlkr_predict_loo
from skmetric._solver import SolverResult

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _problem(n=40, d=5, k=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)
    L = 0.5 * rng.normal(size=(k, d))
    return X, y, L


def _dense_loss(L, X, y):
    """The objective written out with an n x n kernel matrix (no shift)."""
    Z = X @ L.T
    K = np.exp(-((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(K, 0.0)
    y_hat = K @ y / K.sum(axis=1)
    return np.sum((y - y_hat) ** 2), y_hat


def test_loss_matches_the_dense_formula():
    X, y, L = _problem()
    loss, _ = mlkr_loss_grad(L.ravel(), X, y, 3)
    dense, y_hat = _dense_loss(L, X, y)
    assert loss == pytest.approx(dense, rel=1e-12)
    np.testing.assert_allclose(mlkr_predict_loo(L.ravel(), X, y, 3), y_hat, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 5), (5, 5), (1, 5)])
def test_gradient_matches_finite_differences(shape):
    X, y, _ = _problem()
    L = 0.4 * np.random.RandomState(1).normal(size=shape)
    k = shape[0]
    f = lambda p: mlkr_loss_grad(p, X, y, k)[0]  # noqa: E731
    g = lambda p: mlkr_loss_grad(p, X, y, k)[1]  # noqa: E731
    err = check_grad(f, g, L.ravel(), epsilon=1e-7)
    assert err < 1e-5 * max(1.0, np.linalg.norm(g(L.ravel())))


@pytest.mark.parametrize("block_rows", [1, 7, 40, 1000])
def test_row_blocks_do_not_change_the_result(block_rows):
    X, y, L = _problem()
    loss, grad = mlkr_loss_grad(L.ravel(), X, y, 3)
    loss_b, grad_b = mlkr_loss_grad(L.ravel(), X, y, 3, block_rows=block_rows)
    assert loss_b == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(grad_b, grad, rtol=1e-10, atol=1e-12)


def test_far_apart_points_stay_finite():
    """exp(-d^2) underflows to 0 for every neighbour here: the log-sum-exp shift keeps
    yhat the nearest neighbour's target instead of 0 / 0."""
    X, y, L = _problem()
    L_big = 200.0 * L
    loss, grad = mlkr_loss_grad(L_big.ravel(), X, y, 3)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    with np.errstate(all="ignore"):
        assert not np.isfinite(_dense_loss(L_big, X, y)[0])
    Z = X @ L_big.T
    D = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(mlkr_predict_loo(L_big.ravel(), X, y, 3), y[D.argmin(1)])


def test_fit_lowers_the_loss_and_returns_a_solver_result():
    X, y, L = _problem()
    res = fit_mlkr(X, y, L, max_iter=100)
    assert isinstance(res, SolverResult) and res.converged
    assert res.loss < 0.5 * res.info["loss0"]
    assert res.loss == pytest.approx(mlkr_loss_grad(res.components.ravel(), X, y, 3)[0])
    est = MLKR(n_components=3, init=L, max_iter=100).fit(X, y)
    np.testing.assert_allclose(est.components_, res.components)
    assert (est.loss_, est.n_iter_) == (res.loss, res.n_iter)


def _cv_mse(X, y, learner, n_neighbors, seed=0):
    errors = []
    for train, test in KFold(3, shuffle=True, random_state=seed).split(X):
        scaler = StandardScaler().fit(X[train])
        Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
        if learner is not None:
            fitted = learner.fit(Xtr, y[train])
            Xtr, Xte = fitted.transform(Xtr), fitted.transform(Xte)
        knn = KNeighborsRegressor(n_neighbors=n_neighbors).fit(Xtr, y[train])
        errors.append(np.mean((knn.predict(Xte) - y[test]) ** 2))
    return float(np.mean(errors))


@quiet
def test_beats_euclidean_knn_regression_on_friedman1():
    """Five of ten features matter: MLKR learns to ignore the other five
    (measured: held-out 5-NN MSE 3.7 against 10.1)."""
    X, y = make_friedman1(n_samples=500, noise=1.0, random_state=0)
    euclid = _cv_mse(X, y, None, 5)
    mlkr = _cv_mse(X, y, MLKR(random_state=0), 5)
    assert mlkr < 0.6 * euclid


@quiet
def test_diabetes_fits_and_stays_near_euclidean_knn():
    """On diabetes MLKR's leave-one-out objective overfits (training LOO MSE falls
    from about 3650 to 1700 while held-out kNN MSE rises): it does *not* beat
    Euclidean kNN there (measured 10-NN MSE 3438 vs 3274; metric-learn's MLKR
    3443). This guards the optimisation and a stated margin of 10% (50
    iterations, to keep the test short)."""
    X, y = load_diabetes(return_X_y=True)
    Xs = StandardScaler().fit_transform(X)
    est = MLKR(max_iter=50, random_state=0).fit(Xs, y)
    loss0 = mlkr_loss_grad(np.eye(10).ravel(), Xs, y.astype(float), 10)[0]
    assert est.loss_ < 0.7 * loss0
    euclid = _cv_mse(X, y, None, 10)
    mlkr = _cv_mse(X, y, MLKR(max_iter=50, random_state=0), 10)
    assert mlkr < 1.1 * euclid


def test_learns_to_ignore_irrelevant_features():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 4))
    y = np.sin(2 * X[:, 0]) + 0.05 * rng.normal(size=150)
    L = MLKR(random_state=0).fit(X, y).components_
    weight = np.linalg.norm(L, axis=0)
    assert weight[0] > 3 * weight[1:].max()


@quiet
@pytest.mark.parametrize("init", ["auto", "pca", "identity", "random"])
def test_inits_and_n_components(init):
    X, y, _ = _problem()
    est = MLKR(n_components=2, init=init, max_iter=20, random_state=0).fit(X, y)
    assert est.components_.shape == (2, 5)
    assert est.transform(X).shape == (40, 2)
    assert np.isfinite(est.loss_)


def test_verbose_and_convergence_warning(capsys):
    X, y, _ = _problem()
    with pytest.warns(ConvergenceWarning, match=r"^MLKR did not converge: max_iter=2"):
        est = MLKR(max_iter=2, tol=0, verbose=1).fit(X, y)
    assert est.n_iter_ == 2 and not est.converged_
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("[MLKR] iter") for line in lines) == 2
    assert lines[-1].startswith("[MLKR] done: 2 iterations")


@quiet
def test_input_is_not_modified():
    X, y, _ = _problem()
    X_orig, y_orig = X.copy(), y.copy()
    est = MLKR(max_iter=10).fit(X, y)
    est.transform(X)
    np.testing.assert_array_equal(X, X_orig)
    np.testing.assert_array_equal(y, y_orig)


@quiet
def test_float32_and_integer_targets():
    X, y, _ = _problem()
    est = MLKR(max_iter=10).fit(X.astype(np.float32), np.round(3 * y).astype(int))
    assert est.transform(X.astype(np.float32)).dtype == np.float32


def test_bad_input_raises_clear_errors():
    X, y, _ = _problem()
    with pytest.raises(ValueError, match="non-constant target"):
        MLKR().fit(X, np.ones(len(y)))
    with pytest.raises(ValueError, match=r"real-valued \(regression\) targets"):
        MLKR().fit(X, np.array(["a", "b"] * 20))
    with pytest.raises(ValueError, match="at least 2 samples, got 1 sample"):
        MLKR().fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="n_components=7 must not exceed"):
        MLKR(n_components=7).fit(X, y)
    with pytest.raises(ValueError, match="init"):
        MLKR(init="lda").fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(n_components, 5\)"):
        MLKR(init=np.eye(3)).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        MLKR().fit(X, np.where(np.arange(len(y)) == 3, np.nan, y))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MLKR().fit(X, y[:-1])
