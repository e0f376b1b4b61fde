"""The ITML solver: cyclic Bregman projections for the LogDet divergence.

Davis et al. (2007) minimise ``D_ld(M, M0) + gamma * D_ld(diag(xi), diag(xi0))``
subject to ``d_M(x_i, x_j) <= xi_ij`` for similar pairs and ``>= xi_ij`` for
dissimilar pairs (``d_M`` the squared Mahalanobis distance, ``xi0`` the bounds
u and l). Each step projects onto one constraint with a rank-one update

    M <- M + beta * (M v)(M v)^T,    v = x_i - x_j,

whose factor ``1 + beta * v^T M v = 1 / (1 - delta * alpha * p)`` is positive,
so M stays positive definite (on the range of M0) in exact arithmetic; the
code keeps M exactly symmetric and guards the denominators against round-off.
This follows the authors' reference (MATLAB) implementation, Algorithm 1 of
the paper, with its convergence test on the dual variables.
"""

import numpy as np
from scipy.linalg import blas

__all__ = ["itml_bregman", "bounds_from_percentiles"]

# Denominators below this are clipped (only reachable through round-off).
_TINY = 1e-12


def bounds_from_percentiles(points, M, random_state, n_sample=10_000, percentiles=(5, 95)):
    """Percentiles of squared Mahalanobis distances between points, on a sample.

    All pairs are used when there are at most ``n_sample`` of them, otherwise
    ``n_sample`` random pairs of distinct rows; an n x n matrix is never formed.

    Parameters
    ----------
    points : ndarray of shape (m, d)
    M : ndarray of shape (d, d)
    random_state : numpy RandomState
    n_sample : int
    percentiles : pair of floats

    Returns
    -------
    ndarray of shape (2,)
        The two percentiles of ``(x_a - x_b)^T M (x_a - x_b)``.
    """
    m = points.shape[0]
    if m * (m - 1) // 2 <= n_sample:
        a, b = np.triu_indices(m, k=1)
    else:
        a = random_state.randint(m, size=n_sample)
        b = random_state.randint(m - 1, size=n_sample)
        b = b + (b >= a)  # distinct from a
    diff = points[a] - points[b]
    sq = np.einsum("ij,ij->i", diff @ M, diff)
    return np.percentile(np.maximum(sq, 0.0), percentiles)


def itml_bregman(M0, diffs, labels, upper, lower, gamma, max_iter=1000, tol=1e-3, callback=None):
    """Run ITML's Bregman projections from the prior ``M0``.

    Parameters
    ----------
    M0 : ndarray of shape (d, d)
        Symmetric PSD prior (positive definite for a full-rank result).
    diffs : ndarray of shape (n_constraints, d)
        ``x_i - x_j`` for each constrained pair.
    labels : ndarray of shape (n_constraints,)
        +1 (similar: distance at most ``upper``) or -1 (dissimilar: distance at
        least ``lower``).
    upper, lower : float
        Positive bounds u and l on squared Mahalanobis distances.
    gamma : float
        Slack trade-off; ``np.inf`` enforces the constraints exactly.
    max_iter : int
        Maximum number of passes over all constraints.
    tol : float
        Stop when ``||lambda - lambda_old||_1 / (||lambda||_2 + ||lambda_old||_2)``
        over one pass falls below ``tol`` (as in the reference code).
    callback : callable ``(pass, conv) -> None``, optional

    Returns
    -------
    M : ndarray of shape (d, d)
        The learned matrix (exactly symmetric).
    n_iter : int
        Passes run.
    converged : bool
    """
    M0 = np.asarray(M0, dtype=np.float64)
    # Only the upper triangle of A is stored and updated (BLAS symv / syr):
    # the result is rebuilt exactly symmetric from it.
    A = np.array((M0 + M0.T) / 2.0, order="F")
    diffs = np.ascontiguousarray(diffs, dtype=np.float64)
    delta = [float(s) for s in np.asarray(labels)]
    n_c = diffs.shape[0]
    if n_c == 0:
        return _symmetric_from_upper(A), 0, True
    gamma_proj = 1.0 if np.isinf(gamma) else gamma / (gamma + 1.0)
    inv_gamma = 0.0 if np.isinf(gamma) else 1.0 / gamma
    # Python lists: scalar access in the loop is much cheaper than on arrays.
    xi = [float(upper) if s > 0 else float(lower) for s in delta]  # slack-adjusted targets
    lam = [0.0] * n_c
    lam_old = np.zeros(n_c)
    # A projection is skipped when v is (numerically) in the null space of A.
    v_norms = np.einsum("ij,ij->i", diffs, diffs) * (1e3 * np.finfo(float).eps)
    symv, syr = blas.dsymv, blas.dsyr

    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        null_tol = (v_norms * np.abs(np.triu(A)).max()).tolist()
        for k in range(n_c):
            v = diffs[k]
            Av = symv(1.0, A, v)
            p = float(v @ Av)
            if p <= null_tol[k]:
                continue
            dk = delta[k]
            alpha = min(lam[k], dk * gamma_proj * (1.0 / p - 1.0 / xi[k]))
            if alpha == 0.0:
                continue
            denom = max(1.0 - dk * alpha * p, _TINY)
            xi[k] = 1.0 / (1.0 / xi[k] + dk * alpha * inv_gamma)
            lam[k] -= alpha
            A = syr(dk * alpha / denom, Av, a=A, overwrite_a=1)
        lam_arr = np.asarray(lam)
        normsum = np.linalg.norm(lam_arr) + np.linalg.norm(lam_old)
        if normsum == 0.0:
            # No constraint was ever violated: A is still the prior.
            converged = True
            break
        conv = np.abs(lam_old - lam_arr).sum() / normsum
        if callback is not None:
            callback(n_iter, conv)
        if conv < tol:
            converged = True
            break
        lam_old = lam_arr
    return _symmetric_from_upper(A), n_iter, converged


def _symmetric_from_upper(A):
    upper = np.triu(A)
    return upper + np.triu(A, 1).T
