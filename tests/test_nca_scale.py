"""NCA at scale: the neighbour-truncated objective, the memory refusal, the torch backend."""

import sys

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn import config_context
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmetric import NCA
from skmetric._backend import NUMPY, Backend, get_backend
from skmetric._nca_objective import nca_candidates, nca_loss_grad, nca_truncated_loss_grad
from skmetric._nca_solver import fit_nca

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(n=90, n_features=5, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, n)
    X = rng.randn(n_classes, n_features)[y] + 0.8 * rng.randn(n, n_features)
    return X, y


def _torch_cpu():
    pytest.importorskip("torch")
    return get_backend("cpu")


# -- the truncated objective ---------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_truncated_gradient_matches_finite_differences(chunk_rows):
    X, y = _blobs(n=40)
    L = 0.5 * np.random.RandomState(1).randn(3, 5)
    candidates, _ = nca_candidates(L.ravel(), X, 3, 8)

    def f(p):
        return nca_truncated_loss_grad(p, X, y, 3, candidates, chunk_rows)

    err = check_grad(lambda p: f(p)[0], lambda p: f(p)[1], L.ravel())
    assert err < 1e-5 * max(1.0, np.linalg.norm(f(L.ravel())[1]))


def test_truncated_with_all_candidates_is_exact():
    X, y = _blobs(n=30)
    L = np.random.RandomState(2).randn(2, 5)
    candidates, bound = nca_candidates(L.ravel(), X, 2, 29)
    assert bound == 0.0
    loss, grad = nca_truncated_loss_grad(L.ravel(), X, y, 2, candidates)
    exact_loss, exact_grad = nca_loss_grad(L.ravel(), X, y, 2)
    assert loss == pytest.approx(exact_loss, rel=1e-12)
    np.testing.assert_allclose(grad, exact_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0])
def test_truncation_bound_holds(scale):
    # |truncated - exact| / n never exceeds the bound, tight or loose.
    X, y = _blobs(n=120)
    L = scale * np.random.RandomState(3).randn(4, 5)
    candidates, bound = nca_candidates(L.ravel(), X, 4, 10)
    truncated = nca_truncated_loss_grad(L.ravel(), X, y, 4, candidates)[0]
    exact = nca_loss_grad(L.ravel(), X, y, 4)[0]
    assert abs(truncated - exact) / X.shape[0] <= bound + 1e-12
    assert candidates.shape == (120, 10)
    assert not np.any(candidates == np.arange(120)[:, None])  # never itself


def test_truncated_solver_result():
    X, y = _blobs(n=100)
    L0 = np.eye(2, 5)
    res = fit_nca(X, y, L0, max_iter=30, n_neighbors_softmax=10)
    assert 1 <= res.n_iter <= 30
    assert res.info["n_neighbors_softmax"] == 10 and res.info["n_refresh"] >= 2
    assert 0.0 <= res.info["truncation_bound"] <= 1.0
    # The loss is the truncated objective with candidates found at the final L.
    candidates, _ = nca_candidates(res.components.ravel(), X, 2, 10)
    assert res.loss == pytest.approx(
        nca_truncated_loss_grad(res.components.ravel(), X, y, 2, candidates)[0]
    )
    assert res.loss < nca_truncated_loss_grad(L0.ravel(), X, y, 2, candidates)[0]


def test_estimator_auto_and_explicit_k():
    X, y = _blobs(n=100)
    exact = NCA(n_components=2, max_iter=20, random_state=0).fit(X, y)  # 'auto', small n
    assert exact.n_neighbors_softmax_ is None and exact.truncation_bound_ == 0.0
    # K >= n_samples - 1 is the exact objective.
    full = NCA(n_components=2, max_iter=20, random_state=0, n_neighbors_softmax=99).fit(X, y)
    np.testing.assert_array_equal(full.components_, exact.components_)
    trunc = NCA(n_components=2, max_iter=20, random_state=0, n_neighbors_softmax=15).fit(X, y)
    assert trunc.n_neighbors_softmax_ == 15 and trunc.truncation_bound_ >= 0.0
    with pytest.raises(ValueError, match="n_neighbors_softmax"):
        NCA(n_neighbors_softmax=0).fit(X, y)


