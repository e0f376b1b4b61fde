"""Tests for LMNN, its solver and the energy classifier."""

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmetric import LMNN, LMNNClassifier
from skmetric import _lmnn_solver as solver
from skmetric._init import data_scale
from skmetric._lmnn_solver import (
    LMNNData,
    LMNNOptions,
    find_impostors,
    fit_lmnn,
    lmnn_loss_grad,
    lmnn_loss_grad_metric,
    select_targets,
)
from skmetric._solver import Progress, SolverResult

# Short fits in these tests stop on max_iter by design.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(n_per_class=12, n_features=4, n_classes=3, spread=1.0, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=2.0, size=(n_classes, n_features))
    X = np.vstack([c + spread * rng.normal(size=(n_per_class, n_features)) for c in centers])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return X, y


def _problem(push_loss, seed=0, n_components=None):
    X, y = _blobs(seed=seed, spread=2.0)
    rng = np.random.RandomState(seed)
    L = rng.normal(size=(n_components or X.shape[1], X.shape[1]))
    T = select_targets(X @ L.T, y, 3)
    Z = X @ L.T
    d_t = np.einsum("ijk,ijk->ij", Z[:, None] - Z[T], Z[:, None] - Z[T])
    imp_i, imp_l, _ = find_impostors(Z, y, d_t.max(axis=1) + 1.0)
    # Every differently labelled pair, so the gradient is exact away from L.
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    assert imp_i.size > 0
    return X, y, L, LMNNData(X, T, ii, ll, push_weight=0.4, push_loss=push_loss)


@pytest.mark.parametrize("push_loss", ["hinge", "smooth_hinge", "squared_hinge"])
def test_gradient_in_L_matches_finite_differences(push_loss):
    for seed, n_components in [(0, None), (1, 2)]:
        X, y, L, data = _problem(push_loss, seed, n_components)
        f = lambda p: lmnn_loss_grad(p, data)[0]  # noqa: E731
        g = lambda p: lmnn_loss_grad(p, data)[1]  # noqa: E731
        err = check_grad(f, g, L.ravel(), epsilon=1e-6)
        assert err < 1e-4 * max(1.0, np.linalg.norm(g(L.ravel())))


@pytest.mark.parametrize("push_loss", ["hinge", "smooth_hinge", "squared_hinge"])
def test_gradient_in_M_matches_finite_differences(push_loss):
    X, y, L, data = _problem(push_loss, seed=2)
    M = L.T @ L
    f = lambda p: lmnn_loss_grad_metric(p, data)[0]  # noqa: E731
    g = lambda p: lmnn_loss_grad_metric(p, data)[1]  # noqa: E731
    err = check_grad(f, g, M.ravel(), epsilon=1e-6)
    assert err < 1e-4 * max(1.0, np.linalg.norm(g(M.ravel())))
    # The two forms agree on the loss at M = L.T L.
    assert np.isclose(f(M.ravel()), lmnn_loss_grad(L.ravel(), data)[0])


@pytest.mark.parametrize("ratio", [1e-9, 1e9])  # pair gathers / Gram row blocks
def test_pair_distances_both_paths_match_direct(monkeypatch, ratio):
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(30, 5))
    a, b = rng.randint(0, 30, size=200), rng.randint(0, 30, size=200)
    monkeypatch.setattr(solver, "GRAM_RATIO", ratio)
    got = solver.pair_sq_distances(Z, a, b)
    assert np.allclose(got, ((Z[a] - Z[b]) ** 2).sum(axis=1))
    # The gradient is the same on both paths (2 L G from the d x d scatter).
    X, y, L, data = _problem("smooth_hinge", seed=4)
    _, grad = lmnn_loss_grad(L.ravel(), data)
    _, G, _ = data.evaluate(lambda a, b: (((X[a] - X[b]) @ L.T) ** 2).sum(axis=1))
    assert np.allclose(grad, (2.0 * L @ G).ravel())


def test_targets_are_nearest_same_class_points():
    X, y = _blobs(seed=3)
    T = select_targets(X, y, 2)
    for i in range(X.shape[0]):
        same = np.flatnonzero((y == y[i]) & (np.arange(len(y)) != i))
        d = np.linalg.norm(X[same] - X[i], axis=1)
        assert set(T[i]) == set(same[np.argsort(d)[:2]])


