"""The SDML solver: a graphical lasso on the balanced pair scatter.

Qi et al. (2009) learn a sparse Mahalanobis matrix ``M`` by solving

    minimise_M   tr(S M) - log det M + alpha * sum_{i != j} |M_ij|,
    S = P0^-1 + eta * K,

with ``P0`` the prior metric, ``eta`` the balance parameter and ``K`` the
pair-weighted scatter ``sum_similar d d^T - sum_dissimilar d d^T`` of the pair
differences ``d = x - x'``. This is a graphical lasso with "empirical
covariance" ``S``: ``M`` is a sparse estimate of ``S^-1``. It is solved with
scikit-learn's coordinate-descent graphical lasso.

The problem is bounded only when ``S`` is positive definite; dissimilar pairs
easily make it indefinite (metric-learn's SDML then fails on iris). Here the
spectrum of ``S`` is first shifted (``S + c I``, :func:`balanced_scatter`)
until its smallest eigenvalue is ``pd_floor`` times its largest: the order of
the eigenvalues is kept, so the directions that the dissimilar pairs dominate
most still get the largest weights in ``M``. When ``S`` is a non-positive
multiple of the identity no shift keeps any information, and a ValueError
says so. The graphical lasso is then solved by proximal gradient steps that
never leave the positive definite cone (:func:`graphical_lasso_ista`).
"""

import numpy as np
from scipy import linalg

from ._psd import components_from_metric, symmetrize
from ._solver import NO_PROGRESS, SolverResult

__all__ = [
    "pair_scatter", "balanced_scatter", "sdml_objective", "graphical_lasso_ista", "fit_sdml",
]


def pair_scatter(pairs, y):
    """``K = sum_k y_k d_k d_k^T`` with ``d_k = pairs[k, 0] - pairs[k, 1]``.

    Parameters
    ----------
    pairs : ndarray of shape (n_pairs, 2, d)
    y : ndarray of shape (n_pairs,) in {-1, +1}

    Returns
    -------
    K : ndarray of shape (d, d), symmetric.
    """
    diffs = np.asarray(pairs[:, 0, :] - pairs[:, 1, :], dtype=np.float64)
    weighted = diffs * np.asarray(y, dtype=np.float64)[:, None]
    return symmetrize(weighted.T @ diffs)


def balanced_scatter(prior_inv, K, balance_param, pd_floor):
    """``S = P0^-1 + balance_param * K``, shifted to be well-conditioned positive definite.

    When the smallest eigenvalue of ``S`` is below ``pd_floor`` times its
    largest, ``c * I`` is added with the smallest ``c`` that brings it to
    exactly that fraction: the eigenvectors and the order of the eigenvalues
    are kept (the directions that dissimilar pairs dominate most still get
    the largest weights in ``M = S^-1``), and the condition number of ``S``
    becomes ``1 / pd_floor``. For the identity prior this is a stronger
    prior, ``(1 + c) I + balance_param * K``.

    Returns
    -------
    S : ndarray of shape (d, d)
        The matrix handed to the graphical lasso.
    shift : float
        The ``c`` added to the diagonal (0 when none was needed).

    Raises
    ------
    ValueError
        If ``S`` is not finite, or is not positive definite and (numerically)
        a multiple of the identity, which no shift can make informative (with
        one feature: a non-positive scalar).
    """
    S = symmetrize(np.asarray(prior_inv, dtype=np.float64) + balance_param * K)
    if not np.all(np.isfinite(S)):
        raise ValueError(
            "SDML's matrix prior^-1 + balance_param * K is not finite; check the "
            "scale of the data and of balance_param."
        )
    w = np.linalg.eigvalsh(S)
    low, high = float(w[0]), float(w[-1])
    if high > 0 and low >= pd_floor * high:
        return S, 0.0
    spread = high - low
    if not spread > 1e3 * w.size * np.finfo(float).eps * max(abs(low), abs(high)):
        detail = "it is a non-positive number" if w.size == 1 else (
            "it is a non-positive multiple of the identity")
        raise ValueError(
            "SDML's problem is not positive definite after balancing and cannot be "
            f"repaired: prior^-1 + balance_param * K (n_features = {w.size}) has "
            f"eigenvalues in [{low:.3g}, {high:.3g}]; {detail}, so no shift of its "
            "spectrum keeps any information. Lower balance_param, add similar "
            "pairs, or use a prior with a larger inverse."
        )
    shift = (pd_floor * high - low) / (1.0 - pd_floor)
    S = S + shift * np.eye(w.size)
    return S, float(shift)


