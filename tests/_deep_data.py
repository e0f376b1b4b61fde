"""Small labelled data shared by the deep test files."""

import numpy as np


def blobs(n_per_class=20, n_features=5, n_classes=3, seed=0):
    """Gaussian classes around well separated centres: (X, y)."""
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=4.0, size=(n_classes, n_features))
    X = np.vstack([c + rng.normal(size=(n_per_class, n_features)) for c in centers])
    return X, np.repeat(np.arange(n_classes), n_per_class)
