"""Sparse Compositional Metric Learning (SCML; Shi, Bellet & Sha, 2014).

Two estimators share one fitting path, ``_BaseSCML._fit_index_triplets``:

* :class:`SCMLTriplets` learns from triplets ``(a, b, c)`` stating
  ``d(a, b) < d(a, c)`` and predicts whether new triplets hold;
* :class:`SCML` learns from class labels: it draws k-NN triplets with
  :func:`skmetric.constraints.sample_triplets` and hands them to the same code.

The objective, its solver and the basis sets live in
:mod:`skmetric._scml_solver`.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._init import data_scale, unscale_result
from ._scml_solver import bases_from_local_lda, bases_from_triplet_diffs, fit_scml
from ._validation import check_partially_labeled_data, tuple_points
from .base import BaseMahalanobis, LabelSupervisedMixin, TripletsClassifierMixin
from .constraints import sample_triplets

__all__ = ["SCML", "SCMLTriplets"]

_REFERENCE = """Y. Shi, A. Bellet and F. Sha. Sparse compositional metric learning.
    Proceedings of the 28th AAAI Conference on Artificial Intelligence, 2014."""

_OBJECTIVE_DOC = """SCML learns a metric that is a sparse non-negative combination of
    rank-one bases ``b_k`` (rows of ``B``)::

        M = sum_k w_k b_k b_k^T,   w >= 0,

    minimising, over ``w``, the margin hinge loss of the triplets
    ``(a_i, b_i, c_i)`` (each stating ``d(a, b) < d(a, c)``) plus an L1
    penalty that makes ``w`` sparse::

        mean_i max(0, 1 + d_M(a_i, b_i)^2 - d_M(a_i, c_i)^2) + beta * sum_k w_k

    a convex problem in ``n_basis`` unknowns. The hinge is smoothed over a
    width ``smoothing`` (Huber hinge, within ``smoothing / 2`` of it) and the
    bound-constrained problem solved by L-BFGS-B, whose active set gives
    exact zeros, on a working set of triplets grown until it is exact
    (:func:`skmetric._scml_solver.fit_scml`); the paper uses stochastic dual
    averaging instead. ``loss_`` is the exact objective.

    The margin 1 is a squared distance, so the problem is solved on the
    points divided by ``s``, the power of two nearest the RMS spread of
    their features (:func:`skmetric._init.data_scale`; ``s = 1`` for
    standardised data), and ``M`` and ``w`` are divided by ``s**2`` after:
    what SCML learns (and ``loss_``) does not depend on the units of X, and
    ``beta`` and the margin are read on data of unit spread. Data beyond
    about ``1e+-150`` are refused with a ValueError."""

_PARAMS_DOC = """beta : float, default=1e-5
        L1 weight: larger values keep fewer bases (on the weights of the
        problem on data of unit spread, see above).
    n_basis : int, default=None
        Number of bases to build (ignored for an array ``basis``). None:
        ``min(20 * n_features, 2 * n_samples * n_directions - 1)`` for
        'lda' (``n_directions = min(n_classes - 1, n_features)``) and
        ``10 * n_features`` for 'triplet_diffs'.
    smoothing : float in (0, 1], default=0.05
        Width of the smoothed part of the hinge (the margin is 1).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    tol : float, default=1e-5
        Relative decrease of the objective below which the solver stops."""

_ATTRIBUTES_DOC = """components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M`` (rank at most the number of bases kept).
    bases_ : ndarray of shape (n_basis, n_features)
        The bases ``b_k`` (rows).
    weights_ : ndarray of shape (n_basis,)
        Their learned non-negative weights ``w`` (mostly zeros), in the
        units of X: ``M = bases_.T @ diag(weights_) @ bases_``.
    n_iter_ : int
        L-BFGS-B iterations.
    loss_ : float
        The final value of the (unsmoothed) objective above.
    converged_ : bool
        Whether the solver met its stopping rule (a ConvergenceWarning is
        issued otherwise).
    n_features_in_ : int"""

_BASIS_TRIPLETS = """'triplet_diffs'
            k-means on the directions of the differences ``a - b`` and
            ``a - c`` in the triplets (unit length, sign-canonical); the
            unit cluster centres are the bases
            (:func:`skmetric._scml_solver.bases_from_triplet_diffs`)."""


def _check_basis_array(basis, n_features):
    B = np.asarray(basis, dtype=np.float64)
    if B.ndim != 2 or B.shape[1] != n_features or B.shape[0] < 1:
        raise ValueError(
            f"A basis array must have shape (n_basis, {n_features}) with n_basis >= 1, "
            f"got {B.shape}."
        )
    if not np.all(np.isfinite(B)):
        raise ValueError("The basis array contains NaN or infinite values.")
    return B.copy()


class _BaseSCML(BaseMahalanobis):
    """Shared parameters and the triplet fitting core of SCML."""

    _parameter_constraints = {
        "beta": [Interval(Real, 0, None, closed="left")],
        "n_basis": [Interval(Integral, 1, None, closed="left"), None],
        "smoothing": [Interval(Real, 0, 1, closed="right")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _bases(self, X, triplets, y, rng):
        if isinstance(self.basis, np.ndarray):
            return _check_basis_array(self.basis, X.shape[1])
        if self.basis == "lda":
            return bases_from_local_lda(X, y, self.n_basis, random_state=rng)
        return bases_from_triplet_diffs(X, triplets, self.n_basis, random_state=rng)

    def _fit_index_triplets(self, X, triplets, y, rng, scale):
        """Learn the weights from index triplets into X (each stating
        d(a, b) < d(a, c)); ``y`` (labels, -1 unlabelled) is only used by
        'lda' bases. ``X`` is the user's points divided by ``scale``
        (:func:`skmetric._init.data_scale`): the margin 1 and ``beta`` are
        read on data of unit spread, and the learned metric (and weights) is
        mapped back to the units of the user's data, divided by
        ``scale ** 2``; the unit bases are directions, the same in both.
        Sets the fitted attributes; returns self."""
        X = X.astype(np.float64, copy=False)
        B = self._bases(X, triplets, y, rng)
        progress = self._progress()
        result = fit_scml(
            X @ B.T,
            triplets,
            B,
            beta=float(self.beta),
            smoothing=float(self.smoothing),
            max_iter=self.max_iter,
            tol=self.tol,
            progress=progress,
        )
        self.bases_ = B
        self.weights_ = result.info["weights"] / scale**2
        return self._store_result(unscale_result(result, scale), progress)


class SCMLTriplets(TripletsClassifierMixin, _BaseSCML):
    __doc__ = f"""SCML learned from triplets (relative distance comparisons).

    {_OBJECTIVE_DOC}

    A fitted model predicts +1 for a triplet ``(a, b, c)`` when ``d(a, b) <
    d(a, c)`` under the learned metric, -1 otherwise; ``score`` is the
    accuracy.

    Parameters
    ----------
    basis : 'triplet_diffs' or ndarray of shape (n_basis, n_features), default='triplet_diffs'
        The bases.

        {_BASIS_TRIPLETS}
    {_PARAMS_DOC}
    preprocessor : array-like of shape (n_points, n_features) or callable, default=None
        Lets every method take triplets as integer indices of shape (n_triplets, 3)
        into a set of points instead of the points themselves (metric-learn's
        ``preprocessor``): an array of the points (``X[indices]``), or a
        callable mapping a 1-D array of indices to an array of their points.
        The triplets are never materialised: the solver works on indices.
    verbose : int, default=0
        If positive, print one line per L-BFGS-B iteration
        (``[SCMLTriplets] iter k  loss ...  n_basis ...``: the smoothed
        objective and the bases in use).
    random_state : int, RandomState instance or None, default=None
        Seed of the k-means behind 'triplet_diffs'.

    Attributes
    ----------
    {_ATTRIBUTES_DOC}

    Notes
    -----
    ``X`` has shape (n_triplets, 3, n_features); a triplet with ``a == b``
    or ``a == c`` (identical rows) raises a ValueError.

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.scml import SCMLTriplets
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3))
    >>> t = X[rng.rand(400, 100).argsort(axis=1)[:, :3]]  # 3 distinct points each
    >>> # only feature 0 should count
    >>> y = np.where(np.abs(t[:, 0, 0] - t[:, 1, 0]) < np.abs(t[:, 0, 0] - t[:, 2, 0]), 1, -1)
    >>> est = SCMLTriplets(random_state=0).fit(t, y)
    >>> bool(est.score(t, y) > 0.9)
    True
    """

    _parameter_constraints = {
        **_BaseSCML._parameter_constraints,
        "preprocessor": ["array-like", callable, None],
        "basis": [StrOptions({"triplet_diffs"}), np.ndarray],
    }

    def __init__(
        self,
        basis="triplet_diffs",
        n_basis=None,
        beta=1e-5,
        smoothing=0.05,
        max_iter=1000,
        tol=1e-5,
        verbose=0,
        preprocessor=None,
        random_state=None,
    ):
        self.basis = basis
        self.n_basis = n_basis
        self.beta = beta
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.preprocessor = preprocessor
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the metric from triplets.

        Parameters
        ----------
        X : array-like of shape (n_triplets, 3, n_features)
            Triplets ``(a, b, c)``.
        y : array-like of shape (n_triplets,), default=None
            +1 if ``d(a, b) < d(a, c)`` should hold, -1 for the reverse (or
            1 and 0). None means every triplet is +1.

        Returns
        -------
        self
        """
        triplets = self._validate_tuples_for_fit(X, y, indexed=True)
        points, index = tuple_points(triplets, dtype=np.float64)
        # The scale of the distinct points: the same for both input forms.
        scale = data_scale(points, self)
        points = points / scale
        rng = check_random_state(self.random_state)
        return self._fit_index_triplets(points, index, None, rng, scale)


