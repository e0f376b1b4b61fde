"""The NCA objective: negative expected leave-one-out accuracy, and its gradient.

Goldberger et al. (2004): with ``z_i = L x_i``, point ``i`` picks neighbour
``j != i`` with probability ``p_ij = softmax_j(-||z_i - z_j||^2)``; it is
classified correctly with probability ``p_i = sum_{j: y_j = y_i} p_ij``. The
objective to *minimise* is ``-sum_i p_i``.

Gradient. With ``W_ij = p_ij ([y_i = y_j] - p_i)`` one has
``d p_i / d ||z_i - z_l||^2 = -W_il``, hence

    grad_L (-sum_i p_i) = 2 L X^T A X = 2 Z^T A X,
    A = diag(W 1 + W^T 1) - W - W^T.

Rows of ``W`` are computed in chunks, so memory is O(chunk * n), never the
O(n^2 d^2) of forming the outer products ``(x_i - x_j)(x_i - x_j)^T``
(metric-learn issue: more than 12 h on 1021 x 122); time per evaluation is
O(n^2 k + n k d) for ``k`` components.
"""

import numpy as np
from sklearn import get_config
from sklearn.utils import gen_batches

__all__ = ["nca_loss_grad"]


def nca_loss_grad(params, X, y, n_components, chunk_rows=None):
    """NCA loss ``-sum_i p_i`` and its gradient with respect to ``L``.

    Parameters
    ----------
    params : ndarray of shape (n_components * n_features,)
        The flattened linear map ``L`` (row-major).
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int
        Encoded class labels.
    n_components : int
        Number of rows of ``L``.
    chunk_rows : int, default=None
        Rows of the probability matrix computed at once; by default sized
        from scikit-learn's ``working_memory`` setting.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_components * n_features,)
    """
    n, d = X.shape
    L = params.reshape(n_components, d)
    Z = X @ L.T
    sq = np.einsum("ij,ij->i", Z, Z)
    if chunk_rows is None:
        # About four float64 arrays of width n live at once per row.
        chunk_rows = int(get_config()["working_memory"] * 2**20 // (32 * n))
    chunk_rows = max(1, min(n, int(chunk_rows)))

    loss = 0.0
    col_sums = np.zeros(n)  # W^T 1
    ZtW = np.zeros((n_components, n))  # Z^T W, accumulated over row chunks
    grad = np.zeros((n_components, d))
    for rows in gen_batches(n, chunk_rows):
        Zc = Z[rows]
        idx = np.arange(rows.start, rows.stop)
        # Squared distances of the chunk's points to all points (clipped: round-off).
        dist = sq[rows, None] + sq[None, :] - 2.0 * (Zc @ Z.T)
        np.maximum(dist, 0.0, out=dist)
        dist[idx - rows.start, idx] = np.inf  # a point never picks itself
        # Row-wise softmax of -dist, stabilised by the row minimum.
        logits = dist.min(axis=1, keepdims=True) - dist
        np.exp(logits, out=logits)
        p = logits
        p /= p.sum(axis=1, keepdims=True)
        same = y[rows, None] == y[None, :]
        p_i = np.sum(p * same, axis=1)
        loss -= p_i.sum()
        W = p * (same - p_i[:, None])
        row_sums = W.sum(axis=1)
        col_sums += W.sum(axis=0)
        ZtW += Zc.T @ W
        # diag(W 1) and W^T parts of Z^T A X that only involve the chunk's rows.
        grad += Zc.T @ (row_sums[:, None] * X[rows]) - (W @ Z).T @ X[rows]
    grad += Z.T @ (col_sums[:, None] * X) - ZtW @ X
    return float(loss), (2.0 * grad).ravel()

