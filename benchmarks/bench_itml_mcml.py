"""ITML and MCML against Euclidean 3-NN, and ITML against metric-learn's ITML_Supervised.

``python -m benchmarks.bench_itml_mcml [--quick] [--datasets ...] [--no-peer] [--no-mcml]``
``python -m benchmarks.bench_itml_mcml --bounds [--seeds 0 1 2] [--datasets ...]``

``--bounds``: ITML's bounds rules ('auto', the default, and 'percentiles')
against metric-learn's ITML_Supervised, StandardScaler -> ITML -> 3-NN on the
stratified 3 folds of each seed (9 folds per data set for 3 seeds), every
learner at its defaults: per data set the mean error of each rule and of
metric-learn over the same folds, and the CPU-time ratio (metric-learn /
ours, time.process_time, BLAS limited to one thread). Writes
``bench_itml_bounds.csv`` / ``.json`` / ``.md``.

The registry's "Euclidean kNN", "ITML", "metric-learn ITML" and "MCML" on the
stratified 3 folds of :mod:`benchmarks.runner`, every learner at its own
defaults (no iteration cap, MCML on every training point). Both ITMLs draw
``20 * n_classes**2`` similar and as many dissimilar pairs (both defaults)
with the same seed (gamma=1, identity prior, max_iter=1000 passes, tol=1e-3,
each its default bounds). metric-learn compares squared learned distances with
the 5th/95th percentiles of *non-squared* Euclidean distances; skmetric's
default bounds='auto' gives that problem on standardized data in a
scale-consistent form (``u**2 = rho * q5``, ``rho`` the RMS feature spread),
while bounds='percentiles' uses squared distances on both sides, as the
authors' code does (see ``--bounds``).
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


BOUNDS_RULES = ("auto", "percentiles")


def bounds_rules(names, seeds, peer=True):
    """Each bounds rule and metric-learn on the same folds: one row per fit."""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from skmetric import ITML

    from . import data
    from .peers import metric_learn_estimator
    from .runner import knn_error, timed_fit

    rows = []
    for name in names:
        ds = data.load(name, seed=0)
        for seed in seeds:
            for fold, (train, test) in enumerate(data.stratified_folds(ds.X, ds.y, 3, seed)):
                scaler = StandardScaler().fit(ds.X[train])
                Xs, Xt = scaler.transform(ds.X[train]), scaler.transform(ds.X[test])
                ys, yt = ds.y[train], ds.y[test]
                models = {f"ours {rule}": ITML(bounds=rule, random_state=seed)
                          for rule in BOUNDS_RULES}
                if peer:
                    models["metric-learn"] = metric_learn_estimator(
                        "ITML_Supervised", random_state=seed)
                for label, model in models.items():
                    if model is None:
                        continue
                    fit = timed_fit(model, Xs, ys)
                    err = knn_error(model.transform(Xs), ys, model.transform(Xt), yt)
                    rows.append({"dataset": name, "seed": seed, "fold": fold, "model": label,
                                 "err %": err, **fit, "bounds": np.asarray(model.bounds_).tolist()})
    return rows


def bounds_table(rows):
    """Per data set: mean error of each rule and of metric-learn, CPU ratios."""
    import numpy as np

    table = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == name]
        by = {}
        for r in sub:
            by.setdefault(r["model"], []).append(r)
        row = {"dataset": name, "folds": len(by[f"ours {BOUNDS_RULES[0]}"])}
        peer = by.get("metric-learn")
        for label in [f"ours {rule}" for rule in BOUNDS_RULES] + ["metric-learn"]:
            if label in by:
                row[f"{label} err %"] = float(np.mean([r["err %"] for r in by[label]]))
        for rule in BOUNDS_RULES:
            cpu = sum(r["cpu_time_s"] for r in by[f"ours {rule}"])
            row[f"{rule} cpu s/fold"] = cpu / row["folds"]
            if peer:
                row[f"cpu ratio ML/{rule}"] = sum(r["cpu_time_s"] for r in peer) / cpu
        table.append(row)
    mean = {"dataset": "mean"}
    for key in table[0]:
        if key.endswith("err %"):
            mean[key] = float(np.mean([t[key] for t in table]))
    return table + [mean]


def main(argv=None):
    p = parser("python -m benchmarks.bench_itml_mcml", __doc__,
               quick=f"only {', '.join(QUICK_DATASETS)}")
    p.add_argument("--datasets", nargs="+", help="iris, wine, breast_cancer, digits (default: all)")
    p.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    p.add_argument("--no-mcml", action="store_true", help="skip MCML (slow on digits)")
    p.add_argument("--bounds", action="store_true",
                   help="compare ITML's bounds rules with metric-learn (see above)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="fold seeds of --bounds (3 folds each)")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from . import data, registry, report, runner

    if args.bounds:
        names = args.datasets or (QUICK_DATASETS if args.quick else data.DEFAULT_DATASETS)
        with threadpool_limits(limits=1):
            rows = bounds_rules(names, args.seeds, peer=not args.no_peer)
        table = bounds_table(rows)
        text = report.markdown_table(table)
        report.write(args.out, "bench_itml_bounds", rows, text, table=table)
        print(text)
        print(f"\nwrote {args.out / 'bench_itml_bounds'}.csv/.json/.md")
        return 0

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
