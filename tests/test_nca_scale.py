"""NCA at scale: the memory refusal, the torch backend (skmetric._backend)."""

import sys

import numpy as np
import pytest
from sklearn import config_context

from skmetric import NCA
from skmetric._backend import NUMPY, Backend, get_backend
from skmetric._nca_objective import nca_loss_grad

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(n=90, n_features=5, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, n)
    X = rng.randn(n_classes, n_features)[y] + 0.8 * rng.randn(n, n_features)
    return X, y


def _torch_cpu():
    pytest.importorskip("torch")
    return get_backend("cpu")


# -- the memory refusal --------------------------------------------------------


def test_exact_refuses_before_allocating_when_a_row_does_not_fit():
    X, y = _blobs(n=2000)
    # One row of the exact objective's blocks takes 32 * 2000 bytes = 62.5 KiB.
    with config_context(working_memory=0.01):
        msg = r"Exact NCA on n_samples=2000 .* needs 62\.5 KiB for one row .* budget of 10\.2 KiB"
        with pytest.raises(ValueError, match=msg):
            NCA(max_iter=2).fit(X, y)
        with pytest.raises(ValueError, match="memory budget"):
            nca_loss_grad(np.eye(5).ravel(), X, y, 5)


# -- bad input on the new paths --------------------------------------------------


@pytest.mark.parametrize("params", [{"device": "cpu"}])
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


def test_torch_objective_agrees_with_numpy():
    bk = _torch_cpu()
    X, y = _blobs(n=70)
    L = 0.7 * np.random.RandomState(4).randn(3, 5)
    a = nca_loss_grad(L.ravel(), X, y, 3, chunk_rows=9)
    b = nca_loss_grad(L.ravel(), X, y, 3, chunk_rows=9, backend=bk)
    assert isinstance(b[1], np.ndarray) and b[1].dtype == np.float64
    assert b[0] == pytest.approx(a[0], rel=1e-6)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-6, atol=1e-9 * np.abs(a[1]).max())


def test_torch_fit_agrees_with_numpy():
    pytest.importorskip("torch")
    X, y = _blobs(n=80)
    kw = dict(n_components=3, max_iter=15, random_state=0)
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
        backend.index_add(out, backend.asarray([0, 2, 0], "int64"), backend.asarray(np.ones((3, 2))))
        np.testing.assert_array_equal(backend.to_numpy(out), [[2, 2], [0, 0], [1, 1]])
    assert get_backend(None) is NUMPY and get_backend(bk) is bk


def test_device_errors(monkeypatch):
    torch = pytest.importorskip("torch")
    X, y = _blobs(n=30)
    with pytest.raises(ValueError, match="Invalid device 'gpu0'"):
        NCA(device="gpu0").fit(X, y)
    with pytest.raises(ValueError, match="device"):
        NCA(device=3).fit(X, y)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' needs a CUDA GPU"):
        NCA(device="cuda").fit(X, y)
    # 'auto' falls back to the CPU.
    assert Backend("auto").device.type == "cpu"


def test_device_without_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    X, y = _blobs(n=30)
    with pytest.raises(ImportError, match=r"NCA with device='cuda' needs torch.*skmetric\[deep\]"):
        NCA(device="cuda").fit(X, y)
    NCA(max_iter=2).fit(X, y)  # numpy needs no torch
