"""The registry of public estimators that the common tests run over.

Every estimator class exported by ``skmetric`` is found automatically; a new
estimator only needs an entry in FAST_PARAMS when its defaults are slow, and in
EXPECTED_FAILED_CHECKS (with the reason) when a scikit-learn check cannot apply.
"""

import inspect

from sklearn.base import BaseEstimator

import skmetric

# Settings that keep the common checks fast; they never change what is checked.
FAST_PARAMS = {
    # "LMNN": {"max_iter": 20},
    "NCA": {"max_iter": 10},
    "MMC": {"max_iter": 100},
}

# {estimator name: {check name: reason}}; every entry must say why.
EXPECTED_FAILED_CHECKS = {}

# Estimators whose X is not a 2-D feature matrix (images, pairs): the shared
# bad-input test does not apply; their own tests cover bad input.
NOT_FEATURE_MATRIX = {"MMCPairs"}

# Weakly supervised estimators that fit on pairs X of shape (n_pairs, 2,
# n_features) with labels in {-1, +1}: scikit-learn's estimator checks feed 2-D
# feature matrices, so they cannot apply; these classes are left out of the
# common checks and their own test files cover the pairs API and bad input.
PAIR_ESTIMATORS = {"MMCPairs"}


def estimator_classes():
    """All public estimator classes of skmetric, sorted by name."""
    found = []
    for name in sorted(skmetric.__all__):
        obj = getattr(skmetric, name)
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and not inspect.isabstract(obj):
            if name.startswith("Base") or not hasattr(obj, "fit") or name in PAIR_ESTIMATORS:
                continue
            found.append(obj)
    return found


def make_estimator(cls):
    return cls(**FAST_PARAMS.get(cls.__name__, {}))


def all_estimators():
    return [make_estimator(cls) for cls in estimator_classes()]


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})
