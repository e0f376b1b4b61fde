"""LSML: least squared-residual metric learning from relative comparisons.

Liu, Guo, Zhang, Jojic & Wang (ICDM 2012). A quadruplet ``(a, b, c, d)`` states
``d_M(a, b) < d_M(c, d)`` with ``d_M(x, y) = sqrt((x - y)^T M (x - y))``. LSML
minimises over positive definite ``M``::

    f(M) = sum_i w_i * H(d_M(a_i, b_i) - d_M(c_i, d_i)) + D_ld(M, M0)

with ``H(r) = r^2`` for ``r > 0`` and 0 otherwise (the squared residual of a
violated comparison), weights ``w`` summing to 1, and the LogDet divergence
``D_ld(M, M0) = tr(M M0^-1) - log det(M M0^-1) - n_features`` to the prior.
``f`` is continuously differentiable on the positive definite cone; the
divergence is a barrier that keeps ``M`` inside it.

:func:`lsml_loss_grad` is the objective and its gradient; :func:`fit_lsml`
minimises it by projected gradient descent with Barzilai-Borwein steps and an
Armijo backtracking line search, projecting onto ``{M : M >= eps I}`` (a step
that nears the boundary is rejected by the barrier, so the projection only
guards round-off). Solvers never print or warn.
"""

import numpy as np
from scipy import linalg
from scipy.linalg import lapack

from ._psd import components_from_metric, psd_project, symmetrize
from ._solver import NO_PROGRESS, SolverResult

__all__ = ["lsml_loss_grad", "fit_lsml", "LSMLProblem"]


