"""Evaluation of learned metrics: N-way one-shot accuracy and retrieval metrics.

* :func:`one_shot_accuracy`: the protocol of Koch et al. (2015). Each episode
  draws ``n_way`` classes, one support sample per class and a query from one
  of them; the prediction is the class whose support is most similar to the
  query. Works with any transformer (embedding + Euclidean distance), any
  pair scorer (``pair_score`` or ``decision_function`` on pairs), or raw
  inputs (``model=None``, the raw-pixel 1-NN baseline).
* Retrieval on embeddings, query vs gallery or leave-one-out within one set:
  :func:`precision_at_k` / :func:`precision_at_1`, :func:`recall_at_k`,
  :func:`map_at_r` (mAP@R of Musgrave et al., 2020), :func:`r_precision` and
  :func:`cmc_curve` (rank-k accuracy, as in person re-identification). They
  rank only each query's nearest neighbours, on chunks of queries, so no
  n x n matrix is ever held; ``backend='faiss'`` (optional, ``pip install
  faiss-cpu``) does the search with an exact faiss index, numpy is the
  fallback, and both give the same figures.
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

from ._neighbors import k_smallest

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
    "r_precision",
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


_BACKENDS = ("auto", "numpy", "faiss")
_FAISS_METRICS = ("euclidean", "sqeuclidean", "cosine")


def _resolve_backend(backend, metric):
    """'numpy' or 'faiss' for a ``backend`` parameter and a metric."""
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {list(_BACKENDS)}; got {backend!r}.")
    if backend == "numpy":
        return "numpy"
    try:
        import faiss  # noqa: F401
    except ImportError:
        if backend == "faiss":
            raise ImportError(
                "backend='faiss' needs faiss, which is not installed: "
                'pip install faiss-cpu (or pip install "skmetric[faiss]").'
            ) from None
        return "numpy"
    if metric not in _FAISS_METRICS:
        if backend == "faiss":
            raise ValueError(
                f"backend='faiss' supports metric in {list(_FAISS_METRICS)}; got {metric!r} "
                "(use backend='numpy' for other metrics)."
            )
        return "numpy"
    return "faiss"


def _numpy_neighbours(Xq, Xg, K, metric, loo):
    """Chunks ``(start, D, I)``: each query's K nearest gallery items, nearest first.

    D holds squared distances for 'euclidean' (the same order).
    """
    step = max(1, _BLOCK // Xg.shape[0])
    g_sq = np.einsum("ij,ij->i", Xg, Xg) if metric in ("euclidean", "sqeuclidean") else None
    for a in range(0, Xq.shape[0], step):
        if g_sq is not None:
            # Squared distances by one matrix product: the Euclidean order, without the sqrt.
            q = Xq[a : a + step]
            D = np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * (q @ Xg.T) + g_sq[None, :]
        else:
            D = pairwise_distances(Xq[a : a + step], Xg, metric=metric)
        rows = np.arange(D.shape[0])
        if loo:
            D[rows, a + rows] = np.inf
        order, D_near = k_smallest(D, K)
        yield a, D_near, order


def _faiss_neighbours(Xq, Xg, K, metric, loo):
    """As :func:`_numpy_neighbours`, with an exact faiss index (float32).

    Distances are squared Euclidean for 'euclidean' (the same order) and
    ``1 - cosine similarity`` for 'cosine'.
    """
    import faiss

    q = np.ascontiguousarray(Xq, dtype=np.float32)
    g = np.ascontiguousarray(Xg, dtype=np.float32)
    if metric == "cosine":
        q, g = q.copy(), g.copy()
        faiss.normalize_L2(q)
        faiss.normalize_L2(g)
        index = faiss.IndexFlatIP(g.shape[1])
    else:
        index = faiss.IndexFlatL2(g.shape[1])
    index.add(g)
    k = K + int(loo)
    step = max(1, _BLOCK // max(k, 1))
    for a in range(0, q.shape[0], step):
        D, I = index.search(q[a : a + step], k)
        if metric == "cosine":
            D = 1.0 - D
        if loo:
            # Drop each query's own entry (or, when ties hid it, the farthest one).
            own = I == np.arange(a, a + I.shape[0])[:, None]
            own[~own.any(1), -1] = True
            own &= np.cumsum(own, 1) == 1
            D = D[~own].reshape(I.shape[0], K)
            I = I[~own].reshape(I.shape[0], K)
        yield a, D.astype(np.float64), I


def _retrieval_stats(X, y, X_gallery, y_gallery, ks, metric, need_map, max_rank=0, backend="auto"):
    """Per-query statistics from each query's ranked nearest neighbours.

    Only the K nearest gallery items of each query are ranked (K = the
    largest k asked, ``max_rank``, and for mAP@R / R-precision the largest
    number R of relevant items), with numpy (exact distances, in chunks of
    queries) or faiss (an exact flat index); both give the same figures.

    Returns a dict of per-query arrays (queries with no relevant gallery
    item are dropped): 'hits' (n, max k) bool relevance of the ranked
    neighbours, 'first' (n,) 1-based rank of the first relevant item (K + 1
    when it is not among the K nearest; ties counted in the query's favour),
    and with ``need_map`` 'ap_r' (AP@R) and 'r_precision' (n,).
    """
    Xq, yq, Xg, yg, loo = _check_retrieval(X, y, X_gallery, y_gallery)
    backend = _resolve_backend(backend, metric)
    n_gallery = Xg.shape[0] - int(loo)
    max_k = max(ks) if ks else 1
    if max_k > n_gallery:
        raise ValueError(f"k={max_k} is larger than the {n_gallery} gallery items per query.")
    # R: the relevant gallery items of each query (its class, less itself).
    labels, counts = np.unique(yg, return_counts=True)
    pos = np.clip(np.searchsorted(labels, yq), 0, labels.size - 1)
    n_rel_all = np.where(labels[pos] == yq, counts[pos], 0) - int(loo)
    if not (n_rel_all > 0).any():
        raise ValueError("No query has a relevant (same-class) item in the gallery.")
    K = max(max_k, min(max_rank, n_gallery))
    if need_map:
        K = max(K, int(n_rel_all.max()))
    K = min(K, n_gallery)
    search = _faiss_neighbours if backend == "faiss" else _numpy_neighbours
    hits, first, ap, rp = [], [], [], []
    for a, D, order in search(Xq, Xg, K, metric, loo):
        n_rel = n_rel_all[a : a + D.shape[0]]
        keep = n_rel > 0
        if not keep.any():
            continue
        D, n_rel = D[keep], n_rel[keep]
        rel = yg[order[keep]] == yq[a : a + keep.size][keep, None]
        # Rank of the first relevant item: 1 + irrelevant items strictly closer.
        has = rel.any(1)
        d_rel = D[np.arange(D.shape[0]), np.argmax(rel, 1)]
        closer = ((~rel) & (D < d_rel[:, None])).sum(1)
        first.append(np.where(has, closer + 1, K + 1))
        hits.append(rel[:, :max_k])
        if need_map:
            r = n_rel
            prec = np.cumsum(rel, 1) / np.arange(1, K + 1)
            within = np.arange(K)[None, :] < r[:, None]
            ap.append((rel * prec * within).sum(1) / r)
            rp.append((rel & within).sum(1) / r)
    out = {"hits": np.concatenate(hits), "first": np.concatenate(first)}
    if need_map:
        out["ap_r"] = np.concatenate(ap)
        out["r_precision"] = np.concatenate(rp)
    return out


def precision_at_k(X, y, k=1, X_gallery=None, y_gallery=None, metric="euclidean", backend="auto"):
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
    backend : {'auto', 'numpy', 'faiss'}, default='auto'
        The nearest-neighbour search: numpy (exact, any metric) or faiss (an
        exact flat index; 'euclidean', 'sqeuclidean' and 'cosine'; ``pip
        install faiss-cpu``). 'auto' takes faiss when it is installed and
        supports the metric. Both give the same figures (up to float32 ties).

    Queries without any same-class gallery item are ignored by every
    retrieval metric here.
    """
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (k,), metric, False, backend=backend)
    return float(s["hits"][:, :k].mean())


