"""Mahalanobis Metric for Clustering (MMC; Xing, Ng, Jordan & Russell, 2002).

Two estimators share one fitting path, ``_BaseMMC._fit_pairs``:

* :class:`MMCPairs` learns from labelled pairs (weak supervision) and
  classifies pairs as similar / dissimilar;
* :class:`MMC` learns from class labels: it draws pairs with
  :func:`skmetric.constraints.sample_pairs` and hands them to the same code.

The optimisation itself lives in :mod:`skmetric._mmc_solver`.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._init import init_constraint, initialize_metric
from ._mmc_solver import pair_differences, solve_mmc, solve_mmc_cvxpy
from ._psd import components_from_metric
from ._validation import check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin, PairsClassifierMixin
from .constraints import pairs_from_indices, sample_pairs

__all__ = ["MMC", "MMCPairs"]

# 'auto' regularization: the prior metric counts as this many pairs per free
# parameter of M (d (d + 1) / 2, or d when diagonal). Chosen on the benchmark
# (benchmarks/bench_mmc.py): 6 to 16 all keep the 3-NN error at or below
# metric-learn's on iris, wine, breast_cancer and digits; 4 does not.
_PRIOR_PAIRS_PER_PARAMETER = 10


def auto_regularization(n_features, n_pairs, diagonal=False):
    """The ``regularization='auto'`` value ``mu = k p / (k p + n_pairs)``.

    ``p`` is the number of free parameters of the metric (``d (d + 1) / 2``,
    or ``d`` for a diagonal one) and ``k = 10``: the prior metric weighs as
    much as ``k`` pairs per parameter, so the learned part dominates only
    when there are many more pairs than parameters (a shrinkage intensity
    that decreases like ``p / n``).
    """
    p = n_features if diagonal else n_features * (n_features + 1) / 2
    prior = _PRIOR_PAIRS_PER_PARAMETER * p
    return float(prior / (prior + n_pairs))


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
        "init": init_constraint(),
        "regularization": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _fit_pairs(self, pairs, y, X_init, y_init, random_state):
        """Learn M from validated pairs (labels in {-1, +1}); sets fitted attributes.

        ``X_init`` / ``y_init`` are the points (and labels, if any) that the
        ``init`` strategy is computed from.
        """
        diff_similar, diff_dissimilar = pair_differences(pairs, y)
        if not np.any(diff_dissimilar):
            raise ValueError(
                "Every dissimilar pair consists of two identical points; MMC cannot "
                "learn a metric that separates them."
            )
        M0 = initialize_metric(
            self.init, X_init.astype(np.float64, copy=False), y_init, random_state
        )
        if self.diagonal:
            scatter = np.einsum("ij,ij->j", diff_similar, diff_similar)
            M0 = np.diag(M0).copy()
        else:
            scatter = diff_similar.T @ diff_similar
        if self.regularization == "auto":
            mu = auto_regularization(pairs.shape[2], pairs.shape[0], self.diagonal)
        else:
            mu = float(self.regularization)
        if self.solver == "cvxpy":
            result = solve_mmc_cvxpy(
                scatter,
                diff_dissimilar,
                diagonal=self.diagonal,
                init=M0,
                regularization=mu,
                verbose=bool(self.verbose),
            )
        else:
            result = solve_mmc(
                scatter,
                diff_dissimilar,
                diagonal=self.diagonal,
                init=M0,
                regularization=mu,
                max_iter=self.max_iter,
                tol=self.tol,
                verbose=int(self.verbose),
            )
        self.components_ = components_from_metric(result.metric, strict=False)
        self.regularization_ = mu
        self.n_iter_ = result.n_iter
        self.converged_ = bool(result.converged)
        self.objective_ = result.objective
        if not self.converged_:
            if self.solver == "cvxpy":
                detail = "the cvxpy solver did not report an optimal solution."
            elif result.n_iter >= self.max_iter:
                detail = (
                    f"max_iter={self.max_iter} reached (relative gap {result.gap:.2e} > "
                    f"tol={self.tol:g}); increase max_iter."
                )
            else:
                detail = (
                    f"no further progress is possible in floating point (relative gap "
                    f"{result.gap:.2e} > tol={self.tol:g}); the data may be degenerate."
                )
            warnings.warn(f"{type(self).__name__} did not converge: {detail}", ConvergenceWarning)
        return self


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
    init : {'auto', 'identity', 'pca', 'lda', 'random'} or ndarray, default='auto'
        Starting metric, and the prior metric ``M0`` of the regularised
        problem (see :func:`skmetric._init.initialize_metric`; 'auto' is the
        identity). Without regularization the problem is convex and the
        solution does not depend on it, only the number of iterations.
    regularization : float in [0, 1) or 'auto', default='auto'
        Fraction ``mu`` of the similar-distance budget kept on the prior
        metric ``M0`` (``init``): the solved problem adds the constraint
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
    ``M0`` = the ``init`` metric) is a convex regularisation toward the prior;
    with ``regularization=0`` this is exactly Xing's problem, whose solution is
    low rank in general (few strong directions). The scale of ``M`` is
    irrelevant for nearest neighbours."""


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
    verbose : int, default=0
        Print solver progress.
    random_state : int, RandomState instance or None, default=None
        Used for the validation split and by ``init='random'``.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    threshold_ : float
        Distance at or below which a pair is predicted similar.
    objective_ : float
        Sum of squared similar distances at the solution (with the dissimilar
        constraint active, i.e. equal to 1).
    regularization_ : float
        The ``mu`` used (the value of 'auto', or ``regularization``).
    n_iter_ : int
    converged_ : bool
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
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        diagonal=False,
        solver="projected_gradient",
        max_iter=1000,
        tol=1e-5,
        init="auto",
        regularization="auto",
        validation_fraction=0.2,
        verbose=0,
        random_state=None,
    ):
        self.diagonal = diagonal
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.regularization = regularization
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the metric from labelled pairs and calibrate the threshold.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2, n_features)
            The pairs.
        y : array-like of shape (n_pairs,)
            +1 for similar, -1 for dissimilar pairs (or 1 and 0).

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
        Print solver progress.
    random_state : int, RandomState instance or None, default=None
        Seed of the pair sampling (and of ``init='random'``).

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_features)
        ``L`` with ``L.T @ L = M``.
    objective_ : float
        Sum of squared similar distances at the solution.
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
        init="auto",
        regularization="auto",
        verbose=0,
        random_state=None,
    ):
        self.n_constraints = n_constraints
        self.diagonal = diagonal
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
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
