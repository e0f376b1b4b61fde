"""SCML: sparse compositional metric learning (Shi, Bellet & Sha, AAAI 2014).

The metric is a sparse non-negative combination of rank-one bases ``b_k``
(rows of ``B``, unit norm)::

    M(w) = sum_k w_k b_k b_k^T = B^T diag(w) B,     w >= 0,

so ``d_w(x, y)^2 = sum_k w_k (b_k . (x - y))^2`` is linear in ``w``. From
triplets ``(a, b, c)`` stating ``d(a, b) < d(a, c)`` SCML minimises the
margin hinge loss plus an L1 penalty::

    F(w) = mean_i max(0, 1 + d_w(a_i, b_i)^2 - d_w(a_i, c_i)^2) + beta * sum_k w_k

over ``w >= 0``: a convex, piecewise-linear problem in ``n_basis`` unknowns
(on ``w >= 0`` the L1 norm is the linear term ``beta * sum(w)``).

:func:`fit_scml` solves it deterministically: the hinge is smoothed over a
width ``mu`` (Nesterov's smoothing, i.e. the Huber hinge ``h_mu(m) = m -
mu / 2`` for ``m >= mu``, ``m^2 / (2 mu)`` on ``[0, mu]``, 0 below; it is
within ``mu / 2`` of the hinge), and the smooth bound-constrained problem is
solved by L-BFGS-B, whose active set gives exact zeros in ``w`` (sparsity).
The paper (and metric-learn) use stochastic regularised dual averaging with
AdaGrad instead; on the same triplets and bases, the deterministic solver
reaches a lower hinge objective in a few dozen full passes. The reported loss
is the exact (unsmoothed) ``F``.

At the optimum only a few percent of k-NN triplets have a positive hinge
term, so large problems are solved on a working set of triplets that grows
until no triplet outside it is active (then the restricted solution is exact;
:func:`fit_scml`).

Distances are linear in ``w``, so each evaluation works on the distinct pairs
of the triplets: ``P[p, k] = (b_k . (x_p - x'_p))^2`` (kept in memory when it
is small enough, otherwise recomputed block by block from the projected
points ``XB = X @ B.T``; never a triplets x bases matrix).

Basis sets (:func:`bases_from_triplet_diffs`, :func:`bases_from_local_lda`)
live here too. Solvers never print or warn.
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from ._psd import components_from_metric
from ._solver import NO_PROGRESS, SolverResult

__all__ = [
    "SCMLProblem",
    "scml_objective",
    "scml_smoothed_loss_grad",
    "fit_scml",
    "metric_from_bases",
    "bases_from_triplet_diffs",
    "bases_from_local_lda",
]

_IN_MEMORY = 1 << 25  # pairs x bases entries kept in memory (256 MB of float64)
_BLOCK = 1 << 22  # entries built at once when the matrix is recomputed block by block


def _pair_index(pairs, n_points):
    """Distinct unordered pairs of indices and, for each input pair, its row."""
    lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    keys, inverse = np.unique(lo * n_points + hi, return_inverse=True)
    return np.column_stack([keys // n_points, keys % n_points]), inverse.ravel()


class SCMLProblem:
    """The data of one SCML problem: distinct pairs and their per-basis distances.

    Parameters
    ----------
    XB : ndarray of shape (n_points, n_basis)
        The points projected on the bases, ``X @ B.T``.
    triplets : ndarray of shape (n_triplets, 3), int
        Index triplets ``(a, b, c)`` into ``XB``, stating ``d(a, b) < d(a, c)``.
    scale : int, default=None
        The number the hinge terms are averaged over (None: ``n_triplets``);
        a working set of the triplets of a larger problem keeps that
        problem's count, the others contributing zero.
    in_memory : bool, default=True
        Keep the pairs x bases matrix when it holds at most 2**25 entries;
        False always recomputes it by blocks.
    """

    def __init__(self, XB, triplets, scale=None, in_memory=True):
        triplets = np.asarray(triplets, dtype=np.intp)
        n = triplets.shape[0]
        self.scale = n if scale is None else scale
        self.pairs, inverse = _pair_index(
            np.vstack([triplets[:, [0, 1]], triplets[:, [0, 2]]]), XB.shape[0]
        )
        self.ab, self.ac = inverse[:n], inverse[n:]
        self.n_triplets = n
        self.XB = np.asarray(XB, dtype=np.float64)
        self.n_basis = self.XB.shape[1]
        n_pairs = self.pairs.shape[0]
        self._rows = max(1, _BLOCK // max(self.n_basis, 1))
        self._P = None
        if in_memory and n_pairs * self.n_basis <= _IN_MEMORY:
            self._P = np.empty((n_pairs, self.n_basis))
            for start in range(0, n_pairs, self._rows):
                stop = min(start + self._rows, n_pairs)
                self._P[start:stop] = self._block(start, stop)

    def subset(self, members, scale=None):
        """The problem restricted to the triplets ``members`` (sharing this
        problem's points, and its pairs x bases rows when in memory)."""
        sub = object.__new__(SCMLProblem)
        used, inverse = np.unique(
            np.concatenate([self.ab[members], self.ac[members]]), return_inverse=True
        )
        k = members.size
        sub.scale = k if scale is None else scale
        sub.pairs, sub.ab, sub.ac = self.pairs[used], inverse[:k], inverse[k:]
        sub.n_triplets, sub.XB, sub.n_basis, sub._rows = k, self.XB, self.n_basis, self._rows
        sub._P = None
        if self._P is not None:
            sub._P = self._P[used]
        elif used.size * self.n_basis <= _IN_MEMORY:
            sub._P = sub._block(0, used.size)
        return sub

    def _block(self, start, stop, XB=None, pairs=None):
        p = (self.pairs if pairs is None else pairs)[start:stop]
        XB = self.XB if XB is None else XB
        return (XB[p[:, 0]] - XB[p[:, 1]]) ** 2

    def pair_distances(self, w):
        """Squared learned distance ``d_w^2`` of every distinct pair.

        Without the matrix in memory, only the bases with a non-zero weight
        are projected (``w`` is sparse: a fraction of the bases at the
        optimum); with it, one matrix-vector product (faster than gathering
        the active columns).
        """
        if self._P is not None:
            return self._P @ w
        active = np.flatnonzero(w)
        XB, wa = self.XB[:, active], w[active]
        out = np.empty(self.pairs.shape[0])
        rows = max(1, _BLOCK // max(active.size, 1))
        for start in range(0, self.pairs.shape[0], rows):
            stop = min(start + rows, self.pairs.shape[0])
            out[start:stop] = self._block(start, stop, XB) @ wa
        return out

    def margins(self, w):
        """``1 + d_w(a, b)^2 - d_w(a, c)^2`` of every triplet."""
        d = self.pair_distances(w)
        return 1.0 + d[self.ab] - d[self.ac]

    def pull_back(self, coef):
        """``sum_i coef_i (P[ab_i] - P[ac_i])``: the gradient of a function of the margins.

        Only the pairs with a non-zero coefficient are read (with the hinge,
        those of the triplets with a positive margin term: a fraction of them).
        """
        n_pairs = self.pairs.shape[0]
        c = np.bincount(self.ab, coef, n_pairs) - np.bincount(self.ac, coef, n_pairs)
        nz = np.flatnonzero(c)
        if self._P is not None:
            return c @ self._P if 3 * nz.size > n_pairs else c[nz] @ self._P[nz]
        g = np.zeros(self.n_basis)
        pairs, c = self.pairs[nz], c[nz]
        for start in range(0, nz.size, self._rows):
            stop = min(start + self._rows, nz.size)
            g += c[start:stop] @ self._block(start, stop, pairs=pairs)
        return g


def scml_objective(w, problem, beta):
    """The exact SCML objective ``F(w)`` (module docstring) and the number of
    triplets with a positive hinge term."""
    m = problem.margins(w)
    pos = m > 0
    return float(m[pos].sum() / problem.scale + beta * np.sum(w)), int(pos.sum())


def scml_smoothed_loss_grad(w, problem, beta, mu):
    """The smoothed objective ``mean_i h_mu(m_i) + beta * sum(w)`` and its gradient.

    ``h_mu`` is the Huber hinge of width ``mu`` (module docstring); the
    gradient is ``mean_i h_mu'(m_i) (P[a_i b_i] - P[a_i c_i]) + beta``.
    """
    m = problem.margins(w)
    slope = np.clip(m / mu, 0.0, 1.0)
    h = np.where(m >= mu, m - mu / 2.0, slope * m / 2.0)
    n = problem.scale
    loss = float(h.sum() / n + beta * np.sum(w))
    return loss, problem.pull_back(slope) / n + beta


def metric_from_bases(B, w):
    """``M = B^T diag(w) B`` and its factor ``L`` (n_features x n_features)."""
    active = w > 0
    Ba = B[active]
    M = (Ba.T * w[active]) @ Ba
    return M, components_from_metric(M, strict=False)


def _lbfgsb(problem, w0, beta, smoothing, max_iter, tol, progress, k0):
    """One bound-constrained L-BFGS-B solve of the smoothed problem from ``w0``."""
    state = {"k": k0}

    def callback(intermediate_result):
        state["k"] += 1
        if progress:
            progress.iter(state["k"], intermediate_result.fun,
                          n_basis=int(np.sum(intermediate_result.x > 0)))

    return minimize(
        scml_smoothed_loss_grad,
        w0,
        args=(problem, beta, smoothing),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * problem.n_basis,
        callback=callback,
        options={"maxiter": max_iter, "ftol": tol, "gtol": tol * 1e-2},
    )


def fit_scml(
    XB,
    triplets,
    B,
    *,
    beta=1e-5,
    smoothing=0.05,
    max_iter=1000,
    tol=1e-5,
    working_set=1024,
    progress=None,
):
    """Learn sparse non-negative basis weights from triplets (L-BFGS-B on the smoothed hinge).

    With more than ``working_set`` triplets, the problem is solved on a
    working set that grows until it is exact: a first solve on an evenly
    spaced subset of ``working_set`` triplets (averaging over the subset)
    gives a starting ``w``; then, repeatedly, every triplet whose margin term
    is within 1 of being active (``m > -1``) joins the working set and the
    problem restricted to it (averaging over all triplets) is solved from the
    current ``w``, until no triplet outside the set has a positive margin
    term. Those contribute zero to the loss and to the gradient, so the
    final ``w`` solves the full problem; at the optimum only a few percent
    of the k-NN triplets are active, so each solve is small.

    Parameters
    ----------
    XB : ndarray of shape (n_points, n_basis)
        The points projected on the bases, ``X @ B.T``.
    triplets : ndarray of shape (n_triplets, 3), int
        Index triplets ``(a, b, c)`` into ``XB`` stating ``d(a, b) < d(a, c)``.
    B : ndarray of shape (n_basis, n_features)
        The bases (for the returned metric).
    beta : float, default=1e-5
        L1 weight (sparsity of ``w``).
    smoothing : float, default=0.05
        Width ``mu`` of the smoothed hinge (the margin is 1).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations, all solves together.
    tol : float, default=1e-5
        Stop a solve when the relative decrease of the smoothed objective
        over one iteration falls below ``tol`` (L-BFGS-B's ``ftol``) or the
        projected gradient is below ``tol * 1e-2``.
    working_set : int, default=1024
        Size of the first working set; problems this small are solved whole.
    progress : Progress, default=None
        Told ``iter(k, loss, n_basis=...)`` after each iteration (the
        smoothed objective of the current solve) and the working-set sizes.

    Returns
    -------
    SolverResult
        ``metric`` is ``M = B^T diag(w) B``, ``loss`` the exact objective
        ``F(w)`` over all triplets; ``info['weights']`` is ``w``,
        ``info['n_active_bases']`` the number of non-zero weights,
        ``info['n_violated']`` the triplets with a positive hinge term and
        ``info['working_set']`` the final working-set size.
    """
    progress = NO_PROGRESS if progress is None else progress
    triplets = np.asarray(triplets, dtype=np.intp)
    n, K = triplets.shape[0], XB.shape[1]
    w = np.zeros(K)
    used, res = 0, None
    if n <= working_set:
        full = SCMLProblem(XB, triplets)
        res = _lbfgsb(full, w, beta, smoothing, max_iter, tol, progress, 0)
        w, used = np.maximum(res.x, 0.0), res.nit
        members = np.arange(n)
    else:
        # Only its margins are needed (the solves run on working sets): no
        # pairs x bases matrix for the whole problem.
        full = SCMLProblem(XB, triplets, in_memory=False)
        members = np.unique(np.linspace(0, n - 1, working_set).astype(np.intp))
        progress.say(f"first working set: {members.size} of {n} triplets")
        res = _lbfgsb(full.subset(members), w, beta, smoothing, max_iter, tol, progress, 0)
        w, used = np.maximum(res.x, 0.0), res.nit
        in_set = np.zeros(n, dtype=bool)
        in_set[members] = True
        rounds = 0
        while used < max_iter:
            m = full.margins(w)
            # The first solve averaged over the subset: always re-solve once.
            if rounds and not np.any(m[~in_set] > 0):
                break
            in_set |= m > -1.0
            members = np.flatnonzero(in_set)
            progress.say(f"working set: {members.size} of {n} triplets")
            restricted = full.subset(members, scale=n)
            res = _lbfgsb(restricted, w, beta, smoothing, max_iter - used, tol, progress, used)
            w, used, rounds = np.maximum(res.x, 0.0), used + res.nit, rounds + 1
    m = full.margins(w)
    loss = float(np.sum(m[m > 0]) / n + beta * np.sum(w))
    n_violated = int(np.sum(m > 0))
    M, L = metric_from_bases(B, w)
    outside = np.ones(n, dtype=bool)
    outside[members] = False
    settled = not np.any(m[outside] > 0)
    converged = bool(res.success) and settled
    if converged:
        message = "L-BFGS-B converged: " + str(res.message).lower()
    elif used >= max_iter:
        message = f"max_iter={max_iter} L-BFGS-B iterations reached"
    elif not settled:
        message = "triplets outside the working set are still active"
    else:
        message = "L-BFGS-B stopped: " + str(res.message).lower()
    return SolverResult(
        L,
        loss,
        max(used, 1),
        converged,
        message,
        metric=M,
        info={
            "weights": w,
            "n_active_bases": int(np.sum(w > 0)),
            "n_violated": n_violated,
            "working_set": int(members.size),
        },
    )


def _kmeans_centres(X, n_clusters, rng):
    """k-means centres (one random initialisation: k-means++ costs more than
    the rest of the fit here); fewer distinct points than clusters is not an
    error (duplicate centres are harmless bases)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=n_clusters, init="random", n_init=1, max_iter=30, random_state=rng)
        return km.fit(X).cluster_centers_


def _unit_rows(A):
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    keep = norms[:, 0] > 0
    return A[keep] / norms[keep]


def bases_from_triplet_diffs(X, triplets, n_basis=None, random_state=None, max_points=None):
    """Bases from the triplets' difference vectors, by k-means on their directions.

    The differences ``a - b`` and ``a - c`` of the distinct pairs in the
    triplets are normalised to unit length and given a canonical sign (a
    rank-one basis ``b b^T`` does not depend on the sign of ``b``: the
    largest-magnitude coordinate is made positive); k-means with ``n_basis``
    clusters summarises these directions and the unit-normalised centres are
    the bases. With at most ``n_basis`` distinct directions, they are the
    bases themselves.

    Parameters
    ----------
    X : ndarray of shape (n_points, n_features)
    triplets : ndarray of shape (n_triplets, 3), int
        Index triplets into ``X``.
    n_basis : int, default=None
        None means ``10 * n_features``.
    random_state : int, RandomState instance or None
    max_points : int, default=None
        k-means runs on at most this many directions (a uniform subsample);
        None means ``5 * n_basis``.

    Returns
    -------
    B : ndarray of shape (n_basis_found, n_features), unit rows.
    """
    rng = check_random_state(random_state)
    n_features = X.shape[1]
    n_basis = 10 * n_features if n_basis is None else int(n_basis)
    pairs, _ = _pair_index(np.vstack([triplets[:, [0, 1]], triplets[:, [0, 2]]]), X.shape[0])
    D = _unit_rows(X[pairs[:, 0]] - X[pairs[:, 1]])
    if D.shape[0] == 0:
        raise ValueError("The triplets have no non-zero difference vectors to build bases from.")
    lead = np.abs(D).argmax(axis=1)
    D *= np.sign(D[np.arange(D.shape[0]), lead])[:, None]
    if D.shape[0] <= n_basis:
        return np.unique(np.round(D, 12), axis=0)
    max_points = 5 * n_basis if max_points is None else max_points
    if D.shape[0] > max_points:
        D = D[rng.choice(D.shape[0], max_points, replace=False)]
    return _unit_rows(_kmeans_centres(D, n_basis, rng))


def _local_lda_directions(Xn, col_class, n_directions, ridge=1e-6):
    """Leading discriminant directions of many neighbourhoods at once.

    ``Xn`` (n_hoods, m, d) holds each neighbourhood's points, the same number
    of each class in every neighbourhood (``col_class`` (m,) gives the class
    of each column). Per neighbourhood: the top generalised eigenvectors
    ``v`` of ``S_b v = lambda S_w v`` ((between, within)-class scatter, the
    within-class one slightly ridged). The between-class scatter is ``S_b =
    A^T A`` with ``A`` the (n_classes, d) weighted centred class means, of
    rank below n_classes, so the problem is solved in the small space: the
    eigenvectors ``u`` of the (n_classes, n_classes) matrix ``A S_w^-1 A^T``
    give ``v = S_w^-1 A^T u`` (the same directions as the d x d problem,
    at the cost of one solve with n_classes right-hand sides). Returns unit
    rows, ``n_directions`` per neighbourhood, neighbourhood by neighbourhood.
    """
    J, m, d = Xn.shape
    _, col_class, counts = np.unique(col_class, return_inverse=True, return_counts=True)
    weights = (col_class[:, None] == np.arange(counts.size)) / counts  # (m, n_classes)
    means = weights.T @ Xn  # (n_hoods, n_classes, d); batched products go to BLAS
    centred = Xn - means[:, col_class]  # C: S_w = C^T C + r I
    A = (means - Xn.mean(axis=1)[:, None]) * np.sqrt(counts)[None, :, None]
    At = np.swapaxes(A, 1, 2)  # (n_hoods, d, n_classes)
    r = ridge * np.maximum(np.einsum("jmd,jmd->j", centred, centred) / d, 1e-12)
    if m < d:
        # Fewer points than features: S_w^-1 A^T by the Woodbury identity,
        # (C^T C + r I)^-1 = (I - C^T (C C^T + r I)^-1 C) / r, an m x m solve.
        G = centred @ np.swapaxes(centred, 1, 2) + r[:, None, None] * np.eye(m)
        SwA = (At - np.swapaxes(centred, 1, 2) @ np.linalg.solve(G, centred @ At))
        SwA /= r[:, None, None]
    else:
        Sw = np.swapaxes(centred, 1, 2) @ centred + r[:, None, None] * np.eye(d)
        SwA = np.linalg.solve(Sw, At)  # S_w^-1 A^T: (n_hoods, d, n_classes)
    K = A @ SwA
    _, U = np.linalg.eigh((K + np.swapaxes(K, 1, 2)) / 2.0)
    U = U[:, :, ::-1][:, :, :n_directions]
    directions = SwA @ U  # (n_hoods, d, n_directions)
    return _unit_rows(np.swapaxes(directions, 1, 2).reshape(J * n_directions, d))


def bases_from_local_lda(X, y, n_basis=None, random_state=None):
    """Bases from linear discriminant analysis in local neighbourhoods.

    As in the SCML paper: k-means centres spread over the data; around each
    centre, the ``k`` nearest members of every class (two scales: ``k`` in
    (10, 20), or (20, 50) with more than 50 features) form a neighbourhood,
    and its leading discriminant directions (up to ``n_classes - 1``, unit
    norm) are bases. ``ceil(n_basis / (2 * n_directions))`` centres are used.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,), int
        Class labels; -1 marks unlabelled samples (ignored).
    n_basis : int, default=None
        None means ``min(20 * n_features, 2 * n_labelled * n_directions - 1)``
        (metric-learn's default).
    random_state : int, RandomState instance or None

    Returns
    -------
    B : ndarray of shape (n_basis_found, n_features), unit rows.
    """
    rng = check_random_state(random_state)
    keep = y >= 0
    X, y = X[keep], y[keep]
    classes = np.unique(y)
    n, d = X.shape
    n_dir = min(classes.size - 1, d)
    if n_dir < 1:
        raise ValueError("LDA bases need at least 2 labelled classes.")
    if n_basis is None:
        n_basis = min(20 * d, 2 * n * n_dir - 1)
    n_centres = min(int(np.ceil(n_basis / (2 * n_dir))), n)
    centres = _kmeans_centres(X, n_centres, rng)
    scales = (20, 50) if d > 50 else (10, 20)
    # Neighbours of every centre in every class, at the larger scale.
    neigh = []
    for c in classes:
        members = np.flatnonzero(y == c)
        k = min(scales[1], members.size)
        idx = NearestNeighbors(n_neighbors=k).fit(X[members]).kneighbors(
            centres, return_distance=False
        )
        neigh.append(members[idx])
    bases = []
    for scale in scales:
        idx = np.hstack([nb[:, : min(scale, nb.shape[1])] for nb in neigh])
        bases.append(_local_lda_directions(X[idx], y[idx[0]], n_dir))
    return np.vstack(bases)[:n_basis]
