"""Solvers for Xing et al.'s (2002) metric learning problem (MMC).

The problem (Xing's own form, "P1"), for similar pairs S and dissimilar pairs D::

    minimise    f(M) = sum_{(x, y) in S} (x - y)^T M (x - y)
    subject to  g(M) = sum_{(x, y) in D} sqrt((x - y)^T M (x - y)) >= 1,
                M positive semidefinite                 (full variant)
                M = diag(m), m >= 0                     (diagonal variant)

``f`` is linear in M (``f(M) = <A, M>`` with ``A`` the scatter matrix of the
similar differences) and ``g`` is concave (a sum of square roots of linear
functions), so the feasible set is convex and the problem is convex. At the
optimum ``g(M) = 1`` (otherwise M could be scaled down).

How the projected-gradient solver works
---------------------------------------
``f`` is 1-homogeneous and ``g`` 1/2-homogeneous in M, so P1 is the same as
minimising the scale-free ratio ``f(M) / g(M)^2`` and rescaling the minimiser to
``g = 1``. Equivalently (the form solved here, "P2")::

    maximise g(M)  subject to  f(M) <= 1,  M PSD,

and P1's solution is ``M_P2 / g(M_P2)^2`` with optimal value ``1 / g(M_P2)^2``.
Whitening by the similar scatter, ``N = A^{1/2} M A^{1/2}``, turns the
constraint set into the *spectraplex* ``{N PSD, trace(N) <= 1}`` (the capped
simplex ``{n >= 0, sum(n) <= 1}`` in the diagonal variant), onto which the
Euclidean projection is exact: an eigendecomposition through
:func:`skmetric._psd.psd_project` followed by a projection of the eigenvalues
onto the capped simplex. No alternating projections are needed (metric-learn's
inner loop of up to 10,000 projections per step is where its time goes). The
solver is projected gradient ascent with a backtracking (sufficient increase)
step size that grows again after accepted steps. Its convergence test is the
Frank-Wolfe duality gap ``max_Z <grad g(N), Z - N>`` over the constraint set,
which bounds ``g* - g(N)`` from above because g is concave: stopping at
``gap <= tol * g(N)`` guarantees that the returned P1 objective is within about
``2 * tol`` (relative) of the optimum. Iterations are capped by ``max_iter``,
and every inner loop is bounded, so the solver always terminates.

Directions in which all similar differences vanish (A singular) are degenerate:
the optimal P1 value is then 0, reached by stretching M along them. They are
handled by flooring A's eigenvalues at a tiny fraction of the largest one, so the
solver returns a (very large) finite metric along such directions; directions
in which neither similar nor dissimilar differences have any energy get zero
weight.

Regularised problem
-------------------
Xing's optimum is typically of rank 1 to 3 and, with few pairs per parameter,
overfits them (measured: 3-NN error 17.5% on digits where Euclidean gets 2.8%).
The regularised problem keeps a fraction ``mu`` ("regularization", in [0, 1))
of the similar-distance budget on a prior metric ``M0`` (``prior``, identity
by default)::

    minimise f(M)  s.t.  g(M) >= 1,  M - mu * (f(M) / f(M0)) * M0  PSD,

a linear matrix inequality (so the problem stays convex, and scale-free like
P1). In the P2 form it reads ``M = mu M0 / f(M0) + (1 - mu) M'`` with ``M'``
in the original constraint set, so the same exact projection applies to
``M'``: the metric is the prior plus a learned part that carries ``1 - mu`` of
the similar budget, and it stays full rank wherever ``M0`` is. ``mu = 0`` is
Xing's problem; ``mu -> 1`` tends to ``M0``.

``solve_mmc_cvxpy`` writes P1 itself in cvxpy (an independent formulation used
to check the projected-gradient solver) and solves it with Clarabel or SCS.

Setting the problem up from labelled pairs (similar scatter ``A``, dissimilar
differences ``D``, the diagonal of the prior in the diagonal variant and the
'auto' value of ``mu``, :func:`auto_regularization`) is :func:`fit_mmc`, the
one entry the estimators call. Every solver returns a
:class:`skmetric._solver.SolverResult` (``loss`` = ``f(M)`` at ``g(M) = 1``,
``metric`` = M, the duality gap and ``g(M)`` in ``info``) and reports through
a :class:`skmetric._solver.Progress`; none prints.

References
----------
E. P. Xing, A. Y. Ng, M. I. Jordan, S. Russell. Distance metric learning, with
application to clustering with side-information. NIPS 15, 2002.
"""

