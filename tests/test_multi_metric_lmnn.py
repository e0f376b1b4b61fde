"""Tests for MultiMetricLMNN (one metric per class or cluster) and its solver."""

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from skmetric import LMNN, MultiMetricLMNN
from skmetric._multi_metric_lmnn_solver import (
    MultiMetricData,
    PartitionedMaps,
    fit_multi_metric_lmnn,
    local_impostors,
    local_targets,
    multi_metric_loss_grad,
)
from skmetric._solver import SolverResult
from skmetric.datasets import make_elongated_classes

# Short fits in these tests stop on max_iter by design.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(n_per_class=10, n_features=4, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=2.0, size=(n_classes, n_features))
    X = np.vstack([c + 2.0 * rng.normal(size=(n_per_class, n_features)) for c in centers])
    return X, np.repeat(np.arange(n_classes), n_per_class)


def _brute_loss(maps, X, y, part, targets, mu, push_loss):
    """The objective written out triplet by triplet (the definition)."""
    from skmetric._lmnn_solver import push_loss_value_deriv

    def d(i, j):
        v = maps[part[j]] @ (X[i] - X[j])
        return v @ v

    loss = 0.0
    for i in range(X.shape[0]):
        for j in targets[i][targets[i] >= 0]:
            loss += (1 - mu) * d(i, j)
            for l in np.flatnonzero(y != y[i]):
                loss += mu * push_loss_value_deriv(np.array(1 + d(i, j) - d(i, l)), push_loss)[0]
    return float(loss)


def _problem(push_loss, n_components=None, seed=0, n_partitions=3):
    X, y = _blobs(seed=seed)
    rng = np.random.RandomState(seed)
    part = rng.randint(n_partitions, size=y.size)
    r = n_components or X.shape[1]
    maps = rng.normal(size=(n_partitions, r, X.shape[1]))
    targets = local_targets(X, y, PartitionedMaps(X, part, maps), 3)
    # every differently labelled pair: the gradient is exact everywhere
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    data = MultiMetricData(X, part, n_partitions, targets, ii, ll, 0.4, push_loss)
    return X, y, part, maps, targets, data


@pytest.mark.parametrize("push_loss", ["smooth_hinge", "hinge", "squared_hinge"])
@pytest.mark.parametrize("n_components", [None, 2])
def test_gradient_matches_finite_differences(push_loss, n_components):
    X, y, part, maps, targets, data = _problem(push_loss, n_components)
    r = maps.shape[1]
    f = lambda p: multi_metric_loss_grad(p, data, r)[0]  # noqa: E731
    g = lambda p: multi_metric_loss_grad(p, data, r)[1]  # noqa: E731
    err = check_grad(f, g, maps.ravel(), epsilon=1e-6)
    assert err < 1e-4 * max(1.0, np.linalg.norm(g(maps.ravel())))


def test_regularization_term_and_gradient():
    X, y, part, maps, targets, data = _problem("smooth_hinge")
    anchor = np.random.RandomState(5).normal(size=maps.shape)
    reg = MultiMetricData(X, part, 3, targets, data.imp_i, data.imp_l, 0.4, "smooth_hinge",
                          regularization=0.7, anchor=anchor)
    r = maps.shape[1]
    loss0, grad0 = multi_metric_loss_grad(maps.ravel(), data, r)
    loss, grad = multi_metric_loss_grad(maps.ravel(), reg, r)
    assert loss == pytest.approx(loss0 + 0.7 * np.sum((maps - anchor) ** 2), rel=1e-12)
    np.testing.assert_allclose(grad, grad0 + 1.4 * (maps - anchor).ravel(), rtol=1e-12)
    f = lambda p: multi_metric_loss_grad(p, reg, r)[0]  # noqa: E731
    g = lambda p: multi_metric_loss_grad(p, reg, r)[1]  # noqa: E731
    assert check_grad(f, g, maps.ravel(), epsilon=1e-6) < 1e-4 * np.linalg.norm(grad)


def test_strong_regularization_keeps_the_global_lmnn_maps():
    X, y = load_iris(return_X_y=True)
    clf = MultiMetricLMNN(regularization=1e6, random_state=0).fit(X, y)
    for L in clf.components_:
        np.testing.assert_allclose(L, clf.lmnn_.components_, atol=1e-3)


@pytest.mark.parametrize("push_loss", ["smooth_hinge", "hinge"])
def test_loss_is_the_per_point_metric_objective(push_loss):
    X, y, part, maps, targets, data = _problem(push_loss)
    loss, _ = multi_metric_loss_grad(maps.ravel(), data, maps.shape[1])
    assert loss == pytest.approx(_brute_loss(maps, X, y, part, targets, 0.4, push_loss),
                                 rel=1e-10)


