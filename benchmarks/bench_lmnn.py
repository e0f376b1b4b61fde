"""LMNN benchmark: skmetric vs metric-learn 0.7.0, scaling, NIPS 2005 table, kNN metric paths.

Run ``python -m benchmarks.bench_lmnn`` (``--quick`` for a short run).

(a) ``compare``: the registry's "Euclidean kNN", "LMNN" and "metric-learn
    LMNN" (StandardScaler -> LMNN(k=3) -> 3-NN) on iris, wine,
    breast_cancer, digits (and, with ``--datasets ... digits_cnn``, the
    256-d CNN features: the high-dimensional case) on the shared stratified
    3 folds; both at their defaults, or both capped with ``--max-iter``.
(b) ``scaling``: one fit per (features, method, n), each in a child process
    (``python -m benchmarks.bench_lmnn --child SPEC``) whose peak resident
    memory (``ru_maxrss`` of that child from ``os.wait4``: BLAS buffers and
    all) is measured, with its fit wall and CPU time, iterations, held-out
    3-NN accuracy and the achieved GFLOP/s of an iteration's dense products
    against the machine's dgemm rate measured in the same child. Features:
    d=64 digits enlarged with random one-pixel shifts and noise (n up to
    100,000) and d=512 CNN-like vectors (ReLU of a random 64 -> 512 layer
    over those digits), plus the real 512-d features of a resnet18 (random
    weights) on the 1,797 digits. Ours at every size; metric-learn (O(n^2))
    while its time, projected quadratically from its last fit, stays under
    ``--peer-cap`` seconds (the skipped points are listed in the table and
    the figure). With CUDA, GPU rows time the iteration's products on the
    device (skmetric's LMNN itself runs on the CPU); without, one line says
    they were skipped.
(c) ``nips``: Weinberger et al. (NIPS 2005), Table 1 rows whose data ship
    with scikit-learn: Wine with raw, unscaled features and Iris, 3-NN error
    over random 70/30 splits (Euclidean, LMNN, LMNN energy classification),
    next to the paper's numbers.
(d) ``knn_metric``: 3-NN predict time on held-out points through each way of
    giving scikit-learn the learned metric, against ``KNeighborsClassifier``
    on ``transform(X)`` in the same run (wall and CPU): the learner's
    ``neighbors_pipeline``, ``metric="mahalanobis"`` with ``VI = M`` (brute,
    ball_tree) and the ``get_metric()`` callable; on digits (64-d) and 512-d
    CNN-like vectors.

Rows, tables and plots go to ``--out``; a full scaling run (n up to 50,000 or
more) also writes the README figure benchmarks/figures/lmnn_scaling.png.
"""

import json
import os
import sys

from .report import parser

METHODS = ("Euclidean kNN", "LMNN", "metric-learn LMNN")
FEATURES = {"digits64": "d=64 enlarged digits", "cnn512": "d=512 CNN-like vectors",
            "resnet512": "d=512 resnet18 features of digits"}
N_TEST = 2000  # held-out points of a scaling child (from digits no training point came from)
# Weinberger, Blitzer & Saul (NIPS 2005), Table 1: 3-NN test error (%).
PAPER = {"wine": {"euclidean": 30.1, "lmnn": 2.6}, "iris": {"euclidean": 4.3, "lmnn": 4.7}}


def compare_dataset(name, seed=0):
    """A data set of the comparison: the suite's, or ``resnet512`` (the 1,797 digits'
    512-d resnet18 features, random weights, a fixed seed)."""
    import time

    from . import data

    if name != "resnet512":
        return data.load(name, seed=seed)
    t0 = time.perf_counter()
    X, y = resnet_digits(seed)
    return data.Dataset(name, X, y, note=FEATURES[name], prep_time=time.perf_counter() - t0)


