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
    "LMNN": {"max_iter": 30},
    "LMNNClassifier": {"max_iter": 30},
    "MultiMetricLMNN": {"max_iter": 30},
    "NCA": {"max_iter": 10},
    "MMC": {"max_iter": 100},
    "MCML": {"max_iter": 30},
    "ITML": {"max_iter": 30},
    "LSML": {"max_iter": 50},
    "SCML": {"max_iter": 50},
    "CNNFeatureExtractor": {"input_size": 8, "batch_size": 16},
    "FineTunedCNN": {"input_size": 8, "max_epochs": 1, "batch_size": 16},
    "SiameseNet": {"max_epochs": 2, "n_pairs": 40, "embedding_dim": 4, "hidden_layer_sizes": (8,)},
    "DeepMetricLearner": {"max_epochs": 2, "embedding_dim": 4, "hidden_layer_sizes": (8,)},
}

# {estimator name: {check name: reason}}; every entry must say why.
EXPECTED_FAILED_CHECKS = {}

# CNNFeatureExtractor / FineTunedCNN take images ((N, H, W), (N, H, W, C),
# (N, C, H, W) or a list of paths) and reject 2-D X with a ValueError that says
# so; every check below fits on a 2-D feature matrix, so it cannot apply. Their
# own tests cover the intent on images (pickling, idempotent fit, NaN, empty
# input, dtypes, clone, unchanged parameters and inputs, sample order).
_IMAGE_INPUT = "fits on a 2-D feature matrix; image estimators reject 2-D X with a ValueError"
_IMAGE_CHECKS = [
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
]
EXPECTED_FAILED_CHECKS["CNNFeatureExtractor"] = dict.fromkeys(
    [*_IMAGE_CHECKS, "check_complex_data", "check_fit2d_1sample"], _IMAGE_INPUT
)
EXPECTED_FAILED_CHECKS["FineTunedCNN"] = dict.fromkeys(
    [
        *_IMAGE_CHECKS,
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
        "check_classifiers_train",
        "check_supervised_y_2d",
    ],
    _IMAGE_INPUT,
)

# The deep estimators take optimizer__* parameters through **kwargs (skorch's
# routing); the check passes a parameter literally named 'kwargs', which is not
# an optimizer__* name, so __init__ rejects it with Python's own TypeError.
_ROUTED = "**kwargs takes optimizer__* parameters only; the check passes one named 'kwargs'"
for _name in ("SiameseNet", "FineTunedCNN", "DeepMetricLearner"):
    EXPECTED_FAILED_CHECKS.setdefault(_name, {})["check_do_not_raise_errors_in_init_or_set_params"] = _ROUTED

# Estimators supervised by one real-valued target per sample (regression),
# not by class labels: the bad-input tests check constant and non-numeric
# targets for them instead of single-class and string labels.
REGRESSION_TARGET = {"MLKR"}

# Weakly supervised estimators that fit on tuples of points, X of shape
# (n_tuples, tuple_size, n_features), by tuple size: pairs with labels in
# {-1, +1}; triplets (a, b, c) stating d(a, b) < d(a, c) and quadruplets
# (a, b, c, d) stating d(a, b) < d(c, d), optionally labelled +1 / -1.
# scikit-learn's estimator checks feed 2-D feature matrices, so they cannot
# apply; these classes are left out of the common checks;
# tests/test_tuples.py runs the tuple-input equivalents of the API checks over
# all of them (tests/test_pair_estimators.py the pair-specific ones), and
# their own test files cover the rest.
TUPLE_ESTIMATORS = {
    "MMCPairs": 2, "ITMLPairs": 2, "SDMLPairs": 2, "SCMLTriplets": 3, "LSMLQuadruplets": 4,
}
PAIR_ESTIMATORS = {name for name, size in TUPLE_ESTIMATORS.items() if size == 2}

# Estimators whose X is not a 2-D feature matrix (images, tuples): the shared
# bad-input test does not apply; their own tests cover bad input.
NOT_FEATURE_MATRIX = {"CNNFeatureExtractor", "FineTunedCNN", *TUPLE_ESTIMATORS}


def estimator_classes():
    """All public estimator classes of skmetric, sorted by name."""
    found = []
    for name in sorted(skmetric.__all__):
        obj = getattr(skmetric, name)
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and not inspect.isabstract(obj):
            if name.startswith("Base") or not hasattr(obj, "fit") or name in TUPLE_ESTIMATORS:
                continue
            found.append(obj)
    return found


def seeded(est):
    """An unfitted clone of ``est`` with random_state=0 where it has one."""
    from sklearn.base import clone

    est = clone(est)
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    return est


def make_estimator(cls):
    return cls(**FAST_PARAMS.get(cls.__name__, {}))


def all_estimators():
    return [make_estimator(cls) for cls in estimator_classes()]


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


def pair_estimators():
    """Instances of the pair-input estimators, with their fast settings."""
    return [make_estimator(getattr(skmetric, name)) for name in sorted(PAIR_ESTIMATORS)]


def tuple_estimators():
    """Instances of every tuple-input estimator (pairs, triplets, quadruplets),
    with their fast settings."""
    return [make_estimator(getattr(skmetric, name)) for name in sorted(TUPLE_ESTIMATORS)]
