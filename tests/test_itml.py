"""ITML: Bregman projections, constraints, prior, PD safety, pairs and label forms."""

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmetric._init import data_scale
from skmetric._itml_solver import (
    bounds_from_percentiles,
    default_bounds,
    fit_itml,
    itml_bregman,
)
from skmetric._solver import SolverResult
from skmetric.itml import ITML, ITMLPairs

from ._quality import knn_cv_error

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _sq_dist(M, diffs):
    return np.einsum("ij,jk,ik->i", diffs, M, diffs)


def test_one_projection_with_hard_constraint_lands_on_the_bound():
    """gamma=inf: projecting a violated similar pair puts it exactly at u."""
    v = np.array([[3.0, 1.0, -2.0]])
    res = itml_bregman(np.eye(3), v, [1], upper=2.0, lower=50.0, gamma=np.inf, max_iter=1)
    assert isinstance(res, SolverResult)
    M = res.metric
    np.testing.assert_allclose(res.components.T @ res.components, M, atol=1e-12)
    assert _sq_dist(M, v)[0] == pytest.approx(2.0, rel=1e-12)
    # A rank-one change along M0 v, leaving the orthogonal complement alone.
    w = np.array([1.0, -3.0, 0.0])
    assert w @ M @ w == pytest.approx(w @ w)
    np.testing.assert_array_equal(M, M.T)
    # Same for a violated dissimilar pair: pushed out to exactly l.
    M = itml_bregman(np.eye(3), v, [-1], upper=1.0, lower=40.0, gamma=np.inf, max_iter=1).metric
    assert _sq_dist(M, v)[0] == pytest.approx(40.0, rel=1e-12)


