"""The MCML objective: KL divergence to the "collapsed classes" distribution.

Globerson & Roweis (2006) model each point's neighbour distribution under the
Mahalanobis matrix ``M`` as a softmax over negative squared distances,

    p_M(j | i) = exp(-d_ij) / sum_{k != i} exp(-d_ik),
    d_ij = (x_i - x_j)^T M (x_i - x_j),

and fit it to the ideal distribution ``p_0(j | i)``, uniform over the other
members of ``i``'s class. The objective is the mean over points of

    KL[p_0(. | i) || p_M(. | i)]
        = -log n_i + sum_j p_0(j | i) d_ij + log sum_{k != i} exp(-d_ik),

(``n_i``: number of other members of i's class), which is convex in ``M``.
Points alone in their class have no target distribution and are left out.

The gradient is ``sum_ij (p_0(j|i) - p_M(j|i)) (x_i - x_j)(x_i - x_j)^T /
n_valid``. Its ``p_0`` part does not depend on ``M`` and has a closed form
through per-class sums (O(n d^2)); the ``p_M`` part equals
``X^T diag(colsum P) X + X^T diag(rowsum P) X - X^T P X - X^T P^T X``, and
``P @ X`` is accumulated over row chunks. Memory is therefore
O(chunk_size * n + d^2): no n x n matrix and never an O(n^2 d^2) tensor of
outer products. The log-sum-exp is shifted by each row's smallest distance,
so huge distances neither overflow nor give NaN.
"""

import numpy as np

__all__ = ["mcml_loss_grad", "mcml_loss", "default_chunk_size"]

# Target size (number of float64 entries) of one chunk of the distance matrix.
_CHUNK_ELEMENTS = 2**20


def default_chunk_size(n_samples):
    """Rows per chunk so that one chunk holds about 2**20 distances (8 MiB)."""
    return int(max(1, min(n_samples, _CHUNK_ELEMENTS // max(n_samples, 1))))


def _class_sums(X, y):
    """Per-sample class sizes and per-class sums of rows (for the p_0 terms)."""
    _, y_enc, counts = np.unique(y, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size, X.shape[1]))
    np.add.at(sums, y_enc, X)
    return y_enc, counts, sums


def _mcml(M, X, y, chunk_size, with_grad):
    X = np.asarray(X, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    M = (M + M.T) / 2.0  # the objective depends on the symmetric part only
    n, d = X.shape
    # Distances are translation invariant; centering limits cancellation in
    # q_i + q_j - 2 x_i^T M x_j for data far from the origin.
    X = X - X.mean(axis=0)
    y_enc, counts, class_sum = _class_sums(X, np.asarray(y))
    n_same = counts[y_enc] - 1
    valid = n_same > 0
    n_valid = int(valid.sum())
    if n_valid == 0 or n < 2:
        return 0.0, np.zeros((d, d))
    Xv, yv, nv = X[valid], y_enc[valid], n_same[valid].astype(np.float64)

    XM = X @ M
    q = np.einsum("ij,ij->i", XM, X)
    XMv, qv = XM[valid], q[valid]

    # p_0 term of the loss: mean same-class distance of each valid point, from
    # sum_{j in c, j != i} d_ij = (n_c - 2) q_i + Q_c - 2 x_i^T M (S_c - x_i).
    Q = np.bincount(y_enc, weights=q, minlength=counts.size)
    same_sum = (nv - 1.0) * qv + Q[yv] - 2.0 * np.einsum("ij,ij->i", XMv, class_sum[yv] - Xv)
    loss = float(np.sum(np.maximum(same_sum, 0.0) / nv - np.log(nv)))

    chunk = default_chunk_size(n) if chunk_size is None else int(max(1, chunk_size))
    col_sum = np.zeros(n)
    PX = np.empty((n_valid, d)) if with_grad else None
    valid_idx = np.flatnonzero(valid)
    for start in range(0, n_valid, chunk):
        stop = min(start + chunk, n_valid)
        rows = np.arange(stop - start)
        self_cols = valid_idx[start:stop]
        D = XMv[start:stop] @ X.T
        D *= -2.0
        D += qv[start:stop, None]
        D += q[None, :]
        np.maximum(D, 0.0, out=D)
        D[rows, self_cols] = np.inf  # exclude j == i
        shift = D.min(axis=1)
        D -= shift[:, None]
        np.negative(D, out=D)
        E = np.exp(D, out=D)  # exp(-(d_ij - min_k d_ik)), in place
        s = E.sum(axis=1)
        loss += float(np.sum(np.log(s) - shift))
        if with_grad:
            E /= s[:, None]  # now P, the softmax rows
            col_sum += E.sum(axis=0)
            PX[start:stop] = E @ X
    loss /= n_valid
    if not with_grad:
        return loss, None

    # p_M part: rows of P sum to one, so X^T diag(rowsum) X = Xv^T Xv.
    B = Xv.T @ PX
    G_model = (X.T * col_sum) @ X + Xv.T @ Xv - B - B.T
    # p_0 part: the same formula with P_0, whose rows sum to one and whose
    # column sums are 1 on valid points; X^T P_0 X from class sums.
    B0 = Xv.T @ ((class_sum[yv] - Xv) / nv[:, None])
    G_target = 2.0 * (Xv.T @ Xv) - B0 - B0.T
    grad = (G_target - G_model) / n_valid
    return loss, (grad + grad.T) / 2.0


def mcml_loss_grad(M, X, y, chunk_size=None):
    """MCML loss and its gradient with respect to ``M``.

    Parameters
    ----------
    M : ndarray of shape (n_features, n_features)
        Mahalanobis matrix; only its symmetric part is used. PSD during the
        optimisation (the loss is >= 0 there).
    X : ndarray of shape (n_samples, n_features)
        Training data.
    y : ndarray of shape (n_samples,)
        Class labels.
    chunk_size : int, default=None
        Rows of the distance matrix held at once; None picks
        :func:`default_chunk_size`.

    Returns
    -------
    loss : float
        Mean KL divergence over points that have another member in their
        class (0 if there is none).
    grad : ndarray of shape (n_features, n_features)
        Symmetric gradient of ``loss`` with respect to ``M``.
    """
    return _mcml(M, X, y, chunk_size, with_grad=True)


def mcml_loss(M, X, y, chunk_size=None):
    """The loss of :func:`mcml_loss_grad` alone (one matrix product cheaper)."""
    return _mcml(M, X, y, chunk_size, with_grad=False)[0]
