"""ITML and MCML against Euclidean 3-NN, and ITML against metric-learn's ITML_Supervised.

``python -m benchmarks.bench_itml_mcml [--quick] [--datasets ...] [--no-peer] [--no-mcml]``

Every method is ``StandardScaler -> learner -> 3-NN`` on the stratified 3 folds
of :mod:`benchmarks.harness`. Both ITMLs draw ``20 * n_classes**2`` similar and
as many dissimilar pairs (metric-learn's default) with the same seed and run
with their default settings (gamma=1, identity prior, 5th/95th percentile
bounds, max_iter=1000 passes, tol=1e-3); note that metric-learn compares
squared learned distances with percentiles of *non-squared* Euclidean
distances, while skmetric uses squared distances on both sides, as the
authors' code does. metric-learn has no MCML. BLAS is limited to one thread
for every method. A second table runs both ITMLs on identical pairs,
bounds and constraint order, where their metrics should agree, so that the
loops' speed is compared on the same work. Prints markdown tables (errors in percent, mean fit time
per fold, speed ratio peer / ours) and writes ``bench_itml_mcml.csv`` and
``bench_itml_mcml.json`` into ``benchmarks/results/``.
"""

import argparse
import csv
import json
import platform
import warnings
from pathlib import Path

import numpy as np

from .harness import (
    DATASETS,
    evaluate,
    knn_pipeline,
    load_dataset,
    markdown_table,
    stratified_folds,
    summarize,
)
from .peers import metric_learn_estimator

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_DATASETS = ("iris", "wine")


def n_constraints(y):
    """metric-learn's default: 20 * n_classes ** 2 pairs of each kind."""
    return 20 * np.unique(y).size ** 2


def methods(y, seed, peer, mcml):
    from skmetric import ITML, MCML

    n = n_constraints(y)
    out = [("Euclidean", None), ("skmetric ITML", ITML(n_constraints=n, random_state=seed))]
    if peer:
        est = metric_learn_estimator("ITML_Supervised", n_constraints=n, random_state=seed)
        if est is not None:
            out.append(("metric-learn ITML_Supervised", est))
    if mcml:
        out.append(("skmetric MCML", MCML(random_state=seed)))
    return out


def run(datasets, seed=0, peer=True, mcml=True):
    rows = []
    for name in datasets:
        X, y = load_dataset(name)
        folds = stratified_folds(X, y, n_splits=3, seed=seed)
        for method, learner in methods(y, seed, peer, mcml):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = evaluate(knn_pipeline(learner), X, y, folds)
            s = summarize(res)
            rows.append(
                {
                    "dataset": name,
                    "method": method,
                    "error_%": s["error_mean"],
                    "error_std": s["error_std"],
                    "fit_time_s": s["fit_time"],
                    "fold_errors_%": [float(100 * e) for e in res["errors"]],
                    "not_converged_folds": sum(
                        "converge" in str(w.message).lower() for w in caught
                    ),
                }
            )
            print(
                f"  {name:14s} {method:30s} error {s['error_mean']:6.2f}%  "
                f"fit {s['fit_time']:.3g} s",
                flush=True,
            )
    return rows


def comparison(rows):
    """One row per data set and learner: error vs Euclidean, ITML vs the peer."""
    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["method"]: r for r in rows if r["dataset"] == name}
        euc = by["Euclidean"]
        peer = by.get("metric-learn ITML_Supervised")
        for method in ("skmetric ITML", "skmetric MCML"):
            if method not in by:
                continue
            r = by[method]
            row = {
                "dataset": name,
                "method": method,
                "Euclidean err %": euc["error_%"],
                "err %": r["error_%"],
                "fit s": r["fit_time_s"],
                "beats Euclidean": "yes" if r["error_%"] < euc["error_%"] else "no",
                "not converged": r["not_converged_folds"],
            }
            if method == "skmetric ITML" and peer is not None:
                row["peer err %"] = peer["error_%"]
                row["peer fit s"] = peer["fit_time_s"]
                row["speed ratio (peer/ours)"] = peer["fit_time_s"] / r["fit_time_s"]
            out.append(row)
    return out


