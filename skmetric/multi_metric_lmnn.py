"""Multi-metric LMNN: one Mahalanobis metric per class or cluster, and k-NN with them."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._init import INIT_OPTIONS, data_scale, initialize_components, resolve_n_components
from ._lmnn_solver import row_blocks
from ._neighbors import k_smallest
from ._multi_metric_lmnn_solver import (
    MultiMetricOptions,
    PartitionedMaps,
    fit_multi_metric_lmnn,
    local_targets,
)
from ._solver import Progress, warn_not_converged
from ._validation import FLOAT_DTYPES, check_labeled_data
from .lmnn import LMNN

__all__ = ["MultiMetricLMNN"]

_SHARED_WITH_LMNN = ("n_neighbors", "n_components", "max_iter", "tol", "push_weight",
                     "push_loss", "refresh", "max_impostors", "chunk_size", "verbose",
                     "random_state")


class MultiMetricLMNN(ClassifierMixin, BaseEstimator):
    """Multi-metric LMNN: one Mahalanobis metric per class or cluster, learned jointly.

    The training data are partitioned, by class (``partition='class'``) or
    by k-means (``partition='kmeans'``), and each partition ``c`` gets its
    own linear map ``L_c`` (``components_[c]``). The distance from any point
    ``x`` (a training point, an impostor or a query) to a training point
    ``x_j`` is measured with the metric of ``x_j``'s partition ``p(j)``::

        d(x, x_j) = ||L_{p(j)} (x - x_j)||^2

    **What is optimised.** LMNN's objective with these distances, over all
    maps at once (JMLR 2009, section 5.3), with ``mu = push_weight``::

        (1 - mu) * sum_{i, j ~> i} d(x_i, x_j)
        + mu * sum_{i, j ~> i, l: y_l != y_i} h(1 + d(x_i, x_j) - d(x_i, x_l))
        + lam * sum_c ||L_c - L_c^0||_F^2

    where ``j ~> i`` are the ``n_neighbors`` target neighbours of ``x_i``
    (nearest same-class points in the initial metric, fixed during the fit)
    and ``h`` is the push loss (the smoothed hinge by default, as in
    :class:`skmetric.LMNN`). The last term is an addition to the paper
    (``lam = regularization``, 0 by default, which is the paper's
    objective): it holds each map near its start ``L_c^0`` (the global LMNN
    map with init='lmnn'). It is minimised by L-BFGS on the stacked maps,
    with active-set book-keeping: impostors are searched in row blocks
    (never an n x n matrix) and re-checked every ``refresh`` iterations at
    most; every impostor pair met by a search stays in the active set (JMLR
    2009, section 5.2), so that a run which moves one map far cannot ignore
    the impostors it met before; a run that still raises the true loss by
    half is undone and retried shorter, with the new impostors.

    **Prediction** is k-NN (``n_neighbors`` neighbours, majority vote) with
    the same per-point metrics: a query's distance to each training point
    ``j`` is taken under ``L_{p(j)}``; queries are processed in row blocks of
    ``chunk_size``, so memory is O(chunk_size * n_train).

    With ``init='lmnn'`` (default) a single global :class:`skmetric.LMNN`
    is fitted first (same parameters) and every ``L_c`` starts from its
    solution, with its target neighbours: the multi-metric loss starts at
    the global optimum and can only decrease from there. The multiple
    metrics have ``n_partitions`` times more parameters than one metric:
    they help when the classes (or regions) really have different shapes,
    and overfit small data sets otherwise.

    Parameters
    ----------
    n_neighbors : int, default=3
        Target neighbours per sample, and neighbours that vote in
        :meth:`predict`.
    n_components : int, default=None
        Output dimension of every map; None means ``n_features``.
    partition : {'class', 'kmeans'}, default='class'
        One metric per class (the paper's choice), or per k-means cluster
        (found in the space of the initial map).
    n_clusters : int, default=None
        Number of k-means clusters for ``partition='kmeans'``; None means the
        number of classes. Ignored for ``partition='class'``.
    init : {'lmnn', 'auto', 'pca', 'lda', 'identity', 'random'} or ndarray, default='lmnn'
        Initial maps. 'lmnn' starts every map from a global LMNN fit; the
        other strings give one map for all partitions (see
        :func:`skmetric._init.initialize_components`), rescaled by a line
        search on the loss. An ndarray of shape (n_components, n_features)
        is shared by all partitions; one of shape (n_partitions,
        n_components, n_features) gives each partition its own (used as
        given, no rescaling).
    max_iter : int, default=1000
        Maximum L-BFGS iterations (also for the global LMNN of init='lmnn').
    tol : float, default=1e-5
        Relative decrease of the loss below which the solver stops.
    push_weight : float in [0, 1], default=0.5
        ``mu``, weight of the push term against the pull term.
    push_loss : {'smooth_hinge', 'hinge', 'squared_hinge'}, default='smooth_hinge'
        The margin loss ``h`` (see :class:`skmetric.LMNN`).
    refresh : int, default=25
        Maximum solver iterations between two full impostor searches.
    regularization : float >= 0, default=0.0
        ``lam``, weight of ``sum_c ||L_c - L_c^0||_F^2`` (in units of the
        loss, a sum over ``n_samples * n_neighbors`` target pairs), for the
        maps of the data divided by ``s`` (see Notes). With
        few samples per partition the maps overfit (on 400 digits, 10
        metrics of 64 x 64, the training loss falls to 1% of the global
        LMNN's while the test error rises); a positive value keeps them near
        the shared start.
    max_impostors : int, default=1_000_000
        Cap on the active impostor pairs. A search that finds more keeps a
        uniform share, re-weighted so the loss stays unbiased; the pairs of
        earlier searches are dropped when keeping them would exceed it.
    chunk_size : int, default=None
        Rows per block in the impostor search, target selection and
        prediction; None picks blocks of about 2**22 distances.
    verbose : int, default=0
        If positive, print per-iteration loss and impostor searches.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means, the 'random' init, impostor subsampling and the
        global LMNN of init='lmnn'.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    components_ : ndarray of shape (n_partitions, n_components, n_features)
        The learned maps ``L_c``; ``components_[c].T @ components_[c]`` is
        the Mahalanobis matrix of partition ``c``.
    partition_ : ndarray of shape (n_samples,)
        Partition index (in ``range(n_partitions)``) of each training point;
        for ``partition='class'`` the encoded class.
    n_partitions_ : int
    n_iter_ : int
        Iterations of the multi-metric solver (the global LMNN's are in
        ``lmnn_.n_iter_``).
    loss_ : float
        Final multi-metric objective (all impostors re-checked).
    converged_ : bool
        Whether the solver converged; a ConvergenceWarning is raised if not.
    target_neighbors_ : ndarray of shape (n_samples, n_neighbors)
        Target neighbours (indices into the training data); -1 where a small
        class has fewer.
    lmnn_ : LMNN or None
        The global LMNN that initialised the maps (init='lmnn'), else None.
    kmeans_ : KMeans or None
        The clustering of ``partition='kmeans'``, else None.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    Notes
    -----
    The loss depends on the data only through ``L_c x`` (its margin 1 is a
    squared distance), so the maps are learned on ``X / s``, ``s`` the power
    of two nearest the RMS spread of the features
    (:func:`skmetric._init.data_scale`; 1 for standardised data), and
    divided by ``s`` after: what is learned does not depend on the units of
    X (exactly, for a power-of-two change of units), with ``regularization``
    read on the maps of data of unit spread. An init array is in the units
    of X; ``lmnn_`` is fitted on ``X / s`` too and its ``components_`` are
    those for X. Data whose spread is beyond about ``1e+-150`` are refused
    with a ValueError.

    See Also
    --------
    skmetric.LMNN : one global metric.

    References
    ----------
    K. Q. Weinberger and L. K. Saul. Distance Metric Learning for Large Margin
    Nearest Neighbor Classification. JMLR 10:207-244, 2009, section 5.3
    ("Multiple metrics").

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import MultiMetricLMNN
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MultiMetricLMNN(random_state=0).fit(X, y)
    >>> clf.components_.shape
    (3, 4, 4)
    >>> clf.score(X, y) > 0.9
    True
    """

    _parameter_constraints = {
        # the parameters shared with LMNN, constrained as there
        **{name: LMNN._parameter_constraints[name] for name in _SHARED_WITH_LMNN},
        "partition": [StrOptions({"class", "kmeans"})],
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "init": [StrOptions({"lmnn", *INIT_OPTIONS}), np.ndarray],
        "regularization": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_neighbors=3,
        n_components=None,
        partition="class",
        n_clusters=None,
        init="lmnn",
        max_iter=1000,
        tol=1e-5,
        push_weight=0.5,
        push_loss="smooth_hinge",
        refresh=25,
        regularization=0.0,
        max_impostors=1_000_000,
        chunk_size=None,
        verbose=0,
        random_state=None,
    ):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.partition = partition
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.push_weight = push_weight
        self.push_loss = push_loss
        self.refresh = refresh
        self.regularization = regularization
        self.max_impostors = max_impostors
        self.chunk_size = chunk_size
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn one metric per partition from labelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable type); every class needs at least 2
            samples.

        Returns
        -------
        self
        """
        X, y_enc, classes = check_labeled_data(self, X, y, min_classes=2,
                                               min_samples_per_class=2)
        X_user = X.astype(np.float64)  # a copy: the user's X is never touched
        # The loss depends on X only through L_c x (the margin 1 is a squared
        # distance): fit X / s (unit spread, see skmetric._init.data_scale) so
        # that neither the start nor the solver's steps and tolerances depend
        # on the units of X, and divide the learned maps by s after (exact: s
        # is a power of two).
        scale = data_scale(X_user, self)
        X = X_user / scale
        n_samples, n_features = X.shape
        if self.n_neighbors >= n_samples:
            raise ValueError(f"n_neighbors={self.n_neighbors} must be smaller than the "
                             f"number of samples ({n_samples}).")
        n_clusters = classes.size if self.n_clusters is None else self.n_clusters
        if self.partition == "kmeans" and n_clusters > n_samples:
            raise ValueError(f"n_clusters={n_clusters} must not exceed the number of "
                             f"samples ({n_samples}).")
        small = np.bincount(y_enc) <= self.n_neighbors
        if small.any():
            warnings.warn(
                f"{small.sum()} class(es) have at most n_neighbors={self.n_neighbors} "
                "members; their samples get members - 1 target neighbours.", UserWarning)
        n_components = resolve_n_components(self.n_components, n_features)
        rng = check_random_state(self.random_state)
        progress = Progress(self, self.verbose)

        L0, targets, rescale = self._initial_map(X, y_enc, n_components, rng, scale)
        if self.partition == "class":
            partition, n_partitions, self.kmeans_ = y_enc, classes.size, None
        else:
            Z0 = X @ L0.T if L0.ndim == 2 else X
            self.kmeans_ = KMeans(n_clusters=n_clusters, n_init=4,
                                  random_state=rng.randint(np.iinfo(np.int32).max)).fit(Z0)
            partition, n_partitions = self.kmeans_.labels_.astype(np.intp), n_clusters
        maps0 = self._initial_maps(L0, n_partitions, n_components, n_features)
        if targets is None:
            targets = local_targets(X, y_enc, PartitionedMaps(X, partition, maps0),
                                    self.n_neighbors, self.chunk_size)
        progress.say(f"{n_samples} samples, {n_features} features, {n_partitions} "
                     f"partitions ({self.partition}), n_components={n_components}")
        options = MultiMetricOptions(
            push_weight=self.push_weight, push_loss=self.push_loss, max_iter=self.max_iter,
            tol=self.tol, refresh=self.refresh, regularization=self.regularization,
            max_impostors=self.max_impostors,
            chunk_size=self.chunk_size, rescale=rescale,
            random_state=rng.randint(np.iinfo(np.int32).max))
        result = fit_multi_metric_lmnn(X, y_enc, partition, maps0, targets, options, progress)

        self.classes_ = classes
        self.components_ = np.array(result.info["maps"]) / scale
        self.partition_ = partition
        self.n_partitions_ = n_partitions
        self.n_iter_ = result.n_iter
        self.loss_ = result.loss
        self.converged_ = result.converged
        self.target_neighbors_ = targets
        self._y = y_enc
        self._view = PartitionedMaps(X_user, partition, self.components_)
        progress.done(result)
        warn_not_converged(self, result)
        return self

    def _initial_map(self, X, y, n_components, rng, scale):
        """``(L0, targets or None, rescale)``: the start and whether to rescale it.

        ``X`` is the user's data divided by ``scale``; ``L0`` is a map on it,
        2-D (shared by all partitions) or, for a 3-D init array, 3-D (an init
        array is in the units of the user's data, so it is multiplied by
        ``scale``). ``lmnn_`` is fitted on ``X`` and then mapped back to the
        units of the user's data.
        """
        self.lmnn_ = None
        init = self.init
        if isinstance(init, np.ndarray) and init.ndim == 3:
            return np.asarray(init, dtype=np.float64) * scale, None, False
        if isinstance(init, str) and init == "lmnn":
            self.lmnn_ = LMNN(
                n_neighbors=self.n_neighbors, n_components=n_components,
                max_iter=self.max_iter, tol=self.tol, push_weight=self.push_weight,
                push_loss=self.push_loss, refresh=self.refresh,
                max_impostors=self.max_impostors, chunk_size=self.chunk_size,
                random_state=rng.randint(np.iinfo(np.int32).max),
            ).fit(X, y)
            L0 = self.lmnn_.components_
            # Its map on the user's data (LMNN's loss depends on X only
            # through L x, so this is the LMNN of the user's data).
            self.lmnn_.components_ = L0 / scale
            return L0, self.lmnn_.target_neighbors_, False
        L0 = initialize_components(init, X, y, n_components, rng, scale=scale)
        return L0, None, not isinstance(init, np.ndarray)

    @staticmethod
    def _initial_maps(L0, n_partitions, n_components, n_features):
        if L0.ndim == 2:
            return np.repeat(L0[None], n_partitions, axis=0)
        expected = (n_partitions, n_components, n_features)
        if L0.shape != expected:
            raise ValueError(f"A 3-D init array must have shape (n_partitions, n_components, "
                             f"n_features) = {expected}, got {L0.shape}.")
        if not np.all(np.isfinite(L0)):
            raise ValueError("The init array contains NaN or infinite values.")
        return L0.copy()

    def _check_query(self, X):
        check_is_fitted(self, "components_")
        X = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        return X.astype(np.float64, copy=False)

    def kneighbors(self, X, n_neighbors=None, return_distance=True):
        """Nearest training points of each query under the per-point metrics.

        The distance to training point ``j`` is ``||L_{p(j)} (x - x_j)||``
        (the square root of the learned squared distance). Queries are
        processed in row blocks (``chunk_size``).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
        n_neighbors : int, default=None
            None means ``self.n_neighbors``.
        return_distance : bool, default=True

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Only when ``return_distance``; increasing along each row.
        indices : ndarray of shape (n_queries, n_neighbors)
            Indices into the training data.
        """
        X = self._check_query(X)
        k = self.n_neighbors if n_neighbors is None else int(n_neighbors)
        n_train = self._view.n_train
        if not 1 <= k <= n_train:
            raise ValueError(f"n_neighbors={k} must be between 1 and the number of "
                             f"training samples ({n_train}).")
        dist = np.empty((X.shape[0], k))
        ind = np.empty((X.shape[0], k), dtype=np.intp)
        for start, stop in row_blocks(X.shape[0], n_train, self.chunk_size):
            D = self._view.distances(X[start:stop])
            ind[start:stop], d_near = k_smallest(D, k)
            dist[start:stop] = np.sqrt(d_near)
        return (dist, ind) if return_distance else ind

    def predict_proba(self, X):
        """Share of each class among the ``n_neighbors`` nearest training points.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
        """
        ind = self.kneighbors(X, return_distance=False)
        votes = self._y[ind]
        n_classes = self.classes_.size
        flat = (np.arange(votes.shape[0])[:, None] * n_classes + votes).ravel()
        counts = np.bincount(flat, minlength=votes.shape[0] * n_classes)
        return counts.reshape(votes.shape[0], n_classes) / votes.shape[1]

    def predict(self, X):
        """k-NN majority vote under the per-point metrics (ties: the first class).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_queries,)
        """
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def get_mahalanobis_matrices(self):
        """The learned matrices ``M_c = L_c.T @ L_c``, shape (n_partitions, n_features, n_features)."""
        check_is_fitted(self, "components_")
        return np.einsum("cri,crj->cij", self.components_, self.components_)
