"""LMNN objective and solver (Weinberger & Saul, NIPS 2005 / JMLR 2009).

Everything here works on plain arrays; :mod:`skmetric.lmnn` validates input
and calls :func:`fit_lmnn`.

Objective, for the linear map ``L`` (or the matrix ``M = L.T @ L``)::

    f = (1 - mu) * sum_{i, j ~> i} d(i, j)
        + mu * sum_{i, j ~> i, l: y_l != y_i} h(1 + d(i, j) - d(i, l))

with ``d(a, b) = ||L (x_a - x_b)||^2``, ``j ~> i`` the target neighbours of
``i`` and ``h`` the push loss (hinge, smoothed hinge or squared hinge).

Book-keeping (JMLR 2009, section 5.2): the impostor pairs ``(i, l)`` within
``max_j d(i, j) + 1`` of ``i`` are searched in row blocks (never an n x n
matrix) and kept as an *active set*; the solver runs a few iterations on the
active set, then all candidates are re-checked (the active set is the union
of the last two searches). The gradient is accumulated sparsely: with pair
weights ``w_ab`` (a sparse n x n matrix ``W``),
``sum_ab w_ab (x_a - x_b)(x_a - x_b)^T = X.T @ C @ X`` with the Laplacian
``C = diag(W 1 + W.T 1) - W - W.T``; the gradient in ``L`` is computed as
``2 (C Z).T X`` with ``Z = X L.T`` (no d x d matrix).
"""

import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from scipy.linalg.blas import dsyrk
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import ThreadpoolController

from ._neighbors import k_smallest
from ._psd import psd_project
from ._solver import NO_PROGRESS, SolverResult

__all__ = [
    "PUSH_LOSSES",
    "select_targets",
    "find_impostors",
    "LMNNData",
    "Evaluation",
    "evaluate_map",
    "evaluate_metric",
    "lmnn_loss_grad",
    "lmnn_loss_grad_metric",
    "lmnn_energy",
    "target_sq_distances",
    "blas_threads",
    "check_memory",
    "single_threaded_blas",
    "LMNNOptions",
    "fit_lmnn",
    "lmnn_ops",
]

PUSH_LOSSES = ("hinge", "smooth_hinge", "squared_hinge")
# Width of the quadratic part of the smoothed hinge, in units of the margin (1).
SMOOTH_WIDTH = 0.5
# Solver iterations before the first re-check of the impostors (then doubling).
FIRST_RUN = 4
# Large problems (n >= LARGE_N): the impostor search of all n**2 pairs is the
# cost (about 10**10 pair scores at n = 100,000), so
# * the fit starts from a fit on a random subsample of SUBSAMPLE_FRACTION of
#   the points (at least LARGE_N // 2), with the full problem's objective;
# * an exhaustive search keeps the candidate pairs within CANDIDATE_SLACK
#   times each squared radius (the *reference*, at the map L_ref), and the
#   searches between runs re-check only those for the rows where a bound
#   certifies that no other pair can have entered the radius since
#   (:class:`CandidateReference`); the other rows are searched exactly,
#   all of them again (a new reference) when more than REFERENCE_FRACTION
#   of the rows fail the bound. Every search is exact.
LARGE_N = 30_000
SUBSAMPLE_FRACTION = 0.2
CANDIDATE_SLACK = 1.5
REFERENCE_FRACTION = 0.3
# The candidate list holds at most this many times max_impostors pairs.
CANDIDATE_CAP = 10
# Largest step of one L-BFGS iteration, relative to ||L||: the active set is
# only valid near the point where it was searched (halved after a rejected run).
MAX_STEP = 0.25
# Products of at least this many flops use the caller's BLAS threads; the rest
# of a fit (L-BFGS's own linear algebra included) runs single-threaded.
PARALLEL_FLOPS = 1 << 28
# A gathered pair costs about as much as this many GEMM entries (measured).
GRAM_RATIO = 100
# Pairs processed at once when gathering pair differences (memory bound).
_PAIR_BLOCK = 1 << 16


# --------------------------------------------------------------------------
# BLAS threads
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _blas_controller():
    return ThreadpoolController()


def blas_threads():
    """The BLAS thread count in effect now (the caller's setting)."""
    info = [lib["num_threads"] for lib in _blas_controller().info()
            if lib["user_api"] == "blas"]
    return max(info, default=1)


def _product_threads(flops, threads):
    """Context running BLAS with ``threads`` threads when ``flops`` is large.

    A fit runs single-threaded (threads cost more than they gain on small
    products, and on a busy machine multi-threaded OpenBLAS made L-BFGS-B's
    own updates up to 50x slower); only products of at least
    ``PARALLEL_FLOPS`` get the caller's threads back.
    """
    if threads is None or threads <= 1 or flops < PARALLEL_FLOPS:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=int(threads), user_api="blas")


def _project(X, L, threads):
    """``X @ L.T`` (row blocks in ``threads`` Python threads when large, see
    :func:`_gram_product`)."""
    n = X.shape[0]
    if threads is None or threads <= 1 or 2 * n * X.shape[1] * L.shape[0] < PARALLEL_FLOPS:
        return X @ L.T
    out = np.empty((n, L.shape[0]))
    bounds = np.linspace(0, n, int(threads) + 1).astype(int)

    def block(k):
        np.matmul(X[bounds[k]:bounds[k + 1]], L.T, out=out[bounds[k]:bounds[k + 1]])

    with ThreadPoolExecutor(max_workers=int(threads)) as pool:
        list(pool.map(block, range(int(threads))))
    return out


def single_threaded_blas():
    """Context running BLAS single-threaded (as an LMNN fit does)."""
    return _blas_controller().limit(limits=1, user_api="blas")


# --------------------------------------------------------------------------
# where the array work runs
# --------------------------------------------------------------------------
class _NumpyOps:
    """The array work of a fit on the host: this module's functions.

    :class:`skmetric._lmnn_torch.TorchOps` is the torch twin (same methods);
    :func:`lmnn_ops` picks one. ``threads``: BLAS threads of large products.
    """

    def __init__(self, threads=None):
        self.threads = threads

    def asarray(self, X):
        return X

    def single_threaded(self):
        return contextlib.nullcontext()  # BLAS: single_threaded_blas()

    def project(self, X, L):
        return _project(X, L, self.threads)

    def select_targets(self, Z, y, n_neighbors):
        return select_targets(Z, y, n_neighbors)

    def target_sq_distances(self, Z, targets):
        return target_sq_distances(Z, targets)

    def pair_sq_distances(self, Z, a, b):
        return pair_sq_distances(Z, a, b)

    def find_impostors(self, Z, y, radius, chunk_size=None, max_impostors=None,
                       random_state=None, **kwargs):
        return find_impostors(Z, y, radius, chunk_size, max_impostors, random_state,
                              threads=self.threads, **kwargs)

    def data(self, X, targets, imp_i, imp_l, push_weight=0.5, push_loss="smooth_hinge",
             imp_weights=None):
        return LMNNData(X, targets, imp_i, imp_l, push_weight, push_loss, imp_weights,
                        threads=self.threads)


def lmnn_ops(device=None, threads=None):
    """The array work of a fit: on the host (``device=None``) or with torch on ``device``.

    ``device`` is a device string or a :class:`skmetric._backend.Backend`
    (checked by :func:`skmetric._backend.get_backend`: ImportError without
    torch, ValueError for a bad string or a missing GPU).
    """
    if device is None or getattr(device, "is_numpy", False):
        return _NumpyOps(threads)
    from ._lmnn_torch import TorchOps

    return TorchOps(device)