def _penalty(M):
    """``sum_{i != j} |M_ij|``."""
    return float(np.abs(M).sum() - np.abs(np.diag(M)).sum())


def _chol_logdet_inv(M):
    """``(log det M, M^-1)`` through a Cholesky factor, or None if M is not PD."""
    try:
        factor = linalg.cho_factor(M, lower=True, check_finite=False)
    except linalg.LinAlgError:
        return None
    diag = np.diag(factor[0])
    if not np.all(diag > 0) or not np.all(np.isfinite(diag)):
        return None
    inv = linalg.cho_solve(factor, np.eye(M.shape[0]), check_finite=False)
    return 2.0 * float(np.log(diag).sum()), symmetrize(inv)


def sdml_objective(S, M, alpha):
    """``tr(S M) - log det M + alpha * sum_{i != j} |M_ij|`` (inf if M is not PD)."""
    found = _chol_logdet_inv(symmetrize(M))
    if found is None:
        return np.inf
    return float(np.sum(S * M) - found[0] + alpha * _penalty(M))


def _shrink_off_diagonal(A, threshold):
    """Soft-threshold the off-diagonal entries of ``A`` by ``threshold``."""
    out = np.sign(A) * np.maximum(np.abs(A) - threshold, 0.0)
    np.fill_diagonal(out, np.diag(A))
    return out


def _kkt_residual(S, M, W, alpha):
    """Largest violation of the optimality conditions, relative to ``max|S|``.

    At the optimum ``S - M^-1 + alpha * Z = 0`` with ``Z`` a subgradient of
    the off-diagonal L1 norm: ``Z_ij = sign(M_ij)`` where ``M_ij != 0`` and
    ``|Z_ij| <= 1`` where it is 0 (``Z_ii = 0``).
    """
    G = S - W
    R = np.where(M != 0, G + alpha * np.sign(M), np.maximum(np.abs(G) - alpha, 0.0))
    np.fill_diagonal(R, np.diag(G))
    return float(np.abs(R).max() / max(np.abs(S).max(), np.finfo(float).tiny))


def graphical_lasso_ista(S, alpha, *, max_iter=1000, tol=1e-6, progress=None):
    """Minimise ``tr(S M) - log det M + alpha * sum_{i != j} |M_ij|`` over PD ``M``.

    Proximal gradient (ISTA) with Barzilai-Borwein steps and backtracking, as
    in G-ISTA (Guillot, Rajaratnam, Rolfs, Maleki & Wong, 2012): each step
    soft-thresholds the off-diagonal entries of ``M - t (S - M^-1)``, so the
    iterates are exactly sparse, and a step is accepted only when its result
    has a Cholesky factor (is PD) and decreases the objective enough. Unlike
    coordinate descent on the covariance (scikit-learn's ``graphical_lasso``),
    it cannot leave the PD cone, so ill-conditioned ``S`` do not break it.

    Parameters
    ----------
    S : ndarray of shape (d, d), symmetric positive definite
    alpha : float >= 0
    max_iter : int
    tol : float
        Stop when the optimality residual (:func:`_kkt_residual`, relative
        to ``max|S|``) falls below ``tol``; 0 never stops early.
    progress : Progress, optional
        Told ``iter(k, objective, kkt=residual)`` after each step.

    Returns
    -------
    M : ndarray of shape (d, d)
    objective : float
    n_iter : int
    residual : float
    """
    progress = NO_PROGRESS if progress is None else progress
    S = symmetrize(S)  # keeps every iterate exactly symmetric
    found = _chol_logdet_inv(S)
    if found is None:
        raise ValueError("The matrix handed to the graphical lasso is not positive definite.")
    M = found[1]  # the unpenalised optimum S^-1: the start
    found = _chol_logdet_inv(M)
    logdet, W = found
    smooth = float(np.sum(S * M)) - logdet
    residual = _kkt_residual(S, M, W, alpha)
    if residual <= tol or alpha == 0:
        return M, smooth + alpha * _penalty(M), 0, residual
    # A safe first step: the Hessian of -log det is bounded by 1 / lambda_min(M)^2.
    step = float(np.linalg.eigvalsh(M)[0]) ** 2
    G = S - W
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        while True:
            M_new = _shrink_off_diagonal(M - step * G, step * alpha)
            found = _chol_logdet_inv(M_new)
            if found is not None:
                D = M_new - M
                smooth_new = float(np.sum(S * M_new)) - found[0]
                bound = smooth + float(np.sum(G * D)) + float(np.sum(D * D)) / (2 * step)
                if smooth_new <= bound + 1e-12 * abs(bound):
                    break
            step /= 2.0
            if step < 1e-300:
                raise ValueError("SDML's graphical lasso could not find a descent step.")
        W_new = found[1]
        G_new = S - W_new
        # Barzilai-Borwein step for the next iteration (curvature along D).
        curvature = float(np.sum(D * (G_new - G)))
        step = float(np.sum(D * D)) / curvature if curvature > 0 else 2.0 * step
        M, W, G, smooth = M_new, W_new, G_new, smooth_new
        residual = _kkt_residual(S, M, W, alpha)
        objective = smooth + alpha * _penalty(M)
        progress.iter(n_iter, objective, kkt=residual)
        if residual <= tol:
            break
    return M, smooth + alpha * _penalty(M), n_iter, residual


