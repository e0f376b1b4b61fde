"""Neighbourhood Components Analysis (NCA)."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._backend import get_backend
from ._init import (
    data_scale,
    init_constraint,
    initialize_components,
    resolve_n_components,
    unscale_result,
)
from ._nca_solver import fit_nca
from ._validation import check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin

__all__ = ["NCA"]

#: With ``n_neighbors_softmax='auto'``, the exact objective is used up to this
#: many samples and the truncated one (``AUTO_N_NEIGHBORS`` candidates) above.
AUTO_EXACT_MAX_SAMPLES = 5000
AUTO_N_NEIGHBORS = 50


class NCA(LabelSupervisedMixin, BaseMahalanobis):
    """Neighbourhood Components Analysis (Goldberger et al., 2004).

    Learns a linear map ``L`` that maximises the expected leave-one-out
    accuracy of a stochastic nearest-neighbour classifier: with ``z = L x``,
    point ``i`` picks neighbour ``j`` with probability
    ``p_ij = exp(-||z_i - z_j||^2) / sum_{k != i} exp(-||z_i - z_k||^2)``
    (``p_ii = 0``), and the objective maximised is

        f(L) = sum_i sum_{j : y_j = y_i} p_ij,

    the expected number of correctly classified training points. It is
    minimised as ``-f(L)`` with L-BFGS-B (scipy) from the initial map chosen by
    ``init`` (:func:`skmetric._nca_solver.fit_nca`). The objective and its
    gradient live in :mod:`skmetric._nca_objective`. For large ``n_samples``
    the softmax can be truncated to each point's nearest candidates
    (``n_neighbors_softmax``, error bounded, see Notes), and the objective can
    run on a GPU (``device``).

    Parameters
    ----------
    n_components : int, default=None
        Output dimension (rows of ``L``); None means ``n_features``.
    init : {'auto', 'pca', 'lda', 'identity', 'random'} or ndarray, default='auto'
        Initial ``L``, see :func:`skmetric._init.initialize_components`. An
        array must have shape (n_components, n_features). The strategies are
        applied to ``X / s``, ``s`` the power of two nearest the RMS spread of
        the features (:func:`skmetric._init.data_scale`; 1 for standardised
        data), so that the fit does not depend on the units of ``X``.
    max_iter : int, default=100
        Maximum number of L-BFGS-B iterations (with the truncated objective,
        all rounds between candidate searches together).
    tol : float, default=1e-5
        Convergence tolerance passed to L-BFGS-B (``scipy.optimize.minimize``).
    n_neighbors_softmax : 'auto', int or None, default='auto'
        None: the exact objective (softmax over all other points). An int
        ``K``: the neighbour-truncated objective with ``K`` candidates per
        point (exact when ``K >= n_samples - 1``). 'auto': exact up to
        ``AUTO_EXACT_MAX_SAMPLES = 5000`` samples, ``K = 50`` above. Asking for
        the exact objective where not one row of its blocks fits in the memory
        budget (``sklearn.set_config(working_memory=...)``, or half the free
        GPU memory) raises a ValueError saying the size needed, before
        anything is allocated.
    device : None or str, default=None
        None: numpy. 'cpu', 'cuda' (or 'cuda:1', ...) or 'auto' (CUDA when
        available, else CPU): torch, float64, on that device (the 'deep'
        extra; without torch an ImportError says so, and 'cuda' without a GPU
        is a ValueError). On a CPU, None is the faster choice for the
        truncated objective (one evaluation at n = 100,000, K = 50, 64
        components: numpy 4.9 s, torch 11.7 s CPU); 'cpu' mainly checks the
        torch path.
    verbose : int, default=0
        If > 0, print one line per iteration (``[NCA] iter k  loss ...``) to
        stdout.
    random_state : int, RandomState instance or None, default=None
        Used by ``init='random'`` and the PCA initialisation.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned linear map ``L``.
    n_iter_ : int
        Number of L-BFGS-B iterations run.
    loss_ : float
        The minimised value ``-f(L)``: minus the expected number of correct
        leave-one-out classifications (out of ``n_samples``), so lower is
        better and ``-loss_ / n_samples`` is the expected accuracy.
    converged_ : bool
        False when L-BFGS-B stopped at ``max_iter`` (a ConvergenceWarning is
        issued then).
    n_neighbors_softmax_ : int or None
        The ``K`` used (None: the exact objective).
    truncation_bound_ : float
        Bound on ``|loss_ - exact loss| / n_samples`` at the learned map
        (0.0 for the exact objective).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    Notes
    -----
    Exact and truncated objective (``n_neighbors_softmax``). The exact softmax
    runs over all other points: rows of ``p`` are computed in blocks, so memory
    is O(n_samples * block) and never O(n_samples^2 * n_features^2), but time
    is O(n_samples^2 * n_components) per evaluation (measured 4.7 s CPU at
    n_samples = 10,000, d = 64, so about 8 min per evaluation and over 10 h per
    fit at 100,000). The truncated softmax runs over each point's ``K`` nearest
    points in the current embedding ``z = L x`` (found with
    :class:`~sklearn.neighbors.NearestNeighbors` after rounds of 5, 10, 20, ...
    iterations and at the end); points outside, same-class or not, are dropped,
    which costs O(n_samples * K * n_components) per evaluation.

    The error this costs is bounded at the final map: every dropped point is at
    least as far as the ``K``-th nearest, so the dropped softmax mass ``m_i``
    of point ``i`` is at most ``r_i / (1 + r_i)`` with ``r_i = (n - 1 - K)
    exp(-d_iK) / sum_{j <= K} exp(-d_ij)``, and the truncated objective differs
    from the exact one by at most ``sum_i m_i``; ``truncation_bound_`` is that
    bound divided by ``n_samples`` (an error in expected accuracy).

    Measured held-out 3-NN error (StandardScaler -> NCA -> 3-NN): digits, 3
    stratified folds, exact 2.17 %, ``K = 50`` 1.84 %, ``K = 20`` 2.28 %;
    ``make_classification`` (64 features, 10 classes), 5,000 training and 5,000
    held-out points, 32 components: exact 17.08 % (144 s CPU, 611 MiB peak
    RSS), ``K = 50`` 17.26 % (18 s CPU, 207 MiB), Euclidean 45.0 %. At
    n_samples = 100,000 (same data, d = 64, ``K = 50``, 2 CPU cores shared with
    other jobs): 64 components, 15 min CPU (22 min wall; 100 iterations,
    max_iter reached), 725 MiB peak RSS, held-out error 5.37 %; 16 components,
    9.4 min CPU (27 min wall; 85 iterations, converged), 596 MiB, 5.56 %;
    Euclidean 34.96 %. Final bounds below 1e-16.

    Device (``device``). None computes the objective with numpy; a device
    ('cpu', 'cuda', 'auto') computes distances, softmax and gradient with
    float64 torch tensors there (same results to round-off), while L-BFGS-B
    still runs on the host.

    References
    ----------
    J. Goldberger, S. Roweis, G. Hinton and R. Salakhutdinov. Neighbourhood
    Components Analysis. Advances in Neural Information Processing Systems 17
    (NIPS 2004), pages 513-520.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import NCA
    >>> X, y = load_iris(return_X_y=True)
    >>> nca = NCA(n_components=2, random_state=0).fit(X, y)
    >>> nca.transform(X).shape
    (150, 2)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "init": init_constraint(),
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_neighbors_softmax": [
            StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), None
        ],
        "device": [str, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        init="auto",
        max_iter=100,
        tol=1e-5,
        n_neighbors_softmax="auto",
        device=None,
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.n_neighbors_softmax = n_neighbors_softmax
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn ``L`` from labelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable type).

        Returns
        -------
        self
        """
        X, y_enc, self.classes_ = check_labeled_data(self, X, y)
        backend = get_backend(self.device, "NCA")
        # The objective depends on X only through L x: fit X / s (unit spread)
        # and map the result back, so that neither the start nor L-BFGS-B's
        # stopping rules depend on the units of X.
        scale = data_scale(X, self)
        X64 = np.asarray(X, dtype=np.float64) / scale
        n_components = resolve_n_components(self.n_components, X.shape[1])
        K = self.n_neighbors_softmax
        if K == "auto":
            K = None if X.shape[0] <= AUTO_EXACT_MAX_SAMPLES else AUTO_N_NEIGHBORS
        L0 = initialize_components(self.init, X64, y_enc, n_components, self.random_state,
                                   scale=scale)
        progress = self._progress()
        result = fit_nca(
            X64, y_enc, L0, max_iter=self.max_iter, tol=self.tol, progress=progress,
            n_neighbors_softmax=K, backend=backend,
        )
        result = unscale_result(result, scale)
        self.n_neighbors_softmax_ = result.info["n_neighbors_softmax"]
        self.truncation_bound_ = result.info["truncation_bound"]
        return self._store_result(result, progress)
