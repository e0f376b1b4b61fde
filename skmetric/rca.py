"""Relevant Components Analysis (RCA)."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data

from ._init import data_scale, resolve_n_components, unscale_result
from ._psd import _eigh
from ._solver import SolverResult
from ._subspace import data_subspace, pad_rows
from ._validation import FLOAT_DTYPES, check_labeled_data
from .base import BaseMahalanobis, LabelSupervisedMixin
from .constraints import sample_chunklets

__all__ = ["RCA", "fit_rca"]

# Eigenvalues of the chunklet covariance at most this fraction of the largest
# count as zero (no within-chunklet variance in that direction).
_RANK_RTOL = 1e-12


class RCA(LabelSupervisedMixin, BaseMahalanobis):
    """Relevant Components Analysis (Bar-Hillel et al., 2003).

    RCA learns from *chunklets*: small groups of points known to belong to the
    same (unknown) class. Variability inside a chunklet is irrelevant to the
    class, so RCA whitens it: with the within-chunklet covariance

        C = 1/N sum_chunklets sum_{x in chunklet} (x - m_chunklet)(x - m_chunklet)^T

    (``N`` points in chunklets of at least two points), the learned metric is
    ``M = C^{-1}`` and the map is ``L = C^{-1/2}``, so that the chunklet
    covariance of the transformed data is the identity. Nothing is optimised
    iteratively: RCA is the closed-form maximum-likelihood / information
    maximising solution of the papers.

    Two ways to fit:

    * ``fit(X, y)`` with class labels: ``num_chunks`` chunklets of
      ``chunk_size`` same-class points are drawn with
      :func:`skmetric.constraints.sample_chunklets`;
    * ``fit_chunklets(X, chunks)`` with chunklets given directly, as an
      array of chunklet ids (``-1`` for points in no chunklet).

    Singular covariance. As the paper recommends, RCA first reduces the
    dimension with PCA of all of ``X``: onto the directions in which the
    data vary at all (numerical rank), and onto the top ``n_components``
    principal directions when ``n_components`` is given. Directions dropped
    there get weight zero (``components_`` is padded with zero rows to
    ``n_components`` rows, or ``n_features`` rows when None). Inside that
    subspace ``C`` can still be singular when the chunklets are too few to
    span it; ``reg * trace(C) / k`` is added to its diagonal, so a direction
    without within-chunklet variance gets a large but finite weight
    (about ``1 / sqrt(reg)`` times a typical one), and a UserWarning says how
    many directions that concerns. With ``reg=0`` a singular ``C`` raises a
    ValueError instead. The closed form is :func:`fit_rca`.

    ``L = C^{-1/2} P`` is divided by ``c`` when ``X`` is multiplied by
    ``c``: RCA is fitted on ``X / s`` (``s`` the power of two nearest the
    RMS spread of the features, :func:`skmetric._init.data_scale`) and
    ``L`` divided by ``s`` after, which gives the same metric without
    squaring large or tiny numbers; data whose spread is beyond about
    ``1e+-150`` are refused with a ValueError (the metric itself would
    leave float64).

    Parameters
    ----------
    n_components : int, default=None
        Output dimension; at most this many principal directions of ``X``
        are kept before whitening. None means ``n_features``.
    num_chunks : int, default=None
        Chunklets drawn by ``fit(X, y)``; None uses as many as the classes
        can host (every class split into disjoint chunklets).
    chunk_size : int, default=2
        Points per chunklet drawn by ``fit(X, y)``.
    reg : float, default=1e-3
        Ridge added to ``C``, relative to its mean eigenvalue.
    random_state : int, RandomState instance or None, default=None
        Seed of the chunklet sampling in ``fit(X, y)``.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned map ``L``; ``L.T @ L`` is the (pseudo-)inverse of the
        regularised within-chunklet covariance in the kept subspace.
    n_chunks_ : int
        Number of chunklets (of at least two points) used.
    n_iter_ : int
        0: RCA is closed form.
    loss_ : float
        nan: nothing is optimised.
    converged_ : bool
        Always True (closed form).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has string feature names.

    References
    ----------
    A. Bar-Hillel, T. Hertz, N. Shental and D. Weinshall. Learning Distance
    Functions using Equivalence Relations. ICML 2003, pages 11-18.
    A. Bar-Hillel, T. Hertz, N. Shental and D. Weinshall. Learning a
    Mahalanobis Metric from Equivalence Constraints. JMLR 6:937-965, 2005.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import RCA
    >>> X, y = load_iris(return_X_y=True)
    >>> RCA(random_state=0).fit(X, y).transform(X).shape
    (150, 4)
    >>> chunks = np.full(len(X), -1)
    >>> chunks[[0, 1, 2]] = 0      # three points known to share a class
    >>> chunks[[50, 51]] = 1
    >>> chunks[[100, 101, 102]] = 2
    >>> RCA(n_components=2).fit_chunklets(X, chunks).components_.shape
    (2, 4)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "num_chunks": [Interval(Integral, 1, None, closed="left"), None],
        "chunk_size": [Interval(Integral, 2, None, closed="left")],
        "reg": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self, n_components=None, *, num_chunks=None, chunk_size=2, reg=1e-3, random_state=None
    ):
        self.n_components = n_components
        self.num_chunks = num_chunks
        self.chunk_size = chunk_size
        self.reg = reg
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the metric from class labels (chunklets drawn from ``y``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable type).

        Returns
        -------
        self
        """
        X, y_enc, _ = check_labeled_data(self, X, y)
        chunks = sample_chunklets(y_enc, self.num_chunks, self.chunk_size, self.random_state)
        return self._fit(X, chunks)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_chunklets(self, X, chunks):
        """Learn the metric from chunklets given directly.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            All points; those in no chunklet still count for the PCA step.
        chunks : array-like of shape (n_samples,), int
            Chunklet id of each point (any non-negative integers), or -1 for
            a point in no chunklet. Chunklets of a single point carry no
            information and are ignored; at least one chunklet must have two
            points. ``num_chunks``, ``chunk_size`` and ``random_state`` are
            not used.

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        chunks = np.asarray(chunks)
        if chunks.ndim != 1 or chunks.shape[0] != X.shape[0]:
            raise ValueError(
                f"chunks must be a 1-D array with one id per sample ({X.shape[0]}), "
                f"got shape {chunks.shape}."
            )
        integral_floats = (
            chunks.dtype.kind == "f"
            and np.all(np.isfinite(chunks))
            and np.all(chunks == np.round(chunks))
        )
        if chunks.dtype.kind not in "iu" and not integral_floats:
            raise ValueError(
                f"chunks must hold integer chunklet ids (-1 for none), got dtype {chunks.dtype}."
            )
        chunks = chunks.astype(np.intp)
        if np.any(chunks < -1):
            raise ValueError("chunks must hold ids >= 0, or -1 for points in no chunklet.")
        return self._fit(X, chunks)

    def _fit(self, X, chunks):
        n_out = resolve_n_components(self.n_components, X.shape[1])
        # C^{-1/2} of X / s is s times that of X: fit on data of unit spread
        # (no overflow of the covariance; data beyond ~1e+-150 are refused)
        # and map back, exactly (s is a power of two).
        scale = data_scale(X, self)
        result = fit_rca(np.asarray(X, dtype=np.float64) / scale, chunks, n_out, self.reg)
        result = unscale_result(result, scale)
        self.n_chunks_ = result.info["n_chunks"]
        return self._store_result(result)


