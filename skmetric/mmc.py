"""Mahalanobis Metric for Clustering (MMC; Xing, Ng, Jordan & Russell, 2002).

Two estimators share one fitting path, ``_BaseMMC._fit_pairs``:

* :class:`MMCPairs` learns from labelled pairs (weak supervision) and
  classifies pairs as similar / dissimilar;
* :class:`MMC` learns from class labels: it draws pairs with
  :func:`skmetric.constraints.sample_pairs` and hands them to the same code.

The problem itself (pair differences, similar scatter, the 'auto'
regularisation, the diagonal prior) and its solvers live in
:mod:`skmetric._mmc_solver` (:func:`skmetric._mmc_solver.fit_mmc`).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._init import data_scale, init_constraint, initialize_metric, unscale_result
from ._mmc_solver import auto_regularization, fit_mmc
from ._validation import check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin, PairsClassifierMixin
from .constraints import pairs_from_indices, sample_pairs

# auto_regularization lives in _mmc_solver; it is re-exported here, where the
# 'auto' default is documented.
__all__ = ["MMC", "MMCPairs", "auto_regularization"]

_REFERENCE = """E. P. Xing, A. Y. Ng, M. I. Jordan and S. Russell. Distance metric
    learning, with application to clustering with side-information. Advances
    in Neural Information Processing Systems 15 (NIPS), 2002."""


class _BaseMMC(BaseMahalanobis):
    """Shared parameters and the pair-based fitting core of MMC."""

    _parameter_constraints = {
        "diagonal": ["boolean"],
        "solver": [StrOptions({"projected_gradient", "cvxpy"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "prior": init_constraint(),
        "regularization": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _fit_pairs(self, pairs, y, X_prior, y_prior, random_state):
        """Learn M from validated pairs (labels in {-1, +1}); sets fitted attributes.

        ``X_prior`` / ``y_prior`` are the points (and labels, if any) that the
        ``prior`` strategy is computed from.
        """
        # Xing's problem is scale-free (M / c**2 solves it for the data times
        # c): solve it on the points divided by s (unit spread, see
        # skmetric._init.data_scale), where the pair differences and their
        # scatter cannot overflow, and map M back (divided by s**2).
        scale = data_scale(X_prior, self)
        X_prior = np.asarray(X_prior, dtype=np.float64) / scale
        pairs = np.asarray(pairs, dtype=np.float64) / scale
        M0 = initialize_metric(self.prior, X_prior, y_prior, random_state, scale=scale)
        progress = self._progress(every=10)
        result = fit_mmc(
            pairs,
            y,
            M0,
            diagonal=self.diagonal,
            regularization=self.regularization,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            progress=progress,
        )
        self.regularization_ = result.info["regularization"]
        return self._store_result(unscale_result(result, scale), progress)


_PARAMS_DOC = """diagonal : bool, default=False
        Learn a diagonal metric (a per-feature weighting) instead of a full
        PSD matrix.
    solver : {'projected_gradient', 'cvxpy'}, default='projected_gradient'
        'projected_gradient': spectral projected gradient on the equivalent
        problem ``max g(M) s.t. f(M) <= 1, M PSD`` (exact projection onto the
        whitened constraint set), stopped by a duality-gap test; see
        :mod:`skmetric._mmc_solver`. 'cvxpy': Xing's problem written in cvxpy
        and solved with Clarabel (or SCS); exact, but only practical for small
        dimensions (the PSD cone has d(d+1)/2 variables).
    max_iter : int, default=1000
        Hard cap on projected-gradient iterations (ignored by 'cvxpy').
    tol : float, default=1e-5
        Projected gradient stops when the relative duality (Frank-Wolfe) gap is
        at most ``tol``; the returned objective is then within about
        ``2 * tol`` (relative) of the optimum.
    prior : {'auto', 'identity', 'pca', 'lda', 'random'} or ndarray, default='auto'
        The prior metric ``M0`` of the regularised problem, also the
        solver's starting point (see :func:`skmetric._init.initialize_metric`;
        'auto' is the identity; an array of shape (n_features, n_features) is
        ``M0`` itself and must be PSD). Without regularization the problem is
        convex and the solution does not depend on it, only the number of
        iterations. (Called ``prior`` as in ITML.)
    regularization : float in [0, 1) or 'auto', default='auto'
        Fraction ``mu`` of the similar-distance budget kept on the prior
        metric ``M0`` (``prior``): the solved problem adds the constraint
        ``M - mu (f(M) / f(M0)) M0 PSD``, i.e. the metric is ``mu`` parts
        prior and ``1 - mu`` parts learned (measured in sum of squared similar
        distances). It keeps the metric full rank where Xing's optimum has
        rank 1 to 3 and overfits the pairs. **The default differs from Xing's
        problem**: 'auto' uses ``mu = 10 p / (10 p + n_pairs)`` with ``p`` the
        number of free parameters of M (``d (d + 1) / 2``, or ``d`` when
        diagonal), i.e. the prior weighs as much as 10 pairs per parameter
        (see :func:`auto_regularization`); it was chosen on the benchmark
        (3-NN error on iris, wine, breast_cancer and digits). Set
        ``regularization=0`` to solve Xing's problem exactly."""