def precision_at_1(X, y, X_gallery=None, y_gallery=None, metric="euclidean", backend="auto"):
    """Precision@1: the 1-NN retrieval accuracy. See :func:`precision_at_k`."""
    return precision_at_k(X, y, 1, X_gallery, y_gallery, metric, backend)


def recall_at_k(X, y, k=1, X_gallery=None, y_gallery=None, metric="euclidean", backend="auto"):
    """Recall@k as used in deep metric learning: the fraction of queries with a
    same-class item among their k nearest neighbours (equal to the CMC curve
    at rank k). Parameters as in :func:`precision_at_k`.
    """
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (k,), metric, False, backend=backend)
    return float(np.mean(s["first"] <= k))


def map_at_r(X, y, X_gallery=None, y_gallery=None, metric="euclidean", backend="auto"):
    """Mean average precision at R (mAP@R; Musgrave, Belongie & Lim, 2020).

    For a query with R same-class gallery items, ``AP@R = (1/R) sum_{i<=R}
    P(i) rel(i)`` over its R nearest neighbours, ``P(i)`` being the precision
    of the first i. Parameters as in :func:`precision_at_k`.
    """
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (), metric, True, backend=backend)
    return float(s["ap_r"].mean())


def r_precision(X, y, X_gallery=None, y_gallery=None, metric="euclidean", backend="auto"):
    """R-precision: the fraction of same-class items among each query's R nearest
    neighbours, R being its number of same-class gallery items (Musgrave et al.,
    2020). Parameters as in :func:`precision_at_k`.
    """
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (), metric, True, backend=backend)
    return float(s["r_precision"].mean())


def cmc_curve(X, y, max_rank=10, X_gallery=None, y_gallery=None, metric="euclidean", backend="auto"):
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
    s = _retrieval_stats(X, y, X_gallery, y_gallery, (), metric, False, max_rank, backend)
    return np.array([np.mean(s["first"] <= k) for k in range(1, max_rank + 1)])


def retrieval_report(X, y, ks=(1, 5, 10), X_gallery=None, y_gallery=None, metric="euclidean", backend="auto"):
    """All retrieval metrics in one search: precision@k, recall@k, mAP@R, R-precision, CMC.

    Returns
    -------
    dict with keys 'precision@k' and 'recall@k' for each k, 'mAP@R',
    'R-precision' and 'cmc' (rank 1..max(ks)). Parameters as in
    :func:`precision_at_k`.
    """
    ks = tuple(int(k) for k in ks)
    s = _retrieval_stats(X, y, X_gallery, y_gallery, ks, metric, True, backend=backend)
    out = {}
    for k in ks:
        out[f"precision@{k}"] = float(s["hits"][:, :k].mean())
        out[f"recall@{k}"] = float(np.mean(s["first"] <= k))
    out["mAP@R"] = float(s["ap_r"].mean())
    out["R-precision"] = float(s["r_precision"].mean())
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
