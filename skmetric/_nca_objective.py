"""The NCA objective: negative expected leave-one-out accuracy, and its gradient.

Goldberger et al. (2004): with ``z_i = L x_i``, point ``i`` picks neighbour
``j != i`` with probability ``p_ij = softmax_j(-||z_i - z_j||^2)``; it is
classified correctly with probability ``p_i = sum_{j: y_j = y_i} p_ij``. The
objective to *minimise* is ``-sum_i p_i``.

Gradient. With ``W_ij = p_ij ([y_i = y_j] - p_i)`` one has
``d p_i / d ||z_i - z_l||^2 = -W_il``, hence

    grad_L (-sum_i p_i) = 2 L X^T A X = 2 Z^T A X,
    A = diag(W^T 1) - W - W^T,

(``W 1 = 0`` because each row of ``p`` sums to one).

Two forms of the objective, both written once against a
:class:`skmetric._backend.Backend` (numpy, or float64 torch on a device):

* :func:`nca_loss_grad`, exact: the softmax runs over all ``n - 1`` other
  points. Rows of ``W`` are computed in blocks, so memory is O(chunk * n),
  never the O(n^2 d^2) of forming the outer products ``(x_i - x_j)(x_i -
  x_j)^T`` (metric-learn issue: more than 12 h on 1021 x 122); time per
  evaluation is O(n^2 k + n k d) for ``k`` components.
* :func:`nca_truncated_loss_grad`, neighbour-truncated: the softmax of point
  ``i`` runs over a fixed candidate set ``C_i`` (its ``K`` nearest points in
  the current embedding, :func:`nca_candidates`); time and memory per
  evaluation are O(n K k + n k d). Error: if ``C_i`` are the ``K`` nearest
  points at ``L``, the softmax mass the truncation drops for point ``i`` is

      m_i <= r_i / (1 + r_i),  r_i = (n - 1 - K) exp(-d_iK) / sum_{j in C_i} exp(-d_ij)

  (every dropped point is at least as far as the ``K``-th nearest, ``d_iK``),
  and ``|p_i(truncated) - p_i(exact)| <= m_i``; so the truncated objective is
  within ``sum_i m_i`` of the exact one (:func:`nca_candidates` returns the
  mean of ``m_i``, a bound on the error in expected accuracy).
"""

import numpy as np
from sklearn.utils import gen_batches

from ._backend import NUMPY

__all__ = ["nca_loss_grad", "nca_truncated_loss_grad", "nca_candidates", "exact_chunk_rows"]


def exact_chunk_rows(n_samples, backend=NUMPY, chunk_rows=None):
    """Rows per block of the exact objective; a ValueError when one row does not fit.

    About four float64 arrays of width ``n_samples`` live at once per row.
    """
    return backend.chunk_rows(
        n_samples,
        32 * n_samples,
        f"Exact NCA on n_samples={n_samples} (softmax over all other points)",
        chunk_rows,
    )


def _prepare(params, X, y, n_components, backend):
    X = backend.asarray(X)
    L = backend.asarray(np.asarray(params).reshape(n_components, X.shape[1]))
    return X, backend.asarray(y, "int64"), X @ L.T


def _softmax_neg_(D, xp):
    """Rows of ``D`` (distances) become ``softmax(-D)`` in place, stabilised by the row minimum."""
    D -= xp.amin(D, 1)[:, None]
    D *= -1.0
    xp.exp(D, out=D)
    D /= D.sum(1)[:, None]
    return D


def nca_loss_grad(params, X, y, n_components, chunk_rows=None, backend=NUMPY):
    """NCA loss ``-sum_i p_i`` (softmax over all points) and its gradient with respect to ``L``.

    Parameters
    ----------
    params : ndarray of shape (n_components * n_features,)
        The flattened linear map ``L`` (row-major).
    X : array of shape (n_samples, n_features), float64
        numpy array, or a tensor already on ``backend``'s device.
    y : array of shape (n_samples,), int
        Encoded class labels.
    n_components : int
        Number of rows of ``L``.
    chunk_rows : int, default=None
        Rows of the probability matrix computed at once; by default sized
        from the backend's memory budget (``working_memory`` on the host).
    backend : Backend, default=NUMPY
        Where the distances, softmax and gradient are computed.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_components * n_features,)
    """
    bk = backend
    xp = bk.xp
    X, y, Z = _prepare(params, X, y, n_components, bk)
    n = X.shape[0]
    chunk_rows = exact_chunk_rows(n, bk, chunk_rows)
    sq = (Z * Z).sum(1)

    loss = 0.0
    col_sums = bk.zeros(n)  # W^T 1
    ZtW = bk.zeros((n_components, n))  # Z^T W, accumulated over row blocks
    grad = bk.zeros((n_components, X.shape[1]))
    for rows in gen_batches(n, chunk_rows):
        Zc = Z[rows]
        idx = bk.arange(rows.start, rows.stop)
        # Squared distances of the block's points to all points; a point
        # never picks itself. The block becomes p.
        G = bk.sq_distances(Zc, Z, sq[rows], sq)
        G[idx - rows.start, idx] = float("inf")
        _softmax_neg_(G, xp)
        W = xp.where(y[rows, None] == y[None, :], G, 0.0)  # p on same-class pairs
        p_i = W.sum(1)
        loss -= float(p_i.sum())
        G *= p_i[:, None]
        W -= G  # W_ij = p_ij ([y_i = y_j] - p_i)
        col_sums += W.sum(0)
        ZtW += Zc.T @ W
        # The W^T part of Z^T A X involves only the block's rows of X. (The
        # diag(W 1) part vanishes: rows of p sum to 1, so W 1 = p_i - p_i = 0.)
        grad -= (W @ Z).T @ X[rows]
    grad += Z.T @ (col_sums[:, None] * X) - ZtW @ X
    return loss, bk.to_numpy(2.0 * grad).ravel()