def compare(datasets, seed=0, with_peer=True, max_iter=None, peer_max_iter=None,
            n_components=()):
    """(a) Rows of the side-by-side run and its per-data-set table.

    ``max_iter`` caps both LMNNs; ``peer_max_iter`` caps metric-learn's alone
    (ours at its defaults: the cap only flatters the peer's time). Each
    ``n_components`` value adds a row of ours at that rank.
    """
    from . import registry, report, runner

    methods = registry.select(METHODS, peers=with_peer)
    if n_components:  # (select() without names means the suite's defaults)
        methods += registry.select([f"LMNN, n_components={k}" for k in n_components],
                                   peers=False)
    loaded = [compare_dataset(name, seed=seed) for name in datasets]
    rows = runner.run(methods, loaded, seed=seed, overrides={"lmnn_max_iter": max_iter,
                                                               "lmnn_peer_max_iter": peer_max_iter})
    return rows, report.pivot(runner.summarize(rows))


def enlarged_digits(n, seed=0, originals=None):
    """n digits: random originals (from the indices ``originals``, default all) shifted by
    up to one pixel, plus noise."""
    import numpy as np

    from .data import load_sklearn

    X, y = load_sklearn("digits")
    rng = np.random.RandomState(seed)
    pool = np.arange(X.shape[0]) if originals is None else np.asarray(originals)
    idx = pool[rng.randint(0, pool.size, size=n)]
    imgs = X[idx].reshape(n, 8, 8)
    shifts = rng.randint(-1, 2, size=(n, 2))
    out = np.empty_like(imgs)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            out[sel] = np.roll(np.roll(imgs[sel], dy, axis=1), dx, axis=2)
    out += rng.normal(scale=0.5, size=out.shape)
    return out.reshape(n, 64), y[idx]


def cnn_like(X, seed=0, d=512):
    """CNN-like vectors: ReLU of a fixed random layer 64 -> d (non-negative, sparse, correlated)."""
    import numpy as np

    rng = np.random.RandomState(10_000 + seed)  # the same layer for training and test points
    W = rng.normal(size=(X.shape[1], d)) / np.sqrt(X.shape[1])
    b = rng.normal(scale=0.5, size=d)
    return np.maximum((X - X.mean()) / X.std() @ W + b, 0.0)


def resnet_digits(seed=0):
    """The 1,797 digits through a resnet18 with random weights drawn from ``seed`` (512-d),
    images at 32x32."""
    from skmetric.datasets import load_digits_images

    from .data import cnn_features

    images, y = load_digits_images()
    return cnn_features(images, "resnet18", input_size=32, random_state=seed), y


def scaling_data(features, n, seed=0):
    """(X_train, y_train, X_test, y_test) of one scaling point, standardised on the training part.

    Training and test points come from disjoint halves of the original digits.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if features == "resnet512":
        X, y = resnet_digits(seed)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.33, stratify=y,
                                              random_state=seed)
    else:
        half = np.random.RandomState(seed).permutation(1797)
        Xtr, ytr = enlarged_digits(n, seed, originals=half[:900])
        Xte, yte = enlarged_digits(N_TEST, seed + 1, originals=half[900:])
        if features == "cnn512":
            Xtr, Xte = cnn_like(Xtr, seed), cnn_like(Xte, seed)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), ytr, scaler.transform(Xte), yte


def _rss_mib(field="VmRSS"):
    """This process's resident memory (``/proc/self/status``; None where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def dgemm_gflops(n, d, d_out, repeats=3):
    """The best rate of ``(n x d) @ (d x d_out)`` in float64 numpy, GFLOP/s."""
    import time

    import numpy as np

    rng = np.random.RandomState(0)
    A, B = rng.normal(size=(n, d)), rng.normal(size=(d, d_out))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n * d * d_out / best / 1e9


def iteration_flops(n, d, d_out):
    """Flops of one LMNN evaluation's dense products: ``Z = X @ L.T`` and the gradient
    ``(C Z).T @ X`` (the sparse ``X^T W X`` accumulation), ``2 n d d_out`` each."""
    return 4.0 * n * d * d_out


