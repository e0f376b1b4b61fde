"""Synthetic feature matrices (``skmetric.datasets.make_*``) for metric-learning tests and demos."""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_elongated_classes"]


def make_elongated_classes(n_samples=300, n_features=8, n_classes=3, n_long=3,
                           long_scale=3.0, short_scale=0.3, random_state=0):
    """Classes centred at the origin, each elongated in its own random subspace.

    Class ``c`` is Gaussian with standard deviation ``long_scale`` in a
    random ``n_long``-dimensional subspace and ``short_scale`` across it,
    different for every class; all classes share the mean 0, so they overlap
    near the origin. No single linear metric fits every class's shape, while
    one metric per class does (Weinberger & Saul, JMLR 2009, section 5.3).

    Parameters
    ----------
    n_samples : int, default=300
        Total number of samples, split evenly over the classes (the
        remainder goes to the first classes).
    n_features : int, default=8
    n_classes : int, default=3
    n_long : int, default=3
        Dimension of each class's elongated subspace (at most n_features).
    long_scale, short_scale : float, default=3.0, 0.3
        Standard deviations along and across the elongated subspace.
    random_state : int, RandomState instance or None, default=0

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,), int64
    """
    if not 1 <= n_long <= n_features:
        raise ValueError(f"n_long={n_long} must be between 1 and n_features={n_features}.")
    rng = check_random_state(random_state)
    sizes = np.full(n_classes, n_samples // n_classes)
    sizes[: n_samples % n_classes] += 1
    scales = np.full(n_features, float(short_scale))
    scales[:n_long] = long_scale
    parts = []
    for size in sizes:
        rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
        parts.append((rng.standard_normal((size, n_features)) * scales) @ rotation.T)
    return np.vstack(parts), np.repeat(np.arange(n_classes, dtype=np.int64), sizes)
