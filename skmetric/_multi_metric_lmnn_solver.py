"""Multi-metric LMNN: one linear map per partition, learned jointly.

Weinberger & Saul, JMLR 10:207-244, 2009, section 5.3 ("Multiple metrics").
:mod:`skmetric.multi_metric_lmnn` validates input and calls
:func:`fit_multi_metric_lmnn`; everything here works on plain arrays.

The training points are partitioned (by class or by k-means); partition
``c`` has its own map ``L_c`` and the distance *to* a training point ``j``
is measured with the map of ``j``'s partition::

    d(x, x_j) = ||L_{p(j)} (x - x_j)||^2

(not symmetric between two training points of different partitions). The
objective is LMNN's with these distances, over all maps together::

    f = (1 - mu) * sum_{i, j ~> i} d(x_i, x_j)
        + mu * sum_{i, j ~> i, l: y_l != y_i} h(1 + d(x_i, x_j) - d(x_i, x_l))
        + lam * sum_c ||L_c - A_c||_F^2

where the last term (``lam = regularization``, 0 by default: the paper's
objective) pulls each map towards its initial value ``A_c``.

Gradient: a pair ``(a, b)`` of weight ``w_ab`` (``dloss / dd(a, b)``)
contributes ``2 w_ab L_c (x_a - x_b)(x_a - x_b)^T`` to the gradient in
``L_c``, ``c = p(b)``. Grouping the pairs by ``p(b)``, the sum over a group is
``2 L_c X.T C_c X`` with the graph Laplacian ``C_c = B_c.T diag(w) B_c``
of the group's pairs (``B_c`` the sparse pair-incidence matrix, built once
per active set), evaluated as ``2 (B_c.T (w * (Z_c[a] - Z_c[b]))).T X`` with
``Z_c = X L_c.T``: no d x d matrix and no n x n matrix.

Distances between a block of points and all training points are computed
partition by partition (:class:`PartitionedMaps`), in row blocks: target
selection, the impostor search and k-NN prediction never hold an n x n
matrix.
"""

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from ._lmnn_solver import block_sq_distances, push_loss_value_deriv, row_blocks
from ._neighbors import k_smallest
from ._solver import NO_PROGRESS, SolverResult

__all__ = [
    "PartitionedMaps",
    "local_targets",
    "local_impostors",
    "MultiMetricData",
    "multi_metric_loss_grad",
    "MultiMetricOptions",
    "fit_multi_metric_lmnn",
]

# Fits with n * d * r * n_partitions up to this run with single-threaded BLAS:
# on their small products thread start-up and contention cost more than the
# threads gain (an evaluation on 400 x 64 digits, 10 maps: 1.8 s with the
# default threads on a loaded 2-core machine).
SINGLE_THREAD_WORK = 1 << 30
# L-BFGS runs between impostor searches start with this many iterations.
FIRST_RUN = 4
# First L-BFGS step of a run, as a fraction of one map's norm (halved, down to
# MIN_STEP, after a run that left the region where its active set held).
FIRST_STEP = 0.05
MIN_STEP = 1e-3
# Triplets handled at once when summing the push term (bounds temporaries).
_TRIPLET_BLOCK = 1 << 15


# --------------------------------------------------------------------------
# distances under per-point metrics
# --------------------------------------------------------------------------
class PartitionedMaps:
    """The training points seen through the map of their own partition.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training points.
    partition : ndarray of shape (n_samples,), int in [0, n_partitions)
        Partition of each training point.
    maps : ndarray of shape (n_partitions, n_components, n_features)
        ``L_c`` for each partition.

    Attributes
    ----------
    members : list of ndarray
        Indices of the training points of each partition.
    Z, sq : list of ndarray
        ``X[members[c]] @ maps[c].T`` and its squared row norms.
    """

    def __init__(self, X, partition, maps):
        self.maps = np.asarray(maps, dtype=np.float64)
        self.partition = np.asarray(partition)
        self.n_train = self.partition.size
        self.members = [np.flatnonzero(self.partition == c) for c in range(self.maps.shape[0])]
        self.Z = [X[m] @ L.T for m, L in zip(self.members, self.maps)]
        self.sq = [np.einsum("ij,ij->i", z, z) for z in self.Z]
        # position of each training point inside its partition's arrays
        self.slot = np.empty(self.n_train, dtype=np.intp)
        for m in self.members:
            self.slot[m] = np.arange(m.size)

    def distances(self, Xq, cols=None):
        """``D[q, t] = ||L_{p(j)} (Xq[q] - x_j)||^2`` for ``j = cols[t]``.

        ``cols`` (sorted or not) defaults to every training point. Memory is
        O(len(Xq) * len(cols)); callers pass row blocks.
        """
        if cols is None:
            cols = np.arange(self.n_train)
        D = np.empty((Xq.shape[0], cols.size))
        part = self.partition[cols]
        for c, L in enumerate(self.maps):
            where = np.flatnonzero(part == c)
            if where.size == 0:
                continue
            s = self.slot[cols[where]]
            D[:, where] = block_sq_distances(Xq @ L.T, self.Z[c][s], self.sq[c][s])
        return np.maximum(D, 0.0, out=D)


