"""API checks for the pair-input estimators (X of shape (n_pairs, 2, n_features)).

scikit-learn's estimator checks feed 2-D feature matrices, so they cannot run
on these estimators; this file runs the pair-input versions of the checks that
matter: clone and parameters, fit returns self, pickling, n_features_in_,
not-fitted errors, inputs left untouched, predictions consistent with the
decision function, label encodings, and clear errors for bad input.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ._registry import pair_estimators, seeded

ESTIMATORS = pair_estimators()
IDS = [type(e).__name__ for e in ESTIMATORS]


def _pairs(n=60, d=4, seed=0):
    rng = np.random.RandomState(seed)
    a = rng.normal(size=(n, d))
    b = a + 0.3 * rng.normal(size=(n, d))
    y = np.where(np.arange(n) < n // 2, 1, -1)
    b[y == -1, 0] += rng.choice([-1.0, 1.0], size=(y == -1).sum()) * rng.uniform(2, 3, (y == -1).sum())
    return np.stack([a, b], axis=1), y



@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_clone_params_and_fit_returns_self(est):
    params = est.get_params()
    cloned = clone(est)
    assert cloned.get_params() == params
    pairs, y = _pairs()
    assert cloned.fit(pairs, y) is cloned
    assert cloned.get_params() == params  # fit does not change parameters
    assert cloned.n_features_in_ == pairs.shape[2]


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_not_fitted(est):
    pairs, _ = _pairs()
    with pytest.raises(NotFittedError):
        clone(est).predict(pairs)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_pickle_and_refit_identical(est):
    pairs, y = _pairs()
    fitted = seeded(est).fit(pairs, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.decision_function(pairs), fitted.decision_function(pairs))
    again = seeded(est).fit(pairs, y)
    np.testing.assert_allclose(again.components_, fitted.components_)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_predictions_consistent_and_accurate(est):
    pairs, y = _pairs()
    fitted = seeded(est).fit(pairs, y)
    scores = fitted.decision_function(pairs)
    pred = fitted.predict(pairs)
    np.testing.assert_array_equal(pred, np.where(scores >= 0, 1, -1))
    assert set(np.unique(pred)) <= {-1, 1}
    assert fitted.score(pairs, y) > 0.8
    # Distances derive from the fitted components.
    diff = (pairs[:, 0] - pairs[:, 1]) @ fitted.components_.T
    np.testing.assert_allclose(fitted.pair_distance(pairs), np.linalg.norm(diff, axis=1), atol=1e-10)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_zero_one_labels_same_as_signed(est):
    pairs, y = _pairs()
    a = seeded(est).fit(pairs, y)
    b = seeded(est).fit(pairs, (y == 1).astype(int))
    np.testing.assert_allclose(a.components_, b.components_)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_inputs_not_modified(est):
    pairs, y = _pairs()
    pairs_orig, y_orig = pairs.copy(), y.copy()
    fitted = seeded(est).fit(pairs, y)
    fitted.predict(pairs)
    fitted.transform(pairs[:, 0])
    np.testing.assert_array_equal(pairs, pairs_orig)
    np.testing.assert_array_equal(y, y_orig)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_bad_input(est):
    pairs, y = _pairs()
    with pytest.raises(ValueError, match=r"\(n_pairs, 2, n_features\)"):
        clone(est).fit(pairs[:, 0], y)
    with pytest.raises(ValueError, match=r"\+1 \(similar\) and -1"):
        clone(est).fit(pairs, np.where(y == 1, 2, -1))
    bad = pairs.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clone(est).fit(bad, y)
    fitted = seeded(est).fit(pairs, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.zeros((3, 2, pairs.shape[2] + 1)))