def same_problem_check(datasets, seed=0):
    """Both ITMLs on the *same* pairs, bounds and visiting order (fold 0).

    Pairs are drawn by :func:`skmetric.constraints.sample_pairs` from the
    scaled training part of fold 0, similar pairs first (metric-learn's
    order); the bounds are our default squared percentiles, handed to
    metric-learn as squared values (what its loop compares them with). The
    two then run the same Bregman iteration, so the metrics should agree to
    round-off and the timings compare the loops alone.
    """
    import time

    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import check_random_state

    from skmetric import ITMLPairs
    from skmetric._itml_solver import bounds_from_percentiles
    from skmetric.constraints import pairs_from_indices, sample_pairs

    out = []
    for name in datasets:
        X, y = load_dataset(name)
        train, test = stratified_folds(X, y, n_splits=3, seed=seed)[0]
        scaler = StandardScaler().fit(X[train])
        Xs, Xt = scaler.transform(X[train]), scaler.transform(X[test])
        idx, lab = sample_pairs(y[train], n_constraints(y), random_state=seed)
        pairs = pairs_from_indices(Xs, idx)
        sq = bounds_from_percentiles(
            pairs.reshape(-1, Xs.shape[1]), np.eye(Xs.shape[1]), check_random_state(seed)
        )

        def knn_error(est):
            knn = KNeighborsClassifier(n_neighbors=3).fit(est.transform(Xs), y[train])
            return 100 * (1 - knn.score(est.transform(Xt), y[test]))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            ours = ITMLPairs(bounds=np.sqrt(sq)).fit(pairs, lab)
            t_ours = time.perf_counter() - t0
            row = {
                "dataset": name,
                "pairs": len(lab),
                "ours passes": ours.n_iter_,
                "ours fit s": t_ours,
                "ours err %": knn_error(ours),
            }
            peer = metric_learn_estimator("ITML")
            if peer is not None:
                t0 = time.perf_counter()
                peer.fit(pairs, lab, bounds=sq.copy())
                t_peer = time.perf_counter() - t0
                M, Mp = ours.get_mahalanobis_matrix(), peer.get_mahalanobis_matrix()
                row.update(
                    {
                        "peer passes": peer.n_iter_ + 1,
                        "peer fit s": t_peer,
                        "peer err %": knn_error(peer),
                        "rel. diff of M": float(np.linalg.norm(M - Mp) / np.linalg.norm(Mp)),
                        "speed ratio (peer/ours)": t_peer / t_ours,
                    }
                )
        out.append(row)
        print(f"  {name:14s} same-problem check: {row}", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_DATASETS)}")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, help="data sets (default: all four)")
    p.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    p.add_argument("--no-mcml", action="store_true", help="skip MCML (slow on digits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    datasets = args.datasets or (QUICK_DATASETS if args.quick else DATASETS)

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        rows = run(datasets, seed=args.seed, peer=not args.no_peer, mcml=not args.no_mcml)
        same = [] if args.no_peer else same_problem_check(datasets, seed=args.seed)
    table = comparison(rows)
    cols = list(dict.fromkeys(k for r in table for k in r))
    print()
    print(markdown_table(table, cols))
    if same:
        print("\nITML on identical pairs, bounds and order (fold 0):\n")
        print(markdown_table(same, list(dict.fromkeys(k for r in same for k in r))))

    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": platform.platform(),
        "seed": args.seed,
        "rows": rows,
        "table": table,
        "same_problem": same,
    }
    (args.out / "bench_itml_mcml.json").write_text(json.dumps(payload, indent=2))
    with open(args.out / "bench_itml_mcml.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(table)
    print(f"\nwrote {args.out / 'bench_itml_mcml.csv'} and bench_itml_mcml.json", flush=True)


if __name__ == "__main__":
    main()
