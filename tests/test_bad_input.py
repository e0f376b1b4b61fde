"""Bad input over every public estimator: a clear ValueError or a correct result.

Non-finite, empty, 1-D and single-class input are cells of the one bad-input
matrix, tests/test_input_matrix.py; this file keeps the rest.
"""

import numpy as np
import pytest
from sklearn.base import clone

from ._registry import NOT_FEATURE_MATRIX, REGRESSION_TARGET, all_estimators, seeded

ESTIMATORS = [e for e in all_estimators() if type(e).__name__ not in NOT_FEATURE_MATRIX]
IDS = [type(e).__name__ for e in ESTIMATORS]
REGRESSORS = [e for e in ESTIMATORS if type(e).__name__ in REGRESSION_TARGET]


def _data(n_per_class=15, n_features=4, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=4.0, size=(n_classes, n_features))
    X = np.vstack([c + rng.normal(size=(n_per_class, n_features)) for c in centers])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return X, y



@pytest.mark.parametrize("est", REGRESSORS, ids=[type(e).__name__ for e in REGRESSORS])
def test_constant_target_raises(est):
    X, _ = _data()
    with pytest.raises(ValueError, match=r"non-constant target"):
        clone(est).fit(X, np.full(X.shape[0], 3.5))


@pytest.mark.parametrize("est", REGRESSORS, ids=[type(e).__name__ for e in REGRESSORS])
def test_string_target_raises(est):
    X, y = _data()
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    with pytest.raises(ValueError, match=r"real-valued \(regression\) targets"):
        clone(est).fit(X, names)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_string_labels_work(est):
    if type(est).__name__ in REGRESSION_TARGET:
        pytest.skip("regression target: see test_string_target_raises")
    X, y = _data()
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    a = seeded(est).fit(X, y)
    b = seeded(est).fit(X, names)
    if hasattr(a, "transform"):
        np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=1e-6, atol=1e-8)
    if hasattr(b, "predict"):
        assert set(np.unique(b.predict(X))) <= set(names)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_float32_kept(est):
    X, y = _data()
    X32 = X.astype(np.float32)
    fitted = seeded(est).fit(X32, y)
    if hasattr(fitted, "transform"):
        assert fitted.transform(X32).dtype == np.float32


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_inputs_not_modified(est):
    X, y = _data()
    X_orig, y_orig = X.copy(), y.copy()
    fitted = seeded(est).fit(X, y)
    for method in ("transform", "predict", "predict_proba", "decision_function"):
        if hasattr(fitted, method):
            getattr(fitted, method)(X)
    np.testing.assert_array_equal(X, X_orig)
    np.testing.assert_array_equal(y, y_orig)


DEVICE_ESTIMATORS = [e for e in all_estimators() if "device" in e.get_params()]


@pytest.mark.deep
@pytest.mark.parametrize("est", DEVICE_ESTIMATORS, ids=[type(e).__name__ for e in DEVICE_ESTIMATORS])
@pytest.mark.parametrize(
    "device, message",
    [("gpu0", r"device='gpu0' is not a device; expected 'auto', 'cpu', 'cuda'"),
     ("cuda:99", r"device='cuda:99'")],
)
def test_bad_device_is_a_value_error(est, device, message):
    pytest.importorskip("torch")
    images = type(est).__name__ in NOT_FEATURE_MATRIX  # image estimators; the rest take vectors
    X = np.random.RandomState(0).rand(12, 8, 8).astype(np.float32)
    X = X if images else X.reshape(12, -1)
    y = np.repeat([0, 1, 2], 4)
    with pytest.raises(ValueError, match=message):
        clone(est).set_params(device=device).fit(X, y)


def test_resolve_device_messages():
    torch = pytest.importorskip("torch")
    from skmetric._optional import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="asks for a GPU, but torch sees no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match=r"gpu='tpu' is not a device"):
        resolve_device("tpu", param="gpu")
    with pytest.raises(ValueError, match=r"gpu=\[0\] is not a device"):
        resolve_device([0], param="gpu")
