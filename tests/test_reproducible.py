"""Reproducibility: the same random_state gives identical output on the CPU, for every estimator."""

import numpy as np
import pytest

from ._registry import NOT_FEATURE_MATRIX, REGRESSION_TARGET, all_estimators, seeded

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
