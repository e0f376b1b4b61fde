"""Local Fisher Discriminant Analysis (LFDA)."""

from numbers import Integral

import numpy as np
from scipy import linalg
from sklearn import get_config
from sklearn.base import _fit_context
from sklearn.utils import gen_batches
from sklearn.utils._param_validation import Interval, StrOptions

from ._init import data_scale, resolve_n_components, unscale_result
from ._solver import SolverResult
from ._subspace import data_subspace, pad_rows
from ._validation import check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin

__all__ = ["LFDA", "fit_lfda"]


def _row_chunks(n_rows, n_cols):
    """Row batches so that a few float64 (rows x n_cols) arrays fit in working_memory."""
    rows = int(get_config()["working_memory"] * 2**20 // (32 * max(n_cols, 1)))
    return gen_batches(n_rows, max(1, min(n_rows, rows)))


def _sq_dist(A, B, sq_a, sq_b):
    d = sq_a[:, None] + sq_b[None, :] - 2.0 * (A @ B.T)
    return np.maximum(d, 0.0, out=d)


def local_scaling(Xc, k):
    """Distance of each point to its ``k``-th nearest neighbour in ``Xc``.

    The point itself counts as neighbour 0 (Zelnik-Manor & Perona; as in
    Sugiyama's code). ``k`` is capped at ``len(Xc) - 1``. Computed in row
    chunks: memory O(chunk * len(Xc)).
    """
    n = Xc.shape[0]
    k = min(k, n - 1)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    sigma = np.empty(n)
    for rows in _row_chunks(n, n):
        d = _sq_dist(Xc[rows], Xc, sq[rows], sq)
        sigma[rows] = np.sqrt(np.partition(d, k, axis=1)[:, k])
    return sigma


def local_affinity_scatter(Xc, sigma):
    """``1/2 sum_ij A_ij (x_i - x_j)(x_i - x_j)^T`` with the local-scaling affinity.

    ``A_ij = exp(-||x_i - x_j||^2 / (sigma_i sigma_j))`` (0 where the scale
    is 0). Equals ``Xc^T (diag(A 1) - A) Xc`` since ``A`` is symmetric; rows
    of ``A`` are computed in chunks.
    """
    n, d = Xc.shape
    sq = np.einsum("ij,ij->i", Xc, Xc)
    G = np.zeros((d, d))
    for rows in _row_chunks(n, n):
        dist = _sq_dist(Xc[rows], Xc, sq[rows], sq)
        scale = sigma[rows, None] * sigma[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            A = np.where(scale > 0, np.exp(-dist / scale), 0.0)
        Xr = Xc[rows]
        G += Xr.T @ (A.sum(axis=1)[:, None] * Xr) - Xr.T @ (A @ Xc)
    return G


def local_fisher_scatters(X, y, k):
    """LFDA's local within-class and local between-class scatter matrices.

    With ``W^lw_ij = A_ij / n_c`` and ``W^lb_ij = A_ij (1/n - 1/n_c)`` for
    ``y_i = y_j = c``, and ``W^lw_ij = 0``, ``W^lb_ij = 1/n`` otherwise,
    ``S = 1/2 sum_ij W_ij (x_i - x_j)(x_i - x_j)^T``. Only within-class
    affinities are formed (class by class, in chunks), using
    ``S^lb = S^t - sum_c (n_c / n) S_c + sum_c (1/n - 1/n_c) G_c``, with
    ``S^t`` the total scatter, ``S_c`` class c's scatter about its mean and
    ``G_c`` its affinity-weighted scatter.

    Returns
    -------
    S_lb, S_lw : ndarray of shape (n_features, n_features)
    """
    n, d = X.shape
    Xc_all = X - X.mean(axis=0)
    S_lb = Xc_all.T @ Xc_all
    S_lw = np.zeros((d, d))
    for c in np.unique(y):
        Xc = Xc_all[y == c]
        n_c = Xc.shape[0]
        if n_c < 2:
            continue  # a lone point has no within-class pair
        G = local_affinity_scatter(Xc, local_scaling(Xc, k))
        centred = Xc - Xc.mean(axis=0)
        S_lw += G / n_c
        S_lb += (1.0 / n - 1.0 / n_c) * G - (n_c / n) * (centred.T @ centred)
    return (S_lb + S_lb.T) / 2.0, (S_lw + S_lw.T) / 2.0


def fit_lfda(X, y, n_components, k=7, embedding_type="weighted"):
    """LFDA in closed form: the generalised eigenproblem ``S^lb phi = lambda S^lw phi``.

    Solved in the subspace the data span (:func:`skmetric._subspace.data_subspace`),
    with a ridge of ``1e-9 * trace(S^lw) / dim`` on ``S^lw``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int
        Encoded class labels.
    n_components : int
        Rows of the result (zero rows pad it beyond the data's rank).
    k : int, default=7
        Neighbour of the local scaling.
    embedding_type : {'weighted', 'orthonormalized', 'plain'}, default='weighted'
        See :class:`LFDA`.

    Returns
    -------
    SolverResult
        ``components`` is the map ``T^T`` (largest-magnitude entry of each row
        positive); ``loss`` is minus LFDA's maximised objective
        ``tr((T^T S^lw T)^{-1} T^T S^lb T)``, i.e. minus the sum of the kept
        eigenvalues (``info['eigenvalues']``, largest first); ``n_iter=0``,
        ``converged=True``.
    """
    P = data_subspace(X)
    if P.shape[0] == 0:
        raise ValueError("All samples in X are identical; LFDA cannot learn a metric.")
    S_lb, S_lw = local_fisher_scatters(X @ P.T, y, k)
    dim = S_lw.shape[0]
    trace = np.trace(S_lw)
    if trace <= 0:
        raise ValueError(
            "LFDA needs within-class variation: every class has a single point "
            "or identical points, so the local within-class scatter is zero."
        )
    S_lw.flat[:: dim + 1] += 1e-9 * trace / dim
    r = min(n_components, dim)
    vals, vecs = linalg.eigh(S_lb, S_lw, subset_by_index=[dim - r, dim - 1])
    vals, vecs = vals[::-1], vecs[:, ::-1]
    if embedding_type == "weighted":
        vecs = vecs * np.sqrt(np.clip(vals, 0.0, None))
    elif embedding_type == "orthonormalized":
        vecs = np.linalg.qr(vecs)[0]
    # Deterministic signs: the largest-magnitude entry of each direction is positive.
    signs = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(r)])
    vecs = vecs * np.where(signs == 0, 1.0, signs)
    return SolverResult(
        pad_rows(vecs.T @ P, n_components), -float(np.sum(vals)), 0, True, "closed form",
        info={"eigenvalues": vals},
    )