# --------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------
def available_memory():
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_estimate(n_samples, n_features, n_components, n_neighbors, max_impostors):
    """Rough peak bytes of an LMNN fit.

    The float64 copy of X; about six n x n_components arrays (projection,
    Laplacian product, search copies); target pairs; the impostor pairs of two
    searches with their per-evaluation temporaries (about 200 bytes a pair);
    the search blocks (3 x 32 MiB); for large problems the candidate list
    (at most ``CANDIDATE_CAP * max_impostors`` pairs, about 24 bytes each with
    their distances) and the bound's per-sample norms.
    """
    n_pairs = min(max_impostors, n_samples * n_samples)
    need = (8 * n_samples * n_features
            + 6 * 8 * n_samples * n_components
            + 64 * n_samples * n_neighbors
            + 200 * n_pairs
            + 3 * (1 << 25))
    if n_samples >= LARGE_N:
        need += (24 * min(CANDIDATE_CAP * max_impostors, n_samples * n_samples)
                 + 8 * n_samples * (n_components + 8))
    return int(need)


def check_memory(n_samples, n_features, n_components, n_neighbors, max_impostors):
    """Raise MemoryError, before any allocation, when a fit cannot fit in memory."""
    need = memory_estimate(n_samples, n_features, n_components, n_neighbors, max_impostors)
    avail = available_memory()
    if avail is not None and need > avail:
        raise MemoryError(
            f"LMNN on {n_samples} samples x {n_features} features (n_components="
            f"{n_components}, max_impostors={max_impostors}) needs about "
            f"{need / 2**30:.1f} GiB, but only {avail / 2**30:.1f} GiB of memory are "
            "available; lower n_components or max_impostors, or fit on fewer samples."
        )


# --------------------------------------------------------------------------
# push loss
# --------------------------------------------------------------------------
def push_loss_value_deriv(z, kind):
    """Value and derivative of the push loss ``h`` at margins ``z`` (same shape)."""
    if kind == "hinge":
        return np.maximum(z, 0.0), (z > 0).astype(z.dtype)
    if kind == "squared_hinge":
        zp = np.maximum(z, 0.0)
        return zp * zp, 2.0 * zp
    if kind == "smooth_hinge":
        s = SMOOTH_WIDTH
        zp = np.clip(z, 0.0, s)
        # Quadratic on [0, s], linear beyond with slope 1 (C^1, Huber-like).
        value = np.where(z >= s, z - s / 2.0, zp * zp / (2.0 * s))
        return value, zp / s
    raise ValueError(f"Unknown push loss {kind!r}; expected one of {PUSH_LOSSES}.")


# --------------------------------------------------------------------------
# target neighbours and impostors
# --------------------------------------------------------------------------
def select_targets(Z, y, n_neighbors):
    """The ``k`` nearest same-class points of each sample (Euclidean in ``Z``).

    Searched class by class with scikit-learn's NearestNeighbors (chunked, no
    n x n matrix). A class with ``m <= k`` members gets ``m - 1`` targets.

    Returns
    -------
    targets : ndarray of shape (n_samples, n_neighbors), int
        Target indices; -1 marks a missing target (small class).
    """
    n = Z.shape[0]
    targets = np.full((n, n_neighbors), -1, dtype=np.intp)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k_c = min(n_neighbors, idx.size - 1)
        if k_c < 1:
            continue
        nn = NearestNeighbors(n_neighbors=k_c).fit(Z[idx])
        # kneighbors() without X excludes each point itself (duplicates kept).
        neigh = nn.kneighbors(return_distance=False)
        targets[idx, :k_c] = idx[neigh]
    return targets