def test_impostor_search_honours_chunk_size(monkeypatch):
    X, y = _blobs(n_per_class=20, seed=4, spread=2.0)
    radius = np.full(X.shape[0], 20.0)
    full = find_impostors(X, y, radius)
    shapes = []
    real = solver.block_scores

    def spy(Za, Zb):
        shapes.append(Za.shape[0])
        return real(Za, Zb)

    monkeypatch.setattr(solver, "block_scores", spy)
    chunked = find_impostors(X, y, radius, chunk_size=7)
    assert max(shapes) <= 7 and sum(shapes) == X.shape[0]
    assert full[0].size > 0
    key = lambda r: sorted(zip(r[0].tolist(), r[1].tolist()))  # noqa: E731
    assert key(full) == key(chunked)
    # Only differently labelled pairs within the radius.
    i, l_ = full[0], full[1]
    assert np.all(y[i] != y[l_])
    assert np.all(np.sum((X[i] - X[l_]) ** 2, axis=1) < 20.0 * (1 + 1e-3))


def test_impostor_cap_subsamples_with_unbiased_weights():
    X, y = _blobs(n_per_class=30, seed=5, spread=3.0)
    radius = np.full(X.shape[0], 1e6)  # every differently labelled pair
    i_all, _, w_all = find_impostors(X, y, radius)
    assert w_all is None
    i_cap, _, w = find_impostors(X, y, radius, chunk_size=10, max_impostors=300,
                                 random_state=0)
    assert i_cap.size <= 300 + 9  # per-block quotas round up
    assert np.isclose(w.sum(), i_all.size)


def test_fit_estimator_chunk_size_is_used(monkeypatch):
    X, y = _blobs(n_per_class=15, seed=6)
    shapes = []
    real = solver.block_scores

    def spy(Za, Zb):
        shapes.append(Za.shape[0])
        return real(Za, Zb)

    monkeypatch.setattr(solver, "block_scores", spy)
    LMNN(chunk_size=5, max_iter=10).fit(X, y)
    assert shapes and max(shapes) <= 5


def test_no_impostors_pull_only():
    # Classes far apart: no impostor at any point; metric-learn raised TypeError.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(10, 3)), 1000.0 + rng.normal(size=(10, 3))])
    y = np.repeat([0, 1], 10)
    T = select_targets(X, y, 3)
    data = LMNNData(X, T, np.empty(0, int), np.empty(0, int), push_weight=0.5)
    loss, grad = lmnn_loss_grad(np.eye(3).ravel(), data)
    pull = sum(np.sum((X[i] - X[T[i]]) ** 2) for i in range(20))
    assert np.isclose(loss, 0.5 * pull)
    assert np.all(np.isfinite(grad))
    model = LMNN(max_iter=300).fit(X, y)
    assert np.all(np.isfinite(model.components_))
    # loss_ is the true objective at the result (every impostor counted).
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    exact = LMNNData(X, model.target_neighbors_, ii, ll, push_loss=model.push_loss)
    assert np.isclose(model.loss_, lmnn_loss_grad(model.components_.ravel(), exact)[0])
    assert model.loss_ < loss


def test_small_class_reduces_k_with_warning():
    X, y = _blobs(n_per_class=10, seed=7)
    y = y.copy()
    y[:8] = 3  # class 0 keeps 2 members, class 3 has 8
    with pytest.warns(UserWarning, match="at most n_neighbors=3 members"):
        model = LMNN(max_iter=20).fit(X, y)
    small = np.flatnonzero(y == 0)
    assert np.all(model.target_neighbors_[small, 1:] == -1)
    assert set(model.target_neighbors_[small, 0]) == set(small)


def test_bad_input_errors():
    X, y = _blobs()
    with pytest.raises(ValueError, match="n_neighbors=40 must be smaller than the number"):
        LMNN(n_neighbors=40).fit(X[:36], y[:36])
    with pytest.raises(ValueError, match="at least 2 classes in y, got 1 class"):
        LMNN().fit(X, np.zeros(len(y)))
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LMNN().fit(X_nan, y)
    with pytest.raises(ValueError, match="projected_gradient"):
        LMNN(n_components=2, solver="projected_gradient").fit(X, y)
    with pytest.raises(ValueError, match="must not exceed"):
        LMNN(n_components=9).fit(X, y)


