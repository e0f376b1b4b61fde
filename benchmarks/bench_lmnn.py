"""LMNN benchmark: skmetric vs metric-learn 0.7.0, scaling, NIPS 2005 table.

Run ``python -m benchmarks.bench_lmnn`` (``--quick`` for a short run).

(a) ``compare``: the registry's "Euclidean kNN", "LMNN" and "metric-learn
    LMNN" (StandardScaler -> LMNN(k=3) -> 3-NN) on iris, wine,
    breast_cancer, digits (and, with ``--datasets ... digits_cnn``, the
    256-d CNN features: the high-dimensional case) on the shared stratified
    3 folds; both at their defaults, or both capped with ``--max-iter``.
(b) ``scaling``: fit time and peak memory (tracemalloc) for n from 1,000 to
    50,000 on digits enlarged with random one-pixel shifts and noise; ours at
    every size, metric-learn while its projected time stays under a cap.
(c) ``nips``: Weinberger et al. (NIPS 2005), Table 1 rows whose data ship
    with scikit-learn: Wine with raw, unscaled features and Iris, 3-NN error
    over random 70/30 splits (Euclidean, LMNN, LMNN energy classification),
    next to the paper's numbers.

Rows, tables and plots go to ``--out``; a full scaling run also writes the
README figure benchmarks/figures/lmnn_scaling.png.
"""

import sys

from .report import parser

METHODS = ("Euclidean kNN", "LMNN", "metric-learn LMNN")
SCALING_PANELS = (("fit_time_s", "fit time (s)"), ("peak_mib", "peak memory (MiB, tracemalloc)"))
# Weinberger, Blitzer & Saul (NIPS 2005), Table 1: 3-NN test error (%).
PAPER = {"wine": {"euclidean": 30.1, "lmnn": 2.6}, "iris": {"euclidean": 4.3, "lmnn": 4.7}}


def compare(datasets, seed=0, with_peer=True, max_iter=None):
    """(a) Rows of the side-by-side run and its per-data-set table."""
    from . import data, registry, report, runner

    methods = registry.select(METHODS, peers=with_peer)
    loaded = [data.load(name, seed=seed) for name in datasets]
    rows = runner.run(methods, loaded, seed=seed, overrides={"lmnn_max_iter": max_iter})
    return rows, report.pivot(runner.summarize(rows))


def enlarged_digits(n, seed=0):
    """n digits: random originals shifted by up to one pixel, plus noise."""
    import numpy as np

    from .data import load_sklearn

    X, y = load_sklearn("digits")
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


def scaling(sizes, seed=0, peer_cap_s=120.0, max_iter=1000, with_peer=True):
    """(b) One fit per size and method (rows with ``peak_mib``); metric-learn skipped once
    its time, projected quadratically from its last fit, exceeds ``peer_cap_s``."""
    from sklearn.preprocessing import StandardScaler

    from .registry import Context, get_method, settings
    from .runner import make_row, timed_fit

    rows, peer_last = [], None  # (n, seconds) of metric-learn's last finished fit
    for n in sizes:
        X, y = enlarged_digits(n, seed)
        X = StandardScaler().fit_transform(X)
        ctx = Context(seed, False, settings=settings(False, lmnn_max_iter=max_iter))
        projected = None if peer_last is None else peer_last[1] * (n / peer_last[0]) ** 2
        run_peer = with_peer and (projected is None or projected <= peer_cap_s)
        for m in [get_method(name) for name in METHODS[1:] if run_peer or name == "LMNN"]:
            fit = timed_fit(m.build(ctx), X, y, memory=True)
            rows.append(make_row(m, dataset="enlarged digits", n=n, d=64, **fit, status="ok"))
            print(f"  n={n} {m.name}: {fit['fit_time_s']:.2f} s, {fit['peak_mib']:.0f} MiB",
                  flush=True)
            if m.kind == "peer":
                peer_last = (n, fit["fit_time_s"])
    return rows