from dataclasses import replace

import numpy as np
from scipy import linalg

from ._psd import components_from_metric, psd_project, symmetrize
from ._solver import NO_PROGRESS, SolverResult

__all__ = [
    "fit_mmc",
    "auto_regularization",
    "pair_differences",
    "similar_objective",
    "dissimilar_constraint",
    "similar_objective_diag",
    "dissimilar_constraint_diag",
    "project_capped_simplex",
    "project_spectraplex",
    "solve_mmc",
    "solve_mmc_cvxpy",
]

# Squared distances below this are treated as 0 where a square root is
# differentiated (the gradient of sqrt is infinite at 0).
_TINY = 1e-300
# Eigenvalues of the similar scatter below this fraction of the largest one are
# floored to it (degenerate directions, see the module docstring).
_SCATTER_FLOOR = 1e-10
# Spectral projected gradient: memory of the non-monotone line search and its
# sufficient-increase constant.
_NONMONOTONE = 10
_SMOOTHING = 1e-12
_ARMIJO = 1e-4


# 'auto' regularization: the prior metric counts as this many pairs per free
# parameter of M (d (d + 1) / 2, or d when diagonal). Chosen on the benchmark
# (benchmarks/bench_mmc.py): 6 to 16 all keep the 3-NN error at or below
# metric-learn's on iris, wine, breast_cancer and digits; 4 does not.
_PRIOR_PAIRS_PER_PARAMETER = 10


# --------------------------------------------------------------------------
# The problem, from labelled pairs
# --------------------------------------------------------------------------


def auto_regularization(n_features, n_pairs, diagonal=False):
    """The ``regularization='auto'`` value ``mu = k p / (k p + n_pairs)``.

    ``p`` is the number of free parameters of the metric (``d (d + 1) / 2``,
    or ``d`` for a diagonal one) and ``k = 10``: the prior metric weighs as
    much as ``k`` pairs per parameter, so the learned part dominates only
    when there are many more pairs than parameters (a shrinkage intensity
    that decreases like ``p / n``).
    """
    p = n_features if diagonal else n_features * (n_features + 1) / 2
    prior = _PRIOR_PAIRS_PER_PARAMETER * p
    return float(prior / (prior + n_pairs))


def fit_mmc(
    pairs, y, M0=None, *, diagonal=False, regularization="auto", solver="projected_gradient",
    max_iter=1000, tol=1e-5, progress=None,
):
    """Set up MMC's problem from labelled pairs and solve it.

    Parameters
    ----------
    pairs : ndarray of shape (n_pairs, 2, d)
    y : ndarray of shape (n_pairs,) in {-1, +1}
    M0 : ndarray of shape (d, d), default=None
        The prior metric (identity if None); only its diagonal is used when
        ``diagonal``.
    diagonal : bool, default=False
        Learn a diagonal metric.
    regularization : float in [0, 1) or 'auto', default='auto'
        The fraction ``mu`` of the similar budget kept on the prior;
        'auto' is :func:`auto_regularization` of the dimension and number of pairs.
    solver : {'projected_gradient', 'cvxpy'}, default='projected_gradient'
        :func:`solve_mmc` or :func:`solve_mmc_cvxpy`.
    max_iter, tol : see :func:`solve_mmc` (projected gradient only).
    progress : Progress, default=None

    Returns
    -------
    SolverResult
        ``info['regularization']`` holds the ``mu`` used.
    """
    diff_similar, diff_dissimilar = pair_differences(pairs, y)
    if diagonal:
        A = np.einsum("ij,ij->j", diff_similar, diff_similar)
        M0 = None if M0 is None else np.diag(M0).copy()
    else:
        A = diff_similar.T @ diff_similar
    if regularization == "auto":
        mu = auto_regularization(pairs.shape[2], pairs.shape[0], diagonal)
    else:
        mu = float(regularization)
    kwargs = dict(diagonal=diagonal, prior=M0, regularization=mu, progress=progress)
    if solver == "cvxpy":
        result = solve_mmc_cvxpy(A, diff_dissimilar, **kwargs)
    else:
        result = solve_mmc(A, diff_dissimilar, max_iter=max_iter, tol=tol, **kwargs)
    return replace(result, info={**result.info, "regularization": mu})


