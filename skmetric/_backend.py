"""Array backends for the chunked objectives: numpy on the host, or torch on a device.

An objective written once against a :class:`Backend` runs on numpy arrays
(``device=None``, the default of every learner) or on float64 torch tensors
(``device='cpu'``, ``'cuda'``, ``'cuda:1'``, ``'auto'``); the solver (scipy,
numpy parameters) and the estimator are the same either way. The operations an
objective may use on the arrays ``bk.xp`` works with are those numpy and torch
spell alike (``@``, ``+=``, slicing, integer-array indexing, ``.sum(axis)``,
``.T``, ``xp.exp(a, out=a)``, ``xp.clip(a, lo, None, out=a)``, ``xp.where``,
``xp.amin(a, axis)``); what they spell differently lives here:

* :meth:`Backend.asarray` / :meth:`Backend.to_numpy`: to and from the device
  (float64 by default, so that torch agrees with numpy to round-off);
* :meth:`Backend.zeros`, :meth:`Backend.arange`;
* products with a sparse matrix of ``K`` entries per row given as
  ``(index, weights)``: :meth:`Backend.gather_dots`, :meth:`Backend.gather_matmul`,
  :meth:`Backend.scatter_add` (numpy: scipy.sparse; torch: gather/index_add);
* :meth:`Backend.chunk_rows`: how many rows of an ``(n_rows, n_cols)`` block
  fit in the memory budget (scikit-learn's ``working_memory`` on the host,
  half the free GPU memory on CUDA), or a ValueError *before* anything is
  allocated saying how much one row needs;
* :meth:`Backend.sq_distances`: one block of squared Euclidean distances;
* :meth:`Backend.kneighbors`: each point's k nearest other points.

Device strings are resolved by :func:`skmetric._optional.resolve_device` (the
one place that reads them); without torch a device is an ImportError naming the
extra, and ``'cuda'`` without a GPU is a ValueError.
"""

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import gen_batches

from ._optional import import_torch, resolve_device

__all__ = ["Backend", "get_backend", "NUMPY"]

_MiB = 2**20


