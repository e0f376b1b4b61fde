"""MMC against metric-learn's MMC_Supervised, side by side on the same folds.

``python -m benchmarks.bench_mmc [--quick] [--datasets ...] [--no-peer]``

Every method is ``StandardScaler -> learner -> 3-NN`` on the stratified 3 folds
of :mod:`benchmarks.harness`. Both MMCs draw the same number of constraints
(``20 * n_classes**2`` similar and as many dissimilar pairs, metric-learn's
default) and run with their default solver settings; ours solves to its
convergence test (relative duality gap 1e-5), metric-learn runs its
projected-gradient loop (max_iter=100, up to 10,000 projections each).
"skmetric MMC" is the default, regularised problem (``regularization='auto'``,
the metric keeps a fraction mu of the identity prior, see
:class:`skmetric.MMC`); "skmetric MMC exact" solves Xing's problem itself
(``regularization=0``), whose low-rank optimum overfits the pairs.
BLAS is limited to one thread for every method, so that timings on a shared
machine compare like with like. Prints a markdown table (errors in percent,
mean fit time per fold, speed ratio peer / ours, whether ours beats Euclidean)
and writes ``bench_mmc.csv``, ``bench_mmc.json`` and ``bench_mmc.png`` into
``benchmarks/results/``.
"""

import argparse
import csv
import json
import platform
import time
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
# One colour per method in both panels of the plot.
COLORS = {
    "Euclidean": "tab:gray",
    "skmetric MMC": "tab:blue",
    "skmetric MMC diag": "tab:cyan",
    "skmetric MMC exact": "tab:purple",
    "metric-learn MMC": "tab:red",
}


def n_constraints(y):
    """metric-learn's default: 20 * n_classes ** 2 pairs of each kind."""
    return 20 * np.unique(y).size ** 2


def methods(y, seed, peer):
    """(name, learner or None) pairs evaluated on every data set."""
    from skmetric import MMC

    n = n_constraints(y)
    out = [
        ("Euclidean", None),
        ("skmetric MMC", MMC(n_constraints=n, random_state=seed)),
        ("skmetric MMC exact", MMC(n_constraints=n, regularization=0, random_state=seed)),
        ("skmetric MMC diagonal", MMC(n_constraints=n, diagonal=True, random_state=seed)),
    ]
    if peer:
        est = metric_learn_estimator("MMC_Supervised", n_constraints=n, random_state=seed)
        if est is not None:
            out.append(("metric-learn MMC_Supervised", est))
    return out


def default_mu(X, y, method):
    """The regularization 'auto' resolves to for a method's fits (None if n/a)."""
    from skmetric.mmc import auto_regularization

    if method not in ("skmetric MMC", "skmetric MMC diagonal"):
        return 0.0 if method == "skmetric MMC exact" else None
    return auto_regularization(X.shape[1], 2 * n_constraints(y), method.endswith("diagonal"))


def run(datasets, seed=0, peer=True, n_folds=3):
    rows = []
    for name in datasets:
        X, y = load_dataset(name)
        folds = stratified_folds(X, y, n_splits=3, seed=seed)[:n_folds]
        for method, learner in methods(y, seed, peer):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = evaluate(knn_pipeline(learner), X, y, folds)
            s = summarize(res)
            not_converged = sum("converge" in str(w.message).lower() for w in caught)
            rows.append(
                {
                    "dataset": name,
                    "method": method,
                    "n_constraints": n_constraints(y) if learner is not None else None,
                    "mu": default_mu(X, y, method),
                    "error_%": s["error_mean"],
                    "error_std": s["error_std"],
                    "fit_time_s": s["fit_time"],
                    "fold_errors_%": [float(100 * e) for e in res["errors"]],
                    "fold_fit_times_s": [float(t) for t in res["fit_times"]],
                    "warnings": not_converged,
                }
            )
            print(
                f"  {name:14s} {method:28s} error {s['error_mean']:6.2f}%  "
                f"fit {s['fit_time']:.3g} s",
                flush=True,
            )
    return rows