def fit_sdml(
    pairs, y, prior_inv, *, balance_param=0.5, sparsity_param=0.01, pd_floor=0.1,
    max_iter=1000, tol=1e-4, progress=None,
):
    """Learn SDML's sparse metric from labelled pairs.

    Parameters
    ----------
    pairs : ndarray of shape (n_pairs, 2, d)
    y : ndarray of shape (n_pairs,) in {-1, +1}
    prior_inv : ndarray of shape (d, d)
        The inverse ``P0^-1`` of the (positive definite) prior metric.
    balance_param : float
        ``eta``, the weight of the pair scatter ``K`` against the prior.
    sparsity_param : float
        ``alpha``, the L1 penalty on the off-diagonal entries of ``M``;
        0 gives ``M = S^-1`` (``n_iter = 0``).
    pd_floor : float in (0, 1)
        Relative eigenvalue floor of :func:`balanced_scatter`.
    max_iter, tol : see :func:`graphical_lasso_ista`.
    progress : Progress, optional
        Told about the repair of ``S`` and ``iter(k, objective, kkt=...)``
        for each graphical-lasso step; None is silent.

    Returns
    -------
    SolverResult
        ``metric`` is the learned ``M``, ``components`` its factor, ``loss``
        the SDML objective at ``M`` (with the shifted ``S``), ``n_iter`` the
        proximal steps run and ``converged`` whether the residual test was
        met. ``info['shift']`` is the multiple of the identity added to ``S``
        (:func:`balanced_scatter`) and ``info['scatter']`` the repaired ``S``.

    Raises
    ------
    ValueError
        From :func:`balanced_scatter`.
    """
    progress = NO_PROGRESS if progress is None else progress
    K = pair_scatter(pairs, y)
    S, shift = balanced_scatter(prior_inv, K, balance_param, pd_floor)
    if shift:
        progress.say(
            f"prior^-1 + balance_param * K shifted by {shift:.4g} * I to a condition "
            f"number of 1 / pd_floor = {1 / pd_floor:g}"
        )
    M, objective, n_iter, residual = graphical_lasso_ista(
        S, sparsity_param, max_iter=max_iter, tol=tol, progress=progress
    )
    M = symmetrize(M)
    converged = residual <= tol
    if n_iter == 0:
        message = "the unpenalised optimum S^-1 is optimal"
    elif converged:
        message = f"optimality residual {residual:.3g} <= tol={tol:g}"
    else:
        message = (
            f"max_iter={max_iter} steps reached with an optimality residual of "
            f"{residual:.3g} > tol={tol:g}"
        )
    return SolverResult(
        components_from_metric(M, strict=False), objective, n_iter, converged, message,
        metric=M, info={"shift": shift, "scatter": S},
    )