def _fmt_bytes(n_bytes):
    """``n_bytes`` in words: '512 B', '3.2 KiB', '95.4 MiB', '74.5 GiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{int(n_bytes)} B"


class Backend:
    """numpy (``device=None``) or float64 torch tensors on ``device``.

    Parameters
    ----------
    device : None, str or torch.device, default=None
        None computes with numpy. A device string ('cpu', 'cuda', 'cuda:1',
        'auto': CUDA when available, else the CPU) computes with torch there.
    purpose : str, default='This computation'
        Names the caller in the ImportError raised without torch.

    Attributes
    ----------
    xp : module
        ``numpy`` or ``torch``.
    device : torch.device or None
    """

    def __init__(self, device=None, purpose="This computation"):
        if device is None:
            self.xp, self.device = np, None
            return
        torch = import_torch(f"{purpose} with device={device!r}")
        dev = resolve_device(device)  # ValueError for unknown devices and missing GPUs
        self.xp, self.device = torch, dev

    @property
    def is_numpy(self):
        return self.device is None

    def __repr__(self):
        return "Backend(numpy)" if self.is_numpy else f"Backend(torch, {self.device})"

    # -- to and from the device ---------------------------------------------------

    def asarray(self, a, dtype="float64"):
        """``a`` as a contiguous array of this backend (``dtype`` 'float64' or 'int64')."""
        if self.is_numpy:
            return np.ascontiguousarray(a, dtype=dtype)
        torch = self.xp
        tdtype = getattr(torch, dtype)
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=tdtype)
        return torch.as_tensor(np.ascontiguousarray(a), dtype=tdtype, device=self.device)

    def to_numpy(self, a):
        """A numpy array (host memory) with the values of ``a``."""
        if self.is_numpy:
            return np.asarray(a)
        return a.detach().cpu().numpy()

    def zeros(self, shape):
        """float64 zeros."""
        if self.is_numpy:
            return np.zeros(shape)
        return self.xp.zeros(shape, dtype=self.xp.float64, device=self.device)

    def arange(self, start, stop):
        """Integer indices ``start .. stop - 1``."""
        if self.is_numpy:
            return np.arange(start, stop)
        return self.xp.arange(start, stop, device=self.device)

    def gather_dots(self, A, B, index):
        """``out[i, j] = A[i] . B[index[i, j]]``: dot products on a sparse pattern.

        ``A`` has shape (m, c), ``B`` (n, c) and ``index`` (m, K); returns (m, K).
        numpy gathers one column of ``index`` at a time (no (m, K, c) array).
        """
        if self.is_numpy:
            out = np.empty(index.shape)
            for j in range(index.shape[1]):
                out[:, j] = np.einsum("ic,ic->i", A, np.take(B, index[:, j], axis=0))
            return out
        return (B[index] @ A[:, :, None])[:, :, 0]

    def gather_matmul(self, index, weights, V):
        """``out[i] = sum_j weights[i, j] * V[index[i, j]]``, i.e. ``S @ V``.

        ``S`` is the sparse matrix of :meth:`scatter_add`.
        """
        if self.is_numpy:
            return self._sparse(index, weights, V.shape[0]) @ V
        return (weights[:, None, :] @ V[index])[:, 0, :]

    def _sparse(self, index, weights, n_cols):
        m, K = index.shape
        return sparse.csr_matrix(
            (weights.ravel(), index.ravel(), np.arange(0, m * K + 1, K)), shape=(m, n_cols)
        )

    def scatter_add(self, out, index, weights, values):
        """``out[index[i, j]] += weights[i, j] * values[i]`` for all ``i, j``; returns ``out``.

        That is ``out += S.T @ values`` for the sparse matrix ``S`` with
        ``S[i, index[i, j]] = weights[i, j]`` (repeated indices add up), e.g.
        the ``W^T Z`` of a gradient whose ``W`` has a few entries per row.
        ``index`` and ``weights`` have shape (m, K), ``values`` (m, c) and
        ``out`` (n, c).
        """
        m, K = index.shape
        if self.is_numpy:
            out += self._sparse(index, weights, out.shape[0]).T @ values
        else:
            out.index_add_(
                0, index.reshape(-1), (weights[:, :, None] * values[:, None, :]).reshape(m * K, -1)
            )
        return out

    # -- memory -------------------------------------------------------------------

    def memory_budget(self):
        """Bytes one block may take: ``working_memory`` (host), half the free GPU memory."""
        if self.device is not None and self.device.type == "cuda":
            free, _ = self.xp.cuda.mem_get_info(self.device)
            return free // 2
        return int(get_config()["working_memory"] * _MiB)

    def chunk_rows(self, n_rows, row_bytes, what="this computation", chunk_rows=None):
        """Rows of a block (``row_bytes`` each) that fit in :meth:`memory_budget`.

        ``chunk_rows`` given is used as is (clipped to ``[1, n_rows]``).
        Raises a ValueError, before anything is allocated, when not even one
        row fits.
        """
        if chunk_rows is not None:
            return max(1, min(n_rows, int(chunk_rows)))
        budget = self.memory_budget()
        if row_bytes > budget:
            on_gpu = self.device is not None and self.device.type == "cuda"
            where = "half the free GPU memory" if on_gpu else "sklearn's working_memory"
            raise ValueError(
                f"{what} needs {_fmt_bytes(row_bytes)} for one row of its blocks "
                f"({n_rows} rows: {_fmt_bytes(row_bytes * n_rows)} in one block), more "
                f"than the memory budget of {_fmt_bytes(budget)} ({where}); nothing "
                "was allocated."
            )
        return max(1, min(n_rows, budget // max(1, row_bytes)))

    # -- distances and neighbours ----------------------------------------------------

    def sq_distances(self, A, B, sq_a=None, sq_b=None):
        """Squared Euclidean distances between the rows of ``A`` and ``B`` (clipped at 0)."""
        sq_a = (A * A).sum(1) if sq_a is None else sq_a
        sq_b = (B * B).sum(1) if sq_b is None else sq_b
        D = A @ B.T
        D *= -2.0
        D += sq_a[:, None]
        D += sq_b[None, :]
        self.xp.clip(D, 0.0, None, out=D)
        return D

    def kneighbors(self, Z, k):
        """Each row's ``k`` nearest other rows of ``Z``, nearest first.

        Returns numpy arrays ``(sq_dist, index)`` of shape (n, k): squared
        Euclidean distances and indices, a point never being its own
        neighbour. On the host this is :class:`sklearn.neighbors.NearestNeighbors`;
        on CUDA, blocks of distances and ``topk`` on the device.
        """
        if self.device is None or self.device.type != "cuda":
            nn = NearestNeighbors(n_neighbors=k).fit(self.to_numpy(Z))
            dist, ind = nn.kneighbors()
            return dist**2, ind
        return self._kneighbors_by_blocks(Z, k)

    def _kneighbors_by_blocks(self, Z, k):
        """:meth:`kneighbors` with torch on the device: blocks of distances and ``topk``."""
        torch = self.xp
        n = Z.shape[0]
        sq = (Z * Z).sum(1)
        dists, inds = [], []
        for rows in gen_batches(n, self.chunk_rows(n, 16 * n, "kneighbors")):
            D = self.sq_distances(Z[rows], Z, sq[rows], sq)
            idx = self.arange(rows.start, rows.stop)
            D[idx - rows.start, idx] = torch.inf
            d, i = torch.topk(D, k, dim=1, largest=False, sorted=True)
            dists.append(self.to_numpy(d))
            inds.append(self.to_numpy(i))
        return np.concatenate(dists), np.concatenate(inds)


#: The numpy backend (``device=None``).
NUMPY = Backend(None)


def get_backend(device, purpose="This computation"):
    """A :class:`Backend` for ``device`` (None: numpy; a Backend is returned as is)."""
    if isinstance(device, Backend):
        return device
    return NUMPY if device is None else Backend(device, purpose)
