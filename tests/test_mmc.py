"""MMC (Xing et al. 2002): objective gradients, solvers, estimators, pairs API."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skmetric import MMC, MMCPairs
from skmetric._mmc_solver import (
    auto_regularization,
    dissimilar_constraint,
    dissimilar_constraint_diag,
    fit_mmc,
    pair_differences,
    project_capped_simplex,
    project_spectraplex,
    similar_objective,
    similar_objective_diag,
    solve_mmc,
    solve_mmc_cvxpy,
)
from skmetric._psd import components_from_metric
from skmetric._solver import SolverResult
from skmetric.constraints import pairs_from_indices, sample_pairs


def _blobs(n_per_class=20, n_features=4, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    X = np.vstack([c + rng.normal(size=(n_per_class, n_features)) for c in centers])
    return X, np.repeat(np.arange(n_classes), n_per_class)


def _problem(d=4, n_pairs=30, diagonal=False, seed=0):
    """(A, D) of a small MMC problem with anisotropic features."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(60, d)) * rng.uniform(0.3, 3.0, size=d)
    y = rng.randint(0, 3, size=60)
    X[:, 0] += 2.0 * y
    idx, lab = sample_pairs(y, n_pairs, random_state=seed)
    diff_s, diff_d = pair_differences(pairs_from_indices(X, idx), lab)
    A = np.einsum("ij,ij->j", diff_s, diff_s) if diagonal else diff_s.T @ diff_s
    return A, diff_d


