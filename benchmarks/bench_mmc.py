"""MMC against metric-learn's MMC_Supervised, side by side on the same folds.

``python -m benchmarks.bench_mmc [--quick] [--datasets ...] [--no-peer] [--folds N]``

The registry's "Euclidean kNN", "MMC", "MMC exact", "MMC diagonal" and
"metric-learn MMC" on the stratified 3 folds of :mod:`benchmarks.runner`.
Both MMCs draw the same number of constraints (``20 * n_classes**2`` similar
and as many dissimilar pairs, both libraries' default) and run with their
default solver settings (no cap: ours solves to its convergence test,
relative duality gap 1e-5; metric-learn runs its projected-gradient loop,
max_iter=100, up to 10,000 projections each). "MMC" is the default,
regularised problem (``regularization='auto'``: the metric keeps a fraction
mu of the identity prior, see :class:`skmetric.MMC`); "MMC exact" solves
Xing's problem itself (``regularization=0``), whose low-rank optimum
overfits the pairs. BLAS is limited to one thread for every method, so that
timings on a shared machine compare like with like.

A second check runs both solvers on the *same* pairs (fold 0) and compares
the objective they reach. Writes ``bench_mmc.csv`` / ``.json`` / ``.md``
(one row per fold) and ``bench_mmc.png`` into ``--out``.
"""

import sys

from .report import parser

METHODS = ("Euclidean kNN", "MMC", "MMC exact", "MMC diagonal", "metric-learn MMC")
OVERRIDES = {"mmc_max_iter": None}  # every MMC at its own default
QUICK_DATASETS = ("iris", "wine")
COLORS = dict(zip(METHODS, ("tab:gray", "tab:blue", "tab:purple", "tab:cyan", "tab:red")))


def n_constraints(y):
    """Both libraries' default: 20 * n_classes ** 2 pairs of each kind."""
    import numpy as np

    return 20 * np.unique(y).size ** 2


def objective_check(name, seed=0):
    """Xing's objective reached by each solver on the *same* pairs (fold 0).

    Both are scored by the scale-free ratio ``f(M) / g(M)**2`` (sum of squared
    similar distances over the squared sum of dissimilar distances), which is
    P1's objective after rescaling M to ``g(M) = 1``: lower is better, and
    the convex optimum is the lowest reachable value. metric-learn is run as
    its pairs learner ``MMC`` on our sampled pairs. The 3-NN errors on fold 0's
    test part of both metrics are reported too, so that errors can be compared
    without the noise of different pair draws.
    """
    import numpy as np

    from skmetric import MMCPairs, components_from_metric
    from skmetric._mmc_solver import dissimilar_constraint, pair_differences, similar_objective

    from .data import fold0_pairs
    from .peers import metric_learn_estimator
    from .runner import knn_error, timed_fit

    Xs, Xt, ys, yt, pairs, lab = fold0_pairs(name, seed)
    diff_s, diff_d = pair_differences(pairs, lab)
    A = diff_s.T @ diff_s
    row = {"dataset": name, "n_constraints": n_constraints(ys)}
    # Xing's problem itself (regularization=0): this compares solvers.
    learners = {"ours": MMCPairs(validation_fraction=0, regularization=0, random_state=seed),
                "peer": metric_learn_estimator("MMC", random_state=seed)}
    for who, est in learners.items():
        if est is None:
            continue
        timed_fit(est, pairs, lab)  # warnings counted, not printed
        M = est.get_mahalanobis_matrix()
        row[f"{who} f/g^2"] = similar_objective(M, A)[0] / dissimilar_constraint(M, diff_d)[0] ** 2
        L = components_from_metric(M, strict=False)
        row[f"{who} err %"] = knn_error(Xs @ L.T, ys, Xt @ L.T, yt)
        row[f"{who} rank"] = int(np.linalg.matrix_rank(L, tol=1e-6 * np.abs(L).max()))
    if "peer f/g^2" in row:
        row["peer / ours"] = row["peer f/g^2"] / row["ours f/g^2"]
    return row


