"""ITML and MCML against Euclidean 3-NN, and ITML against metric-learn's ITML_Supervised.

``python -m benchmarks.bench_itml_mcml [--quick] [--datasets ...] [--no-peer] [--no-mcml]``

The registry's "Euclidean kNN", "ITML", "metric-learn ITML" and "MCML" on the
stratified 3 folds of :mod:`benchmarks.runner`, every learner at its own
defaults (no iteration cap, MCML on every training point). Both ITMLs draw
``20 * n_classes**2`` similar and as many dissimilar pairs (both defaults)
with the same seed (gamma=1, identity prior, 5th/95th percentile bounds,
max_iter=1000 passes, tol=1e-3); note that metric-learn compares squared
learned distances with percentiles of *non-squared* Euclidean distances,
while skmetric uses squared distances on both sides, as the authors' code
does: on standardized 64-d digits metric-learn's targets are far tighter, the
cause of its lower digits error (passing ``bounds=sqrt(its bounds)`` gives
skmetric the same problem; on iris and breast_cancer those bounds are worse).
skmetric also stops when ``M`` settles (relative change over a pass below
``tol``), metric-learn only on the dual change. A per-fold table lists both
errors, wall and CPU times and their ratios. metric-learn has no MCML. BLAS
is limited to one thread for every method. A further table runs both ITMLs on identical pairs, bounds and
constraint order, where their metrics should agree, so that the loops'
speed is compared on the same work. Writes ``bench_itml_mcml.csv`` /
``.json`` / ``.md`` into ``--out``.
"""

import sys

from .report import parser

METHODS = ("Euclidean kNN", "ITML", "metric-learn ITML", "MCML")
OVERRIDES = {"itml_max_iter": None, "mcml_max_iter": None, "mcml_max_samples": None}
QUICK_DATASETS = ("iris", "wine")


def same_problem_check(name, seed=0):
    """Both ITMLs on the *same* pairs, bounds and visiting order (fold 0).

    Pairs are drawn by :func:`skmetric.constraints.sample_pairs` from the
    scaled training part of fold 0, similar pairs first (metric-learn's
    order); the bounds are our default squared percentiles, handed to
    metric-learn as squared values (what its loop compares them with). The
    two then run the same Bregman iteration, so the metrics should agree to
    round-off and the timings compare the loops alone.
    """
    import numpy as np
    from sklearn.utils import check_random_state

    from skmetric import ITMLPairs
    from skmetric._itml_solver import bounds_from_percentiles

    from .data import fold0_pairs
    from .peers import metric_learn_estimator
    from .runner import knn_error, timed_fit

    Xs, Xt, ys, yt, pairs, lab = fold0_pairs(name, seed)
    d = Xs.shape[1]
    sq = bounds_from_percentiles(pairs.reshape(-1, d), np.eye(d), check_random_state(seed))

    def error(est):
        return knn_error(est.transform(Xs), ys, est.transform(Xt), yt)

    # All pairs fit the metric (no calibration hold-out), as in metric-learn.
    ours = ITMLPairs(bounds=np.sqrt(sq), validation_fraction=0, random_state=seed)
    t_ours = timed_fit(ours, pairs, lab)["fit_time_s"]
    row = {"dataset": name, "pairs": len(lab), "ours passes": ours.n_iter_,
           "ours fit s": t_ours, "ours err %": error(ours)}
    peer = metric_learn_estimator("ITML", random_state=seed)
    if peer is not None:
        t_peer = timed_fit(peer, pairs, lab, bounds=sq.copy())["fit_time_s"]
        M, Mp = ours.get_mahalanobis_matrix(), peer.get_mahalanobis_matrix()
        row.update({"peer passes": peer.n_iter_ + 1, "peer fit s": t_peer,
                    "peer err %": error(peer),
                    "rel. diff of M": float(np.linalg.norm(M - Mp) / np.linalg.norm(Mp)),
                    "speed ratio (peer/ours)": t_peer / t_ours})
    return row


def per_fold(rows, ours="ITML", peer="metric-learn ITML"):
    """ITML against metric-learn's, fold by fold: errors, wall and CPU times, ratios."""
    by = {(r["dataset"], r["method"], r["fold"]): r for r in rows if r.get("error") is not None}
    table = []
    for (name, method, fold), r in by.items():
        p = by.get((name, peer, fold))
        if method != ours or p is None:
            continue
        table.append({
            "dataset": name, "fold": fold,
            "ours err %": 100 * r["error"], "peer err %": 100 * p["error"],
            "ours fit s": r["fit_time_s"], "peer fit s": p["fit_time_s"],
            "ours cpu s": r["cpu_time_s"], "peer cpu s": p["cpu_time_s"],
            "ours passes": r["n_iter"], "peer passes": p["n_iter"],
            "wall ratio (peer/ours)": p["fit_time_s"] / r["fit_time_s"],
            "cpu ratio (peer/ours)": p["cpu_time_s"] / r["cpu_time_s"],
        })
    return table


def main(argv=None):
    p = parser("python -m benchmarks.bench_itml_mcml", __doc__,
               quick=f"only {', '.join(QUICK_DATASETS)}")
    p.add_argument("--datasets", nargs="+", help="iris, wine, breast_cancer, digits (default: all)")
    p.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    p.add_argument("--no-mcml", action="store_true", help="skip MCML (slow on digits)")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from . import data, registry, report, runner

    names = args.datasets or (QUICK_DATASETS if args.quick else data.SKLEARN_DATASETS)
    wanted = [m for m in METHODS if not (args.no_mcml and m == "MCML")]
    methods = registry.select(wanted, peers=not args.no_peer)
    datasets = [data.load(name, seed=args.seed) for name in names]
    with threadpool_limits(limits=1):
        rows = runner.run(methods, datasets, seed=args.seed, overrides=OVERRIDES)
        same = [] if args.no_peer else [same_problem_check(n, seed=args.seed) for n in names]
    table = report.pivot(runner.summarize(rows), ("error_mean", "fit_time_s", "warnings"),
                         ("err %", "fit s", "warnings"))
    folds = per_fold(rows)
    text = "\n\n".join([
        report.markdown_table(table),
        *(["ITML and metric-learn's ITML_Supervised, fold by fold:", report.markdown_table(folds)]
          if folds else []),
        *(["ITML on identical pairs, bounds and order (fold 0):", report.markdown_table(same)]
          if same else []),
        *runner.warning_lines(rows),
    ])
    report.write(args.out, "bench_itml_mcml", rows, text, table=table, same_problem=same,
                 per_fold=folds)
    print(text)
    print(f"\nwrote {args.out / 'bench_itml_mcml'}.csv/.json/.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
