"""The MLKR solver: L-BFGS-B on the leave-one-out kernel regression error.

Weinberger & Tesauro (2007) learn the map ``L`` under which Nadaraya-Watson
kernel regression with a Gaussian kernel predicts each training target from
the others as well as possible. With ``z_i = L x_i`` and
``D_ij = ||z_i - z_j||^2``,

    p_ij = exp(-D_ij) / sum_{k != i} exp(-D_ik)     (p_ii = 0),
    yhat_i = sum_j p_ij y_j,
    loss(L) = sum_i (yhat_i - y_i)^2.

Gradient. ``d loss / d D_ij = W_ij = -2 (yhat_i - y_i) p_ij (y_j - yhat_i)``;
each row of ``W`` sums to 0 (``sum_j p_ij (y_j - yhat_i) = 0``), so with
``c = W^T 1``

    d loss / d z_i = 2 (c_i z_i - (W Z)_i - (W^T Z)_i),
    grad_L loss = 2 (c * Z - W Z - W^T Z)^T X.

``W`` itself is never formed: ``W Z``, ``W^T Z`` and ``c`` come from two
products of the kernel rows with thin matrices (:func:`mlkr_loss_grad`). The
rows of ``p`` are a softmax computed with the log-sum-exp shift (by each
row's smallest distance), in place, block by block of rows: memory is
O(block * n_samples), never an n x n x n_features tensor; time per
evaluation is O(n_samples^2 * n_components + n_samples * n_components *
n_features), one exponential per pair.
"""

import numpy as np
from scipy.optimize import minimize
from sklearn import get_config

from ._solver import NO_PROGRESS, SolverResult

__all__ = ["mlkr_loss_grad", "mlkr_predict_loo", "fit_mlkr"]


def _block_size(n_samples, block_rows):
    if block_rows is None:
        # About five float64 arrays of n_samples columns per row live at once.
        block_rows = get_config()["working_memory"] * 2**20 // (40 * n_samples)
    return int(min(n_samples, max(1, block_rows)))


def _kernel_rows(Z, minus_2Z, sq_norms, start, stop):
    """Unnormalised kernel rows ``start:stop`` and their sums: ``p = E / s[:, None]``.

    ``E_ij = exp(-(D_ij - min_j D_ij))`` with ``E_ii = 0``: the softmax of
    ``-D`` shifted by each row's smallest distance (the log-sum-exp trick), so
    the nearest neighbour has weight 1 and no row underflows to 0 / 0. The
    term ``||z_i||^2`` of ``D_ij`` is left out: it is constant along a row.
    """
    E = Z[start:stop] @ minus_2Z.T
    E += sq_norms
    E[np.arange(stop - start), np.arange(start, stop)] = np.inf  # leave one out
    np.subtract(E.min(axis=1, keepdims=True), E, out=E)  # -(D_ij - min_j D_ij) <= 0
    np.exp(E, out=E)
    return E, E.sum(axis=1)