class LSMLProblem:
    """The data of one LSML problem, on plain arrays.

    Parameters
    ----------
    vab : ndarray of shape (n_constraints, n_features)
        ``a - b`` for each quadruplet (the pair that should be closer).
    vcd : ndarray of shape (n_constraints, n_features)
        ``c - d`` for each quadruplet.
    weights : ndarray of shape (n_constraints,)
        Non-negative weights; normalised to sum to 1.
    prior : ndarray of shape (n_features, n_features)
        The prior ``M0``, positive definite.
    """

    def __init__(self, vab, vcd, weights, prior):
        self.vab = np.asarray(vab, dtype=np.float64)
        self.vcd = np.asarray(vcd, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum()
        prior = symmetrize(prior)
        try:
            chol = linalg.cholesky(prior, lower=True, check_finite=False)
        except linalg.LinAlgError:
            raise ValueError(
                "LSML needs a positive definite prior M0 (its LogDet divergence is "
                "undefined otherwise); the prior given is singular or indefinite."
            ) from None
        self.prior = prior
        self.prior_inv = linalg.cho_solve((chol, True), np.eye(prior.shape[0]))
        self.logdet_prior = 2.0 * np.sum(np.log(np.diag(chol)))

    def residuals(self, M):
        """``(d_M(a, b), d_M(c, d))`` for every quadruplet."""
        dab = np.einsum("ij,ij->i", self.vab @ M, self.vab)
        dcd = np.einsum("ij,ij->i", self.vcd @ M, self.vcd)
        return np.sqrt(np.maximum(dab, 0.0)), np.sqrt(np.maximum(dcd, 0.0))


def _cholesky_or_none(M):
    """Lower Cholesky factor of ``M`` (LAPACK directly: this runs once per
    trial step), or None when ``M`` is not positive definite."""
    chol, info = lapack.dpotrf(M, lower=1, clean=1)
    return chol if info == 0 else None


def _inverse_from_cholesky(chol):
    inv, info = lapack.dpotri(chol, lower=1)
    return np.tril(inv) + np.tril(inv, -1).T


def lsml_loss_grad(M, problem, return_grad=True):
    """LSML objective at ``M`` and its gradient (see the module docstring).

    Parameters
    ----------
    M : ndarray of shape (n_features, n_features)
        Symmetric; the loss is ``inf`` unless it is positive definite.
    problem : LSMLProblem
    return_grad : bool, default=True

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_features, n_features), only with ``return_grad``
        ``sum_viol w (1 - s_cd / s_ab) v_ab v_ab^T + w (1 - s_ab / s_cd)
        v_cd v_cd^T + M0^-1 - M^-1`` over the violated quadruplets
        (``s = d_M``).
    """
    M = symmetrize(M)
    chol = _cholesky_or_none(M)
    if chol is None:
        return (np.inf, None) if return_grad else np.inf
    d = M.shape[0]
    logdet = 2.0 * np.sum(np.log(np.diag(chol)))
    reg = np.sum(M * problem.prior_inv) - logdet + problem.logdet_prior - d
    sab, scd = problem.residuals(M)
    viol = sab > scd
    w = problem.weights[viol]
    sab, scd = sab[viol], scd[viol]
    loss = float(np.sum(w * (sab - scd) ** 2) + reg)
    if not return_grad:
        return loss
    # sab > scd >= 0 on violations; scd == 0 only when c == d, whose term vanishes.
    alpha = w * (1.0 - scd / sab)
    beta = np.zeros_like(scd)
    pos = scd > 0
    beta[pos] = w[pos] * (1.0 - sab[pos] / scd[pos])
    vab, vcd = problem.vab[viol], problem.vcd[viol]
    M_inv = _inverse_from_cholesky(chol)
    grad = (vab.T * alpha) @ vab + (vcd.T * beta) @ vcd + problem.prior_inv - M_inv
    return loss, symmetrize(grad)


def fit_lsml(vab, vcd, M0, weights=None, *, max_iter=1000, tol=1e-3, progress=None):
    """Minimise the LSML objective over positive definite ``M``, from ``M0``.

    Projected gradient descent: each step ``M+ = P(M - t grad f(M))``, with
    ``P`` the projection onto ``{M : M >= eps I}`` (``eps = 1e-10 *
    trace(M0) / n_features``; the identity when ``M - t grad f(M)`` is
    positive definite, which a Cholesky factorisation tells), ``t`` a
    Barzilai-Borwein step halved until the Armijo condition ``f(M+) <= f(M)
    + 1e-4 <grad f(M), M+ - M>`` holds.

    Parameters
    ----------
    vab, vcd : ndarray of shape (n_constraints, n_features)
        ``a - b`` and ``c - d`` of each quadruplet ``(a, b, c, d)``, which
        states ``d_M(a, b) < d_M(c, d)``.
    M0 : ndarray of shape (n_features, n_features)
        The prior, positive definite (a ValueError otherwise); also the start.
    weights : ndarray of shape (n_constraints,), default=None
        Non-negative constraint weights (normalised to sum 1); None is uniform.
    max_iter : int, default=1000
        Maximum number of gradient steps.
    tol : float, default=1e-3
        Stop when the projected gradient ``(M - M+) / t`` has Frobenius norm
        at most ``tol``, or when the loss no longer decreases.
    progress : Progress, default=None
        Told ``iter(k, loss, grad=...)`` after each step.

    Returns
    -------
    SolverResult
        ``metric`` is ``M``; ``info['n_violated']`` the number of quadruplets
        violated at the end.
    """
    progress = NO_PROGRESS if progress is None else progress
    n = vab.shape[0]
    weights = np.ones(n) if weights is None else weights
    problem = LSMLProblem(vab, vcd, weights, M0)
    d = M0.shape[0]
    eps = 1e-10 * max(np.trace(problem.prior) / d, 1e-300)

    def result(M, f, k, converged, message):
        sab, scd = problem.residuals(M)
        return SolverResult(
            components_from_metric(M, strict=False),
            f,
            k,
            converged,
            message,
            metric=M,
            info={"n_violated": int(np.sum(sab > scd))},
        )

    M = problem.prior.copy()
    f, G = lsml_loss_grad(M, problem)
    gnorm = np.linalg.norm(G)
    if gnorm <= tol:
        # Counted as one iteration: the gradient was evaluated and the prior kept.
        return result(M, f, 1, True, f"gradient norm {gnorm:.3g} <= tol={tol:g} at the prior")
    t = 1.0 / gnorm
    for k in range(1, max_iter + 1):
        for _ in range(60):
            M_new = M - t * G
            f_new, G_new = lsml_loss_grad(M_new, problem)
            if not np.isfinite(f_new):
                # Outside the positive definite cone: project (the barrier then
                # rejects the step unless it is tiny).
                M_new = psd_project(M_new, min_eigenvalue=eps)
                f_new, G_new = lsml_loss_grad(M_new, problem)
            step = M_new - M
            if f_new <= f + 1e-4 * np.sum(G * step):
                break
            t *= 0.5
        else:
            return result(
                M, f, k, True, "no step decreases the loss (optimal to working precision)"
            )
        pgrad = np.linalg.norm(step) / t
        # Barzilai-Borwein step for the next iteration.
        y = G_new - G
        sy = np.sum(step * y)
        t = np.sum(step * step) / sy if sy > 0 else 2.0 * t
        M, f, G = M_new, f_new, G_new
        progress.iter(k, f, grad=pgrad, step=t)
        if pgrad <= tol:
            return result(M, f, k, True, f"projected gradient norm {pgrad:.3g} <= tol={tol:g}")
    return result(
        M, f, max_iter, False, f"max_iter={max_iter} steps reached with projected gradient >= tol"
    )