def row_blocks(n_rows, n_cols, chunk_size):
    """(start, stop) row blocks of at most ``chunk_size`` rows.

    ``chunk_size=None`` chooses blocks of about 2**22 distances (32 MiB).
    """
    if chunk_size is None:
        chunk_size = max(1, (1 << 22) // max(n_cols, 1))
    chunk_size = int(max(1, chunk_size))
    for start in range(0, n_rows, chunk_size):
        yield start, min(start + chunk_size, n_rows)


def block_sq_distances(Za, Zb, sq_b):
    """Squared Euclidean distances between rows of ``Za`` and ``Zb`` (a block)."""
    D = Za @ Zb.T
    D *= -2.0
    D += np.einsum("ij,ij->i", Za, Za)[:, None]
    D += sq_b[None, :]
    return D


def block_scores(Za_aug, Zb_aug):
    """One block of ``2 z_i . z_l - |z_l|^2`` (rows ``[2 z_i, -1]``, ``[z_l, |z_l|^2]``)."""
    return Za_aug @ Zb_aug.T


def find_impostors(Z, y, radius, chunk_size=None, max_impostors=None, random_state=None,
                   rows=None, return_distances=False, threads=None):
    """Impostor pairs ``(i, l)``: ``y_l != y_i`` and ``d(i, l) < radius[i]``.

    ``radius[i] = max_j d(i, j) + 1`` (squared distances) gives every pair
    that can violate a margin. Rows are processed in blocks of ``chunk_size``
    so memory is O(chunk_size * n). The search runs in float32 (it only
    selects candidates; the objective recomputes distances in float64), with
    a small slack so no candidate is lost to rounding.

    When more than ``max_impostors`` pairs are found in all, each block
    keeps a uniform random share proportional to its rows, and the kept
    pairs get weight ``found / kept`` so the push term stays an unbiased
    estimate (below the cap nothing is subsampled, however the pairs are
    spread over the blocks).

    ``rows`` restricts the search to impostors of those samples (default all);
    ``return_distances`` also returns the (float32) squared distances;
    ``threads`` BLAS threads for large blocks (None: as set by the caller).

    Returns
    -------
    imp_i, imp_l : ndarray of int32
    weights : ndarray of float64 or None (None when nothing was subsampled).
    """
    n = Z.shape[0]
    Z32 = np.ascontiguousarray(Z, dtype=np.float32)
    sq = np.einsum("ij,ij->i", Z32, Z32)
    thr = (radius * (1.0 + 1e-4) + 1e-4).astype(np.float32)
    # d(i, l) < thr_i  <=>  2 z_i.z_l - |z_l|^2 > |z_i|^2 - thr_i: one GEMM on
    # augmented rows and a single comparison per entry.
    Za = np.hstack([2.0 * Z32, -np.ones((n, 1), np.float32)])
    Zb = np.hstack([Z32, sq[:, None]])
    rng = np.random.default_rng(random_state)
    rows = np.arange(n) if rows is None else np.asarray(rows)

    def block_pairs(r, cols, Zb_c, block_threads):
        with _product_threads(2 * r.size * Zb_c.shape[0] * Zb_c.shape[1], block_threads):
            S = block_scores(Za[r], Zb_c)
        bound = sq[r] - thr[r]
        # flatnonzero on the raveled mask is much faster than 2-D nonzero.
        ii, ll = np.divmod(np.flatnonzero(S > bound[:, None]), S.shape[1])
        dd = (sq[r][ii] - S[ii, ll]) if return_distances else None
        return r[ii].astype(np.int32), cols[ll].astype(np.int32), dd

    blocks = []  # (rows, cols, Zb_c) in a fixed order
    for c in np.unique(y[rows]):
        rows_c = rows[y[rows] == c]
        cols = np.flatnonzero(y != c)  # impostor candidates: other classes only
        Zb_c = Zb[cols]
        blocks += [(rows_c[start:stop], cols, Zb_c)
                   for start, stop in row_blocks(rows_c.size, cols.size, chunk_size)]
    workers = int(threads) if threads is not None and threads > 1 and len(blocks) > 1 else 1
    if workers > 1:
        # Blocks in parallel, each single-threaded: the comparison and the
        # extraction of the hits (as costly as the product) run on every core.
        pool = ThreadPoolExecutor(max_workers=workers)
        results = pool.map(lambda b: block_pairs(*b, None), blocks)
    else:
        pool, results = None, (block_pairs(*b, threads) for b in blocks)
    out_r, out_i, out_l, out_w, out_d = [], [], [], [], []
    sampled = False

    def subsample(j):
        """Keep block ``j``'s proportional share of ``max_impostors`` (re-weighted)."""
        quota = max(1, int(np.ceil(max_impostors * out_r[j] / rows.size)))
        if out_i[j].size > quota:
            keep = np.sort(rng.choice(out_i[j].size, size=quota, replace=False))
            out_w[j] = np.full(quota, out_i[j].size / quota)
            out_i[j], out_l[j] = out_i[j][keep], out_l[j][keep]
            out_d[j] = out_d[j][keep] if return_distances else None
            return True
        return False

    total = 0
    try:
        for (r, _, _), (ii, ll, dd) in zip(blocks, results):
            out_r.append(r.size)
            out_i.append(ii)
            out_l.append(ll)
            out_w.append(ii.size)
            out_d.append(dd)
            total += ii.size
            if max_impostors is None:
                continue
            if not sampled and total > max_impostors:
                # Over the cap: from now on each block keeps its share, and
                # so do the blocks before.
                sampled = True
                for j in range(len(out_i) - 1):
                    subsample(j)
            if sampled:
                subsample(len(out_i) - 1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if sampled:
        out_w = [np.ones(w) if isinstance(w, int) else w for w in out_w]
    imp_i = np.concatenate(out_i) if out_i else np.empty(0, np.int32)
    imp_l = np.concatenate(out_l) if out_l else np.empty(0, np.int32)
    weights = np.concatenate(out_w) if sampled else None
    if return_distances:
        d = np.concatenate(out_d).astype(np.float64) if out_d else np.empty(0)
        return imp_i, imp_l, weights, d
    return imp_i, imp_l, weights


# --------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------
class LMNNData:
    """Fixed data of one objective: X, target neighbours and active impostors.

    The sparsity pattern of the pair-weight matrix ``W`` (target pairs then
    impostor pairs) is built once here; each evaluation only fills in values.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    targets : ndarray of shape (n_samples, k), int (-1 = none)
    imp_i, imp_l : ndarray of shape (n_pairs,), int
        Active impostor pairs.
    push_weight : float
        ``mu`` in the objective.
    push_loss : {'hinge', 'smooth_hinge', 'squared_hinge'}
    imp_weights : ndarray of shape (n_pairs,) or None
        Per-pair weights of the push term (subsampling), default 1.
    threads : int or None, default=None
        BLAS threads for the large products of an evaluation (None: as set
        by the caller).
    """

    def __init__(self, X, targets, imp_i, imp_l, push_weight=0.5,
                 push_loss="smooth_hinge", imp_weights=None, threads=None):
        self.X = X
        self.n = X.shape[0]
        self.targets = targets
        self.k = targets.shape[1]
        self.valid = targets >= 0
        self.ta = np.repeat(np.arange(self.n), self.k)[self.valid.ravel()]
        self.tb = targets[self.valid]
        self.imp_i = np.asarray(imp_i, dtype=np.intp)
        self.imp_l = np.asarray(imp_l, dtype=np.intp)
        self.imp_w = None if imp_weights is None else np.asarray(imp_weights, float)
        self.threads = threads
        self.push_weight = float(push_weight)
        self.push_loss = push_loss
        a = np.concatenate([self.ta, self.imp_i])
        b = np.concatenate([self.tb, self.imp_l])
        self._a, self._b = a, b
        # CSR pattern of the Laplacian C = diag(W 1 + W.T 1) - W - W.T: entries
        # (a, b), (b, a) for each pair, then the diagonal (duplicates add up in
        # a CSR product), so C @ V is one sparse product per evaluation.
        rows = np.concatenate([a, b, np.arange(self.n)])
        cols = np.concatenate([b, a, np.arange(self.n)])
        self._order = np.argsort(rows, kind="stable")
        self._indices = cols[self._order].astype(np.int32)
        self._indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=self.n))))

    @property
    def n_impostor_pairs(self):
        return self.imp_i.size

    def evaluate(self, sqdist):
        """Loss and ``G = sum_ab w_ab (x_a-x_b)(x_a-x_b)^T`` (d x d).

        ``sqdist(a, b)`` returns the current squared distances of all the
        pairs ``(a[p], b[p])``. Returns (loss, G, n_active) where
        ``n_active`` counts violated triplets (positive margin).
        """
        loss, w, n_active = self.pair_weights(sqdist)
        return loss, self._weighted_scatter(w), n_active

    def project(self, L):
        """``Z = X @ L.T`` (the line search moves along ``Z + t X p.T``)."""
        return _project(self.X, L, self.threads)

    def loss_at_projection(self, Z):
        """The loss alone at the projection ``Z`` (no gradient products)."""
        return _loss_at_projection(Z, self)

    def evaluate_projection(self, Z):
        """Loss, gradient in ``L`` and active triplets at the projection ``Z = X L^T``."""
        return _evaluate_projection(Z, self)

    def evaluate_metric(self, M):
        """Loss, gradient in ``M`` and active triplets at ``M`` (see :func:`evaluate_metric`)."""
        X = self.X
        Y = X @ M.T
        loss, G, n_active = self.evaluate(lambda a, b: _blocked_pairs(
            lambda a, b: np.einsum("ij,ij->i", X[a] - X[b], Y[a] - Y[b]), a, b))
        return Evaluation(loss, G, n_active)

    def evaluate_projected(self, sqdist, Z):
        """Loss and ``C @ Z`` with ``C = diag(W 1 + W.T 1) - W - W.T``.

        ``G = X.T C X``, so the gradient in ``L`` is ``2 L G = 2 (C Z).T X``
        with ``Z = X L.T``: two n x r x d products per evaluation and no
        d x d matrix (cheaper when d is large or ``n_components < d``).
        """
        loss, w, n_active = self.pair_weights(sqdist)
        return loss, self._laplacian_times(w, Z), n_active

    def pair_weights(self, sqdist):
        """Loss and the weight ``w_ab`` of each pair (targets, then impostors)."""
        mu = self.push_weight
        d_t = np.full((self.n, self.k), -np.inf)
        # One call for all pairs (one Gram pass when the pairs are dense).
        d_all = sqdist(self._a, self._b)
        d_t[self.valid] = d_all[:self.ta.size]
        pull = d_t[self.valid].sum()
        w_t = np.full((self.n, self.k), 1.0 - mu)
        n_active = 0
        push = 0.0
        w_imp = np.zeros(self.imp_i.size)
        if self.imp_i.size:
            d_imp = d_all[self.ta.size:]
            for s in range(0, self.imp_i.size, _PAIR_BLOCK):
                sl = slice(s, s + _PAIR_BLOCK)
                margins = 1.0 + d_t[self.imp_i[sl]] - d_imp[sl, None]
                h, dh = push_loss_value_deriv(margins, self.push_loss)
                n_active += int(np.count_nonzero(margins > 0))
                if self.imp_w is not None:
                    h = h * self.imp_w[sl, None]
                    dh = dh * self.imp_w[sl, None]
                push += h.sum()
                w_imp[sl] = -mu * dh.sum(axis=1)
                for j in range(self.k):
                    w_t[:, j] += mu * np.bincount(
                        self.imp_i[sl], weights=dh[:, j], minlength=self.n
                    )
        loss = (1.0 - mu) * pull + mu * push
        w = np.concatenate([w_t[self.valid], w_imp])
        return loss, w, n_active

    def _laplacian_times(self, w, V):
        """``(diag(W 1 + W.T 1) - W - W.T) @ V`` with sparse ``W``."""
        deg = np.bincount(self._a, weights=w, minlength=self.n)
        deg += np.bincount(self._b, weights=w, minlength=self.n)
        values = np.concatenate([-w, -w, deg])[self._order]
        C = sparse.csr_matrix((values, self._indices, self._indptr), shape=(self.n, self.n))
        return C @ V

    def _weighted_scatter(self, w):
        """``X.T @ (diag(W 1 + W.T 1) - W - W.T) @ X`` with sparse ``W``."""
        return self.X.T @ self._laplacian_times(w, self.X)


def _blocked_pairs(func, a, b):
    """``func`` over pairs in blocks of ``_PAIR_BLOCK`` (bounded temporaries)."""
    out = np.empty(a.size)
    for s in range(0, a.size, _PAIR_BLOCK):
        out[s:s + _PAIR_BLOCK] = func(a[s:s + _PAIR_BLOCK], b[s:s + _PAIR_BLOCK])
    return out