def nca_truncated_loss_grad(params, X, y, n_components, candidates, chunk_rows=None,
                            backend=NUMPY):
    """Neighbour-truncated NCA loss ``-sum_i p_i`` and its gradient with respect to ``L``.

    Point ``i``'s softmax runs over ``candidates[i]`` only (its ``K``
    nearest points in some embedding, from :func:`nca_candidates`); see the
    module docstring for the error this costs.

    Parameters
    ----------
    params, X, y, n_components, backend
        As in :func:`nca_loss_grad`.
    candidates : array of shape (n_samples, K), int
        Candidate neighbours of each point (never the point itself).
    chunk_rows : int, default=None
        Points treated at once; by default sized from the memory budget.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_components * n_features,)
    """
    bk = backend
    X, y, Z = _prepare(params, X, y, n_components, bk)
    C = bk.asarray(candidates, "int64")
    n, K = C.shape
    sq = (Z * Z).sum(1)
    # A block may gather its candidates' z, (rows, K, k), and holds a few (rows, K).
    chunk_rows = bk.chunk_rows(n, 8 * K * n_components + 64 * K, "Truncated NCA", chunk_rows)

    loss = 0.0
    # d loss / d ||z_i - z_j||^2 = W_ij = p_ij ([y_i = y_j] - p_i), with rows
    # summing to 0, so that d loss / d Z = -2 W Z - 2 W^T Z + 2 diag(W^T 1) Z.
    WZ = bk.zeros((n, n_components))  # W Z
    WtZ1 = bk.zeros((n, n_components + 1))  # [W^T Z, W^T 1]
    Z1 = bk.xp.concatenate([Z, bk.zeros((n, 1)) + 1.0], 1)  # [Z, 1]
    for rows in gen_batches(n, chunk_rows):
        Cb = C[rows]
        D = bk.gather_dots(Z[rows], Z, Cb)  # z_i . z_j
        D *= -2.0
        D += sq[rows, None]
        D += sq[Cb]
        bk.xp.clip(D, 0.0, None, out=D)
        P = _softmax_neg_(D, bk.xp)
        W = P * (y[Cb] == y[rows, None])
        p_i = W.sum(1)
        loss -= float(p_i.sum())
        W -= P * p_i[:, None]
        WZ[rows] = bk.gather_matmul(Cb, W, Z)
        bk.scatter_add(WtZ1, Cb, W, Z1[rows])
    grad_Z = WtZ1[:, -1:] * Z
    grad_Z -= WZ
    grad_Z -= WtZ1[:, :-1]
    return loss, bk.to_numpy(2.0 * (grad_Z.T @ X)).ravel()


def nca_candidates(params, X, n_components, n_neighbors, backend=NUMPY):
    """Each point's ``n_neighbors`` nearest other points under ``L``, and the truncation bound.

    Parameters
    ----------
    params : ndarray of shape (n_components * n_features,)
        The flattened linear map ``L``.
    X : array of shape (n_samples, n_features)
    n_components : int
    n_neighbors : int
        ``K``, at most ``n_samples - 1``.
    backend : Backend, default=NUMPY

    Returns
    -------
    candidates : ndarray of shape (n_samples, n_neighbors), int
    bound : float
        Mean over points of the bound ``m_i`` on the softmax mass dropped by
        the truncation (module docstring): at this ``L``, the truncated
        objective divided by ``n_samples`` is within ``bound`` of the exact
        expected leave-one-out accuracy.
    """
    X = backend.asarray(X)
    L = backend.asarray(np.asarray(params).reshape(n_components, X.shape[1]))
    D, candidates = backend.kneighbors(X @ L.T, n_neighbors)
    n = X.shape[0]
    D = D - D[:, :1]
    # r_i = (n - 1 - K) exp(-(d_iK - d_i1)) / sum_j exp(-(d_ij - d_i1)), m_i = r_i / (1 + r_i)
    r = (n - 1 - n_neighbors) * np.exp(-D[:, -1]) / np.exp(-D).sum(1)
    return candidates, float(np.mean(r / (1.0 + r)))