def _noisy_data(seed=0):
    # Two informative features, eight high-variance noise features.
    rng = np.random.RandomState(seed)
    n = 60
    y = np.repeat([0, 1, 2], n // 3)
    informative = np.c_[np.cos(2.1 * y), np.sin(2.1 * y)] + 0.35 * rng.normal(size=(n, 2))
    noise = 3.0 * rng.normal(size=(n, 8))
    return np.c_[informative, noise], y


def test_lmnn_beats_euclidean_knn_on_noisy_features():
    X, y = _noisy_data()
    knn = KNeighborsClassifier(3)
    euclid = cross_val_score(knn, X, y, cv=3).mean()
    lmnn = cross_val_score(make_pipeline(LMNN(max_iter=100), knn), X, y, cv=3).mean()
    assert lmnn > euclid + 0.1
    assert lmnn >= 0.85


def test_fit_attributes_and_reduction():
    X, y = _noisy_data(1)
    model = LMNN(n_components=2, max_iter=100, random_state=0).fit(X, y)
    assert model.components_.shape == (2, X.shape[1])
    assert model.transform(X).shape == (X.shape[0], 2)
    assert model.n_iter_ >= 1 and np.isfinite(model.loss_)
    assert isinstance(model.converged_, bool)
    assert model.target_neighbors_.shape == (X.shape[0], 3)


def test_loss_decreases_from_init_and_solvers_agree():
    X, y = _noisy_data(2)
    L0 = np.eye(X.shape[1])
    for method in ("lbfgs", "projected_gradient"):
        res = fit_lmnn(X, y, L0, LMNNOptions(solver=method, max_iter=200))
        T = res.info["targets"]
        Z0 = X @ L0.T
        d_t = np.einsum("ijk,ijk->ij", Z0[:, None] - Z0[T], Z0[:, None] - Z0[T])
        imp = find_impostors(Z0, y, d_t.max(axis=1) + 1.0)
        f0 = lmnn_loss_grad(L0.ravel(), LMNNData(X, T, imp[0], imp[1]))[0]
        assert res.loss < 0.5 * f0
    m_l = LMNN(max_iter=300).fit(X, y)
    m_m = LMNN(solver="projected_gradient", max_iter=300).fit(X, y)
    # The convex form reaches the global optimum: L-BFGS on L gets close to it.
    assert m_l.loss_ <= 1.1 * m_m.loss_
    M = m_m.get_mahalanobis_matrix()
    assert np.linalg.eigvalsh(M).min() > -1e-8


def test_multi_pass_reselects_targets_in_learned_metric(monkeypatch):
    X, y = _noisy_data(3)
    seen = []
    real = solver.select_targets

    def spy(Z, y_, k):
        seen.append(Z.copy())
        return real(Z, y_, k)

    monkeypatch.setattr(solver, "select_targets", spy)
    model = LMNN(n_passes=2, max_iter=50, init="identity").fit(X, y)
    assert len(seen) == 2
    Xs = X / data_scale(X)  # the solver sees X at unit spread
    np.testing.assert_allclose(seen[0], Xs)  # identity start
    assert not np.allclose(seen[1], Xs)  # second pass: in the learned metric
    T = real(X @ model.components_.T, y, 3)
    assert model.target_neighbors_.shape == T.shape


def test_verbose_prints_progress(capsys):
    X, y = _blobs(seed=8, spread=2.0)
    LMNN(verbose=1, max_iter=10).fit(X, y)
    out = capsys.readouterr().out
    assert "[LMNN] iter" in out and "loss" in out and "active" in out
    assert "elapsed" in out and "impostor search" in out and "[LMNN] done" in out


def test_solver_returns_solver_result_and_never_prints(capsys):
    X, y = _blobs(seed=8, spread=2.0)
    res = fit_lmnn(X, y, np.eye(X.shape[1]), LMNNOptions(n_neighbors=2), max_iter=300)
    assert isinstance(res, SolverResult)
    assert res.components.shape == (X.shape[1], X.shape[1])
    assert res.info["targets"].shape == (X.shape[0], 2) and "n_impostors" not in res.info
    assert res.converged and res.message and res.n_iter >= 1
    assert capsys.readouterr().out == ""
    # Progress goes through the one voice, only when asked.
    fit_lmnn(X, y, np.eye(X.shape[1]), max_iter=5, progress=Progress("LMNN", 2))
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("[LMNN] ") for line in lines)


def _two_far_blobs(sep, seed):
    rng = np.random.RandomState(seed)
    X = np.vstack([rng.normal(size=(20, 3)), sep + rng.normal(size=(20, 3))])
    return X, np.repeat([0, 1], 20)


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("sep, seed", [(10.0, 2), (1000.0, 0)])
def test_stall_at_optimum_is_reported_as_converged(sep, seed):
    # Classes far apart: the first active set is empty, the first runs are
    # rejected, runs drop to one iteration and the loss stalls at the optimum
    # long before max_iter. This used to warn "did not converge in
    # max_iter=1000".
    X, y = _two_far_blobs(sep, seed)
    model = LMNN().fit(X, y)
    assert model.converged_ is True and model.n_iter_ < 1000
    if sep == 10.0:
        # The convex form in M reaches the same optimum (same targets).
        pg = LMNN(solver="projected_gradient", max_iter=3000, tol=1e-10).fit(X, y)
        np.testing.assert_array_equal(pg.target_neighbors_, model.target_neighbors_)
        assert abs(model.loss_ - pg.loss_) <= 1e-3 * pg.loss_