def _pair_problem(n=60, d=4, seed=0):
    """Similar pairs differ along features 1..d-1 only; dissimilar ones also
    by 2 to 3 along feature 0. M = diag(c, eps, ..., eps) separates them."""
    rng = np.random.RandomState(seed)
    a = rng.normal(size=(n, d))
    b = a.copy()
    b[:, 1:] += 0.5 * rng.normal(size=(n, d - 1))
    y = np.where(np.arange(n) < n // 2, 1, -1)
    n_dis = np.sum(y == -1)
    b[y == -1, 0] += rng.choice([-1.0, 1.0], size=n_dis) * rng.uniform(2, 3, size=n_dis)
    return np.stack([a, b], axis=1), y


def test_constraints_hold_after_convergence_on_an_easy_problem():
    pairs, y = _pair_problem()
    u, l = 0.5, 3.0
    for gamma in (1e4, np.inf):
        est = ITMLPairs(
            bounds=(u, l), gamma=gamma, max_iter=2000, tol=1e-6, validation_fraction=0
        ).fit(pairs, y)
        assert est.converged_
        dist = est.pair_distance(pairs)
        assert np.all(dist[y == 1] <= u * 1.001)
        assert np.all(dist[y == -1] >= l * 0.999)
    # Under the prior (Euclidean) they did not hold.
    euclid = np.linalg.norm(pairs[:, 0] - pairs[:, 1], axis=1)
    assert np.any(euclid[y == 1] > u) and np.any(euclid[y == -1] < l)
    np.testing.assert_allclose(est.bounds_, [u, l])


def test_slack_relaxes_the_constraints():
    pairs, y = _pair_problem()
    kw = dict(bounds=(0.5, 3.0), max_iter=2000, tol=1e-6)
    strict = ITMLPairs(gamma=1e4, **kw).fit(pairs, y)
    loose = ITMLPairs(gamma=0.01, **kw).fit(pairs, y)
    viol = lambda e: np.maximum(e.pair_distance(pairs)[y == 1] - 0.5, 0).sum()  # noqa: E731
    assert viol(loose) > viol(strict) + 1e-3
    # Little slack cost: the loose metric stays closer to the prior.
    dev = lambda e: np.linalg.norm(e.get_mahalanobis_matrix() - np.eye(4))  # noqa: E731
    assert dev(loose) < dev(strict)


def test_prior_kept_when_no_constraint_is_violated():
    pairs, y = _pair_problem()
    rng = np.random.RandomState(1)
    B = rng.normal(size=(4, 4))
    M0 = B @ B.T + np.eye(4)
    dist0 = np.sqrt(_sq_dist(M0, pairs[:, 0] - pairs[:, 1]))
    bounds = (dist0.max() * 1.1, dist0.min() * 0.9)  # every pair already satisfies them
    est = ITMLPairs(prior=M0, bounds=bounds).fit(pairs, y)
    np.testing.assert_allclose(est.get_mahalanobis_matrix(), M0, rtol=1e-10, atol=1e-10)
    assert est.n_iter_ == 1 and est.converged_
    # prior='identity' is the identity on the data divided by their scale s
    # (a power of two, skmetric._init.data_scale): I / s**2 in the units of X.
    X, y_blobs = _blobs()
    lab = ITML(bounds=(1e3, 1e-3), random_state=0).fit(X, y_blobs)
    np.testing.assert_allclose(lab.get_mahalanobis_matrix() * data_scale(X) ** 2, np.eye(6),
                               atol=1e-10)


@quiet
def test_default_bounds_are_percentiles_of_prior_distances():
    rng = np.random.RandomState(0)
    P = rng.normal(size=(30, 3))
    sq = pdist(P, "sqeuclidean")
    np.testing.assert_allclose(
        bounds_from_percentiles(P, np.eye(3), rng), np.percentile(sq, [5, 95])
    )
    # Many points: a sample of pairs, never the n x n matrix; close to exact.
    P = rng.normal(size=(400, 3))
    approx = bounds_from_percentiles(P, np.eye(3), rng, n_sample=20_000)
    np.testing.assert_allclose(approx, np.percentile(pdist(P, "sqeuclidean"), [5, 95]), rtol=0.1)


def _documented_bounds(points, rule):
    """The documented rules, from all pairs' prior (identity) distances."""
    dist = pdist(points)
    q = np.percentile(dist, [5, 95])
    if rule == "percentiles":
        return q
    rho = np.sqrt(np.mean(dist**2) / (2 * points.shape[1]))
    return np.sqrt(rho * q)


@quiet
@pytest.mark.parametrize("rule", ["auto", "percentiles", None])
def test_default_bounds_follow_the_documented_rule(rule):
    """bounds_ are the documented rule's (u, l), as distances, for both forms,
    in the units of X (scaled with X, also by a non-power of two)."""
    pairs, y = _pair_problem()
    pts = pairs.reshape(-1, 4)  # distinct points (no pair repeats a point)
    kw = {} if rule is None else {"bounds": rule}
    est = ITMLPairs(max_iter=5, validation_fraction=0, **kw).fit(pairs, y)
    np.testing.assert_allclose(est.bounds_, _documented_bounds(pts, rule or "auto"))
    X, labels = _blobs()
    lab = ITML(max_iter=5, random_state=0, **kw).fit(X, labels)
    np.testing.assert_allclose(lab.bounds_, _documented_bounds(X, rule or "auto"))
    lab3 = ITML(max_iter=5, random_state=0, **kw).fit(3.0 * X, labels)
    np.testing.assert_allclose(lab3.bounds_, 3.0 * lab.bounds_, rtol=1e-12)


def test_auto_bounds_are_tighter_than_percentiles_in_high_dimension():
    """'auto' is 'percentiles' with u**2, l**2 divided by q / rho (about sqrt(2 d))."""
    rng = np.random.RandomState(0)
    P = rng.normal(size=(100, 64))
    auto = default_bounds(P, np.eye(64), rng, "auto")
    pct = default_bounds(P, np.eye(64), rng, "percentiles")
    assert np.all(auto < pct / 8)  # sqrt(2 * 64) ~ 11
    with pytest.raises(ValueError, match="bounds rule"):
        default_bounds(P, np.eye(64), rng, "paper")


@quiet
@pytest.mark.parametrize("loader", [load_iris, load_wine, load_breast_cancer])
@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "raw"])
def test_no_positive_definiteness_failure_on_ordinary_data(loader, scaled):
    X, y = loader(return_X_y=True)
    if scaled:
        X = StandardScaler().fit_transform(X)
    est = ITML(max_iter=30, random_state=0).fit(X, y)
    M = est.get_mahalanobis_matrix()
    assert np.all(np.isfinite(M))
    np.testing.assert_allclose(M, M.T, rtol=1e-10, atol=1e-12 * np.abs(M).max())
    assert np.linalg.eigvalsh(M).min() >= -1e-8 * np.abs(M).max()
    assert np.all(np.isfinite(est.transform(X[:5])))


