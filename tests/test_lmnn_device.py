"""LMNN on torch tensors (``device``): agreement with numpy, blocking, errors.

The torch path runs on the CPU here (``device='cpu'``), as NCA's tests do:
the same code runs on CUDA, where only the block sizes differ (checked by
forcing the CUDA sizing on the CPU).
"""

import json
import sys

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone

from skmetric import LMNN, LMNNClassifier
from skmetric import _lmnn_solver as solver
from skmetric._lmnn_solver import (
    LMNNData,
    evaluate_map,
    evaluate_metric,
    find_impostors,
    lmnn_ops,
    select_targets,
    target_sq_distances,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

REL = 1e-6  # the agreement asked of torch (float64) against numpy


def _ops():
    pytest.importorskip("torch")
    return lmnn_ops("cpu")


def _blobs(n_per_class=25, n_features=5, n_classes=3, spread=1.5, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=2.0, size=(n_classes, n_features))
    X = np.vstack([c + spread * rng.normal(size=(n_per_class, n_features)) for c in centers])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return X, y


def _rel(a, b):
    """Largest difference relative to the largest entry of ``a``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


def _sorted_pairs(i, l, n):
    return np.sort(i.astype(np.int64) * n + l)


# -- the objective -------------------------------------------------------------------


@pytest.mark.parametrize("push_loss", ["hinge", "smooth_hinge", "squared_hinge"])
@pytest.mark.parametrize("weighted", [False, True])
def test_objective_agrees_with_numpy(push_loss, weighted):
    ops = _ops()
    ops.pair_block = 37  # several pair blocks
    X, y = _blobs()
    y[0] = 7  # a singleton class: -1 targets
    rng = np.random.RandomState(1)
    L = 0.7 * rng.normal(size=(3, 5))
    T = select_targets(X @ L.T, y, 3)
    assert np.any(T < 0)
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    w = rng.uniform(0.5, 2.0, ii.size) if weighted else None
    host = LMNNData(X, T, ii, ll, 0.4, push_loss, w)
    dev = ops.data(X, T, ii, ll, 0.4, push_loss, w)
    assert dev.n_impostor_pairs == host.n_impostor_pairs and dev.ta.size == host.ta.size
    a, b = evaluate_map(L, host), evaluate_map(L, dev)
    assert isinstance(b.grad, np.ndarray) and b.grad.dtype == np.float64
    assert b.n_active == a.n_active > 0
    assert b.loss == pytest.approx(a.loss, rel=REL)
    assert _rel(a.grad, b.grad) < REL
    # In M (the projected-gradient solver's variable), a non-symmetric M too.
    M = L.T @ L + 0.1 * rng.normal(size=(5, 5))
    a, b = evaluate_metric(M, host), evaluate_metric(M, dev)
    assert b.n_active == a.n_active
    assert b.loss == pytest.approx(a.loss, rel=REL)
    assert _rel(a.grad, b.grad) < REL


def test_distances_and_targets_agree_with_numpy():
    ops = _ops()
    ops.pair_block = 10
    X, y = _blobs()
    L = np.random.RandomState(2).normal(size=(4, 5))
    Z = X @ L.T
    Zt = ops.project(ops.asarray(X), L)
    np.testing.assert_allclose(ops.bk.to_numpy(Zt), Z, rtol=1e-12, atol=1e-12)
    T = select_targets(Z, y, 3)
    np.testing.assert_array_equal(ops.select_targets(Zt, y, 3), T)
    np.testing.assert_allclose(ops.target_sq_distances(Zt, T), target_sq_distances(Z, T),
                               rtol=1e-12)
    a, b = np.array([0, 5, 70, 3]), np.array([1, 60, 2, 3])
    np.testing.assert_allclose(ops.pair_sq_distances(Zt, a, b),
                               solver.pair_sq_distances(Z, a, b), rtol=1e-12, atol=1e-12)
    assert ops.pair_sq_distances(Zt, a[:0], b[:0]).shape == (0,)


# -- the impostor search -----------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_impostor_search_agrees_with_numpy(chunk_size):
    ops = _ops()
    X, y = _blobs(n_per_class=40)
    n = X.shape[0]
    Z = X @ np.random.RandomState(3).normal(size=(5, 5)).T
    radius = target_sq_distances(Z, select_targets(Z, y, 3)).max(axis=1) + 1.0
    Zt = ops.asarray(Z)
    i0, l0, w0 = find_impostors(Z, y, radius, chunk_size)
    i1, l1, w1 = ops.find_impostors(Zt, y, radius, chunk_size)
    assert w0 is None and w1 is None and i1.dtype == np.int32 and i0.size > 100
    np.testing.assert_array_equal(_sorted_pairs(i1, l1, n), _sorted_pairs(i0, l0, n))
    assert np.all(y[i1] != y[l1])
    # Some rows only, with the (float32) distances.
    rows = np.arange(0, n, 3)
    *p0, d0 = find_impostors(Z, y, radius, chunk_size, rows=rows, return_distances=True)
    *p1, d1 = ops.find_impostors(Zt, y, radius, chunk_size, rows=rows, return_distances=True)
    np.testing.assert_array_equal(p1[0], p0[0])
    np.testing.assert_array_equal(p1[1], p0[1])
    assert set(np.unique(p1[0])) <= set(rows)
    np.testing.assert_allclose(d1, d0, rtol=1e-4, atol=1e-4)
    # A cap: the same generator keeps the same pairs with the same weights.
    c0 = find_impostors(Z, y, radius, chunk_size, max_impostors=150, random_state=4)
    c1 = ops.find_impostors(Zt, y, radius, chunk_size, max_impostors=150, random_state=4)
    assert c0[2] is not None and c0[0].size < i0.size
    for u, v in zip(c0, c1):
        np.testing.assert_array_equal(u, v)


def test_cuda_block_sizing_on_the_cpu():
    # The CUDA search blocks are sized from the memory budget (half the free
    # GPU memory there; sklearn's working_memory here): several blocks, same
    # pairs; and a budget below one row refuses before allocating.
    ops = _ops()
    ops.on_gpu = True
    X, y = _blobs(n_per_class=60)
    Z = X @ np.random.RandomState(5).normal(size=(5, 5)).T
    radius = target_sq_distances(Z, select_targets(Z, y, 3)).max(axis=1) + 1.0
    with config_context(working_memory=0.1):  # 100 KiB: 27 rows of 120 columns
        blocks = list(ops._search_rows(60, 120, None))
        assert len(blocks) == 3 and blocks[0] == (0, 27)
        i1, l1, _ = ops.find_impostors(ops.asarray(Z), y, radius)
    i0, l0, _ = find_impostors(Z, y, radius)
    np.testing.assert_array_equal(_sorted_pairs(i1, l1, 180), _sorted_pairs(i0, l0, 180))
    with config_context(working_memory=0.001):
        with pytest.raises(ValueError, match="LMNN impostor search needs .* memory budget"):
            list(ops._search_rows(60, 120, None))


# -- whole fits ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver_name", ["lbfgs", "projected_gradient"])
def test_fit_agrees_with_numpy(solver_name):
    pytest.importorskip("torch")
    X, y = _blobs()
    kw = dict(max_iter=40, solver=solver_name, random_state=0)
    if solver_name == "lbfgs":
        kw["n_components"] = 3
    a = LMNN(**kw).fit(X, y)
    b = LMNN(device="cpu", **kw).fit(X, y)
    assert b.n_iter_ == a.n_iter_ and b.converged_ == a.converged_
    assert b.loss_ == pytest.approx(a.loss_, rel=REL)
    np.testing.assert_array_equal(b.target_neighbors_, a.target_neighbors_)
    if solver_name == "lbfgs":
        assert _rel(a.components_, b.components_) < REL
    else:  # L is a factor of M, unique only up to rotation: compare M
        assert _rel(a.get_mahalanobis_matrix(), b.get_mahalanobis_matrix()) < REL


def test_classifier_takes_the_device():
    pytest.importorskip("torch")
    X, y = _blobs()
    a = LMNNClassifier(max_iter=30, random_state=0).fit(X, y)
    b = LMNNClassifier(max_iter=30, random_state=0, device="cpu").fit(X, y)
    assert b.lmnn_.device == "cpu"
    assert b.loss_ == pytest.approx(a.loss_, rel=REL)
    np.testing.assert_array_equal(b.predict(X), a.predict(X))


def test_large_path_on_torch_agrees_with_numpy(monkeypatch):
    # The large-n path (subsample warm start, candidate re-checks between
    # exhaustive searches), switched on for a small problem, on both backends.
    pytest.importorskip("torch")
    from skmetric._lmnn_torch import TorchOps

    monkeypatch.setattr(solver, "LARGE_N", 60)
    X, y = _blobs(n_per_class=50, spread=2.0)
    sizes = []
    real = TorchOps.find_impostors

    def spy(self, Z, *args, **kwargs):
        sizes.append(Z.shape[0])
        return real(self, Z, *args, **kwargs)

    monkeypatch.setattr(TorchOps, "find_impostors", spy)
    a = LMNN(max_iter=100, random_state=0).fit(X, y)
    b = LMNN(max_iter=100, random_state=0, device="cpu").fit(X, y)
    assert min(sizes) < X.shape[0] == max(sizes)  # the warm start ran on a subsample
    assert b.n_iter_ == a.n_iter_ and b.converged_ == a.converged_
    assert b.loss_ == pytest.approx(a.loss_, rel=REL)
    assert _rel(a.components_, b.components_) < REL


def test_bad_input_and_user_arrays_on_the_torch_path():
    pytest.importorskip("torch")
    X, y = _blobs()
    Xb = X.copy()
    Xb[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"(?i)nan"):
        LMNN(device="cpu").fit(Xb, y)
    X0, y0 = X.copy(), y.copy()
    model = LMNN(max_iter=5, device="cpu").fit(X, y)
    assert isinstance(model.components_, np.ndarray) and np.all(np.isfinite(model.components_))
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# -- device errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("Est", [LMNN, LMNNClassifier])
def test_device_errors(Est, monkeypatch):
    torch = pytest.importorskip("torch")
    X, y = _blobs()
    with pytest.raises(ValueError, match="device='gpu0' is not a device"):
        Est(device="gpu0").fit(X, y)
    with pytest.raises(ValueError, match="device"):
        Est(device=3).fit(X, y)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' asks for a GPU, but torch sees no CUDA"):
        Est(device="cuda").fit(X, y)
    with pytest.raises(ValueError, match="device='cuda:0' asks for a GPU"):
        Est(device="cuda:0").fit(X, y)
    # 'auto' falls back to the CPU (torch there).
    model = Est(device="auto", max_iter=3).fit(X, y)
    assert np.all(np.isfinite(model.components_))


@pytest.mark.parametrize("Est", [LMNN, LMNNClassifier])
def test_device_without_torch_names_the_extra(Est, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    X, y = _blobs()
    with pytest.raises(ImportError, match=r"LMNN with device='cuda' needs torch.*skmetric\[deep\]"):
        Est(device="cuda").fit(X, y)
    Est(max_iter=2).fit(X, y)  # numpy needs no torch
    assert Est().get_params()["device"] is None


# -- the benchmark script --------------------------------------------------------------------


def test_gpu_lmnn_script_prints_json_lines(capsys, monkeypatch):
    pytest.importorskip("torch")
    gpu_lmnn = pytest.importorskip("benchmarks.gpu_lmnn")
    assert gpu_lmnn.main(["--n", "400", "--d", "6", "--n-classes", "3", "--max-iter", "5",
                          "--n-test", "100", "--device", "none", "cpu"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["device"] for r in rows] == [None, "cpu"]
    for r in rows:
        assert r["n"] == 400 and r["d"] == 6 and r["wall_s"] > 0 and r["n_iter"] >= 1
        assert 0.0 <= r["knn_error"] <= 1.0
    assert rows[1]["loss"] == pytest.approx(rows[0]["loss"], rel=REL)
    assert rows[1]["agreement_rel"] < REL
    monkeypatch.setattr(sys.modules["torch"].cuda, "is_available", lambda: False)
    assert gpu_lmnn.main(["--n", "50", "--device", "cuda"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["device"] == "cuda" and "no CUDA GPU" in row["skipped"]


def test_clone_keeps_the_device():
    est = LMNN(device="cpu")
    assert clone(est).device == "cpu"


def test_gpu_check_lmnn_row_runs_on_any_device(capsys):
    # gpu_check's LMNN part (agreement + a timed fit), on the CPU here.
    pytest.importorskip("torch")
    gpu_check = pytest.importorskip("benchmarks.gpu_check")
    args = gpu_check._parse(["--d", "6", "--device", "cpu", "--lmnn-n", "300",
                             "--lmnn-max-iter", "3"])
    assert gpu_check._lmnn_row(args) < REL
    out = capsys.readouterr().out
    assert "LMNN objective, max relative difference" in out
    row = json.loads(out.splitlines()[-1])
    assert row["device"] == "cpu" and row["n"] == 300 and row["n_iter"] >= 1


def test_gather_fallback_agrees_with_numpy(monkeypatch):
    # A torch build without the sparse kernels on its device falls back to
    # gathers and index_add_ (blocks of pair_block pairs), with the same results.
    ops = _ops()
    ops.pair_block = 23
    torch = ops.torch

    def missing(*args, **kwargs):
        raise NotImplementedError("sampled_addmm: not on this device")

    monkeypatch.setattr(torch.sparse, "sampled_addmm", missing)
    X, y = _blobs()
    rng = np.random.RandomState(6)
    L = 0.7 * rng.normal(size=(3, 5))
    T = select_targets(X @ L.T, y, 3)
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    host, dev = LMNNData(X, T, ii, ll), ops.data(X, T, ii, ll)
    a, b = evaluate_map(L, host), evaluate_map(L, dev)
    assert ops.sparse_kernels is False
    assert b.loss == pytest.approx(a.loss, rel=REL) and b.n_active == a.n_active
    assert _rel(a.grad, b.grad) < REL
    M = L.T @ L
    a, b = evaluate_metric(M, host), evaluate_metric(M, dev)
    assert b.loss == pytest.approx(a.loss, rel=REL) and _rel(a.grad, b.grad) < REL