def _pairs(n=40, d=3, seed=0):
    """Pairs whose similarity is decided by feature 0 only (others are noise)."""
    rng = np.random.RandomState(seed)
    a = rng.normal(size=(n, d))
    b = a + rng.normal(scale=2.0, size=(n, d))
    b[:, 0] = a[:, 0] + rng.normal(scale=0.1, size=n)
    b[n // 2 :, 0] += rng.choice([-4.0, 4.0], size=n - n // 2)
    y = np.r_[np.ones(n // 2, int), -np.ones(n - n // 2, int)]
    return np.stack([a, b], axis=1), y


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("smoothing", [0.0, 1e-3])
def test_dissimilar_constraint_gradient(smoothing):
    rng = np.random.RandomState(0)
    D = rng.normal(size=(15, 4))
    B = rng.normal(size=(4, 4))
    M0 = B @ B.T + np.eye(4)

    def fun(v):
        return dissimilar_constraint(v.reshape(4, 4), D, smoothing)[0]

    def grad(v):
        return dissimilar_constraint(v.reshape(4, 4), D, smoothing)[1].ravel()

    assert check_grad(fun, grad, M0.ravel(), epsilon=1e-7) < 1e-5 * np.linalg.norm(grad(M0.ravel()))


def test_similar_objective_gradient_and_value():
    rng = np.random.RandomState(1)
    S = rng.normal(size=(10, 3))
    A = S.T @ S
    M = np.diag([1.0, 2.0, 3.0])
    f, g = similar_objective(M, A)
    assert f == pytest.approx(np.sum((S @ M) * S))
    err = check_grad(
        lambda v: similar_objective(v.reshape(3, 3), A)[0],
        lambda v: similar_objective(v.reshape(3, 3), A)[1].ravel(),
        M.ravel(),
    )
    assert err < 1e-5 * np.linalg.norm(g)


def test_diagonal_functions_match_full_and_gradients():
    rng = np.random.RandomState(2)
    D = rng.normal(size=(12, 5))
    S = rng.normal(size=(9, 5))
    m = rng.uniform(0.5, 2.0, size=5)
    Q = D * D
    a = np.sum(S * S, axis=0)
    full_g = dissimilar_constraint(np.diag(m), D)[0]
    full_f = similar_objective(np.diag(m), S.T @ S)[0]
    assert dissimilar_constraint_diag(m, Q)[0] == pytest.approx(full_g)
    assert similar_objective_diag(m, a)[0] == pytest.approx(full_f)
    for fn, data in [(dissimilar_constraint_diag, Q), (similar_objective_diag, a)]:
        err = check_grad(lambda v: fn(v, data)[0], lambda v: fn(v, data)[1], m, epsilon=1e-7)
        assert err < 1e-5 * np.linalg.norm(fn(m, data)[1])


# ---------------------------------------------------------------- projections


def test_projections_are_optimal():
    # Projection p of v onto a convex set C: <v - p, z - p> <= 0 for all z in C.
    rng = np.random.RandomState(3)
    for _ in range(5):
        v = rng.normal(scale=2.0, size=6)
        p = project_capped_simplex(v)
        assert p.min() >= 0 and p.sum() <= 1 + 1e-12
        for z in rng.dirichlet(np.ones(6), size=20) * rng.uniform(0, 1, size=(20, 1)):
            assert np.dot(v - p, z - p) <= 1e-10
        B = rng.normal(size=(4, 4))
        V = B + B.T
        P = project_spectraplex(V)
        w = np.linalg.eigvalsh(P)
        assert w.min() >= -1e-12 and w.sum() <= 1 + 1e-10
        for _ in range(20):
            C = rng.normal(size=(4, 2))
            Z = C @ C.T
            Z *= rng.uniform(0, 1) / np.trace(Z)
            assert np.vdot(V - P, Z - P) <= 1e-10
    # Inside the set: unchanged.
    np.testing.assert_allclose(project_capped_simplex([0.2, 0.3]), [0.2, 0.3])


# ---------------------------------------------------------------- solvers


@pytest.mark.parametrize("diagonal", [False, True], ids=["full", "diagonal"])
@pytest.mark.parametrize("d, seed", [(3, 0), (5, 1)])
def test_projected_gradient_matches_cvxpy(diagonal, d, seed):
    A, D = _problem(d=d, diagonal=diagonal, seed=seed)
    pg = solve_mmc(A, D, diagonal=diagonal)
    ref = solve_mmc_cvxpy(A, D, diagonal=diagonal)
    assert pg.converged and ref.converged
    # Feasible: PSD (non-negative diagonal) and the dissimilar constraint holds.
    assert np.linalg.eigvalsh(pg.metric).min() >= -1e-10 * np.abs(pg.metric).max()
    if diagonal:
        assert np.count_nonzero(pg.metric - np.diag(np.diag(pg.metric))) == 0
        g = dissimilar_constraint_diag(np.diag(pg.metric), D * D)[0]
        f = similar_objective_diag(np.diag(pg.metric), A)[0]
    else:
        g = dissimilar_constraint(pg.metric, D)[0]
        f = similar_objective(pg.metric, A)[0]
    assert g >= 1 - 1e-9
    assert f == pytest.approx(pg.loss, rel=1e-9)
    assert abs(pg.loss - ref.loss) <= 1e-3 * ref.loss


@pytest.mark.parametrize("diagonal", [False, True], ids=["full", "diagonal"])
@pytest.mark.parametrize("mu", [0.3, 0.8])
@pytest.mark.parametrize("prior", ["identity", "random"])
def test_regularised_problem_matches_cvxpy(diagonal, mu, prior):
    # The regularised problem (M - mu f(M)/f(M0) M0 PSD) solved by projected
    # gradient through the change of variables agrees with cvxpy's direct
    # formulation of the same linear matrix inequality.
    d = 4
    A, D = _problem(d=d, diagonal=diagonal, seed=3)
    rng = np.random.RandomState(1)
    B = rng.normal(size=(d, d))
    M0 = None if prior == "identity" else B @ B.T + 0.1 * np.eye(d)
    pg = solve_mmc(A, D, diagonal=diagonal, prior=M0, regularization=mu)
    ref = solve_mmc_cvxpy(A, D, diagonal=diagonal, prior=M0, regularization=mu)
    assert pg.converged and ref.converged
    assert abs(pg.loss - ref.loss) <= 1e-3 * ref.loss
    M = pg.metric
    P = np.eye(d) if M0 is None else (np.diag(np.diag(M0)) if diagonal else M0)
    if diagonal:
        g = dissimilar_constraint_diag(np.diag(M), D * D)[0]
        f, f0 = A @ np.diag(M), A @ np.diag(P)
    else:
        g = dissimilar_constraint(M, D)[0]
        f, f0 = np.vdot(A, M), np.vdot(A, P)
    # Feasible for the regularised problem: g = 1 and M keeps mu of the prior.
    assert g >= 1 - 1e-9
    slack = np.linalg.eigvalsh(M - mu * (f / f0) * P).min()
    assert slack >= -1e-9 * np.abs(M).max()
    # ... which is a real restriction: its optimum is worse than Xing's.
    assert pg.loss > solve_mmc(A, D, diagonal=diagonal).loss * (1 + 1e-3)


def test_regularization_keeps_full_rank_and_is_validated():
    A, D = _problem(d=5, seed=1)
    exact = solve_mmc(A, D).metric
    reg = solve_mmc(A, D, regularization=0.5).metric
    tol = 1e-8 * np.abs(exact).max()
    assert np.linalg.matrix_rank(exact, tol=tol) < 5  # Xing's optimum: low rank
    # M >= 0.5 f(M) / f(I) * I, so every eigenvalue is bounded away from 0.
    floor = 0.5 * np.vdot(A, reg) / np.trace(A)
    assert np.linalg.eigvalsh(reg).min() >= floor * (1 - 1e-6) > 0
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"regularization must be in \[0, 1\)"):
            solve_mmc(A, D, regularization=bad)
        with pytest.raises(ValueError, match="regularization"):
            MMC(regularization=bad).fit(*_blobs())


def test_auto_regularization():
    X, y = _blobs(n_features=4)
    for diagonal in (False, True):
        est = MMC(n_constraints=30, diagonal=diagonal, random_state=0).fit(X, y)
        assert est.regularization_ == auto_regularization(4, 60, diagonal)
        same = MMC(
            n_constraints=30, diagonal=diagonal, regularization=est.regularization_,
            random_state=0,
        ).fit(X, y)
        np.testing.assert_allclose(same.components_, est.components_)
    # Shrinks toward the prior less as pairs accumulate, more as parameters do.
    mus = [auto_regularization(10, n) for n in (10, 100, 1000, 10**6)]
    assert all(0 < b < a < 1 for a, b in zip(mus, mus[1:]))
    assert auto_regularization(10, 100, diagonal=True) < auto_regularization(10, 100)
    assert auto_regularization(20, 100) > auto_regularization(10, 100)
    assert MMC(regularization=0).fit(X, y).regularization_ == 0.0


def test_regularization_zero_is_xings_problem_and_prior_matters():
    X, y = _blobs(n_features=3)
    est = MMC(n_constraints=20, regularization=0, random_state=0).fit(X, y)
    idx, lab = sample_pairs(y, 20, random_state=np.random.RandomState(0))
    diff_s, diff_d = pair_differences(pairs_from_indices(X, idx), lab)
    ref = solve_mmc_cvxpy(diff_s.T @ diff_s, diff_d)
    assert abs(est.loss_ - ref.loss) <= 1e-3 * ref.loss
    # With regularization the prior matters: a different prior, a
    # different metric (without it, the same optimum).
    B = np.random.RandomState(0).normal(size=(3, 3))
    prior = B @ B.T + np.eye(3)
    for mu, same in ((0.0, True), (0.5, False)):
        a = MMC(n_constraints=20, regularization=mu, random_state=0).fit(X, y)
        b = MMC(n_constraints=20, regularization=mu, prior=prior, random_state=0).fit(X, y)
        Ma, Mb = a.get_mahalanobis_matrix(), b.get_mahalanobis_matrix()
        close = np.allclose(Ma / np.trace(Ma), Mb / np.trace(Mb), atol=1e-3)
        assert close == same


def test_solution_does_not_depend_on_init():
    A, D = _problem(d=4, seed=2)
    rng = np.random.RandomState(0)
    B = rng.normal(size=(4, 4))
    a = solve_mmc(A, D)
    b = solve_mmc(A, D, prior=B @ B.T)
    assert b.loss == pytest.approx(a.loss, rel=1e-4)


def test_max_iter_is_a_hard_cap():
    A, D = _problem(d=5, seed=1)
    res = solve_mmc(A, D, max_iter=2, tol=0.0)
    assert res.n_iter == 2 and not res.converged
    assert np.all(np.isfinite(res.metric))
    assert res.message.startswith("max_iter=2 reached with a relative duality gap of")


@pytest.mark.parametrize("diagonal", [False, True], ids=["full", "diagonal"])
def test_solvers_return_solver_results(diagonal):
    A, D = _problem(d=3, diagonal=diagonal, seed=0)
    for res in (solve_mmc(A, D, diagonal=diagonal), solve_mmc_cvxpy(A, D, diagonal=diagonal)):
        assert isinstance(res, SolverResult) and res.converged
        np.testing.assert_allclose(
            res.components, components_from_metric(res.metric, strict=False)
        )
        f = np.vdot(np.diag(A) if diagonal else A, res.metric)
        assert res.loss == pytest.approx(f, rel=1e-9)
        assert res.info["constraint"] == pytest.approx(1.0, rel=1e-9)
        assert set(res.info) == {"constraint", "gap"}


@pytest.mark.parametrize("diagonal", [False, True], ids=["full", "diagonal"])
@pytest.mark.parametrize("solver", ["projected_gradient", "cvxpy"])
def test_fit_mmc_sets_up_the_problem_from_pairs(diagonal, solver):
    # fit_mmc = scatter of the similar differences + the prior's diagonal
    # (diagonal variant) + the 'auto' mu, then the solver.
    pairs, y = _pairs(n=30)
    B = np.random.RandomState(0).normal(size=(3, 3))
    M0 = B @ B.T + np.eye(3)
    res = fit_mmc(pairs, y, M0, diagonal=diagonal, solver=solver)
    mu = auto_regularization(3, 30, diagonal)
    assert isinstance(res, SolverResult) and res.info["regularization"] == mu
    diff_s, diff_d = pair_differences(pairs, y)
    A = np.sum(diff_s**2, axis=0) if diagonal else diff_s.T @ diff_s
    solve = solve_mmc if solver == "projected_gradient" else solve_mmc_cvxpy
    prior = np.diag(M0) if diagonal else M0
    ref = solve(A, diff_d, diagonal=diagonal, prior=prior, regularization=mu)
    np.testing.assert_allclose(res.metric, ref.metric)
    assert res.loss == ref.loss
    assert fit_mmc(pairs, y, M0, regularization=0.25).info["regularization"] == 0.25


@pytest.mark.parametrize("diagonal", [False, True], ids=["full", "diagonal"])
@pytest.mark.parametrize(
    "case", ["constant_feature", "identical_similar", "duplicate_columns", "huge", "tiny", "wide"]
)
def test_terminates_on_degenerate_data(case, diagonal):
    # metric-learn's diagonal MMC looped forever or crashed (LinAlgError,
    # unbound variable) on such inputs; here fit ends with a finite metric.
    rng = np.random.RandomState(0)
    X, y = _blobs(n_per_class=8, n_features=4)
    if case == "constant_feature":
        X[:, 1] = 3.0
    elif case == "identical_similar":
        X = np.repeat(rng.normal(size=(3, 4)), 8, axis=0)  # every class is one point
    elif case == "duplicate_columns":
        X = np.hstack([X, X[:, :2]])
    elif case == "huge":
        X = X * 1e10
    elif case == "tiny":
        X = X * 1e-10
    elif case == "wide":
        X = rng.normal(size=(24, 40))
    est = MMC(diagonal=diagonal, max_iter=200, n_constraints=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert 1 <= est.n_iter_ <= 200
    assert np.all(np.isfinite(est.components_))
    assert np.all(np.isfinite(est.transform(X)))


# ---------------------------------------------------------------- bad input


def test_pairs_of_wrong_shape_raise():
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2, n_features\)"):
        MMCPairs().fit(np.zeros((10, 3)), np.ones(10))
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2, n_features\)"):
        MMCPairs().fit(np.zeros((10, 3, 2)), np.ones(10))


def test_pair_labels_outside_encoding_raise():
    pairs, y = _pairs()
    with pytest.raises(ValueError, match=r"\+1 \(similar\) and -1 \(dissimilar\)"):
        MMCPairs().fit(pairs, np.where(y == 1, 2, -1))
    with pytest.raises(ValueError, match="must match"):
        MMCPairs().fit(pairs, y[:-1])


def test_all_pairs_similar_or_dissimilar_raise():
    pairs, _ = _pairs()
    with pytest.raises(ValueError, match="All pairs are labelled similar"):
        MMCPairs().fit(pairs, np.ones(len(pairs)))
    with pytest.raises(ValueError, match="All pairs are labelled dissimilar"):
        MMCPairs().fit(pairs, -np.ones(len(pairs)))


def test_one_class_raises():
    X, _ = _blobs()
    with pytest.raises(ValueError, match="at least 2 classes"):
        MMC().fit(X, np.zeros(len(X)))


def test_dissimilar_pairs_of_identical_points_raise():
    pairs, y = _pairs()
    pairs = pairs.copy()
    pairs[y == -1, 1] = pairs[y == -1, 0]
    with pytest.raises(ValueError, match="identical points"):
        MMCPairs(validation_fraction=0).fit(pairs, y)


def test_no_class_with_two_samples_raises():
    with pytest.raises(ValueError, match="at least 2 samples"):
        MMC().fit(np.arange(6.0).reshape(3, 2), [0, 1, 2])


# ---------------------------------------------------------------- estimators


def test_mmc_improves_knn_on_noisy_features():
    # Two informative features, six high-variance noise features: MMC should
    # down-weight the noise, Euclidean kNN cannot.
    rng = np.random.RandomState(0)
    X, y = _blobs(n_per_class=30, n_features=2, n_classes=3, seed=1)
    X = np.hstack([X, rng.normal(scale=8.0, size=(len(X), 6))])
    knn = KNeighborsClassifier(n_neighbors=3)
    base = cross_val_score(knn, X, y, cv=3).mean()
    for diagonal in (False, True):
        ours = cross_val_score(
            make_pipeline(MMC(diagonal=diagonal, random_state=0), knn), X, y, cv=3
        ).mean()
        assert ours > base + 0.1


def test_label_form_uses_the_pair_core():
    # MMC = sample_pairs + the same fit as MMCPairs on those pairs.
    X, y = _blobs()
    mmc = MMC(n_constraints=25, random_state=0).fit(X, y)
    idx, lab = sample_pairs(y, 25, random_state=np.random.RandomState(0))
    pairs = pairs_from_indices(X, idx)
    mp = MMCPairs(validation_fraction=0, random_state=0).fit(pairs, lab)
    np.testing.assert_allclose(
        mmc.get_mahalanobis_matrix(), mp.get_mahalanobis_matrix(), rtol=1e-10
    )


def test_cvxpy_solver_agrees_with_projected_gradient():
    X, y = _blobs(n_features=3)
    pg = MMC(n_constraints=20, random_state=0).fit(X, y)
    cx = MMC(n_constraints=20, solver="cvxpy", random_state=0).fit(X, y)
    assert cx.converged_
    assert abs(pg.loss_ - cx.loss_) <= 1e-3 * cx.loss_
    dg = MMC(n_constraints=20, diagonal=True, random_state=0).fit(X, y)
    dc = MMC(n_constraints=20, diagonal=True, solver="cvxpy", random_state=0).fit(X, y)
    assert abs(dg.loss_ - dc.loss_) <= 1e-3 * dc.loss_
    assert dg.regularization_ > 0 and pg.regularization_ > 0  # the default 'auto'
    for diagonal in (False, True):
        ex = MMC(n_constraints=20, diagonal=diagonal, regularization=0, random_state=0).fit(X, y)
        ec = MMC(
            n_constraints=20, diagonal=diagonal, regularization=0, solver="cvxpy",
            random_state=0,
        ).fit(X, y)
        assert abs(ex.loss_ - ec.loss_) <= 1e-3 * ec.loss_
    M = dg.get_mahalanobis_matrix()
    np.testing.assert_allclose(M, np.diag(np.diag(M)), atol=1e-12 * np.abs(M).max())


def test_convergence_warning_and_attributes():
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match="max_iter=1 reached"):
        est = MMC(max_iter=1, tol=0.0, random_state=0).fit(X, y)
    assert est.n_iter_ == 1 and est.converged_ is False
    est = MMC(random_state=0).fit(X, y)
    assert est.converged_ is True and est.components_.shape == (4, 4)


