"""Covariance (whitening) metric: the unsupervised Mahalanobis baseline."""

from numbers import Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data

from ._init import data_scale, sample_covariance, unscale_result
from ._psd import components_from_metric
from ._solver import SolverResult
from ._validation import FLOAT_DTYPES
from .base import BaseMahalanobis

__all__ = ["Covariance", "fit_covariance"]


class Covariance(BaseMahalanobis):
    """Mahalanobis metric from the inverse covariance of the data (whitening).

    The classic unsupervised Mahalanobis distance (Mahalanobis, 1936):
    ``M = (Sigma + reg * I)^+``, the (pseudo-)inverse of the regularised
    sample covariance. Nothing is optimised; it is the baseline that every
    supervised learner should beat.

    Parameters
    ----------
    reg : float, default=0.0
        Added to the diagonal of the covariance before inversion; use a small
        positive value for nearly singular data. With ``reg=0``, data without
        any variance (all samples identical, up to round-off) raise a
        ValueError; constant features get weight zero (pseudo-inverse; a
        spread within round-off of the feature's magnitude counts as
        constant, see :func:`skmetric._init.sample_covariance`).

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    n_iter_ : int
        0: closed form.
    loss_ : float
        nan: nothing is optimised.
    converged_ : bool
        Always True (closed form).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    P. C. Mahalanobis. On the generalised distance in statistics. Proceedings
    of the National Institute of Sciences of India, 2(1):49-55, 1936.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric.covariance import Covariance
    >>> X, _ = load_iris(return_X_y=True)
    >>> Covariance().fit(X).transform(X).shape
    (150, 4)
    """

    _parameter_constraints = {"reg": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, reg=0.0):
        self.reg = reg

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the metric to X (y is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=FLOAT_DTYPES, ensure_min_samples=2)
        return self._store_result(fit_covariance(X.astype(np.float64), self.reg))


def fit_covariance(X, reg=0.0):
    """The metric ``M = (Sigma + reg * I)^+`` of the sample covariance ``Sigma`` of ``X``.

    Returns
    -------
    SolverResult
        ``metric`` is ``M``, ``components`` its factor; ``n_iter=0``,
        ``converged=True`` and ``loss`` nan (nothing is optimised).
    """
    # reg is in the units of X's variance: the rescaled problem (X / s) uses reg / s**2.
    s = data_scale(X) if reg == 0 else 1.0
    cov = sample_covariance(
        X / s, "the Covariance metric", allow_zero=reg > 0,
        hint="Pass reg > 0 for a scaled Euclidean metric, or fit on varied data.",
    )
    cov.flat[:: cov.shape[0] + 1] += reg
    M = np.linalg.pinv(cov, hermitian=True)
    result = SolverResult(
        components_from_metric(M, strict=False), np.nan, 0, True, "closed form", metric=M
    )
    return unscale_result(result, s)
