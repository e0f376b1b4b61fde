"""Accelerated projected gradient descent on the cone of PSD matrices.

Minimises a smooth convex function ``f(M)`` over symmetric PSD matrices with
FISTA (Beck & Teboulle, 2009): gradient steps ``M+ = P(Y - t * grad f(Y))``
from an extrapolated point ``Y``, where ``P`` is
:func:`skmetric._psd.psd_project` (eigenvalue clipping). The step ``t`` is
found by backtracking on the sufficient-decrease condition

    f(M+) <= f(Y) + <grad f(Y), M+ - Y> + ||M+ - Y||_F^2 / (2 t)

and allowed to grow again slowly, so no Lipschitz constant is needed. The
momentum is restarted whenever the objective would increase (O'Donoghue &
Candes, 2015), which makes the accepted iterates monotone.

The solver returns a :class:`skmetric._solver.SolverResult` (``metric`` is the
final iterate, ``components`` its factor) and reports progress through a
:class:`skmetric._solver.Progress`; it never prints.
"""

import numpy as np

from ._psd import components_from_metric, psd_project
from ._solver import NO_PROGRESS, SolverResult

__all__ = ["minimize_psd_projected_gradient"]

_STALLED = "no step decreases the loss (optimal to working precision)"


def minimize_psd_projected_gradient(
    fun,
    M0,
    *,
    loss=None,
    max_iter=100,
    tol=1e-5,
    step_size=None,
    max_backtracks=40,
    progress=None,
):
    """Minimise ``fun`` over PSD matrices by accelerated projected gradient.

    Parameters
    ----------
    fun : callable ``M -> (loss, grad)``
        Smooth objective and its gradient (a symmetric matrix).
    M0 : ndarray of shape (d, d)
        Starting point; projected onto the PSD cone first.
    loss : callable ``M -> loss``, default=None
        The objective alone, if it is cheaper than ``fun`` (used for the
        backtracking trials). None uses ``fun(M)[0]``.
    max_iter : int, default=100
        Maximum number of accepted steps.
    tol : float, default=1e-5
        Stop when an accepted step decreases the loss by less than
        ``tol * max(|loss|, 1e-12)`` (relative decrease).
    step_size : float, default=None
        Initial step; None uses ``1 / ||grad f(M0)||_F``.
    max_backtracks : int, default=40
        Halvings allowed per iteration; if none gives a decrease from a plain
        (non-extrapolated) point, that point is optimal to working precision.
    progress : Progress, default=None
        Told ``iter(k, loss, step=t)`` after each accepted step; None is silent.

    Returns
    -------
    SolverResult
        ``metric`` is the final PSD iterate ``M`` and ``components`` its factor
        (:func:`skmetric._psd.components_from_metric`), ``loss`` the objective
        at ``M``, ``n_iter`` the accepted steps; ``converged`` is False only
        when ``max_iter`` steps were taken without meeting ``tol``.
    """
    if loss is None:

        def loss(M):
            return fun(M)[0]

    progress = NO_PROGRESS if progress is None else progress

    def result(M, f, n_iter, converged, message):
        return SolverResult(
            components_from_metric(M, strict=False), f, n_iter, converged, message, metric=M
        )

    X = psd_project(M0)
    fX, gX = fun(X)
    Y, fY, gY = X, fX, gX
    gnorm = np.linalg.norm(gY)
    if gnorm == 0.0:
        return result(X, fX, 0, True, "the gradient vanishes at the starting point")
    t = float(step_size) if step_size is not None else 1.0 / gnorm
    theta = 1.0
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        for _ in range(max_backtracks):
            X_new = psd_project(Y - t * gY)
            diff = X_new - Y
            f_new = loss(X_new)
            bound = fY + np.sum(gY * diff) + np.sum(diff * diff) / (2.0 * t)
            # A relative slack absorbs round-off when the step is tiny.
            if np.isfinite(f_new) and f_new <= bound + 1e-12 * abs(fY):
                break
            t *= 0.5
        else:
            if Y is X:
                return result(X, fX, n_iter, True, _STALLED)
            f_new = np.inf  # no decrease from the extrapolated point: restart
        if f_new > fX:
            # Momentum overshot: restart from the last accepted point. From
            # Y = X the sufficient-decrease step cannot increase f, so this
            # branch is not taken twice in a row.
            theta = 1.0
            if Y is not X:
                gX = fun(X)[1] if gX is None else gX
                Y, fY, gY = X, fX, gX
                continue
            return result(X, fX, n_iter, True, _STALLED)
        decrease = fX - f_new
        theta_new = (1.0 + np.sqrt(1.0 + 4.0 * theta * theta)) / 2.0
        momentum = (theta - 1.0) / theta_new
        old_f = fX
        Y = X_new + momentum * (X_new - X) if momentum > 0 else X_new
        X, fX, gX, theta = X_new, f_new, None, theta_new
        progress.iter(n_iter, fX, step=t)
        if decrease <= tol * max(abs(old_f), 1e-12):
            return result(X, fX, n_iter, True, f"relative decrease below tol={tol:g}")
        if Y is X:
            fY, gY = fun(Y)
            gX = gY
        else:
            Y = psd_project(Y)  # keep Y in the cone: the objective wants PSD input
            fY, gY = fun(Y)
        t *= 1.25
    return result(X, fX, n_iter, False, f"max_iter={max_iter} steps reached")
