"""Positive semidefinite (PSD) matrices: projection and factorisation.

The one home for turning a symmetric matrix into a PSD one (eigenvalue clipping)
and for factoring a PSD Mahalanobis matrix ``M`` into ``L`` with ``M = L.T @ L``.
Every learner that optimises ``M`` directly (MMC, MCML, ITML, the convex LMNN
solver) goes through these functions.
"""

import numpy as np
from scipy import linalg

__all__ = ["psd_project", "components_from_metric", "symmetrize"]


def symmetrize(M):
    """Return ``(M + M.T) / 2``, a new array."""
    M = np.asarray(M, dtype=float)
    return (M + M.T) / 2.0


def _check_square(M, name="M"):
    M = np.asarray(M, dtype=float)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be a square 2-D matrix, got shape {M.shape}.")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return M


def _eigh(M):
    """Symmetric eigendecomposition that falls back to a robust driver.

    LAPACK's default divide-and-conquer driver can fail to converge on nearly
    degenerate matrices (metric-learn's MMC raised LinAlgError here); the
    'ev' driver is slower but more robust.
    """
    try:
        return linalg.eigh(M, check_finite=False)
    except linalg.LinAlgError:
        return linalg.eigh(M, driver="ev", check_finite=False)


def psd_project(M, min_eigenvalue=0.0, return_eigen=False):
    """Project a symmetric matrix onto the PSD cone (Frobenius-nearest).

    The matrix is symmetrised, then its eigenvalues are clipped from below at
    ``min_eigenvalue``.

    Parameters
    ----------
    M : array-like of shape (d, d)
        Matrix to project. Not modified.
    min_eigenvalue : float, default=0.0
        Eigenvalues below this value are set to it.
    return_eigen : bool, default=False
        Also return the clipped eigenvalues and the eigenvectors.

    Returns
    -------
    M_psd : ndarray of shape (d, d)
        The projection, exactly symmetric.
    eigenvalues, eigenvectors : ndarray
        Only when ``return_eigen=True``.
    """
    M = symmetrize(_check_square(M))
    w, V = _eigh(M)
    w = np.maximum(w, min_eigenvalue)
    M_psd = (V * w) @ V.T
    M_psd = symmetrize(M_psd)
    if return_eigen:
        return M_psd, w, V
    return M_psd


def components_from_metric(M, tol=None, strict=True):
    """Factor a PSD matrix ``M`` into ``L`` such that ``M = L.T @ L``.

    Parameters
    ----------
    M : array-like of shape (d, d)
        Symmetric positive semidefinite matrix.
    tol : float, default=None
        Eigenvalues down to ``-tol`` are treated as zero (round-off). Defaults
        to ``d * eps * max(|eigenvalue|)``, scaled up by 1e3 for safety.
    strict : bool, default=True
        If True, a matrix with an eigenvalue below ``-tol`` raises a
        ValueError. If False, it is projected onto the PSD cone first.

    Returns
    -------
    L : ndarray of shape (d, d)
        Rows are ``sqrt(eigenvalue) * eigenvector``, largest eigenvalue first.

    Raises
    ------
    ValueError
        If ``M`` is not square, not finite, not symmetric, or (with
        ``strict=True``) not positive semidefinite.
    """
    M = _check_square(M)
    scale = max(np.max(np.abs(M)), 1.0)
    if not np.allclose(M, M.T, rtol=1e-7, atol=1e-10 * scale):
        raise ValueError("The Mahalanobis matrix M must be symmetric.")
    w, V = _eigh(symmetrize(M))
    if tol is None:
        tol = 1e3 * M.shape[0] * np.finfo(float).eps * max(np.max(np.abs(w)), 1e-300)
    if strict and w.min() < -tol:
        raise ValueError(
            "The Mahalanobis matrix M is not positive semidefinite: its smallest "
            f"eigenvalue is {w.min():.3g}. Use skmetric.psd_project(M) to project it first."
        )
    w = np.clip(w, 0.0, None)
    order = np.argsort(w)[::-1]
    return np.sqrt(w[order])[:, None] * V[:, order].T
