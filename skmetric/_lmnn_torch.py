"""LMNN's array work on torch tensors (``LMNN(device=...)``).

:func:`skmetric._lmnn_solver.fit_lmnn` keeps its solver loop (L-BFGS or
projected gradient on the host, the active-set book-keeping, the step and
stopping rules) and asks an *ops* object for the array work of a fit:

* ``project(X, L)``: the embedding ``Z = X L^T``;
* ``select_targets(Z, y, k)``: target neighbours;
* ``target_sq_distances(Z, targets)`` and ``pair_sq_distances(Z, a, b)``;
* ``find_impostors(Z, y, radius, ...)``: the row-blocked impostor search;
* ``data(X, targets, imp_i, imp_l, ...)``: the objective on a fixed active
  set, whose evaluations give the loss and the gradient (``evaluate_map`` in
  ``L``, ``evaluate_metric`` in ``M``).

:class:`skmetric._lmnn_solver._NumpyOps` is the host version (the module's
functions); :class:`TorchOps` here runs the same steps with torch on a device
(:class:`skmetric._backend.Backend`, device strings checked by
:func:`skmetric._optional.resolve_device`). What crosses to the host is small:
the pair lists of the searches (int32), the per-sample radii and target
distances, ``L`` and the gradient (``n_components x n_features``), the loss.

Precision is that of the numpy path: the objective and its gradient in
float64 (so the two agree to round-off), the impostor search in float32 (it
only selects candidates, with the same slack as on the host). Every loop is
blocked: search blocks of rows against the other classes (sized from the
memory budget on CUDA, at most ``_GPU_SEARCH_ENTRIES`` distances); the pair
work (distances, Laplacian product) runs on sparse matrices of the pairs
(:class:`PairPattern`), O(pairs) memory; nothing is ``n x n``.
"""

import contextlib
import warnings

import numpy as np

from ._backend import get_backend
from ._lmnn_solver import _PAIR_BLOCK, SMOOTH_WIDTH, Evaluation, row_blocks

__all__ = ["TorchOps", "TorchLMNNData", "PairPattern"]

#: Largest search block on CUDA (float32 distances): 2**29 entries = 2 GiB.
_GPU_SEARCH_ENTRIES = 1 << 29
#: Bytes a search block may use per distance (scores, mask, the hits' indices).
_SEARCH_BYTES_PER_ENTRY = 32
#: Pairs gathered at once on CUDA (a (pairs, n_components) float64 block).
_GPU_PAIR_BLOCK = 1 << 20


def push_loss_value_deriv(z, kind):
    """Torch twin of :func:`skmetric._lmnn_solver.push_loss_value_deriv`."""
    if kind == "hinge":
        return z.clamp(min=0.0), (z > 0).to(z.dtype)
    if kind == "squared_hinge":
        zp = z.clamp(min=0.0)
        return zp * zp, 2.0 * zp
    if kind == "smooth_hinge":
        s = SMOOTH_WIDTH
        zp = z.clamp(0.0, s)
        value = (z - s / 2.0).where(z >= s, zp * zp / (2.0 * s))
        return value, zp / s
    raise ValueError(f"Unknown push loss {kind!r}.")