def child(spec):
    """One scaling point in this process: data, one fit, the measures (a JSON line)."""
    from sklearn.neighbors import KNeighborsClassifier

    from .registry import Context, get_method, settings
    from .runner import timed_fit

    Xtr, ytr, Xte, yte = scaling_data(spec["features"], spec["n"], spec["seed"])
    method = get_method(spec["method"])
    ctx = Context(spec["seed"], False, settings=settings(False, lmnn_max_iter=spec["max_iter"]))
    model = method.build(ctx)
    rss_before = _rss_mib()
    fit = timed_fit(model, Xtr, ytr)
    Ztr, Zte = model.transform(Xtr), model.transform(Xte)
    acc = KNeighborsClassifier(n_neighbors=3).fit(Ztr, ytr).score(Zte, yte)
    n, d = Xtr.shape
    out = {**fit, "n": n, "d": d, "n_components": Ztr.shape[1], "accuracy": 100 * acc,
           "rss_before_fit_mib": rss_before, "vmhwm_mib": _rss_mib("VmHWM")}
    if method.kind == "skmetric" and fit["n_iter"]:
        per_iter = fit["fit_time_s"] / fit["n_iter"]
        out["gflops"] = iteration_flops(n, d, Ztr.shape[1]) / per_iter / 1e9
        out["dgemm_gflops"] = dgemm_gflops(n, d, Ztr.shape[1])
    print(json.dumps(out))


# A small launcher between the benchmark and each child: ``ru_maxrss`` keeps the largest
# resident size of a process across ``exec``, so a child forked straight from a big
# parent would report the parent's size. Forked from this ~10 MiB launcher, the child's
# own peak is what ``wait4`` returns. Prints "<exit code> <ru_maxrss>" on stderr.
_LAUNCHER = """
import os, subprocess, sys, threading
timeout = float(sys.argv[1])
proc = subprocess.Popen(sys.argv[2:])
timer = threading.Timer(timeout, proc.kill) if timeout > 0 else None
if timer:
    timer.start()
_, status, usage = os.wait4(proc.pid, 0)
if timer:
    timer.cancel()
sys.stderr.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_child(args, timeout=None):
    """Run ``python args...`` in a child process; (stdout, peak RSS in MiB, return code).

    The peak is the child's own ``ru_maxrss`` (``os.wait4`` in a small
    launcher process, see ``_LAUNCHER``), so every byte it touched counts
    (numpy and BLAS buffers, the interpreter), not only what tracemalloc
    sees. A child running past ``timeout`` seconds is killed (code -9).
    """
    import subprocess
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(timeout or 0), sys.executable,
                               *args], stdout=out, stderr=subprocess.PIPE, text=True, cwd=root)
        out.seek(0)
        code, maxrss = done.stderr.split()[-2:]
        # Linux reports ru_maxrss in KiB (macOS in bytes).
        scale = 2**20 if sys.platform == "darwin" else 2**10
        return out.read(), int(maxrss) / scale, int(code)


def scaling_point(method, features, n, seed=0, max_iter=1000, timeout=None):
    """One (method, features, n) fit in a child process: a row with ``peak_rss_mib``."""
    from .registry import get_method
    from .runner import make_row

    spec = {"method": method, "features": features, "n": n, "seed": seed, "max_iter": max_iter}
    text, peak, code = run_child(["-m", "benchmarks.bench_lmnn", "--child", json.dumps(spec)],
                                 timeout)
    lines = text.strip().splitlines()
    row = make_row(get_method(method), dataset=FEATURES[features], features=features, n=n)
    if code != 0 or not lines:
        why = "timeout" if code == -9 else f"child exited with {code}"
        return {**row, "status": f"failed: {why}", "peak_rss_mib": peak}
    return {**row, **json.loads(lines[-1]), "peak_rss_mib": peak, "status": "ok"}


def scaling(plan, seed=0, peer_cap_s=120.0, max_iter=1000, with_peer=True, timeout=1800):
    """(b) ``plan``: {features: sizes}. Rows, one per (features, method, n); metric-learn
    skipped (a row with the reason) once its CPU time, projected quadratically in n from
    its last fit, exceeds ``peer_cap_s`` (CPU, not wall: a loaded machine stays fair)."""
    rows = []
    for features, sizes in plan.items():
        peer_last = None  # (n, CPU seconds) of metric-learn's last finished fit
        for n in sizes:
            methods = ["LMNN"]
            if with_peer:
                projected = None if peer_last is None else peer_last[1] * (n / peer_last[0]) ** 2
                if projected is None or projected <= peer_cap_s:
                    methods.append("metric-learn LMNN")
                else:
                    from .registry import get_method
                    from .runner import make_row

                    rows.append(make_row(
                        get_method("metric-learn LMNN"), dataset=FEATURES[features],
                        features=features, n=n,
                        status=f"skipped: projected {projected:.0f} CPU s > cap {peer_cap_s:.0f} s"))
            for m in methods:
                row = scaling_point(m, features, n, seed, max_iter, timeout)
                rows.append(row)
                print(f"  {features} n={n} {m}: {row['status']}, "
                      f"{row.get('fit_time_s') or 0:.2f} s, {row['peak_rss_mib']:.0f} MiB peak RSS",
                      flush=True)
                if m != "LMNN":
                    # A peer that failed (timeout) is not run at larger n.
                    peer_last = (n, row["cpu_time_s"] if row["status"] == "ok" else float("inf"))
    return rows


def gpu_rows(plan):
    """Rows timing one LMNN iteration's dense products on CUDA, or [] and the reason."""
    try:
        import torch
    except ImportError:
        return [], "GPU rows skipped: torch is not installed."
    if not torch.cuda.is_available():
        return [], "GPU rows skipped: no CUDA device (torch.cuda.is_available() is False)."
    import time

    rows = []
    for features, sizes in plan.items():
        d = 64 if features == "digits64" else 512
        for n in sizes:
            for dtype in (torch.float64, torch.float32):
                X = torch.randn(n, d, dtype=dtype, device="cuda")
                L = torch.randn(d, d, dtype=dtype, device="cuda")
                C = torch.randn(n, d, dtype=dtype, device="cuda")  # stands for C @ Z
                best = float("inf")
                for _ in range(5):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    (C.T @ X, X @ L.T)
                    torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - t0)
                rows.append({"features": features, "method": f"iteration products on "
                             f"{torch.cuda.get_device_name()} ({str(dtype)[6:]})", "n": n,
                             "gflops": iteration_flops(n, d, d) / best / 1e9})
    return rows, "GPU rows: the two dense products of one iteration on the device."


