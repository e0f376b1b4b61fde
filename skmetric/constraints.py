"""Constraint sampling from class labels: the one place constraints are drawn.

Every tuple-based learner's label-supervised form (MMC, ITML: pairs; SCML:
triplets; LSML: quadruplets) and the Siamese network draw their constraints
here, so the sampling schemes and their ``random_state`` handling are the same
everywhere.

Unlabelled samples: in :func:`sample_triplets` and :func:`sample_quadruplets`
the label -1 (numeric labels) means "unlabelled". Such samples are left out of
every constraint: their class is unknown, so they are neither the same class
as another sample nor known to differ from one.
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from ._validation import UNLABELED

__all__ = [
    "sample_pairs",
    "pairs_from_indices",
    "sample_chunklets",
    "sample_triplets",
    "sample_quadruplets",
    "UNLABELED",
]



def _class_blocks(y):
    """Indices sorted by class, with each sample's class block start and size."""
    y = np.asarray(y)
    _, y_enc, counts = np.unique(y, return_inverse=True, return_counts=True)
    order = np.argsort(y_enc, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    return y_enc, order, starts, counts, position


def sample_pairs(y, n_similar, n_dissimilar=None, random_state=None):
    """Draw similar and dissimilar index pairs from class labels.

    Similar pairs: an anchor drawn uniformly among samples whose class has at
    least two members, and a different member of its class drawn uniformly.
    Dissimilar pairs: an anchor drawn uniformly, and a member of any other
    class drawn uniformly. Sampling is exact (no rejection loop) and fully
    vectorised; pairs are drawn with replacement, so duplicates can occur.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (any hashable type).
    n_similar : int
        Number of similar pairs.
    n_dissimilar : int, default=None
        Number of dissimilar pairs; defaults to ``n_similar``.
    random_state : int, RandomState instance or None
        Seed for reproducible draws.

    Returns
    -------
    indices : ndarray of shape (n_similar + n_dissimilar, 2), int
        Row indices into ``y`` (similar pairs first).
    labels : ndarray of shape (n_similar + n_dissimilar,)
        +1 for similar pairs, -1 for dissimilar ones.

    Raises
    ------
    ValueError
        If there are fewer than two classes, or similar pairs are requested
        and no class has two members.
    """
    rng = check_random_state(random_state)
    if n_dissimilar is None:
        n_dissimilar = n_similar
    if n_similar < 0 or n_dissimilar < 0:
        raise ValueError("The numbers of pairs must be non-negative.")
    y_enc, order, starts, counts, position = _class_blocks(y)
    if counts.size < 2 and n_dissimilar > 0:
        raise ValueError("Dissimilar pairs need at least 2 classes in y.")

    # Similar pairs: anchor among samples of classes with >= 2 members.
    eligible = np.flatnonzero(counts[y_enc] >= 2)
    if n_similar > 0 and eligible.size == 0:
        raise ValueError(
            "Similar pairs need a class with at least 2 samples; every class has one."
        )
    a = eligible[rng.randint(eligible.size, size=n_similar)] if n_similar else np.empty(0, int)
    c = y_enc[a]
    offset_a = position[a] - starts[c]
    r = (rng.random_sample(n_similar) * (counts[c] - 1)).astype(np.intp)
    r = r + (r >= offset_a)  # skip the anchor itself
    b = order[starts[c] + r]

    # Dissimilar pairs: partner drawn from the samples outside the anchor's class.
    n = y_enc.size
    a2 = rng.randint(n, size=n_dissimilar)
    c2 = y_enc[a2]
    r2 = (rng.random_sample(n_dissimilar) * (n - counts[c2])).astype(np.intp)
    r2 = r2 + counts[c2] * (r2 >= starts[c2])  # skip the anchor's class block
    b2 = order[r2]

    indices = np.column_stack([np.concatenate([a, a2]), np.concatenate([b, b2])])
    labels = np.concatenate([np.ones(n_similar, np.intp), -np.ones(n_dissimilar, np.intp)])
    return indices.astype(np.intp), labels


def pairs_from_indices(X, indices):
    """Gather tuples of rows: ``X[indices]``, of shape (n_tuples, tuple_size, n_features).

    ``indices`` of shape (n_pairs, 2) gives pairs; (n, 3) triplets; (n, 4)
    quadruplets.
    """
    return np.asarray(X)[np.asarray(indices)]


def _labelled(y):
    """Indices of the labelled samples (label != -1) and their labels."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    if y.dtype.kind in "iuf":
        keep = np.flatnonzero(y != UNLABELED)
    else:
        keep = np.arange(y.size)
    return keep, y[keep]


def sample_quadruplets(y, n, random_state=None):
    """Draw quadruplets ``(a, b, c, d)`` with ``a, b`` of one class and ``c, d`` of two.

    Each quadruplet joins a similar pair ``(a, b)`` (two distinct samples of
    one class) and a dissimilar pair ``(c, d)`` (samples of different
    classes), drawn independently and uniformly as in :func:`sample_pairs`:
    the constraint ``d(a, b) < d(c, d)`` of LSML's label-supervised form.
    Samples labelled -1 are unlabelled and never drawn.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels; -1 (numeric labels) marks an unlabelled sample.
    n : int
        Number of quadruplets.
    random_state : int, RandomState instance or None
        Seed for reproducible draws.

    Returns
    -------
    indices : ndarray of shape (n, 4), int
        Row indices into ``y``.

    Raises
    ------
    ValueError
        If ``n < 1``, fewer than two classes are labelled, or no labelled
        class has two members.
    """
    if n < 1:
        raise ValueError(f"The number of quadruplets must be at least 1, got {n}.")
    keep, y_lab = _labelled(y)
    if np.unique(y_lab).size < 2:
        raise ValueError(
            f"Quadruplets need at least 2 labelled classes in y (label {UNLABELED} "
            f"is unlabelled); got {np.unique(y_lab).size}."
        )
    indices, _ = sample_pairs(y_lab, n, n, random_state=random_state)
    return keep[np.hstack([indices[:n], indices[n:]])]


def _nearest(X_fit, X_query, k):
    """Indices into ``X_fit`` of the ``k`` nearest neighbours of each query row
    (``X_query=None``: of each row of ``X_fit``, itself excluded)."""
    nn = NearestNeighbors(n_neighbors=k).fit(X_fit)
    return nn.kneighbors(X_query, return_distance=False)


def sample_triplets(X, y, k_genuine=3, k_impostor=10):
    """k-NN triplets ``(a, b, c)``: ``b`` a same-class neighbour of ``a``, ``c`` an impostor.

    For every labelled anchor ``a``, its ``k_genuine`` nearest neighbours of
    the same class (genuine, ``b``) and its ``k_impostor`` nearest neighbours
    of the other classes (impostors, ``c``) form all ``k_genuine *
    k_impostor`` triplets, each stating ``d(a, b) < d(a, c)``: the
    constraints of SCML's label-supervised form (Shi, Bellet & Sha, 2014).
    Neighbours are Euclidean in ``X``, found class by class with
    :class:`sklearn.neighbors.NearestNeighbors` (trees or chunked brute force,
    never an n x n matrix). A class with fewer than ``k_genuine + 1`` members
    (or fewer than ``k_impostor`` samples outside it) uses all it has.
    Samples labelled -1 are unlabelled: neither anchors nor neighbours.
    Triplets in which ``b`` or ``c`` is a duplicate of ``a`` (an identical
    row) are dropped: they state nothing (``a == b``) or the impossible
    (``a == c``), and :func:`skmetric._validation.check_tuples` rejects them.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels; -1 (numeric labels) marks an unlabelled sample.
    k_genuine : int, default=3
        Same-class neighbours per anchor.
    k_impostor : int, default=10
        Other-class neighbours per anchor.

    Returns
    -------
    indices : ndarray of shape (n_triplets, 3), int
        Row indices into ``X``, grouped by the anchor's class; at most
        ``n_labelled * k_genuine * k_impostor`` rows.

    Raises
    ------
    ValueError
        If ``k_genuine`` or ``k_impostor`` is below 1, fewer than two classes
        are labelled, or no labelled class has two members.
    """
    if k_genuine < 1 or k_impostor < 1:
        raise ValueError(
            f"k_genuine and k_impostor must be at least 1, got {k_genuine} and {k_impostor}."
        )
    X = np.asarray(X)
    keep, y_lab = _labelled(y)
    classes, y_enc, counts = np.unique(y_lab, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise ValueError(
            f"Triplets need at least 2 labelled classes in y (label {UNLABELED} is "
            f"unlabelled); got {classes.size}."
        )
    if counts.max() < 2:
        raise ValueError(
            "Triplets need a labelled class with at least 2 samples; every class has one."
        )
    X_lab = X[keep]
    blocks = []
    for c in np.flatnonzero(counts >= 2):
        members = np.flatnonzero(y_enc == c)
        others = np.flatnonzero(y_enc != c)
        kg = min(k_genuine, members.size - 1)
        ki = min(k_impostor, others.size)
        genuine = members[_nearest(X_lab[members], None, kg)]
        impostors = others[_nearest(X_lab[others], X_lab[members], ki)]
        shape = (members.size, kg, ki)
        blocks.append(
            np.stack(
                [
                    np.broadcast_to(members[:, None, None], shape),
                    np.broadcast_to(genuine[:, :, None], shape),
                    np.broadcast_to(impostors[:, None, :], shape),
                ],
                axis=-1,
            ).reshape(-1, 3)
        )
    triplets = np.concatenate(blocks)
    a, b, c = X_lab[triplets[:, 0]], X_lab[triplets[:, 1]], X_lab[triplets[:, 2]]
    distinct = np.any(a != b, axis=1) & np.any(a != c, axis=1)
    return keep[triplets[distinct]].astype(np.intp)


def sample_chunklets(y, num_chunks=None, chunk_size=2, random_state=None):
    """Draw disjoint chunklets (groups of same-class samples) from class labels.

    A chunklet is a set of ``chunk_size`` samples known to share a class, the
    side information of RCA (Bar-Hillel et al., 2003). Each class ``c`` with
    ``n_c`` members can host ``n_c // chunk_size`` disjoint chunklets; the
    members of every class are shuffled and cut into those slots, and
    ``num_chunks`` slots are drawn uniformly without replacement among all
    classes' slots. Every sample belongs to at most one chunklet. Exact and
    vectorised (no rejection loop).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels (any hashable type).
    num_chunks : int, default=None
        Number of chunklets; None draws as many as possible
        (``sum_c n_c // chunk_size``).
    chunk_size : int, default=2
        Number of samples in each chunklet (at least 2).
    random_state : int, RandomState instance or None
        Seed for reproducible draws.

    Returns
    -------
    chunks : ndarray of shape (n_samples,), int
        Chunklet index of each sample in ``0 .. num_chunks - 1``, or -1 for
        samples in no chunklet.

    Raises
    ------
    ValueError
        If ``chunk_size < 2``, ``num_chunks < 1``, no class has
        ``chunk_size`` members, or more chunklets are requested than the
        classes can host.
    """
    if chunk_size < 2:
        raise ValueError(f"chunk_size must be at least 2, got {chunk_size}.")
    if num_chunks is not None and num_chunks < 1:
        raise ValueError(f"num_chunks must be at least 1 or None, got {num_chunks}.")
    rng = check_random_state(random_state)
    y_enc, _, _, counts, _ = _class_blocks(y)
    capacity = int(np.sum(counts // chunk_size))
    if capacity == 0:
        raise ValueError(
            f"No class has chunk_size={chunk_size} samples, so no chunklet can be "
            f"formed (largest class: {counts.max() if counts.size else 0} samples)."
        )
    if num_chunks is None:
        num_chunks = capacity
    if num_chunks > capacity:
        raise ValueError(
            f"Cannot form num_chunks={num_chunks} disjoint chunklets of "
            f"chunk_size={chunk_size}: the classes can host at most {capacity}."
        )
    # Shuffle within classes: sort by (class, random key).
    order = np.lexsort((rng.random_sample(y_enc.size), y_enc))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(y_enc.size, dtype=np.intp)
    rank[order] = np.arange(y_enc.size) - np.repeat(starts, counts)
    # Slot of each sample inside its class (-1 for the leftover members).
    slots_per_class = counts // chunk_size
    local_slot = rank // chunk_size
    in_slot = local_slot < slots_per_class[y_enc]
    slot_offset = np.concatenate(([0], np.cumsum(slots_per_class)[:-1]))
    global_slot = np.where(in_slot, slot_offset[y_enc] + local_slot, -1)
    # Keep num_chunks slots chosen uniformly, renumbered 0 .. num_chunks - 1.
    chosen = rng.permutation(capacity)[:num_chunks]
    new_id = -np.ones(capacity, dtype=np.intp)
    new_id[np.sort(chosen)] = np.arange(num_chunks)
    return np.where(in_slot, new_id[np.maximum(global_slot, 0)], -1).astype(np.intp)
