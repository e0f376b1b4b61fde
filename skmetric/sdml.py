"""Sparse Distance Metric Learning (SDML; Qi, Hua, Rui, Tang & Zhang, 2009).

Two estimators share one fitting path, ``_BaseSDML._fit_constraints``:

* :class:`SDMLPairs` learns from labelled pairs (weak supervision) and
  classifies pairs as similar / dissimilar;
* :class:`SDML` learns from class labels: it draws pairs with
  :func:`skmetric.constraints.sample_pairs` and hands them to the same code.

The graphical lasso itself lives in :mod:`skmetric._sdml_solver`.
"""

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._init import PRIOR_OPTIONS as _ALL_PRIORS
from ._init import data_scale, initialize_metric, unscale_result
from ._psd import _eigh, symmetrize
from ._sdml_solver import fit_sdml
from ._validation import check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin, PairsClassifierMixin
from .constraints import pairs_from_indices, sample_pairs

__all__ = ["SDML", "SDMLPairs"]

# The shared prior strategies, less 'lda' (it needs class labels, which pairs lack).
PRIOR_OPTIONS = tuple(p for p in _ALL_PRIORS if p != "lda")

_REFERENCE = """G.-J. Qi, X.-S. Hua, Y. Rui, J. Tang and H.-J. Zhang. An efficient
    sparse metric learning in high-dimensional space via L1-penalized
    log-determinant regularization. Proceedings of the 26th International
    Conference on Machine Learning (ICML), 2009."""

_OBJECTIVE_DOC = """SDML solves, over positive definite Mahalanobis matrices ``M``::

        minimise  tr(S M) - log det M + sparsity_param * sum_{i != j} |M_ij|
        with      S = P0^-1 + balance_param * K,

    where ``P0`` is the prior metric and ``K = sum_similar d d^T -
    sum_dissimilar d d^T`` is the pair-weighted scatter of the pair
    differences ``d = x - x'``. This is the LogDet divergence to the prior
    plus ``balance_param`` times the similar-minus-dissimilar squared
    distances ``tr(K M)``, with an L1 penalty that makes ``M`` sparse: a
    graphical lasso with "covariance" ``S``, whose solution is a sparse
    estimate of ``S^-1``.

    The problem is bounded only when ``S`` is positive definite, which the
    dissimilar pairs often prevent (metric-learn's SDML fails on iris
    there). The spectrum of ``S`` is therefore first shifted, ``S + c I``
    with the smallest ``c >= 0`` that makes its smallest eigenvalue
    ``pd_floor`` times its largest: the eigenvectors and the order of the
    eigenvalues are kept, so the directions that the dissimilar pairs
    dominate most still get the largest weights in ``M`` (at most
    ``1 / pd_floor`` times the smallest). For the identity prior this is a
    stronger prior. When ``S`` is a non-positive multiple of the identity
    (with one feature: a non-positive number), no shift keeps any
    information and ``fit`` raises a ValueError. The graphical lasso is
    solved by proximal gradient steps that never leave the positive definite
    cone (:func:`skmetric._sdml_solver.graphical_lasso_ista`), where
    scikit-learn's coordinate descent breaks down on such ill-conditioned
    ``S``.

    The problem is solved on the points divided by ``s``, the power of two
    nearest the RMS spread of their features
    (:func:`skmetric._init.data_scale`; ``s = 1`` for standardised data),
    with the prior taken there, and ``M`` is divided by ``s**2`` after. With
    the prior in the units of the points, ``P0^-1`` and ``K`` both scale
    like the squared data, so ``balance_param`` and ``pd_floor`` are
    unit-free and the fit does not depend on the units of X ('identity' is
    the identity on data of unit spread, ``I / s**2`` in the units of X);
    ``sparsity_param`` is read on the problem of unit spread. Data beyond
    about ``1e+-150`` are refused with a ValueError."""

_PARAMS_DOC = """balance_param : float, default=0.5
        Weight ``eta`` of the pair scatter ``K`` against the prior. ``K`` is
        a sum over pairs, so its scale grows with the number of pairs; it
        does not depend on the units of X (see above).
    sparsity_param : float, default=0.01
        Weight ``alpha`` of the L1 penalty on the off-diagonal entries of
        ``M``, in the units of ``S`` of the problem on data of unit spread;
        0 gives ``M = S^-1``.
    prior : {'identity', 'covariance', 'auto', 'pca', 'random'} or ndarray, \
default='identity'
        The prior metric ``P0`` (it must be positive definite: it is
        inverted). 'covariance' is the inverse covariance of the points (so
        ``P0^-1`` is their covariance); 'auto' is the identity; the others go
        through :func:`skmetric._init.initialize_metric`, on the points
        divided by ``s`` (see above: 'identity' is ``I / s**2`` in the units
        of X); an array of shape (n_features, n_features) is ``P0`` itself,
        in the units of X.
    pd_floor : float in (0, 1), default=0.1
        Smallest allowed ratio of the smallest to the largest eigenvalue of
        ``S``; below it, ``S`` is shifted as described above, which bounds
        the condition number of ``M`` by about ``1 / pd_floor``.
    max_iter : int, default=1000
        Maximum number of proximal gradient steps of the graphical lasso.
    tol : float, default=1e-4
        Stop when the largest violation of the optimality conditions,
        relative to ``max|S|``, is at most ``tol``."""

