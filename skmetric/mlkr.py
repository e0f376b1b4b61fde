"""Metric Learning for Kernel Regression (MLKR; Weinberger & Tesauro, 2007)."""

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._init import data_scale, initialize_components, resolve_n_components, unscale_result
from ._mlkr_solver import fit_mlkr
from ._validation import check_regression_data
from .base import BaseMahalanobis

__all__ = ["MLKR"]


class MLKR(BaseMahalanobis):
    """Metric Learning for Kernel Regression (Weinberger & Tesauro, 2007).

    Learns a linear map ``L`` under which Nadaraya-Watson kernel regression
    with a Gaussian kernel predicts each training target from the others as
    well as possible. With ``K_ij = exp(-||L x_i - L x_j||^2)`` the
    leave-one-out prediction of ``y_i`` is

        yhat_i = sum_{j != i} K_ij y_j / sum_{j != i} K_ij,

    and the objective minimised over ``L`` is the leave-one-out sum of
    squared errors ``sum_i (y_i - yhat_i)^2``, with L-BFGS-B (scipy) from the
    initial map chosen by ``init`` (:func:`skmetric._mlkr_solver.fit_mlkr`).
    The kernel weights are a softmax computed with the log-sum-exp shift, so
    large distances do not underflow to 0/0, and in blocks of rows: memory
    is O(n_samples * block) (at most O(n_samples^2)), never an
    n x n x n_features tensor. The scale of ``L`` sets the kernel width, so
    it is learned too.

    The objective depends on ``X`` only through ``L x``, so MLKR is fitted on
    ``X / s`` (``s`` the power of two nearest the RMS spread of the
    features, :func:`skmetric._init.data_scale`) and ``L`` divided by ``s``
    after: what is learned does not depend on the units of ``X`` (exactly,
    for a power-of-two change of units), and standardised data are fitted
    as they are. Data whose spread is beyond about ``1e+-150`` are refused
    with a ValueError (their squared distances would leave float64).

    The supervision is a real-valued target ``y`` (regression), not class
    labels: use the transformed data with, e.g., ``KNeighborsRegressor``.

    Parameters
    ----------
    n_components : int, default=None
        Output dimension (rows of ``L``); None means ``n_features``.
    init : {'auto', 'pca', 'identity', 'random'} or ndarray, default='auto'
        Initial ``L``, see :func:`skmetric._init.initialize_components`
        ('auto' is 'pca' when ``n_components < n_features``, else 'identity';
        'lda' needs classes and is not offered). An array must have shape
        (n_components, n_features) and is a map on X (in its units). The
        strategies are applied to ``X / s``, ``s`` the power of two nearest
        the RMS spread of the features (:func:`skmetric._init.data_scale`;
        1 for standardised data): 'identity' starts with a kernel whose
        width is about one feature spread, whatever the units of X.
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    tol : float, default=1e-5
        Convergence tolerance passed to L-BFGS-B (``scipy.optimize.minimize``).
    verbose : int, default=0
        If > 0, print one line per iteration (``[MLKR] iter k  loss ...``).
    random_state : int, RandomState instance or None, default=None
        Used by ``init='random'`` and the PCA initialisation.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned linear map ``L``.
    n_iter_ : int
        Number of L-BFGS-B iterations run; 1 when the start is already
        optimal within ``tol`` (its gradient was evaluated).
    loss_ : float
        The leave-one-out sum of squared errors at ``L`` (in the squared
        units of ``y``; divide by ``n_samples`` for the mean).
    converged_ : bool
        False when L-BFGS-B stopped at ``max_iter`` (a ConvergenceWarning is
        issued then).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    K. Q. Weinberger and G. Tesauro. Metric Learning for Kernel Regression.
    Proceedings of the 11th International Conference on Artificial
    Intelligence and Statistics (AISTATS), 2007, pages 612-619.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skmetric import MLKR
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> MLKR(n_components=3, random_state=0).fit(X, y).transform(X).shape
    (442, 3)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "init": [StrOptions({"auto", "pca", "identity", "random"}), np.ndarray],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        init="auto",
        max_iter=1000,
        tol=1e-5,
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A transformer supervised by one real-valued target per sample.
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn ``L`` from data and real-valued targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 samples.
        y : array-like of shape (n_samples,)
            Real-valued (regression) targets, not all equal.

        Returns
        -------
        self
        """
        X, y = check_regression_data(self, X, y)
        # The loss depends on X only through L x, and the kernel width is the
        # scale of L: fit X / s (unit spread) so that the identity start is a
        # kernel of width ~1 feature spread whatever the units of X, then map
        # the learned L back (exactly: s is a power of two).
        scale = data_scale(X, self)
        X64 = np.asarray(X, dtype=np.float64) / scale
        n_components = resolve_n_components(self.n_components, X.shape[1])
        # No labels: 'auto' never picks LDA.
        L0 = initialize_components(self.init, X64, None, n_components, self.random_state,
                                   scale=scale)
        progress = self._progress()
        result = fit_mlkr(X64, y, L0, max_iter=self.max_iter, tol=self.tol, progress=progress)
        # A start already optimal within tol (L-BFGS-B evaluated it and stopped)
        # counts as one iteration: scikit-learn's n_iter_ >= 1.
        result = replace(unscale_result(result, scale), n_iter=max(result.n_iter, 1))
        return self._store_result(result, progress)
