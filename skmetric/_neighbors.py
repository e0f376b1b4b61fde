"""The k nearest entries of each row of a block of distances: one home for the selection.

Every blocked neighbour search in skmetric (evaluation's exact kNN, LMNN's
early-stopping vote, the multi-metric LMNN's targets and ``kneighbors``)
computes a block of distances its own way and then picks each row's ``k``
smallest entries with this function.
"""

import numpy as np


def k_smallest(D, k):
    """Indices and values of the ``k`` smallest entries of each row of ``D``, smallest first.

    Parameters
    ----------
    D : ndarray of shape (n_rows, n_cols)
        Distances (any monotone transform of them: squared, shifted by a
        per-row constant).
    k : int
        How many; ``1 <= k``. All columns (sorted) when ``k >= n_cols``.

    Returns
    -------
    indices : ndarray of shape (n_rows, min(k, n_cols))
        Column indices, nearest first (equal distances keep the order of the
        partial selection).
    values : ndarray of shape (n_rows, min(k, n_cols))
        ``D`` at those indices.
    """
    n_cols = D.shape[1]
    if k < n_cols:
        part = np.argpartition(D, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_cols), D.shape)
    values = np.take_along_axis(D, part, axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)