def local_targets(X, y, maps_view, n_neighbors, chunk_size=None):
    """The ``k`` nearest same-class training points under the per-point metrics.

    ``j`` is ranked by ``d(x_i, x_j)`` measured with ``j``'s map. A class
    with ``m <= k`` members gets ``m - 1`` targets (the rest is -1).

    Returns
    -------
    targets : ndarray of shape (n_samples, n_neighbors), int
    """
    targets = np.full((X.shape[0], n_neighbors), -1, dtype=np.intp)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = min(n_neighbors, idx.size - 1)
        if k < 1:
            continue
        for start, stop in row_blocks(idx.size, idx.size, chunk_size):
            D = maps_view.distances(X[idx[start:stop]], idx)
            D[np.arange(stop - start), np.arange(start, stop)] = np.inf  # not itself
            targets[idx[start:stop], :k] = idx[k_smallest(D, k)[0]]
    return targets


def target_distances(maps_view, X, targets):
    """``d(x_i, x_t)`` for each target ``t`` of ``i`` (-inf where none)."""
    out = np.full(targets.shape, -np.inf)
    rows, slots = np.nonzero(targets >= 0)
    t = targets[rows, slots]
    part = maps_view.partition[t]
    for c, L in enumerate(maps_view.maps):
        sel = np.flatnonzero(part == c)
        diff = (X[rows[sel]] - X[t[sel]]) @ L.T
        out[rows[sel], slots[sel]] = np.einsum("ij,ij->i", diff, diff)
    return out


def local_impostors(X, y, maps_view, radius, chunk_size=None, max_impostors=None, rng=None):
    """Pairs ``(i, l)`` with ``y_l != y_i`` and ``d(x_i, x_l) < radius[i]``.

    Searched class by class in row blocks. Above ``max_impostors`` pairs a
    uniform share is kept per block (in proportion to its rows), with weight
    ``found / kept`` so that the push term stays unbiased; ``rng`` (a
    numpy Generator, seed or None) draws the share.

    Returns
    -------
    imp_i, imp_l : ndarray of int
    weights : ndarray of float or None (None when nothing was subsampled)
    """
    n = X.shape[0]
    rng = np.random.default_rng(rng)
    found_i, found_l, found_w = [], [], []
    subsampled = False
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        cols = np.flatnonzero(y != c)
        for start, stop in row_blocks(rows.size, cols.size, chunk_size):
            r = rows[start:stop]
            hit = maps_view.distances(X[r], cols) < radius[r, None]
            ii, ll = np.nonzero(hit)
            w = np.ones(ii.size)
            if max_impostors is not None:
                quota = max(1, int(np.ceil(max_impostors * r.size / n)))
                if ii.size > quota:
                    keep = np.sort(rng.choice(ii.size, size=quota, replace=False))
                    w = np.full(quota, ii.size / quota)
                    ii, ll = ii[keep], ll[keep]
                    subsampled = True
            found_i.append(r[ii])
            found_l.append(cols[ll])
            found_w.append(w)
    imp_i = np.concatenate(found_i).astype(np.intp)
    imp_l = np.concatenate(found_l).astype(np.intp)
    return imp_i, imp_l, (np.concatenate(found_w) if subsampled else None)


