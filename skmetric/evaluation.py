"""Evaluation of learned metrics: N-way one-shot accuracy and retrieval metrics.

* :func:`one_shot_accuracy`: the protocol of Koch et al. (2015). Each episode
  draws ``n_way`` classes, one support sample per class and a query from one
  of them; the prediction is the class whose support is most similar to the
  query. Works with any transformer (embedding + Euclidean distance), any
  pair scorer (``pair_score`` or ``decision_function`` on pairs), or raw
  inputs (``model=None``, the raw-pixel 1-NN baseline).
* Retrieval on embeddings, query vs gallery or leave-one-out within one set:
  :func:`precision_at_k` / :func:`precision_at_1`, :func:`recall_at_k`,
  :func:`map_at_r` (mAP@R of Musgrave et al., 2020) and :func:`cmc_curve`
  (rank-k accuracy, as in person re-identification). They work on chunks of
  queries, so no n x n matrix is ever held for large n.
* Scorers for model selection on held-out classes: :func:`one_shot_scorer`
  and :func:`map_at_r_scorer` return ``scorer(estimator, X, y)`` callables
  (the form ``GridSearchCV(scoring=...)`` and ``cross_val_score`` accept),
  meant for :class:`skmetric.model_selection.ClassDisjointKFold`.

This module does not import torch.
"""

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import column_or_1d

__all__ = [
    "one_shot_scorer",
    "map_at_r_scorer",
    "one_shot_accuracy",
    "one_shot_episodes",
    "retrieval_report",
    "precision_at_k",
    "precision_at_1",
    "recall_at_k",
    "map_at_r",
    "cmc_curve",
]

# Entries of the (query chunk x gallery) distance block held at once.
_BLOCK = 2**22


# ------------------------------------------------------------------ one-shot
def one_shot_episodes(y, n_way=20, n_episodes=400, classes=None, random_state=None):
    """Draw N-way one-shot episodes from labels.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    n_way : int
        Classes per episode (each with one support sample).
    n_episodes : int
    classes : array-like or None
        The classes episodes may use (e.g. the held-out ones); None uses every
        class in ``y``. Only classes with at least two samples in ``y`` are
        eligible (a query must differ from its class's support).
    random_state : int, RandomState instance or None

    Returns
    -------
    queries : ndarray of shape (n_episodes,), int
        Index of each episode's query.
    supports : ndarray of shape (n_episodes, n_way), int
        Indices of the support samples, one per class, in random order.
    targets : ndarray of shape (n_episodes,), int
        Column of ``supports`` that holds the query's class.
    """
    rng = check_random_state(random_state)
    y = column_or_1d(y)
    if n_way < 2:
        raise ValueError(f"n_way must be at least 2, got {n_way}.")
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}.")
    labels, counts = np.unique(y, return_counts=True)
    if classes is not None:
        classes = np.unique(np.asarray(classes))
        missing = np.setdiff1d(classes, labels)
        if missing.size:
            raise ValueError(f"Classes {list(missing[:5])} do not occur in y.")
        keep = np.isin(labels, classes)
        labels, counts = labels[keep], counts[keep]
    eligible = labels[counts >= 2]
    if eligible.size < n_way:
        raise ValueError(
            f"{n_way}-way episodes need {n_way} classes with at least 2 samples; "
            f"only {eligible.size} of the given classes have them."
        )
    members = {c: np.flatnonzero(y == c) for c in eligible}
    queries = np.empty(n_episodes, np.intp)
    supports = np.empty((n_episodes, n_way), np.intp)
    targets = rng.randint(n_way, size=n_episodes)
    for e in range(n_episodes):
        chosen = rng.choice(eligible.size, n_way, replace=False)
        for j, ci in enumerate(chosen):
            m = members[eligible[ci]]
            if j == targets[e]:
                s, q = rng.choice(m.size, 2, replace=False)
                supports[e, j], queries[e] = m[s], m[q]
            else:
                supports[e, j] = m[rng.randint(m.size)]
    return queries, supports, targets


def _as_rows(X):
    """Flatten samples (images or vectors) to float64 rows for raw distances."""
    X = np.asarray(X)
    return check_array(X.reshape(X.shape[0], -1), dtype=np.float64)


def _resolve_method(model, method):
    if method != "auto":
        return method
    if model is None:
        return "raw"
    for name in ("pair_score", "decision_function", "transform"):
        if hasattr(model, name):
            return name
    raise ValueError(
        "model needs a pair_score, decision_function or transform method "
        f"(got {type(model).__name__})."
    )