def fit_rca(X, chunks, n_components, reg):
    """RCA in closed form: whiten the within-chunklet covariance in the data subspace.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    chunks : ndarray of shape (n_samples,), int
        Chunklet id of each point, -1 for none; chunklets of one point are ignored.
    n_components : int
        Rows of the result; at most this many principal directions of ``X``
        are kept before whitening (zero rows pad the rest).
    reg : float
        Ridge ``reg * trace(C) / k`` added to the chunklet covariance ``C``
        (``k`` its dimension). A UserWarning says how many directions had no
        within-chunklet variance and were only kept finite by the ridge; with
        ``reg=0`` such a ``C`` raises a ValueError.

    Returns
    -------
    SolverResult
        ``components`` is ``C^{-1/2} P`` (``P`` the kept principal directions),
        padded; ``n_iter=0``, ``converged=True`` and ``loss`` nan (nothing is
        optimised). ``info['n_chunks']`` is the number of chunklets used.
    """
    n_features = X.shape[1]
    # Chunklets of at least two points; centre each one on its mean.
    member = chunks >= 0
    ids, inverse, sizes = np.unique(chunks[member], return_inverse=True, return_counts=True)
    keep = sizes[inverse] >= 2
    if not np.any(keep):
        raise ValueError(
            "RCA needs at least one chunklet of 2 or more points; got "
            f"{ids.size} chunklet(s), none with 2 points."
        )
    Xm = X[member][keep]
    inv = np.unique(inverse[keep], return_inverse=True)[1]
    n_chunks = int(inv.max()) + 1
    means = np.zeros((n_chunks, n_features))
    np.add.at(means, inv, Xm)
    means /= np.bincount(inv, minlength=n_chunks)[:, None]
    centred = Xm - means[inv]

    # PCA step (paper): keep the directions the data vary in, at most n_components.
    P = data_subspace(X, n_components=n_components)
    if P.shape[0] == 0:
        raise ValueError("All samples in X are identical; RCA cannot learn a metric.")
    Cp = centred @ P.T
    C = Cp.T @ Cp / Cp.shape[0]
    k = C.shape[0]
    scale = np.trace(C) / k
    if scale <= 0:
        raise ValueError(
            "The points of every chunklet are identical (zero within-chunklet "
            "variance); RCA cannot whiten it."
        )
    if reg > 0:
        w0 = np.linalg.eigvalsh(C)
        n_flat = int(np.sum(w0 <= _RANK_RTOL * w0.max()))
        if n_flat:
            warnings.warn(
                f"The within-chunklet covariance is rank deficient: {n_flat} of {k} "
                f"directions have no within-chunklet variance and were regularised by the "
                f"ridge reg={reg:g} (they get a large weight, about 1/sqrt(reg) times a "
                "typical one). Use more chunklets or a smaller n_components.",
                UserWarning,
                stacklevel=2,
            )
    C.flat[:: k + 1] += reg * scale
    w, V = _eigh(C)
    if w.min() <= _RANK_RTOL * w.max():
        rank = int(np.sum(w > _RANK_RTOL * w.max()))
        raise ValueError(
            f"The within-chunklet covariance is singular (rank {rank} of {k}): the "
            "chunklets do not span the data. Use reg > 0, a smaller n_components, "
            "or more chunklets."
        )
    whiten = (V / np.sqrt(w)) @ V.T  # C^{-1/2}, symmetric
    return SolverResult(
        pad_rows(whiten @ P, n_components), np.nan, 0, True, "closed form",
        info={"n_chunks": n_chunks},
    )
