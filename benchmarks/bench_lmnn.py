"""LMNN benchmark: skmetric vs metric-learn 0.7.0, scaling, NIPS 2005 table.

Run ``python -m benchmarks.bench_lmnn`` (``--quick`` for a short run).

(a) ``compare``: StandardScaler -> LMNN(k=3) -> 3-NN on iris, wine,
    breast_cancer, digits (and, with ``--datasets ...,digits_cnn``, the
    suite's 256-d CNN features: the high-dimensional case) with 3-fold
    stratified CV (shared harness folds); ``--max-iter`` caps both,
    skmetric's LMNN beside metric-learn's on identical folds; errors, fit
    times and the speed ratio.
(b) ``scaling``: fit time and peak memory (tracemalloc) for n from 1,000 to
    50,000 on digits enlarged with random one-pixel shifts and noise; ours at
    every size, metric-learn while its projected time stays under a cap.
(c) ``nips``: Weinberger et al. (NIPS 2005), Table 1 rows whose data ship
    with scikit-learn: Wine with raw, unscaled features and Iris, 3-NN error
    over random 70/30 splits (Euclidean, LMNN, LMNN energy classification),
    next to the paper's numbers.

CSV files and PNG plots go to benchmarks/results/; the scaling plot is also
written to benchmarks/figures/lmnn_scaling.png.
"""

import argparse
import csv
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from benchmarks.harness import (
    evaluate,
    knn_pipeline,
    load_dataset,
    markdown_table,
    stratified_folds,
    summarize,
)
from benchmarks.peers import metric_learn_estimator
from skmetric import LMNN, LMNNClassifier

RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = Path(__file__).resolve().parent / "figures"
# Weinberger, Blitzer & Saul (NIPS 2005), Table 1: 3-NN test error (%).
PAPER = {"wine": {"euclidean": 30.1, "lmnn": 2.6}, "iris": {"euclidean": 4.3, "lmnn": 4.7}}


def _write_csv(name, rows):
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------
# (a) side by side with metric-learn
# --------------------------------------------------------------------------
def _load_compare(name):
    """A harness data set, or 'digits_cnn' (256-d CNN features, the suite's loader)."""
    if name == "digits_cnn":
        from benchmarks.suite import load

        data = load("digits_cnn", seed=0)
        return data.X, data.y
    return load_dataset(name)


def compare(datasets, with_peer=True, max_iter=None):
    """Side by side; ``max_iter`` caps both (metric-learn: min_iter=min(50, cap))."""
    rows = []
    caps = {} if max_iter is None else {"max_iter": max_iter}
    peer_caps = {} if max_iter is None else {"max_iter": max_iter,
                                             "min_iter": min(50, max_iter)}
    for name in datasets:
        X, y = _load_compare(name)
        folds = stratified_folds(X, y, n_splits=3, seed=0)
        euclid = summarize(evaluate(knn_pipeline(None), X, y, folds))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours = summarize(evaluate(knn_pipeline(LMNN(n_neighbors=3, **caps)), X, y, folds))
        row = {
            "dataset": name,
            "n": X.shape[0],
            "d": X.shape[1],
            "euclidean_err": euclid["error_mean"],
            "skmetric_err": ours["error_mean"],
            "skmetric_fit_s": ours["fit_time"],
        }
        peer = metric_learn_estimator("LMNN", n_neighbors=3, **peer_caps) if with_peer else None
        if peer is not None:
            theirs = summarize(evaluate(knn_pipeline(peer), X, y, folds))
            row["metric_learn_err"] = theirs["error_mean"]
            row["metric_learn_fit_s"] = theirs["fit_time"]
            row["speedup"] = theirs["fit_time"] / ours["fit_time"]
        rows.append(row)
        print(f"  {name}: done", flush=True)
    cols = ["dataset", "n", "d", "euclidean_err", "skmetric_err", "metric_learn_err",
            "skmetric_fit_s", "metric_learn_fit_s", "speedup"]
    cap = "default caps" if max_iter is None else f"both capped at max_iter={max_iter}"
    print(f"\n### LMNN vs metric-learn 0.7.0 (3-NN error %, mean fit time per fold s; {cap})\n")
    print(markdown_table(rows, cols))
    print(f"\nwrote {_write_csv('lmnn_compare.csv', rows)}")
    return rows


