"""LMNN on a device, timed: one JSON line per device (target: 1,000,000 x 64 on CUDA < 10 min).

Run ``python -m benchmarks.gpu_lmnn --n 1000000 --d 64 --device cuda``
(``--device`` takes several values, 'none' being numpy on the host, so that
a run can time numpy and torch on the same data side by side). The data are
``make_classification`` (``--n-classes`` classes, 12 informative features,
standardised), ``--n`` training points and ``--n-test`` held-out points. For
each device it first checks that the device's LMNN objective agrees with
numpy on a small problem (``agreement_rel``: largest relative difference of
loss and gradient), then fits ``LMNN(device=...)`` and prints one JSON line::

    {"bench": "gpu_lmnn", "device": "cuda", "n": ..., "d": ..., "wall_s": ...,
     "cpu_s": ..., "n_iter": ..., "converged": ..., "loss": ...,
     "knn_error": ..., "knn_error_euclidean": ..., "peak_gpu_gib": ..., ...}

``knn_error`` is the held-out 3-NN error in the learned space
(``knn_error_euclidean`` before learning). A device that cannot run here
(torch missing, no CUDA GPU) gets a line with ``"skipped"`` saying why, and
the exit status stays 0.
"""

import argparse
import json
import sys
import time


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="training points (default 1000000)")
    p.add_argument("--d", type=int, default=64, help="features (default 64)")
    p.add_argument("--device", nargs="+", default=["cuda"],
                   help="devices to time: cuda, cuda:N, cpu, auto, none (= numpy) (default cuda)")
    p.add_argument("--n-components", type=int, default=None, help="rows of L (default d)")
    p.add_argument("--n-classes", type=int, default=10, help="classes (default 10)")
    p.add_argument("--max-iter", type=int, default=1000, help="LMNN max_iter (default 1000)")
    p.add_argument("--max-impostors", type=int, default=1_000_000,
                   help="LMNN max_impostors (default 1000000)")
    p.add_argument("--n-test", type=int, default=2000, help="held-out points (default 2000)")
    p.add_argument("--verbose", type=int, default=0, help="LMNN verbose (default 0)")
    return p.parse_args(argv)


def lmnn_agreement(device):
    """Largest relative difference between the LMNN objective on ``device`` and numpy.

    Loss and gradient in ``L`` at a random map, all differently labelled
    pairs as impostors (500 points, 10 features, 4 classes).
    """
    import numpy as np

    from skmetric._lmnn_solver import LMNNData, evaluate_map, lmnn_ops, select_targets

    rng = np.random.RandomState(0)
    X, y = rng.randn(500, 10), rng.randint(0, 4, 500)
    L = 0.5 * rng.randn(5, 10)
    T = select_targets(X @ L.T, y, 3)
    ii, ll = np.nonzero(y[:, None] != y[None, :])
    a = evaluate_map(L, LMNNData(X, T, ii, ll))
    b = evaluate_map(L, lmnn_ops(device).data(X, T, ii, ll))
    return max(abs(a.loss - b.loss) / abs(a.loss),
               float(np.abs(a.grad - b.grad).max() / np.abs(a.grad).max()))


def _why_not(device):
    """Why ``device`` cannot run here, or None."""
    if device is None:
        return None
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install 'skmetric[deep]')"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return "no CUDA GPU on this machine (torch.cuda.is_available() is False)"
    return None


def _data(args):
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        n_samples=args.n + args.n_test, n_features=args.d, n_informative=min(12, args.d),
        n_redundant=min(12, max(0, args.d - 12)), n_classes=args.n_classes,
        n_clusters_per_class=2, class_sep=1.5, random_state=0,
    )
    X = StandardScaler().fit_transform(X).astype(np.float64)
    return X[:args.n], y[:args.n], X[args.n:], y[args.n:]


def _knn_error(model, X, y, Xt, yt):
    """Held-out 3-NN error in ``model``'s space (None: Euclidean); None without test points."""
    from sklearn.neighbors import KNeighborsClassifier

    if len(yt) == 0:
        return None
    if model is not None:
        X, Xt = model.transform(X), model.transform(Xt)
    return float(1.0 - KNeighborsClassifier(3).fit(X, y).score(Xt, yt))


def run_one(device, args, data):
    """Fit LMNN on ``device`` (None: numpy); the JSON row as a dict."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from skmetric import LMNN

    row = {"bench": "gpu_lmnn", "device": device, "n": args.n, "d": args.d,
           "n_components": args.n_components or args.d, "n_classes": args.n_classes}
    why = _why_not(device)
    if why is not None:
        row["skipped"] = why
        return row
    X, y, Xt, yt = data
    torch = None
    if device is not None:
        import torch

        row["torch"] = torch.__version__
        row["agreement_rel"] = lmnn_agreement(device)
        if str(device).startswith("cuda"):
            row["device_name"] = torch.cuda.get_device_name(device)
            torch.cuda.reset_peak_memory_stats(device)
    model = LMNN(n_components=args.n_components, max_iter=args.max_iter,
                 max_impostors=args.max_impostors, device=device, verbose=args.verbose,
                 random_state=0)
    on_gpu = torch is not None and str(device).startswith("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if on_gpu:
            torch.cuda.synchronize(device)
        t, c = time.perf_counter(), time.process_time()
        model.fit(X, y)
        if on_gpu:
            torch.cuda.synchronize(device)
        row["wall_s"] = round(time.perf_counter() - t, 3)
        row["cpu_s"] = round(time.process_time() - c, 3)
    row.update(n_iter=int(model.n_iter_), converged=bool(model.converged_),
               loss=float(model.loss_))
    if on_gpu:
        row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    row["knn_error"] = _knn_error(model, X, y, Xt, yt)
    row["knn_error_euclidean"] = _knn_error(None, X, y, Xt, yt)
    return row


def main(argv=None):
    args = _parse(argv)
    devices = [None if d.lower() == "none" else d for d in args.device]
    data = None
    for device in devices:
        if data is None and _why_not(device) is None:
            data = _data(args)
        print(json.dumps(run_one(device, args, data)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
