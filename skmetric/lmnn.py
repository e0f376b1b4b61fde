"""Large Margin Nearest Neighbor (LMNN) metric learning and energy classification."""

import warnings
from dataclasses import fields
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._backend import get_backend
from ._init import (
    data_scale,
    init_constraint,
    initialize_components,
    resolve_n_components,
    unscale_result,
)
from ._lmnn_solver import (
    PUSH_LOSSES,
    LMNNOptions,
    check_memory,
    fit_lmnn,
    lmnn_energy,
    single_threaded_blas,
    target_sq_distances,
)
from ._validation import FLOAT_DTYPES, check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin

__all__ = ["LMNN", "LMNNClassifier"]


# early_stopping='auto': on where the LMNN optimum overfits, many features per
# training sample (256-d CNN features of 597 digits: held-out 3-NN error 1.0%
# after a few iterations, 2.0% at convergence), and where there are enough
# samples to hold some out.
AUTO_EARLY_STOPPING_FEATURES_PER_SAMPLE = 0.25
AUTO_EARLY_STOPPING_MIN_SAMPLES = 200


def auto_early_stopping(n_samples, n_features):
    """Whether ``early_stopping='auto'`` holds out a validation set for this shape.

    True when ``n_features >= 0.25 * n_samples`` and ``n_samples >= 200``.
    """
    if n_samples is None or n_features is None:
        return False
    return (n_samples >= AUTO_EARLY_STOPPING_MIN_SAMPLES
            and n_features >= AUTO_EARLY_STOPPING_FEATURES_PER_SAMPLE * n_samples)


