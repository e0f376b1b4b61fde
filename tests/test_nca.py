"""NCA: objective and gradient, agreement with scikit-learn, kNN gain, memory, errors."""

import tracemalloc

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neighbors import NeighborhoodComponentsAnalysis

from skmetric import NCA
from skmetric._init import data_scale, unscale_result
from skmetric._nca_objective import nca_loss_grad
from skmetric._nca_solver import fit_nca
from skmetric._solver import SolverResult

# Short fits on purpose: not converging is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _loss_by_loops(L, X, y):
    """-sum_i p_i straight from the definition (tiny data only)."""
    Z = X @ L.T
    total = 0.0
    for i in range(X.shape[0]):
        e = np.exp(-np.sum((Z[i] - Z) ** 2, axis=1))
        e[i] = 0.0
        total += e[y == y[i]].sum() / e.sum()
    return -total


def _noisy_problem(n=150, n_noise=6, seed=0):
    """Two informative features (3 classes) drowned by high-variance noise features."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, n)
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 2.0]])
    informative = centers[y] + 0.3 * rng.randn(n, 2)
    noise = 3.0 * rng.randn(n, n_noise)
    return np.hstack([informative, noise]), y


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_gradient_matches_finite_differences(chunk_rows):
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 5), rng.randint(0, 3, 30)
    L = 0.5 * rng.randn(2, 5)

    def f(p):
        return nca_loss_grad(p, X, y, 2, chunk_rows)[0]

    def g(p):
        return nca_loss_grad(p, X, y, 2, chunk_rows)[1]

    err = check_grad(f, g, L.ravel())
    assert err < 1e-5 * max(1.0, np.linalg.norm(g(L.ravel())))


def test_loss_matches_definition_and_chunking():
    rng = np.random.RandomState(1)
    X, y = rng.randn(20, 3), rng.randint(0, 2, 20)
    L = rng.randn(3, 3)
    full = nca_loss_grad(L.ravel(), X, y, 3)
    chunked = nca_loss_grad(L.ravel(), X, y, 3, chunk_rows=3)
    assert full[0] == pytest.approx(_loss_by_loops(L, X, y), rel=1e-10)
    assert chunked[0] == pytest.approx(full[0], rel=1e-12)
    np.testing.assert_allclose(chunked[1], full[1], rtol=1e-10, atol=1e-12)


def test_loss_stable_for_far_apart_points():
    # exp(-d) underflows for every neighbour unless the softmax is stabilised.
    X = np.array([[0.0], [100.0], [201.0], [303.0]])
    y = np.array([0, 0, 1, 1])
    loss, grad = nca_loss_grad(np.array([1.0]), X, y, 1)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # Squared distances are huge, so each point picks its nearest neighbour:
    # 0 -> 1, 1 -> 0, 3 -> 2 are correct; 2 -> 1 (101 < 102) is not.
    assert loss == pytest.approx(-3.0, abs=1e-6)


def test_agrees_with_scikit_learn_nca():
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 4), rng.randint(0, 3, 60)
    ours = NCA(init="identity", max_iter=30, tol=1e-5).fit(X, y)
    ref = NeighborhoodComponentsAnalysis(init="identity", max_iter=30, tol=1e-5).fit(X, y)
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-5)


def test_improves_knn_on_noisy_features():
    X, y = _noisy_problem(n=240)
    tr, te = slice(0, 160), slice(160, None)
    knn = KNeighborsClassifier(n_neighbors=3)
    euclid_err = 1 - knn.fit(X[tr], y[tr]).score(X[te], y[te])
    nca = NCA(n_components=2, max_iter=50, random_state=0).fit(X[tr], y[tr])
    nca_err = 1 - knn.fit(nca.transform(X[tr]), y[tr]).score(nca.transform(X[te]), y[te])
    assert euclid_err > 0.2
    assert nca_err < euclid_err - 0.1
    # The expected leave-one-out accuracy improved on the initial map.
    L0 = np.linalg.svd(X[tr] - X[tr].mean(0), full_matrices=False)[2][:2]
    # loss_ is the minimised -sum_i p_i.
    assert nca.loss_ < nca_loss_grad(L0.ravel(), X[tr], y[tr], 2)[0]
    assert nca.loss_ == pytest.approx(nca_loss_grad(nca.components_.ravel(), X[tr], y[tr], 2)[0])


def test_memory_stays_quadratic_at_1000_by_120():
    # metric-learn's NCA formed n^2 d^2 outer products (>12 h on 1021 x 122);
    # one objective evaluation here stays within a few n x n arrays.
    rng = np.random.RandomState(0)
    X, y = rng.randn(1000, 120), rng.randint(0, 5, 1000)
    L = 0.05 * np.eye(120)
    tracemalloc.start()
    try:
        loss, grad = nca_loss_grad(L.ravel(), X, y, 120, chunk_rows=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.isfinite(loss) and grad.shape == (120 * 120,)
    assert peak < 16 * 2**20  # one n^2 d^2 array alone would be ~115 GB


def test_metric_api_derives_from_components():
    X, y = _noisy_problem(n=60)
    nca = NCA(n_components=3, max_iter=5, random_state=0).fit(X, y)
    pairs = np.stack([X[:10], X[10:20]], axis=1)
    Z = nca.transform(X)
    expected = np.linalg.norm(Z[:10] - Z[10:20], axis=1)
    np.testing.assert_allclose(nca.pair_distance(pairs), expected, rtol=1e-10)
    metric = nca.get_metric()
    assert metric(X[0], X[10]) == pytest.approx(expected[0])
    assert nca.get_mahalanobis_matrix().shape == (X.shape[1], X.shape[1])


def test_random_state_reproducible():
    X, y = _noisy_problem(n=60)
    a = NCA(init="random", max_iter=5, random_state=3).fit(X, y).components_
    b = NCA(init="random", max_iter=5, random_state=3).fit(X, y).components_
    c = NCA(init="random", max_iter=5, random_state=4).fit(X, y).components_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_verbose_prints_iterations(capsys):
    X, y = _noisy_problem(n=40)
    NCA(max_iter=3, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    iters = [line for line in lines if line.startswith("[NCA] iter")]
    assert len(iters) == 3 and "loss" in iters[0]
    assert lines[-1].startswith("[NCA] done: 3 iterations")


def test_silent_by_default(capsys):
    X, y = _noisy_problem(n=40)
    NCA(max_iter=3).fit(X, y)
    assert capsys.readouterr().out == ""


def test_solver_returns_solver_result():
    X, y = _noisy_problem(n=40)
    L0 = np.eye(2, X.shape[1])
    res = fit_nca(X, y, L0, max_iter=5)
    assert isinstance(res, SolverResult)
    assert res.components.shape == (2, X.shape[1]) and res.metric is None
    assert 1 <= res.n_iter <= 5
    assert res.loss == pytest.approx(nca_loss_grad(res.components.ravel(), X, y, 2)[0])
    # The estimator stores exactly the solver's result on X / s, mapped back
    # (s: the data's scale, a power of two; L0 is in the units of X).
    s = data_scale(X)
    res = unscale_result(fit_nca(X / s, y, L0 * s, max_iter=5), s)
    nca = NCA(n_components=2, init=L0, max_iter=5).fit(X, y)
    np.testing.assert_array_equal(nca.components_, res.components)
    assert (nca.loss_, nca.n_iter_, nca.converged_) == (res.loss, res.n_iter, res.converged)


def test_bad_parameters_raise():
    X, y = _noisy_problem(n=30)
    with pytest.raises(ValueError, match="n_components=9 must not exceed"):
        NCA(n_components=9).fit(X, y)
    with pytest.raises(ValueError, match="init array must have shape"):
        NCA(init=np.eye(3)).fit(X, y)
    with pytest.raises(ValueError, match="max_iter"):
        NCA(max_iter=0).fit(X, y)
    with pytest.raises(ValueError, match="init"):
        NCA(init="spectral").fit(X, y)


def test_warns_when_max_iter_reached():
    X, y = _noisy_problem(n=40)
    with pytest.warns(ConvergenceWarning, match="max_iter=1 iterations reached"):
        nca = NCA(max_iter=1).fit(X, y)
    assert nca.n_iter_ == 1 and nca.converged_ is False