def comparison(rows):
    """One row per data set: ours vs the peer vs Euclidean."""
    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["method"]: r for r in rows if r["dataset"] == name}
        ours, euc = by["skmetric MMC"], by["Euclidean"]
        diag = by["skmetric MMC diagonal"]
        exact = by["skmetric MMC exact"]
        peer = by.get("metric-learn MMC_Supervised")
        row = {
            "dataset": name,
            "n_constraints": ours["n_constraints"],
            "ours mu": ours["mu"],
            "Euclidean err %": euc["error_%"],
            "ours err %": ours["error_%"],
        }
        if peer is not None:
            row["peer err %"] = peer["error_%"]
        row.update(
            {
                "ours exact err %": exact["error_%"],
                "ours diag err %": diag["error_%"],
                "ours fit s": ours["fit_time_s"],
                "ours exact fit s": exact["fit_time_s"],
                "ours diag fit s": diag["fit_time_s"],
            }
        )
        if peer is not None:
            row.update(
                {
                    "peer fit s": peer["fit_time_s"],
                    "speed ratio (peer/ours)": peer["fit_time_s"] / ours["fit_time_s"],
                    "ours no worse than peer": (
                        "yes" if ours["error_%"] <= peer["error_%"] else "no"
                    ),
                }
            )
        row["ours beats Euclidean"] = "yes" if ours["error_%"] < euc["error_%"] else "no"
        out.append(row)
    return out


def objective_check(datasets, seed=0):
    """Xing's objective reached by each solver on the *same* pairs (fold 0).

    Both are scored by the scale-free ratio ``f(M) / g(M)**2`` (sum of squared
    similar distances over the squared sum of dissimilar distances), which is
    P1's objective after rescaling M to ``g(M) = 1``: lower is better, and
    the convex optimum is the lowest reachable value. metric-learn is run as
    its pairs learner ``MMC`` on our sampled pairs. The 3-NN errors on fold 0's
    test part of both metrics are reported too, so that errors can be compared
    without the noise of different pair draws.
    """
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    from skmetric import MMCPairs, components_from_metric
    from skmetric._mmc_solver import dissimilar_constraint, pair_differences, similar_objective
    from skmetric.constraints import pairs_from_indices, sample_pairs

    def ratio(M, A, D):
        return similar_objective(M, A)[0] / dissimilar_constraint(M, D)[0] ** 2

    out = []
    for name in datasets:
        X, y = load_dataset(name)
        train, test = stratified_folds(X, y, n_splits=3, seed=seed)[0]
        scaler = StandardScaler().fit(X[train])
        Xs, Xtest = scaler.transform(X[train]), scaler.transform(X[test])

        def knn_error(M):
            L = components_from_metric(M, strict=False)
            knn = KNeighborsClassifier(n_neighbors=3).fit(Xs @ L.T, y[train])
            return 100 * (1 - knn.score(Xtest @ L.T, y[test]))

        idx, lab = sample_pairs(y[train], n_constraints(y), random_state=seed)
        pairs = pairs_from_indices(Xs, idx)
        diff_s, diff_d = pair_differences(pairs, lab)
        A = diff_s.T @ diff_s
        row = {"dataset": name, "n_constraints": n_constraints(y)}
        # Xing's problem itself (regularization=0): this compares solvers.
        mp = MMCPairs(validation_fraction=0, regularization=0, random_state=seed).fit(pairs, lab)
        row["ours f/g^2"] = ratio(mp.get_mahalanobis_matrix(), A, diff_d)
        L = mp.components_
        row["ours rank"] = int(np.linalg.matrix_rank(L, tol=1e-6 * np.abs(L).max()))
        row["ours err %"] = knn_error(mp.get_mahalanobis_matrix())
        peer = metric_learn_estimator("MMC", random_state=seed)
        if peer is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer.fit(pairs, lab)
            row["peer f/g^2"] = ratio(peer.get_mahalanobis_matrix(), A, diff_d)
            row["peer / ours"] = row["peer f/g^2"] / row["ours f/g^2"]
            row["peer err %"] = knn_error(peer.get_mahalanobis_matrix())
        out.append(row)
        print(
            f"  {name:14s} f/g^2 ours {row['ours f/g^2']:.6g}  peer {row.get('peer f/g^2')}",
            flush=True,
        )
    return out


def _grouped_bars(ax, table, x, series):
    """One bar per (column key, method label) in ``series``, grouped by data set."""
    w = 0.8 / len(series)
    for i, (key, label) in enumerate(series):
        ax.bar(
            x + (i - (len(series) - 1) / 2) * w, [r[key] for r in table], w,
            label=label, color=COLORS[label],
        )