def mlkr_predict_loo(params, X, y, n_components, block_rows=None):
    """Leave-one-out kernel regression predictions ``yhat`` under ``L``."""
    n, d = X.shape
    Z = X @ params.reshape(n_components, d).T
    sq_norms = np.einsum("ij,ij->i", Z, Z)
    step = _block_size(n, block_rows)
    y_hat = np.empty(n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        E, sums = _kernel_rows(Z, -2.0 * Z, sq_norms, start, stop)
        y_hat[start:stop] = (E @ y) / sums
    return y_hat


def mlkr_loss_grad(params, X, y, n_components, block_rows=None):
    """MLKR loss ``sum_i (yhat_i - y_i)^2`` and its gradient with respect to ``L``.

    Parameters
    ----------
    params : ndarray of shape (n_components * n_features,)
        The flattened linear map ``L`` (row-major).
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64
        Real-valued targets.
    n_components : int
        Number of rows of ``L``.
    block_rows : int, default=None
        Rows of ``p`` computed at once; by default sized from scikit-learn's
        ``working_memory`` setting.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_components * n_features,)
    """
    n, d = X.shape
    k = n_components
    Z = X @ params.reshape(k, d).T
    sq_norms = np.einsum("ij,ij->i", Z, Z)
    step = _block_size(n, block_rows)
    # W_ij = a_i p_ij (y_j - b_i) with a = -2 (yhat - y), b = yhat is never
    # formed: W Z, W^T Z and W^T 1 are two products of p with thin matrices,
    #   (W Z)_i   = a_i ((p (y * Z))_i - b_i (p Z)_i),
    #   (W^T Z)_j = y_j (p^T (a * Z))_j - (p^T (a b * Z))_j,
    #   (W^T 1)_j = y_j (p^T a)_j - (p^T (a b))_j.
    right = np.column_stack([y, Z, y[:, None] * Z])
    minus_2Z = -2.0 * Z
    loss = 0.0
    col_sums = np.zeros(n)
    WZ = np.empty_like(Z)
    WtZ = np.zeros_like(Z)
    for start in range(0, n, step):
        stop = min(start + step, n)
        E, sums = _kernel_rows(Z, minus_2Z, sq_norms, start, stop)
        PR = (E @ right) / sums[:, None]
        y_hat = PR[:, 0]
        residual = y_hat - y[start:stop]
        loss += float(residual @ residual)
        a = -2.0 * residual
        ab = a * y_hat
        WZ[start:stop] = a[:, None] * (PR[:, 1 + k:] - y_hat[:, None] * PR[:, 1:1 + k])
        Zb = Z[start:stop]
        left = np.column_stack([a, ab, a[:, None] * Zb, ab[:, None] * Zb])
        PL = E.T @ (left / sums[:, None])
        col_sums += y * PL[:, 0] - PL[:, 1]
        WtZ += y[:, None] * PL[:, 2:2 + k] - PL[:, 2 + k:]
    AZ = col_sums[:, None] * Z
    AZ -= WZ
    AZ -= WtZ
    return loss, 2.0 * (AZ.T @ X).ravel()


def fit_mlkr(X, y, L0, *, max_iter=1000, tol=1e-5, progress=None):
    """Minimise the MLKR loss over ``L`` from ``L0`` with scipy's L-BFGS-B.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64
    L0 : ndarray of shape (n_components, n_features)
        Initial linear map.
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    tol : float, default=1e-5
        Passed to ``scipy.optimize.minimize`` (L-BFGS-B's ``ftol`` and
        ``gtol``); 0 never stops on it.
    progress : Progress, default=None
        Told ``iter(k, loss)`` after each iteration; None is silent.

    Returns
    -------
    SolverResult
        ``components`` is the learned ``L``, ``loss`` the leave-one-out sum
        of squared errors at ``L``; ``converged`` is False only when L-BFGS-B
        ran out of iterations. ``info['loss0']`` is the loss at ``L0``.
    """
    progress = NO_PROGRESS if progress is None else progress
    L0 = np.asarray(L0, dtype=np.float64)
    shape = L0.shape
    history = []

    def on_step(intermediate_result):  # scipy passes the OptimizeResult by this name
        history.append(float(intermediate_result.fun))
        progress.iter(len(history), history[-1])

    loss0, _ = mlkr_loss_grad(L0.ravel(), X, y, shape[0])
    opt = minimize(
        mlkr_loss_grad, L0.ravel(), args=(X, y, shape[0]), jac=True, method="L-BFGS-B",
        tol=tol, callback=on_step, options={"maxiter": max_iter},
    )
    hit_limit = opt.nit >= max_iter and not opt.success
    message = f"max_iter={max_iter} iterations reached" if hit_limit else str(opt.message)
    return SolverResult(
        opt.x.reshape(shape), opt.fun, opt.nit, not hit_limit, message, info={"loss0": loss0}
    )