# --------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------
class MultiMetricData:
    """Fixed data of one evaluation: X, partition, targets and impostor pairs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    partition : ndarray of shape (n_samples,), int
        Partition of each training point (whose map measures distances to it).
    n_partitions : int
    targets : ndarray of shape (n_samples, k), int (-1 = none)
    imp_i, imp_l : ndarray of shape (n_pairs,), int
        Impostor pairs: ``l`` is a candidate impostor of ``i``.
    push_weight : float
        ``mu``.
    push_loss : {'smooth_hinge', 'hinge', 'squared_hinge'}
    imp_weights : ndarray of shape (n_pairs,) or None
        Weights of the impostor pairs (subsampling), default 1.
    regularization : float, default=0
        ``lam``: the objective gains ``lam * sum_c ||L_c - A_c||_F^2``.
    anchor : ndarray of shape (n_partitions, n_components, n_features) or None
        ``A``, the maps the regulariser pulls towards (required when
        ``regularization > 0``).
    """

    def __init__(self, X, partition, n_partitions, targets, imp_i, imp_l,
                 push_weight=0.5, push_loss="smooth_hinge", imp_weights=None,
                 regularization=0.0, anchor=None):
        self.X = X
        self.regularization = float(regularization)
        self.anchor = anchor
        self.partition = np.asarray(partition)
        self.n_partitions = int(n_partitions)
        self.targets = targets
        self.has_target = targets >= 0
        self.t_rows, self.t_slots = np.nonzero(self.has_target)
        self.imp_i = np.asarray(imp_i, dtype=np.intp)
        self.imp_l = np.asarray(imp_l, dtype=np.intp)
        self.imp_w = None if imp_weights is None else np.asarray(imp_weights, dtype=float)
        self.push_weight = float(push_weight)
        self.push_loss = push_loss
        # All pairs (a, b): target pairs first, then impostor pairs, and for
        # each partition c the pairs whose second point b lies in c.
        self.a = np.concatenate([self.t_rows, self.imp_i])
        self.b = np.concatenate([targets[self.has_target], self.imp_l])
        group = self.partition[self.b]
        self.groups = [np.flatnonzero(group == c) for c in range(self.n_partitions)]
        # Per group, the transposed incidence matrix B.T (n x pairs) with +1
        # at (a, p) and -1 at (b, p): B Z = Z[a] - Z[b], and the Laplacian
        # of the group's weights is C = B.T diag(w) B.
        n = X.shape[0]
        self.incidence_t = []
        for sel in self.groups:
            p = np.arange(sel.size)
            self.incidence_t.append(sparse.csr_matrix(
                (np.repeat([1.0, -1.0], sel.size),
                 (np.concatenate([self.a[sel], self.b[sel]]), np.concatenate([p, p]))),
                shape=(n, sel.size)))

    @property
    def n_impostor_pairs(self):
        return self.imp_i.size


def _pair_weights(d, data):
    """Loss, ``dloss / dd`` of every pair and the number of violated triplets."""
    mu, n_t, k = data.push_weight, data.t_rows.size, data.targets.shape[1]
    d_target = np.full(data.targets.shape, -np.inf)  # -inf: no target, no margin
    d_target[data.t_rows, data.t_slots] = d[:n_t]
    d_imp = d[n_t:]
    w_target = np.full(data.targets.shape, 1.0 - mu)
    w_imp = np.empty(d_imp.size)
    push, n_violated = 0.0, 0
    for s in range(0, d_imp.size, _TRIPLET_BLOCK):
        i = data.imp_i[s:s + _TRIPLET_BLOCK]
        margin = 1.0 + d_target[i] - d_imp[s:s + _TRIPLET_BLOCK, None]
        value, slope = push_loss_value_deriv(margin, data.push_loss)
        n_violated += int(np.count_nonzero(margin > 0))
        if data.imp_w is not None:
            pw = data.imp_w[s:s + _TRIPLET_BLOCK, None]
            value, slope = value * pw, slope * pw
        push += value.sum()
        w_imp[s:s + _TRIPLET_BLOCK] = -mu * slope.sum(axis=1)
        # the push term grows with the target distance d(i, j) of each slot j
        slot = (i[:, None] * k + np.arange(k)).ravel()
        w_target += mu * np.bincount(slot, weights=slope.ravel(),
                                     minlength=w_target.size).reshape(w_target.shape)
    pull = d[:n_t].sum()
    w = np.concatenate([w_target[data.t_rows, data.t_slots], w_imp])
    return (1.0 - mu) * pull + mu * push, w, n_violated