def test_rank_deficient_prior_keeps_its_null_space():
    X, y = _blobs()
    w = np.zeros(6)
    w[5] = 1.0
    M0 = np.eye(6) - np.outer(w, w)  # feature 5 ignored by the prior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ITML(prior=M0, max_iter=50, random_state=0).fit(X, y)
    M = est.get_mahalanobis_matrix()
    assert np.abs(M[5]).max() < 1e-8 and np.abs(M[:, 5]).max() < 1e-8
    assert not np.allclose(M, M0)


def _blobs(n_per_class=25, seed=0):
    rng = np.random.RandomState(seed)
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    X_inf = np.vstack([c + 0.4 * rng.normal(size=(n_per_class, 2)) for c in centers])
    X = np.hstack([X_inf, 3.0 * rng.normal(size=(X_inf.shape[0], 4))])
    return X, np.repeat(np.arange(3), n_per_class)


@quiet
def test_label_form_beats_euclidean_knn():
    X, y = _blobs()
    knn = KNeighborsClassifier(n_neighbors=3)
    err_euclid = 1 - cross_val_score(knn, X, y, cv=3).mean()
    itml = ITML(max_iter=100, random_state=0)
    err_itml = 1 - cross_val_score(make_pipeline(itml, knn), X, y, cv=3).mean()
    assert err_itml < err_euclid - 0.1


def test_pairs_api():
    pairs, y = _pair_problem()
    est = ITMLPairs(random_state=0).fit(pairs, y)
    assert est.n_features_in_ == 4
    assert est.score(pairs, y) >= 0.95
    pred = est.predict(pairs)
    assert set(np.unique(pred)) <= {-1, 1}
    expected = est.threshold_ - est.pair_distance(pairs)
    np.testing.assert_allclose(est.decision_function(pairs), expected)
    # {0, 1} labels mean the same as {-1, +1}.
    other = ITMLPairs(random_state=0).fit(pairs, (y == 1).astype(int))
    np.testing.assert_allclose(other.components_, est.components_)
    assert est.transform(pairs[:, 0]).shape == (len(pairs), 4)
    with pytest.raises(ValueError, match="features"):
        est.transform(np.ones((3, 5)))


def test_loss_is_the_logdet_objective():
    """loss = D_ld(M, M0) + gamma * D_ld(diag(xi), diag(xi0)); 0 at the prior."""
    pairs, y = _pair_problem()
    diffs = pairs[:, 0] - pairs[:, 1]
    res = itml_bregman(np.eye(4), diffs, y, upper=0.25, lower=9.0, gamma=np.inf, max_iter=500)
    assert res.converged
    # gamma = inf: no slack, the loss is the LogDet divergence to the identity.
    w = np.linalg.eigvalsh(res.metric)
    assert res.loss == pytest.approx(np.sum(w - np.log(w) - 1.0), rel=1e-8)
    assert res.loss > 0
    # A finite gamma trades divergence for slack: a smaller objective.
    soft = itml_bregman(np.eye(4), diffs, y, upper=0.25, lower=9.0, gamma=1.0, max_iter=500)
    assert 0 < soft.loss < res.loss
    # Nothing violated: M stays the prior, whose divergence to itself is 0.
    none = itml_bregman(np.eye(4), diffs, y, upper=1e6, lower=1e-6, gamma=1.0)
    assert none.loss == 0.0 and none.n_iter == 1 and none.converged