def scaling_table(rows):
    """The markdown table of the scaling rows (skipped peers listed with their reason)."""
    from .report import markdown_table

    table = []
    for r in rows:
        ok = r.get("status") == "ok"
        pct = (100 * r["gflops"] / r["dgemm_gflops"]) if ok and r.get("dgemm_gflops") else None
        table.append({
            "features": FEATURES.get(r["features"], r["features"]), "method": r["method"],
            "n": r["n"], "fit wall s": r.get("fit_time_s"), "fit CPU s": r.get("cpu_time_s"),
            "peak RSS MiB": r.get("peak_rss_mib"), "RSS before fit MiB": r.get("rss_before_fit_mib"),
            "iters": r.get("n_iter"), "3-NN acc %": r.get("accuracy"),
            "GFLOP/s per iter": r.get("gflops"), "dgemm GFLOP/s": r.get("dgemm_gflops"),
            "% of dgemm": pct, "status": r.get("status", "ok"),
        })
    return markdown_table(table)


def knn_metric_timing(seed=0, quick=False, repeats=7):
    """(d) Predict time of 3-NN under the learned metric, each way scikit-learn can run it.

    Returns rows: wall and CPU seconds of ``predict`` on the held-out points,
    their ratio to ``KNeighborsClassifier`` on ``transform(X)`` (the reference,
    same run, transform of the queries included) and the fraction of
    predictions equal to the reference. The slow paths are timed on a subset
    of the queries and scaled up (``queries_timed``).
    """
    import time

    from threadpoolctl import threadpool_limits

    def timed(f, reps):
        best = (float("inf"), float("inf"))
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            out = f()
            best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
        return best, out

    rows = []
    cases = [("digits64", 1200 if not quick else 400), ("cnn512", 4000 if not quick else 400)]
    for features, n in cases:
        with threadpool_limits(limits=1):  # the work, not the OpenMP waits of a shared machine
            rows += _knn_metric_case(features, n, seed, quick, repeats, timed)
    return rows


