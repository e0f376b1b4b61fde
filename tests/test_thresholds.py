"""Pair threshold strategies (issue 15): calibrate_threshold and set_threshold.

Each strategy is checked against a brute-force reference that scores every
candidate cut of the sorted distances with scikit-learn's metrics.
"""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, fbeta_score

from skmetric.base import best_threshold

from ._registry import pair_estimators, seeded
from .test_tuples import _tuples

ESTIMATORS = pair_estimators()
IDS = [type(e).__name__ for e in ESTIMATORS]


def _candidates(d):
    """Every distinct cut: below the smallest distance, midpoints, the largest."""
    u = np.unique(d)
    return np.r_[u[0] - 1.0, (u[1:] + u[:-1]) / 2.0, u[-1]]


def _rates(d, y, t):
    pred = np.where(d <= t, 1, -1)
    tpr = np.mean(pred[y == 1] == 1)
    tnr = np.mean(pred[y == -1] == -1)
    return pred, tpr, tnr


def _random_problem(seed, n=80, ties=False):
    rng = np.random.RandomState(seed)
    y = np.where(rng.rand(n) < 0.4, 1, -1)
    d = np.abs(rng.normal(size=n) + 0.8 * (y == -1))
    if ties:
        d = np.round(d, 1)  # many equal distances: cuts only between distinct ones
    return d, y


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_accuracy_and_f_beta_are_the_best_cuts(seed, ties):
    d, y = _random_problem(seed, ties=ties)
    cands = _candidates(d)
    acc = [accuracy_score(y, np.where(d <= t, 1, -1)) for t in cands]
    t = best_threshold(d, y, "accuracy")
    assert accuracy_score(y, np.where(d <= t, 1, -1)) == pytest.approx(max(acc))
    for beta in (0.5, 1.0, 2.0):
        f = [fbeta_score(y, np.where(d <= c, 1, -1), beta=beta, zero_division=0.0)
             for c in cands]
        t = best_threshold(d, y, "f_beta", beta=beta)
        ours = fbeta_score(y, np.where(d <= t, 1, -1), beta=beta, zero_division=0.0)
        assert ours == pytest.approx(max(f))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("min_rate", [0.0, 0.3, 0.7, 0.95, 1.0])
def test_max_tpr_and_max_tnr_respect_the_minimum_rate(seed, min_rate):
    d, y = _random_problem(seed, ties=seed % 2 == 1)
    cands = _candidates(d)
    rates = np.array([_rates(d, y, c)[1:] for c in cands])  # (tpr, tnr) per cut
    _, tpr, tnr = _rates(d, y, best_threshold(d, y, "max_tpr", min_rate=min_rate))
    assert tnr >= min_rate
    assert tpr == pytest.approx(rates[rates[:, 1] >= min_rate, 0].max())
    # Among the cuts with that TPR, the one with the best TNR.
    same = rates[(rates[:, 1] >= min_rate) & np.isclose(rates[:, 0], tpr)]
    assert tnr == pytest.approx(same[:, 1].max())
    _, tpr, tnr = _rates(d, y, best_threshold(d, y, "max_tnr", min_rate=min_rate))
    assert tpr >= min_rate
    assert tnr == pytest.approx(rates[rates[:, 0] >= min_rate, 1].max())


def test_strategies_differ_where_they_should():
    # Similar pairs spread out: a high minimum TNR forces a small threshold,
    # a high minimum TPR a large one.
    d, y = _random_problem(0, n=400)
    low = best_threshold(d, y, "max_tpr", min_rate=0.99)
    high = best_threshold(d, y, "max_tnr", min_rate=0.99)
    assert low < best_threshold(d, y, "accuracy") < high
    # F-beta with a large beta favours recall: the threshold grows with beta.
    assert best_threshold(d, y, "f_beta", beta=0.2) <= best_threshold(d, y, "f_beta", beta=5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "auc"}, r"strategy must be one of \['accuracy', 'f_beta'"),
        ({"strategy": "max_tpr"}, r"needs min_rate, the minimum true-negative rate"),
        ({"strategy": "max_tnr"}, r"needs min_rate, the minimum true-positive rate"),
        ({"strategy": "max_tpr", "min_rate": 1.5}, r"min_rate must be a number in \[0, 1\]"),
        ({"strategy": "f_beta", "beta": 0}, r"beta must be a positive finite number"),
        ({"strategy": "f_beta", "beta": -1.0}, r"beta must be a positive finite number"),
    ],
)
def test_bad_calibration_parameters(kwargs, message):
    d, y = _random_problem(0)
    with pytest.raises(ValueError, match=message):
        best_threshold(d, y, **kwargs)


def test_rates_need_both_labels():
    d = np.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="needs both similar"):
        best_threshold(d, np.ones(3, int), "max_tpr", min_rate=0.5)


# ---------------------------------------------------------- on the learners ---
@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_calibrate_threshold_on_learners(est):
    pairs, y = _tuples(2, n=80)
    fitted = seeded(est).fit(pairs, y)
    d = fitted.pair_distance(pairs)
    fitted.calibrate_threshold(pairs, y, strategy="max_tpr", min_rate=0.9)
    pred = fitted.predict(pairs)
    assert np.mean(pred[y == -1] == -1) >= 0.9
    assert fitted.threshold_ == best_threshold(d, y, "max_tpr", min_rate=0.9)
    fitted.calibrate_threshold(pairs, (y == 1).astype(int), strategy="f_beta", beta=2.0)
    assert fitted.threshold_ == best_threshold(d, y, "f_beta", beta=2.0)
    with pytest.raises(ValueError, match="needs min_rate"):
        fitted.calibrate_threshold(pairs, y, strategy="max_tnr")
    with pytest.raises(ValueError, match=r"Pair labels must be \+1"):
        fitted.calibrate_threshold(pairs, np.where(y == 1, 1, 2))
    # set_threshold: by hand; every pair within it is predicted similar.
    fitted.set_threshold(float(np.median(d)))
    np.testing.assert_array_equal(fitted.predict(pairs), np.where(d <= np.median(d), 1, -1))
    with pytest.raises(ValueError, match="learned distance and must be >= 0"):
        fitted.set_threshold(-1.0)
    with pytest.raises(ValueError, match="finite number"):
        fitted.set_threshold(np.nan)
    with pytest.raises(NotFittedError):
        clone(est).set_threshold(1.0)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_fit_calibration_params(est):
    pairs, y = _tuples(2, n=80)
    plain = seeded(est).fit(pairs, y)
    strict = seeded(est).fit(pairs, y, calibration_params={"strategy": "max_tnr",
                                                           "min_rate": 1.0})
    np.testing.assert_allclose(strict.components_, plain.components_)
    # Every held-out similar pair (and so, here, every similar pair) is called similar.
    assert strict.threshold_ >= plain.threshold_
    with pytest.raises(ValueError, match="Unknown calibration parameter"):
        seeded(est).fit(pairs, y, calibration_params={"strategy": "accuracy", "rate": 1})