# --------------------------------------------------------------------------
# Objective and constraint functions: (params, data) -> (value, gradient)
# --------------------------------------------------------------------------


def pair_differences(pairs, y):
    """Similar differences and dissimilar differences of labelled pairs.

    Parameters
    ----------
    pairs : ndarray of shape (n_pairs, 2, n_features)
    y : ndarray of shape (n_pairs,) in {-1, +1}

    Returns
    -------
    diff_similar : ndarray of shape (n_similar, n_features), float64
    diff_dissimilar : ndarray of shape (n_dissimilar, n_features), float64
    """
    diff = pairs[:, 0, :].astype(np.float64) - pairs[:, 1, :]
    return diff[y == 1], diff[y == -1]


def similar_objective(M, A):
    """``f(M) = <A, M>`` (sum of squared similar distances) and its gradient A.

    Parameters
    ----------
    M : ndarray of shape (d, d)
    A : ndarray of shape (d, d)
        Scatter of the similar differences, ``sum_k s_k s_k^T``.
    """
    return float(np.vdot(A, M)), A


def dissimilar_constraint(M, D, smoothing=0.0):
    """``g(M) = sum_k sqrt(d_k^T M d_k + smoothing)`` and its gradient.

    The gradient is ``sum_k d_k d_k^T / (2 sqrt(d_k^T M d_k + smoothing))``
    (symmetric). Without smoothing it is infinite where a distance is 0, so
    such terms use a tiny floor.

    Parameters
    ----------
    M : ndarray of shape (d, d)
    D : ndarray of shape (n_dissimilar, d)
        Dissimilar differences ``d_k``.
    smoothing : float, default=0.0
        Added under every square root; the solver uses a tiny value so that
        the gradient stays bounded where a dissimilar distance vanishes.
    """
    q = np.einsum("ij,ij->i", D @ M, D)
    root = np.sqrt(np.maximum(q, 0.0) + smoothing)
    weights = 0.5 / np.maximum(root, np.sqrt(_TINY))
    grad = (D * weights[:, None]).T @ D
    return float(root.sum()), grad


def similar_objective_diag(m, a):
    """Diagonal variant of :func:`similar_objective`: ``f(m) = a . m``.

    ``a`` holds the per-feature sums of squared similar differences.
    """
    return float(a @ m), a


def dissimilar_constraint_diag(m, Q, smoothing=0.0):
    """Diagonal variant of :func:`dissimilar_constraint`: ``sum_k sqrt(Q_k . m + smoothing)``.

    ``Q`` of shape (n_dissimilar, d) holds the squared dissimilar differences.
    """
    q = Q @ m
    root = np.sqrt(np.maximum(q, 0.0) + smoothing)
    weights = 0.5 / np.maximum(root, np.sqrt(_TINY))
    return float(root.sum()), Q.T @ weights


# --------------------------------------------------------------------------
# Exact projections
# --------------------------------------------------------------------------


def project_capped_simplex(v, radius=1.0):
    """Euclidean projection of a vector onto ``{w >= 0, sum(w) <= radius}``.

    ``max(v - theta, 0)`` with the smallest ``theta >= 0`` that meets the sum;
    O(d log d) by sorting.
    """
    v = np.asarray(v, dtype=np.float64)
    w = np.maximum(v, 0.0)
    if w.sum() <= radius:
        return w
    u = np.sort(w)[::-1]
    css = np.cumsum(u) - radius
    k = np.arange(1, u.size + 1)
    positive = np.flatnonzero(u - css / k > 0)
    rho = positive[-1] if positive.size else 0  # rounding guard: rho = 0 always holds
    theta = css[rho] / (rho + 1.0)
    return np.maximum(w - theta, 0.0)