# --------------------------------------------------------------------------
# (b) scaling
# --------------------------------------------------------------------------
def enlarged_digits(n, seed=0):
    """n digits: random originals shifted by up to one pixel, plus noise."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    idx = rng.randint(0, X.shape[0], size=n)
    imgs = X[idx].reshape(n, 8, 8)
    shifts = rng.randint(-1, 2, size=(n, 2))
    out = np.empty_like(imgs)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            out[sel] = np.roll(np.roll(imgs[sel], dy, axis=1), dx, axis=2)
    out += rng.normal(scale=0.5, size=out.shape)
    return out.reshape(n, 64), y[idx]


def _timed_fit(model, X, y):
    tracemalloc.start()
    t0 = time.perf_counter()
    model.fit(X, y)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return elapsed, peak


def scaling(sizes, peer_cap_s=120.0, max_iter=1000, with_peer=True):
    rows = []
    peer_last = None  # (n, seconds) of metric-learn's last finished fit
    for n in sizes:
        X, y = enlarged_digits(n)
        X = StandardScaler().fit_transform(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LMNN(n_neighbors=3, max_iter=max_iter, random_state=0)
            t, peak = _timed_fit(model, X, y)
        row = {"n": n, "skmetric_fit_s": t, "skmetric_peak_mib": peak,
               "skmetric_n_iter": model.n_iter_}
        # metric-learn's cost grows about quadratically; skip it once the
        # projection from its last run exceeds the cap.
        projected = None if peer_last is None else peer_last[1] * (n / peer_last[0]) ** 2
        if with_peer and (projected is None or projected <= peer_cap_s):
            peer = metric_learn_estimator("LMNN", n_neighbors=3)
            if peer is not None:
                tp, peakp = _timed_fit(peer, X, y)
                row.update({"metric_learn_fit_s": tp, "metric_learn_peak_mib": peakp,
                            "speedup": tp / t})
                peer_last = (n, tp)
        rows.append(row)
        print(f"  n={n}: ours {t:.2f}s {peak:.0f} MiB"
              + (f", metric-learn {row['metric_learn_fit_s']:.2f}s" if "speedup" in row else ""),
              flush=True)
    cols = ["n", "skmetric_fit_s", "skmetric_peak_mib", "skmetric_n_iter",
            "metric_learn_fit_s", "metric_learn_peak_mib", "speedup"]
    print("\n### Scaling on enlarged digits (64 features, 10 classes)\n")
    print(markdown_table(rows, cols))
    print(f"\nwrote {_write_csv('lmnn_scaling.csv', rows)}")
    _plot_scaling(rows)
    return rows


def _plot_scaling(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    n = [r["n"] for r in rows]
    peer = [r for r in rows if "metric_learn_fit_s" in r]
    for ax, key, label in [(axes[0], "fit_s", "fit time (s)"),
                           (axes[1], "peak_mib", "peak memory (MiB, tracemalloc)")]:
        ax.loglog(n, [r[f"skmetric_{key}"] for r in rows], "o-", label="skmetric LMNN")
        if peer:
            ax.loglog([r["n"] for r in peer], [r[f"metric_learn_{key}"] for r in peer],
                      "s--", label="metric-learn 0.7.0 LMNN")
        ax.set_xlabel("training samples n")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("LMNN scaling: digits enlarged with shifts and noise (d=64, k=3)")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(parents=True, exist_ok=True)
    paths = [RESULTS / "lmnn_scaling.png"]
    if max(n) >= 50_000:  # only a full run replaces the README figure
        paths.append(FIGURES / "lmnn_scaling.png")
    for path in paths:
        fig.savefig(path, dpi=110)
        print(f"wrote {path}")
    plt.close(fig)


# --------------------------------------------------------------------------
# (c) NIPS 2005 table
# --------------------------------------------------------------------------
def nips_table(n_splits=20):
    rows = []
    for name in ("wine", "iris"):
        X, y = load_dataset(name)
        errs = {"euclidean": [], "lmnn": [], "lmnn_energy": [], "lmnn_3pass": []}
        for seed in range(n_splits):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed,
                                                  stratify=y)
            knn = KNeighborsClassifier(3)
            errs["euclidean"].append(1 - knn.fit(Xtr, ytr).score(Xte, yte))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf = LMNNClassifier(n_neighbors=3, random_state=seed).fit(Xtr, ytr)
            lm = clf.lmnn_
            errs["lmnn"].append(1 - knn.fit(lm.transform(Xtr), ytr).score(lm.transform(Xte), yte))
            errs["lmnn_energy"].append(1 - clf.score(Xte, yte))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                mp = LMNN(n_neighbors=3, n_passes=3, random_state=seed).fit(Xtr, ytr)
            errs["lmnn_3pass"].append(
                1 - knn.fit(mp.transform(Xtr), ytr).score(mp.transform(Xte), yte))
        row = {"dataset": f"{name} (raw features)" if name == "wine" else name,
               "splits": n_splits,
               "paper_euclidean": PAPER[name]["euclidean"],
               "ours_euclidean": 100 * np.mean(errs["euclidean"]),
               "paper_lmnn": PAPER[name]["lmnn"],
               "ours_lmnn": 100 * np.mean(errs["lmnn"]),
               "ours_lmnn_std": 100 * np.std(errs["lmnn"]),
               "ours_lmnn_energy": 100 * np.mean(errs["lmnn_energy"]),
               "ours_lmnn_3pass": 100 * np.mean(errs["lmnn_3pass"])}
        rows.append(row)
    print("\n### NIPS 2005 Table 1 (3-NN test error %, random 70/30 splits)\n")
    print(markdown_table(rows, list(rows[0])))
    print(f"\nwrote {_write_csv('lmnn_nips2005.csv', rows)}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small run: iris and wine only, scaling up to n=5,000, 5 splits")
    parser.add_argument("--parts", default="compare,scaling,nips",
                        help="comma-separated subset of compare,scaling,nips")
    parser.add_argument("--datasets", default="iris,wine,breast_cancer,digits",
                        help="data sets for the comparison (also: digits_cnn, 256-d CNN "
                        "features of digits 5-9; trains the suite's small CNN first)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="cap both LMNNs at this many iterations in the comparison "
                        "(metric-learn also min_iter=min(50, cap)), as the suite does")
    parser.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    parser.add_argument("--sizes", default="1000,2000,5000,10000,20000,50000",
                        help="training sizes for the scaling run")
    parser.add_argument("--peer-cap", type=float, default=120.0,
                        help="skip metric-learn when its projected fit time exceeds this (s)")
    parser.add_argument("--splits", type=int, default=20, help="random splits for the NIPS table")
    args = parser.parse_args(argv)

    parts = set(args.parts.split(","))
    datasets = args.datasets.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    splits = args.splits
    if args.quick:
        datasets = [d for d in datasets if d in ("iris", "wine")] or ["iris"]
        sizes = [s for s in sizes if s <= 5000]
        splits = min(splits, 5)
    if "compare" in parts:
        compare(datasets, with_peer=not args.no_peer, max_iter=args.max_iter)
    if "scaling" in parts:
        scaling(sizes, peer_cap_s=args.peer_cap, with_peer=not args.no_peer)
    if "nips" in parts:
        nips_table(splits)


if __name__ == "__main__":
    main()
