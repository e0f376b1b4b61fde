"""Grid search over Pipeline(CNNFeatureExtractor, LMNN, KNeighborsClassifier),
on one machine (joblib processes) or on a Dask cluster (joblib's dask backend).

The pipeline is an ordinary scikit-learn estimator, so ``GridSearchCV`` tunes
the k of the classifier and the rank of the learned metric together; the
frozen CNN is part of every candidate, so nothing leaks across folds.

Run it::

    python -m benchmarks.grid_search                 # joblib, --n-jobs 2
    python -m benchmarks.grid_search --local-cluster # a Dask LocalCluster here
    python -m benchmarks.grid_search --scheduler tcp://10.0.0.5:8786  # a real cluster

For a real cluster, start ``dask scheduler`` on one machine and ``dask worker
tcp://SCHEDULER:8786`` on each worker machine (all with skmetric[all]
installed), then pass the scheduler's address. The candidates and folds are
shipped to the workers by joblib; the data are sent once per task.
"""

import sys

from .report import parser

DEFAULT_GRID = {"knn__n_neighbors": [1, 3, 5], "lmnn__n_components": [8, 16, None]}
QUICK_GRID = {"knn__n_neighbors": [1, 3], "lmnn__n_components": [4, None]}


def cnn_lmnn_pipeline(backbone, input_size=None, lmnn_max_iter=50, seed=0):
    """CNNFeatureExtractor (frozen) -> StandardScaler -> LMNN -> 3-NN."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    import skmetric

    from .registry import DEVICE

    cnn = skmetric.CNNFeatureExtractor(backbone=backbone, weights=None, input_size=input_size,
                                       device=DEVICE)
    lmnn = skmetric.LMNN(max_iter=lmnn_max_iter, random_state=seed)
    knn = KNeighborsClassifier(n_neighbors=3)
    return Pipeline([("cnn", cnn), ("scale", StandardScaler()), ("lmnn", lmnn), ("knn", knn)])


def grid_search(images, y, backbone, param_grid=None, cv=3, n_jobs=2, seed=0, input_size=None,
                lmnn_max_iter=50, verbose=0):
    """Fit ``GridSearchCV`` over the CNN -> LMNN -> k-NN pipeline.

    Parallelism follows the active joblib backend: processes by default,
    Dask workers inside :func:`dask_grid_search`.

    LMNN's ConvergenceWarnings are not printed (the filter reaches the
    workers); the 'converged' score counts the fits that stopped on max_iter.

    Returns
    -------
    GridSearchCV, fitted (``best_params_``, ``cv_results_``; refit on accuracy).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    search = GridSearchCV(
        cnn_lmnn_pipeline(backbone, input_size=input_size, lmnn_max_iter=lmnn_max_iter, seed=seed),
        param_grid or DEFAULT_GRID,
        cv=StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed),
        scoring={"accuracy": "accuracy", "converged": lmnn_converged},
        refit="accuracy",
        n_jobs=n_jobs,
        error_score="raise",
        verbose=verbose,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # counted by 'converged'
        return search.fit(images, y)


def lmnn_converged(pipeline, X, y):
    """A score: 1.0 when the pipeline's LMNN met its stopping rule, 0.0 when it hit max_iter."""
    return float(pipeline.named_steps["lmnn"].converged_)


def dask_grid_search(images, y, backbone, scheduler=None, **kwargs):
    """The same grid search, run on a Dask cluster through joblib's dask backend.

    Parameters
    ----------
    scheduler : str, dask.distributed.Client or None
        The scheduler's address (``"tcp://host:8786"``) of a running cluster,
        a connected Client, or None to use the current default Client.
    **kwargs
        Passed to :func:`grid_search`; ``n_jobs`` defaults to -1 (every
        Dask worker thread).
    """
    from dask.distributed import Client, default_client
    from joblib import parallel_config

    own = isinstance(scheduler, str)
    client = Client(scheduler) if own else (scheduler or default_client())
    try:
        kwargs.setdefault("n_jobs", -1)
        # The dask backend finds the Client that is current in this context.
        with client.as_current(), parallel_config(backend="dask"):
            return grid_search(images, y, backbone, **kwargs)
    finally:
        if own:
            client.close()


def summary(search):
    """Rows (params, mean and std test accuracy, rank, fraction of LMNN fits that
    converged) of a fitted search, and one line on the convergence warnings."""
    res, n_folds = search.cv_results_, search.n_splits_
    rows = []
    for i, params in enumerate(res["params"]):
        rows.append(
            {
                **{k.split("__")[-1]: ("None" if v is None else v) for k, v in params.items()},
                "accuracy": float(res["mean_test_accuracy"][i]),
                "std": float(res["std_test_accuracy"][i]),
                "rank": int(res["rank_test_accuracy"][i]),
                "converged": float(res["mean_test_converged"][i]),
            }
        )
    stopped = round(sum((1 - r["converged"]) * n_folds for r in rows))
    line = (f"LMNN: {stopped} of {len(rows) * n_folds} cross-validation fits stopped on max_iter "
            "(their ConvergenceWarnings are counted here, not printed)")
    return rows, line


def main(argv=None):
    p = parser("python -m benchmarks.grid_search", __doc__)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument(
        "--local-cluster", action="store_true", help="start a Dask LocalCluster on this machine"
    )
    args = p.parse_args(argv)
    import time

    from .data import digits_transfer
    from .report import markdown_table, write

    images, y, backbone = digits_transfer(
        quick=args.quick, seed=args.seed, max_samples=240 if args.quick else None
    )
    grid = QUICK_GRID if args.quick else DEFAULT_GRID
    kw = dict(param_grid=grid, seed=args.seed, lmnn_max_iter=10 if args.quick else 50)
    t0 = time.perf_counter()
    if args.scheduler or args.local_cluster:
        if args.local_cluster:
            from dask.distributed import Client, LocalCluster

            with (
                LocalCluster(
                    n_workers=args.n_jobs, threads_per_worker=1, dashboard_address=None
                ) as cl,
                Client(cl) as client,
            ):
                search = dask_grid_search(images, y, backbone, scheduler=client, **kw)
        else:
            search = dask_grid_search(images, y, backbone, scheduler=args.scheduler, **kw)
        where = f"dask ({args.scheduler or 'LocalCluster'})"
    else:
        search = grid_search(images, y, backbone, n_jobs=args.n_jobs, **kw)
        where = f"joblib, n_jobs={args.n_jobs}"
    elapsed = time.perf_counter() - t0
    rows, warned = summary(search)
    text = (f"{markdown_table(rows)}\n\nbest: {search.best_params_} (accuracy "
            f"{search.best_score_:.3f}); {where}, {elapsed:.1f} s\n{warned}\n")
    print(text)
    write(args.out, "grid_search", rows, text, backend=where, seconds=elapsed,
          best_params=search.best_params_, warnings=warned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