def project_spectraplex(N, radius=1.0):
    """Frobenius projection onto ``{N PSD, trace(N) <= radius}``.

    The PSD projection (eigenvalue clipping, :func:`skmetric._psd.psd_project`)
    followed by a projection of the clipped eigenvalues onto the capped
    simplex; since the set is unitarily invariant this is the exact projection.
    """
    _, w, V = psd_project(N, return_eigen=True)
    w = project_capped_simplex(w, radius)
    return symmetrize((V * w) @ V.T)


# --------------------------------------------------------------------------
# Projected-gradient solver
# --------------------------------------------------------------------------


def _whiten(A, D, diagonal):
    """Whitening by the similar scatter: returns (E, back, keep).

    ``E`` are the whitened dissimilar differences (full) or squared differences
    over the scatter (diagonal); ``back`` maps a solution N of P2 back to M.
    """
    if diagonal:
        a = np.asarray(A, dtype=np.float64)
        Q = D * D
        energy = Q.sum(axis=0)
        floor = _SCATTER_FLOOR * a.max() if a.max() > 0 else 1.0
        keep = (a > floor) | (energy > 0)
        a_f = np.maximum(a[keep], floor)
        E = Q[:, keep] / a_f

        def back(n):
            m = np.zeros(a.size)
            m[keep] = n / a_f
            return m

        def forward(m):
            return np.asarray(m, dtype=np.float64)[keep] * a_f

        return E, back, forward

    s, U = linalg.eigh(symmetrize(A), check_finite=False)
    s = np.maximum(s, 0.0)
    energy = np.einsum("ij,ij->j", D @ U, D @ U)
    floor = _SCATTER_FLOOR * s.max() if s.max() > 0 else 1.0
    keep = (s > floor) | (energy > _SCATTER_FLOOR * max(energy.max(), _TINY))
    Uk = U[:, keep]
    scale = 1.0 / np.sqrt(np.maximum(s[keep], floor))
    W = Uk * scale  # M = W N W^T, N = W^+ M W^+T
    E = D @ W

    def back(N):
        return symmetrize(W @ N @ W.T)

    def forward(M):
        Winv = Uk / scale  # pseudo-inverse of W^T restricted to kept directions
        return symmetrize(Winv.T @ M @ Winv)

    return E, back, forward


def _fw_gap(x, grad, diagonal):
    """Frank-Wolfe gap ``max_{Z in set} <grad, Z - x>`` on the (matrix) capped simplex."""
    if diagonal:
        top = grad.max()
    else:
        top = linalg.eigvalsh(symmetrize(grad), subset_by_index=[grad.shape[0] - 1] * 2)[0]
    return max(top, 0.0) - float(np.vdot(grad, x))


