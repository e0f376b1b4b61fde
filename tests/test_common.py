"""scikit-learn's estimator checks over every public skmetric estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from ._registry import all_estimators, expected_failed_checks


@parametrize_with_checks(all_estimators(), expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
