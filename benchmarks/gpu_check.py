"""GPU check for NCA and LMNN: n = 100,000 x 64 (NCA), 1,000,000 x 64 (LMNN) on CUDA, timed.

Run ``python -m benchmarks.gpu_check`` (``--n``, ``--d``, ``--n-components``,
``--max-iter``, ``--k``: the ``n_neighbors_softmax`` values to time, 'None'
being the exact objective). It first checks on a small problem that the CUDA
objective agrees with numpy (relative 1e-6 on loss and gradient), then fits
``NCA(device='cuda')`` on standardised ``make_classification`` data (10
classes, 12 informative features) once per ``--k`` and prints the wall time,
iterations, expected training accuracy (``-loss_ / n``) and the truncation
bound. Then, unless ``--lmnn-n 0``, it checks the CUDA LMNN objective against
numpy the same way and fits ``LMNN(device='cuda')`` on ``--lmnn-n`` points
(default 1,000,000, ``--d`` features; :mod:`benchmarks.gpu_lmnn`, whose JSON
line it prints; target: under 10 minutes on an H200). On a machine without
torch or without a CUDA GPU it prints why and exits with status 0.
"""

import argparse
import json
import sys
import time


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="training points (default 100000)")
    p.add_argument("--d", type=int, default=64, help="features (default 64)")
    p.add_argument("--n-components", type=int, default=64, help="rows of L (default 64)")
    p.add_argument("--max-iter", type=int, default=100, help="L-BFGS-B iterations (default 100)")
    p.add_argument(
        "--k", nargs="+", default=["None", "50"],
        help="n_neighbors_softmax values to time; 'None' = exact (default: None 50)",
    )
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--lmnn-n", type=int, default=1_000_000,
                   help="LMNN training points, 0 to skip LMNN (default 1000000)")
    p.add_argument("--lmnn-max-iter", type=int, default=1000, help="LMNN max_iter (default 1000)")
    return p.parse_args(argv)


def _agreement(device):
    """Largest relative difference between the CUDA and numpy objectives on a small problem."""
    import numpy as np

    from skmetric._backend import get_backend
    from skmetric._nca_objective import nca_loss_grad

    rng = np.random.RandomState(0)
    X, y = rng.randn(500, 10), rng.randint(0, 4, 500)
    L = 0.5 * rng.randn(5, 10).ravel()
    a = nca_loss_grad(L, X, y, 5)
    b = nca_loss_grad(L, X, y, 5, backend=get_backend(device))
    return max(abs(a[0] - b[0]) / abs(a[0]), np.abs(a[1] - b[1]).max() / np.abs(a[1]).max())


def main(argv=None):
    args = _parse(argv)
    try:
        import torch
    except ImportError:
        print("gpu_check: torch is not installed (pip install 'skmetric[deep]'); nothing to check.")
        return 0
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False); "
              "nothing to check.")
        return 0

    import warnings

    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import StandardScaler

    from skmetric import NCA

    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"gpu_check: {torch.cuda.get_device_name(args.device)}, torch {torch.__version__}")
    rel = _agreement(args.device)
    print(f"gpu_check: CUDA vs numpy objective, max relative difference {rel:.2e} "
          f"({'ok' if rel < 1e-6 else 'MISMATCH'})")
    X, y = make_classification(
        n_samples=args.n, n_features=args.d, n_informative=min(12, args.d),
        n_redundant=min(12, max(0, args.d - 12)), n_classes=10, n_clusters_per_class=2,
        class_sep=1.5, random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    for k in args.k:
        K = None if k == "None" else int(k)
        nca = NCA(n_components=args.n_components, n_neighbors_softmax=K, max_iter=args.max_iter,
                  device=args.device, random_state=0)
        torch.cuda.synchronize()
        t = time.perf_counter()
        nca.fit(X, y)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t
        print(f"gpu_check: NCA n={args.n} d={args.d} n_components={args.n_components} "
              f"n_neighbors_softmax={K}: {wall:.1f} s, {nca.n_iter_} iterations, "
              f"expected training accuracy {-nca.loss_ / args.n:.4f}, "
              f"truncation bound {nca.truncation_bound_:.2e}, "
              f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if args.lmnn_n > 0:
        rel = max(rel, _lmnn_row(args))
    return 0 if rel < 1e-6 else 1


def _lmnn_row(args):
    """Agreement and timed fit of LMNN on the device; returns the agreement."""
    from benchmarks import gpu_lmnn

    lm = gpu_lmnn._parse(["--n", str(args.lmnn_n), "--d", str(args.d), "--device", args.device,
                          "--max-iter", str(args.lmnn_max_iter)])
    rel = gpu_lmnn.lmnn_agreement(args.device)
    print(f"gpu_check: CUDA vs numpy LMNN objective, max relative difference {rel:.2e} "
          f"({'ok' if rel < 1e-6 else 'MISMATCH'})", flush=True)
    row = gpu_lmnn.run_one(args.device, lm, gpu_lmnn._data(lm))
    print(f"gpu_check: LMNN n={lm.n} d={lm.d}: {row.get('wall_s')} s, {row.get('n_iter')} "
          f"iterations, converged {row.get('converged')}, held-out 3-NN error "
          f"{row.get('knn_error')} (Euclidean {row.get('knn_error_euclidean')}), "
          f"peak GPU memory {row.get('peak_gpu_gib')} GiB")
    print(json.dumps(row), flush=True)
    return rel


if __name__ == "__main__":
    sys.exit(main())