def default_mu(summary):
    """The mu that regularization='auto' resolves to, per data set (the fits' pair count)."""
    from skmetric.mmc import auto_regularization

    from .data import load_sklearn

    out = {}
    for r in summary:
        if r["method"] in ("MMC", "MMC diagonal"):
            n = 2 * n_constraints(load_sklearn(r["dataset"])[1])
            diagonal = r["method"] != "MMC"
            out[f"{r['dataset']} {r['method']}"] = auto_regularization(r["d"], n, diagonal)
    return out


def plot(summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [r for r in summary if r["status"] == "ok"]
    names = list(dict.fromkeys(r["dataset"] for r in ok))
    methods = [m for m in METHODS if any(r["method"] == m for r in ok)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (("error_mean", "3-NN error (%)", "3-NN test error (3-fold CV)", methods),
              ("fit_time_s", "fit time per fold (s, log scale)",
               "Fit time at the same number of constraints", methods[1:]))
    w = 0.8 / len(methods)
    for ax, (key, ylabel, title, shown) in zip(axes, panels):
        for i, m in enumerate(shown):
            vals = [next((r[key] for r in ok if r["dataset"] == d and r["method"] == m), 0)
                    for d in names]
            x = np.arange(len(names)) + (i - (len(shown) - 1) / 2) * w
            ax.bar(x, vals, w, label=m, color=COLORS[m])
        ax.set_xticks(np.arange(len(names)), names)
        ax.set(ylabel=ylabel, title=title, yscale="log" if key == "fit_time_s" else "linear")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    p = parser("python -m benchmarks.bench_mmc", __doc__, quick=f"only {', '.join(QUICK_DATASETS)}")
    p.add_argument("--datasets", nargs="+", help="iris, wine, breast_cancer, digits (default: all)")
    p.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    p.add_argument("--folds", type=int, default=3, choices=(1, 2, 3),
                   help="evaluate only the first N of the 3 folds (for slow peer runs)")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from . import data, registry, report, runner

    names = args.datasets or (QUICK_DATASETS if args.quick else data.SKLEARN_DATASETS)
    methods = registry.select(METHODS, peers=not args.no_peer)
    rows, objectives = [], []
    # One data set at a time, with the results rewritten after each: a long
    # peer run (metric-learn on digits) leaves complete results behind.
    for name in names:
        with threadpool_limits(limits=1):
            rows += runner.run(methods, [data.load(name, seed=args.seed)], seed=args.seed,
                               overrides=OVERRIDES, n_folds=args.folds)
            if not args.no_peer:
                objectives.append(objective_check(name, seed=args.seed))
        summary = runner.add_ratios(runner.summarize(rows))
        table = report.pivot(summary)
        text = "\n\n".join([
            report.markdown_table(table),
            "StandardScaler -> learner -> 3-NN, stratified folds; errors in %, fit time = mean per "
            "fold (BLAS limited to 1 thread); both MMCs draw the same number of similar and "
            "dissimilar pairs. MMC: regularization='auto' (mu, the fraction kept on the identity "
            "prior: " + ", ".join(f"{k} {v:.3g}" for k, v in default_mu(summary).items())
            + "); MMC exact: Xing's problem (regularization=0).",
            *([report.markdown_table(objectives),
               "f/g^2 = sum of squared similar distances / (sum of dissimilar distances)^2 on the "
               "same pairs (training part of fold 0): Xing's objective at g = 1, lower is better; "
               "err % = 3-NN error on fold 0's test part with each metric learned from those "
               "pairs."] if objectives else []),
            *runner.warning_lines(rows),
        ])
        report.write(args.out, "bench_mmc", rows, text, table=table, objective=objectives)
        plot(summary, args.out / "bench_mmc.png")
    print(text)
    print(f"\nwrote {args.out / 'bench_mmc'}.csv/.json/.md/.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