def _knn_metric_case(features, n, seed, quick, repeats, timed):
    """The rows of :func:`knn_metric_timing` for one kind of features."""
    import warnings

    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    from skmetric import LMNN

    rows = []
    Xtr, ytr, Xte, yte = scaling_data(features, n, seed)
    Xte, yte = Xte[: (1000 if not quick else 200)], yte[: (1000 if not quick else 200)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a capped fit: the metric only needs to be learned
        lmnn = LMNN(n_neighbors=3, max_iter=30 if not quick else 5,
                    random_state=seed).fit(Xtr, ytr)
    M = lmnn.get_mahalanobis_matrix()
    ref_knn = KNeighborsClassifier(3).fit(lmnn.transform(Xtr), ytr)
    (w0, c0), ref = timed(lambda: ref_knn.predict(lmnn.transform(Xte)), repeats)
    paths = [
        ("neighbors_pipeline(KNeighborsClassifier(3))",
         lmnn.neighbors_pipeline(KNeighborsClassifier(3)), None),
        ('metric="mahalanobis", VI=M, brute',
         KNeighborsClassifier(3, metric="mahalanobis", metric_params={"VI": M},
                              algorithm="brute"), 200 if not quick else 5),
        ('metric="mahalanobis", VI=M, ball_tree',
         KNeighborsClassifier(3, metric="mahalanobis", metric_params={"VI": M},
                              algorithm="ball_tree"), 100 if not quick else 2),
        ("metric=get_metric() (callable), brute",
         KNeighborsClassifier(3, metric=lmnn.get_metric(), algorithm="brute"),
         20 if not quick else 5),
    ]
    d = Xtr.shape[1]
    rows.append({"features": FEATURES[features], "n_train": len(ytr), "d": d,
                 "path": "KNeighborsClassifier(3) on transform(X) (reference)",
                 "queries_timed": len(yte), "predict wall s": w0, "predict CPU s": c0,
                 "wall ratio": 1.0, "CPU ratio": 1.0, "same predictions": 1.0})
    for name, est, subset in paths:
        est.fit(Xtr, ytr)
        q = len(yte) if subset is None else min(subset, len(yte))
        (w, c), pred = timed(lambda: est.predict(Xte[:q]), repeats if subset is None else 1)
        scale = len(yte) / q
        rows.append({"features": FEATURES[features], "n_train": len(ytr), "d": d,
                     "path": name, "queries_timed": q, "predict wall s": w * scale,
                     "predict CPU s": c * scale, "wall ratio": w * scale / w0,
                     "CPU ratio": c * scale / c0,
                     "same predictions": float(np.mean(pred == ref[:q]))})
        print(f"  {features} {name}: {w * scale:.3f} s wall ({w * scale / w0:.1f}x), "
              f"{c * scale:.3f} s CPU ({c * scale / c0:.1f}x)", flush=True)
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
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--child"]:  # one scaling point, run by scaling_point in a child process
        child(json.loads(argv[1]))
        return 0
    p = parser("python -m benchmarks.bench_lmnn", __doc__,
               quick="iris and wine only; scaling at n=500 and 1,000 (d=64) and 200 (d=512) "
               "with 20 iterations; 5 splits; small kNN timing")
    p.add_argument("--parts", default="compare,scaling,nips,knn_metric",
                   help="comma-separated subset of compare,scaling,nips,knn_metric")
    p.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer", "digits"],
                   help="data sets for the comparison (also: digits_cnn, 256-d CNN features of "
                   "digits 5-9; trains the small CNN first; resnet512, the 512-d resnet18 "
                   "features of the 1,797 digits)")
    p.add_argument("--n-components", type=int, nargs="*", default=[], choices=(32, 64),
                   help="comparison: extra rows of ours with these n_components")
    p.add_argument("--peer-max-iter", type=int, default=None,
                   help="cap metric-learn's LMNN alone at this many iterations in the "
                   "comparison (ours at its defaults)")
    p.add_argument("--max-iter", type=int, default=None, help="cap both LMNNs at this many "
                   "iterations in the comparison (metric-learn also min_iter=min(50, cap))")
    p.add_argument("--no-peer", action="store_true", help="skip metric-learn")
    p.add_argument("--sizes", default="500,1000,2000,5000,10000,20000,50000,100000",
                   help="training sizes of the d=64 scaling run")
    p.add_argument("--sizes-512", default="500,1000,2000,5000,10000,20000",
                   help="training sizes of the d=512 CNN-like scaling run ('' for none)")
    p.add_argument("--no-resnet", action="store_true",
                   help="skip the resnet18 features of digits (d=512) in the scaling run")
    p.add_argument("--peer-cap", type=float, default=120.0,
                   help="skip metric-learn when its projected fit CPU time exceeds this (s)")
    p.add_argument("--scaling-max-iter", type=int, default=1000,
                   help="iteration cap of both LMNNs in the scaling run")
    p.add_argument("--splits", type=int, default=20, help="random splits for the NIPS table")
    args = p.parse_args(argv)
    from . import report

    parts = set(args.parts.split(","))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    sizes_512 = [int(s) for s in args.sizes_512.split(",") if s]
    datasets, splits, scaling_iter = args.datasets, args.splits, args.scaling_max_iter
    resnet = not args.no_resnet
    if args.quick:
        datasets = [d for d in datasets if d in ("iris", "wine")] or ["iris"]
        sizes, sizes_512 = [s for s in sizes if s <= 1000], [200] if sizes_512 else []
        splits, scaling_iter, resnet = min(splits, 5), min(scaling_iter, 20), False
    if "compare" in parts:
        rows, table = compare(datasets, args.seed, not args.no_peer, args.max_iter,
                              args.peer_max_iter, args.n_components)
        cap = (f"both capped at max_iter={args.max_iter}" if args.max_iter else
               f"metric-learn capped at max_iter={args.peer_max_iter}, ours at its defaults"
               if args.peer_max_iter else "default caps")
        text = (f"### LMNN vs metric-learn 0.7.0 (3-NN error %, mean fit time per fold s; {cap})"
                f"\n\n{report.markdown_table(table)}\n")
        report.write(args.out, "lmnn_compare", rows, text, table=table)
        print(text)
    if "scaling" in parts:
        plan = {"digits64": sizes, "cnn512": sizes_512, **({"resnet512": [1203]} if resnet else {})}
        plan = {k: v for k, v in plan.items() if v}
        rows = scaling(plan, args.seed, peer_cap_s=args.peer_cap, max_iter=scaling_iter,
                       with_peer=not args.no_peer)
        grows, gline = gpu_rows({k: v for k, v in plan.items() if k != "resnet512"})
        text = (f"### LMNN scaling (one child process per point; max_iter={scaling_iter}; "
                f"metric-learn skipped once its projected fit CPU time > {args.peer_cap:.0f} s)\n\n"
                f"{scaling_table(rows)}\n\n{gline}\n")
        if grows:
            text += "\n" + report.markdown_table(grows) + "\n"
        report.write(args.out, "lmnn_scaling", rows + grows, text)
        from .plots import lmnn_scaling_figure

        full = max(sizes, default=0) >= 50_000  # only a full run replaces the README figure
        for path in [args.out] + ([report.FIGURES] if full else []):
            lmnn_scaling_figure(rows, path / "lmnn_scaling.png", cap_s=args.peer_cap)
        print(text)
    if "nips" in parts:
        rows = nips_table(splits)
        text = "### NIPS 2005 Table 1 (3-NN test error %, random 70/30 splits)\n\n"
        report.write(args.out, "lmnn_nips2005", rows, text + report.markdown_table(rows))
        print(text + report.markdown_table(rows))
    if "knn_metric" in parts:
        rows = knn_metric_timing(args.seed, args.quick)
        text = ("### 3-NN predict time under the learned metric, vs KNeighborsClassifier on "
                "transform(X) (same run; slow paths timed on a subset of queries, scaled)\n\n"
                + report.markdown_table(rows) + "\n")
        report.write(args.out, "lmnn_knn_metric", rows, text)
        print(text)
    print(f"\nwrote {args.out}/lmnn_*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
