"""Information-Theoretic Metric Learning (ITML; Davis, Kulis, Jain, Sra & Dhillon, 2007).

Two estimators share one fitting path, ``_BaseITML._fit_constraints``:

* :class:`ITMLPairs` learns from labelled pairs (weak supervision) and
  classifies pairs as similar / dissimilar;
* :class:`ITML` learns from class labels: it draws pairs with
  :func:`skmetric.constraints.sample_pairs` and hands them to the same code.

The Bregman projections themselves live in :mod:`skmetric._itml_solver`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions

from ._init import data_scale, init_constraint, initialize_metric, unscale_result
from ._itml_solver import BOUNDS_RULES, fit_itml
from ._validation import check_labeled_data, tuple_points
from .base import BaseMahalanobis, LabelSupervisedMixin, PairsClassifierMixin
from .constraints import sample_pairs

__all__ = ["ITML", "ITMLPairs"]

_REFERENCE = """J. V. Davis, B. Kulis, P. Jain, S. Sra and I. S. Dhillon.
    Information-theoretic metric learning. Proceedings of the 24th
    International Conference on Machine Learning (ICML), 2007."""

_OBJECTIVE_DOC = """ITML solves, over the Mahalanobis matrix ``M`` and slacks ``xi``::

        minimise    D_ld(M, M0) + gamma * D_ld(diag(xi), diag(xi0))
        subject to  d_M(x, x') <= xi_(x,x')  for similar pairs
                    d_M(x, x') >= xi_(x,x')  for dissimilar pairs

    where ``D_ld(A, B) = tr(A B^-1) - log det(A B^-1) - d`` is the LogDet
    divergence, ``d_M`` the squared Mahalanobis distance, ``M0`` the prior
    and ``xi0`` the squared bounds ``u**2`` (similar) and ``l**2``
    (dissimilar): see ``bounds`` for how they are chosen. It is solved
    by cyclic Bregman projections, each a rank-one update of ``M`` that keeps
    it positive definite, with no eigendecomposition in the loop
    (:func:`skmetric._itml_solver.itml_bregman`)."""

_PARAMS_DOC = """gamma : float, default=1.0
        Slack trade-off: larger values enforce the distance constraints more
        strictly (``np.inf``: exactly, which may be infeasible).
    prior : {'identity', 'auto', 'pca', 'lda', 'random'} or ndarray, default='identity'
        The prior metric ``M0``, through :func:`skmetric._init.initialize_metric`
        ('auto' is the identity; an array of shape (n_features, n_features) is
        ``M0`` itself and must be PSD). A rank-deficient prior ('lda') keeps
        its null space: ITML only changes ``M`` on the range of ``M0``. The
        strategies are applied to the points divided by ``s``, the power of
        two nearest the RMS spread of their features
        (:func:`skmetric._init.data_scale`): 'identity' is the identity on
        data of unit spread (``I / s**2`` in the units of X; ``s = 1`` for
        standardised data), so that what ITML learns does not depend on the
        units of X. An array is taken in the units of X.
    bounds : {'auto', 'percentiles'} or array-like of 2 positive floats, default='auto'
        ``(u, l)``: similar pairs should be at learned distance at most ``u``
        and dissimilar pairs at least ``l``, in the units of
        :meth:`pair_distance` (not squared); or the rule computing them from
        the distances under the prior between sampled pairs of points (all
        pairs when there are at most 10,000), with ``q5`` and ``q95`` their
        5th and 95th percentiles
        (:func:`skmetric._itml_solver.default_bounds`):

        'auto'
            ``u = sqrt(rho * q5)`` and ``l = sqrt(rho * q95)``, where
            ``rho`` is the prior's RMS spread per feature (``rho**2`` is the
            mean squared prior distance over ``2 * n_features``; 1 for
            standardised data and the identity prior). These are
            metric-learn's bounds on standardised data (it compares squared
            learned distances with percentiles of distances), made to follow
            the units of X. They are tighter than 'percentiles' (``u**2`` is
            ``q5**2`` divided by ``q5 / rho``), the more so as the dimension
            grows, so similar pairs are pulled together harder.
        'percentiles'
            ``u = q5`` and ``l = q95``, as in the paper and the authors'
            code.

        None is 'auto'.
    max_iter : int, default=1000
        Maximum number of passes over all constraints.
    tol : float, default=1e-3
        Convergence threshold on the relative change of the dual variables
        over one pass (as in the authors' code)."""


def _check_bounds(bounds):
    """The bounds parameter: a rule name (None is 'auto') or a validated (u, l) array."""
    if bounds is None:
        return "auto"
    if isinstance(bounds, str):
        return bounds  # a rule name, checked by _parameter_constraints
    b = np.asarray(bounds, dtype=np.float64).ravel()
    if b.size != 2:
        raise ValueError(f"bounds must be two numbers (u, l); got {b.size} values.")
    if not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"bounds (u, l) must be positive and finite; got {b.tolist()}.")
    return b