_OBJECTIVE_DOC = """Xing et al.'s convex problem over the Mahalanobis matrix ``M``::

        minimise    f(M) = sum_{(x, x') similar}    (x - x')^T M (x - x')
        subject to  g(M) = sum_{(x, x') dissimilar} sqrt((x - x')^T M (x - x')) >= 1
                    M positive semidefinite (or diagonal with M_jj >= 0)
                    M - mu (f(M) / f(M0)) M0 positive semidefinite

    The sum of (non-squared) dissimilar distances is concave in ``M``, so the
    feasible set is convex. The last constraint (``mu = regularization``, prior
    ``M0`` = the ``prior`` metric) is a convex regularisation toward the prior;
    with ``regularization=0`` this is exactly Xing's problem, whose solution is
    low rank in general (few strong directions). The scale of ``M`` is
    irrelevant for nearest neighbours.

    The problem is scale-free: for the data multiplied by ``c`` its solution
    is ``M / c**2``, with the same ``loss_``. It is solved on the points
    divided by ``s``, the power of two nearest the RMS spread of their
    features (:func:`skmetric._init.data_scale`), and ``M`` divided by
    ``s**2`` after, so that no squared difference overflows; data beyond
    about ``1e+-150`` are refused with a ValueError (the metric itself would
    leave float64)."""


class MMCPairs(PairsClassifierMixin, _BaseMMC):
    __doc__ = f"""MMC learned from labelled pairs (weakly supervised).

    {_OBJECTIVE_DOC}

    Pairs are then classified as similar when their learned distance is at
    most ``threshold_``, calibrated for accuracy on held-out validation pairs.

    Parameters
    ----------
    {_PARAMS_DOC}
    validation_fraction : float in [0, 1), default=0.2
        Fraction of the pairs (stratified by label) held out from the metric
        fit and used to calibrate ``threshold_``. With 0, or when too few
        pairs exist to hold out at least one of each label while keeping one
        of each for fitting, the threshold is calibrated on the training
        pairs. Recalibrate any time with :meth:`calibrate_threshold`.
    preprocessor : array-like of shape (n_points, n_features) or callable, default=None
        Lets every method take pairs as integer indices of shape (n_pairs, 2)
        into a set of points instead of the points themselves (metric-learn's
        ``preprocessor``): an array of the points (``X[indices]``), or a
        callable mapping a 1-D array of indices to an array of their points.
        Validation copies no point; the fitting pairs are materialised once.
    verbose : int, default=0
        Print solver progress: ``[MMCPairs] iter k  loss ...  gap ...`` every 10
        iterations (every iteration when > 1), where loss is the P1
        objective of the iterate.
    random_state : int, RandomState instance or None, default=None
        Used for the validation split and by ``prior='random'``.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    threshold_ : float
        Distance at or below which a pair is predicted similar.
    loss_ : float
        Sum of squared similar distances at the solution, ``f(M)`` with the
        dissimilar constraint active (``g(M) = 1``): the minimised objective.
    regularization_ : float
        The ``mu`` used (the value of 'auto', or ``regularization``).
    n_iter_ : int
        Solver iterations.
    converged_ : bool
        Whether the convergence test was met (a ConvergenceWarning is issued
        otherwise).
    n_features_in_ : int

    Notes
    -----
    ``X`` has shape (n_pairs, 2, n_features). Labels are +1 (similar) and -1
    (dissimilar); {{1, 0}} is accepted as the same encoding (0 = dissimilar).

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.mmc import MMCPairs
    >>> rng = np.random.RandomState(0)
    >>> a = rng.normal(size=(40, 3))
    >>> b = a + rng.normal(scale=0.1, size=(40, 3))
    >>> b[20:, 0] += 5.0  # the second half are dissimilar along feature 0
    >>> pairs = np.stack([a, b], axis=1)
    >>> y = np.r_[np.ones(20), -np.ones(20)]
    >>> MMCPairs(random_state=0).fit(pairs, y).score(pairs, y)
    1.0
    """

    _parameter_constraints = {
        **_BaseMMC._parameter_constraints,
        "preprocessor": ["array-like", callable, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        diagonal=False,
        solver="projected_gradient",
        max_iter=1000,
        tol=1e-5,
        prior="auto",
        regularization="auto",
        validation_fraction=0.2,
        verbose=0,
        preprocessor=None,
        random_state=None,
    ):
        self.diagonal = diagonal
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.prior = prior
        self.regularization = regularization
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, calibration_params=None):
        """Learn the metric from labelled pairs and calibrate the threshold.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, n_features)
            The pairs.
        y : array-like of shape (n_pairs,)
            +1 for similar, -1 for dissimilar pairs (or 1 and 0).
        calibration_params : dict, default=None
            How ``threshold_`` is calibrated on the held-out pairs: the
            keywords ``strategy``, ``beta``, ``min_rate`` of
            :meth:`calibrate_threshold`; None calibrates for accuracy.

        Returns
        -------
        self
        """
        return self._fit_and_calibrate(
            X,
            y,
            lambda pairs, y, rng: self._fit_pairs(
                pairs, y, pairs.reshape(-1, pairs.shape[2]), None, rng
            ),
            require_both_labels=True,
            calibration_params=calibration_params,
        )