def test_verbose_prints_every_tenth_iteration(capsys):
    X, y = _blobs()
    est = MMC(verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    iters = [line for line in lines if line.startswith("[MMC] iter")]
    # verbose=1: iteration 1, then every 10th; verbose=2: all of them.
    assert len(iters) == 1 + est.n_iter_ // 10 and "gap" in iters[0]
    assert lines[-1].startswith(f"[MMC] done: {est.n_iter_} iterations")
    assert "converged=True (relative duality gap" in lines[-1]
    MMC(verbose=2, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("[MMC] iter") for line in lines) == est.n_iter_


def test_verbose_cvxpy_reports_its_status(capsys):
    X, y = _blobs(n_features=3)
    MMC(n_constraints=10, solver="cvxpy", verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[MMC] cvxpy (") and "status optimal" in lines[0]
    assert lines[1].startswith("[MMC] done:")


def test_random_state_reproducible_and_matters():
    X, y = _blobs()
    a = MMC(n_constraints=10, random_state=0).fit(X, y).components_
    b = MMC(n_constraints=10, random_state=0).fit(X, y).components_
    c = MMC(n_constraints=10, random_state=1).fit(X, y).components_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# ---------------------------------------------------------------- pairs API


def test_pairs_api():
    pairs, y = _pairs(n=60)
    est = MMCPairs(random_state=0).fit(pairs, y)
    dist = est.pair_distance(pairs)
    dec = est.decision_function(pairs)
    np.testing.assert_allclose(dec, est.threshold_ - dist)
    np.testing.assert_array_equal(est.predict(pairs), np.where(dec >= 0, 1, -1))
    assert est.score(pairs, y) == pytest.approx(np.mean(est.predict(pairs) == y))
    assert est.score(pairs, y) >= 0.9
    # The metric singles out feature 0, where similarity is decided.
    M = est.get_mahalanobis_matrix()
    assert M[0, 0] > 10 * max(M[1, 1], M[2, 2])
    # Recalibration moves the threshold to the best one on the given pairs.
    est.calibrate_threshold(pairs, y)
    best = est.score(pairs, y)
    for t in np.quantile(dist, [0.1, 0.3, 0.7, 0.9]):
        assert np.mean(np.where(dist <= t, 1, -1) == y) <= best


def test_pairs_zero_one_labels_equivalent():
    pairs, y = _pairs()
    a = MMCPairs(random_state=0).fit(pairs, y)
    b = MMCPairs(random_state=0).fit(pairs, (y == 1).astype(int))
    np.testing.assert_allclose(a.components_, b.components_)
    assert a.threshold_ == b.threshold_
    assert b.score(pairs, (y == 1).astype(int)) == a.score(pairs, y)


def test_validation_fraction_holds_out_pairs():
    pairs, y = _pairs(n=40)
    full = MMCPairs(validation_fraction=0, random_state=0).fit(pairs, y)
    held = MMCPairs(validation_fraction=0.5, random_state=0).fit(pairs, y)
    assert not np.allclose(full.components_, held.components_)
    # Too few pairs to hold out one of each label: falls back to training pairs.
    few = [0, 1, 30, 31]
    tiny = MMCPairs(validation_fraction=0.2, random_state=0).fit(pairs[few], y[few])
    assert np.isfinite(tiny.threshold_)


def test_pairs_feature_mismatch_raises():
    pairs, y = _pairs(d=3)
    est = MMCPairs(random_state=0).fit(pairs, y)
    with pytest.raises(ValueError, match="fitted with 3 features"):
        est.predict(pairs[:, :, :2])


# ---------------------------------------------------------------- persistence, safety


def test_pickle_roundtrip():
    X, y = _blobs()
    pairs, py = _pairs()
    for est, data, method in [
        (MMC(random_state=0).fit(X, y), X, "transform"),
        (MMCPairs(random_state=0).fit(pairs, py), pairs, "decision_function"),
    ]:
        clone_ = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(getattr(est, method)(data), getattr(clone_, method)(data))


def test_inputs_not_modified():
    pairs, y = _pairs()
    pairs32 = pairs.astype(np.float32)
    originals = [pairs.copy(), pairs32.copy(), y.copy()]
    est = MMCPairs(random_state=0).fit(pairs, y)
    est.predict(pairs)
    est.score(pairs, y)
    clone(est).fit(pairs32, y).decision_function(pairs32)
    for a, b in zip(originals, [pairs, pairs32, y]):
        np.testing.assert_array_equal(a, b)


def test_pairs_estimator_in_cross_validation():
    # Pairs are indexable along their first axis, so model selection works.
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    pairs, y = _pairs(n=60)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    search = GridSearchCV(MMCPairs(random_state=0), {"diagonal": [False, True]}, cv=cv)
    search.fit(pairs, y)
    assert search.best_score_ >= 0.8
    assert search.predict(pairs).shape == (60,)