class _BaseITML(BaseMahalanobis):
    """Shared parameters and the constraint-based fitting core of ITML."""

    _parameter_constraints = {
        "gamma": [Interval(Real, 0, None, closed="neither"), Options(Real, {np.inf})],
        "prior": init_constraint(),
        "bounds": [StrOptions(set(BOUNDS_RULES)), "array-like", None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _fit_constraints(self, points, index, y, y_prior, rng):
        """Learn M from validated index pairs (labels in {-1, +1}); sets fitted attributes.

        Pair ``k`` is ``points[index[k, 0]], points[index[k, 1]]``; the points
        (and their labels ``y_prior``, if any) are also what the prior and the
        default bounds are computed from. The pairs are never materialised:
        the solver gathers their differences block by block.
        """
        bounds = _check_bounds(self.bounds)
        # Solve on the points divided by s (unit spread, see
        # skmetric._init.data_scale): the constraints and the LogDet divergence
        # are the same problem there, with bounds / s and an array prior
        # times s**2; the result is mapped back to the units of X.
        scale = data_scale(points, self)
        points = np.asarray(points, dtype=np.float64) / scale
        bounds = bounds if isinstance(bounds, str) else bounds / scale
        M0 = initialize_metric(self.prior, points, y_prior, random_state=rng, scale=scale)
        progress = self._progress()
        result = fit_itml(
            points,
            index,
            y,
            M0,
            bounds,
            gamma=float(self.gamma),
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=rng,
            progress=progress,
        )
        self.bounds_ = np.asarray(result.info["bounds"]) * scale
        return self._store_result(unscale_result(result, scale), progress)

    def _fit_pairs(self, pairs, y, rng):
        """Fit on pairs of points or on an IndexedTuples (a ``preprocessor``):
        both become indices into the distinct points of the pairs."""
        points, index = tuple_points(pairs)
        return self._fit_constraints(points, index, y, None, rng)


class ITMLPairs(PairsClassifierMixin, _BaseITML):
    __doc__ = f"""ITML learned from labelled pairs (weakly supervised).

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
        Validation copies no point, and neither does fitting: the learner
        works from the indices of the distinct points the pairs reference.
    verbose : int, default=0
        If positive, print one line per pass over the constraints
        (``[ITMLPairs] iter k  loss ...  conv ...``: the objective and the
        convergence measure).
    random_state : int, RandomState instance or None, default=None
        Used for the validation split, to sample point pairs for the default
        bounds (only when the pairs hold more than about 140 points) and by
        ``prior='random'``.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    bounds_ : ndarray of shape (2,)
        The bounds ``(u, l)`` used, as learned distances (not squared): the
        given values, or those the rule computed, in the units of X.
    threshold_ : float
        Distance at or below which a pair is predicted similar.
    n_iter_ : int
        Passes over the constraints.
    loss_ : float
        The final value of the objective above (LogDet divergence to the
        prior on its range, plus ``gamma`` times the slack divergence).
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
    >>> from skmetric.itml import ITMLPairs
    >>> rng = np.random.RandomState(0)
    >>> a = rng.normal(size=(40, 3))
    >>> b = a + rng.normal(scale=0.1, size=(40, 3))
    >>> b[20:, 0] += 5.0  # the second half are dissimilar along feature 0
    >>> pairs = np.stack([a, b], axis=1)
    >>> y = np.r_[np.ones(20), -np.ones(20)]
    >>> ITMLPairs(random_state=0).fit(pairs, y).score(pairs, y)
    1.0
    """

    _parameter_constraints = {
        **_BaseITML._parameter_constraints,
        "preprocessor": ["array-like", callable, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        gamma=1.0,
        prior="identity",
        bounds="auto",
        max_iter=1000,
        tol=1e-3,
        validation_fraction=0.2,
        verbose=0,
        preprocessor=None,
        random_state=None,
    ):
        self.gamma = gamma
        self.prior = prior
        self.bounds = bounds
        self.max_iter = max_iter
        self.tol = tol
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
            self._fit_pairs,
            calibration_params=calibration_params,
            indexed=True,
        )


class ITML(LabelSupervisedMixin, _BaseITML):
    __doc__ = f"""ITML learned from class labels (Information-Theoretic Metric Learning).

    {_OBJECTIVE_DOC}

    Similar pairs (same class) and dissimilar pairs (different classes) are
    drawn from the labels with :func:`skmetric.constraints.sample_pairs`, and
    the problem is solved exactly as in :class:`ITMLPairs`.

    Parameters
    ----------
    n_constraints : int, default=None
        Number of similar pairs, and of dissimilar pairs, to draw. None means
        ``min(20 * n_classes ** 2, 10 * n_samples)``: metric-learn's
        ITML_Supervised default, bounded by the data size so that many small
        classes (50 classes of 2 samples would draw 50,000 pairs of each kind
        from 100 points) do not make every pass over the constraints long.
    {_PARAMS_DOC}
    verbose : int, default=0
        If positive, print one line per pass over the constraints
        (``[ITML] iter k  loss ...  conv ...``: the objective and the
        convergence measure).
    random_state : int, RandomState instance or None, default=None
        Seed of the pair sampling, of the order in which constraints are
        visited, of the point pairs behind the default bounds and of
        ``prior='random'``.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    bounds_ : ndarray of shape (2,)
        The bounds ``(u, l)`` used, as learned distances (not squared): the
        given values, or those the rule computed, in the units of X.
    n_iter_ : int
        Passes over the constraints.
    loss_ : float
        The final value of the objective above (LogDet divergence to the
        prior on its range, plus ``gamma`` times the slack divergence).
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
    >>> from skmetric.itml import ITML
    >>> X, y = load_iris(return_X_y=True)
    >>> ITML(random_state=0).fit(X, y).transform(X).shape
    (150, 4)
    """

    _parameter_constraints = {
        **_BaseITML._parameter_constraints,
        "n_constraints": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_constraints=None,
        gamma=1.0,
        prior="identity",
        bounds="auto",
        max_iter=1000,
        tol=1e-3,
        verbose=0,
        random_state=None,
    ):
        self.n_constraints = n_constraints
        self.gamma = gamma
        self.prior = prior
        self.bounds = bounds
        self.max_iter = max_iter
        self.tol = tol
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
        n = self.n_constraints
        if n is None:
            n = min(20 * classes.size**2, 10 * X.shape[0])
        indices, labels = sample_pairs(y_enc, n, random_state=rng)
        # Visit similar and dissimilar constraints interleaved, not in blocks.
        order = rng.permutation(labels.size)
        return self._fit_constraints(X, indices[order], labels[order], y_enc, rng)
