"""The Mahalanobis base shared by every linear metric learner.

A fitted learner holds one piece of learned state, ``components_`` (the linear
map ``L`` of shape (n_components, n_features)). Everything else derives from it:

* ``transform(X) = X @ L.T``
* ``get_mahalanobis_matrix() = L.T @ L`` (the matrix ``M``)
* ``pair_distance(pairs)``: ``sqrt((x - y)^T M (x - y))`` for each pair
* ``pair_score(pairs)``: ``-pair_distance`` (larger means more similar)
* ``get_metric()``: a picklable callable for ``KNeighborsClassifier(metric=...)``
  and ``scipy.spatial.distance.cdist`` (one Python call per pair: slow)
* ``neighbors_pipeline(neighbors)``: the fast path, a scikit-learn neighbours
  estimator searching under the learned metric (``transform`` then Euclidean)

Pair-supervised learners (X of shape (n_pairs, 2, n_features), y in {-1, +1})
add :class:`PairsClassifierMixin`, which turns pair scores into predictions
with a threshold calibrated on pairs. Learners from relative comparisons add
:class:`TripletsClassifierMixin` (a triplet ``(a, b, c)`` states
``d(a, b) < d(a, c)``) or :class:`QuadrupletsClassifierMixin` (a quadruplet
``(a, b, c, d)`` states ``d(a, b) < d(c, d)``); both predict whether the
comparison holds, with no threshold. Tuple learners differ only by tuple size:
``components_`` is their only learned state.
"""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._solver import Progress, SolverResult, warn_not_converged
from ._validation import (
    COMPARED_PAIRS,
    FLOAT_DTYPES,
    TUPLE_NAMES,
    IndexedTuples,
    check_pair_labels,
    check_pairs,
    check_tuple_labels,
    check_tuples,
)

__all__ = [
    "MahalanobisDistance",
    "BaseMahalanobis",
    "PairsClassifierMixin",
    "TripletsClassifierMixin",
    "QuadrupletsClassifierMixin",
    "LabelSupervisedMixin",
    "best_accuracy_threshold",
    "best_threshold",
    "THRESHOLD_STRATEGIES",
    "calibration_split",
]


class MahalanobisDistance:
    """A picklable Mahalanobis distance ``d(u, v) = ||L (u - v)||_2``.

    Usable wherever a callable metric is accepted: ``KNeighborsClassifier(
    metric=...)``, ``scipy.spatial.distance.cdist(XA, XB, metric=...)``,
    ``sklearn.metrics.pairwise_distances``. It runs in Python once per pair:
    for many points, ``transform`` then the Euclidean distance gives the same
    neighbours much faster.

    Parameters
    ----------
    components : ndarray of shape (n_components, n_features)
        The linear map ``L``; the matrix of the metric is ``L.T @ L``.
    squared : bool, default=False
        Return the squared distance ``(u - v)^T M (u - v)``.
    """

    def __init__(self, components, squared=False):
        self.components = np.array(components, dtype=np.float64)
        self.squared = bool(squared)

    def _check(self, x, name):
        x = np.asarray(x, dtype=np.float64)
        n_features = self.components.shape[1]
        if x.shape != (n_features,):
            raise ValueError(
                f"{name} must be one point of shape ({n_features},), got an array of "
                f"shape {x.shape}."
            )
        return x

    def __call__(self, u, v):
        proj = self.components @ (self._check(u, "u") - self._check(v, "v"))
        sq = float(proj @ proj)
        return sq if self.squared else float(np.sqrt(sq))

    def __repr__(self):
        n_components, n_features = self.components.shape
        extra = ", squared=True" if self.squared else ""
        return (f"MahalanobisDistance(n_components={n_components}, "
                f"n_features={n_features}{extra})")