_ATTRIBUTES_DOC = """components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    n_iter_ : int
        Proximal gradient steps run; 1 when ``S^-1`` is already optimal
        (the optimality test there counts as one).
    loss_ : float
        The objective above at the learned ``M`` (with the shifted ``S``),
        for the problem solved on the points divided by ``s``.
    converged_ : bool
        Whether the optimality test was met (a ConvergenceWarning is issued
        otherwise).
    shift_ : float
        The ``c`` added to the diagonal of ``S`` (0 when ``S`` needed no
        repair), for the problem solved on the points divided by ``s``: it
        does not depend on the units of X."""


def _prior_inverse(prior, points, rng, scale=1.0):
    """``P0^-1`` for a prior option or array; a clear ValueError if ``P0`` is not PD.

    ``points`` are the user's points divided by ``scale``; an array prior,
    in the units of the user's points, is multiplied by ``scale ** 2``.
    """
    if isinstance(prior, str) and prior == "covariance":
        if points.shape[0] < 2:
            raise ValueError("prior='covariance' needs at least 2 points.")
        inverse = symmetrize(np.atleast_2d(np.cov(points, rowvar=False)))
        what = "the covariance of the points"
    else:
        inverse = None
        M0 = symmetrize(initialize_metric(prior, points, None, random_state=rng, scale=scale))
        what = "the prior"
    w, V = _eigh(inverse if inverse is not None else M0)
    if not w.min() > 1e3 * w.size * np.finfo(float).eps * np.abs(w).max():
        raise ValueError(
            f"SDML needs a positive definite prior, but {what} is singular or not "
            f"positive definite (smallest eigenvalue {w.min():.3g}); use "
            "prior='identity' or a positive definite array."
        )
    if inverse is not None:
        return inverse
    return symmetrize((V / w) @ V.T)