def test_fit_itml_returns_solver_result_with_bounds():
    pairs, y = _pair_problem()
    points, index = pairs.reshape(-1, 4), np.arange(2 * len(y)).reshape(-1, 2)
    res = fit_itml(points, index, y, np.eye(4), np.array([0.5, 3.0]), max_iter=50)
    assert isinstance(res, SolverResult)
    np.testing.assert_allclose(res.info["bounds"], [0.5, 3.0])
    est = ITMLPairs(bounds=(0.5, 3.0), max_iter=50, validation_fraction=0).fit(pairs, y)
    np.testing.assert_allclose(est.components_, res.components)
    assert (est.loss_, est.n_iter_, est.converged_) == (res.loss, res.n_iter, res.converged)


def test_verbose_and_convergence_warning(capsys):
    pairs, y = _pair_problem()
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        est = ITMLPairs(bounds=(0.1, 10.0), max_iter=2, tol=0, verbose=1).fit(pairs, y)
    assert est.n_iter_ == 2 and not est.converged_
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("[ITMLPairs] iter") for line in lines) == 2
    assert "loss" in lines[0] and "conv" in lines[0]
    assert lines[-1].startswith("[ITMLPairs] done: 2 iterations")


@quiet
def test_random_state_reproducibility():
    X, y = _blobs()
    a = ITML(max_iter=20, random_state=3).fit(X, y)
    b = ITML(max_iter=20, random_state=3).fit(X, y)
    c = ITML(max_iter=20, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.allclose(a.components_, c.components_)


@quiet
def test_input_is_not_modified():
    pairs, y = _pair_problem()
    pairs_orig, y_orig = pairs.copy(), y.copy()
    ITMLPairs(max_iter=5, random_state=0).fit(pairs, y)
    np.testing.assert_array_equal(pairs, pairs_orig)
    np.testing.assert_array_equal(y, y_orig)


def test_bad_input_raises_clear_errors():
    pairs, y = _pair_problem()
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2, n_features\)"):
        ITMLPairs().fit(pairs[:, 0], y)
    with pytest.raises(ValueError, match="Pair labels must be"):
        ITMLPairs().fit(pairs, np.where(y == 1, 2, 3))
    with pytest.raises(ValueError, match="must match"):
        ITMLPairs().fit(pairs, y[:-1])
    bad = pairs.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ITMLPairs().fit(bad, y)
    with pytest.raises(ValueError, match="two numbers"):
        ITMLPairs(bounds=(1.0, 2.0, 3.0)).fit(pairs, y)
    with pytest.raises(ValueError, match="positive and finite"):
        ITMLPairs(bounds=(0.0, 2.0)).fit(pairs, y)
    with pytest.raises(ValueError, match="bounds"):
        ITMLPairs(bounds="paper").fit(pairs, y)
    with pytest.raises(ValueError, match="gamma"):
        ITMLPairs(gamma=0.0).fit(pairs, y)
    with pytest.raises(ValueError, match="not positive semidefinite"):
        ITMLPairs(prior=-np.eye(4)).fit(pairs, y)
    with pytest.raises(ValueError, match="needs class labels"):
        ITMLPairs(prior="lda").fit(pairs, y)
    X, yl = _blobs()
    with pytest.raises(ValueError, match="at least 2 classes"):
        ITML().fit(X, np.zeros(len(yl)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        ITML().fit(X[:3], [0, 1, 2])


def test_pairs_threshold_calibrated_on_held_out_pairs():
    pairs, y = _pair_problem()
    est = ITMLPairs(max_iter=50, validation_fraction=0.25, random_state=0).fit(pairs, y)
    full = ITMLPairs(max_iter=50, validation_fraction=0, random_state=0).fit(pairs, y)
    # Fewer pairs reach the metric fit when some are held out for the threshold.
    assert not np.allclose(est.components_, full.components_)
    assert est.score(pairs, y) > 0.8


def test_default_number_of_constraints_is_bounded_by_the_data(monkeypatch):
    # 50 classes of 2 samples: 20 * 50**2 = 50,000 pairs of each kind from 100
    # points made every pass over the constraints long (a fit ran for minutes).
    import skmetric.itml as itml_module

    drawn = []
    real = itml_module.sample_pairs

    def recording(y, n, *args, **kwargs):
        drawn.append(n)
        return real(y, n, *args, **kwargs)

    monkeypatch.setattr(itml_module, "sample_pairs", recording)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(100, 5)), np.repeat(np.arange(50), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ITML(max_iter=2, random_state=0).fit(X, y)
        ITML(max_iter=2, random_state=0).fit(X[:30], np.repeat(np.arange(3), 10))
    assert drawn == [1000, 180]  # min(20 * n_classes**2, 10 * n_samples)


def test_stops_when_the_metric_settles():
    """The second stopping test (relative change of M over a pass < tol) ends
    the run near the fixed point: further passes move M by little more than tol
    per pass, and the kNN-relevant metric barely changes."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    from skmetric.constraints import sample_pairs

    X, labels = load_digits(n_class=4, return_X_y=True)
    X = StandardScaler().fit_transform(X[:300])
    labels = labels[:300]
    idx, y = sample_pairs(labels, 200, random_state=0)
    diffs = X[idx[:, 0]] - X[idx[:, 1]]
    # Percentile bounds far below the prior distances: many constraints stay active.
    short = itml_bregman(np.eye(64), diffs, y, upper=3.0, lower=8.0, gamma=1.0, tol=1e-3)
    assert short.converged and "relative change of M" in short.message
    assert short.n_iter < 1000
    longer = itml_bregman(np.eye(64), diffs, y, upper=3.0, lower=8.0, gamma=1.0, tol=1e-5,
                          max_iter=short.n_iter + 200)
    rel = np.linalg.norm(longer.metric - short.metric) / np.linalg.norm(longer.metric)
    assert rel < 1e-2, rel


@quiet
def test_indexed_pairs_fit_like_the_materialised_pairs(monkeypatch):
    """With a preprocessor, fitting works from the indices (the pairs are never
    materialised) and learns what the same pairs given as points learn."""
    from skmetric._validation import IndexedTuples

    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 1.5])
    labels = np.repeat([0, 1], 30)
    idx = rng.randint(60, size=(150, 2))
    idx = idx[idx[:, 0] != idx[:, 1]]
    y = np.where(labels[idx[:, 0]] == labels[idx[:, 1]], 1, -1)
    dense = ITMLPairs(max_iter=200, random_state=0).fit(X[idx], y)

    def refuse(self):
        raise AssertionError("the fitting pairs were materialised")

    monkeypatch.setattr(IndexedTuples, "materialize", refuse)
    for pre in (X, lambda i: X[i]):
        est = ITMLPairs(max_iter=200, preprocessor=pre, random_state=0).fit(idx, y)
        np.testing.assert_allclose(est.components_, dense.components_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(est.bounds_, dense.bounds_)
        assert est.threshold_ == pytest.approx(dense.threshold_)
        assert est.n_iter_ == dense.n_iter_


@quiet
def test_default_bounds_beat_euclidean_knn_on_held_out_digits():
    """Held-out quality of the default ('auto') bounds: StandardScaler -> ITML
    -> 3-NN on the digits, 3 stratified folds, errs clearly less than
    Euclidean 3-NN (about 1.9% against 2.8%)."""
    from sklearn.datasets import load_digits

    err_euclid = knn_cv_error(load_digits)
    err_auto = knn_cv_error(load_digits, ITML(random_state=0))
    assert err_auto < err_euclid - 0.005, (err_auto, err_euclid)
