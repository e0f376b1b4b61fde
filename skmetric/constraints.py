"""Constraint sampling from class labels: the one place pairs are drawn.

Every pair-based learner's label-supervised form (MMC, ITML, ...) and the
Siamese network draw their pairs here, so the sampling scheme and its
``random_state`` handling are the same everywhere.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["sample_pairs", "pairs_from_indices"]


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
    """Gather pairs of rows: returns ``X[indices]`` of shape (n_pairs, 2, n_features)."""
    return np.asarray(X)[np.asarray(indices)]