def one_shot_accuracy(
    model,
    X,
    y,
    n_way=20,
    n_episodes=400,
    classes=None,
    method="auto",
    metric="euclidean",
    random_state=None,
    chunk_size=4096,
    return_episodes=False,
):
    """N-way one-shot classification accuracy (Koch et al., 2015).

    For each episode (see :func:`one_shot_episodes`) the query is compared
    with the ``n_way`` supports and the most similar one gives the
    prediction; the accuracy is the fraction of episodes predicted right
    (chance is ``1 / n_way``).

    Parameters
    ----------
    model : fitted estimator or None
        Scored according to ``method``. None compares raw inputs (flattened
        pixels or features) with ``metric``: the 1-NN baseline.
    X : array-like
        Samples in the form ``model`` accepts (images or vectors).
    y : array-like of shape (n_samples,)
    n_way, n_episodes, classes, random_state
        See :func:`one_shot_episodes`. Pass the held-out classes as
        ``classes`` to follow the paper's protocol.
    method : {'auto', 'pair_score', 'decision_function', 'transform', 'raw'}
        'auto': 'raw' for ``model=None``, else the first of ``pair_score``,
        ``decision_function``, ``transform`` the model has. With
        'transform', embeddings are compared with ``metric``.
    metric : str, default='euclidean'
        Distance for 'transform' and 'raw' (any sklearn pairwise metric).
    chunk_size : int
        Pairs scored per call of the model.
    return_episodes : bool
        Also return ``(queries, supports, targets, predictions)``.

    Returns
    -------
    accuracy : float
    episodes : tuple, only with ``return_episodes``
    """
    y = column_or_1d(y)
    n = len(X)
    if n != y.shape[0]:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]} labels.")
    queries, supports, targets = one_shot_episodes(y, n_way, n_episodes, classes, random_state)
    method = _resolve_method(model, method)
    if method in ("raw", "transform"):
        used, inv = np.unique(np.concatenate([queries, supports.ravel()]), return_inverse=True)
        Xu = np.asarray(X)[used]
        E = _as_rows(Xu) if method == "raw" else _as_rows(model.transform(Xu))
        q = inv[: queries.size]
        s = inv[queries.size :].reshape(supports.shape)
        scores = np.empty(supports.shape)
        step = max(1, _BLOCK // max(1, E.shape[1] * n_way))
        for a in range(0, n_episodes, step):
            Eq = E[q[a : a + step]]
            Es = E[s[a : a + step]]
            if metric == "euclidean":
                d = np.sqrt(((Es - Eq[:, None, :]) ** 2).sum(-1))
            else:
                d = np.stack([pairwise_distances(qq[None], ss, metric=metric)[0] for qq, ss in zip(Eq, Es)])
            scores[a : a + step] = -d
    elif method in ("pair_score", "decision_function"):
        X_arr = np.asarray(X)
        score_fn = getattr(model, method)
        pq = np.repeat(queries, n_way)
        ps = supports.ravel()
        flat = np.empty(pq.size)
        for a in range(0, pq.size, chunk_size):
            pairs = np.stack([X_arr[pq[a : a + chunk_size]], X_arr[ps[a : a + chunk_size]]], axis=1)
            flat[a : a + chunk_size] = np.asarray(score_fn(pairs), dtype=np.float64).ravel()
        scores = flat.reshape(supports.shape)
    else:
        raise ValueError(
            f"Unknown method {method!r}; use 'auto', 'pair_score', 'decision_function', "
            "'transform' or 'raw'."
        )
    predictions = np.argmax(scores, axis=1)
    accuracy = float(np.mean(predictions == targets))
    if return_episodes:
        return accuracy, (queries, supports, targets, predictions)
    return accuracy


# ----------------------------------------------------------------- retrieval
def _check_retrieval(X, y, X_gallery, y_gallery):
    X = check_array(X, dtype=np.float64, input_name="X")
    y = column_or_1d(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]} labels.")
    if (X_gallery is None) != (y_gallery is None):
        raise ValueError("Pass both X_gallery and y_gallery, or neither (leave-one-out).")
    if X_gallery is None:
        if X.shape[0] < 2:
            raise ValueError("Leave-one-out retrieval needs at least 2 samples.")
        return X, y, X, y, True
    Xg = check_array(X_gallery, dtype=np.float64, input_name="X_gallery")
    yg = column_or_1d(y_gallery)
    if Xg.shape[0] != yg.shape[0]:
        raise ValueError(f"X_gallery has {Xg.shape[0]} samples but y_gallery has {yg.shape[0]} labels.")
    if Xg.shape[1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but X_gallery has {Xg.shape[1]}; they must match."
        )
    return X, y, Xg, yg, False


