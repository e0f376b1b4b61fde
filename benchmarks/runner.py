"""One way to run methods on data sets, and one row schema for every result.

A row is one fit: ``method, dataset, fold, error, fit_time_s, cpu_time_s,
n_iter, converged, warnings, first_warning, status`` plus the method's
metadata (``kind, family, peer_of``), the data's size (``n, d``) and any
extra columns a protocol adds (``peak_mib``, ``n_way``, ``accuracy``, ...).
``error`` is a fraction in [0, 1]; a method that fails or is not run gives
one row with ``fold`` None and the reason in ``status``. Warnings raised
during a fit are counted in the row, not printed; :func:`warning_lines`
summarises them, one line per method.

What comes next fits this shape: a new learner is one registry entry; an
unseen-class protocol is a function like :func:`evaluate` that holds classes
out and adds ``accuracy`` / ``mAP@R`` columns (as bench_oneshot's episodes
do); a scaling run in a child process adds ``peak_rss_mib``; GPU rows add a
``device`` column.
"""

import time
import traceback
import warnings

import numpy as np

from . import registry

COLUMNS = (
    "method", "dataset", "fold", "error", "fit_time_s", "cpu_time_s", "n_iter", "converged",
    "warnings", "first_warning", "status", "kind", "family", "peer_of", "n", "d",
)


def make_row(method=None, **fields):
    """A row with every column of the schema (None where unknown), extras after them."""
    row = dict.fromkeys(COLUMNS)
    if method is not None:
        row.update(method=method.name, kind=method.kind, family=method.family)
        row["peer_of"] = method.peer_of
    row.update(fields)
    return row


def _iterations(model):
    """(n_iter_, converged_) of the learner inside a fitted model (None if it has none)."""
    for step in reversed([s for _, s in getattr(model, "steps", [])]):
        found = _iterations(step)
        if found != (None, None):
            return found
    if hasattr(model, "n_iter_"):
        n, conv = model.n_iter_, getattr(model, "converged_", None)
        return int(np.max(n)), None if conv is None else bool(conv)
    inner = getattr(model, "estimator_", None)  # SubsampleFit and other wrappers
    return (None, None) if inner is None else _iterations(inner)


def timed_fit(model, X, y=None, memory=False, **fit_params):
    """Fit ``model`` (with ``fit_params``); the row fields of the fit (warnings caught and counted).

    ``memory``: also ``peak_mib``, the largest Python allocation during the
    fit (tracemalloc; numpy buffers are tracked).
    """
    import tracemalloc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if memory:
            tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(X, y, **fit_params)
        out = {"fit_time_s": time.perf_counter() - t0, "cpu_time_s": time.process_time() - c0}
        if memory:
            out["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    out["n_iter"], out["converged"] = _iterations(model)
    out["warnings"] = len(caught)
    if caught:
        w = caught[0]
        out["first_warning"] = f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}"
    return out


def knn_error(Z_train, y_train, Z_test, y_test):
    """3-NN test error (%) in an embedding."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=registry.N_NEIGHBORS).fit(Z_train, y_train)
    return 100 * (1 - knn.score(Z_test, y_test))


def _first_line(exc, limit):
    """``Type: message`` of the first line; a long line keeps its head and its tail
    (where wrappers put the original error)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if len(text) > limit:
        text = f"{text[:limit // 2]} ... {text[-(limit // 2):]}"
    return f"{type(exc).__name__}: {text}"


def failure(exc):
    """The status and traceback of a fit that raised.

    Where a library wraps the real error, it stays visible: a long message keeps
    its tail (metric-learn's SDML ends its RuntimeError with scikit-learn's
    TypeError), and a chained exception is named as the cause.
    """
    status = f"failed: {_first_line(exc, 200)}"
    root, seen = exc, {id(exc)}
    while (root.__cause__ or root.__context__) is not None and \
            id(root.__cause__ or root.__context__) not in seen:
        root = root.__cause__ or root.__context__
        seen.add(id(root))
    if root is not exc:
        status += f" (cause: {_first_line(root, 200)})"
    return {"status": status, "traceback": traceback.format_exc(limit=5)}


def evaluate(method, dataset, folds, seed=0, quick=False, overrides=None):
    """Fit and score one method on each fold: a row per fold; failures are rows too."""
    from sklearn.base import clone

    size = {"dataset": dataset.name, "n": int(len(dataset.y)), "d": int(dataset.X.shape[1])}
    reason = registry.not_run_reason(method, dataset)
    if reason:
        return [make_row(method, **size, status=reason)]
    X, y = (dataset.images if method.data == "images" else dataset.X), dataset.y
    try:
        pipe = registry.build_pipeline(method, dataset, seed, quick, overrides)
        rows = []
        for fold, (train, test) in enumerate(folds):
            model = clone(pipe)
            fit = timed_fit(model, X[train], y[train])
            error = 1.0 - model.score(X[test], y[test])
            rows.append(make_row(method, **size, fold=fold, error=error, **fit, status="ok"))
        return rows
    except registry.MissingMethod:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing peer is a result
        return [make_row(method, **size, **failure(exc))]


def fit_on_subsample(method, X, y, n, seed=0, quick=False, dataset="digits"):
    """One fit on a stratified subsample of size n (no test): a scaling row."""
    from .data import Dataset, stratified_subsample

    idx = stratified_subsample(y, n, seed)
    ds = Dataset(dataset, X[idx], y[idx])
    size = {"dataset": dataset, "n": int(len(idx)), "d": int(X.shape[1]), "protocol": "scaling"}
    try:
        pipe = registry.build_pipeline(method, ds, seed=seed, quick=quick)
        return [make_row(method, **size, **timed_fit(pipe, ds.X, ds.y), status="ok")]
    except Exception as exc:  # noqa: BLE001
        return [make_row(method, **size, **failure(exc))]


