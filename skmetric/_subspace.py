"""The subspace that the training data span (principal directions).

Closed-form learners that whiten or solve a generalised eigenproblem (RCA,
LFDA) first restrict themselves to the directions in which the training data
actually vary: along a direction with no variance (a constant feature, or more
features than samples) any scatter matrix is zero, so inverting it would give
that direction an arbitrary, typically huge weight, and a test point that
varies there would be dominated by it. Restricting to the data subspace gives
such directions weight zero instead.
"""

import numpy as np

from ._psd import _eigh

__all__ = ["data_subspace", "pad_rows"]

# Principal variances below this fraction of the largest are treated as zero.
RANK_RTOL = 1e-10


def data_subspace(X, n_components=None, rtol=RANK_RTOL):
    """Orthonormal basis of the leading principal directions of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int, default=None
        Keep at most this many directions (the ones of largest variance).
    rtol : float
        Directions whose variance is at most ``rtol`` times the largest are
        dropped (they are numerically absent from the data).

    Returns
    -------
    P : ndarray of shape (k, n_features)
        Orthonormal rows, largest variance first; ``k`` is the numerical rank
        of the centred data, capped at ``n_components``. ``k`` may be 0 when
        all samples are equal.
    """
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0)
    if Xc.shape[0] < Xc.shape[1]:
        # Wide data: the thin SVD costs O(n^2 d) instead of the d x d eigenproblem's O(d^3).
        _, sv, Vt = np.linalg.svd(Xc, full_matrices=False)
        w, V = sv**2, Vt.T
    else:
        # d x d Gram matrix: memory O(d^2) whatever the number of samples.
        w, V = _eigh(Xc.T @ Xc)
        order = np.argsort(w)[::-1]
        w, V = w[order], V[:, order]
    top = max(w[0], 0.0) if w.size else 0.0
    k = int(np.sum(w > rtol * top)) if top > 0 else 0
    if n_components is not None:
        k = min(k, int(n_components))
    return V[:, :k].T.copy()


def pad_rows(L, n_rows):
    """``L`` with zero rows appended up to ``n_rows`` rows (directions of zero weight)."""
    if L.shape[0] >= n_rows:
        return L
    return np.vstack([L, np.zeros((n_rows - L.shape[0], L.shape[1]))])