def plot(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["dataset"] for r in table]
    x = np.arange(len(names))
    has_peer = "peer err %" in table[0]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    series = [
        ("Euclidean err %", "Euclidean"),
        ("ours err %", "skmetric MMC"),
        ("ours exact err %", "skmetric MMC exact"),
        ("ours diag err %", "skmetric MMC diag"),
    ]
    if has_peer:
        series.append(("peer err %", "metric-learn MMC"))
    _grouped_bars(ax1, table, x, series)
    ax1.set_xticks(x, names)
    ax1.set_ylabel("3-NN error (%)")
    ax1.set_title("3-NN test error (3-fold CV)")
    ax1.legend(fontsize=8)
    times = [
        ("ours fit s", "skmetric MMC"),
        ("ours exact fit s", "skmetric MMC exact"),
        ("ours diag fit s", "skmetric MMC diag"),
    ]
    if has_peer:
        times.append(("peer fit s", "metric-learn MMC"))
    _grouped_bars(ax2, table, x, times)
    ax2.set_yscale("log")
    ax2.set_xticks(x, names)
    ax2.set_ylabel("fit time per fold (s, log scale)")
    ax2.set_title("Fit time at the same number of constraints")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(rows, objectives, out, meta):
    """Print the tables and write CSV / JSON / PNG (called after each data set)."""
    table = comparison(rows)
    cols = list(table[0])
    print()
    print(markdown_table(table, cols))
    print(
        "\nStandardScaler -> learner -> 3-NN, stratified 3 folds; errors in %, fit time = mean "
        "per fold (BLAS limited to 1 thread); both MMCs draw the same number of similar and "
        "dissimilar pairs. ours = regularization='auto' (mu = fraction kept on the identity "
        "prior), ours exact = Xing's problem (regularization=0)."
    )
    if objectives:
        print()
        print(markdown_table(objectives, list(objectives[0])))
        print(
            "\nf/g^2 = sum of squared similar distances / (sum of dissimilar distances)^2 on "
            "the same pairs (training part of fold 0): Xing's objective at g = 1, lower is "
            "better; err % = 3-NN error on fold 0's test part with each metric learned from "
            "those pairs."
        )
    out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "runs": rows, "table": table, "objective": objectives}
    (out / "bench_mmc.json").write_text(json.dumps(payload, indent=2))
    with open(out / "bench_mmc.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(table)
    plot(table, out / "bench_mmc.png")
    print(f"\nwrote {out / 'bench_mmc.csv'}, bench_mmc.json, bench_mmc.png", flush=True)


FINAL_COLUMNS = {
    "dataset": "dataset",
    "ours err %": "ours err %",
    "peer err %": "metric-learn err %",
    "Euclidean err %": "Euclidean err %",
    "ours exact err %": "ours exact err %",
    "speed ratio (peer/ours)": "speed ratio (metric-learn / ours)",
    "ours no worse than peer": "ours no worse",
    "ours beats Euclidean": "ours beats Euclidean",
}


def final_table(table):
    """The compact comparison: ours, metric-learn, Euclidean, speed ratio."""
    keys = [k for k in FINAL_COLUMNS if k in table[0]]
    rows = [{FINAL_COLUMNS[k]: r[k] for k in keys} for r in table]
    return markdown_table(rows, [FINAL_COLUMNS[k] for k in keys])


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_mmc", description=__doc__.split("\n")[0]
    )
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_DATASETS)}")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, help="data sets (default: all four)")
    p.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--folds", type=int, default=3, choices=(1, 2, 3),
        help="evaluate only the first N of the 3 folds (for slow peer runs)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    datasets = args.datasets or (QUICK_DATASETS if args.quick else DATASETS)

    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    meta = {
        "platform": platform.platform(),
        "seed": args.seed,
        "datasets": list(datasets),
        "folds": args.folds,
    }
    rows, objectives = [], []
    # One data set at a time, with the tables rewritten after each: a long
    # peer run (metric-learn on digits) leaves complete results behind.
    for name in datasets:
        with threadpool_limits(limits=1):
            rows += run([name], seed=args.seed, peer=not args.no_peer, n_folds=args.folds)
            if not args.no_peer:
                objectives += objective_check([name], seed=args.seed)
        meta["total_s"] = time.perf_counter() - t0
        report(rows, objectives, args.out, meta)
    print("\nFinal comparison (3-NN error %, 3 stratified folds, same number of constraints):\n")
    print(final_table(comparison(rows)))


if __name__ == "__main__":
    main()