def pair_sq_distances(Z, a, b):
    """``||Z[a] - Z[b]||^2`` for pairs of rows.

    Gathering two rows per pair costs about as much as ``GRAM_RATIO``
    entries of a Gram block computed by GEMM (measured with 64 to 256
    columns), so when the pairs are dense
    (more than ``n**2 / GRAM_RATIO``) the distances are read off
    ``Z[rows] @ Z.T`` row blocks (never the whole n x n matrix) instead.
    """
    n = Z.shape[0]
    if a.size * GRAM_RATIO < n * n:
        def gathered(a, b):
            diff = Z[a] - Z[b]
            return np.einsum("ij,ij->i", diff, diff)

        return _blocked_pairs(gathered, a, b)
    sq = np.einsum("ij,ij->i", Z, Z)
    blocks = list(row_blocks(n, n, None))
    if len(blocks) == 1 and Z.dtype == np.float64:
        # One block: the upper triangle of Z Z^T by a symmetric rank-k update (half the
        # flops of the GEMM) read at (min, max) of each pair; no sort of the pairs.
        G = dsyrk(1.0, Z.T, trans=1)
        out = sq[a] + sq[b] - 2.0 * G[np.minimum(a, b), np.maximum(a, b)]
        return np.maximum(out, 0.0, out=out)
    order = np.argsort(a, kind="stable")
    a_sorted = a[order]
    dot = np.empty(a.size)
    for start, stop in blocks:
        lo, hi = np.searchsorted(a_sorted, [start, stop])
        if lo < hi:
            sel = order[lo:hi]
            dot[sel] = (Z[start:stop] @ Z.T)[a[sel] - start, b[sel]]
    out = sq[a] + sq[b] - 2.0 * dot
    return np.maximum(out, 0.0, out=out)


class Evaluation(NamedTuple):
    """The objective at one point.

    Attributes
    ----------
    loss : float
    grad : ndarray
        Gradient, with the shape of the variable (``L`` or ``M``).
    n_active : int
        Violated triplets (positive margin) at the point.
    """

    loss: float
    grad: np.ndarray
    n_active: int


def evaluate_map(L, data):
    """Loss, gradient in ``L`` and active triplets at the linear map ``L``.

    The gradient ``2 L G`` (``G`` the weighted scatter of the pair
    differences) is computed as ``2 (C Z).T X`` (see
    :meth:`LMNNData.evaluate_projected`).
    """
    return data.evaluate_projection(data.project(L))  # host or device (_lmnn_torch)


def _evaluate_projection(Z, data):
    """:func:`evaluate_map` from the projection ``Z = X @ L.T``."""
    X = data.X
    loss, CZ, n_active = data.evaluate_projected(lambda a, b: pair_sq_distances(Z, a, b), Z)
    return Evaluation(loss, 2.0 * _gram_product(CZ, X, data.threads), n_active)


def _gram_product(A, B, threads):
    """``A.T @ B`` for tall ``A`` and ``B``: row halves in Python threads when large.

    OpenBLAS's own threads split this shape (inner dimension n) badly and
    spin while waiting: on a loaded 2-core machine two BLAS threads made it
    10x slower in CPU time than one. Single-threaded products on row blocks,
    summed, use the cores without that.
    """
    n = A.shape[0]
    flops = 2 * n * A.shape[1] * B.shape[1]
    if threads is None or threads <= 1 or flops < PARALLEL_FLOPS:
        return A.T @ B
    bounds = np.linspace(0, n, int(threads) + 1).astype(int)
    with ThreadPoolExecutor(max_workers=int(threads)) as pool:
        parts = list(pool.map(lambda k: A[bounds[k]:bounds[k + 1]].T @ B[bounds[k]:bounds[k + 1]],
                              range(int(threads))))
    return functools.reduce(np.add, parts)


def _loss_at_projection(Z, data):
    """The loss alone at the projection ``Z = X @ L.T`` (no gradient products)."""
    return data.pair_weights(lambda a, b: pair_sq_distances(Z, a, b))[0]


def evaluate_metric(M, data):
    """Loss, gradient in ``M`` and active triplets at the Mahalanobis matrix ``M``.

    Any square ``M`` is accepted (distances are ``(x_a-x_b)^T M (x_a-x_b)``);
    the gradient is ``G = sum_ab w_ab (x_a - x_b)(x_a - x_b)^T``.
    """
    return data.evaluate_metric(M)  # host or device (_lmnn_torch)


def lmnn_loss_grad(params, data):
    """LMNN loss and gradient in the linear map ``L`` (flattened, row-major).

    Parameters
    ----------
    params : ndarray of shape (n_components * n_features,)
    data : LMNNData

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_components * n_features,)
        ``2 L G`` with ``G`` the weighted scatter of the pair differences.
    """
    ev = evaluate_map(params.reshape(-1, data.X.shape[1]), data)
    return ev.loss, ev.grad.ravel()


def lmnn_loss_grad_metric(params, data):
    """LMNN loss and gradient in the Mahalanobis matrix ``M`` (flattened).

    The objective is linear in ``M`` inside the hinge, so convex in ``M``
    (for the hinge and its smoothed/squared variants). The solver keeps
    ``M`` PSD by projection.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_features * n_features,)
        ``G = sum_ab w_ab (x_a - x_b)(x_a - x_b)^T``.
    """
    d = data.X.shape[1]
    ev = evaluate_metric(params.reshape(d, d), data)
    return ev.loss, ev.grad.ravel()