class _LMNNParams:
    """The parameters LMNN and LMNNClassifier share (one ``__init__``).

    Put first among the bases: scikit-learn's ``get_params`` reads this
    ``__init__``'s signature.
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "init": init_constraint(),
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "push_weight": [Interval(Real, 0, 1, closed="both")],
        "push_loss": [StrOptions(set(PUSH_LOSSES))],
        "solver": [StrOptions({"lbfgs", "projected_gradient"})],
        "n_passes": [Interval(Integral, 1, None, closed="left")],
        "refresh": [Interval(Integral, 1, None, closed="left")],
        "max_impostors": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "device": [str, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_neighbors=3,
        n_components=None,
        init="auto",
        max_iter=1000,
        tol=1e-5,
        push_weight=0.5,
        push_loss="smooth_hinge",
        solver="lbfgs",
        n_passes=1,
        refresh=25,
        max_impostors=1_000_000,
        chunk_size=None,
        early_stopping="auto",
        validation_fraction=0.2,
        n_iter_no_change=2,
        device=None,
        verbose=0,
        random_state=None,
    ):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.push_weight = push_weight
        self.push_loss = push_loss
        self.solver = solver
        self.n_passes = n_passes
        self.refresh = refresh
        self.max_impostors = max_impostors
        self.chunk_size = chunk_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def _solver_options(self, random_state, n_samples=None, n_features=None):
        """The :class:`LMNNOptions` of these parameters, with the solver's seed.

        ``early_stopping='auto'`` is resolved here from the data's shape
        (:func:`auto_early_stopping`).
        """
        names = {f.name for f in fields(LMNNOptions)} - {"random_state", "device"}
        values = {name: getattr(self, name) for name in names}
        if values["early_stopping"] == "auto":
            values["early_stopping"] = auto_early_stopping(n_samples, n_features)
        return LMNNOptions(**values, random_state=random_state, device=self._backend())

    def _backend(self):
        """The checked ``device`` (ImportError without torch, ValueError for a bad one)."""
        return get_backend(self.device, type(self).__name__)


class LMNN(_LMNNParams, LabelSupervisedMixin, BaseMahalanobis):
    """Large Margin Nearest Neighbor metric learning (Weinberger & Saul).

    Learns a linear map ``L`` (``components_``) such that each sample's
    ``n_neighbors`` *target neighbours* (its nearest same-class points in the
    initial metric) are pulled close, while differently labelled points
    (*impostors*) are pushed at least a unit margin further away.

    **What is optimised.** With ``d(a, b) = ||L (x_a - x_b)||^2`` and
    ``mu = push_weight``::

        (1 - mu) * sum_{i, j ~> i} d(i, j)
        + mu * sum_{i, j ~> i, l: y_l != y_i} h(1 + d(i, j) - d(i, l))

    By default ``h`` is the *smoothed hinge* (``push_loss='smooth_hinge'``):
    0 for ``z <= 0``, ``z**2 / (2 * 0.5)`` for ``0 < z < 0.5`` and
    ``z - 0.25`` beyond: it equals the paper's hinge shifted by at most 0.25
    on violated margins, but is continuously differentiable, so L-BFGS
    converges properly instead of stalling on the hinge's kinks (with the
    plain hinge, L-BFGS's line search fails at kinks and the fit stops on the
    iteration limit). ``'hinge'`` (the paper's exact form) and
    ``'squared_hinge'`` are available.

    **Solvers.** ``'lbfgs'`` (default) optimises ``L`` directly by L-BFGS
    whose curvature memory is kept across the impostor searches (no restart
    from a gradient step after each search); a rectangular ``L``
    (``n_components < n_features``) reduces dimension.
    ``'projected_gradient'`` optimises the paper's convex form in
    ``M = L.T @ L`` (full rank only) by projected gradient descent with
    Barzilai-Borwein steps and backtracking, projecting onto the PSD cone by
    eigenvalue clipping after each step. Neither has a learning rate to tune.

    **Book-keeping (memory and speed).** Impostors are searched in row blocks
    of ``chunk_size`` samples (never an n x n matrix) and kept as an active
    set; the solver runs on that set, all candidates are re-checked after at
    most ``refresh`` iterations (runs start at 4 iterations and double, so the
    set follows the metric's early changes), and the fit ends only when the
    solver converged *and* the fresh search found no violation that the
    active set had missed. The active set is the union of the last two
    searches, so impostors that leave the margin and come back do not cut
    the runs short. The gradient is accumulated through a sparse pair
    weight matrix ``W`` in the projected space:
    ``2 (C Z).T X`` with ``Z = X L.T`` and ``C = diag(W 1 + W.T 1) - W - W.T``
    (equal to ``2 L X.T C X``, without a d x d matrix). The fit runs with
    single-threaded BLAS except in large products (L-BFGS's own vector
    updates and small products lose to thread synchronisation), and every
    L-BFGS step is capped at a fraction of ``||L||`` (halved when a run
    leaves the region where its active set was valid).
    Memory is O(n * k + active impostors + chunk_size * n); a problem that
    cannot fit in the available memory raises a MemoryError before the
    data is copied. Before the first iteration the initial map is rescaled
    by an exact line search along it (the loss is not scale invariant, and
    the identity or PCA start is usually at the wrong scale for the unit
    margin).

    **Large data** (30,000 samples and more): the fit starts from a fit on
    a random 20% subsample. An exhaustive impostor search keeps the candidate
    pairs within 1.5 times each squared radius as a *reference*; later
    searches re-check only those candidates for the rows where a bound on
    how far the map has moved since (through its singular vectors) proves
    that no other pair can have entered the radius, and search the other
    rows exactly; a new exhaustive search is made only when more than 30%
    of the rows fail the bound. Every search is exact, so ``loss_`` and
    ``converged_`` refer to the exact objective. The row blocks of an
    exhaustive search run in parallel threads (the BLAS thread count).

    Classes with at most ``n_neighbors`` members get fewer target neighbours
    (``members - 1``), with a warning; their points still act as impostors.

    Parameters
    ----------
    n_neighbors : int, default=3
        Number of target neighbours per sample (``k``).
    n_components : int, default=None
        Dimension of the learned space; None means ``n_features``.
    init : {'auto', 'pca', 'lda', 'identity', 'random'} or ndarray, default='auto'
        Initial ``L`` (see :func:`skmetric._init.initialize_components`);
        target neighbours are selected in this initial metric.
    max_iter : int, default=1000
        Maximum solver iterations (per pass).
    tol : float, default=1e-5
        The solver stops when an iteration decreases the loss by less than
        ``tol`` times the loss at the start of the pass (after the initial
        rescaling: the scale of the problem), and a fresh impostor search
        finds no violation the active set missed.
    push_weight : float in [0, 1], default=0.5
        ``mu``, the weight of the push (impostor) term against the pull term
        (0.5 in the paper).
    push_loss : {'smooth_hinge', 'hinge', 'squared_hinge'}, default='smooth_hinge'
        The margin loss ``h``, see above.
    solver : {'lbfgs', 'projected_gradient'}, default='lbfgs'
        L-BFGS on ``L``, or projected gradient on the convex form in ``M``.
    n_passes : int, default=1
        Multi-pass LMNN (JMLR 2009, section 6.2): after each pass the target
        neighbours are selected again in the learned metric and the fit
        continues from it.
    refresh : int, default=25
        Maximum solver iterations between two full impostor searches.
    max_impostors : int, default=1_000_000
        Cap on the active impostor pairs; above it a uniform random share is
        kept per block and re-weighted so the loss stays unbiased.
    chunk_size : int, default=None
        Rows per block of the impostor search; None picks blocks of about
        2**22 distances (32 MiB), or on CUDA as many as fit in half the free
        GPU memory (at most 2**29 distances, 2 GiB).
    early_stopping : bool or 'auto', default='auto'
        Hold out ``validation_fraction`` of each class, fit on the rest and
        check the held-out samples' ``n_neighbors``-NN error after each
        impostor search; stop after ``n_iter_no_change`` searches without a
        lower error, then fit on all samples for the number of iterations of
        the best check (ties: the latest). As in the authors' code (20%
        validation). With many features per sample the LMNN optimum
        overfits: on 256-d CNN features of 597 training digits the
        held-out 3-NN error rises from 1.0% after 4 iterations to 2.0% at
        convergence; there early stopping halves the error and the time.
        On small, low-dimensional data (iris, wine, 64-d digits) the full
        fit is as good or better (breast_cancer: 0.27 points worse with it).
        'auto' turns it on where there are many features per sample
        (``n_features >= 0.25 * n_samples``) and at least 200 samples: the
        high-dimensional CNN features, not the small tabular sets.
        ``n_iter_`` counts both fits' iterations; ``converged_`` is True.
    validation_fraction : float in (0, 1), default=0.2
        Share of each class held out for early stopping (each class keeps
        at least ``n_neighbors + 1`` samples for fitting).
    n_iter_no_change : int, default=2
        Impostor searches without a lower validation error before the early
        stopping fit ends. Searches grow further apart as the fit settles,
        so each one of patience costs more iterations than the last: on the
        512-d resnet18 and 256-d CNN features of the digits, 2 instead of 3
        gave the same or a lower held-out 3-NN error (3 folds each) at
        20-40% less CPU time.
    device : None or str, default=None
        Where the array work of the fit runs. None: numpy. 'cpu', 'cuda' (or
        'cuda:1', ...) or 'auto' (CUDA when available, else the CPU): torch
        on that device (the 'deep' extra; without torch an ImportError says
        so, and 'cuda' without a GPU is a ValueError). The projection,
        target-neighbour selection, impostor search, pair distances and the
        loss and gradient run there on tensors (the search in float32 as on
        the host, the objective in float64, so the result agrees with numpy
        to round-off), while the solver (L-BFGS or projected gradient, the
        active-set book-keeping and stopping rules) runs on the host with
        the same steps; every step is blocked (no n x n array), including
        the large-data path. Results agree with numpy to round-off (measured
        relative difference below 1e-14 on loss, gradient and
        ``components_``) except where more than ``max_impostors`` pairs are
        found: both then keep an unbiased random share, which can differ
        when float32 rounding changes a block's count by a borderline pair.
        On a CPU, 'cpu' runs torch single-threaded, as the host fit runs its
        BLAS, and takes about as long as None (n = 5,000, d = 64: 3.2 s CPU
        against 3.8 s); it mainly checks the torch path.
    verbose : int, default=0
        If positive, print per-iteration loss, active impostors (violated
        triplets) and elapsed time, and each impostor search.
    random_state : int, RandomState instance or None, default=None
        Seeds 'random' init and impostor subsampling.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned map ``L``.
    n_iter_ : int
        Solver iterations run (all passes).
    loss_ : float
        Final value of the objective (all impostors re-checked).
    converged_ : bool
        Whether the last pass converged; a ConvergenceWarning is raised if
        not.
    target_neighbors_ : ndarray of shape (n_samples, n_neighbors)
        Target neighbours (indices into the training data) of the last pass;
        -1 where a small class has fewer.
    early_stopping_ : bool
        Whether the fit held out a validation set (``early_stopping``, with
        'auto' resolved for the data's shape).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    K. Q. Weinberger, J. Blitzer and L. K. Saul. Distance Metric Learning for
    Large Margin Nearest Neighbor Classification. NIPS 18, 2005.

    K. Q. Weinberger and L. K. Saul. Distance Metric Learning for Large Margin
    Nearest Neighbor Classification. JMLR 10:207-244, 2009.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import LMNN
    >>> X, y = load_iris(return_X_y=True)
    >>> LMNN(n_neighbors=3, random_state=0).fit(X, y).transform(X).shape
    (150, 4)
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the metric from labelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable type).

        Returns
        -------
        self
        """
        X, y, _ = check_labeled_data(self, X, y, min_classes=2)
        _check_neighbors(self.n_neighbors, y)
        self._backend()  # a bad device fails before any work
        n_components = resolve_n_components(self.n_components, X.shape[1])
        check_memory(X.shape[0], X.shape[1], n_components, self.n_neighbors,
                     self.max_impostors)
        # The objective depends on X only through L x: fit X / s (unit
        # spread; s = 1 for standardised data) and map the result back, so
        # that neither the start nor the stopping rules depend on X's units.
        scale = data_scale(X, self)
        X = X.astype(np.float64) / scale  # a copy: the user's X is never touched
        if self.solver == "projected_gradient" and n_components != X.shape[1]:
            raise ValueError(
                "solver='projected_gradient' learns a full-rank M; use "
                "solver='lbfgs' for n_components < n_features."
            )
        rng = check_random_state(self.random_state)
        with single_threaded_blas():
            # PCA's randomized SVD, like the solver, is faster on one BLAS
            # thread at these sizes (4 s -> 0.1 s on a busy 2-core machine).
            L0 = initialize_components(self.init, X, y, n_components, rng, scale=scale)
        progress = self._progress()
        progress.say(f"{X.shape[0]} samples, {X.shape[1]} features, "
                     f"n_components={n_components}, solver={self.solver}")
        options = self._solver_options(rng.randint(np.iinfo(np.int32).max), *X.shape)
        result = unscale_result(fit_lmnn(X, y, L0, options, progress), scale)
        self._store_result(result, progress)
        self.target_neighbors_ = result.info["targets"]
        self.early_stopping_ = options.early_stopping
        return self


def _check_neighbors(n_neighbors, y):
    """n_neighbors < n_samples is required; small classes reduce k, with a warning."""
    n_samples = y.shape[0]
    if n_neighbors >= n_samples:
        raise ValueError(
            f"n_neighbors={n_neighbors} must be smaller than the number of "
            f"samples ({n_samples})."
        )
    counts = np.bincount(y)
    small = np.flatnonzero(counts <= n_neighbors)
    if small.size:
        warnings.warn(
            f"{small.size} class(es) have at most n_neighbors={n_neighbors} members "
            f"(smallest: {counts.min()}); their samples get members - 1 target "
            "neighbours (none for a single-member class).",
            UserWarning,
        )


class LMNNClassifier(_LMNNParams, ClassifierMixin, BaseEstimator):
    """Energy-based classification with a learned LMNN metric.

    Fits :class:`LMNN` (same parameters) and classifies a test point ``x_t``
    by the class ``c`` that minimises the LMNN energy of labelling it ``c``
    (NIPS 2005, section 4; JMLR 2009, eq. 16)::

        (1 - mu) * sum_{j ~> t} d(t, j)
        + mu * sum_{j ~> t, l: y_l != c} h(1 + d(t, j) - d(t, l))
        + mu * sum_{i: y_i != c, j ~> i} h(1 + d(i, j) - d(i, t))

    where ``j ~> t`` are the ``n_neighbors`` nearest training points of
    class ``c`` and ``h`` is the metric's push loss. The paper reports this
    below the kNN error on most data sets. Test points are processed in
    blocks, so memory is O(block * n_train * n_neighbors).

    Parameters
    ----------
    Same as :class:`LMNN`.

    Attributes
    ----------
    lmnn_ : LMNN
        The fitted metric.
    classes_ : ndarray of shape (n_classes,)
    components_ : ndarray of shape (n_components, n_features)
        ``lmnn_.components_``.
    n_iter_ : int
        ``lmnn_.n_iter_``.
    loss_ : float
        ``lmnn_.loss_``.
    converged_ : bool
        ``lmnn_.converged_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    K. Q. Weinberger, J. Blitzer and L. K. Saul. Distance Metric Learning for
    Large Margin Nearest Neighbor Classification. NIPS 18, 2005.

    K. Q. Weinberger and L. K. Saul. Distance Metric Learning for Large Margin
    Nearest Neighbor Classification. JMLR 10:207-244, 2009.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import LMNNClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LMNNClassifier(random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the LMNN metric and store the embedded training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y_enc, classes = check_labeled_data(self, X, y, min_classes=2)
        self.lmnn_ = LMNN(**self.get_params()).fit(X, y_enc)
        self.classes_ = classes
        self.components_ = self.lmnn_.components_
        self.n_iter_ = self.lmnn_.n_iter_
        self.loss_ = self.lmnn_.loss_
        self.converged_ = self.lmnn_.converged_
        self._Z = X.astype(np.float64) @ self.components_.T
        self._y = y_enc
        self._target_d = target_sq_distances(self._Z, self.lmnn_.target_neighbors_)
        return self

    def energy(self, X):
        """LMNN energy of each test point under each class label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        energies : ndarray of shape (n_samples, n_classes)
            Lower is better; :meth:`predict` takes the argmin.
        """
        check_is_fitted(self, "lmnn_")
        X = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        Zt = X.astype(np.float64) @ self.components_.T
        return lmnn_energy(Zt, self._Z, self._y, self._target_d, self.classes_.size,
                           self.n_neighbors, self.push_weight, self.push_loss)

    def predict(self, X):
        """Class with the lowest LMNN energy for each sample."""
        check_is_fitted(self, "lmnn_")
        return self.classes_[np.argmin(self.energy(X), axis=1)]