class SCML(LabelSupervisedMixin, _BaseSCML):
    __doc__ = f"""SCML learned from class labels (Sparse Compositional Metric Learning).

    {_OBJECTIVE_DOC}

    The triplets are the k-NN triplets of
    :func:`skmetric.constraints.sample_triplets`: every sample with each of
    its ``k_genuine`` nearest same-class neighbours and each of its
    ``k_impostor`` nearest other-class neighbours; the problem is then solved
    exactly as in :class:`SCMLTriplets`.

    Parameters
    ----------
    k_genuine : int, default=3
        Same-class neighbours per sample.
    k_impostor : int, default=10
        Other-class neighbours per sample.
    basis : {{'lda', 'triplet_diffs'}} or ndarray of shape (n_basis, n_features), default='lda'
        The bases.

        'lda'
            Discriminant directions of local neighbourhoods: around k-means
            centres, the nearest members of each class at two scales, as in
            the paper (:func:`skmetric._scml_solver.bases_from_local_lda`).
        {_BASIS_TRIPLETS}
    {_PARAMS_DOC}
    verbose : int, default=0
        If positive, print one line per L-BFGS-B iteration (``[SCML] iter k
        loss ...  n_basis ...``).
    random_state : int, RandomState instance or None, default=None
        Seed of the k-means behind the bases.

    Attributes
    ----------
    {_ATTRIBUTES_DOC}
    feature_names_in_ : ndarray of str, only when X has string feature names.

    Notes
    -----
    With numeric labels, -1 marks an unlabelled sample (as in metric-learn):
    it is in no triplet, not used by the 'lda' bases and does not count for
    the scale ``s`` (see above).

    References
    ----------
    {_REFERENCE}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric.scml import SCML
    >>> X, y = load_iris(return_X_y=True)
    >>> SCML(random_state=0).fit(X, y).transform(X).shape
    (150, 4)
    """

    _parameter_constraints = {
        **_BaseSCML._parameter_constraints,
        "k_genuine": [Interval(Integral, 1, None, closed="left")],
        "k_impostor": [Interval(Integral, 1, None, closed="left")],
        "basis": [StrOptions({"lda", "triplet_diffs"}), np.ndarray],
    }

    def __init__(
        self,
        k_genuine=3,
        k_impostor=10,
        basis="lda",
        n_basis=None,
        beta=1e-5,
        smoothing=0.05,
        max_iter=1000,
        tol=1e-5,
        verbose=0,
        random_state=None,
    ):
        self.k_genuine = k_genuine
        self.k_impostor = k_impostor
        self.basis = basis
        self.n_basis = n_basis
        self.beta = beta
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Draw k-NN triplets from the class labels and learn the metric.

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
        # The scale of the labelled samples: unlabelled ones change nothing.
        scale = data_scale(X[y_sample >= 0], self)
        X = np.asarray(X, dtype=np.float64) / scale
        triplets = sample_triplets(X, y_sample, self.k_genuine, self.k_impostor)
        rng = check_random_state(self.random_state)
        return self._fit_index_triplets(X, triplets, y_sample, rng, scale)