class LFDA(LabelSupervisedMixin, BaseMahalanobis):
    """Local Fisher Discriminant Analysis (Sugiyama, 2007).

    Fisher discriminant analysis with locality: pairs of same-class points
    are weighted by the affinity ``A_ij = exp(-||x_i - x_j||^2 /
    (sigma_i sigma_j))``, where ``sigma_i`` is the distance from ``x_i`` to
    its ``k``-th nearest neighbour within its class (local scaling), so that
    multimodal classes are not forced into one cluster. With the local
    within-class and between-class scatters

        S^lw = 1/2 sum_ij W^lw_ij (x_i - x_j)(x_i - x_j)^T,
        W^lw_ij = A_ij / n_c            if y_i = y_j = c, else 0,
        S^lb = 1/2 sum_ij W^lb_ij (x_i - x_j)(x_i - x_j)^T,
        W^lb_ij = A_ij (1/n - 1/n_c)    if y_i = y_j = c, else 1/n,

    LFDA maximises ``tr((T^T S^lw T)^{-1} T^T S^lb T)``, solved in closed
    form by the generalised eigenproblem ``S^lb phi = lambda S^lw phi``
    (eigenvectors normalised so that ``phi^T S^lw phi = 1``), keeping the
    ``n_components`` largest eigenvalues (:func:`fit_lfda`). Affinities are computed class by
    class in row chunks (memory O(chunk * n_c), never n x n).

    The problem is solved in the subspace the training data span (their
    numerical rank); directions without variance get weight zero and
    ``components_`` is padded with zero rows up to ``n_components``. If
    ``S^lw`` is singular there (for instance a feature that varies between
    classes only), a ridge of ``1e-9 * trace(S^lw) / k`` keeps the problem
    well posed.

    The affinities and eigenvalues do not depend on the units of ``X`` and
    the 'weighted' and 'plain' maps are divided by ``c`` when ``X`` is
    multiplied by ``c`` (the 'orthonormalized' one does not change): LFDA is
    fitted on ``X / s`` (``s`` the power of two nearest the RMS spread of
    the features, :func:`skmetric._init.data_scale`) and mapped back, which
    gives the same map without squaring large or tiny numbers; data whose
    spread is beyond about ``1e+-150`` are refused with a ValueError.

    Parameters
    ----------
    n_components : int, default=None
        Output dimension; None means ``n_features``.
    k : int, default=7
        Neighbour used for the local scaling ``sigma_i`` (the paper's and
        its code's default is 7); capped at ``n_c - 1`` in a class of
        ``n_c`` points.
    embedding_type : {'weighted', 'orthonormalized', 'plain'}, default='weighted'
        'weighted': eigenvectors scaled by ``sqrt(lambda)`` (negative
        eigenvalues are clipped to 0); 'orthonormalized': an orthonormal
        basis of the same subspace (QR); 'plain': the eigenvectors as they
        are.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned map (the transposed transformation matrix ``T``).
    eigenvalues_ : ndarray of shape (n_kept,)
        The generalised eigenvalues of the kept directions, largest first.
    loss_ : float
        Minus the maximised trace ratio, ``-eigenvalues_.sum()`` (lower is
        better, as for every learner).
    n_iter_ : int
        0: LFDA is closed form.
    converged_ : bool
        Always True (closed form).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    M. Sugiyama. Dimensionality Reduction of Multimodal Labeled Data by Local
    Fisher Discriminant Analysis. Journal of Machine Learning Research,
    8:1027-1061, 2007.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import LFDA
    >>> X, y = load_iris(return_X_y=True)
    >>> LFDA(n_components=2).fit(X, y).transform(X).shape
    (150, 2)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "k": [Interval(Integral, 1, None, closed="left")],
        "embedding_type": [StrOptions({"weighted", "orthonormalized", "plain"})],
    }

    def __init__(self, n_components=None, *, k=7, embedding_type="weighted"):
        self.n_components = n_components
        self.k = k
        self.embedding_type = embedding_type

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the LFDA map from labelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable type).

        Returns
        -------
        self
        """
        X, y_enc, self.classes_ = check_labeled_data(self, X, y)
        n_out = resolve_n_components(self.n_components, X.shape[1])
        # The scatters of X / s are those of X over s**2: fit on data of unit
        # spread (no overflow; data beyond ~1e+-150 are refused) and map back,
        # exactly (s is a power of two). 'weighted' and 'plain' maps scale
        # like 1 / X; the orthonormal basis of 'orthonormalized' does not.
        scale = data_scale(X, self)
        result = fit_lfda(np.asarray(X, dtype=np.float64) / scale, y_enc, n_out, self.k,
                          self.embedding_type)
        if self.embedding_type != "orthonormalized":
            result = unscale_result(result, scale)
        self.eigenvalues_ = result.info["eigenvalues"]
        return self._store_result(result)
