"""Initialisation strategies shared by every linear learner.

``init`` is one of ``'auto'``, ``'pca'``, ``'lda'``, ``'identity'``,
``'random'`` or an array. Learners that optimise the linear map ``L`` call
:func:`initialize_components`; learners that optimise the Mahalanobis matrix
``M`` call :func:`initialize_metric` (``M = L.T @ L`` of the same strategy),
which also knows ``'covariance'`` (the inverse covariance of the data, the
Mahalanobis distance of the data themselves).

The scale of the data is also decided here. :func:`data_scale` measures it
(a power of two near the RMS spread of the features) and refuses data whose
squared distances or learned metric would overflow or underflow float64; a
learner whose objective depends on the data only through ``L x`` (so that
fitting ``X / s`` and dividing the learned map by ``s`` is the same problem)
fits the rescaled data, passes ``scale=s`` to :func:`initialize_components` /
:func:`initialize_metric` (an array ``init`` is in the units of the user's
data) and maps the result back with :func:`unscale_result`. Its start and its
stopping rules then see data of unit scale whatever the units of ``X``, and
data already of unit scale (e.g. standardised) are not changed at all.
"""

import warnings
from dataclasses import replace

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from ._subspace import data_subspace

__all__ = [
    "INIT_OPTIONS",
    "init_constraint",
    "prior_constraint",
    "PRIOR_OPTIONS",
    "resolve_n_components",
    "initialize_components",
    "initialize_metric",
    "data_scale",
    "check_float32_range",
    "unscale_result",
    "sample_covariance",
    "MAX_SCALE_EXPONENT",
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


def initialize_components(init, X, y=None, n_components=None, random_state=None, scale=1.0):
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
    scale : float, default=1.0
        ``X`` is the user's data divided by ``scale`` (:func:`data_scale`); an
        array ``init``, given in the units of the user's data, is multiplied
        by ``scale`` so that it is the same map on ``X``.

    Returns
    -------
    L : ndarray of shape (n_components, n_features), float64.
        'lda' gives ``n_components`` rows even when the data have fewer
        discriminant directions (rank-deficient data): the missing rows are
        completed with directions orthogonal to the discriminant ones
        (:func:`_complete_rows`).
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
        return L * scale if scale != 1.0 else L.copy()

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
        with warnings.catch_warnings():
            # Collinear features are the rank-deficient case handled below.
            warnings.filterwarnings("ignore", message="Variables are collinear")
            lda.fit(X, y)
        L = lda.scalings_.T[:n_components].astype(np.float64)
        return _complete_rows(L, X, n_components)
    raise ValueError(f"Unknown init {init!r}; expected one of {INIT_OPTIONS} or an array.")


def _complete_rows(L, X, n_rows):
    """``L`` with rows appended up to ``n_rows``, orthogonal to its row space.

    LDA on rank-deficient data (fewer independent directions than
    ``n_classes - 1``) finds fewer discriminant directions than asked. The
    missing rows are orthonormal directions orthogonal to those of ``L``: the
    principal directions of the data left over after projecting out ``L``'s
    row space first, then any completion of the basis. Each gets the mean
    norm of ``L``'s rows, so that it weighs like them (not zero: a zero row
    never moves under a gradient proportional to ``L``).
    """
    if L.shape[0] >= n_rows:
        return L
    n_features = X.shape[1]
    norms = np.linalg.norm(L, axis=1)
    weight = float(norms.mean()) if norms.size and np.all(np.isfinite(norms)) and norms.mean() > 0 else 1.0
    # Orthonormal basis of L's row space.
    if L.shape[0]:
        _, sv, Vt = np.linalg.svd(L, full_matrices=False)
        Q = Vt[sv > sv.max() * 1e-12] if sv.size and sv.max() > 0 else np.zeros((0, n_features))
    else:
        Q = np.zeros((0, n_features))
    Xc = X - X.mean(axis=0)
    R = Xc - (Xc @ Q.T) @ Q
    candidates = np.vstack([data_subspace(R), np.eye(n_features)])
    basis = list(Q)
    new = []
    for v in candidates:
        for b in basis:  # Gram-Schmidt, twice for stability
            v = v - (v @ b) * b
        for b in basis:
            v = v - (v @ b) * b
        norm = np.linalg.norm(v)
        if norm > 1e-8:
            v = v / norm
            basis.append(v)
            new.append(v)
            if L.shape[0] + len(new) == n_rows:
                break
    return np.vstack([L, weight * np.asarray(new).reshape(-1, n_features)])


def initialize_metric(init, X, y=None, random_state=None, scale=1.0):
    """Initial full-rank Mahalanobis matrix ``M`` of shape (n_features, n_features).

    For an ndarray of shape (n_features, n_features) that is symmetric, the
    array is taken as ``M`` itself (it must be PSD); any other array or
    strategy is read as ``L`` and ``M = L.T @ L`` is returned. 'random'
    draws a random PSD matrix; 'covariance' is the (pseudo-)inverse of the
    covariance of ``X`` (:func:`sample_covariance`: data without any
    variance raise a ValueError). ``scale``: as in
    :func:`initialize_components` (an array ``M`` is multiplied by
    ``scale ** 2``).
    """
    from ._psd import components_from_metric

    n_features = X.shape[1]
    if isinstance(init, np.ndarray):
        M = np.asarray(init, dtype=np.float64)
        if M.shape == (n_features, n_features) and np.allclose(M, M.T):
            components_from_metric(M)  # raises a clear error if M is not PSD
            return M * scale**2 if scale != 1.0 else M.copy()
        L = initialize_components(init, X, y, n_components=M.shape[0], scale=scale)
        return L.T @ L
    if init == "auto":
        init = "identity"
    if init == "covariance":
        cov = sample_covariance(X, what="prior='covariance'",
                                hint="Use another prior (e.g. 'identity'), or fit on varied data.")
        return np.linalg.pinv(cov, hermitian=True)
    if init in ("pca", "lda"):
        # A metric from a reduced map would be rank deficient; keep full rank by
        # using all components available from the strategy.
        k = n_features if init == "pca" else min(n_features, _n_classes(y) - 1)
        k = min(k, X.shape[0]) if init == "pca" else k
        L = initialize_components(init, X, y, n_components=k, random_state=random_state)
        return L.T @ L
    L = initialize_components(init, X, y, n_components=n_features, random_state=random_state)
    return L.T @ L


# -- the scale of the data -------------------------------------------------------

#: Data whose RMS spread is beyond ``2 ** +-MAX_SCALE_EXPONENT`` (about
#: ``1e+-150``) are refused by :func:`data_scale`: a metric learned on them
#: (``M = L.T @ L`` of order ``1 / spread ** 2``) and their squared distances
#: (order ``spread ** 2``) would overflow or underflow float64.
MAX_SCALE_EXPONENT = 508


def data_scale(X, estimator=None):
    """The scale of ``X``: the power of two nearest its RMS spread.

    The RMS spread is ``sqrt(mean_j var(X[:, j]))``, the standard deviation
    of a typical feature (1 for standardised data). A power of two makes
    ``X / s`` and ``L / s`` exact (no rounding), and data whose spread is
    already within a factor ``sqrt(2)`` of 1 get ``s = 1.0``: nothing changes
    for them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or (n_tuples, tuple_size, n_features)
        Validated, finite data (tuples are read as their points).
    estimator : estimator instance, default=None
        Named in the error message.

    Returns
    -------
    s : float
        A power of two; 1.0 for empty data and for data without spread
        (all samples equal; then the learner's own checks apply).

    Raises
    ------
    ValueError
        When the spread is beyond ``2 ** +-MAX_SCALE_EXPONENT`` (about
        ``1e+-153``), saying so and how to rescale.
    """
    magnitude, spread = _magnitude_and_spread(X)
    if spread == 0.0:
        return 1.0
    exponent = int(np.round(np.log2(spread)))
    if abs(exponent) > MAX_SCALE_EXPONENT:
        name = f"{type(estimator).__name__}: " if estimator is not None else ""
        flow = "overflow" if exponent > 0 else "underflow"
        raise ValueError(
            f"{name}X has values of magnitude {magnitude:.0e} (RMS spread {spread:.0e}); "
            f"squared distances and the learned metric {flow} float64. Rescale X, "
            "e.g. with sklearn.preprocessing.StandardScaler."
        )
    return float(np.ldexp(1.0, exponent))


def _magnitude_and_spread(X):
    """``(max |X|, RMS spread of the features)``, computed without overflow.

    The spread of data whose samples are all equal (up to round-off) is
    taken as their magnitude; both are 0.0 for empty or all-zero data.
    """
    X = np.asarray(X)
    X = X.reshape(-1, X.shape[-1]) if X.ndim != 2 and X.size else X
    if X.size == 0:
        return 0.0, 0.0
    magnitude = float(np.max(np.abs(X)))
    if magnitude == 0.0 or not np.isfinite(magnitude):
        return magnitude, 0.0
    with np.errstate(under="ignore"):
        Y = X / magnitude  # in [-1, 1]: no overflow below
        rel = float(np.sqrt(np.mean((Y - Y.mean(axis=0)) ** 2)))
    if rel <= 64 * np.finfo(np.float64).eps:
        return magnitude, magnitude  # no spread beyond round-off: keep the magnitude
    return magnitude, rel * magnitude


def check_float32_range(X, estimator=None):
    """Refuse vectors that float32 (a network's dtype) cannot hold.

    A network is not scale-invariant, so it cannot fit on rescaled data
    instead; values beyond float32's range would become inf, and a spread
    below its smallest normal number would vanish (every sample the same).

    Raises
    ------
    ValueError
        Saying the magnitude and to rescale X (e.g. with StandardScaler).
    """
    magnitude, spread = _magnitude_and_spread(np.asarray(X, dtype=np.float64))
    info = np.finfo(np.float32)
    if magnitude > info.max / 16:
        flow = f"overflow float32 (max {info.max:.1e})"
    elif 0.0 < spread < info.tiny * 2**10:
        flow = f"underflow float32 (smallest normal {info.tiny:.1e})"
    else:
        return
    name = f"{type(estimator).__name__}: " if estimator is not None else ""
    raise ValueError(
        f"{name}X has values of magnitude {magnitude:.0e} (RMS spread {spread:.0e}), which "
        f"{flow}, the network's dtype. Rescale X, e.g. with "
        "sklearn.preprocessing.StandardScaler."
    )


def unscale_result(result, scale):
    """A :class:`~skmetric._solver.SolverResult` learned on ``X / scale``, for ``X``.

    ``components`` is divided by ``scale`` and ``metric`` (and
    ``info['full_metric']``) by ``scale ** 2``; the loss and everything else
    are unchanged (the objectives that call this are invariant under the
    rescaling).
    """
    if scale == 1.0:
        return result
    info = dict(result.info)
    if info.get("full_metric") is not None:
        info["full_metric"] = info["full_metric"] / scale**2
    metric = None if result.metric is None else result.metric / scale**2
    return replace(result, components=result.components / scale, metric=metric, info=info)


def sample_covariance(X, what="the covariance metric", allow_zero=False,
                      hint="Fit on varied data."):
    """The sample covariance of ``X``, with round-off variance set to zero.

    A feature whose spread is within round-off of its magnitude (a constant
    feature, whose computed variance is ~1e-34 rather than 0 for values such
    as 0.1) gets exactly zero variance, so that a pseudo-inverse gives it
    weight zero rather than ~1e33.

    Raises
    ------
    ValueError
        When no feature varies (all samples are identical) and not
        ``allow_zero``: the covariance is zero and its inverse would make
        every distance 0. ``what`` names that inverse in the message and
        ``hint`` says what to do.
    """
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0)
    noise = 64 * np.finfo(np.float64).eps * np.max(np.abs(X), axis=0)
    Xc[:, np.max(np.abs(Xc), axis=0) <= noise] = 0.0
    if not allow_zero and not np.any(Xc):
        raise ValueError(
            f"X has no variance (zero variance: all {X.shape[0]} samples are identical, "
            f"up to round-off), so its covariance is zero and {what} would give every "
            f"distance 0. {hint}"
        )
    cov = np.atleast_2d(np.cov(Xc, rowvar=False))
    return (cov + cov.T) / 2.0
