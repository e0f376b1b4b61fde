"""SDML and MLKR: skmetric against metric-learn 0.7.0 on the same data and pairs.

``python -m benchmarks.bench_sdml_mlkr [--quick] [--seed 0] [--out FILE] [--no-peer]``

* **SDML** on iris, wine and breast_cancer: 3 stratified folds, StandardScaler
  fitted on the training fold, then ``20 * n_classes**2`` similar and as many
  dissimilar pairs drawn once per fold (:func:`skmetric.constraints.sample_pairs`,
  seeded) and handed to *both* pair learners (skmetric's ``SDMLPairs`` with
  ``validation_fraction=0`` and metric-learn's ``SDML``), default settings
  otherwise (balance 0.5, sparsity 0.01, identity prior). Scored by the 3-NN
  error in the learned space. With balance 0.5 the matrix ``I + 0.5 K`` is
  indefinite on these data and metric-learn fails; the "PD balance" rows
  therefore rerun both with ``balance_param = 0.5 / |lambda_min(K)|`` (the
  same per fold for both), where that matrix is positive definite and no
  repair is needed, to compare times and errors on a problem both can solve.

  metric-learn 0.7.0's SDML passes ``cov_init`` to scikit-learn's
  ``graphical_lasso``, which no longer takes it: as installed, every fit
  fails (the script probes and reports this). Beyond the shared keyword
  adapter of :mod:`benchmarks.peers`, this script therefore rebinds
  ``metric_learn.sdml.graphical_lasso`` to a wrapper that drops ``cov_init``
  (a starting point only; the problem solved is unchanged), inside
  metric-learn's module and only here.
* **MLKR** on diabetes and Friedman #1 (``make_friedman1``, 500 samples,
  noise 1): 3 folds, StandardScaler, both MLKRs with their defaults, scored by
  the held-out MSE of ``KNeighborsRegressor(n_neighbors=5)`` in the learned
  space. A second table times one objective-and-gradient evaluation of each
  (same data, same ``L``), the cost per iteration independently of when each
  stops.

Fit times are wall-clock (``time.perf_counter``) and CPU (``time.process_time``)
seconds per fold, with BLAS limited to one thread for every method. "ratio" is
metric-learn's time over skmetric's. A metric-learn failure is recorded with
its error. Prints markdown tables and writes them, with every fold's figures,
as JSON to ``--out`` (default ``benchmarks/results/bench_sdml_mlkr.json``).
"""

import argparse
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="iris and wine for SDML, 200 diabetes samples for MLKR")
    parser.add_argument("--seed", type=int, default=0, help="folds and pair sampling")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_sdml_mlkr.json",
                        help="JSON file for the results")
    parser.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    return parser.parse_args(argv)


def _timed(fn):
    """Run ``fn()``; return (result or None, wall s, cpu s, error text or None)."""
    import time

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        out, error = fn(), None
    except Exception as exc:  # a peer's failure is a result to report
        text = str(exc)
        thrown = text.find("error message was thrown")
        text = text[thrown:] if thrown >= 0 else text
        out, error = None, f"{type(exc).__name__}: {text[:160]}"
    return out, time.perf_counter() - wall, time.process_time() - cpu, error


def _probe_and_adapt_metric_learn_sdml(ml):
    """Fit metric-learn's SDML once as installed; then drop its ``cov_init``.

    Returns the probe's error text (None if it worked).
    """
    import functools

    import numpy as np

    rng = np.random.RandomState(0)
    a = rng.normal(size=(20, 3))
    pairs = np.stack([a, a + 0.1 * rng.normal(size=a.shape)], axis=1)
    _, _, _, error = _timed(
        lambda: ml.SDML(balance_param=1e-3).fit(pairs, np.r_[np.ones(10), -np.ones(10)]))
    module = ml.sdml
    original = module.graphical_lasso
    if not getattr(original, "__bench_adapter__", False):
        @functools.wraps(original)
        def without_cov_init(*args, **kwargs):
            kwargs.pop("cov_init", None)
            return original(*args, **kwargs)

        without_cov_init.__bench_adapter__ = True
        module.graphical_lasso = without_cov_init
    return error


def _summary(name, method, folds):
    import numpy as np

    ok = [f for f in folds if f["error"] is None]
    row = {"dataset": name, "method": method, "folds_ok": f"{len(ok)}/{len(folds)}"}
    if ok:
        row.update(
            score=float(np.mean([f["score"] for f in ok])),
            wall_s=float(np.mean([f["wall_s"] for f in ok])),
            cpu_s=float(np.mean([f["cpu_s"] for f in ok])),
        )
    failures = {f["error"] for f in folds if f["error"] is not None}
    row["failure"] = "; ".join(sorted(failures)) or None
    return row


