"""Shared benchmark harness: data sets, folds, kNN evaluation, timing, tables.

Every benchmark evaluates ``StandardScaler -> learner -> k-NN`` (or a given
pipeline) on the same stratified folds, so methods and peers are comparable.
"""

import time
import tracemalloc

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

LOADERS = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}
DATASETS = tuple(LOADERS)


def load_dataset(name):
    """(X, y) for one of the data sets that ship with scikit-learn."""
    if name not in LOADERS:
        raise ValueError(f"Unknown data set {name!r}; choose from {sorted(LOADERS)}.")
    return LOADERS[name](return_X_y=True)


def stratified_folds(X, y, n_splits=3, seed=0):
    """The folds every method is evaluated on: a list of (train, test) indices."""
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(X, y))


def knn_pipeline(learner=None, n_neighbors=3, scale=True):
    """StandardScaler (optional) -> learner (optional) -> KNeighborsClassifier."""
    steps = [StandardScaler()] if scale else []
    if learner is not None:
        steps.append(learner)
    steps.append(KNeighborsClassifier(n_neighbors=n_neighbors))
    return make_pipeline(*steps)


def evaluate(pipeline, X, y, folds, measure_memory=False):
    """Fit and score a pipeline on each fold.

    Returns
    -------
    dict with 'errors' (kNN error per fold, in [0, 1]), 'fit_times' (seconds
    per fold, fit only) and, when ``measure_memory``, 'peak_mib' (largest
    Python-allocated peak over the folds, via tracemalloc; numpy buffers are
    tracked).
    """
    errors, fit_times, peaks = [], [], []
    for train, test in folds:
        model = clone(pipeline)
        if measure_memory:
            tracemalloc.start()
        t0 = time.perf_counter()
        model.fit(X[train], y[train])
        fit_times.append(time.perf_counter() - t0)
        if measure_memory:
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        errors.append(1.0 - model.score(X[test], y[test]))
    out = {"errors": np.array(errors), "fit_times": np.array(fit_times)}
    if measure_memory:
        out["peak_mib"] = float(max(peaks))
    return out


def summarize(result):
    """Mean/std of error (percent) and mean fit time from :func:`evaluate`."""
    e = 100 * result["errors"]
    return {
        "error_mean": float(e.mean()),
        "error_std": float(e.std()),
        "fit_time": float(result["fit_times"].mean()),
    }


def markdown_table(rows, columns):
    """A markdown table from a list of dicts, with the given column order."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in columns) + " |")
    return "\n".join(lines)
