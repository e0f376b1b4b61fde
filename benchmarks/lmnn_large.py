"""LMNN at the scale of real image catalogues: one fit, its cost and its quality.

Run ``python -m benchmarks.lmnn_large --n 100000 --d 64`` (issue 17, item 1):
StandardScaler -> LMNN(n_components) on ``n`` training points, then 3-NN
accuracy on a held-out split (``--n-test`` points, default ``n // 10``)
against Euclidean 3-NN on the same split. Prints the fit's wall and CPU time,
the peak resident memory of the process (``getrusage``), the iterations, the
accuracies, and as its **last line a JSON dict** of those figures (for
callers that run this script in a child process; the keys are stable).

Data (``--data``):

* ``digits`` (default for ``--d 64``): scikit-learn's digits, enlarged with
  random one-pixel shifts and Gaussian pixel noise (10 classes); ``--d`` other
  than 64 is reached by a fixed random ReLU layer on top.
* ``cnn``: "CNN-like" vectors: the enlarged digits through a fixed random
  two-layer ReLU network to ``--d`` dimensions (non-negative, sparse, highly
  correlated, like pooled CNN features).
* ``classification``: ``make_classification`` with 10 classes, 2 clusters per
  class, half of the ``--d`` features informative.

``--profile FILE`` also writes a cProfile of the fit.
"""

import argparse
import json
import resource
import sys
import time

import numpy as np

from .bench_lmnn import enlarged_digits  # one home for the enlarged digits


def _relu_layer(X, d_out, rng):
    W = rng.normal(size=(X.shape[1], d_out)) / np.sqrt(X.shape[1])
    b = rng.normal(scale=0.5, size=d_out)
    return np.maximum(X @ W + b, 0.0)


def make_data(kind, n, d, seed=0):
    """(X, y) of ``n`` points in ``d`` dimensions (see the module docstring)."""
    if kind == "classification":
        from sklearn.datasets import make_classification

        return make_classification(n_samples=n, n_features=d, n_informative=max(2, d // 2),
                                   n_redundant=0, n_classes=10, n_clusters_per_class=2,
                                   class_sep=1.5, random_state=seed)
    X, y = enlarged_digits(n, seed)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1.0)
    net = np.random.RandomState(1234)  # the same "network" for every seed
    if kind == "cnn":
        X = _relu_layer(_relu_layer(X, 256, net), d, net)
    elif kind == "digits":
        if d != 64:
            X = _relu_layer(X, d, net)
    else:
        raise ValueError(f"unknown --data {kind!r}")
    return X, y


def peak_rss_mib():
    """Peak resident memory of this process so far (MiB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def knn_accuracy(Xtr, ytr, Xte, yte, k=3):
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(k).fit(Xtr, ytr).score(Xte, yte))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.lmnn_large", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="training points")
    p.add_argument("--d", type=int, default=64, help="features")
    p.add_argument("--n-components", type=int, default=None,
                   help="LMNN n_components (default: d)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", choices=("digits", "cnn", "classification"), default=None,
                   help="default: digits for d = 64, cnn otherwise")
    p.add_argument("--n-test", type=int, default=None, help="held-out points (default n // 10)")
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--verbose", type=int, default=1)
    p.add_argument("--profile", default=None, help="write a cProfile of the fit here")
    args = p.parse_args(argv)

    from sklearn.preprocessing import StandardScaler

    from skmetric import LMNN

    kind = args.data or ("digits" if args.d == 64 else "cnn")
    n_test = args.n_test if args.n_test is not None else max(1000, args.n // 10)
    X, y = make_data(kind, args.n + n_test, args.d, args.seed)
    Xtr, ytr, Xte, yte = X[:args.n], y[:args.n], X[args.n:], y[args.n:]
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    print(f"data {kind}: {args.n} train + {n_test} test points, d = {args.d}, "
          f"{np.unique(y).size} classes; RSS before the fit {peak_rss_mib():.0f} MiB",
          flush=True)

    model = LMNN(n_components=args.n_components, max_iter=args.max_iter,
                 verbose=args.verbose, random_state=args.seed)
    import warnings

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if profiler:
            profiler.enable()
        model.fit(Xtr, ytr)
        if profiler:
            profiler.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if profiler:
        profiler.dump_stats(args.profile)
    rss = peak_rss_mib()

    acc_euc = knn_accuracy(Xtr, ytr, Xte, yte)
    acc_lmnn = knn_accuracy(model.transform(Xtr), ytr, model.transform(Xte), yte)
    figures = {
        "data": kind, "n": args.n, "d": args.d,
        "n_components": int(model.components_.shape[0]), "seed": args.seed,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(rss, 1), "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "warnings": [str(w.message)[:200] for w in caught],
        "acc_euclidean": round(acc_euc, 4), "acc_lmnn": round(acc_lmnn, 4),
        "n_test": n_test,
    }
    print(f"fit: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:.0f} MiB, "
          f"{model.n_iter_} iterations, converged={model.converged_}")
    print(f"3-NN held-out accuracy: Euclidean {acc_euc:.4f}, LMNN {acc_lmnn:.4f}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
