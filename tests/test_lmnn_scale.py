"""LMNN at scale: the certified candidate re-check, the loss-only line search, the script."""

import json

import numpy as np
import pytest

from skmetric import LMNN
from skmetric import _lmnn_solver as solver
from skmetric._lmnn_solver import (
    CandidateReference,
    LMNNData,
    find_impostors,
    lmnn_loss_grad,
    select_targets,
    target_sq_distances,
)


def _data(n=300, d=6, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, n)
    X = 1.5 * rng.randn(n_classes, d)[y] + rng.randn(n, d)
    return X, y


def _brute_impostors(Z, y, thr):
    D = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    ii, ll = np.nonzero((D < thr[:, None]) & (y[:, None] != y[None, :]))
    return set(zip(ii.tolist(), ll.tolist()))


@pytest.mark.parametrize("n_components, scale", [(6, 0.02), (6, 0.2), (3, 0.02), (3, 0.2)])
def test_certified_rows_have_all_their_impostors_among_the_candidates(n_components, scale):
    # The bound is a proof: for every row it certifies at the moved map, every
    # pair within the radius there is a candidate of the reference search.
    X, y = _data()
    rng = np.random.RandomState(1)
    L_ref = rng.randn(n_components, X.shape[1]) / 3
    Z_ref = X @ L_ref.T
    targets = select_targets(Z_ref, y, 3)
    R = 1.5 * (target_sq_distances(Z_ref, targets).max(axis=1) + 1.0)
    ci, cl, w = find_impostors(Z_ref, y, R)
    assert w is None
    ref = CandidateReference(X, L_ref, R, ci, cl)
    candidates = set(zip(ci.tolist(), cl.tolist()))
    n_certified = 0
    for trial in range(5):
        L = L_ref + scale * np.linalg.norm(L_ref) * rng.randn(*L_ref.shape) / 5
        Z = X @ L.T
        thr = (target_sq_distances(Z, targets).max(axis=1) + 1.0) * (1 + 1e-4) + 1e-4
        failed = set(ref.uncertified(L, thr).tolist())
        truth = _brute_impostors(Z, y, thr)
        missed = {(i, l) for i, l in truth - candidates if i not in failed}
        assert not missed
        n_certified += X.shape[0] - len(failed)
    if scale == 0.02:
        assert n_certified > 0  # small moves are certified for some rows


def test_unmoved_square_map_certifies_every_row():
    X, y = _data()
    L = np.eye(X.shape[1]) / 2
    Z = X @ L.T
    targets = select_targets(Z, y, 3)
    r = target_sq_distances(Z, targets).max(axis=1) + 1.0
    ci, cl, _ = find_impostors(Z, y, 1.5 * r)
    ref = CandidateReference(X, L, 1.5 * r, ci, cl)
    assert ref.uncertified(L, r * (1 + 1e-4) + 1e-4).size == 0
    assert ref.uncertified(10 * L, r).size == X.shape[0]  # far away: nothing certified


def test_large_path_searches_are_exact_and_reuse_the_reference(monkeypatch):
    # LARGE_N lowered so the large-n path runs on a small problem: every
    # impostor set it hands the solver equals an exhaustive search at that map.
    X, y = _data(n=400, seed=3)
    monkeypatch.setattr(solver, "LARGE_N", 100)
    seen = []
    real = solver.LMNNData

    def spy(X_, targets, imp_i, imp_l, *args, **kwargs):
        seen.append((targets, np.asarray(imp_i), np.asarray(imp_l)))
        return real(X_, targets, imp_i, imp_l, *args, **kwargs)

    fits = []
    real_search = solver._ActiveSetFit._large_search

    def search_spy(self, L, Z, radius, exhaustive):
        out = real_search(self, L, Z, radius, exhaustive)
        fits.append(self)
        truth = _brute_impostors(Z, self.y, radius * (1 + 1e-4) + 1e-4)
        assert set(zip(out[0].tolist(), out[1].tolist())) == truth
        return out

    monkeypatch.setattr(solver, "LMNNData", spy)
    monkeypatch.setattr(solver._ActiveSetFit, "_large_search", search_spy)
    model = LMNN(max_iter=200, random_state=0).fit(X, y)
    big = [f for f in fits if f.X.shape[0] == X.shape[0]]
    assert len(big) >= 2
    # Fewer exhaustive searches than searches: the reference was reused.
    assert big[-1].n_reference < len(big)
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    exact = real(X, model.target_neighbors_, ii, ll)
    assert np.isclose(model.loss_, lmnn_loss_grad(model.components_.ravel(), exact)[0])


def test_line_search_trials_do_not_compute_gradients(monkeypatch):
    # One gradient per accepted iteration (plus the run's first point).
    X, y = _data(n=120)
    calls = {"grad": 0}
    real = solver._evaluate_projection

    def counting(Z, data):
        calls["grad"] += 1
        return real(Z, data)

    monkeypatch.setattr(solver, "_evaluate_projection", counting)
    res = solver.fit_lmnn(X, y, np.eye(X.shape[1]), max_iter=30)
    assert calls["grad"] <= 2 * res.n_iter + 20


def test_lmnn_large_script_prints_its_figures_as_json(capsys):
    from benchmarks import lmnn_large

    lmnn_large.main(["--n", "300", "--d", "16", "--n-components", "4", "--n-test", "100",
                     "--max-iter", "20", "--verbose", "0"])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("wall_s", "cpu_s", "peak_rss_mib", "n_iter", "acc_euclidean", "acc_lmnn"):
        assert key in figures
    assert figures["n"] == 300 and figures["n_components"] == 4
    assert 0.0 <= figures["acc_lmnn"] <= 1.0


def test_impostor_cap_subsamples_only_above_the_total():
    # Pairs concentrated in few blocks, fewer than the cap in all: nothing is
    # subsampled (a per-block quota used to re-weight such blocks).
    X, y = _data(n=200)
    Z = X / 2
    r = np.full(200, 4.0)
    ii, ll, w = find_impostors(Z, y, r, chunk_size=5)
    ii2, ll2, w2 = find_impostors(Z, y, r, chunk_size=5, max_impostors=ii.size, random_state=0)
    assert w is None and w2 is None and ii2.size == ii.size
    ii3, ll3, w3 = find_impostors(Z, y, r, chunk_size=5, max_impostors=ii.size // 3,
                                  random_state=0)
    assert w3 is not None and ii3.size < ii.size
    assert abs(w3.sum() - ii.size) <= 0.02 * ii.size  # unbiased count