class _BaseSDML(BaseMahalanobis):
    """Shared parameters and the constraint-based fitting core of SDML."""

    _parameter_constraints = {
        "balance_param": [Interval(Real, 0, None, closed="left")],
        "sparsity_param": [Interval(Real, 0, None, closed="left")],
        "prior": [StrOptions(set(PRIOR_OPTIONS)), np.ndarray],
        "pd_floor": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _fit_constraints(self, pairs, y, points, rng):
        """Learn M from validated pairs (labels in {-1, +1}); sets fitted attributes.

        ``points`` are the points the prior is computed from.
        """
        # Solve on the points divided by s (unit spread, see
        # skmetric._init.data_scale), with the prior taken there (an array
        # prior times s**2): S = P0^-1 + balance_param * K then scales like
        # the squared data, so balance_param weighs the pairs against the
        # prior whatever the units of X; M is mapped back (divided by s**2).
        scale = data_scale(points, self)
        points = np.asarray(points, dtype=np.float64) / scale
        pairs = np.asarray(pairs, dtype=np.float64) / scale
        prior_inv = _prior_inverse(self.prior, points, rng, scale)
        options = {
            "balance_param": float(self.balance_param),
            "sparsity_param": float(self.sparsity_param),
            "pd_floor": float(self.pd_floor),
            "max_iter": self.max_iter,
            "tol": self.tol,
        }
        progress = self._progress()
        result = fit_sdml(pairs, y, prior_inv, progress=progress, **options)
        # The repair of S is part of the fitted state: how far it was shifted
        # (in the problem on unit-spread data: unit-free, and finite at any scale).
        self.shift_ = result.info["shift"]
        # The optimality test at the start S^-1 counts as one step when it
        # passes there (scikit-learn's n_iter_ >= 1).
        result = replace(unscale_result(result, scale), n_iter=max(result.n_iter, 1))
        return self._store_result(result, progress)


class SDMLPairs(PairsClassifierMixin, _BaseSDML):
    __doc__ = f"""SDML on pairs marked similar or dissimilar; also a pair classifier.

    {_OBJECTIVE_DOC}

    A new pair counts as similar when its learned distance is at most
    ``threshold_``, the cut that classifies the held-out share of the pairs
    (``validation_fraction``) most accurately.

    Parameters
    ----------
    {_PARAMS_DOC}
    validation_fraction : float in [0, 1), default=0.2
        Share of the similar and of the dissimilar pairs kept out of the
        metric fit to choose ``threshold_`` (:meth:`calibrate_threshold`
        recalibrates on other pairs). 0, or too few pairs to spare one of
        each label, calibrates on the fitting pairs themselves.
    preprocessor : array-like of shape (n_points, n_features) or callable, default=None
        Lets every method take pairs as integer indices of shape (n_pairs, 2)
        into a set of points instead of the points themselves (metric-learn's
        ``preprocessor``): an array of the points (``X[indices]``), or a
        callable mapping a 1-D array of indices to an array of their points.
        Validation copies no point; the fitting pairs are materialised once.
    verbose : int, default=0
        If positive, print the shift of ``S`` and one line per step
        (``[SDMLPairs] iter k  loss ...  kkt ...``).
    random_state : int, RandomState instance or None, default=None
        Used for the validation split and by ``prior='random'``.

    Attributes
    ----------
    {_ATTRIBUTES_DOC}
    threshold_ : float
        Distance at or below which a pair is predicted similar.
    n_features_in_ : int

    Notes
    -----
    Each row of ``X`` stacks the two points of one pair, so ``X`` has shape
    (n_pairs, 2, n_features); ``y`` is +1 for a similar and -1 for a
    dissimilar pair, and 0 is read as -1.

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import SDMLPairs, pairs_from_indices, sample_pairs
    >>> X, labels = load_iris(return_X_y=True)
    >>> index_pairs, same = sample_pairs(labels, 100, random_state=0)
    >>> pairs = pairs_from_indices(X, index_pairs)
    >>> sdml = SDMLPairs(random_state=0).fit(pairs, same)
    >>> sdml.get_mahalanobis_matrix().shape
    (4, 4)
    >>> round(sdml.score(pairs, same), 3)
    0.845
    """

    _parameter_constraints = {
        **_BaseSDML._parameter_constraints,
        "preprocessor": ["array-like", callable, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        *,
        balance_param=0.5,
        sparsity_param=0.01,
        prior="identity",
        pd_floor=0.1,
        max_iter=1000,
        tol=1e-4,
        validation_fraction=0.2,
        verbose=0,
        preprocessor=None,
        random_state=None,
    ):
        self.balance_param = balance_param
        self.sparsity_param = sparsity_param
        self.prior = prior
        self.pd_floor = pd_floor
        self.max_iter = max_iter
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, calibration_params=None):
        """Fit ``M`` on the pairs (less the calibration share), then set ``threshold_``.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, n_features)
            Two points per row.
        y : array-like of shape (n_pairs,)
            Pair labels: +1 similar, -1 (or 0) dissimilar.
        calibration_params : dict, default=None
            How ``threshold_`` is calibrated on the held-out pairs: the
            keywords ``strategy``, ``beta``, ``min_rate`` of
            :meth:`calibrate_threshold`; None calibrates for accuracy.

        Returns
        -------
        self
        """

        def fit_metric(pairs, labels, rng):
            # The prior (e.g. 'covariance') is computed from every point in the pairs.
            points = pairs.reshape(-1, pairs.shape[-1])
            return self._fit_constraints(pairs, labels, points, rng)

        return self._fit_and_calibrate(X, y, fit_metric, calibration_params=calibration_params)


class SDML(LabelSupervisedMixin, _BaseSDML):
    __doc__ = f"""SDML from class labels: a sparse Mahalanobis metric for labelled points.

    {_OBJECTIVE_DOC}

    Two points of one class make a similar pair and two of different classes
    a dissimilar one; :func:`skmetric.constraints.sample_pairs` draws
    ``n_constraints`` of each, which go through the same core as in
    :class:`SDMLPairs`.

    Parameters
    ----------
    n_constraints : int, default=None
        How many similar pairs to draw, and as many dissimilar ones; None
        draws ``20 * n_classes ** 2`` of each, metric-learn's
        SDML_Supervised default.
    {_PARAMS_DOC}
    verbose : int, default=0
        If positive, print the shift of ``S`` and one line per step
        (``[SDML] iter k  loss ...  kkt ...``).
    random_state : int, RandomState instance or None, default=None
        Seed of the pair sampling and of ``prior='random'``.

    Attributes
    ----------
    {_ATTRIBUTES_DOC}
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skmetric import SDML
    >>> X, y = load_wine(return_X_y=True)
    >>> knn = make_pipeline(StandardScaler(), SDML(random_state=0), KNeighborsClassifier(3))
    >>> knn.fit(X, y).score(X, y) > 0.95
    True
    >>> knn[1].shift_ > 0  # I + 0.5 K was indefinite on these pairs
    True
    """

    _parameter_constraints = {
        **_BaseSDML._parameter_constraints,
        "n_constraints": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        *,
        n_constraints=None,
        balance_param=0.5,
        sparsity_param=0.01,
        prior="identity",
        pd_floor=0.1,
        max_iter=1000,
        tol=1e-4,
        verbose=0,
        random_state=None,
    ):
        self.n_constraints = n_constraints
        self.balance_param = balance_param
        self.sparsity_param = sparsity_param
        self.prior = prior
        self.pd_floor = pd_floor
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Sample similar / dissimilar pairs from ``y``, then fit ``M`` on them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The points.
        y : array-like of shape (n_samples,)
            Their classes: two or more, and some class with two members.

        Returns
        -------
        self
        """
        X, y_enc, classes = check_labeled_data(self, X, y, min_classes=2)
        rng = check_random_state(self.random_state)
        n = self.n_constraints if self.n_constraints is not None else 20 * classes.size**2
        indices, labels = sample_pairs(y_enc, n, random_state=rng)
        pairs = pairs_from_indices(X, indices)
        return self._fit_constraints(pairs, labels, X, rng)
