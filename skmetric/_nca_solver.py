"""The NCA solver: L-BFGS-B on the negative expected leave-one-out accuracy.

Goldberger et al. (2004) maximise ``f(L) = sum_i p_i``, the expected number of
points that a stochastic nearest-neighbour rule classifies correctly under the
map ``L``. :func:`fit_nca` minimises ``-f(L)`` with scipy's L-BFGS-B over the
flattened ``L``, either exactly (:func:`skmetric._nca_objective.nca_loss_grad`,
softmax over all points, O(n^2) per evaluation) or neighbour-truncated
(:func:`skmetric._nca_objective.nca_truncated_loss_grad`, softmax over each
point's ``K`` nearest candidates, O(n K) per evaluation). The truncated
candidates are found again (:func:`skmetric._nca_objective.nca_candidates`)
after rounds of 5, 10, 20, 40, ... L-BFGS-B iterations, each round restarting
L-BFGS-B on the refreshed objective, and once more at the end, where the
bound on the truncation error is taken.
"""

from functools import partial

import numpy as np
from scipy.optimize import minimize

from ._backend import NUMPY
from ._nca_objective import (
    exact_chunk_rows,
    nca_candidates,
    nca_loss_grad,
    nca_truncated_loss_grad,
)
from ._solver import NO_PROGRESS, SolverResult

__all__ = ["fit_nca"]

#: L-BFGS-B iterations of the first truncated round; each later round doubles it.
FIRST_ROUND = 5


def _lbfgs(fun, x0, maxiter, tol, callback):
    return minimize(
        fun, x0, method="L-BFGS-B", jac=True, tol=tol, callback=callback,
        options={"maxiter": maxiter},
    )


def fit_nca(X, y, L0, *, max_iter=100, tol=1e-5, progress=None, n_neighbors_softmax=None,
            backend=NUMPY, chunk_rows=None):
    """Minimise the NCA loss ``-sum_i p_i`` over ``L`` from ``L0`` with L-BFGS-B.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int
        Encoded class labels.
    L0 : ndarray of shape (n_components, n_features)
        Initial linear map.
    max_iter : int, default=100
        Maximum number of L-BFGS-B iterations (all rounds together).
    tol : float, default=1e-5
        Tolerance passed to ``scipy.optimize.minimize``; the truncated solver
        also stops when refreshing the candidates changes the loss by at most
        ``tol`` relative (L-BFGS-B's ``ftol`` rule) after a round that met
        L-BFGS-B's own stopping rule.
    progress : Progress, default=None
        Told ``iter(k, loss)`` after each iteration; None is silent.
    n_neighbors_softmax : int or None, default=None
        None: the exact objective. An int ``K < n_samples - 1``: the
        neighbour-truncated objective with ``K`` candidates per point.
    backend : Backend, default=NUMPY
        Where the objective is computed (:mod:`skmetric._backend`).
    chunk_rows : int, default=None
        Rows per block of the objective; None sizes them from the memory
        budget (and the exact path raises a ValueError up front when not one
        row fits).

    Returns
    -------
    SolverResult
        ``components`` is the learned ``L`` and ``loss`` the minimised value
        ``-sum_i p_i`` (minus the expected number of correctly classified
        training points; for the truncated objective, with candidates found at
        the final ``L``). ``converged`` is False only when ``max_iter`` was
        reached first. ``info``: ``n_neighbors_softmax`` (None when exact),
        ``truncation_bound`` (a bound on ``|loss - exact loss| / n_samples``
        at the final ``L``, 0.0 when exact) and ``n_refresh`` (candidate
        searches).
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

    K = n_neighbors_softmax
    if K is None or K >= n - 1:
        exact_chunk_rows(n, backend, chunk_rows)  # refuse before anything big is allocated
        fun = partial(nca_loss_grad, X=Xb, y=yb, n_components=n_components,
                      chunk_rows=chunk_rows, backend=backend)
        opt = _lbfgs(fun, x, max_iter, tol, callback)
        converged = bool(opt.success or opt.nit < max_iter)
        message = str(opt.message) if converged else f"max_iter={max_iter} iterations reached"
        info = {"n_neighbors_softmax": None, "truncation_bound": 0.0, "n_refresh": 0}
        return SolverResult(opt.x.reshape(n_components, d), opt.fun, opt.nit, converged,
                            message, info=info)

    def truncated(candidates):
        return partial(nca_truncated_loss_grad, X=Xb, y=yb, n_components=n_components,
                       candidates=backend.asarray(candidates, "int64"),
                       chunk_rows=chunk_rows, backend=backend)

    candidates, bound = nca_candidates(x, Xb, n_components, K, backend)
    n_refresh, budget, converged = 1, FIRST_ROUND, False
    message = f"max_iter={max_iter} iterations reached"
    while True:
        fun = truncated(candidates)
        progress.say(f"candidates {n_refresh}: K={K}, truncation bound {bound:.3g}")
        round_budget = min(budget, max_iter - it)
        opt = _lbfgs(fun, x, round_budget, tol, callback)
        x, loss_round = opt.x, opt.fun
        round_converged = bool(opt.success and opt.nit < round_budget)
        candidates, bound = nca_candidates(x, Xb, n_components, K, backend)
        n_refresh += 1
        loss = truncated(candidates)(x)[0]
        if round_converged and abs(loss - loss_round) <= tol * max(abs(loss), abs(loss_round), 1.0):
            converged, message = True, f"{opt.message}; candidates stable"
            break
        if it >= max_iter:
            break
        if opt.nit == 0:  # L-BFGS-B cannot move from here
            converged, message = round_converged, str(opt.message)
            break
        budget *= 2
    info = {"n_neighbors_softmax": int(K), "truncation_bound": bound, "n_refresh": n_refresh}
    return SolverResult(x.reshape(n_components, d), loss, it, converged, message, info=info)