def nips_table(n_splits=20):
    """(c) The paper's protocol: random stratified 70/30 splits, 3-NN error (%)."""
    import numpy as np
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    from skmetric import LMNN, LMNNClassifier

    from .data import load_sklearn
    from .runner import timed_fit

    rows = []
    for name in ("wine", "iris"):
        X, y = load_sklearn(name)
        errs = {"euclidean": [], "lmnn": [], "lmnn_energy": [], "lmnn_3pass": []}
        for seed in range(n_splits):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed,
                                                  stratify=y)
            knn = KNeighborsClassifier(3)

            def knn_error(tr, te):
                return 1 - knn.fit(tr, ytr).score(te, yte)

            clf = LMNNClassifier(n_neighbors=3, random_state=seed)
            mp = LMNN(n_neighbors=3, n_passes=3, random_state=seed)
            for model in (clf, mp):
                timed_fit(model, Xtr, ytr)  # convergence warnings counted, not printed
            errs["euclidean"].append(knn_error(Xtr, Xte))
            errs["lmnn"].append(knn_error(clf.lmnn_.transform(Xtr), clf.lmnn_.transform(Xte)))
            errs["lmnn_energy"].append(1 - clf.score(Xte, yte))
            errs["lmnn_3pass"].append(knn_error(mp.transform(Xtr), mp.transform(Xte)))
        rows.append({"dataset": f"{name} (raw features)" if name == "wine" else name,
                     "splits": n_splits,
                     "paper_euclidean": PAPER[name]["euclidean"],
                     "ours_euclidean": 100 * np.mean(errs["euclidean"]),
                     "paper_lmnn": PAPER[name]["lmnn"],
                     "ours_lmnn": 100 * np.mean(errs["lmnn"]),
                     "ours_lmnn_std": 100 * np.std(errs["lmnn"]),
                     "ours_lmnn_energy": 100 * np.mean(errs["lmnn_energy"]),
                     "ours_lmnn_3pass": 100 * np.mean(errs["lmnn_3pass"])})
    return rows


def main(argv=None):
    p = parser("python -m benchmarks.bench_lmnn", __doc__,
               quick="iris and wine only, scaling up to n=5,000, 5 splits")
    p.add_argument("--parts", default="compare,scaling,nips",
                   help="comma-separated subset of compare,scaling,nips")
    p.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer", "digits"],
                   help="data sets for the comparison (also: digits_cnn, 256-d CNN features of "
                   "digits 5-9; trains the small CNN first)")
    p.add_argument("--max-iter", type=int, default=None, help="cap both LMNNs at this many "
                   "iterations in the comparison (metric-learn also min_iter=min(50, cap))")
    p.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    p.add_argument("--sizes", default="1000,2000,5000,10000,20000,50000",
                   help="training sizes for the scaling run")
    p.add_argument("--peer-cap", type=float, default=120.0,
                   help="skip metric-learn when its projected fit time exceeds this (s)")
    p.add_argument("--splits", type=int, default=20, help="random splits for the NIPS table")
    args = p.parse_args(argv)
    from . import report

    parts, sizes = set(args.parts.split(",")), [int(s) for s in args.sizes.split(",")]
    datasets, splits = args.datasets, args.splits
    if args.quick:
        datasets = [d for d in datasets if d in ("iris", "wine")] or ["iris"]
        sizes, splits = [s for s in sizes if s <= 5000], min(splits, 5)
    if "compare" in parts:
        rows, table = compare(datasets, args.seed, not args.no_peer, args.max_iter)
        cap = f"both capped at max_iter={args.max_iter}" if args.max_iter else "default caps"
        text = (f"### LMNN vs metric-learn 0.7.0 (3-NN error %, mean fit time per fold s; {cap})"
                f"\n\n{report.markdown_table(table)}\n")
        report.write(args.out, "lmnn_compare", rows, text, table=table)
        print(text)
    if "scaling" in parts:
        rows = scaling(sizes, args.seed, peer_cap_s=args.peer_cap, with_peer=not args.no_peer)
        report.write(args.out, "lmnn_scaling", rows)
        from .plots import fit_time_vs_n

        full = max(sizes) >= 50_000  # only a full run replaces the README figure
        for path in [args.out] + ([report.FIGURES] if full else []):
            fit_time_vs_n(rows, path / "lmnn_scaling.png", SCALING_PANELS, "training samples n",
                          "LMNN scaling: digits enlarged with shifts and noise (d=64, k=3)")
        print(report.markdown_table(rows, ["method", "n", "fit_time_s", "peak_mib", "n_iter"]))
    if "nips" in parts:
        rows = nips_table(splits)
        text = "### NIPS 2005 Table 1 (3-NN test error %, random 70/30 splits)\n\n"
        report.write(args.out, "lmnn_nips2005", rows, text + report.markdown_table(rows))
        print(text + report.markdown_table(rows))
    print(f"\nwrote {args.out}/lmnn_*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