def _retrieval_stats(X, y, X_gallery, y_gallery, ks, metric, need_map):
    """Per-query statistics, computed on chunks of queries.

    Returns a dict of per-query arrays (queries with no relevant gallery
    item are dropped): 'hits' (n, max k) bool relevance of the ranked
    neighbours, 'first' (n,) 1-based rank of the first relevant item, and
    'ap_r' (n,) average precision at R when ``need_map``.
    """
    Xq, yq, Xg, yg, loo = _check_retrieval(X, y, X_gallery, y_gallery)
    n_gallery = Xg.shape[0] - int(loo)
    max_k = max(ks) if ks else 1
    if max_k > n_gallery:
        raise ValueError(f"k={max_k} is larger than the {n_gallery} gallery items per query.")
    step = max(1, _BLOCK // Xg.shape[0])
    hits, first, ap = [], [], []
    for a in range(0, Xq.shape[0], step):
        D = pairwise_distances(Xq[a : a + step], Xg, metric=metric)
        R = yq[a : a + step, None] == yg[None, :]
        rows = np.arange(D.shape[0])
        if loo:
            D[rows, a + rows] = np.inf
            R[rows, a + rows] = False
        n_rel = R.sum(1)
        keep = n_rel > 0
        if not keep.any():
            continue
        D, R, n_rel = D[keep], R[keep], n_rel[keep]
        # Rank of the first relevant item: 1 + irrelevant items strictly closer.
        d_rel = np.where(R, D, np.inf).min(1)
        first.append((D < d_rel[:, None]).sum(1) + 1)
        K = max_k
        if need_map:
            K = max(K, int(n_rel.max()))
        K = min(K, n_gallery)
        if K < D.shape[1]:
            part = np.argpartition(D, K - 1, axis=1)[:, :K]
        else:
            part = np.broadcast_to(np.arange(D.shape[1]), D.shape)
        order = np.take_along_axis(
            part, np.argsort(np.take_along_axis(D, part, 1), axis=1, kind="stable"), 1
        )
        rel = np.take_along_axis(R, order, 1)
        hits.append(rel[:, :max_k])
        if need_map:
            r = np.minimum(n_rel, K)
            prec = np.cumsum(rel, 1) / np.arange(1, K + 1)
            within = np.arange(K)[None, :] < r[:, None]
            ap.append((rel * prec * within).sum(1) / r)
    if not first:
        raise ValueError("No query has a relevant (same-class) item in the gallery.")
    out = {"hits": np.concatenate(hits), "first": np.concatenate(first)}
    if need_map:
        out["ap_r"] = np.concatenate(ap)
    return out


def precision_at_k(X, y, k=1, X_gallery=None, y_gallery=None, metric="euclidean"):
    """Mean fraction of same-class items among each query's k nearest neighbours.

    Parameters
    ----------
    X : array-like of shape (n_queries, n_features)
        Query embeddings (e.g. ``model.transform(X_test)``).
    y : array-like of shape (n_queries,)
    k : int
    X_gallery, y_gallery : array-like or None
        The searched set; None searches X itself, leaving each query out.
    metric : str
        Any sklearn pairwise distance ('euclidean', 'cosine', 'manhattan', ...).

    Queries without any same-class gallery item are ignored by every
    retrieval metric here.
    """
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (k,), metric, False)
    return float(s["hits"][:, :k].mean())


def precision_at_1(X, y, X_gallery=None, y_gallery=None, metric="euclidean"):
    """Precision@1: the 1-NN retrieval accuracy. See :func:`precision_at_k`."""
    return precision_at_k(X, y, 1, X_gallery, y_gallery, metric)


def recall_at_k(X, y, k=1, X_gallery=None, y_gallery=None, metric="euclidean"):
    """Recall@k as used in deep metric learning: the fraction of queries with a
    same-class item among their k nearest neighbours (equal to the CMC curve
    at rank k). Parameters as in :func:`precision_at_k`.
    """
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (k,), metric, False)
    return float(np.mean(s["first"] <= k))


def map_at_r(X, y, X_gallery=None, y_gallery=None, metric="euclidean"):
    """Mean average precision at R (mAP@R; Musgrave, Belongie & Lim, 2020).

    For a query with R same-class gallery items, ``AP@R = (1/R) sum_{i<=R}
    P(i) rel(i)`` over its R nearest neighbours, ``P(i)`` being the precision
    of the first i. Parameters as in :func:`precision_at_k`.
    """
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (), metric, True)
    return float(s["ap_r"].mean())


def cmc_curve(X, y, max_rank=10, X_gallery=None, y_gallery=None, metric="euclidean"):
    """Cumulative match characteristic: rank-k accuracy for k = 1..max_rank.

    Entry ``k-1`` is the fraction of queries whose first same-class gallery
    item is among the k nearest (ties counted in the query's favour). Used
    in person re-identification. Parameters as in :func:`precision_at_k`.

    Returns
    -------
    cmc : ndarray of shape (max_rank,), non-decreasing
    """
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}.")
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (), metric, False)
    return np.array([np.mean(s["first"] <= k) for k in range(1, max_rank + 1)])