def test_not_converged_message_names_the_reason():
    X, y = _noisy_data(4)
    res = fit_lmnn(X, y, np.eye(X.shape[1]), max_iter=3)
    assert not res.converged and "max_iter=3" in res.message
    with pytest.warns(ConvergenceWarning, match="reached max_iter=3 iterations"):
        LMNN(max_iter=3).fit(X, y)


def test_classifier_shares_lmnn_parameters():
    assert LMNNClassifier.__init__ is LMNN.__init__
    assert LMNNClassifier._parameter_constraints is LMNN._parameter_constraints
    params = LMNN(n_neighbors=2, push_loss="hinge").get_params()
    assert LMNNClassifier(n_neighbors=2, push_loss="hinge").get_params() == params


def test_convergence_warning():
    X, y = _noisy_data(4)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = LMNN(max_iter=1).fit(X, y)
    assert model.converged_ is False


def test_energy_classifier_in_pipeline():
    X, y = load_iris(return_X_y=True)
    names = np.array(["a", "b", "c"])[y]
    pipe = make_pipeline(StandardScaler(), LMNNClassifier(max_iter=50, random_state=0))
    scores = cross_val_score(pipe, X, names, cv=3)
    assert scores.mean() > 0.9
    clf = pipe.fit(X, names)[-1]
    E = clf.energy(StandardScaler().fit(X).transform(X[:5]))
    assert E.shape == (5, 3) and np.all(np.isfinite(E))
    assert set(clf.predict(StandardScaler().fit(X).transform(X))) <= {"a", "b", "c"}


def test_energy_matches_direct_formula():
    X, y = _blobs(n_per_class=8, seed=9, spread=2.0)
    clf = LMNNClassifier(n_neighbors=2, max_iter=20, push_loss="hinge").fit(X, y)
    Z = clf.lmnn_.transform(X)
    xt = X[:3] + 0.3
    zt = clf.lmnn_.transform(xt)
    T = clf.lmnn_.target_neighbors_
    mu = clf.push_weight
    E = clf.energy(xt)
    for t in range(3):
        d = np.sum((Z - zt[t]) ** 2, axis=1)
        for c in range(3):
            same = np.flatnonzero(y == c)
            tj = same[np.argsort(d[same])[:2]]
            e = (1 - mu) * d[tj].sum()
            e += mu * sum(max(0, 1 + d[j] - d[l]) for j in tj for l in np.flatnonzero(y != c))
            for i in np.flatnonzero(y != c):
                for j in T[i]:
                    e += mu * max(0, 1 + np.sum((Z[i] - Z[j]) ** 2) - d[i])
            assert np.isclose(E[t, c], e)


def test_large_problem_path_is_exact_at_convergence_and_generalises(monkeypatch):
    # The large-n path (subsample warm start, candidate re-checks between
    # exhaustive searches), switched on for a small problem.
    X, y = _noisy_data(5)
    X_te, y_te = _noisy_data(6)
    X, y = np.vstack([X, _noisy_data(7)[0]]), np.concatenate([y, y])
    small = LMNN(max_iter=300, random_state=0).fit(X, y)
    monkeypatch.setattr(solver, "LARGE_N", 60)
    calls = []
    real = solver.find_impostors

    def spy(Z, y_, radius, *args, **kwargs):
        calls.append(Z.shape[0])
        return real(Z, y_, radius, *args, **kwargs)

    monkeypatch.setattr(solver, "find_impostors", spy)
    large = LMNN(max_iter=300, random_state=0).fit(X, y)
    assert large.converged_
    assert min(calls) < X.shape[0]  # the warm start ran on a subsample
    # loss_ is the true objective at the result: every impostor counted.
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    exact = LMNNData(X, large.target_neighbors_, ii, ll)
    assert np.isclose(large.loss_, lmnn_loss_grad(large.components_.ravel(), exact)[0])
    np.testing.assert_array_equal(large.target_neighbors_, small.target_neighbors_)
    assert large.loss_ <= 1.05 * small.loss_
    knn = KNeighborsClassifier(3)
    acc_small = knn.fit(small.transform(X), y).score(small.transform(X_te), y_te)
    acc_large = knn.fit(large.transform(X), y).score(large.transform(X_te), y_te)
    assert acc_large >= acc_small - 0.05 and acc_large >= 0.85


