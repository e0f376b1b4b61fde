"""The MCML solver: accelerated projected gradient on the KL objective.

Globerson & Roweis (2006) minimise, over PSD Mahalanobis matrices ``M``, the
mean over points of ``KL[p_0(. | i) || p_M(. | i)]`` (see
:mod:`skmetric._mcml_objective` for the objective and its gradient). The
problem is convex; :func:`fit_mcml` solves it with
:func:`skmetric._projected_gradient.minimize_psd_projected_gradient` and keeps
the ``n_components`` leading directions of the solution, as the paper suggests
for dimensionality reduction.
"""

from dataclasses import replace
from functools import partial

from ._mcml_objective import mcml_loss, mcml_loss_grad
from ._projected_gradient import minimize_psd_projected_gradient

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
    result = minimize_psd_projected_gradient(
        partial(mcml_loss_grad, X=X, y=y, chunk_size=chunk_size),
        M0,
        loss=partial(mcml_loss, X=X, y=y, chunk_size=chunk_size),
        max_iter=max_iter,
        tol=tol,
        step_size=step_size,
        progress=progress,
    )
    if n_components is None or n_components >= result.components.shape[0]:
        return result
    L = result.components[:n_components]
    return replace(result, components=L, metric=L.T @ L, info={"full_metric": result.metric})