@pytest.mark.slow
def test_truncated_held_out_accuracy_close_to_exact_on_digits():
    # StandardScaler -> NCA(16 components, 30 iterations) -> 3-NN, 3 stratified
    # folds. Measured: exact 2.78 % error, K = 20 2.62 % (K = 50: 2.45 %);
    # allowed margin: 1.5 points.
    X, y = load_digits(return_X_y=True)
    errors = {}
    for K in (None, 20):
        errs = []
        for tr, te in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
            nca = NCA(n_components=16, n_neighbors_softmax=K, max_iter=30, random_state=0)
            pipe = make_pipeline(StandardScaler(), nca, KNeighborsClassifier(3))
            errs.append(1 - pipe.fit(X[tr], y[tr]).score(X[te], y[te]))
        errors[K] = np.mean(errs)
    assert errors[None] < 0.05
    assert errors[20] <= errors[None] + 0.015


# -- the memory refusal --------------------------------------------------------


def test_exact_refuses_before_allocating_when_a_row_does_not_fit():
    X, y = _blobs(n=2000)
    # One row of the exact objective's blocks takes 32 * 2000 bytes = 62.5 KiB.
    with config_context(working_memory=0.01):
        msg = r"Exact NCA on n_samples=2000 .* needs 62\.5 KiB for one row .* budget of 10\.2 KiB"
        with pytest.raises(ValueError, match=msg):
            NCA(n_neighbors_softmax=None, max_iter=2).fit(X, y)
        with pytest.raises(ValueError, match="memory budget"):
            nca_loss_grad(np.eye(5).ravel(), X, y, 5)
        # The truncated objective has rows of K entries: it still runs.
        NCA(n_neighbors_softmax=10, max_iter=2).fit(X, y)


# -- bad input on the new paths --------------------------------------------------


@pytest.mark.parametrize("params", [{"n_neighbors_softmax": 5}, {"device": "cpu"}])
def test_bad_input_on_new_paths(params):
    if "device" in params:
        pytest.importorskip("torch")
    X, y = _blobs(n=40)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 1] = bad
        with pytest.raises(ValueError, match=r"(?i)nan|inf"):
            NCA(max_iter=2, **params).fit(Xb, y)
    with pytest.raises(ValueError, match="class"):
        NCA(max_iter=2, **params).fit(X, np.zeros(40, dtype=int))
    # A singleton class is allowed, as on the exact numpy path (its point can
    # never be classified correctly); X and y are never modified.
    y1 = y.copy()
    y1[0] = 7
    X0, y0 = X.copy(), y1.copy()
    nca = NCA(max_iter=3, **params).fit(X, y1)
    assert np.all(np.isfinite(nca.components_))
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y1, y0)


# -- the torch backend ------------------------------------------------------------


@pytest.mark.parametrize("truncated", [False, True])
def test_torch_objective_agrees_with_numpy(truncated):
    bk = _torch_cpu()
    X, y = _blobs(n=70)
    L = 0.7 * np.random.RandomState(4).randn(3, 5)
    if truncated:
        candidates, _ = nca_candidates(L.ravel(), X, 3, 12)
        a = nca_truncated_loss_grad(L.ravel(), X, y, 3, candidates, chunk_rows=9)
        b = nca_truncated_loss_grad(L.ravel(), X, y, 3, candidates, chunk_rows=9, backend=bk)
    else:
        a = nca_loss_grad(L.ravel(), X, y, 3, chunk_rows=9)
        b = nca_loss_grad(L.ravel(), X, y, 3, chunk_rows=9, backend=bk)
    assert isinstance(b[1], np.ndarray) and b[1].dtype == np.float64
    assert b[0] == pytest.approx(a[0], rel=1e-6)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-6, atol=1e-9 * np.abs(a[1]).max())