class MMC(LabelSupervisedMixin, _BaseMMC):
    __doc__ = f"""MMC learned from class labels (Mahalanobis Metric for Clustering).

    {_OBJECTIVE_DOC}

    Similar pairs (same class) and dissimilar pairs (different classes) are
    drawn from the labels with :func:`skmetric.constraints.sample_pairs`, and
    the problem is solved exactly as in :class:`MMCPairs`.

    Parameters
    ----------
    n_constraints : int, default=None
        Number of similar pairs, and of dissimilar pairs, to draw. None means
        ``20 * n_classes ** 2`` (the same default as metric-learn's
        MMC_Supervised).
    {_PARAMS_DOC}
    verbose : int, default=0
        Print solver progress: ``[MMC] iter k  loss ...  gap ...`` every 10
        iterations (every iteration when > 1), where loss is the P1
        objective of the iterate.
    random_state : int, RandomState instance or None, default=None
        Seed of the pair sampling (and of ``prior='random'``).

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    loss_ : float
        Sum of squared similar distances at the solution, ``f(M)`` with the
        dissimilar constraint active (``g(M) = 1``): the minimised objective.
    regularization_ : float
        The ``mu`` used (the value of 'auto', or ``regularization``).
    n_iter_ : int
        Solver iterations.
    converged_ : bool
        Whether the convergence test was met (a ConvergenceWarning is issued
        otherwise).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric.mmc import MMC
    >>> X, y = load_iris(return_X_y=True)
    >>> MMC(random_state=0).fit(X, y).transform(X).shape
    (150, 4)
    """

    _parameter_constraints = {
        **_BaseMMC._parameter_constraints,
        "n_constraints": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_constraints=None,
        diagonal=False,
        solver="projected_gradient",
        max_iter=1000,
        tol=1e-5,
        prior="auto",
        regularization="auto",
        verbose=0,
        random_state=None,
    ):
        self.n_constraints = n_constraints
        self.diagonal = diagonal
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.prior = prior
        self.regularization = regularization
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Draw pairs from the class labels and learn the metric.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (at least two classes, one with two samples).

        Returns
        -------
        self
        """
        X, y_enc, classes = check_labeled_data(self, X, y, min_classes=2)
        rng = check_random_state(self.random_state)
        n = self.n_constraints if self.n_constraints is not None else 20 * classes.size**2
        indices, labels = sample_pairs(y_enc, n, random_state=rng)
        pairs = pairs_from_indices(X, indices)
        return self._fit_pairs(pairs, labels, X, y_enc, rng)
