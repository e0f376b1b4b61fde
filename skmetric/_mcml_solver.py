"""The MCML solver: accelerated projected gradient on the KL objective.

Globerson & Roweis (2006) minimise, over PSD Mahalanobis matrices ``M``, the
mean over points of ``KL[p_0(. | i) || p_M(. | i)]`` (see
:mod:`skmetric._mcml_objective` for the objective and its gradient). The
problem is convex; :func:`fit_mcml` solves it with
:func:`skmetric._projected_gradient.minimize_psd_projected_gradient` and keeps
the ``n_components`` leading directions of the solution, as the paper suggests
for dimensionality reduction.

Wide data (more features than the data span, e.g. d >> n): the objective
depends on ``M`` only through ``P M P.T``, ``P`` an orthonormal basis of the
centred data's span (:func:`skmetric._subspace.data_subspace`), and its
gradient lies in that span. When the start ``M0`` does not couple the span
with its complement (identity, 'pca', 'lda' and 'auto' starts), the problem is
solved exactly in the r-dimensional span (r < d) and the complement keeps its
part of ``M0``: the same solution, with O(r^3) instead of O(d^3) work per
iteration.
"""

from dataclasses import replace
from functools import partial

import numpy as np

from ._mcml_objective import mcml_loss, mcml_loss_grad
from ._projected_gradient import minimize_psd_projected_gradient
from ._psd import components_from_metric, psd_project
from ._subspace import data_subspace

__all__ = ["fit_mcml"]


def fit_mcml(
    X, y, M0, n_components=None, *, max_iter=100, tol=1e-5, step_size=None, chunk_size=None,
    progress=None,
):
    """Minimise the MCML objective over PSD ``M`` from ``M0``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,)
        Class labels.
    M0 : ndarray of shape (n_features, n_features)
        Starting metric (projected onto the PSD cone first).
    n_components : int, default=None
        Keep the factor's rows of the ``n_components`` largest eigenvalues of
        the solution; None keeps all.
    max_iter, tol, step_size :
        See :func:`skmetric._projected_gradient.minimize_psd_projected_gradient`.
    chunk_size : int, default=None
        Rows of the n x n softmax held at once (see :mod:`skmetric._mcml_objective`).
    progress : Progress, default=None

    Returns
    -------
    SolverResult
        ``loss`` is the mean KL divergence at the solution. When
        ``n_components`` truncates the factor, ``metric`` is the truncated
        metric ``components.T @ components`` and ``info['full_metric']`` the
        solution of the convex problem.
    """
    P = data_subspace(X)
    M0 = np.asarray(M0, dtype=np.float64)
    MP = M0 @ P.T
    decoupled = np.allclose(MP, P.T @ (P @ MP), rtol=1e-10,
                            atol=1e-12 * max(np.abs(M0).max(), 1e-300))
    if 0 < P.shape[0] < X.shape[1] and decoupled:
        # Exact reduction to the data span (see the module docstring).
        result = _minimize(X @ P.T, y, P @ MP, max_iter, tol, step_size, chunk_size, progress)
        Q = np.eye(X.shape[1]) - P.T @ P
        M = P.T @ result.metric @ P + psd_project(Q @ M0 @ Q)
        result = replace(result, metric=M, components=components_from_metric(M, strict=False))
    else:
        result = _minimize(X, y, M0, max_iter, tol, step_size, chunk_size, progress)
    if n_components is None or n_components >= result.components.shape[0]:
        return result
    L = result.components[:n_components]
    return replace(result, components=L, metric=L.T @ L, info={"full_metric": result.metric})


def _minimize(X, y, M0, max_iter, tol, step_size, chunk_size, progress):
    return minimize_psd_projected_gradient(
        partial(mcml_loss_grad, X=X, y=y, chunk_size=chunk_size),
        M0,
        loss=partial(mcml_loss, X=X, y=y, chunk_size=chunk_size),
        max_iter=max_iter,
        tol=tol,
        step_size=step_size,
        progress=progress,
    )