def lmnn_energy(Zt, Z, y, target_d, n_classes, n_neighbors, push_weight=0.5,
                push_loss="smooth_hinge"):
    """LMNN energy of labelling each test point with each class (JMLR 2009, eq. 16).

    For a test point ``t`` and class ``c``, with ``j ~> t`` the
    ``n_neighbors`` nearest training points of class ``c``::

        (1 - mu) * sum_{j ~> t} d(t, j)
        + mu * sum_{j ~> t, l: y_l != c} h(1 + d(t, j) - d(t, l))
        + mu * sum_{i: y_i != c, j ~> i} h(1 + d(i, j) - d(i, t))

    Test points are processed in blocks: memory is
    O(block * n_train * n_neighbors).

    Parameters
    ----------
    Zt : ndarray of shape (n_test, n_components)
        Test points in the learned space.
    Z : ndarray of shape (n_train, n_components)
        Training points in the learned space.
    y : ndarray of shape (n_train,)
        Training labels encoded as 0 .. n_classes - 1.
    target_d : ndarray of shape (n_train, k)
        Squared distances of each training point to its target neighbours
        (-inf where it has none).
    n_classes : int
    n_neighbors : int
        Target neighbours of the test point in each class.
    push_weight : float, default=0.5
        ``mu``.
    push_loss : {'hinge', 'smooth_hinge', 'squared_hinge'}, default='smooth_hinge'
        The margin loss ``h``.

    Returns
    -------
    energies : ndarray of shape (n_test, n_classes)
        Lower is better.
    """
    k, mu = n_neighbors, push_weight
    n = Z.shape[0]
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0
    sq = np.einsum("ij,ij->i", Z, Z)
    out = np.empty((Zt.shape[0], n_classes))
    block = max(1, (1 << 21) // max(n * (k + 1), 1))
    for start, stop in row_blocks(Zt.shape[0], n, block):
        D = np.maximum(block_sq_distances(Zt[start:stop], Z, sq), 0.0)
        # Test point as impostor of training points i (with i's targets).
        g = push_loss_value_deriv(1.0 + target_d[None] - D[:, :, None], push_loss)[0]
        g = g.sum(axis=2)
        as_impostor = g.sum(axis=1, keepdims=True) - g @ onehot  # i with y_i != c
        for c in range(n_classes):
            in_c = y == c
            Dc, Do = D[:, in_c], D[:, ~in_c]
            kc = min(k, Dc.shape[1])
            t_d = np.partition(Dc, kc - 1, axis=1)[:, :kc]
            h = push_loss_value_deriv(1.0 + t_d[:, :, None] - Do[:, None, :], push_loss)[0]
            out[start:stop, c] = (
                (1.0 - mu) * t_d.sum(axis=1)
                + mu * h.sum(axis=(1, 2))
                + mu * as_impostor[:, c]
            )
    return out


# --------------------------------------------------------------------------
# solvers
# --------------------------------------------------------------------------
class _Run(NamedTuple):
    """Outcome of one solver run on a fixed active set."""

    L: np.ndarray
    loss: float
    n_iter: int
    converged: bool


def _metric_factor(M):
    """PSD projection of ``M`` and a factor ``L`` with ``L.T @ L`` equal to it."""
    M_psd, w, V = psd_project(M, return_eigen=True)
    return M_psd, (np.sqrt(w)[:, None] * V.T)


class LBFGSMemory:
    """The curvature pairs of L-BFGS, kept across the impostor searches of a pass.

    Restarting L-BFGS after every search (as a call to scipy's L-BFGS-B
    does) throws away its curvature estimate: each run began with a
    gradient step, and the runs' tails made the fit several times longer.
    Pairs ``(s, y)`` with too little curvature (``s.y <= 1e-10 |s| |y|``)
    are skipped, which keeps the inverse Hessian estimate positive definite.

    Parameters
    ----------
    size : int, default=10
        Pairs kept.
    """

    def __init__(self, size=10):
        self.size = size
        self.pairs = []  # (s, y, 1 / s.y), oldest first

    def __len__(self):
        return len(self.pairs)

    def clear(self):
        self.pairs = []

    def update(self, s, y):
        sy = np.vdot(s, y)
        if sy <= 1e-10 * np.linalg.norm(s) * np.linalg.norm(y):
            return
        self.pairs.append((s, y, 1.0 / sy))
        if len(self.pairs) > self.size:
            self.pairs.pop(0)

    def direction(self, g):
        """``-H g`` by the two-loop recursion (``H`` the inverse Hessian estimate)."""
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * np.vdot(s, q)
            q -= a * y
            alphas.append(a)
        s, y, _ = self.pairs[-1]
        q *= np.vdot(s, y) / np.vdot(y, y)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            q += (a - rho * np.vdot(y, q)) * s
        return -q


def _lbfgs_run(L, data, max_iter, min_decrease, on_iter, first=None, memory=None,
               trust=np.inf):
    """L-BFGS on ``L`` with Armijo backtracking, from a warm start and memory.

    With an empty ``memory`` the first step is along the negative gradient
    with length 5% of ``||L||``, so a start never jumps far from the point
    where the active set is valid; later steps try the quasi-Newton step
    (length 1) first. Stops when one iteration decreases the loss by at most
    ``min_decrease``, or when no step decreases it (a stationary point for
    practical use). No step moves ``L`` by more than ``trust * ||L||`` (the
    active set is valid near ``L`` only). ``first`` is the :class:`Evaluation` at ``L``
    when the caller has it; ``on_iter(loss, n_active)`` is called after each
    iteration.
    """
    memory = LBFGSMemory() if memory is None else memory
    ev = first if first is not None else evaluate_map(L, data)
    # Along a direction p the projection is Z + step * (X @ p.T): one product
    # per iteration, and trial steps cost only their pair distances; the
    # gradient products are made at the accepted point only.
    Z = data.project(L)
    n_it = 0
    while n_it < max_iter:
        g = ev.grad
        g_norm = np.linalg.norm(g)
        if g_norm == 0.0:
            return _Run(L, ev.loss, n_it, True)
        p = memory.direction(g) if len(memory) else -g
        slope = np.vdot(g, p)
        if slope >= 0.0:  # not a descent direction: forget the curvature
            memory.clear()
            p, slope = -g, -g_norm ** 2
        L_norm = max(np.linalg.norm(L), 1e-12)
        step = 1.0 if len(memory) else 0.05 * L_norm / g_norm
        step = min(step, trust * L_norm / max(np.linalg.norm(p), 1e-300))
        Zp = data.project(p)
        for _ in range(30):
            Z_new = Z + step * Zp
            loss_new = data.loss_at_projection(Z_new)
            decrease = ev.loss - loss_new
            if -decrease <= 1e-4 * step * slope:  # Armijo's sufficient decrease
                break
            # Minimiser of the quadratic through f(0), f'(0) and f(step),
            # kept within [0.1, 0.5] of the step.
            denom = 2.0 * (-decrease - slope * step)
            trial = -slope * step * step / denom if denom > 0 else 0.5 * step
            step = min(max(trial, 0.1 * step), 0.5 * step)
        else:
            return _Run(L, ev.loss, n_it, True)  # no decrease along p: stationary
        L_new = L + step * p
        ev_new = data.evaluate_projection(Z_new)
        n_it += 1
        memory.update(L_new - L, ev_new.grad - g)
        L, ev, Z = L_new, ev_new, Z_new
        on_iter(ev.loss, ev.n_active)
        if decrease <= min_decrease:
            return _Run(L, ev.loss, n_it, True)
    return _Run(L, ev.loss, n_it, False)


def _projected_gradient_run(L, data, max_iter, min_decrease, on_iter, first=None,
                            memory=None, trust=np.inf):
    """Projected gradient on ``M`` with Barzilai-Borwein steps and backtracking.

    No learning rate to tune: the step starts at 1 / ||G|| and adapts, capped
    so that ``M`` moves by at most ``trust * ||M||``. Each iterate is
    projected onto the PSD cone (eigenvalue clipping).
    """
    M = L.T @ L
    ev = evaluate_metric(M, data)
    f, G = ev.loss, ev.grad
    step = 1.0 / max(np.linalg.norm(G), 1e-12)
    n_it = 0
    converged = False
    for n_it in range(1, max_iter + 1):
        # No step moves M by more than trust * ||M|| (the active set is valid
        # near M only).
        step = min(step, trust * np.linalg.norm(M) / max(np.linalg.norm(G), 1e-300))
        for _ in range(40):
            M_new, L_new = _metric_factor(M - step * G)
            ev = evaluate_metric(M_new, data)
            S = M_new - M
            # Sufficient decrease along the projection arc.
            if ev.loss <= f + np.vdot(G, S) + np.vdot(S, S) / (2.0 * step) + 1e-12 * abs(f):
                break
            step *= 0.5
        sy = np.vdot(S, ev.grad - G)
        step = np.vdot(S, S) / sy if sy > 1e-300 else step * 2.0
        decrease = f - ev.loss
        M, f, G, L = M_new, ev.loss, ev.grad, L_new
        on_iter(f, ev.n_active)
        if decrease <= min_decrease or np.linalg.norm(S) <= 1e-12 * max(np.linalg.norm(M), 1.0):
            converged = True
            break
    return _Run(L, float(f), n_it, converged)


def target_sq_distances(Z, targets):
    """Squared distances ``||Z[i] - Z[targets[i, j]]||^2`` (-inf where ``targets`` is -1)."""
    d_t = np.full(targets.shape, -np.inf)
    ok = targets >= 0
    rows = np.nonzero(ok)[0]
    diff = Z[rows] - Z[targets[ok]]
    d_t[ok] = np.einsum("ij,ij->i", diff, diff)
    return d_t


def best_scale(X, y, L, targets, push_weight, push_loss, chunk_size=None,
               max_impostors=None, rng=None, n_grid=17, n_rows=256, ops=None):
    """The factor ``c`` minimising the loss at ``c * L`` (exact 1-D search).

    The LMNN loss is not scale invariant (the margin is 1), so an identity or
    PCA start is usually far too large or too small; at the wrong scale the
    first solver steps mostly rescale, and the active set lags behind. Along
    the ray, squared distances scale by ``s = c**2`` and every margin is
    ``1 - s * (d_il - d_ij)``, so with the impostors within
    ``max_j d_ij + 1 / s_lo`` the loss is known exactly for all ``s >= s_lo``.
    The grid is widened (bounded) while the best ``s`` lies on its edge.
    """
    mu = push_weight
    ops = _NumpyOps() if ops is None else ops
    Z = ops.project(X, L)
    n = Z.shape[0]
    # The loss is a sum over samples i: a random subset of rows estimates it
    # well enough to place the scale, at a fraction of the cost.
    rows = np.arange(n) if n <= n_rows else np.sort(rng.choice(n, n_rows, replace=False))
    d_t = ops.target_sq_distances(Z, targets)
    pull = d_t[rows][targets[rows] >= 0].sum()
    s_lo, s_hi = 1.0 / 16, 16.0
    best = 1.0
    for _ in range(3):
        radius = d_t.max(axis=1) + 1.0 / s_lo
        imp_i, imp_l, w, d_imp = ops.find_impostors(Z, y, radius, chunk_size, max_impostors,
                                                    rng, rows=rows, return_distances=True)
        gap = d_t[imp_i] - d_imp[:, None]  # (pairs, k); -inf for missing targets
        grid = np.geomspace(s_lo, s_hi, n_grid)
        losses = []
        for s_ in grid:
            h, _ = push_loss_value_deriv(1.0 + s_ * gap, push_loss)
            if w is not None:
                h = h * w[:, None]
            losses.append((1.0 - mu) * s_ * pull + mu * h.sum())
        j = int(np.argmin(losses))
        best = grid[j]
        if 0 < j < n_grid - 1:
            break
        if j == 0:
            s_hi, s_lo = s_lo * 4, s_lo / 16
        else:
            s_lo, s_hi = s_hi / 4, s_hi * 64
    return float(np.sqrt(best))


@dataclass(frozen=True)
class LMNNOptions:
    """Settings of one LMNN fit (the estimator's parameters, see :class:`skmetric.LMNN`).

    ``random_state`` seeds the impostor subsampling and the rows of the
    initial scale search (an int or None).
    ``device``: None (numpy), a device string or a
    :class:`skmetric._backend.Backend` (torch there, :func:`lmnn_ops`).
    """

    n_neighbors: int = 3
    push_weight: float = 0.5
    push_loss: str = "smooth_hinge"
    solver: str = "lbfgs"
    max_iter: int = 1000
    tol: float = 1e-5
    n_passes: int = 1
    refresh: int = 25
    max_impostors: int = 1_000_000
    chunk_size: Any = None
    random_state: Any = None
    device: Any = None
    early_stopping: bool = False
    validation_fraction: float = 0.2
    n_iter_no_change: int = 2


def fit_lmnn(X, y, L0, options=None, progress=None, **changes):
    """Fit LMNN from the initial map ``L0`` with active-set book-keeping.

    Each pass selects target neighbours in the current metric; within a pass
    the solver runs at most ``refresh`` iterations on the active impostor
    set, the set is searched again, and this repeats until the solver has
    converged *and* the new search found no violation the old set missed,
    until the true loss stalls between two searches, or until ``max_iter``
    iterations.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,)
        Labels encoded as integers.
    L0 : ndarray of shape (n_components, n_features)
        Initial map (rescaled by an exact line search before the first pass).
    options : LMNNOptions, default=None
        None means the defaults.
    progress : skmetric._solver.Progress, default=None
        Receives the iteration lines and events; None is silent.
    **changes
        Fields of ``options`` to replace (``fit_lmnn(X, y, L0, max_iter=50)``).

    Returns
    -------
    result : SolverResult
        ``components`` (the learned ``L``), ``loss`` (the true objective, all
        impostors re-checked), ``n_iter`` (all passes), ``converged``,
        ``message`` and ``info["targets"]`` (target neighbours of the last
        pass, -1 where a small class has fewer).
    """
    options = replace(options or LMNNOptions(), **changes)
    if options.early_stopping:
        return _fit_early_stopping(X, y, L0, options, progress or NO_PROGRESS)
    # The fit runs single-threaded except in large products (see
    # _product_threads), which get the caller's BLAS threads.
    threads = blas_threads()
    fit = _ActiveSetFit(X, y, options, progress or NO_PROGRESS, threads)
    with single_threaded_blas(), fit.ops.single_threaded():
        return fit.fit(L0)


def validation_split(y, fraction, n_neighbors, rng):
    """Stratified indices ``(fit, val)``: ``fraction`` of each class held out.

    Each class keeps at least ``n_neighbors + 1`` members in the fitting part
    (so its samples keep their target neighbours); ``val`` is empty when no
    class can spare one.
    """
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_val = min(int(np.floor(fraction * idx.size)), idx.size - n_neighbors - 1)
        if n_val > 0:
            val.append(rng.choice(idx, size=n_val, replace=False))
    val = np.sort(np.concatenate(val)) if val else np.empty(0, np.intp)
    fit = np.setdiff1d(np.arange(y.size), val)
    return fit, val


def knn_error(Z_ref, y_ref, Z, y, n_neighbors, block=2048):
    """Error rate of the ``n_neighbors``-NN majority vote (ties to the nearest) of ``Z``."""
    sq_ref = np.einsum("ij,ij->i", Z_ref, Z_ref)
    wrong = 0
    k = min(n_neighbors, Z_ref.shape[0])
    n_classes = int(max(y_ref.max(), y.max())) + 1
    for start in range(0, Z.shape[0], block):
        Zb = Z[start:start + block]
        d = sq_ref[None, :] - 2.0 * (Zb @ Z_ref.T)
        labels = y_ref[k_smallest(d, k)[0]]
        votes = np.zeros((labels.shape[0], n_classes))
        weights = np.ones(k)
        weights[0] += 1e-3  # the nearest neighbour's vote breaks ties
        np.add.at(votes, (np.arange(labels.shape[0])[:, None], labels), weights[None, :])
        wrong += np.count_nonzero(votes.argmax(axis=1) != y[start:start + block])
    return wrong / max(Z.shape[0], 1)


def _fit_early_stopping(X, y, L0, options, progress):
    """Early stopping on a held-out share of the training data (JMLR 2009's code:
    20% validation), then the same number of iterations on all of it.

    A fit on the other samples reports, after each impostor search, the
    ``n_neighbors``-NN error of the held-out samples in its current metric;
    it stops after ``n_iter_no_change`` searches without a lower error. The
    best checkpoint (ties: the latest) gives the iteration count of the final
    fit on all samples from ``L0``.
    """
    rng = np.random.default_rng(options.random_state)
    fit_idx, val_idx = validation_split(y, options.validation_fraction,
                                        options.n_neighbors, rng)
    plain = replace(options, early_stopping=False)
    if val_idx.size == 0:
        progress.say("early stopping: no class can spare a validation sample; plain fit")
        return fit_lmnn(X, y, L0, plain, progress)
    Xf, yf, Xv, yv = X[fit_idx], y[fit_idx], X[val_idx], y[val_idx]
    threads = blas_threads()
    sub = _ActiveSetFit(Xf, yf, replace(plain, n_passes=1), progress, threads)
    best = {"error": np.inf, "n_iter": 0, "stale": 0}
    errors = []

    def monitor(L, n_iter):
        err = knn_error(Xf @ L.T, yf, Xv @ L.T, yv, options.n_neighbors)
        errors.append((n_iter, err))
        progress.say(f"early stopping: validation {options.n_neighbors}-NN error "
                     f"{100 * err:.2f}% at iteration {n_iter}")
        if err < best["error"]:
            best["stale"] = 0
        else:
            best["stale"] += 1
        if err <= best["error"]:
            best.update(error=err, n_iter=n_iter)
        return best["stale"] >= options.n_iter_no_change

    sub.monitor = monitor
    with single_threaded_blas(), sub.ops.single_threaded():
        sub_result = sub.fit(L0)
    if not errors:  # converged before the first search: the plain fit's length
        best["n_iter"] = sub_result.n_iter
    n_iter = max(best["n_iter"], 1)
    progress.say(f"early stopping: best validation error {100 * best['error']:.2f}% "
                 f"at iteration {n_iter}; refit on all {y.size} samples")
    final = fit_lmnn(X, y, L0, replace(plain, max_iter=n_iter), progress)
    message = (f"early stopping: {n_iter} iterations, chosen on {val_idx.size} held-out "
               f"samples (validation error {100 * best['error']:.2f}%)")
    info = {**final.info, "validation_errors": errors, "early_stopping_fit_iter": sub_result.n_iter}
    return SolverResult(components=final.components, loss=final.loss,
                        n_iter=final.n_iter + sub_result.n_iter,
                        converged=True, message=message, info=info)


class CandidateReference:
    """Candidate impostor pairs of an exhaustive search, and when they still suffice.

    An exhaustive search at the map ``L_ref`` kept every pair ``(i, l)`` with
    ``d_ref(i, l) < R_i``. At a later map ``L = L_ref + D``, a pair that was
    not kept cannot have entered row ``i``'s radius ``r_i`` if a lower bound
    on its distance exceeds it. With ``L_ref = U S V.T`` (thin SVD), ``V1``
    its first ``m`` right singular vectors and ``P2 = I - V1 V1.T``, any
    difference ``v = x_i - x_l`` has
    ``||L v|| >= (1 - e1) ||L_ref v|| - e2 ||P2 v||`` with
    ``e1 = ||D V1 S1^-1||_2``, ``e2 = ||D P2||_2``, and
    ``||P2 v|| <= rho_i + max(rho)``, ``rho = ||P2 (x - mean)||``. So row
    ``i`` is *certified* (its impostors are among its candidates) when
    ``((1 - e1) sqrt(R_i) - e2 (rho_i + max(rho)))**2 >= r_i``. The split
    ``m`` with the most certified rows is used: all of them for a square,
    well conditioned map (then ``e2 = 0``), fewer when the small singular
    directions (or the null space of a rectangular map) move.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    L : ndarray of shape (n_components, n_features)
        ``L_ref``.
    radius : ndarray of shape (n_samples,)
        ``R``: squared radii of the search.
    cand_i, cand_l : ndarray of int
        The pairs found.
    """

    def __init__(self, X, L, radius, cand_i, cand_l):
        self.L = np.array(L, dtype=np.float64)
        self.sqrt_radius = np.sqrt(np.maximum(radius, 0.0))
        self.cand_i, self.cand_l = cand_i, cand_l
        _, s, Vt = np.linalg.svd(self.L, full_matrices=False)
        keep = s > s[0] * 1e-8 if s.size and s[0] > 0 else np.zeros(s.size, bool)
        self.s, self.Vt = s[keep], Vt[keep]
        # Splits m: all directions and those where the spectrum has fallen by
        # 2, 4, 8, ... (the small directions are bounded through rho instead).
        m_all = self.s.size
        splits = {m_all}
        for f in (2.0, 4.0, 8.0, 16.0, 64.0):
            splits.add(int(np.count_nonzero(self.s >= self.s[0] / f)) if m_all else 0)
        self.splits = sorted(m for m in splits if m > 0)
        # ||P2 (x - mean)||**2 for each split, from the coordinates along V.
        # (without a centred copy of X)
        mean = X.mean(axis=0)
        total = np.einsum("ij,ij->i", X, X) - 2.0 * (X @ mean) + mean @ mean
        cum = np.cumsum((X @ self.Vt.T - mean @ self.Vt.T) ** 2, axis=1)
        self.rho = {m: np.sqrt(np.maximum(total - cum[:, m - 1], 0.0)) for m in self.splits}
        if X.shape[1] == m_all:  # full rank: P2 = 0 at m = all
            self.rho[m_all] = np.zeros(X.shape[0])

    def uncertified(self, L, thr):
        """Rows whose impostors at ``L`` (within ``thr``) may lie outside the candidates."""
        D = np.asarray(L, dtype=np.float64) - self.L
        best = None
        for m in self.splits:
            V1 = self.Vt[:m].T
            DV1 = D @ V1
            e1 = np.linalg.norm(DV1 / self.s[:m], 2)
            if e1 >= 1.0:
                continue
            DP2 = D - DV1 @ V1.T
            e2 = np.linalg.norm(DP2, 2) if self.rho[m].any() else 0.0
            rho = self.rho[m]
            bound = (1.0 - e1) * self.sqrt_radius - e2 * (rho + rho.max())
            ok = (bound > 0) & (bound * bound >= thr * (1.0 + 1e-6))
            if best is None or ok.sum() > best.sum():
                best = ok
        if best is None:
            return np.arange(thr.size)
        return np.flatnonzero(~best)


class _ActiveSetFit:
    """The state of one LMNN fit: data, options, RNG, iteration count, last search.

    The active impostor set is the union of the last two searches
    (``previous`` holds the last one's pairs); :meth:`fit` runs the passes.
    """

    def __init__(self, X, y, options, progress, threads=1):
        self.ops = lmnn_ops(options.device, threads)
        self.X_host = X
        self.X = self.ops.asarray(X)  # on the device for a torch fit
        self.threads = threads
        self.y = y
        self.options = options
        self.progress = progress
        self.rng = np.random.default_rng(options.random_state)
        self.run = _lbfgs_run if options.solver == "lbfgs" else _projected_gradient_run
        self.n_iter = 0
        self.previous = None  # (imp_i, imp_l, weights) of the last search
        self.large = X.shape[0] >= LARGE_N
        # Large problems: candidate pairs of the last exhaustive search and
        # the L it was made at; whether the last search was exhaustive.
        self.candidates = None
        self.exhaustive = True
        self.n_reference = 0  # exhaustive searches made as references
        self.monitor = None  # called with (L, n_iter) after each accepted search; True stops

    def search(self, L, targets, keep_previous=False, exhaustive=False):
        """The :class:`LMNNData` of the impostors of the metric ``L``.

        With ``keep_previous`` the previous search's pairs are added:
        impostors that leave the margin in one run and come back in the next
        stay in the set, so runs are not cut short (JMLR 2009 keeps every
        pair ever active; two searches bound the memory). For large problems
        the search re-checks the candidates of the last exhaustive search
        unless ``exhaustive`` or ``L`` has moved too far from it.
        """
        opt = self.options
        Z = self.ops.project(self.X, L)
        radius = self.ops.target_sq_distances(Z, targets).max(axis=1) + 1.0
        if not self.large:
            imp_i, imp_l, w = self.ops.find_impostors(Z, self.y, radius, opt.chunk_size,
                                                      opt.max_impostors, self.rng)
        else:
            imp_i, imp_l, w = self._large_search(L, Z, radius, exhaustive)
        prev, self.previous = self.previous, (imp_i, imp_l, w)
        if keep_previous and prev is not None and w is None and prev[2] is None:
            n = self.X.shape[0]
            if self.large:
                # Only the previous pairs still near the margin: after a long
                # move of L most of them are stale and would dominate the cost
                # of every evaluation (600k pairs for 50k active triplets).
                near = (self.ops.pair_sq_distances(Z, prev[0], prev[1])
                        < CANDIDATE_SLACK * radius[prev[0]])
                prev = (prev[0][near], prev[1][near], None)
            key = np.union1d(imp_i.astype(np.int64) * n + imp_l,
                             prev[0].astype(np.int64) * n + prev[1])
            imp_i, imp_l = (key // n).astype(np.int32), (key % n).astype(np.int32)
        return self.ops.data(self.X, targets, imp_i, imp_l, opt.push_weight, opt.push_loss, w)

    def _large_search(self, L, Z, radius, exhaustive):
        """Exact impostors from the reference's candidates, or an exhaustive search.

        Rows the reference cannot certify at ``L`` are searched exactly; when
        they are more than ``REFERENCE_FRACTION`` of all, or ``exhaustive``,
        all rows are searched and their candidates become the new reference.
        """
        opt = self.options
        n = Z.shape[0]
        thr = radius * (1.0 + 1e-4) + 1e-4  # the slack of find_impostors
        ref, failed = self.candidates, None
        if ref is not None and not exhaustive:
            failed = ref.uncertified(L, thr)
            if failed.size > REFERENCE_FRACTION * n:
                ref = None
        self.exhaustive = True  # every search below is exact
        new_reference = ref is None or exhaustive
        if new_reference:
            cand_i, cand_l, w = self.ops.find_impostors(Z, self.y, CANDIDATE_SLACK * radius,
                                                        opt.chunk_size,
                                                        CANDIDATE_CAP * opt.max_impostors,
                                                        self.rng)
            self.n_reference += 1
            if w is not None:
                # Too many candidates: no reference; the impostors alone
                # (subsampled above max_impostors, re-weighted).
                self.candidates = None
                imp_i, imp_l, w = self.ops.find_impostors(Z, self.y, radius, opt.chunk_size,
                                                          opt.max_impostors, self.rng)
                return imp_i, imp_l, w
            ref = self.candidates = CandidateReference(self.X_host, L, CANDIDATE_SLACK * radius,
                                                       cand_i, cand_l)
            failed = np.empty(0, np.intp)
        keep = self.ops.pair_sq_distances(Z, ref.cand_i, ref.cand_l) < thr[ref.cand_i]
        imp_i, imp_l = ref.cand_i[keep], ref.cand_l[keep]
        if failed.size:
            fail = np.zeros(n, bool)
            fail[failed] = True
            mine = ~fail[imp_i]
            fi, fl, fw = self.ops.find_impostors(Z, self.y, radius, opt.chunk_size, None,
                                                 self.rng, rows=failed)
            imp_i = np.concatenate([imp_i[mine], fi])
            imp_l = np.concatenate([imp_l[mine], fl])
        if new_reference:
            self.progress.say(f"impostor search: exhaustive (reference {self.n_reference}, "
                              f"{ref.cand_i.size} candidate pairs)")
        else:
            self.progress.say(f"impostor search: {n - failed.size} of {n} rows certified "
                              f"by the candidates of reference {self.n_reference}")
        return imp_i, imp_l, None

    def exact(self, L, targets, keep_previous=False, exhaustive=False):
        """Search the impostors at ``L`` and evaluate the true objective there.

        Returns the new :class:`LMNNData` and the :class:`Evaluation` at ``L``
        (reused as the next run's first evaluation).
        """
        data = self.search(L, targets, keep_previous, exhaustive)
        return data, evaluate_map(L, data)

    def _warm_start(self, L, targets):
        """Large problems: ``L`` fitted on a random subsample (same objective)."""
        n = self.X.shape[0]
        m = max(LARGE_N // 2, int(SUBSAMPLE_FRACTION * n))
        idx = np.sort(self.rng.choice(n, m, replace=False))
        sub = _ActiveSetFit(self.X[idx], self.y[idx], replace(self.options, n_passes=1),
                            self.progress, self.threads)
        sub.n_iter = self.n_iter
        result = sub.fit(L)
        self.n_iter = result.n_iter
        self.progress.say(f"warm start: fitted on a subsample of {m} points "
                          f"({result.n_iter} iterations)")
        return result.components

    def on_iter(self, loss, n_active):
        self.n_iter += 1
        self.progress.iter(self.n_iter, loss, active=n_active)

    def fit(self, L0):
        opt = self.options
        L = np.array(L0, dtype=np.float64)
        for p in range(opt.n_passes):
            targets = self.ops.select_targets(self.ops.project(self.X, L), self.y,
                                              opt.n_neighbors)
            if p == 0:
                scale = best_scale(self.X, self.y, L, targets, opt.push_weight,
                                   opt.push_loss, opt.chunk_size, opt.max_impostors,
                                   self.rng, ops=self.ops)
                L = L * scale
                self.progress.say(f"initial map rescaled by {scale:.4g} (exact line search)")
                if self.large:
                    L = self._warm_start(L, targets)
            L, ev, converged, message = self._pass(L, targets, p)
        if opt.n_passes > 1:
            message = f"pass {opt.n_passes} of {opt.n_passes}: {message}"
        return SolverResult(components=L, loss=ev.loss, n_iter=self.n_iter,
                            converged=converged, message=message, info={"targets": targets})

    def _pass(self, L, targets, p):
        """One pass with fixed targets: solver runs between impostor searches.

        Returns ``(L, evaluation, converged, message)``.
        """
        opt, tol = self.options, self.options.tol
        data, ev = self.exact(L, targets)
        self.progress.say(f"pass {p + 1}: {data.ta.size} target pairs, "
                          f"{data.n_impostor_pairs} candidate impostor pairs, "
                          f"loss {ev.loss:.6e}")
        budget = opt.max_iter  # each pass gets the full iteration budget
        # The scale of the problem: the loss at the start of the pass (after
        # the initial rescaling). The stopping rules are relative to it, not
        # to the current loss, which can be tiny (near separable classes)
        # and so never let a relative rule stop.
        scale = max(abs(ev.loss), 1e-300)
        min_decrease = tol * scale
        memory = LBFGSMemory()  # kept across the searches of the pass
        trust = MAX_STEP
        n_rejected = 0
        # Short runs first: early steps change the metric most, and the
        # active set must follow them; the runs lengthen (doubling) up to
        # ``refresh`` iterations as the set settles.
        run_len, max_len = min(FIRST_RUN, opt.refresh), opt.refresh
        while budget > 0:
            before = self.n_iter
            run = self.run(L, data, min(run_len, budget), min_decrease, self.on_iter, ev,
                           memory, trust)
            budget -= max(self.n_iter - before, run.n_iter, 1)
            new_data, new_ev = self.exact(run.L, targets, keep_previous=True)
            stalled = 0 <= (ev.loss - new_ev.loss) / scale <= tol * 1e-2
            if not self.exhaustive and (run.converged or stalled):
                # About to stop on a re-check of candidates: confirm with an
                # exhaustive search (large problems).
                new_data, new_ev = self.exact(run.L, targets, keep_previous=True,
                                              exhaustive=True)
            if new_ev.loss > 1.5 * ev.loss:
                # The run left the region where the active set was valid (it
                # shrank the metric past impostors it did not see): reject it
                # and keep later runs shorter and their steps smaller.
                max_len = run_len = max(1, run_len // 2)
                trust /= 2.0
                n_rejected += 1
                memory.clear()
                self.progress.say(f"step rejected (true loss {new_ev.loss:.6e}); "
                                  f"runs of <= {max_len}")
                continue
            # Violations the old active set did not contain raise the loss.
            missed = new_ev.loss > run.loss + min_decrease + 1e-12
            rel = (ev.loss - new_ev.loss) / scale
            if new_ev.loss > ev.loss:
                # The run's curvature pairs came from an active set that
                # missed violations: they mislead the next runs.
                memory.clear()
            L, data, ev = run.L, new_data, new_ev
            self.progress.say(f"impostor search: {data.n_impostor_pairs} candidate pairs, "
                              f"{ev.n_active} active triplets, loss {ev.loss:.6e}")
            if self.monitor is not None and self.monitor(L, self.n_iter):
                return L, ev, True, "stopped by the monitor"
            if run.converged and not missed:
                return L, ev, True, ("an iteration decreased the loss by less than tol "
                                     "times the initial loss and a fresh impostor search "
                                     "found no new violation")
            if 0 <= rel <= tol * 1e-2:
                # The true objective (every impostor re-checked) no longer
                # moves between searches: a stall at the optimum of the
                # active-set iteration, whatever the length of the last run.
                return L, ev, True, (f"the loss stalled: decrease {rel:.2g} of the "
                                     f"initial loss between impostor searches, below "
                                     f"tol / 100")
            run_len = min(2 * run_len, max_len)
            if not missed:  # the active set was valid along the whole run
                trust = min(2.0 * trust, MAX_STEP)
        message = f"reached max_iter={opt.max_iter} iterations"
        if n_rejected:
            message += f" ({n_rejected} solver runs rejected for leaving the active set)"
        return L, ev, False, message
