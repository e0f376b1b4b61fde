"""Input validation shared by every learner (called once, in ``fit``).

Labelled data go through :func:`check_labeled_data`, real-valued
(regression) targets through :func:`check_regression_data`; pairs (weakly
supervised learners) go through :func:`check_pairs`. Both return new arrays:
user data are never modified in place.
"""

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

__all__ = [
    "check_labeled_data",
    "check_regression_data",
    "check_pairs",
    "check_pair_labels",
    "FLOAT_DTYPES",
]

FLOAT_DTYPES = (np.float64, np.float32)


def check_labeled_data(
    estimator,
    X,
    y,
    *,
    min_classes=2,
    min_samples_per_class=1,
    reset=True,
    dtype=FLOAT_DTYPES,
):
    """Validate ``(X, y)`` for a label-supervised learner.

    Parameters
    ----------
    estimator : estimator instance
        Receives ``n_features_in_`` (and ``feature_names_in_``) when ``reset``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels of any hashable type (strings work).
    min_classes : int, default=2
        Fewer distinct classes raise a ValueError.
    min_samples_per_class : int, default=1
        A class with fewer members raises a ValueError naming the class.
    reset : bool, default=True
        Passed to :func:`sklearn.utils.validation.validate_data`.
    dtype : dtype or tuple of dtypes
        Accepted float dtypes; other inputs are converted to the first one.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y_encoded : ndarray of shape (n_samples,), int
        Labels as indices into ``classes``.
    classes : ndarray of shape (n_classes,)
        The distinct labels, sorted.
    """
    X, y = validate_data(estimator, X, y, reset=reset, dtype=dtype, y_numeric=False)
    check_classification_targets(y)
    classes, y_encoded, counts = np.unique(y, return_inverse=True, return_counts=True)
    if classes.size < min_classes:
        # "1 class" is the wording scikit-learn's estimator checks look for.
        found = f"{classes.size} class" + ("" if classes.size == 1 else "es")
        raise ValueError(
            f"{type(estimator).__name__} needs at least {min_classes} classes in y, "
            f"got {found}."
        )
    if min_samples_per_class > 1 and counts.min() < min_samples_per_class:
        small = classes[counts < min_samples_per_class]
        raise ValueError(
            f"{type(estimator).__name__} needs at least {min_samples_per_class} samples "
            f"in every class; class(es) {small[:5].tolist()} have fewer "
            f"(smallest count: {counts.min()})."
        )
    return X, y_encoded.astype(np.intp, copy=False), classes


def check_pair_labels(y, n_pairs=None):
    """Validate pair labels and return them as an int array in {-1, +1}.

    Accepted encodings: {-1, +1} (dissimilar, similar) and, equivalently,
    {0, 1} (0 means dissimilar). Booleans are read as {0, 1}.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"Pair labels must be 1-D, got shape {y.shape}.")
    if n_pairs is not None and y.shape[0] != n_pairs:
        raise ValueError(
            f"Got {y.shape[0]} pair labels for {n_pairs} pairs; they must match."
        )
    if y.dtype.kind not in "biuf":
        raise ValueError(
            "Pair labels must be numeric: +1 (similar) and -1 (dissimilar), "
            f"or 1 and 0; got dtype {y.dtype}."
        )
    values = set(np.unique(y).tolist())
    if values <= {-1, 1}:
        return y.astype(np.intp)
    if values <= {0, 1}:
        return np.where(y == 1, 1, -1).astype(np.intp)
    raise ValueError(
        "Pair labels must be +1 (similar) and -1 (dissimilar), or 1 and 0; "
        f"got values {sorted(values)[:10]}."
    )


def check_pairs(pairs, y=None, *, dtype=FLOAT_DTYPES, require_both_labels=False):
    """Validate an array of pairs of shape (n_pairs, 2, n_features).

    Parameters
    ----------
    pairs : array-like of shape (n_pairs, 2, n_features)
    y : array-like of shape (n_pairs,), default=None
        Pair labels, see :func:`check_pair_labels`.
    require_both_labels : bool, default=False
        If True, a ValueError is raised unless both similar and dissimilar
        pairs are present.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2, n_features)
    y : ndarray of shape (n_pairs,) in {-1, +1}, only when ``y`` is given.
    """
    arr = np.asarray(pairs) if not hasattr(pairs, "dtype") else pairs
    if getattr(arr, "ndim", None) != 3 or arr.shape[1] != 2:
        raise ValueError(
            "Pairs must be an array of shape (n_pairs, 2, n_features); got shape "
            f"{getattr(arr, 'shape', None)}."
        )
    pairs = check_array(
        pairs, allow_nd=True, dtype=dtype, ensure_min_samples=1, input_name="pairs"
    )
    if pairs.shape[2] < 1:
        raise ValueError("Pairs have 0 features; at least one is required.")
    if y is None:
        return pairs
    y = check_pair_labels(y, n_pairs=pairs.shape[0])
    if require_both_labels:
        if not np.any(y == 1):
            raise ValueError("All pairs are labelled dissimilar (-1); similar pairs (+1) are needed.")
        if not np.any(y == -1):
            raise ValueError("All pairs are labelled similar (+1); dissimilar pairs (-1) are needed.")
    return pairs, y


def check_regression_data(estimator, X, y, *, min_samples=2, reset=True, dtype=FLOAT_DTYPES):
    """Validate ``(X, y)`` for a learner supervised by real-valued targets.

    Parameters
    ----------
    estimator : estimator instance
        The learner being fitted: named in the messages, and given
        ``n_features_in_`` / ``feature_names_in_`` by ``validate_data``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Real-valued targets; strings (class names) raise a ValueError.
    min_samples : int, default=2
        Fewer samples raise a ValueError.
    reset : bool, default=True
        Passed to :func:`sklearn.utils.validation.validate_data`.
    dtype : dtype or tuple of dtypes
        Accepted float dtypes for X.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,), float64
        A new array.

    Raises
    ------
    ValueError
        For non-numeric or constant targets, or too few samples.
    """
    name = type(estimator).__name__
    if y is not None:
        y_arr = np.asarray(y)
        if y_arr.dtype.kind in "USO":
            try:
                y_arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name} needs real-valued (regression) targets y; got non-numeric "
                    f"values such as {y_arr.ravel()[:3].tolist()}."
                ) from None
    X, y = validate_data(estimator, X, y, reset=reset, dtype=dtype, y_numeric=True)
    if X.shape[0] < min_samples:
        raise ValueError(
            f"{name} needs at least {min_samples} samples, got {X.shape[0]} sample"
            + ("" if X.shape[0] == 1 else "s") + "."
        )
    y = np.array(y, dtype=np.float64)
    if np.ptp(y) == 0:
        raise ValueError(
            f"{name} needs a non-constant target y: every value is {y[0]!r}, so no "
            "metric predicts it better than any other."
        )
    return X, y