@pytest.mark.parametrize("n_neighbors_softmax", [None, 10])
def test_torch_fit_agrees_with_numpy(n_neighbors_softmax):
    pytest.importorskip("torch")
    X, y = _blobs(n=80)
    kw = dict(n_components=3, max_iter=15, random_state=0, n_neighbors_softmax=n_neighbors_softmax)
    a = NCA(**kw).fit(X, y)
    b = NCA(device="cpu", **kw).fit(X, y)
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-6, atol=1e-8)
    assert b.loss_ == pytest.approx(a.loss_, rel=1e-6)
    assert b.n_iter_ == a.n_iter_


def test_torch_backend_helpers():
    bk = _torch_cpu()
    rng = np.random.RandomState(5)
    A, B = rng.randn(6, 3), rng.randn(4, 3)
    expected = ((A[:, None] - B[None]) ** 2).sum(2)
    for backend in (NUMPY, bk):
        D = backend.sq_distances(backend.asarray(A), backend.asarray(B))
        np.testing.assert_allclose(backend.to_numpy(D), expected, rtol=1e-12, atol=1e-12)
        out = backend.zeros((3, 2))
        index = backend.asarray([[0, 2], [0, 0]], "int64")
        weights = backend.asarray([[1.0, 2.0], [3.0, 4.0]])
        backend.scatter_add(out, index, weights, backend.asarray([[1.0, 10.0], [100.0, 1000.0]]))
        scattered = [[701.0, 7010.0], [0.0, 0.0], [2.0, 20.0]]
        np.testing.assert_array_equal(backend.to_numpy(out), scattered)
        V = backend.asarray([[1.0], [10.0], [100.0]])
        gathered = backend.gather_matmul(index, weights, V)
        np.testing.assert_array_equal(backend.to_numpy(gathered), [[201.0], [7.0]])
        dots = backend.gather_dots(backend.asarray([[1.0], [2.0]]), V, index)
        np.testing.assert_array_equal(backend.to_numpy(dots), [[1.0, 100.0], [2.0, 2.0]])
    assert get_backend(None) is NUMPY and get_backend(bk) is bk


def test_kneighbors_on_device_agrees_with_sklearn():
    # The CUDA path (blocks of distances + topk) run on the CPU.
    bk = _torch_cpu()
    Z = np.random.RandomState(6).randn(200, 3)
    d_ref, i_ref = NUMPY.kneighbors(Z, 7)
    with config_context(working_memory=0.1):  # several blocks
        d, i = bk._kneighbors_by_blocks(bk.asarray(Z), 7)
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_allclose(d, d_ref, rtol=1e-9, atol=1e-12)


def test_device_errors(monkeypatch):
    torch = pytest.importorskip("torch")
    X, y = _blobs(n=30)
    with pytest.raises(ValueError, match="device='gpu0' is not a device"):
        NCA(device="gpu0").fit(X, y)
    with pytest.raises(ValueError, match="device"):
        NCA(device=3).fit(X, y)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' asks for a GPU, but torch sees no CUDA device"):
        NCA(device="cuda").fit(X, y)
    # 'auto' falls back to the CPU.
    assert Backend("auto").device.type == "cpu"


def test_device_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    X, y = _blobs(n=30)
    with pytest.raises(ImportError, match=r"NCA with device='cuda' needs torch.*skmetric\[deep\]"):
        NCA(device="cuda").fit(X, y)
    NCA(max_iter=2).fit(X, y)  # numpy needs no torch


def test_gpu_check_exits_cleanly_without_a_gpu(capsys, monkeypatch):
    gpu_check = pytest.importorskip("benchmarks.gpu_check")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        pytest.skip("a GPU is present: the check itself would run")
    monkeypatch.setitem(sys.modules, "torch", None)
    assert gpu_check.main([]) == 0
    assert "torch is not installed" in capsys.readouterr().out
    if torch is not None:
        monkeypatch.setitem(sys.modules, "torch", torch)
        assert gpu_check.main(["--n", "10"]) == 0
        assert "no CUDA GPU" in capsys.readouterr().out