def multi_metric_evaluate(maps, data):
    """Loss, gradient (same shape as ``maps``) and violated triplets.

    Parameters
    ----------
    maps : ndarray of shape (n_partitions, n_components, n_features)
    data : MultiMetricData
    """
    X = data.X
    diffs = []  # per group: Z_c[a] - Z_c[b] = B (X L_c.T)
    d = np.empty(data.a.size)
    for L, sel in zip(maps, data.groups):
        if sel.size == 0:
            diffs.append(None)
            continue
        Z = X @ L.T
        diff = Z[data.a[sel]] - Z[data.b[sel]]
        d[sel] = np.einsum("ij,ij->i", diff, diff)
        diffs.append(diff)
    loss, w, n_violated = _pair_weights(d, data)
    grad = np.zeros_like(maps)
    for c, sel in enumerate(data.groups):
        if sel.size:
            # C Z = B.T diag(w) B Z; the gradient 2 L_c X.T C X = 2 (C Z).T X
            CZ = data.incidence_t[c] @ (w[sel, None] * diffs[c])
            grad[c] = 2.0 * (CZ.T @ X)
    if data.regularization > 0:
        away = maps - data.anchor
        loss += data.regularization * np.vdot(away, away)
        grad += 2.0 * data.regularization * away
    return float(loss), grad, n_violated


def multi_metric_loss_grad(params, data, n_components):
    """Multi-metric LMNN loss and gradient in the stacked maps (flattened).

    Parameters
    ----------
    params : ndarray of shape (n_partitions * n_components * n_features,)
        The maps ``L_c`` stacked, row-major.
    data : MultiMetricData
    n_components : int

    Returns
    -------
    loss : float
    grad : ndarray of the shape of ``params``
    """
    maps = params.reshape(data.n_partitions, n_components, data.X.shape[1])
    loss, grad, _ = multi_metric_evaluate(maps, data)
    return loss, grad.ravel()


# --------------------------------------------------------------------------
# the solver
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class MultiMetricOptions:
    """Settings of one multi-metric fit (see :class:`skmetric.MultiMetricLMNN`)."""

    push_weight: float = 0.5
    push_loss: str = "smooth_hinge"
    max_iter: int = 1000
    tol: float = 1e-5
    refresh: int = 25
    max_impostors: int = 1_000_000
    chunk_size: Any = None
    rescale: bool = True
    regularization: float = 0.0
    random_state: Any = None


def initial_scale(X, y, view, targets, push_weight, push_loss, chunk_size=None,
                  max_impostors=None, rng=None):
    """The factor ``c`` for which ``c * L_c`` (all maps) has the lowest loss.

    Scaling every map by ``c`` scales every distance by ``s = c**2``; with
    the impostors within ``max_j d(i, j) + 64`` the loss is exact for every
    ``s >= 1/64``, so ``s`` is picked on a log grid over [1/64, 64].
    """
    mu = push_weight
    d_t = target_distances(view, X, targets)
    radius = d_t.max(axis=1) + 64.0
    imp_i, imp_l, w = local_impostors(X, y, view, radius, chunk_size, max_impostors, rng)
    d_il = np.empty(imp_i.size)
    part = view.partition[imp_l]
    for c, L in enumerate(view.maps):
        sel = np.flatnonzero(part == c)
        diff = (X[imp_i[sel]] - X[imp_l[sel]]) @ L.T
        d_il[sel] = np.einsum("ij,ij->i", diff, diff)
    excess = d_t[imp_i] - d_il[:, None]  # margin is 1 + s * excess
    pull = d_t[targets >= 0].sum()
    grid = np.geomspace(1.0 / 64, 64.0, 49)
    losses = []
    for s in grid:
        value = push_loss_value_deriv(1.0 + s * excess, push_loss)[0]
        if w is not None:
            value = value * w[:, None]
        losses.append((1.0 - mu) * s * pull + mu * value.sum())
    return float(np.sqrt(grid[int(np.argmin(losses))]))