class BaseMahalanobis(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class for learners of a Mahalanobis metric ``M = L.T @ L``.

    Subclasses implement ``fit``: validate (``n_features_in_`` is set
    there), initialise, call one solver and pass its :class:`SolverResult` to
    :meth:`_store_result`, which sets ``components_``, ``n_iter_``,
    ``loss_`` and ``converged_`` the same way for every learner and raises the
    one ConvergenceWarning. Closed-form learners store a result too
    (``n_iter=0``, ``converged=True``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _progress(self, **kwargs):
        """The estimator's progress voice (``[ClassName] ...``), silent unless verbose."""
        return Progress(self, getattr(self, "verbose", 0), **kwargs)

    def _store_result(self, result, progress=None, hint="increase max_iter or tol"):
        """Store a :class:`SolverResult` as the fitted state; warn if it did not converge.

        Sets ``components_``, ``n_iter_``, ``loss_`` and ``converged_``.
        Returns ``self``.
        """
        if not isinstance(result, SolverResult):
            raise TypeError(f"expected a SolverResult, got {type(result).__name__}")
        self.components_ = result.components
        self.n_iter_ = result.n_iter
        self.loss_ = result.loss
        self.converged_ = result.converged
        if progress is not None:
            progress.done(result)
        # Frames: _store_result <- fit <- sklearn's _fit_context wrapper <- the user.
        warn_not_converged(self, result, hint, stacklevel=4)
        return self

    @property
    def _n_features_out(self):
        # Read by ClassNamePrefixFeaturesOutMixin.get_feature_names_out.
        return self.components_.shape[0]

    def transform(self, X):
        """Map data into the learned space: ``X @ components_.T``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Same float dtype as X (float32 stays float32).
        """
        check_is_fitted(self, "components_")
        X = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        return X @ self.components_.T.astype(X.dtype, copy=False)

    def get_mahalanobis_matrix(self):
        """The learned Mahalanobis matrix ``M = L.T @ L`` (n_features x n_features)."""
        check_is_fitted(self, "components_")
        return self.components_.T @ self.components_

    def _check_tuples_for_metric(self, tuples, tuple_size=2):
        """Validate tuples given to a fitted learner (their number of features too).

        Tuples of indices (with a ``preprocessor``) come back as an
        :class:`~skmetric._validation.IndexedTuples`, not materialised.
        """
        check_is_fitted(self, "components_")
        tuples = check_tuples(
            tuples, tuple_size=tuple_size, require_distinct=False,
            preprocessor=getattr(self, "preprocessor", None), return_indexed=True,
        )
        if tuples.shape[2] != self.components_.shape[1]:
            raise ValueError(
                f"{TUPLE_NAMES.get(tuple_size, 'Tuples').capitalize()} have {tuples.shape[2]} "
                f"features, but {type(self).__name__} was fitted with "
                f"{self.components_.shape[1]} features."
            )
        return tuples

    def _check_pairs_for_metric(self, pairs):
        return self._check_tuples_for_metric(pairs, 2)

    def _tuple_pair_distance(self, tuples, i, j):
        """Learned distance between points ``i`` and ``j`` of each validated tuple.

        For tuples of indices, the points are mapped once (``points @ L.T``)
        when the tuples reference at least half as many points as there are,
        and the differences are taken in the learned space.
        """
        L = self.components_.T.astype(tuples.dtype, copy=False)
        if isinstance(tuples, IndexedTuples):
            if 2 * tuples.indices.shape[0] >= tuples.points.shape[0]:
                Z = tuples.points @ L
                diff = Z[tuples.indices[:, i]] - Z[tuples.indices[:, j]]
            else:
                diff = tuples.diff(i, j) @ L
        else:
            diff = (tuples[:, i, :] - tuples[:, j, :]) @ L
        return np.sqrt(np.einsum("ij,ij->i", diff, diff))

    def pair_distance(self, pairs):
        """Learned distance between the two points of each pair.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Or, for a learner with a ``preprocessor``, integer indices of
            shape (n_pairs, 2) into its points.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            ``sqrt((x - y)^T M (x - y))`` for each pair ``(x, y)``.
        """
        return self._tuple_pair_distance(self._check_pairs_for_metric(pairs), 0, 1)

    def pair_score(self, pairs):
        """Similarity of each pair: ``-pair_distance(pairs)``; larger is more similar."""
        return -self.pair_distance(pairs)

    def get_metric(self, squared=False):
        """A picklable callable ``metric(u, v)`` giving the learned distance.

        Parameters
        ----------
        squared : bool, default=False
            Return squared distances ``(u - v)^T M (u - v)``.

        Returns
        -------
        metric : MahalanobisDistance
            Works with ``scipy.spatial.distance.cdist``,
            ``sklearn.metrics.pairwise_distances`` and
            ``KNeighborsClassifier(metric=metric)``; ``u`` and ``v`` are single
            points of shape (n_features,) (a ValueError names the expected
            shape otherwise).

        See Also
        --------
        neighbors_pipeline : the same neighbours at the speed of a Euclidean
            search. A callable metric costs one Python call per pair of points
            (tens of times slower than ``transform`` then Euclidean kNN on
            digits), and so does scikit-learn's own ``metric="mahalanobis"``
            with ``metric_params={"VI": get_mahalanobis_matrix()}`` (``d^2``
            work per pair, no BLAS); ``python -m benchmarks.bench_lmnn --parts
            knn_metric`` measures all of them.

        Examples
        --------
        >>> from scipy.spatial.distance import cdist
        >>> from sklearn.datasets import load_iris
        >>> from skmetric import Covariance
        >>> X, y = load_iris(return_X_y=True)
        >>> metric = Covariance().fit(X).get_metric()
        >>> cdist(X[:2], X[:3], metric=metric).shape
        (2, 3)
        """
        check_is_fitted(self, "components_")
        return MahalanobisDistance(self.components_, squared=squared)

    def neighbors_pipeline(self, neighbors):
        """A neighbours estimator that searches under the learned metric, fast.

        The learned distance is the Euclidean distance after
        :meth:`transform`, so scikit-learn's native Euclidean search (BLAS
        matrix products, trees) on the transformed points finds exactly the
        neighbours of the learned metric. The returned pipeline does this with
        the fitted learner frozen (``sklearn.frozen.FrozenEstimator``):
        fitting the pipeline fits only ``neighbors``, and this learner is
        neither refitted nor cloned (``clone``, ``GridSearchCV`` and
        ``cross_val_score`` keep it as fitted).

        Parameters
        ----------
        neighbors : estimator
            A scikit-learn neighbours estimator with the Euclidean metric (the
            default ``metric="minkowski", p=2``, or ``"euclidean"``, ``"l2"``,
            ``"sqeuclidean"``), e.g. ``KNeighborsClassifier(n_neighbors=3)``,
            ``KNeighborsRegressor``, ``RadiusNeighborsClassifier`` or
            ``NearestNeighbors``. Used as given (not cloned), as in
            ``make_pipeline``.

        Returns
        -------
        pipeline : sklearn.pipeline.Pipeline
            Steps ``("metric", FrozenEstimator(self))`` and
            ``("neighbors", neighbors)``, not yet fitted; its ``predict``
            equals ``neighbors`` fitted and used on ``transform(X)``.

        Raises
        ------
        ValueError
            If ``neighbors`` has no ``metric`` parameter or uses a metric
            other than the Euclidean one (the learned metric would not be
            the one searched).

        See Also
        --------
        get_metric : the learned distance as a callable, for ``cdist``.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.neighbors import KNeighborsClassifier
        >>> from skmetric import Covariance
        >>> X, y = load_iris(return_X_y=True)
        >>> learner = Covariance().fit(X)
        >>> knn = learner.neighbors_pipeline(KNeighborsClassifier(n_neighbors=3))
        >>> knn.fit(X, y).predict(X[:3])
        array([0, 0, 0])
        """
        from sklearn.frozen import FrozenEstimator
        from sklearn.pipeline import Pipeline

        check_is_fitted(self, "components_")
        metric = getattr(neighbors, "metric", None)
        if metric is None or not hasattr(neighbors, "fit"):
            raise ValueError(
                "neighbors must be a scikit-learn neighbours estimator with a metric "
                f"parameter (e.g. KNeighborsClassifier()), got {neighbors!r}."
            )
        params = getattr(neighbors, "metric_params", None) or {}
        euclidean = metric in ("euclidean", "l2", "sqeuclidean") or (
            metric == "minkowski" and getattr(neighbors, "p", 2) == 2
            and params.get("p", 2) == 2 and "w" not in params
        )
        if not euclidean:
            shown = f"{metric!r}" if isinstance(metric, str) else type(metric).__name__
            raise ValueError(
                f"neighbors must use the Euclidean metric (the learned distance is the "
                f"Euclidean distance after transform), got metric={shown}"
                f"{f' with p={neighbors.p}' if metric == 'minkowski' else ''}"
                f"{f' and metric_params={params}' if params else ''}."
            )
        return Pipeline([("metric", FrozenEstimator(self)), ("neighbors", neighbors)])


class LabelSupervisedMixin:
    """Marks an estimator whose ``fit`` needs class labels ``y``.

    Put it first among the bases so its tags override the base's.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


class PairsClassifierMixin:
    """Pair classification on top of a learned metric.

    For estimators fitted on pairs (shape (n_pairs, 2, n_features)) with
    labels +1 (similar) and -1 (dissimilar). A pair is predicted similar
    when its score ``-distance`` is at least ``-threshold_``, i.e. when the
    learned distance is at most ``threshold_``.

    ``fit`` calibrates ``threshold_`` (by default for accuracy, on held-out
    pairs); :meth:`calibrate_threshold` recalibrates it for another
    criterion (accuracy, F-beta, the best true-positive rate at a minimum
    true-negative rate or the reverse) and :meth:`set_threshold` sets it by
    hand. With a ``preprocessor`` (an array of points, or a callable mapping
    indices to points), every method also takes pairs of indices of shape
    (n_pairs, 2).
    """

    def decision_function(self, pairs):
        """Similarity score of each pair, shifted so that 0 is the threshold.

        Returns ``threshold_ - pair_distance(pairs)``: positive means similar.
        """
        check_is_fitted(self, "threshold_")
        return self.threshold_ - self.pair_distance(pairs)

    def predict(self, pairs):
        """Predict +1 (similar) or -1 (dissimilar) for each pair."""
        return np.where(self.decision_function(pairs) >= 0, 1, -1)

    def score(self, pairs, y):
        """Accuracy of :meth:`predict` on labelled pairs (labels as in fit)."""
        pred = self.predict(pairs)
        y = check_pair_labels(y, pred.shape[0])
        return float(np.mean(pred == y))

    def _fit_and_calibrate(self, X, y, fit_metric, require_both_labels=False,
                           calibration_params=None, indexed=False):
        """Validate pairs, fit the metric on all but the held-out calibration
        pairs (``validation_fraction``), then calibrate ``threshold_`` on those.

        ``fit_metric(pairs, y, rng)`` learns ``components_`` from the fitting
        pairs: an array of shape (n, 2, n_features), or, when ``indexed`` and
        the pairs were given as indices, an
        :class:`~skmetric._validation.IndexedTuples` (otherwise indices are
        materialised once, for the fitting pairs only). ``calibration_params``
        (a dict, default None: accuracy) are passed to
        :meth:`calibrate_threshold`.
        """
        params = _check_calibration_params(calibration_params)
        pairs, y = check_pairs(
            X, y, require_both_labels=require_both_labels,
            preprocessor=getattr(self, "preprocessor", None), return_indexed=True,
        )
        self.n_features_in_ = pairs.shape[2]
        rng = check_random_state(self.random_state)
        val = calibration_split(y, self.validation_fraction, rng)
        fit_mask = slice(None) if val is None else ~val
        fit_pairs = pairs[fit_mask]
        if isinstance(fit_pairs, IndexedTuples) and not indexed:
            fit_pairs = fit_pairs.materialize()
        fit_metric(fit_pairs, y[fit_mask], rng)
        cal = slice(None) if val is None else val
        distances = self._tuple_pair_distance(pairs[cal], 0, 1)
        self.threshold_ = best_threshold(distances, y[cal], **params)
        return self

    def set_threshold(self, threshold):
        """Set ``threshold_`` by hand: pairs at most this learned distance apart are similar.

        Parameters
        ----------
        threshold : float >= 0
            A learned distance (:meth:`pair_distance`). metric-learn's
            ``set_threshold`` takes a score, ``-distance``: pass minus its value.

        Returns
        -------
        self
        """
        check_is_fitted(self, "components_")
        if (isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, Real)
                or not np.isfinite(threshold)):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
        if threshold < 0:
            raise ValueError(
                f"threshold is a learned distance and must be >= 0, got {threshold!r} "
                "(metric-learn's threshold is a score, -distance: pass minus its value)."
            )
        self.threshold_ = float(threshold)
        return self

    def calibrate_threshold(self, pairs, y, strategy="accuracy", *, beta=1.0, min_rate=None):
        """Choose ``threshold_`` for a criterion on labelled (validation) pairs.

        Use pairs that the learner was not fitted on for an honest threshold.
        Every distinct cut of the sorted learned distances is evaluated at
        once (O(n_pairs log n_pairs)); ties between cuts are broken towards
        the middle one (accuracy, F-beta) or by the other rate (``max_tpr``:
        the highest true-negative rate among the best cuts; ``max_tnr``: the
        highest true-positive rate).

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Or integer indices of shape (n_pairs, 2) with a ``preprocessor``.
        y : array-like of shape (n_pairs,) in {-1, +1} (or {0, 1})
        strategy : {'accuracy', 'f_beta', 'max_tpr', 'max_tnr'}, default='accuracy'
            'accuracy': the share of pairs classified correctly.
            'f_beta': the F-beta score of the similar class (+1), as
            :func:`sklearn.metrics.fbeta_score`.
            'max_tpr': the largest true-positive rate (similar pairs called
            similar) whose true-negative rate is at least ``min_rate``.
            'max_tnr': the largest true-negative rate whose true-positive
            rate is at least ``min_rate``.
        beta : float > 0, default=1.0
            The weight of recall against precision ('f_beta' only).
        min_rate : float in [0, 1], default=None
            The minimum rate, required by 'max_tpr' and 'max_tnr'.

        Returns
        -------
        self
        """
        check_is_fitted(self, "components_")
        params = _check_calibration_params(
            {"strategy": strategy, "beta": beta, "min_rate": min_rate}
        )
        tuples = self._check_pairs_for_metric(pairs)
        y = check_pair_labels(y, tuples.shape[0])
        self.threshold_ = best_threshold(self._tuple_pair_distance(tuples, 0, 1), y, **params)
        return self


class _ComparisonClassifierMixin:
    """Relative comparisons on top of a learned metric (triplets, quadruplets).

    A tuple states that the distance within its first compared pair is
    smaller than within its second (``COMPARED_PAIRS`` in
    :mod:`skmetric._validation`): for a triplet ``(a, b, c)``,
    ``d(a, b) < d(a, c)``; for a quadruplet ``(a, b, c, d)``,
    ``d(a, b) < d(c, d)``. Labels +1 say the comparison holds and -1 that it
    is reversed; without labels every tuple is taken as +1.
    """

    _tuple_size = None  # set by the concrete mixins

    @property
    def _noun(self):
        return TUPLE_NAMES[self._tuple_size]

    def _compared_distances(self, tuples):
        tuples = self._check_tuples_for_metric(tuples, self._tuple_size)
        (i, j), (k, m) = COMPARED_PAIRS[self._tuple_size]
        return self._tuple_pair_distance(tuples, i, j), self._tuple_pair_distance(tuples, k, m)

    def decision_function(self, tuples):
        """How much the comparison holds: second distance minus first.

        Parameters
        ----------
        tuples : array-like of shape (n_tuples, tuple_size, n_features)

        Returns
        -------
        scores : ndarray of shape (n_tuples,)
            ``d(a, c) - d(a, b)`` for triplets, ``d(c, d) - d(a, b)`` for
            quadruplets (learned distances); positive when the comparison holds.
        """
        first, second = self._compared_distances(tuples)
        return second - first

    def predict(self, tuples):
        """+1 where the comparison holds (first distance strictly smaller), else -1."""
        return np.where(self.decision_function(tuples) > 0, 1, -1)

    def score(self, tuples, y=None):
        """Accuracy of :meth:`predict` on tuples.

        Parameters
        ----------
        tuples : array-like of shape (n_tuples, tuple_size, n_features)
        y : array-like of shape (n_tuples,), default=None
            +1 (the comparison holds) or -1 (reversed), or 1 and 0; None takes
            every tuple as +1 (as metric-learn does).

        Returns
        -------
        accuracy : float
        """
        pred = self.predict(tuples)
        if y is None:
            return float(np.mean(pred == 1))
        y = check_tuple_labels(y, pred.shape[0], tuple_size=self._tuple_size)
        return float(np.mean(pred == y))

    def _validate_tuples_for_fit(self, X, y=None, indexed=False):
        """Validate tuples for ``fit`` and orient them so that every one holds.

        Tuples labelled -1 have their two compared pairs swapped. Sets
        ``n_features_in_``. Returns a new array of shape
        (n_tuples, tuple_size, n_features); with ``indexed``, tuples given as
        indices (``preprocessor``) come back as an
        :class:`~skmetric._validation.IndexedTuples` (only the indices are
        reordered; no point is copied).
        """
        kwargs = dict(tuple_size=self._tuple_size,
                      preprocessor=getattr(self, "preprocessor", None), return_indexed=indexed)
        if y is None:
            tuples = check_tuples(X, **kwargs)
        else:
            tuples, y = check_tuples(X, y, **kwargs)
            reverse = y == -1
            if np.any(reverse):
                (i, j), (k, m) = COMPARED_PAIRS[self._tuple_size]
                order = np.arange(self._tuple_size)
                order[[i, j, k, m]] = [k, m, i, j]
                if isinstance(tuples, IndexedTuples):
                    tuples = IndexedTuples(tuples.points, np.where(
                        reverse[:, None], tuples.indices[:, order], tuples.indices))
                else:
                    tuples = np.where(reverse[:, None, None], tuples[:, order], tuples)
        self.n_features_in_ = tuples.shape[2]
        return tuples


class TripletsClassifierMixin(_ComparisonClassifierMixin):
    """Triplet comparisons: a triplet ``(a, b, c)`` states ``d(a, b) < d(a, c)``.

    For estimators fitted on triplets of shape (n_triplets, 3, n_features):
    ``decision_function`` is ``d(a, c) - d(a, b)``, ``predict`` is +1 when
    ``d(a, b) < d(a, c)`` under the learned metric and -1 otherwise, and
    ``score`` the accuracy (all triplets taken as +1 without labels).
    """

    _tuple_size = 3


class QuadrupletsClassifierMixin(_ComparisonClassifierMixin):
    """Quadruplet comparisons: ``(a, b, c, d)`` states ``d(a, b) < d(c, d)``.

    For estimators fitted on quadruplets of shape (n_quadruplets, 4,
    n_features): ``decision_function`` is ``d(c, d) - d(a, b)``, ``predict``
    is +1 when ``d(a, b) < d(c, d)`` under the learned metric and -1
    otherwise, and ``score`` the accuracy (all taken as +1 without labels).
    """

    _tuple_size = 4


#: The criteria :meth:`PairsClassifierMixin.calibrate_threshold` can maximise.
THRESHOLD_STRATEGIES = ("accuracy", "f_beta", "max_tpr", "max_tnr")


def _check_calibration_params(params):
    """Validate ``{'strategy', 'beta', 'min_rate'}`` (a dict or None); a complete dict."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValueError(
            f"calibration_params must be a dict (keys strategy, beta, min_rate) or None, "
            f"got {type(params).__name__}."
        )
    unknown = set(params) - {"strategy", "beta", "min_rate"}
    if unknown:
        raise ValueError(
            f"Unknown calibration parameter(s) {sorted(unknown)}; expected strategy, beta, "
            "min_rate."
        )
    strategy = params.get("strategy", "accuracy")
    beta = params.get("beta", 1.0)
    min_rate = params.get("min_rate", None)
    if strategy not in THRESHOLD_STRATEGIES:
        raise ValueError(
            f"strategy must be one of {list(THRESHOLD_STRATEGIES)}, got {strategy!r}."
        )
    if (isinstance(beta, (bool, np.bool_)) or not isinstance(beta, Real)
            or not np.isfinite(beta) or beta <= 0):
        raise ValueError(f"beta must be a positive finite number, got {beta!r}.")
    if strategy in ("max_tpr", "max_tnr"):
        if min_rate is None:
            other = "true-negative" if strategy == "max_tpr" else "true-positive"
            raise ValueError(
                f"strategy={strategy!r} needs min_rate, the minimum {other} rate in [0, 1]."
            )
        if (isinstance(min_rate, (bool, np.bool_)) or not isinstance(min_rate, Real)
                or not 0 <= min_rate <= 1):
            raise ValueError(f"min_rate must be a number in [0, 1], got {min_rate!r}.")
    return {"strategy": strategy, "beta": float(beta),
            "min_rate": None if min_rate is None else float(min_rate)}


def best_threshold(distances, y, strategy="accuracy", beta=1.0, min_rate=None):
    """The distance threshold maximising a criterion of ``distance <= t`` -> similar.

    Every cut between consecutive distinct sorted distances (and below the
    smallest, and at the largest) is scored at once from cumulative counts:
    O(n log n) for the sort, O(n) after.

    Parameters
    ----------
    distances : ndarray of shape (n_pairs,)
    y : ndarray of shape (n_pairs,) in {-1, +1}
    strategy : {'accuracy', 'f_beta', 'max_tpr', 'max_tnr'}
        See :meth:`PairsClassifierMixin.calibrate_threshold`.
    beta : float > 0
        For 'f_beta'.
    min_rate : float in [0, 1]
        For 'max_tpr' (minimum true-negative rate) and 'max_tnr' (minimum
        true-positive rate).

    Returns
    -------
    threshold : float
        The midpoint of the chosen cut; pairs at distance ``<= threshold``
        are predicted similar.
    """
    params = _check_calibration_params({"strategy": strategy, "beta": beta, "min_rate": min_rate})
    strategy, beta, min_rate = params["strategy"], params["beta"], params["min_rate"]
    distances = np.asarray(distances, dtype=np.float64)
    y = np.asarray(y)
    if not set(np.unique(y).tolist()) <= {-1, 1}:
        raise ValueError(f"Pair labels must be -1 or +1, got values {np.unique(y)[:10].tolist()}.")
    order = np.argsort(distances, kind="stable")
    d = distances[order]
    pos = (y[order] == 1).astype(np.int64)
    n = d.size
    n_pos = int(pos.sum())
    n_neg = n - n_pos
    # With the cut after the first k sorted pairs (k = 0..n), those k are called similar.
    tp = np.concatenate(([0], np.cumsum(pos)))
    fp = np.arange(n + 1) - tp
    tn, fn = n_neg - fp, n_pos - tp
    if strategy in ("max_tpr", "max_tnr") and (n_pos == 0 or n_neg == 0):
        raise ValueError(
            f"strategy={strategy!r} needs both similar (+1) and dissimilar (-1) pairs; "
            f"got {n_pos} similar and {n_neg} dissimilar."
        )
    # Only cut between distinct distances.
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = d[1:] > d[:-1]
    tie_break = None
    if strategy == "accuracy":
        value = (tp + tn).astype(np.float64)
    elif strategy == "f_beta":
        b2 = beta * beta
        denom = (1 + b2) * tp + b2 * fn + fp
        value = np.divide((1 + b2) * tp, denom, out=np.zeros(n + 1), where=denom > 0)
    elif strategy == "max_tpr":
        valid &= tn >= min_rate * n_neg - 1e-9 * n_neg
        value, tie_break = tp / n_pos, tn / n_neg
    else:  # max_tnr
        valid &= tp >= min_rate * n_pos - 1e-9 * n_pos
        value, tie_break = tn / n_neg, tp / n_pos
    value = np.where(valid, value, -np.inf)
    best = np.flatnonzero(value == value.max())
    if tie_break is None:
        k = best[best.size // 2]
    else:
        k = best[np.argmax(tie_break[best])]
    if k == 0:
        return float(d[0] - 1e-12 * max(1.0, abs(d[0])) - 1e-12)
    if k == n:
        return float(d[-1])
    return float((d[k - 1] + d[k]) / 2.0)


def best_accuracy_threshold(distances, y):
    """The distance threshold maximising accuracy of ``distance <= t`` -> similar.

    :func:`best_threshold` with ``strategy='accuracy'``: candidates are
    midpoints between consecutive distinct sorted distances (plus both
    ends); ties are broken towards the middle candidate.
    """
    return best_threshold(distances, y, "accuracy")


def calibration_split(y, validation_fraction, rng):
    """Stratified mask of pairs held out to calibrate a pair classifier's threshold.

    Parameters
    ----------
    y : ndarray of shape (n_pairs,) in {-1, +1}
    validation_fraction : float in [0, 1)
        Fraction of each label held out.
    rng : numpy.random.RandomState

    Returns
    -------
    mask : ndarray of bool, shape (n_pairs,), or None
        True for validation pairs; None when ``validation_fraction`` is 0 or
        too few pairs of a label are available to keep one of each for fitting
        (the caller then calibrates on the training pairs).
    """
    if validation_fraction == 0:
        return None
    mask = np.zeros(y.size, dtype=bool)
    for label in (1, -1):
        idx = np.flatnonzero(y == label)
        n_val = int(np.floor(validation_fraction * idx.size))
        n_val = min(n_val, idx.size - 1)  # keep one of each label for fitting
        if n_val < 1:
            return None
        mask[rng.choice(idx, size=n_val, replace=False)] = True
    return mask