def test_one_partition_has_the_single_metric_gradient():
    # With every point in one partition, the gradient is LMNN's 2 L G.
    X, y = _blobs()
    rng = np.random.RandomState(1)
    L = rng.normal(size=(4, 4))
    part = np.zeros(y.size, dtype=int)
    targets = local_targets(X, y, PartitionedMaps(X, part, L[None]), 2)
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    data = MultiMetricData(X, part, 1, targets, ii, ll, 0.5, "squared_hinge")
    _, g = multi_metric_loss_grad(L.ravel(), data, 4)
    Z = X @ L.T
    d_t = np.array([[np.sum((Z[i] - Z[j]) ** 2) for j in targets[i]] for i in range(y.size)])
    G = np.zeros((4, 4))
    for i in range(y.size):
        for a, j in enumerate(targets[i]):
            G += 0.5 * np.outer(X[i] - X[j], X[i] - X[j])
            for l in np.flatnonzero(y != y[i]):
                m = 1 + d_t[i, a] - np.sum((Z[i] - Z[l]) ** 2)
                if m > 0:
                    G += 0.5 * 2 * m * (np.outer(X[i] - X[j], X[i] - X[j])
                                        - np.outer(X[i] - X[l], X[i] - X[l]))
    np.testing.assert_allclose(g.reshape(4, 4), 2 * L @ G, rtol=1e-9, atol=1e-9)


def test_distances_targets_and_impostors_match_brute_force():
    X, y = _blobs(n_per_class=9)
    rng = np.random.RandomState(2)
    part = rng.randint(2, size=y.size)
    maps = rng.normal(size=(2, 3, 4))
    view = PartitionedMaps(X, part, maps)
    Xq = rng.normal(size=(5, 4))
    brute = np.array([[np.sum((maps[part[j]] @ (q - X[j])) ** 2) for j in range(y.size)]
                      for q in Xq])
    np.testing.assert_allclose(view.distances(Xq), brute, rtol=1e-10)
    cols = np.array([7, 3, 20])
    np.testing.assert_allclose(view.distances(Xq, cols), brute[:, cols], rtol=1e-10)

    full = np.array([[np.sum((maps[part[j]] @ (a - X[j])) ** 2) for j in range(y.size)]
                     for a in X])
    targets = local_targets(X, y, view, 2, chunk_size=4)
    for i in range(y.size):
        same = np.flatnonzero((y == y[i]) & (np.arange(y.size) != i))
        expected = same[np.argsort(full[i, same], kind="stable")[:2]]
        np.testing.assert_allclose(full[i, targets[i]], full[i, expected])

    radius = rng.uniform(5, 30, size=y.size)
    imp_i, imp_l, w = local_impostors(X, y, view, radius, chunk_size=5)
    found = set(zip(imp_i.tolist(), imp_l.tolist()))
    expected = {(i, l) for i in range(y.size) for l in range(y.size)
                if y[i] != y[l] and full[i, l] < radius[i]}
    assert found == expected and w is None


def test_impostor_subsampling_reweights():
    X, y = _blobs(n_per_class=20)
    view = PartitionedMaps(X, np.zeros(y.size, int), np.eye(4)[None])
    radius = np.full(y.size, 1e6)  # every pair
    imp_i, _, w = local_impostors(X, y, view, radius, max_impostors=300,
                                  rng=np.random.default_rng(0))
    assert imp_i.size <= 300 + 3
    assert w.sum() == pytest.approx(60 * 40, rel=0.05)


def test_solver_returns_a_solver_result():
    X, y = _blobs()
    part = y.copy()
    maps0 = np.repeat(np.eye(4)[None], 3, axis=0)
    targets = local_targets(X, y, PartitionedMaps(X, part, maps0), 3)
    result = fit_multi_metric_lmnn(X, y, part, maps0, targets, max_iter=200)
    assert isinstance(result, SolverResult)
    assert result.components.shape == (12, 4)
    assert result.info["maps"].shape == (3, 4, 4)
    assert result.converged and result.n_iter > 0


def test_fit_attributes_and_kneighbors():
    X, y = load_iris(return_X_y=True)
    clf = MultiMetricLMNN(random_state=0).fit(X, y)
    assert clf.components_.shape == (3, 4, 4)
    assert clf.n_partitions_ == 3 and np.array_equal(clf.partition_, y)
    assert isinstance(clf.lmnn_, LMNN) and clf.kmeans_ is None
    assert clf.target_neighbors_.shape == (150, 3)
    assert clf.get_mahalanobis_matrices().shape == (3, 4, 4)
    # the start is the global LMNN optimum: the joint fit can only improve it
    assert clf.loss_ <= clf.lmnn_.loss_ * (1 + 1e-6)
    dist, ind = clf.kneighbors(X[:7], n_neighbors=5)
    brute = np.array([[np.sum((clf.components_[y[j]] @ (q - X[j])) ** 2)
                       for j in range(150)] for q in X[:7]])
    np.testing.assert_allclose(dist ** 2, np.sort(brute, axis=1)[:, :5], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(brute[np.arange(7)[:, None], ind], dist ** 2, rtol=1e-8,
                               atol=1e-8)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X, y) > 0.95


