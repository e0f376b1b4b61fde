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

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .suite import DEVICE

DEFAULT_GRID = {"knn__n_neighbors": [1, 3, 5], "lmnn__n_components": [8, 16, None]}
QUICK_GRID = {"knn__n_neighbors": [1, 3], "lmnn__n_components": [4, None]}


def cnn_lmnn_pipeline(backbone, input_size=None, lmnn_max_iter=50, seed=0):
    """CNNFeatureExtractor (frozen) -> StandardScaler -> LMNN -> 3-NN."""
    import skmetric

    return Pipeline(
        [
            (
                "cnn",
                skmetric.CNNFeatureExtractor(
                    backbone=backbone, weights=None, input_size=input_size, device=DEVICE
                ),
            ),
            ("scale", StandardScaler()),
            ("lmnn", skmetric.LMNN(max_iter=lmnn_max_iter, random_state=seed)),
            ("knn", KNeighborsClassifier(n_neighbors=3)),
        ]
    )


def grid_search(
    images,
    y,
    backbone,
    param_grid=None,
    cv=3,
    n_jobs=2,
    seed=0,
    input_size=None,
    lmnn_max_iter=50,
    verbose=0,
):
    """Fit ``GridSearchCV`` over the CNN -> LMNN -> k-NN pipeline.

    Parallelism follows the active joblib backend: processes by default,
    Dask workers inside :func:`dask_grid_search`.

    Returns
    -------
    GridSearchCV, fitted (``best_params_``, ``cv_results_``).
    """
    search = GridSearchCV(
        cnn_lmnn_pipeline(backbone, input_size=input_size, lmnn_max_iter=lmnn_max_iter, seed=seed),
        param_grid or DEFAULT_GRID,
        cv=StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed),
        n_jobs=n_jobs,
        error_score="raise",
        verbose=verbose,
    )
    return search.fit(images, y)


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
    """Rows (params, mean and std test accuracy, rank) of a fitted search."""
    res = search.cv_results_
    rows = []
    for i, params in enumerate(res["params"]):
        rows.append(
            {
                **{k.split("__")[-1]: ("None" if v is None else v) for k, v in params.items()},
                "accuracy": float(res["mean_test_score"][i]),
                "std": float(res["std_test_score"][i]),
                "rank": int(res["rank_test_score"][i]),
            }
        )
    return rows


def main(argv=None):
    from .harness import markdown_table
    from .suite import digits_transfer

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.grid_search", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument(
        "--local-cluster", action="store_true", help="start a Dask LocalCluster on this machine"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)

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
    rows = summary(search)
    print(markdown_table(rows, list(rows[0])))
    print(
        f"\nbest: {search.best_params_} (accuracy {search.best_score_:.3f}); "
        f"{where}, {elapsed:.1f} s"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "grid_search.json", "w") as f:
        json.dump(
            {
                "backend": where,
                "seconds": elapsed,
                "best_params": {k: v for k, v in search.best_params_.items()},
                "rows": rows,
            },
            f,
            indent=1,
            default=str,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