def retrieval_report(X, y, ks=(1, 5, 10), X_gallery=None, y_gallery=None, metric="euclidean"):
    """All retrieval metrics in one pass: precision@k, recall@k, mAP@R, CMC.

    Returns
    -------
    dict with keys 'precision@k' and 'recall@k' for each k, 'mAP@R' and
    'cmc' (rank 1..max(ks)).
    """
    ks = tuple(int(k) for k in ks)
    s = _retrieval_stats(X, y, X_gallery, y_gallery, ks, metric, True)
    out = {}
    for k in ks:
        out[f"precision@{k}"] = float(s["hits"][:, :k].mean())
        out[f"recall@{k}"] = float(np.mean(s["first"] <= k))
    out["mAP@R"] = float(s["ap_r"].mean())
    out["cmc"] = np.array([np.mean(s["first"] <= k) for k in range(1, max(ks) + 1)])
    return out


# ------------------------------------------------------------------ scorers
def _embedding_model(estimator):
    """The part of ``estimator`` that maps samples to embeddings or pair scores.

    A pipeline ending in a predictor without ``transform`` (e.g. a kNN
    classifier) is scored on the embedding of the steps before it.
    """
    if hasattr(estimator, "pair_score") or hasattr(estimator, "transform"):
        return estimator
    steps = getattr(estimator, "steps", None)
    if steps is not None and len(steps) > 1:
        return estimator[:-1]
    raise ValueError(
        f"{type(estimator).__name__} has no transform or pair_score method to "
        "embed the held-out classes with."
    )


def _check_held_out_classes(y, need, what):
    labels, counts = np.unique(column_or_1d(y), return_counts=True)
    single = labels[counts < 2]
    if single.size:
        raise ValueError(
            f"{what} needs at least 2 samples of every held-out class; class(es) "
            f"{single[:5].tolist()} have a single sample."
        )
    if labels.size < need:
        raise ValueError(
            f"{what} needs at least {need} held-out classes; the test fold has "
            f"{labels.size}. Use fewer ways or fewer, larger folds."
        )


class _OneShotScorer:
    """``scorer(estimator, X, y)``: N-way one-shot accuracy on the classes of y."""

    def __init__(self, n_way, n_episodes, metric, random_state):
        self.n_way, self.n_episodes = n_way, n_episodes
        self.metric, self.random_state = metric, random_state

    def __call__(self, estimator, X, y):
        _check_held_out_classes(y, self.n_way, f"{self.n_way}-way one-shot scoring")
        return one_shot_accuracy(
            _embedding_model(estimator), X, y, n_way=self.n_way,
            n_episodes=self.n_episodes, metric=self.metric, random_state=self.random_state,
        )

    def __repr__(self):
        return f"one_shot_scorer(n_way={self.n_way}, n_episodes={self.n_episodes})"


class _MapAtRScorer:
    """``scorer(estimator, X, y)``: leave-one-out mAP@R of the embedding of X."""

    def __init__(self, metric):
        self.metric = metric

    def __call__(self, estimator, X, y):
        _check_held_out_classes(y, 2, "mAP@R scoring")
        return map_at_r(_embedding_model(estimator).transform(X), y, metric=self.metric)

    def __repr__(self):
        return "map_at_r_scorer()"


def one_shot_scorer(n_way=5, n_episodes=400, metric="euclidean", random_state=0):
    """A scorer of N-way one-shot accuracy, for model selection on held-out classes.

    Parameters
    ----------
    n_way : int, default=5
        Classes per episode; each test fold must hold at least this many.
    n_episodes : int, default=400
    metric : str, default='euclidean'
        Distance between embeddings (see :func:`one_shot_accuracy`).
    random_state : int, default=0
        Seeds the episodes: with a fixed seed every candidate of a search is
        scored on the same episodes.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y) -> float``
        Accepted by ``GridSearchCV(scoring=...)`` and ``cross_val_score``.
        The estimator is a fitted transformer, a pair scorer
        (``pair_score``), or a pipeline whose last step predicts (then the
        steps before it give the embedding). Raises ValueError when the fold
        has fewer than ``n_way`` classes or a class with a single sample.
    """
    if n_way < 2:
        raise ValueError(f"n_way must be at least 2, got {n_way}.")
    return _OneShotScorer(int(n_way), int(n_episodes), metric, random_state)


def map_at_r_scorer(metric="euclidean"):
    """A scorer of leave-one-out mAP@R (:func:`map_at_r`) on the embedding.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y) -> float``
        As :func:`one_shot_scorer`; raises ValueError when a class of the
        fold has a single sample (it has nothing to retrieve).
    """
    return _MapAtRScorer(metric)
