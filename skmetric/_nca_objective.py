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
        # Squared distances of the chunk's points to all points, built in place
        # (clipped at 0: round-off); a point never picks itself.
        G = Zc @ Z.T
        G *= -2.0
        G += sq[rows, None]
        G += sq[None, :]
        np.maximum(G, 0.0, out=G)
        G[idx - rows.start, idx] = np.inf
        # Row-wise softmax of -dist, stabilised by the row minimum: G becomes p.
        np.subtract(G.min(axis=1, keepdims=True), G, out=G)
        np.exp(G, out=G)
        G /= G.sum(axis=1, keepdims=True)
        W = np.where(y[rows, None] == y[None, :], G, 0.0)  # p on same-class pairs
        p_i = W.sum(axis=1)
        loss -= p_i.sum()
        G *= p_i[:, None]
        W -= G  # W_ij = p_ij ([y_i = y_j] - p_i)
        col_sums += W.sum(axis=0)
        ZtW += Zc.T @ W
        # The W^T part of Z^T A X involves only the chunk's rows of X. (The
        # diag(W 1) part vanishes: rows of p sum to 1, so W 1 = p_i - p_i = 0.)
        grad -= (W @ Z).T @ X[rows]
    grad += Z.T @ (col_sums[:, None] * X) - ZtW @ X
    return float(loss), (2.0 * grad).ravel()

