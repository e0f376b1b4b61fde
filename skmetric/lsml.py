"""Least Squared-residual Metric Learning (LSML; Liu, Guo, Zhang, Jojic & Wang, 2012).

Two estimators share one fitting path, ``_BaseLSML._fit_quadruplets``:

* :class:`LSMLQuadruplets` learns from quadruplets ``(a, b, c, d)`` stating
  ``d(a, b) < d(c, d)`` (relative comparisons) and predicts whether new
  quadruplets hold;
* :class:`LSML` learns from class labels: it draws quadruplets with
  :func:`skmetric.constraints.sample_quadruplets` and hands them to the same code.

The objective and its solver live in :mod:`skmetric._lsml_solver`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from ._init import data_scale, initialize_metric, prior_constraint, unscale_result
from ._lsml_solver import fit_lsml
from ._validation import check_partially_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin, QuadrupletsClassifierMixin
from .constraints import pairs_from_indices, sample_quadruplets

__all__ = ["LSML", "LSMLQuadruplets"]

_REFERENCE = """E. Y. Liu, Z. Guo, X. Zhang, V. Jojic and W. Wang. Metric learning
    from relative comparisons by minimizing squared residual. Proceedings of
    the 12th IEEE International Conference on Data Mining (ICDM), 2012,
    doi:10.1109/ICDM.2012.38."""

_OBJECTIVE_DOC = """LSML minimises, over positive definite Mahalanobis matrices ``M``::

        sum_i w_i * max(0, d_M(a_i, b_i) - d_M(c_i, d_i)) ** 2  +  D_ld(M, M0)

    for quadruplets ``(a_i, b_i, c_i, d_i)`` stating ``d_M(a, b) < d_M(c, d)``,
    where ``d_M(x, y) = sqrt((x - y)^T M (x - y))`` (not squared, as in the
    paper), the weights ``w`` sum to 1, and ``D_ld(M, M0) = tr(M M0^-1) -
    log det(M M0^-1) - n_features`` is the LogDet divergence to the prior
    ``M0``, which keeps ``M`` positive definite and close to the prior. It is
    solved by projected gradient descent with Barzilai-Borwein steps and an
    Armijo line search (:func:`skmetric._lsml_solver.fit_lsml`), on the
    points divided by ``s``, the power of two nearest their RMS feature
    spread (:func:`skmetric._init.data_scale`), with ``M`` divided by
    ``s**2`` after: both terms are unchanged when the points and ``M0`` are
    rescaled together, so the fit does not depend on the units of X (data
    beyond about ``1e+-150`` are refused with a ValueError)."""

_PARAMS_DOC = """prior : {'identity', 'covariance', 'auto', 'random'} or ndarray, default='identity'
        The prior metric ``M0`` (also the starting point), through
        :func:`skmetric._init.initialize_metric`: 'identity' (and 'auto'),
        'covariance' (the inverse covariance of the training points), 'random'
        or an array of shape (n_features, n_features). It must be positive
        definite (a ValueError says so otherwise; 'pca' and 'lda' give
        rank-deficient priors when they reduce the dimension). The strategies
        are applied to the points divided by ``s``, the power of two nearest
        the RMS spread of their features (:func:`skmetric._init.data_scale`;
        ``s = 1`` for standardised data): 'identity' is the identity on data
        of unit spread, ``I / s**2`` in the units of X, so that what LSML
        learns does not depend on the units of X. An array is taken in the
        units of X. With features of very different spreads (raw, not
        standardised, data), the features of small spread are then nearly
        invisible next to the identity prior: standardise X, or use
        'covariance', which does not depend on the units of any feature.
    max_iter : int, default=1000
        Maximum number of gradient steps.
    tol : float, default=1e-3
        Stop when the projected gradient has Frobenius norm at most ``tol``
        (for the problem on the points divided by ``s``, see ``prior``)."""

_ATTRIBUTES_DOC = """components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    n_iter_ : int
        Gradient steps taken (1 when the prior is already stationary).
    loss_ : float
        The final value of the objective above.
    converged_ : bool
        Whether the stopping rule was met (a ConvergenceWarning is issued
        otherwise).
    n_features_in_ : int"""


class _BaseLSML(BaseMahalanobis):
    """Shared parameters and the quadruplet fitting core of LSML."""

    _parameter_constraints = {
        "prior": prior_constraint(),
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _fit_quadruplets(self, quadruplets, weights, X_prior, y_prior, rng, X_scale):
        """Learn M from oriented quadruplets (each stating d(a, b) < d(c, d)).

        ``X_prior`` / ``y_prior`` are the points (and labels, if any) the prior
        is computed from; ``X_scale`` the points whose spread sets the scale
        (:func:`skmetric._init.data_scale`): those the quadruplets are drawn
        from, so that unlabelled samples change nothing but a 'covariance'
        prior. Sets the fitted attributes; returns self.
        """
        # Solve on the points divided by s (unit spread, see
        # skmetric._init.data_scale): with the prior taken there (an array
        # prior times s**2), the residuals and the LogDet divergence are the
        # same problem, and the start and tol no longer depend on the units
        # of X. M is mapped back (divided by s**2) after.
        scale = data_scale(X_scale, self)
        X_prior = np.asarray(X_prior, dtype=np.float64) / scale
        M0 = initialize_metric(self.prior, X_prior, y_prior, random_state=rng, scale=scale)
        q = np.asarray(quadruplets, dtype=np.float64) / scale
        progress = self._progress()
        result = fit_lsml(
            q[:, 0] - q[:, 1],
            q[:, 2] - q[:, 3],
            M0,
            weights,
            max_iter=self.max_iter,
            tol=self.tol,
            progress=progress,
        )
        return self._store_result(unscale_result(result, scale), progress)


def _check_weights(weights, n):
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) (one per quadruplet), got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero.")
    return w


class LSMLQuadruplets(QuadrupletsClassifierMixin, _BaseLSML):
    __doc__ = f"""LSML learned from quadruplets (relative distance comparisons).

    {_OBJECTIVE_DOC}

    A fitted model predicts +1 for a quadruplet when ``d(a, b) < d(c, d)``
    under the learned metric, -1 otherwise; ``score`` is the accuracy.

    Parameters
    ----------
    {_PARAMS_DOC}
    preprocessor : array-like of shape (n_points, n_features) or callable, default=None
        Lets every method take quadruplets as integer indices of shape
        (n_quadruplets, 4) into a set of points instead of the points
        themselves (metric-learn's ``preprocessor``): an array of the points
        (``X[indices]``), or a callable mapping a 1-D array of indices to an
        array of their points. Validation copies no point; the quadruplets
        are materialised once for the solver.
    verbose : int, default=0
        If positive, print one line per step (``[LSMLQuadruplets] iter k
        loss ...  grad ...``).
    random_state : int, RandomState instance or None, default=None
        Only used by ``prior='random'``.

    Attributes
    ----------
    {_ATTRIBUTES_DOC}

    Notes
    -----
    ``X`` has shape (n_quadruplets, 4, n_features); a quadruplet whose pair
    ``(a, b)`` or ``(c, d)`` is one point repeated raises a ValueError. The
    prior is computed from all points of the quadruplets.

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.lsml import LSMLQuadruplets
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 2))
    >>> q = X[rng.rand(300, 200).argsort(axis=1)[:, :4]]  # 4 distinct points each
    >>> # a, b closer than c, d when only feature 0 counts
    >>> y = np.where(np.abs(q[:, 0, 0] - q[:, 1, 0]) < np.abs(q[:, 2, 0] - q[:, 3, 0]), 1, -1)
    >>> M = LSMLQuadruplets().fit(q, y).get_mahalanobis_matrix()
    >>> bool(M[0, 0] > M[1, 1])  # feature 0 now weighs more than feature 1
    True
    """

    _parameter_constraints = {
        **_BaseLSML._parameter_constraints,
        "preprocessor": ["array-like", callable, None],
    }

    def __init__(self, prior="identity", max_iter=1000, tol=1e-3, verbose=0, preprocessor=None,
                 random_state=None):
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, weights=None):
        """Learn the metric from quadruplets.

        Parameters
        ----------
        X : array-like of shape (n_quadruplets, 4, n_features)
            Quadruplets ``(a, b, c, d)``.
        y : array-like of shape (n_quadruplets,), default=None
            +1 if ``d(a, b) < d(c, d)`` should hold, -1 for the reverse (or
            1 and 0). None means every quadruplet is +1.
        weights : array-like of shape (n_quadruplets,), default=None
            Non-negative weight of each quadruplet (normalised to sum 1);
            None weighs them equally.

        Returns
        -------
        self
        """
        quadruplets = self._validate_tuples_for_fit(X, y)
        w = None if weights is None else _check_weights(weights, quadruplets.shape[0])
        rng = check_random_state(self.random_state)
        points = quadruplets.reshape(-1, quadruplets.shape[2])
        return self._fit_quadruplets(quadruplets, w, points, None, rng, points)


class LSML(LabelSupervisedMixin, _BaseLSML):
    __doc__ = f"""LSML learned from class labels (Least Squared-residual Metric Learning).

    {_OBJECTIVE_DOC}

    Quadruplets are drawn from the labels with
    :func:`skmetric.constraints.sample_quadruplets`: ``(a, b)`` two samples of
    one class, ``(c, d)`` two samples of different classes; the problem is
    then solved exactly as in :class:`LSMLQuadruplets`.

    Parameters
    ----------
    n_constraints : int, default=None
        Number of quadruplets to draw. None means ``20 * n_classes ** 2``
        (metric-learn's LSML_Supervised default).
    {_PARAMS_DOC}
    verbose : int, default=0
        If positive, print one line per step (``[LSML] iter k  loss ...``).
    random_state : int, RandomState instance or None, default=None
        Seed of the quadruplet sampling and of ``prior='random'``.

    Attributes
    ----------
    {_ATTRIBUTES_DOC}
    feature_names_in_ : ndarray of str, only when X has string feature names.

    Notes
    -----
    With numeric labels, -1 marks an unlabelled sample (as in metric-learn):
    it is left out of every quadruplet, but still counts for the
    'covariance' prior (not for the scale ``s`` of ``prior``, which is that
    of the labelled samples).

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric.lsml import LSML
    >>> X, y = load_iris(return_X_y=True)
    >>> LSML(random_state=0).fit(X, y).transform(X).shape
    (150, 4)
    """

    _parameter_constraints = {
        **_BaseLSML._parameter_constraints,
        "n_constraints": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_constraints=None,
        prior="identity",
        max_iter=1000,
        tol=1e-3,
        verbose=0,
        random_state=None,
    ):
        self.n_constraints = n_constraints
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Draw quadruplets from the class labels and learn the metric.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (at least two labelled classes, one with two
            samples); -1 marks an unlabelled sample.

        Returns
        -------
        self
        """
        X, y_sample, _ = check_partially_labeled_data(self, X, y)
        rng = check_random_state(self.random_state)
        n_labelled = np.unique(y_sample[y_sample >= 0]).size
        n = self.n_constraints if self.n_constraints is not None else 20 * n_labelled**2
        quadruplets = pairs_from_indices(X, sample_quadruplets(y_sample, n, random_state=rng))
        return self._fit_quadruplets(quadruplets, None, X, y_sample, rng, X[y_sample >= 0])