def _maximize(value_grad, project, x, diagonal, max_iter, tol, progress):
    """Spectral projected gradient ascent of a concave function on the capped
    (spectra)simplex (Birgin, Martinez & Raydan, 2000).

    Each iteration projects a gradient step whose length is the Barzilai-Borwein
    step, then backtracks along the segment from x to that projection (which
    stays feasible, so no further projection is needed) until a non-monotone
    sufficient-increase condition holds. At most 60 halvings per iteration and
    ``max_iter`` iterations.

    Each iteration is reported as ``progress.iter(k, 1 / g**2, gap=...)``:
    iterates lie on the boundary ``trace = 1``, i.e. ``f = 1`` (the gradient
    step only adds PSD mass and the projection caps the trace), so ``1 / g**2``
    is P1's objective at the iterate rescaled to ``g = 1``.

    Returns (x, value, n_iter, converged, relative_gap).
    """
    x = project(x)
    G, g = value_grad(x)
    t_min = 1e-12
    step = float(np.linalg.norm(x)) / max(float(np.linalg.norm(g)), _TINY)
    history = [G] * _NONMONOTONE
    converged, rel_gap, n_iter = False, np.inf, 0
    for n_iter in range(1, max_iter + 1):
        rel_gap = _fw_gap(x, g, diagonal) / max(abs(G), _TINY)
        progress.iter(n_iter, 1.0 / G**2 if G > 0 else np.inf, gap=rel_gap)
        if rel_gap <= tol:
            converged = True
            break
        direction = project(x + step * g) - x
        slope = float(np.vdot(g, direction))
        if not slope > 0:
            break  # x is stationary to machine precision
        reference = min(history)
        lam = 1.0
        for _ in range(60):
            x_new = x + lam * direction
            G_new, g_new = value_grad(x_new)
            if np.isfinite(G_new) and G_new >= reference + _ARMIJO * lam * slope:
                break
            lam *= 0.5
        else:
            break  # no acceptable step: numerically stalled
        s_vec = x_new - x
        sy = float(np.vdot(s_vec, g - g_new))  # >= 0 for a concave function
        step = float(np.vdot(s_vec, s_vec)) / sy if sy > 0 else np.inf
        # Bound the step so that x + step * g stays within ~1e6 of the feasible
        # set (which has trace 1): the projection then loses no precision.
        t_max = 1e6 / max(float(np.linalg.norm(g_new)), _TINY)
        step = min(max(step, t_min), t_max)
        x, G, g = x_new, G_new, g_new
        history = history[1:] + [G]
    return x, G, n_iter, converged, float(rel_gap)


def _to_p1(M, A, D, diagonal):
    """Rescale a solution to ``g(M) = 1`` and evaluate P1 there."""
    if diagonal:
        M = np.maximum(M, 0.0)
        g, _ = dissimilar_constraint_diag(M, D * D)
    else:
        g, _ = dissimilar_constraint(M, D)
    if not g > 0:
        raise ValueError("The solver found no metric that separates the dissimilar pairs.")
    M = M / g**2
    if diagonal:
        f, _ = similar_objective_diag(M, A)
        c, _ = dissimilar_constraint_diag(M, D * D)
    else:
        f, _ = similar_objective(M, A)
        c, _ = dissimilar_constraint(M, D)
    return M, f, c


def _check_problem(A, D, diagonal):
    A = np.asarray(A, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] == 0:
        raise ValueError("MMC needs at least one dissimilar pair.")
    d = D.shape[1]
    expected = (d,) if diagonal else (d, d)
    if A.shape != expected:
        raise ValueError(f"The similar scatter must have shape {expected}, got {A.shape}.")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(D))):
        raise ValueError("The pair differences contain NaN or infinite values.")
    if not np.any(D):
        raise ValueError(
            "All dissimilar pairs have identical points (zero difference): no metric "
            "can separate them."
        )
    return A, D


