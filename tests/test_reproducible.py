"""Reproducibility: the same random_state gives identical output on the CPU, for every estimator."""

import numpy as np
import pytest

from ._registry import (
    NOT_FEATURE_MATRIX,
    REGRESSION_TARGET,
    TUPLE_ESTIMATORS,
    all_estimators,
    make_estimator,
    seeded,
    tuple_estimators,
)

RANDOM = [
    e for e in all_estimators()
    if "random_state" in e.get_params() and type(e).__name__ not in NOT_FEATURE_MATRIX
]


def _data(seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=3.0, size=(3, 5))
    X = np.vstack([c + rng.normal(size=(20, 5)) for c in centers])
    return X, np.repeat(np.arange(3), 20)


def _outputs(est, X):
    out = []
    for method in ("transform", "predict", "predict_proba", "decision_function"):
        if hasattr(est, method):
            out.append(np.asarray(getattr(est, method)(X), dtype=float))
    assert out, f"{type(est).__name__} has no output method to compare"
    return out


@pytest.mark.parametrize("est", RANDOM, ids=[type(e).__name__ for e in RANDOM])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_same_random_state_same_output(est):
    X, y = _data()
    if type(est).__name__ in REGRESSION_TARGET:
        y = X[:, 0] + 0.1 * y
    first = _outputs(seeded(est).fit(X, y), X)
    again = _outputs(seeded(est).fit(X, y), X)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


TUPLE_RANDOM = [e for e in tuple_estimators() if "random_state" in e.get_params()]


@pytest.mark.parametrize("est", TUPLE_RANDOM, ids=[type(e).__name__ for e in TUPLE_RANDOM])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tuple_learners_same_random_state_same_output(est):
    from .test_tuples import _tuples

    T, y = _tuples(TUPLE_ESTIMATORS[type(est).__name__], n=60)
    first = seeded(est).fit(T, y)
    again = seeded(est).fit(T, y)
    np.testing.assert_array_equal(first.components_, again.components_)
    np.testing.assert_array_equal(first.decision_function(T), again.decision_function(T))


@pytest.mark.parametrize("name", ["CNNFeatureExtractor", "FineTunedCNN"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_image_estimators_same_random_state_same_output(name):
    pytest.importorskip("torch")
    import skmetric

    rng = np.random.RandomState(0)
    images = rng.rand(24, 8, 8)
    y = np.repeat(np.arange(3), 8)
    est = make_estimator(getattr(skmetric, name))
    first = seeded(est).fit(images, y).transform(images)
    again = seeded(est).fit(images, y).transform(images)
    np.testing.assert_array_equal(first, again)