def test_too_large_problem_raises_memory_error_before_allocating(monkeypatch):
    X, y = _blobs()
    monkeypatch.setattr(solver, "available_memory", lambda: 1 << 20)
    with pytest.raises(MemoryError, match=r"needs about .* GiB, but only .* available"):
        LMNN(max_iter=5).fit(X, y)
    monkeypatch.setattr(solver, "available_memory", lambda: None)  # unknown: no check
    LMNN(max_iter=5).fit(X, y)
    # 100,000 x 512 fits in 4 GiB by the estimate.
    assert solver.memory_estimate(100_000, 512, 64, 3, 1_000_000) < 2**31


def test_knn_error_matches_scikit_learn():
    rng = np.random.RandomState(0)
    Zr, Zt = rng.normal(size=(80, 5)), rng.normal(size=(50, 5))
    yr, yt = rng.randint(0, 2, 80), rng.randint(0, 2, 50)  # two classes, k=3: no ties
    expected = 1.0 - KNeighborsClassifier(3).fit(Zr, yr).score(Zt, yt)
    assert solver.knn_error(Zr, yr, Zt, yt, 3, block=7) == pytest.approx(expected)


def test_validation_split_is_stratified_and_keeps_targets():
    y = np.repeat([0, 1, 2], [30, 10, 4])
    fit, val = solver.validation_split(y, 0.2, 3, np.random.default_rng(0))
    assert np.array_equal(np.sort(np.concatenate([fit, val])), np.arange(y.size))
    assert np.bincount(y[val], minlength=3).tolist() == [6, 2, 0]  # class 2 cannot spare one
    assert np.bincount(y[fit]).min() >= 4


def _overfitting_data(seed=0, n=150, n_noise=60):
    """Two informative features and many noisy ones, few samples per feature."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, n)
    X = np.hstack([np.c_[np.cos(2.1 * y), np.sin(2.1 * y)] + 0.6 * rng.normal(size=(n, 2)),
                   rng.normal(size=(n, n_noise))])
    return X, y


def test_early_stopping_refits_to_the_validated_iteration():
    X, y = _overfitting_data()
    result = fit_lmnn(X, y, np.eye(X.shape[1]), LMNNOptions(early_stopping=True,
                                                            random_state=0, max_iter=200))
    errors = result.info["validation_errors"]
    assert errors and result.converged and "early stopping" in result.message
    best = min(e for _, e in errors)
    chosen = max(it for it, e in errors if e == best)  # ties: the latest
    # the final fit ran the chosen number of iterations, after the validation fit
    assert result.n_iter == result.info["early_stopping_fit_iter"] + chosen
    # it stopped after n_iter_no_change checks without improvement (or converged)
    first_best = [e for _, e in errors].index(best)
    assert len(errors) - 1 - first_best <= 3


def test_early_stopping_estimator_is_reproducible_and_not_worse_on_overfit_data():
    X, y = _overfitting_data(1, n=300)
    Xte, yte = _overfitting_data(2, n=300)
    knn = KNeighborsClassifier(3)
    kw = dict(max_iter=300, random_state=0)
    es = LMNN(early_stopping=True, **kw).fit(X, y)
    again = LMNN(early_stopping=True, **kw).fit(X, y)
    np.testing.assert_array_equal(es.components_, again.components_)
    assert es.converged_
    full = LMNN(**kw).fit(X, y)
    err = {name: 1 - knn.fit(m.transform(X), y).score(m.transform(Xte), yte)
           for name, m in (("es", es), ("full", full))}
    euclid = 1 - knn.fit(X, y).score(Xte, yte)
    assert err["es"] < euclid  # it learned something
    assert err["es"] <= err["full"] + 0.02


def test_auto_early_stopping_only_with_many_features_per_sample():
    wide_X, wide_y = _overfitting_data(3, n=240, n_noise=60)  # 62 features >= 0.25 * 240
    narrow_X, narrow_y = _overfitting_data(3, n=240, n_noise=10)
    kw = dict(max_iter=100, random_state=0)
    assert LMNN(**kw).fit(wide_X, wide_y).early_stopping_
    assert not LMNN(**kw).fit(narrow_X, narrow_y).early_stopping_
    assert not LMNN(**kw).fit(wide_X[:150], wide_y[:150]).early_stopping_  # too few to hold out
    assert not LMNN(early_stopping=False, **kw).fit(wide_X, wide_y).early_stopping_