def solve_mmc(
    A, D, *, diagonal=False, prior=None, regularization=0.0, max_iter=1000, tol=1e-5,
    progress=None,
):
    """Solve Xing's problem by projected gradient (see the module docstring).

    With ``regularization = mu > 0`` the solved problem is the regularised P2
    of the module docstring, ``max g(M) s.t. f(M) <= 1, M - mu M0 / f(M0)
    PSD``: the metric keeps at least the fraction ``mu`` of the prior metric
    ``M0 = prior``. Writing ``M = mu M0 / f(M0) + (1 - mu) M'`` turns it into
    the unregularised constraint set for ``M'``, so the same exact projection
    applies; ``mu = 0`` is Xing's problem itself.

    Parameters
    ----------
    A : ndarray of shape (d, d), or (d,) when ``diagonal``
        Scatter of the similar differences ``sum_k s_k s_k^T`` (its diagonal,
        i.e. per-feature sums of squares, in the diagonal variant).
    D : ndarray of shape (n_dissimilar, d)
        Dissimilar differences.
    diagonal : bool, default=False
        Learn a diagonal metric.
    prior : ndarray of shape (d, d) or (d,), default=None
        The prior PSD metric ``M0`` (its scale is irrelevant), identity if
        None; also the starting point. The unregularised problem is convex,
        so there it only affects the number of iterations.
    regularization : float in [0, 1), default=0.0
        Fraction ``mu`` of the similar-distance budget ``f(M) <= 1`` reserved
        for the prior metric (see above). 0 solves Xing's problem.
    max_iter : int, default=1000
        Hard cap on the number of iterations.
    tol : float, default=1e-5
        Stop when the relative Frank-Wolfe gap of P2 is at most ``tol``.
    progress : Progress, default=None
        Told ``iter(k, loss, gap=...)`` at each iteration; None is silent.

    Returns
    -------
    SolverResult
        ``metric`` is the solution ``M`` of the (regularised) problem scaled to
        ``g(M) = 1`` (diagonal matrix in the diagonal variant),
        ``components`` its factor and ``loss`` = ``f(M)``, the sum of squared
        similar distances. ``info`` holds ``constraint`` (``g(M)``, 1 up to
        round-off) and ``gap`` (the final relative Frank-Wolfe gap).
        ``converged`` says whether the gap reached ``tol``.
    """
    A, D = _check_problem(A, D, diagonal)
    if not 0.0 <= regularization < 1.0:
        raise ValueError(f"regularization must be in [0, 1), got {regularization!r}.")
    d = D.shape[1]
    E, back, forward = _whiten(A, D, diagonal)
    r = E.shape[1]
    # sqrt(q) has an infinite slope at q = 0, which a projected iterate can hit
    # (the optimum itself keeps every q > 0). A tiny smoothing, relative to the
    # typical q at the centre of the set, bounds the slope; it changes g by at
    # most 1e-6 relative.
    sq_norms = E.sum(axis=1) if diagonal else np.einsum("ij,ij->i", E, E)
    smoothing = _SMOOTHING * float(np.mean(sq_norms)) / r
    if diagonal:
        value_grad = lambda n: dissimilar_constraint_diag(n, E, smoothing)  # noqa: E731
        project = project_capped_simplex
        fallback = np.full(r, 1.0 / r)
    else:
        value_grad = lambda N: dissimilar_constraint(N, E, smoothing)  # noqa: E731
        project = project_spectraplex
        fallback = np.eye(r) / r
    if prior is None:
        prior = np.ones(d) if diagonal else np.eye(d)
    x0 = forward(np.diag(prior) if diagonal and np.ndim(prior) == 2 else prior)
    total = x0.sum() if diagonal else np.trace(x0)
    # Start on the boundary trace = 1; fall back to the centre when the prior is 0
    # on every useful direction.
    x0 = x0 / total if total > 0 and np.all(np.isfinite(x0)) else fallback
    mu = float(regularization)
    if mu > 0:
        # Optimise over M' (whitened N') with N = mu N0 + (1 - mu) N', N0 = x0
        # (the prior on the boundary trace = f = 1); g stays concave in N'.
        inner = value_grad

        def value_grad(n):
            G, grad = inner(mu * x0 + (1.0 - mu) * n)
            return G, (1.0 - mu) * grad

    x, _, n_iter, converged, gap = _maximize(
        value_grad, project, x0, diagonal, max_iter, tol,
        NO_PROGRESS if progress is None else progress,
    )
    if mu > 0:
        x = mu * x0 + (1.0 - mu) * x
    M, f, c = _to_p1(back(x), A, D, diagonal)
    if diagonal:
        M = np.diag(M)
    if converged:
        message = f"relative duality gap {gap:.2e} <= tol={tol:g}"
    elif n_iter >= max_iter:
        message = (
            f"max_iter={max_iter} reached with a relative duality gap of {gap:.2e} > tol={tol:g}"
        )
    else:
        message = (
            "no further progress is possible in floating point with a relative duality gap "
            f"of {gap:.2e} > tol={tol:g}; the data may be degenerate"
        )
    return _result(M, f, c, n_iter, converged, message, gap)


def _result(M, f, c, n_iter, converged, message, gap=float("nan")):
    return SolverResult(
        components_from_metric(M, strict=False), f, n_iter, converged, message, metric=M,
        info={"constraint": c, "gap": gap},
    )


# --------------------------------------------------------------------------
# cvxpy formulation
# --------------------------------------------------------------------------