def _call(func, method_name, *args):
    # Methods travel by name: their factories are looked up in the worker.
    return func(registry.get_method(method_name), *args)


def execute(tasks, n_jobs=1, progress=False):
    """Run ``(size, func, method_name, *args)`` tasks, biggest first; all their rows.

    ``n_jobs`` > 1 runs them in joblib processes (results do not depend on it).
    """
    from joblib import Parallel, delayed, effective_n_jobs
    from tqdm.auto import tqdm

    tasks = sorted(tasks, key=lambda t: -t[0])
    rows = []
    with tqdm(total=len(tasks), desc="benchmark runs", unit="run", disable=not progress) as bar:
        gen = Parallel(n_jobs=effective_n_jobs(n_jobs), return_as="generator_unordered")(
            delayed(_call)(*t[1:]) for t in tasks
        )
        for out in gen:
            rows += out
            bar.set_postfix_str(f"done {out[0]['dataset']}/{out[0]['method']}"[:45])
            bar.update()
    return rows


def evaluation_tasks(methods, datasets, n_splits=registry.N_SPLITS, seed=0, quick=False,
                     overrides=None, n_folds=None):
    """The tasks of :func:`run`: every applicable (method, data set) pair."""
    from .data import stratified_folds

    tasks = []
    for ds in datasets:
        folds = stratified_folds(ds.X, ds.y, n_splits=n_splits, seed=seed)[:n_folds]
        size = ds.X.shape[0] * ds.X.shape[1]
        for m in methods:
            if registry.applicable(m, ds):
                tasks.append((size, evaluate, m.name, ds, folds, seed, quick, overrides))
    return tasks


def run(methods, datasets, n_splits=registry.N_SPLITS, seed=0, quick=False, overrides=None,
        n_folds=None, n_jobs=1, progress=False):
    """Every method on every data set's stratified folds (the same folds for all).

    ``overrides`` change :func:`registry.settings`; ``n_folds`` keeps only the
    first folds. Returns the rows ordered by data set, method and fold.
    """
    tasks = evaluation_tasks(methods, datasets, n_splits, seed, quick, overrides, n_folds)
    return ordered(execute(tasks, n_jobs, progress), methods, [d.name for d in datasets])


def ordered(rows, methods, datasets=None):
    """Rows sorted by data set (in ``datasets`` order), method (``methods`` order), fold/n."""
    m_order = {m.name: i for i, m in enumerate(methods)}
    d_order = {d: i for i, d in enumerate(datasets or [])}
    return sorted(
        rows,
        key=lambda r: (d_order.get(r["dataset"], 0), m_order[r["method"]], r["fold"] or 0, r["n"]),
    )


def summarize(rows):
    """One row per (data set, method): error mean/std in percent, mean times, sums."""
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    out = []
    for rs in groups.values():
        s = {k: rs[0][k] for k in ("dataset", "method", "kind", "family", "peer_of", "n", "d")}
        s["status"] = rs[0]["status"]
        if s["status"] == "ok":
            e = 100 * np.array([r["error"] for r in rs])
            conv = [r["converged"] for r in rs]
            s.update(
                error_mean=float(e.mean()),
                error_std=float(e.std()),
                fit_time_s=float(np.mean([r["fit_time_s"] for r in rs])),
                cpu_time_s=float(np.mean([r["cpu_time_s"] for r in rs])),
                n_iter=max((r["n_iter"] for r in rs if r["n_iter"] is not None), default=None),
                converged=None if None in conv else all(conv),
                warnings=sum(r["warnings"] for r in rs),
                errors=[float(v) for v in e / 100],
            )
        out.append(s)
    return out


def add_ratios(summary):
    """Time ratio skmetric / peer for skmetric rows (first peer that ran) and peer rows."""
    by_key = {(r["dataset"], r["method"]): r for r in summary}
    for r in summary:
        r["compared_with"], r["time_ratio"] = None, None
        if r["status"] != "ok" or r["kind"] == "baseline":
            continue
        if r["kind"] == "peer":
            ours, peer, partner = by_key.get((r["dataset"], r["peer_of"])), r, r["peer_of"]
        else:
            ours, peer, partner = r, None, None
            for name in registry.peers_of(r["method"]):
                cand = by_key.get((r["dataset"], name))
                if cand is not None and cand["status"] == "ok":
                    peer, partner = cand, name
                    break
        if partner is None:
            continue
        r["compared_with"] = partner
        if ours is not None and peer is not None and ours["status"] == "ok":
            if peer["fit_time_s"] > 0:
                r["time_ratio"] = ours["fit_time_s"] / peer["fit_time_s"]
    return summary


def warning_lines(rows):
    """One line per method that warned: how many warnings in how many fits, and the first."""
    lines = []
    for method in dict.fromkeys(r["method"] for r in rows):
        fits = [r for r in rows if r["method"] == method and r["status"] == "ok"]
        warned = [r for r in fits if r["warnings"]]
        if warned:
            lines.append(
                f"{method}: {sum(r['warnings'] for r in warned)} warning(s) in {len(warned)} of "
                f"{len(fits)} fits; first: {warned[0]['first_warning']}"
            )
    return lines
