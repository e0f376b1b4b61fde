"""Maximally Collapsing Metric Learning (MCML)."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from ._init import (
    data_scale,
    init_constraint,
    initialize_metric,
    resolve_n_components,
    unscale_result,
)
from ._mcml_solver import fit_mcml
from ._validation import check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin

__all__ = ["MCML"]


class MCML(LabelSupervisedMixin, BaseMahalanobis):
    """Maximally Collapsing Metric Learning (Globerson & Roweis, 2006).

    Learns a Mahalanobis matrix ``M`` under which each class would ideally
    collapse to a point while different classes move infinitely far apart.
    Each point ``i`` gets a softmax neighbour distribution
    ``p_M(j | i) proportional to exp(-(x_i - x_j)^T M (x_i - x_j))``, ``j != i``,
    and MCML minimises, over PSD ``M``, the mean over points of

        KL[p_0(. | i) || p_M(. | i)],

    where ``p_0(. | i)`` is uniform over the other members of ``i``'s class.
    The problem is convex in ``M``; it is solved by accelerated projected
    gradient descent (FISTA with backtracking and restarts, see
    :mod:`skmetric._projected_gradient`), projecting onto the PSD cone by
    eigenvalue clipping after each step (:func:`skmetric._mcml_solver.fit_mcml`).
    The softmax is evaluated with a shifted
    log-sum-exp (no overflow for large distances) in row chunks (memory
    O(chunk_size * n_samples + n_features^2)).

    Parameters
    ----------
    n_components : int, default=None
        Keep only the ``n_components`` leading directions of the learned
        metric (largest eigenvalues of ``M``), as suggested in the paper for
        dimensionality reduction. None keeps all ``n_features``.
    init : {'auto', 'pca', 'lda', 'identity', 'random'} or ndarray, default='auto'
        Starting metric, through :func:`skmetric._init.initialize_metric`
        ('auto' is the identity; an array of shape (n_features, n_features)
        is used as ``M``). The strategies are applied to ``X / s``, ``s`` the
        power of two nearest the RMS spread of the features
        (:func:`skmetric._init.data_scale`; 1 for standardised data), so that
        the fit does not depend on the units of ``X``.
    max_iter : int, default=100
        Maximum number of projected gradient steps. Each costs one or two
        passes over the n x n softmax (O(n^2 d) time); on data with many
        classes and features (e.g. digits) the objective is still
        decreasing after 100 steps.
    tol : float, default=1e-5
        Stop when a step decreases the objective by less than ``tol`` times
        its value.
    step_size : float, default=None
        Initial step of the projected gradient method (then adapted by
        backtracking); None uses ``1 / ||gradient at init||_F``.
    chunk_size : int, default=None
        Rows of the n x n softmax held in memory at once; None picks about
        2**20 entries per chunk.
    verbose : int, default=0
        If positive, print one line per iteration (``[MCML] iter k  loss ...``).
    random_state : int, RandomState instance or None, default=None
        Used by the 'random' and 'pca' initialisations.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        ``L`` with ``L.T @ L`` the (truncated) learned metric.
    n_iter_ : int
        Number of projected gradient steps run.
    loss_ : float
        Final value of the objective (mean KL divergence over points that
        have another member in their class).
    converged_ : bool
        Whether the stopping rule was met within ``max_iter`` steps (a
        ConvergenceWarning is issued otherwise).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    A. Globerson and S. Roweis. Metric learning by collapsing classes. In
    Advances in Neural Information Processing Systems 18 (NIPS), 2006.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric.mcml import MCML
    >>> X, y = load_iris(return_X_y=True)
    >>> MCML(max_iter=20).fit(X, y).transform(X).shape
    (150, 4)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "init": init_constraint(),
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "step_size": [Interval(Real, 0, None, closed="neither"), None],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=None,
        init="auto",
        max_iter=100,
        tol=1e-5,
        step_size=None,
        chunk_size=None,
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.step_size = step_size
        self.chunk_size = chunk_size
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the metric from labelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self
        """
        X, y, _ = check_labeled_data(self, X, y)
        n_components = resolve_n_components(self.n_components, X.shape[1])
        # The objective depends on X only through (x_i - x_j)^T M (x_i - x_j):
        # fit X / s (unit spread; M scales by s**2, a step size by s**4) and map
        # the result back, so that the start and the stopping rule do not depend
        # on the units of X.
        scale = data_scale(X, self)
        X = np.asarray(X, dtype=np.float64) / scale
        M0 = initialize_metric(self.init, X, y, random_state=self.random_state, scale=scale)
        step_size = None if self.step_size is None else self.step_size * scale**4
        progress = self._progress()
        result = fit_mcml(
            X,
            y,
            M0,
            n_components,
            max_iter=self.max_iter,
            tol=self.tol,
            step_size=step_size,
            chunk_size=self.chunk_size,
            progress=progress,
        )
        result = unscale_result(result, scale)
        return self._store_result(result, progress)
