"""The NCA solver: L-BFGS-B on the negative expected leave-one-out accuracy.

Goldberger et al. (2004) maximise ``f(L) = sum_i p_i``, the expected number of
points that a stochastic nearest-neighbour rule classifies correctly under the
map ``L``. :func:`fit_nca` minimises ``-f(L)`` with scipy's L-BFGS-B over the
flattened ``L`` (:func:`skmetric._nca_objective.nca_loss_grad`, exact
gradient), the objective computed by a :class:`skmetric._backend.Backend`
(numpy, or torch on a device) and L-BFGS-B on the host.
"""

from functools import partial

import numpy as np
from scipy.optimize import minimize

from ._backend import NUMPY
from ._nca_objective import exact_chunk_rows, nca_loss_grad
from ._solver import NO_PROGRESS, SolverResult

__all__ = ["fit_nca"]


def _lbfgs(fun, x0, maxiter, tol, callback):
    return minimize(
        fun, x0, method="L-BFGS-B", jac=True, tol=tol, callback=callback,
        options={"maxiter": maxiter},
    )


def fit_nca(X, y, L0, *, max_iter=100, tol=1e-5, progress=None, backend=NUMPY,
            chunk_rows=None):
    """Minimise the NCA loss ``-sum_i p_i`` over ``L`` from ``L0`` with L-BFGS-B.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int
        Encoded class labels.
    L0 : ndarray of shape (n_components, n_features)
        Initial linear map.
    max_iter : int, default=100
        Maximum number of L-BFGS-B iterations.
    tol : float, default=1e-5
        Tolerance passed to ``scipy.optimize.minimize``.
    progress : Progress, default=None
        Told ``iter(k, loss)`` after each iteration; None is silent.
    backend : Backend, default=NUMPY
        Where the objective is computed (:mod:`skmetric._backend`).
    chunk_rows : int, default=None
        Rows per block of the objective; None sizes them from the memory
        budget (and a ValueError is raised up front when not one row fits).

    Returns
    -------
    SolverResult
        ``components`` is the learned ``L`` and ``loss`` the minimised value
        ``-sum_i p_i`` (minus the expected number of correctly classified
        training points). ``converged`` is False only when L-BFGS-B stopped
        at ``max_iter`` without meeting its own stopping rule.
    """
    progress = NO_PROGRESS if progress is None else progress
    n, d = X.shape
    n_components = L0.shape[0]
    x = np.asarray(L0, dtype=np.float64).ravel()
    Xb, yb = backend.asarray(X), backend.asarray(y, "int64")
    it = 0

    def callback(intermediate_result):
        nonlocal it
        it += 1
        progress.iter(it, intermediate_result.fun)

    exact_chunk_rows(n, backend, chunk_rows)  # refuse before anything big is allocated
    fun = partial(nca_loss_grad, X=Xb, y=yb, n_components=n_components,
                  chunk_rows=chunk_rows, backend=backend)
    opt = _lbfgs(fun, x, max_iter, tol, callback)
    converged = bool(opt.success or opt.nit < max_iter)
    message = str(opt.message) if converged else f"max_iter={max_iter} iterations reached"
    return SolverResult(opt.x.reshape(n_components, d), opt.fun, opt.nit, converged, message)
