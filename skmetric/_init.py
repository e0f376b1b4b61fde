"""Initialisation strategies shared by every linear learner.

``init`` is one of ``'auto'``, ``'pca'``, ``'lda'``, ``'identity'``,
``'random'`` or an array. Learners that optimise the linear map ``L`` call
:func:`initialize_components`; learners that optimise the Mahalanobis matrix
``M`` call :func:`initialize_metric` (``M = L.T @ L`` of the same strategy),
which also knows ``'covariance'`` (the inverse covariance of the data, the
Mahalanobis distance of the data themselves).
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

__all__ = [
    "INIT_OPTIONS",
    "init_constraint",
    "prior_constraint",
    "PRIOR_OPTIONS",
    "resolve_n_components",
    "initialize_components",
    "initialize_metric",
]

INIT_OPTIONS = ("auto", "pca", "lda", "identity", "random")
#: Strategies for a prior metric ``M0`` (:func:`initialize_metric`).
PRIOR_OPTIONS = (*INIT_OPTIONS, "covariance")


def init_constraint():
    """The ``_parameter_constraints`` entry for an ``init`` parameter."""
    return [StrOptions(set(INIT_OPTIONS)), np.ndarray]


def prior_constraint():
    """The ``_parameter_constraints`` entry for a ``prior`` metric that may be 'covariance'."""
    return [StrOptions(set(PRIOR_OPTIONS)), np.ndarray]


def resolve_n_components(n_components, n_features):
    """Return the output dimension, checking it against ``n_features``."""
    if n_components is None:
        return n_features
    if n_components > n_features:
        raise ValueError(
            f"n_components={n_components} must not exceed the number of features "
            f"({n_features})."
        )
    return int(n_components)


def _n_classes(y):
    return 0 if y is None else np.unique(y).size


def initialize_components(init, X, y=None, n_components=None, random_state=None):
    """Initial linear map ``L`` of shape (n_components, n_features).

    Parameters
    ----------
    init : {'auto', 'pca', 'lda', 'identity', 'random'} or ndarray
        'auto' picks 'lda' when labels are given and ``n_components`` is at
        most ``n_classes - 1``, else 'pca' when ``n_components < n_features``,
        else 'identity'. An ndarray is used as given (shape checked).
    X : ndarray of shape (n_samples, n_features)
        Training data, already validated.
    y : ndarray of shape (n_samples,), default=None
        Class labels; required for 'lda'.
    n_components : int, default=None
        Output dimension; None means ``n_features``.
    random_state : int, RandomState instance or None
        Used by 'random' (and by PCA's randomized solver).

    Returns
    -------
    L : ndarray of shape (n_components, n_features), float64.
    """
    n_samples, n_features = X.shape
    n_components = resolve_n_components(n_components, n_features)

    if isinstance(init, np.ndarray):
        L = np.asarray(init, dtype=np.float64)
        if L.ndim != 2 or L.shape[1] != n_features:
            raise ValueError(
                f"The init array must have shape (n_components, {n_features}), "
                f"got {L.shape}."
            )
        if L.shape[0] != n_components:
            raise ValueError(
                f"The init array has {L.shape[0]} rows but n_components={n_components}."
            )
        if not np.all(np.isfinite(L)):
            raise ValueError("The init array contains NaN or infinite values.")
        return L.copy()

    if init == "auto":
        n_classes = _n_classes(y)
        if y is not None and n_components <= min(n_features, n_classes - 1):
            init = "lda"
        elif n_components < min(n_features, n_samples):
            init = "pca"
        else:
            init = "identity"

    if init == "identity":
        return np.eye(n_components, n_features)
    if init == "random":
        rng = check_random_state(random_state)
        return rng.standard_normal((n_components, n_features))
    if init == "pca":
        if n_components > min(n_samples, n_features):
            raise ValueError(
                f"init='pca' needs n_components <= min(n_samples, n_features) = "
                f"{min(n_samples, n_features)}, got {n_components}."
            )
        pca = PCA(n_components=n_components, random_state=random_state)
        pca.fit(X)
        return pca.components_.astype(np.float64)
    if init == "lda":
        if y is None:
            raise ValueError("init='lda' needs class labels y.")
        n_classes = _n_classes(y)
        if n_components > min(n_features, n_classes - 1):
            raise ValueError(
                f"init='lda' gives at most min(n_features, n_classes - 1) = "
                f"{min(n_features, n_classes - 1)} components, got n_components={n_components}."
            )
        lda = LinearDiscriminantAnalysis(n_components=n_components)
        lda.fit(X, y)
        return lda.scalings_.T[:n_components].astype(np.float64)
    raise ValueError(f"Unknown init {init!r}; expected one of {INIT_OPTIONS} or an array.")


def initialize_metric(init, X, y=None, random_state=None):
    """Initial full-rank Mahalanobis matrix ``M`` of shape (n_features, n_features).

    For an ndarray of shape (n_features, n_features) that is symmetric, the
    array is taken as ``M`` itself (it must be PSD); any other array or
    strategy is read as ``L`` and ``M = L.T @ L`` is returned. 'random'
    draws a random PSD matrix; 'covariance' is the (pseudo-)inverse of the
    covariance of ``X``.
    """
    from ._psd import components_from_metric

    n_features = X.shape[1]
    if isinstance(init, np.ndarray):
        M = np.asarray(init, dtype=np.float64)
        if M.shape == (n_features, n_features) and np.allclose(M, M.T):
            components_from_metric(M)  # raises a clear error if M is not PSD
            return M.copy()
        L = initialize_components(init, X, y, n_components=M.shape[0])
        return L.T @ L
    if init == "auto":
        init = "identity"
    if init == "covariance":
        cov = np.atleast_2d(np.cov(X, rowvar=False))
        return np.linalg.pinv((cov + cov.T) / 2.0, hermitian=True)
    if init in ("pca", "lda"):
        # A metric from a reduced map would be rank deficient; keep full rank by
        # using all components available from the strategy.
        k = n_features if init == "pca" else min(n_features, _n_classes(y) - 1)
        k = min(k, X.shape[0]) if init == "pca" else k
        L = initialize_components(init, X, y, n_components=k, random_state=random_state)
        return L.T @ L
    L = initialize_components(init, X, y, n_components=n_features, random_state=random_state)
    return L.T @ L