def test_predictions_do_not_depend_on_chunk_size():
    X, y = load_iris(return_X_y=True)
    a = MultiMetricLMNN(init="identity", max_iter=50, random_state=0).fit(X, y)
    b = MultiMetricLMNN(init="identity", max_iter=50, random_state=0, chunk_size=7).fit(X, y)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(a.kneighbors(X, return_distance=False),
                                  b.kneighbors(X, return_distance=False))


def test_kmeans_partition():
    X, y = load_iris(return_X_y=True)
    clf = MultiMetricLMNN(partition="kmeans", n_clusters=4, init="pca",
                          random_state=0).fit(X, y)
    assert clf.components_.shape == (4, 4, 4)
    assert clf.kmeans_ is not None and clf.lmnn_ is None
    assert set(np.unique(clf.partition_)) <= set(range(4))
    assert clf.score(X, y) > 0.9


def test_init_arrays():
    X, y = load_iris(return_X_y=True)
    per_class = np.stack([np.eye(4), 2 * np.eye(4), 0.5 * np.eye(4)])[:, :2]
    clf = MultiMetricLMNN(n_components=2, init=per_class, max_iter=5).fit(X, y)
    assert clf.components_.shape == (3, 2, 4)
    with pytest.raises(ValueError, match=r"shape \(n_partitions, n_components, n_features\)"):
        MultiMetricLMNN(init=per_class[:2]).fit(X, y)


def test_local_metrics_beat_a_single_metric_on_elongated_classes():
    # Each class is elongated in its own random 3-D subspace of R^8, all
    # centred at the origin: no single metric fits all three shapes.
    # (measured: 0.087 single, 0.027 multi; 150 test points)
    X, y = make_elongated_classes(n_samples=300, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, stratify=y,
                                              random_state=0)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    single = LMNN(random_state=0).fit(X_tr, y_tr)
    knn = KNeighborsClassifier(3).fit(single.transform(X_tr), y_tr)
    err_single = 1 - knn.score(single.transform(X_te), y_te)
    multi = MultiMetricLMNN(random_state=0).fit(X_tr, y_tr)
    err_multi = 1 - multi.score(X_te, y_te)
    assert err_multi < 0.6 * err_single, (err_single, err_multi)


def test_bad_input_raises_clear_errors():
    X, y = _blobs()
    X_nan = X.copy()
    X_nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MultiMetricLMNN().fit(X_nan, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MultiMetricLMNN().fit(X, np.zeros_like(y))
    y_small = y.copy()
    y_small[0] = 7  # a class with one member: no target neighbour
    with pytest.raises(ValueError, match=r"at least 2 samples in every class.*\[7\]"):
        MultiMetricLMNN().fit(X, y_small)
    with pytest.raises(ValueError, match=r"n_clusters=31 must not exceed the number of "
                                         r"samples \(30\)"):
        MultiMetricLMNN(partition="kmeans", n_clusters=31).fit(X, y)
    with pytest.raises(ValueError, match=r"n_neighbors=30 must be smaller"):
        MultiMetricLMNN(n_neighbors=30).fit(X, y)
    with pytest.raises(ValueError, match="partition"):
        MultiMetricLMNN(partition="spectral").fit(X, y)
    clf = MultiMetricLMNN(max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="n_neighbors=31 must be between 1"):
        clf.kneighbors(X, n_neighbors=31)


def test_small_class_warns():
    X, y = _blobs()
    y = y.copy()
    y[:8] = 5  # class 0 keeps 2 members
    with pytest.warns(UserWarning, match="at most n_neighbors=3 members"):
        MultiMetricLMNN(init="identity", max_iter=20).fit(X, y)


def test_convergence_warning_and_verbose(capsys):
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match="MultiMetricLMNN did not converge"):
        MultiMetricLMNN(init="identity", max_iter=1, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "[MultiMetricLMNN] iter" in out and "rescaled" in out


def test_benchmark_script_runs_on_iris(tmp_path, capsys):
    from benchmarks import bench_multi_metric

    out = tmp_path / "mm.csv"
    bench_multi_metric.main(["--quick", "--datasets", "iris", "--out", str(out)])
    lines = out.read_text().splitlines()
    assert lines[0].startswith("dataset,") and len(lines) == 1 + 5
    assert "| iris | 150 x 4 |" in capsys.readouterr().out