def solve_mmc_cvxpy(
    A, D, *, diagonal=False, prior=None, regularization=0.0, solver=None, progress=None
):
    """Solve Xing's problem P1 exactly as written, with cvxpy.

    ``minimise <A, M>  s.t.  sum_k sqrt(d_k^T M d_k) >= 1,  M PSD`` (or
    ``M = diag(m), m >= 0``), plus, when ``regularization = mu > 0``, the
    linear matrix inequality ``M - mu (<A, M> / <A, M0>) M0 PSD`` of the
    regularised problem (module docstring). The data are rescaled to unit size before the
    call (and the solution mapped back) for the conic solver's sake. Meant for
    small dimensions: the PSD cone has d(d+1)/2 variables and every
    dissimilar pair adds a second-order cone.

    Parameters
    ----------
    A, D, diagonal, prior, regularization : see :func:`solve_mmc`.
    solver : {'CLARABEL', 'SCS'} or None, default=None
        Conic solver; None picks Clarabel when installed, else SCS.
    progress : Progress, default=None
        Told the conic solver's status once it is done; with ``verbose >= 2``
        cvxpy also logs the solve itself.

    Returns
    -------
    SolverResult
        As :func:`solve_mmc`; ``info['gap']`` is nan and ``converged``
        reports an 'optimal' status.
    """
    import cvxpy as cp

    A, D = _check_problem(A, D, diagonal)
    if not 0.0 <= regularization < 1.0:
        raise ValueError(f"regularization must be in [0, 1), got {regularization!r}.")
    d = D.shape[1]
    if solver is None:
        solver = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else "SCS"
    # Unit scale: A / alpha, D / beta. For the rescaled problem's solution Mt,
    # M = Mt / beta^2 solves the original one (g is unchanged, f scales).
    alpha = float(np.sum(A) if diagonal else np.trace(A)) or 1.0
    beta = float(np.sqrt(np.mean(np.sum(D * D, axis=1)))) or 1.0
    At, Dt = A / alpha, D / beta
    if diagonal:
        m = cp.Variable(d, nonneg=True)
        objective = At @ m
        sq = (Dt * Dt) @ m
    else:
        M = cp.Variable((d, d), PSD=True)
        objective = cp.trace(At @ M)
        sq = cp.sum(cp.multiply(Dt @ M, Dt), axis=1)
    constraints = [cp.sum(cp.sqrt(sq)) >= 1]
    if regularization > 0:
        if prior is None:
            prior = np.ones(d) if diagonal else np.eye(d)
        M0 = np.asarray(prior, dtype=np.float64)
        if diagonal and M0.ndim == 2:
            M0 = np.diag(M0)
        M0 = M0 / float(At @ M0 if diagonal else np.vdot(At, M0))
        if diagonal:
            constraints.append(m >= regularization * objective * M0)
        else:
            S = M - regularization * objective * M0
            constraints.append((S + S.T) / 2 >> 0)
    problem = cp.Problem(cp.Minimize(objective), constraints)
    progress = NO_PROGRESS if progress is None else progress
    problem.solve(solver=solver, verbose=progress.verbose > 1)
    value = m.value if diagonal else M.value
    if value is None:
        raise ValueError(f"cvxpy could not solve the MMC problem (status: {problem.status}).")
    if diagonal:
        M_sol = np.maximum(np.asarray(value, dtype=np.float64), 0.0) / beta**2
    else:
        M_sol = psd_project(np.asarray(value, dtype=np.float64)) / beta**2
    # Remove the solver's feasibility tolerance: rescale to g(M) = 1 exactly.
    M_sol, f, c = _to_p1(M_sol, A, D, diagonal)
    if diagonal:
        M_sol = np.diag(M_sol)
    stats = problem.solver_stats
    n_iter = int(stats.num_iters) if stats is not None and stats.num_iters else 1
    progress.say(f"cvxpy ({solver}): status {problem.status} after {n_iter} iterations")
    if problem.status == cp.OPTIMAL:
        return _result(M_sol, f, c, n_iter, True, "cvxpy status optimal")
    message = f"the cvxpy solver did not report an optimal solution (status {problem.status})"
    return _result(M_sol, f, c, n_iter, False, message)