class TorchOps:
    """LMNN's array work with torch on ``device`` (see the module docstring).

    Parameters
    ----------
    device : str or Backend
        Resolved by :func:`skmetric._backend.get_backend` (ImportError
        without torch, ValueError for an unknown device or a missing GPU).
    """

    def __init__(self, device):
        self.bk = get_backend(device, "LMNN")
        if self.bk.is_numpy:
            raise ValueError("TorchOps needs a torch device, not None (numpy).")
        self.torch = self.bk.xp
        self.device = self.bk.device
        self.on_gpu = self.device.type == "cuda"
        self.pair_block = _GPU_PAIR_BLOCK if self.on_gpu else _PAIR_BLOCK
        #: Sparse kernels (sampled_addmm, CSR @ dense) for the pair work; set
        #: to False (gathers and index_add_) the first time one is missing.
        self.sparse_kernels = True

    def __repr__(self):
        return f"TorchOps({self.device})"

    # -- to and from the device --------------------------------------------------

    @contextlib.contextmanager
    def single_threaded(self):
        """Context running torch's CPU kernels on one thread (nothing to do on CUDA).

        As the host fit runs single-threaded BLAS: on a busy machine torch's
        OpenMP threads made a small CPU fit 30x slower (5 s instead of 0.15 s).
        """
        if self.on_gpu:
            yield
            return
        before = self.torch.get_num_threads()
        self.torch.set_num_threads(1)
        try:
            yield
        finally:
            self.torch.set_num_threads(before)

    def asarray(self, X):
        """``X`` as a float64 tensor on the device (no copy if it already is one)."""
        return self.bk.asarray(X)

    def _index(self, a):
        """An int64 index tensor on the device."""
        return self.bk.asarray(a, "int64")

    def project(self, X, L):
        """``Z = X L^T`` on the device (``L`` a host array or a tensor)."""
        return X @ self.bk.asarray(L).T

    # -- distances ---------------------------------------------------------------

    def pattern(self, a, b, n):
        """The :class:`PairPattern` of the pairs ``(a[p], b[p])`` (device indices), n points."""
        return PairPattern(self, a, b, n)

    def pair_sq_distances(self, Z, a, b):
        """``||Z[a] - Z[b]||^2`` for host pair lists; a float64 numpy array."""
        if len(a) == 0:
            return np.empty(0)
        pattern = self.pattern(self._index(a), self._index(b), Z.shape[0])
        return self.bk.to_numpy(pattern.sq_distances(Z))

    def target_sq_distances(self, Z, targets):
        """Squared distances to the target neighbours (numpy, -inf where ``targets`` is -1)."""
        d_t = np.full(targets.shape, -np.inf)
        ok = targets >= 0
        d_t[ok] = self.pair_sq_distances(Z, np.nonzero(ok)[0], targets[ok])
        return d_t

    def select_targets(self, Z, y, n_neighbors):
        """Each sample's ``n_neighbors`` nearest same-class samples (numpy, -1 = none).

        Class by class with :meth:`skmetric._backend.Backend.kneighbors`
        (blocks of distances and ``topk`` on CUDA, scikit-learn on the CPU).
        """
        n = Z.shape[0]
        targets = np.full((n, n_neighbors), -1, dtype=np.intp)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            k_c = min(n_neighbors, idx.size - 1)
            if k_c < 1:
                continue
            _, neigh = self.bk.kneighbors(Z[self._index(idx)], k_c)
            targets[idx, :k_c] = idx[neigh]
        return targets

    # -- the impostor search --------------------------------------------------------

    def _search_rows(self, n_rows, n_cols, chunk_size):
        """Row blocks of the search: ``chunk_size``, or sized for the device."""
        if chunk_size is not None or not self.on_gpu:
            return row_blocks(n_rows, n_cols, chunk_size)
        rows = self.bk.chunk_rows(n_rows, _SEARCH_BYTES_PER_ENTRY * n_cols, "LMNN impostor search")
        rows = min(rows, max(1, _GPU_SEARCH_ENTRIES // max(n_cols, 1)))
        return row_blocks(n_rows, n_cols, rows)

    def find_impostors(self, Z, y, radius, chunk_size=None, max_impostors=None,
                       random_state=None, rows=None, return_distances=False):
        """Device twin of :func:`skmetric._lmnn_solver.find_impostors` (same arguments).

        The pairs come back as host int32 arrays in the host search's order
        (class by class, row blocks, row-major), so a subsample drawn with the
        same generator keeps the same pairs.
        """
        torch = self.torch
        n = Z.shape[0]
        Z32 = Z.to(torch.float32)
        sq = (Z32 * Z32).sum(1)
        thr = torch.as_tensor(
            (np.asarray(radius) * (1.0 + 1e-4) + 1e-4).astype(np.float32), device=self.device
        )
        # d(i, l) < thr_i  <=>  2 z_i.z_l - |z_l|^2 > |z_i|^2 - thr_i (one GEMM).
        Za = torch.cat([2.0 * Z32, -torch.ones((n, 1), dtype=torch.float32, device=self.device)], 1)
        Zb = torch.cat([Z32, sq[:, None]], 1)
        rng = np.random.default_rng(random_state)
        rows = np.arange(n) if rows is None else np.asarray(rows)
        out_i, out_l, out_w, out_d = [], [], [], []
        sampled = False
        for c in np.unique(y[rows]):
            rows_c = rows[y[rows] == c]
            cols = np.flatnonzero(y != c)
            cols_t = self._index(cols)
            Zb_c = Zb[cols_t]
            rows_t = self._index(rows_c)
            for start, stop in self._search_rows(rows_c.size, cols.size, chunk_size):
                r = rows_t[start:stop]
                S = Za[r] @ Zb_c.T
                bound = sq[r] - thr[r]
                hits = (S > bound[:, None]).nonzero()
                ii, ll = hits[:, 0], hits[:, 1]
                w = None
                if max_impostors is not None:
                    quota = max(1, int(np.ceil(max_impostors * (stop - start) / rows.size)))
                    if ii.shape[0] > quota:
                        keep = np.sort(rng.choice(ii.shape[0], size=quota, replace=False))
                        w = np.full(quota, ii.shape[0] / quota)
                        keep = self._index(keep)
                        ii, ll = ii[keep], ll[keep]
                        sampled = True
                if return_distances:
                    out_d.append(self.bk.to_numpy(sq[r][ii] - S[ii, ll]).astype(np.float64))
                out_i.append(rows_c[start:stop][self.bk.to_numpy(ii)].astype(np.int32))
                out_l.append(cols[self.bk.to_numpy(ll)].astype(np.int32))
                out_w.append(w if w is not None else np.ones(out_i[-1].size))
                del S
        imp_i = np.concatenate(out_i) if out_i else np.empty(0, np.int32)
        imp_l = np.concatenate(out_l) if out_l else np.empty(0, np.int32)
        weights = np.concatenate(out_w) if sampled else None
        if return_distances:
            return imp_i, imp_l, weights, (np.concatenate(out_d) if out_d else np.empty(0))
        return imp_i, imp_l, weights

    # -- the objective -----------------------------------------------------------------

    def data(self, X, targets, imp_i, imp_l, push_weight=0.5, push_loss="smooth_hinge",
             imp_weights=None):
        """The objective on a fixed active set, on the device (:class:`TorchLMNNData`)."""
        return TorchLMNNData(self, X, targets, imp_i, imp_l, push_weight, push_loss,
                             imp_weights)


class PairPattern:
    """Pairs ``(a[p], b[p])`` of ``n`` points as sparse matrices on the device.

    Two patterns, built once (a sort on the device): ``P`` with an entry at
    each ``(a, b)``, for the pair products ``u_a . v_b`` of all pairs at once
    (``torch.sparse.sampled_addmm``: O(pairs x columns), no gathered
    (pairs, columns) block); and the Laplacian's ``(a, b)``, ``(b, a)``,
    ``(i, i)``, duplicates merged, for ``C V`` with
    ``C = diag(W 1 + W^T 1) - W - W^T`` in one sparse product (the host's
    scipy CSR product). On the CPU, torch's gathers ``Z[a]`` and
    ``index_add_`` of rows were 10x to 30x slower than these kernels; they
    remain as the fallback (blocks of ``ops.pair_block`` pairs) for a torch
    build without the sparse kernels on its device.
    """

    def __init__(self, ops, a, b, n):
        torch = ops.torch
        self.ops, self.n, self.m = ops, n, a.shape[0]
        self.a, self.b = a, b
        key = a * n + b
        self.order = torch.argsort(key, stable=True)
        self._P = self._csr(key[self.order], torch.zeros(self.m, dtype=torch.float64,
                                                          device=ops.device))
        self._lap = None

    def _csr(self, sorted_keys, values):
        """The n x n CSR matrix with entries at ``sorted_keys`` (``row * n + col``, sorted)."""
        torch, n = self.ops.torch, self.n
        counts = torch.bincount(sorted_keys // n, minlength=n)
        crow = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        with warnings.catch_warnings():  # torch's "CSR support is in beta" note
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            # Sorted, in-range keys make a valid CSR matrix: no invariant checks.
            return torch.sparse_csr_tensor(crow, sorted_keys % n, values, (n, n),
                                           check_invariants=False)

    def dots(self, U, V):
        """``U[a[p]] . V[b[p]]`` for every pair, in the pairs' order."""
        torch, ops = self.ops.torch, self.ops
        out = torch.empty(self.m, dtype=U.dtype, device=U.device)
        if not self.m:
            return out
        if ops.sparse_kernels:
            try:
                P = self._P if self._P.dtype == U.dtype else self._P.to(U.dtype)
                out[self.order] = torch.sparse.sampled_addmm(P, U, V.T, beta=0.0).values()
                return out
            except (RuntimeError, NotImplementedError):
                ops.sparse_kernels = False  # not in this torch build: gathers from now on
        a, b, pb = self.a, self.b, ops.pair_block
        for s in range(0, self.m, pb):
            out[s:s + pb] = (U[a[s:s + pb]] * V[b[s:s + pb]]).sum(1)
        return out

    def sq_distances(self, Z):
        """``||Z[a] - Z[b]||^2`` for every pair (clipped at 0)."""
        sq = (Z * Z).sum(1)
        d = sq[self.a] + sq[self.b] - 2.0 * self.dots(Z, Z)
        return d.clamp_(min=0.0)

    def laplacian_times(self, w, V):
        """``(diag(W 1 + W^T 1) - W - W^T) @ V``, ``W`` having weight ``w[p]`` at ``(a, b)``."""
        torch, n = self.ops.torch, self.n
        if self._lap is None:  # the pattern, once: (a, b), (b, a), (i, i), merged
            diag = torch.arange(n, device=self.a.device)
            key = torch.cat([self.a * n + self.b, self.b * n + self.a, diag * n + diag])
            uniq, self._lap_index = torch.unique(key, sorted=True, return_inverse=True)
            self._lap = (uniq, uniq.shape[0])
        uniq, nnz = self._lap
        deg = torch.zeros(n, dtype=w.dtype, device=w.device)
        deg.index_add_(0, self.a, w).index_add_(0, self.b, w)
        if self.ops.sparse_kernels:
            values = torch.zeros(nnz, dtype=w.dtype, device=w.device)
            values.index_add_(0, self._lap_index, torch.cat([-w, -w, deg]))
            try:
                return self._csr(uniq, values) @ V
            except (RuntimeError, NotImplementedError):
                self.ops.sparse_kernels = False  # not in this torch build: gathers
        out = deg[:, None] * V
        a, b, pb = self.a, self.b, self.ops.pair_block
        for s in range(0, self.m, pb):
            ws = w[s:s + pb, None]
            out.index_add_(0, a[s:s + pb], -ws * V[b[s:s + pb]])
            out.index_add_(0, b[s:s + pb], -ws * V[a[s:s + pb]])
        return out


class TorchLMNNData:
    """Device twin of :class:`skmetric._lmnn_solver.LMNNData` (same attributes).

    The host attributes the solver reads (``X``, ``ta``, ``tb``, ``imp_i``,
    ``imp_l``, ``n_impostor_pairs``) are kept; the pairs also live on the
    device (a :class:`PairPattern`), where :meth:`evaluate_map` and
    :meth:`evaluate_metric` compute the pair distances, the pair weights and
    the Laplacian product ``C V`` with sparse kernels.
    """

    threads = None

    def __init__(self, ops, X, targets, imp_i, imp_l, push_weight=0.5,
                 push_loss="smooth_hinge", imp_weights=None):
        self.ops = ops
        self.X = ops.asarray(X)
        self.n = X.shape[0]
        self.targets = targets
        self.k = targets.shape[1]
        self.valid = targets >= 0
        self.ta = np.repeat(np.arange(self.n), self.k)[self.valid.ravel()]
        self.tb = targets[self.valid]
        self.imp_i = np.asarray(imp_i, dtype=np.intp)
        self.imp_l = np.asarray(imp_l, dtype=np.intp)
        self.imp_w = None if imp_weights is None else np.asarray(imp_weights, float)
        self.push_weight = float(push_weight)
        self.push_loss = push_loss
        self._pairs = ops.pattern(ops._index(np.concatenate([self.ta, self.imp_i])),
                                  ops._index(np.concatenate([self.tb, self.imp_l])), self.n)
        self._valid = ops.torch.as_tensor(self.valid, device=ops.device)
        self._imp_i = self._pairs.a[self.ta.size:]
        self._imp_w = None if self.imp_w is None else ops.asarray(self.imp_w)

    @property
    def n_impostor_pairs(self):
        return self.imp_i.size

    def _pair_weights(self, d_all):
        """Loss, pair weights ``w`` (targets then impostors, device) and active triplets."""
        torch, ops = self.ops.torch, self.ops
        mu = self.push_weight
        n_t = self.ta.size
        kw = dict(dtype=d_all.dtype, device=ops.device)
        d_t = torch.full((self.n, self.k), -np.inf, **kw)
        d_t[self._valid] = d_all[:n_t]
        pull = d_all[:n_t].sum()
        w_t = torch.full((self.n, self.k), 1.0 - mu, **kw)
        push = torch.zeros((), **kw)
        n_active = torch.zeros((), dtype=torch.int64, device=ops.device)
        n_imp = self.imp_i.size
        w_imp = torch.zeros(n_imp, **kw)
        d_imp = d_all[n_t:]
        for s in range(0, n_imp, ops.pair_block):
            sl = slice(s, s + ops.pair_block)
            imp_i = self._imp_i[sl]
            margins = 1.0 + d_t[imp_i] - d_imp[sl, None]
            h, dh = push_loss_value_deriv(margins, self.push_loss)
            n_active += (margins > 0).sum()
            if self._imp_w is not None:
                h = h * self._imp_w[sl, None]
                dh = dh * self._imp_w[sl, None]
            push += h.sum()
            w_imp[sl] = -mu * dh.sum(1)
            w_t.index_add_(0, imp_i, mu * dh)
        loss = (1.0 - mu) * pull + mu * push
        w = torch.cat([w_t[self._valid], w_imp])
        return float(loss), w, int(n_active)

    def evaluate_map(self, L):
        """Loss, gradient in ``L`` (host array) and active triplets at the map ``L``.

        As :func:`skmetric._lmnn_solver.evaluate_map`: the gradient is
        ``2 (C Z)^T X`` with ``Z = X L^T``.
        """
        Z = self.ops.project(self.X, L)
        loss, w, n_active = self._pair_weights(self._pairs.sq_distances(Z))
        grad = 2.0 * (self._pairs.laplacian_times(w, Z).T @ self.X)
        return Evaluation(loss, self.ops.bk.to_numpy(grad), n_active)

    def evaluate_metric(self, M):
        """Loss, gradient in ``M`` (host array) and active triplets at ``M``.

        As :func:`skmetric._lmnn_solver.evaluate_metric`: distances
        ``(x_a - x_b)^T M (x_a - x_b)``, gradient ``X^T C X``.
        """
        ops, X = self.ops, self.X
        Y = ops.project(X, M)
        # (x_a - x_b)^T M (x_a - x_b) = x_a.y_a + x_b.y_b - x_a.y_b - y_a.x_b, y = M x
        pairs = self._pairs
        q = (X * Y).sum(1)
        d_all = q[pairs.a] + q[pairs.b] - pairs.dots(X, Y) - pairs.dots(Y, X)
        loss, w, n_active = self._pair_weights(d_all)
        G = X.T @ pairs.laplacian_times(w, X)
        return Evaluation(loss, ops.bk.to_numpy(G), n_active)