class _MultiMetricFit:
    """State of one fit: the data, the impostor pool, the step scale and the iteration count.

    The active set is the *pool* of every impostor pair found by any search
    so far (JMLR 2009, section 5.2 keeps every pair ever active), as long as
    it holds at most ``max_impostors`` pairs; a larger pool restarts from
    the latest search. With many maps, one L-BFGS run can move far enough
    to bring in impostors the latest search did not see; the pool keeps
    those it has met once.
    """

    def __init__(self, X, y, partition, targets, n_partitions, options, progress):
        self.X, self.y, self.partition, self.targets = X, y, partition, targets
        self.n_partitions = n_partitions
        self.options = options
        self.progress = progress
        self.rng = np.random.default_rng(options.random_state)
        self.n_iter = 0
        self.pool = np.empty(0, dtype=np.int64)  # keys i * n + l of the pooled pairs
        self.anchor = None  # the (rescaled) initial maps, for the regulariser
        # first L-BFGS step, as a fraction of the norm of one map
        self.step = FIRST_STEP

    def search(self, maps, pool=True):
        """Search the impostors at ``maps``; return the active set and the true loss there.

        With ``pool`` the new pairs join the pool (unless subsampled).
        """
        opt, n = self.options, self.X.shape[0]
        view = PartitionedMaps(self.X, self.partition, maps)
        radius = target_distances(view, self.X, self.targets).max(axis=1) + 1.0
        imp_i, imp_l, w = local_impostors(self.X, self.y, view, radius, opt.chunk_size,
                                          opt.max_impostors, self.rng)
        if w is not None:  # subsampled: the sample is the active set, no pool
            self.pool = None
            data = self._data(imp_i, imp_l, w)
        else:
            keys = imp_i.astype(np.int64) * n + imp_l
            if pool and self.pool is not None:
                merged = np.union1d(self.pool, keys)
                keys = merged if merged.size <= opt.max_impostors else keys
            self.pool = keys
            data = self.pooled_data()
        return data, multi_metric_evaluate(maps, data)[0]

    def _data(self, imp_i, imp_l, weights=None):
        opt = self.options
        return MultiMetricData(self.X, self.partition, self.n_partitions, self.targets,
                               imp_i, imp_l, opt.push_weight, opt.push_loss, weights,
                               opt.regularization, self.anchor)

    def pooled_data(self):
        """The active set of the pooled pairs."""
        n = self.X.shape[0]
        return self._data(self.pool // n, self.pool % n)

    def lbfgs(self, maps, data, max_iter):
        """L-BFGS on the active set, in the variable ``maps / alpha``.

        scipy's first step has unit norm; with ``alpha`` a fraction
        ``self.step`` of the norm of one map, that step stays in the region
        where the active set holds.
        """
        shape = maps.shape
        alpha = self.step * max(np.linalg.norm(maps) / np.sqrt(shape[0]), 1e-12)
        last = {}

        def objective(x):
            loss, grad, n_violated = multi_metric_evaluate(alpha * x.reshape(shape), data)
            last["violated"] = n_violated
            return loss, alpha * grad.ravel()

        def callback(intermediate_result):
            self.n_iter += 1
            self.progress.iter(self.n_iter, intermediate_result.fun,
                               violated=last.get("violated", 0))

        res = minimize(objective, maps.ravel() / alpha, jac=True, method="L-BFGS-B",
                       callback=callback,
                       options={"maxiter": max_iter, "ftol": self.options.tol,
                                "gtol": 1e-12, "maxls": 30})
        # status 1 is the iteration limit; 0 converged; 2 the line search
        # stalled (a stationary point in practice)
        return alpha * res.x.reshape(shape), float(res.fun), int(res.nit), res.status != 1

    def fit(self, maps):
        opt = self.options
        maps = np.array(maps, dtype=np.float64)
        if opt.rescale:
            view = PartitionedMaps(self.X, self.partition, maps)
            scale = initial_scale(self.X, self.y, view, self.targets, opt.push_weight,
                                  opt.push_loss, opt.chunk_size, opt.max_impostors, self.rng)
            maps *= scale
            self.progress.say(f"initial maps rescaled by {scale:.4g}")
        self.anchor = maps.copy()
        data, loss = self.search(maps)
        self.progress.say(f"{data.t_rows.size} target pairs, {data.n_impostor_pairs} "
                          f"candidate impostor pairs, loss {loss:.6e}")
        # Runs start short and double up to ``refresh`` iterations; a run
        # that raises the true loss by half is undone, and the next one is
        # shorter and starts with a smaller step.
        steps = min(FIRST_RUN, opt.refresh)
        while self.n_iter < opt.max_iter:
            start = self.n_iter
            new_maps, run_loss, nit, run_converged = self.lbfgs(
                maps, data, min(steps, opt.max_iter - self.n_iter))
            self.n_iter = max(self.n_iter, start + max(nit, 1))
            new_data, new_loss = self.search(new_maps)
            if new_loss > 1.5 * loss and (steps > 1 or self.step > MIN_STEP):
                steps, self.step = max(1, steps // 2), max(MIN_STEP, self.step / 2)
                if self.pool is not None:  # retry with the impostors just met
                    data = self.pooled_data()
                self.progress.say(f"run undone (true loss {new_loss:.6e}); next run <= "
                                  f"{steps} iterations, first step {self.step:.3g}")
                continue
            missed = new_loss > run_loss + opt.tol * abs(run_loss) + 1e-12
            decrease = (loss - new_loss) / max(abs(loss), 1e-300)
            maps, data, loss = new_maps, new_data, new_loss
            self.progress.say(f"impostor search: {data.n_impostor_pairs} pairs in the active "
                              f"set, loss {loss:.6e}")
            if run_converged and not missed:
                return self._result(maps, loss, True, "L-BFGS converged and a fresh "
                                    "impostor search found no new violation")
            if 0 <= decrease <= 1e-2 * opt.tol:
                return self._result(maps, loss, True, f"the loss stalled (relative decrease "
                                    f"{decrease:.2g} between impostor searches)")
            steps = min(2 * steps, opt.refresh)
        return self._result(maps, loss, False, f"reached max_iter={opt.max_iter} iterations")

    def _result(self, maps, loss, converged, message):
        return SolverResult(components=maps.reshape(-1, maps.shape[2]), loss=loss,
                            n_iter=self.n_iter, converged=converged, message=message,
                            info={"maps": maps, "targets": self.targets})


def fit_multi_metric_lmnn(X, y, partition, maps0, targets, options=None, progress=None,
                          **changes):
    """Fit one map per partition jointly (multi-metric LMNN).

    The solver runs L-BFGS for a few iterations (4, doubling up to
    ``refresh``) on the active impostor set, searches the impostors again
    (the new set joined with the previous one), and stops when L-BFGS has
    converged and the search found no violation it had missed, when the
    true loss no longer decreases between searches, or at ``max_iter``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int
        Encoded class labels.
    partition : ndarray of shape (n_samples,), int in [0, n_partitions)
    maps0 : ndarray of shape (n_partitions, n_components, n_features)
        Initial maps (rescaled by a line search first when
        ``options.rescale``).
    targets : ndarray of shape (n_samples, k), int
        Target neighbours (-1 = none), fixed during the fit.
    options : MultiMetricOptions, default=None
    progress : skmetric._solver.Progress, default=None
    **changes
        Fields of ``options`` to replace.

    Returns
    -------
    result : SolverResult
        ``components`` holds the maps stacked vertically (shape
        ``(n_partitions * n_components, n_features)``); ``info["maps"]`` the
        same as (n_partitions, n_components, n_features); ``loss`` is the true
        objective (all impostors re-checked).
    """
    options = replace(options or MultiMetricOptions(), **changes)
    maps0 = np.asarray(maps0, dtype=np.float64)
    fit = _MultiMetricFit(X, y, partition, targets, maps0.shape[0], options,
                          progress or NO_PROGRESS)
    small = X.shape[0] * maps0.size <= SINGLE_THREAD_WORK
    with threadpool_limits(limits=1 if small else None, user_api="blas"):
        return fit.fit(maps0)