def run_sdml(datasets, seed, peer):
    import warnings

    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    from skmetric import SDMLPairs
    from skmetric._sdml_solver import pair_scatter
    from skmetric.constraints import pairs_from_indices, sample_pairs

    from .peers import metric_learn_module

    loaders = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer}
    ml = metric_learn_module() if peer else None
    probe = _probe_and_adapt_metric_learn_sdml(ml) if ml is not None else None
    rows, details = [], []
    for name in datasets:
        X, y = loaders[name](return_X_y=True)
        n_pairs = 20 * np.unique(y).size ** 2
        per_method = {}
        cv = StratifiedKFold(3, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(cv.split(X, y)):
            scaler = StandardScaler().fit(X[train])
            Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
            idx, lab = sample_pairs(y[train], n_pairs, random_state=seed + fold)
            pairs = pairs_from_indices(Xtr, idx)
            lam_min = np.linalg.eigvalsh(pair_scatter(pairs, lab))[0]
            b_pd = 0.5 / abs(lam_min) if lam_min < 0 else 0.5
            learners = {
                "Euclidean": None,
                "skmetric SDMLPairs": lambda: SDMLPairs(validation_fraction=0).fit(pairs, lab),
            }
            if ml is not None:
                learners["metric-learn SDML"] = lambda: ml.SDML().fit(pairs, lab)
            learners["skmetric SDMLPairs (PD balance)"] = lambda: SDMLPairs(
                balance_param=b_pd, validation_fraction=0).fit(pairs, lab)
            if ml is not None:
                learners["metric-learn SDML (PD balance)"] = lambda: ml.SDML(
                    balance_param=b_pd).fit(pairs, lab)
            for method, fit in learners.items():
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fitted, wall, cpu, error = (
                        (None, 0.0, 0.0, None) if fit is None else _timed(fit))
                entry = {"fold": fold, "wall_s": wall, "cpu_s": cpu, "error": error,
                         "balance_param": b_pd if "PD" in method else 0.5,
                         "warnings": sorted({str(w.message)[:100] for w in caught})}
                if error is None:
                    A, B = (Xtr, Xte) if fitted is None else (fitted.transform(Xtr), fitted.transform(Xte))
                    knn = KNeighborsClassifier(n_neighbors=3).fit(A, y[train])
                    entry["score"] = 100.0 * (1.0 - knn.score(B, y[test]))
                per_method.setdefault(method, []).append(entry)
        for method, folds in per_method.items():
            rows.append(_summary(name, method, folds))
            details.append({"dataset": name, "method": method, "folds": folds})
    return rows, details, probe


def _regression_sets(quick, seed):
    from sklearn.datasets import load_diabetes, make_friedman1

    X, y = load_diabetes(return_X_y=True)
    if quick:
        return {"diabetes[:200]": (X[:200], y[:200])}
    return {
        "diabetes": (X, y),
        "friedman1": make_friedman1(n_samples=500, noise=1.0, random_state=seed),
    }


def run_mlkr(quick, seed, peer):
    import warnings

    import numpy as np
    from sklearn.model_selection import KFold
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    from skmetric import MLKR

    from .peers import metric_learn_module

    ml = metric_learn_module() if peer else None
    rows, details = [], []
    for name, (X, y) in _regression_sets(quick, seed).items():
        per_method = {"Euclidean": [], "skmetric MLKR": []}
        if ml is not None:
            per_method["metric-learn MLKR"] = []
        for fold, (train, test) in enumerate(KFold(3, shuffle=True, random_state=seed).split(X)):
            scaler = StandardScaler().fit(X[train])
            Xtr, Xte = scaler.transform(X[train]), scaler.transform(X[test])
            learners = {"Euclidean": None, "skmetric MLKR": lambda: MLKR().fit(Xtr, y[train])}
            if ml is not None:
                learners["metric-learn MLKR"] = lambda: ml.MLKR().fit(Xtr, y[train])
            for method, fit in learners.items():
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    fitted, wall, cpu, error = (None, 0.0, 0.0, None) if fit is None else _timed(fit)
                entry = {"fold": fold, "wall_s": wall, "cpu_s": cpu, "error": error,
                         "n_iter": getattr(fitted, "n_iter_", None),
                         "warnings": sorted({str(w.message)[:100] for w in caught})}
                if error is None:
                    A, B = (Xtr, Xte) if fitted is None else (fitted.transform(Xtr), fitted.transform(Xte))
                    knn = KNeighborsRegressor(n_neighbors=5).fit(A, y[train])
                    entry["score"] = float(np.mean((knn.predict(B) - y[test]) ** 2))
                per_method[method].append(entry)
        for method, folds in per_method.items():
            row = _summary(name, method, folds)
            iters = [f["n_iter"] for f in folds if f.get("n_iter") is not None]
            row["n_iter"] = float(np.mean(iters)) if iters else None
            rows.append(row)
            details.append({"dataset": name, "method": method, "folds": folds})
    return rows, details


def time_mlkr_evaluations(quick, seed, peer, repeats=20):
    """Seconds per objective-and-gradient evaluation, ours and metric-learn's."""
    import time

    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from skmetric._mlkr_solver import mlkr_loss_grad

    from .peers import metric_learn_module

    ml = metric_learn_module() if peer else None
    rows = []
    for name, (X, y) in _regression_sets(quick, seed).items():
        X = StandardScaler().fit_transform(X)
        y = np.asarray(y, dtype=np.float64)
        L = 0.3 * np.random.RandomState(seed).normal(size=(X.shape[1], X.shape[1]))
        row = {"dataset": name, "n_samples": X.shape[0]}

        def per_call(fn):
            fn()  # warm-up
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                out = fn()
            return (out, 1e3 * (time.perf_counter() - wall) / repeats,
                    1e3 * (time.process_time() - cpu) / repeats)

        ours, row["skmetric_ms"], row["skmetric_cpu_ms"] = per_call(
            lambda: mlkr_loss_grad(L.ravel(), X, y, L.shape[0]))
        if ml is not None:
            peer_est = ml.MLKR()
            peer_est.n_iter_, peer_est.verbose = 0, False
            theirs, row["metric_learn_ms"], row["metric_learn_cpu_ms"] = per_call(
                lambda: peer_est._loss(L.ravel(), X, y))
            row["ratio"] = row["metric_learn_ms"] / row["skmetric_ms"]
            row["ratio_cpu"] = row["metric_learn_cpu_ms"] / row["skmetric_cpu_ms"]
            scale = max(1.0, abs(ours[0]))
            row["same_loss"] = bool(abs(ours[0] - theirs[0]) <= 1e-8 * scale)
            row["same_grad"] = bool(np.allclose(ours[1], theirs[1], rtol=1e-6,
                                                atol=1e-9 * np.abs(ours[1]).max()))
        rows.append(row)
    return rows


def _ratios(rows, ours, peer):
    """Add metric-learn / skmetric time ratios to skmetric's rows."""
    by_key = {(r["dataset"], r["method"]): r for r in rows}
    for r in rows:
        if r["method"] != ours:
            continue
        other = by_key.get((r["dataset"], peer))
        if other and "wall_s" in other and "wall_s" in r:
            r["ratio_wall"] = other["wall_s"] / r["wall_s"]
            r["ratio_cpu"] = other["cpu_s"] / max(r["cpu_s"], 1e-9)


def _table(rows, columns):
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    # One BLAS thread for every method, set before numpy is imported.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import json
    import platform

    import sklearn

    peer = not args.no_peer
    sdml_sets = ("iris", "wine") if args.quick else ("iris", "wine", "breast_cancer")
    sdml_rows, sdml_details, sdml_probe = run_sdml(sdml_sets, args.seed, peer)
    _ratios(sdml_rows, "skmetric SDMLPairs", "metric-learn SDML")
    _ratios(sdml_rows, "skmetric SDMLPairs (PD balance)", "metric-learn SDML (PD balance)")
    mlkr_rows, mlkr_details = run_mlkr(args.quick, args.seed, peer)
    _ratios(mlkr_rows, "skmetric MLKR", "metric-learn MLKR")
    eval_rows = time_mlkr_evaluations(args.quick, args.seed, peer)

    cols = ["dataset", "method", "score", "wall_s", "cpu_s", "ratio_wall", "ratio_cpu",
            "folds_ok", "failure"]
    print("## SDML: 3-NN error (%), fit time per fold (s), same pairs for both\n")
    if sdml_probe:
        print(f"metric-learn SDML as installed fails: {sdml_probe[-160:]}")
        print("(the rows below use it with cov_init dropped)\n")
    print(_table(sdml_rows, cols))
    print("\n## MLKR: 5-NN regression MSE, fit time per fold (s)\n")
    print(_table(mlkr_rows, cols[:7] + ["n_iter", "folds_ok", "failure"]))
    print("\n## MLKR: one objective + gradient evaluation (ms)\n")
    print(_table(eval_rows, ["dataset", "n_samples", "skmetric_ms", "metric_learn_ms", "ratio",
                             "skmetric_cpu_ms", "metric_learn_cpu_ms", "ratio_cpu",
                             "same_loss", "same_grad"]))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "args": {"quick": args.quick, "seed": args.seed, "peer": peer},
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "sdml": sdml_rows,
        "metric_learn_sdml_as_installed": sdml_probe or "works",
        "mlkr": mlkr_rows,
        "mlkr_evaluation": eval_rows,
        "details": {"sdml": sdml_details, "mlkr": mlkr_details},
    }
    args.out.write_text(json.dumps(payload, indent=1, default=str))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
