"""Deep metric learning on the digits: DeepMetricLearner losses vs SiameseNet vs raw pixels.

Self-contained; run from the repository root::

    python benchmarks/bench_deep.py --quick          # a minute on 2 CPU cores
    python benchmarks/bench_deep.py --out deep.json  # the full table, saved
    python benchmarks/bench_deep.py --engine-overhead
    python benchmarks/bench_deep.py --retrieval      # numpy vs faiss vs PML, n=20,000
    python benchmarks/bench_deep.py --transfer       # held-out-class ablation of the defaults

Two protocols on scikit-learn's 8x8 digits (vectors in [0, 1], a small MLP
encoder for every learner):

* held-out samples: a stratified 70/30 split of the ten digits; the 3-NN
  error on the test embedding (raw: on the pixels);
* held-out classes: train on digits 0-6, then 3-way one-shot accuracy on the
  never-seen digits 7-9 (:func:`skmetric.evaluation.one_shot_accuracy`,
  chance 1/3).

The arguments are parsed before torch is imported, so ``--help`` is instant.

Figures of ``python benchmarks/bench_deep.py`` (seed 0, 30 epochs, 1 thread,
a 2-core machine shared with other jobs; 32-d embeddings, MLP 64-128-32):

=========================  ============================  ==============================
method                     held-out samples: 3-NN error  held-out classes: 3-way 1-shot
=========================  ============================  ==============================
raw pixels                 1.48%                         76.0%
DML multi-similarity       1.85%                         59.4%
DML triplet + semi-hard    1.30%                         53.3%
DML ProxyAnchor            1.48%                         57.9%
SiameseNet contrastive     1.11%                         58.1%
=========================  ============================  ==============================

On held-out samples every learner is within a few test digits of raw pixels
(541 test digits: one digit is 0.18%); on the never-seen digits 7-9 the
embeddings learned on 0-6 transferred worse than the pixels with the old
defaults (the table above: random MLP init, lr 1e-3). ``--transfer`` runs the
ablation behind the new defaults over five class splits and several seeds:
the held-out one-shot accuracy falls within 1-3 epochs at lr 1e-3 while the
loss on the seen classes still improves, so (1) the encoder starts at the
PCA projection of the input (raw-pixel quality, ``encoder_init='pca'``),
(2) early stopping validates on whole held-out classes with a one-shot score
and lets the untrained weights compete as epoch 0 (``validation='auto'``),
(3) lr is 1e-4, and (4) SiameseNet uses the binomial deviance loss. With 6-7
training classes one held-out pair of classes did not predict transfer to
other new ones (on the 7-9 split the held-out training classes kept improving
while 7-9 got worse), so (5) 'auto' rotates the held-out classes over up to 3
groups to choose the number of epochs and then trains on every class
(``validation='class_folds'``; one split is kept from 25 classes up). The
README's "Defaults that transfer" table gives the figures.
"""

import argparse
import json
import os
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer epochs and episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    p.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (default 1)")
    p.add_argument("--engine-overhead", action="store_true",
                   help="time the training engine against a plain torch loop instead")
    p.add_argument("--retrieval", action="store_true",
                   help="time the retrieval metrics (n x 64 embeddings): numpy vs faiss")
    p.add_argument("--n", type=int, default=20000, help="samples for --retrieval (default 20,000)")
    p.add_argument("--transfer", action="store_true",
                   help="the held-out-class ablation of the defaults (train on some digit classes, "
                        "one-shot on the others, over several class splits and seeds)")
    p.add_argument("--seeds", type=int, default=3, help="random_states for --transfer (default 3)")
    p.add_argument("--configs", default=None,
                   help="--transfer: comma-separated names of the ablation rows to run (default all)")
    p.add_argument("--with-pml", action="store_true",
                   help="--retrieval also times PML's AccuracyCalculator (about 1.8 GB at n=4,000, "
                        "growing with n squared: keep n small)")
    return p.parse_args(argv)


# ------------------------------------------------------------- the learners
def learners(quick, seed):
    from skmetric import DeepMetricLearner, SiameseNet

    epochs = 5 if quick else 30
    common = dict(embedding_dim=32, hidden_layer_sizes=(128,), random_state=seed, device="cpu")
    dml = dict(max_epochs=epochs, batch_size=64, m_per_class=8, **common)
    return {
        "raw pixels": None,
        "DML multi-similarity": DeepMetricLearner(loss="multi_similarity", miner="multi_similarity", **dml),
        "DML triplet + semi-hard": DeepMetricLearner(loss="triplet", miner="semihard", **dml),
        "DML ProxyAnchor": DeepMetricLearner(loss="proxy_anchor", lr=1e-2, **dml),
        "SiameseNet contrastive": SiameseNet(
            loss="contrastive", max_epochs=epochs, n_pairs=4000, batch_size=64, **common
        ),
    }


def run_table(quick, seed):
    import numpy as np
    from sklearn.base import clone
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    from skmetric.evaluation import one_shot_accuracy

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    seen = y <= 6
    episodes = dict(n_way=3, n_episodes=300 if quick else 2000, random_state=seed)
    rows = []
    for name, model in learners(quick, seed).items():
        t0 = time.perf_counter()
        if model is None:
            Ztr, Zte = Xtr, Xte
            one_shot = one_shot_accuracy(None, X[~seen], y[~seen], **episodes)
        else:
            fitted = clone(model).fit(Xtr, ytr)
            Ztr, Zte = fitted.transform(Xtr), fitted.transform(Xte)
            held_out = clone(model).fit(X[seen], y[seen])
            one_shot = one_shot_accuracy(held_out, X[~seen], y[~seen], method="transform", **episodes)
        err = 1.0 - KNeighborsClassifier(3).fit(Ztr, ytr).score(Zte, yte)
        rows.append({"method": name, "3nn_error": float(err), "one_shot_3way": float(one_shot),
                     "seconds": time.perf_counter() - t0})
        print(f"  {name}: done in {rows[-1]['seconds']:.1f} s", flush=True)
    return rows


def print_table(rows):
    print("\n| method | held-out samples: 3-NN error | held-out classes 7-9: 3-way one-shot | fit time (s) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {100 * r['3nn_error']:.2f}% | {100 * r['one_shot_3way']:.1f}% | {r['seconds']:.1f} |")


# ---------------------------------------------------------- engine overhead
def engine_overhead(seed, repeats=9):
    """Median seconds of a plain torch loop and of the engine, same model and batches."""
    import numpy as np
    import torch
    from sklearn.base import BaseEstimator

    from skmetric.deep._engine import TrainingMixin

    def mlp():
        return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))

    def cnn():
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 2 * 2, 10),
        )

    rng = np.random.RandomState(seed)
    cases = {
        "MLP 64-128-10, 2000 vectors": (mlp, rng.rand(2000, 64).astype(np.float32), 20),
        "CNN 2 conv, 2000 8x8 images": (cnn, rng.rand(2000, 1, 8, 8).astype(np.float32), 5),
    }
    y_all = rng.randint(10, size=2000)

    def plain(build, X, epochs):
        torch.manual_seed(seed)
        net = build()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(seed)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y_all)
        for _ in range(epochs):
            net.train()
            order = torch.randperm(len(X), generator=gen)
            for idx in torch.split(order, 64):
                loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    class Engine(TrainingMixin, BaseEstimator):
        def __init__(self, build=None, max_epochs=1, batch_size=64, lr=1e-3, optimizer="adam",
                     weight_decay=0.0, callbacks=None, device="cpu", random_state=None, verbose=0):
            self._store_init_params(locals())

        def _initialize_module(self):
            self.module_ = self.build()

        def iter_batches(self, data, training):
            X, yy = data
            for idx in torch.split(torch.from_numpy(self._shuffled(len(X), training)), self.batch_size):
                yield X[idx], yy[idx]

        def get_loss(self, batch, training=False):
            return torch.nn.functional.cross_entropy(self.module_(batch[0]), batch[1])

    try:  # skorch is not a dependency: timed only when it is importable
        from skorch import NeuralNet
    except ImportError:
        NeuralNet = None

    def skorch_fit(build, X, epochs):
        torch.manual_seed(seed)
        NeuralNet(
            build, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
            max_epochs=epochs, batch_size=64, train_split=None, iterator_train__shuffle=True,
            verbose=0, device="cpu",
        ).fit(X, y_all.astype(np.int64))

    out = {}
    for name, (build, X, epochs) in cases.items():
        data = (torch.from_numpy(X), torch.from_numpy(y_all))
        runs = {
            "plain": lambda: plain(build, X, epochs),
            "engine": lambda: Engine(build, max_epochs=epochs)._fit_engine(data, None, seed),
        }
        if NeuralNet is not None:
            runs["skorch"] = lambda: skorch_fit(build, X, epochs)
        times = {k: [] for k in runs}
        for _ in range(repeats):  # interleaved, so that load changes hit every variant alike
            for key, run in runs.items():
                t0 = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        line = f"{name}, {epochs} epochs, median of {repeats}: plain loop {med['plain']:.3f} s"
        for key in runs:
            if key != "plain":
                med[f"{key}_overhead_percent"] = 100 * (med[key] / med["plain"] - 1)
                line += f", {key} {med[key]:.3f} s ({med[key + '_overhead_percent']:+.1f}%)"
        med["epochs"] = epochs
        out[name] = med
        print(line)
    return out


# ------------------------------------------------------------- retrieval
def retrieval_timing(seed, n=20000, d=64, n_classes=100, with_pml=False):
    import numpy as np

    from skmetric import evaluation as ev

    rng = np.random.RandomState(seed)
    y = rng.randint(n_classes, size=n)
    X = rng.normal(size=(n_classes, d))[y] * 0.5 + rng.normal(size=(n, d))
    out = {}
    for backend in ("numpy", "faiss"):
        t0 = time.perf_counter()
        rep = ev.retrieval_report(X, y, ks=(1, 10), backend=backend)
        out[backend] = {"seconds": time.perf_counter() - t0, "mAP@R": rep["mAP@R"], "precision@1": rep["precision@1"]}
    try:
        if not with_pml:
            raise ImportError
        from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

        calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"), device=None)
        t0 = time.perf_counter()
        rep = calc.get_accuracy(X.astype(np.float32), y, ref_includes_query=True)
        out["PML AccuracyCalculator"] = {"seconds": time.perf_counter() - t0,
                                         "mAP@R": rep["mean_average_precision_at_r"],
                                         "precision@1": rep["precision_at_1"]}
    except ImportError:
        pass
    print(f"\nretrieval at n={n}, d={d}, {n_classes} classes (leave-one-out precision@1, mAP@R):")
    for k, v in out.items():
        print(f"  {k}: {v['seconds']:.1f} s  precision@1={v['precision@1']:.4f}  mAP@R={v['mAP@R']:.4f}")
    return out


# ------------------------------------------------------ transfer ablation
# Held-out digit classes of --transfer: each split trains on the other digits
# (0-5, 0-6, ...) and scores N-way one-shot (N = min(4, held-out classes)) on
# fixed episodes of the held-out ones, the same episodes for every model and
# for the raw pixels.
TRANSFER_SPLITS = ((6, 7, 8, 9), (7, 8, 9), (0, 1, 2), (3, 4, 5), (1, 4, 7))
# Parameters restoring the defaults before the transfer fix, one change at a time.
OLD_SIAMESE = dict(encoder_init="random", loss="koch", lr=1e-3, validation="stratified",
                   validation_fraction=0.1)
OLD_DML = dict(encoder_init="random", lr=1e-3, validation=None)
# The class-disjoint early stopping of the intermediate rows: one held-out split (before
# 'auto' rotated the held-out classes over groups when they are few).
ONE_SPLIT = dict(validation="class_disjoint")


def transfer_configs():
    """Ablation rows: (name, class, params); the last row of each class is its default."""
    from skmetric import DeepMetricLearner, SiameseNet

    return [
        ("SiameseNet, old defaults (random MLP init, Koch loss, lr 1e-3, stratified validation)",
         SiameseNet, OLD_SIAMESE),
        ("  + PCA-skip init", SiameseNet, dict(OLD_SIAMESE, encoder_init="pca")),
        ("  + class-disjoint early stopping (initial weights = epoch 0)", SiameseNet,
         dict(OLD_SIAMESE, encoder_init="pca", validation="class_disjoint", validation_fraction=0.2)),
        ("  + lr 1e-4", SiameseNet, dict(ONE_SPLIT, loss="koch")),
        ("  + contrastive loss instead", SiameseNet, dict(ONE_SPLIT, loss="contrastive")),
        ("  + binomial deviance loss, one class-disjoint split", SiameseNet,
         ONE_SPLIT),
        ("SiameseNet defaults (+ class folds choose the epochs)", SiameseNet, {}),
        ("  defaults without class-disjoint early stopping", SiameseNet, dict(validation=None)),
        ("  defaults with random init", SiameseNet, dict(encoder_init="random")),
        ("DeepMetricLearner, old defaults (random MLP init, lr 1e-3, no validation)",
         DeepMetricLearner, OLD_DML),
        ("  + PCA-skip init", DeepMetricLearner, dict(OLD_DML, encoder_init="pca")),
        ("  + class-disjoint early stopping", DeepMetricLearner, dict(ONE_SPLIT, lr=1e-3)),
        ("  + lr 1e-4, one class-disjoint split", DeepMetricLearner,
         ONE_SPLIT),
        ("DeepMetricLearner defaults (+ class folds choose the epochs)", DeepMetricLearner, {}),
        ("  defaults without class-disjoint early stopping", DeepMetricLearner, dict(validation=None)),
    ]


def run_transfer(seeds, only=None, n_episodes=1000):
    """Rows (config, seed, split, accuracy, raw accuracy, best epoch, CPU s) of the ablation."""
    import numpy as np
    from sklearn.datasets import load_digits

    from skmetric.evaluation import one_shot_accuracy

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rows = []
    for name, cls, params in transfer_configs():
        if only and name.strip() not in only:
            continue
        for held in TRANSFER_SPLITS:
            test = np.isin(y, held)
            kw = dict(n_way=min(4, len(held)), n_episodes=n_episodes, random_state=0)
            raw = one_shot_accuracy(None, X[test], y[test], **kw)
            for seed in seeds:
                t0, w0 = time.process_time(), time.perf_counter()
                model = cls(random_state=seed, device="cpu", **params).fit(X[~test], y[~test])
                cpu, wall = time.process_time() - t0, time.perf_counter() - w0
                acc = one_shot_accuracy(model, X[test], y[test], **kw)
                rows.append({"config": name, "seed": seed, "held_out": list(held), "accuracy": acc,
                             "raw": raw, "best_epoch": int(model.best_epoch_), "cpu_s": cpu,
                             "wall_s": wall})
        mine = [r for r in rows if r["config"] == name]
        d = np.array([r["accuracy"] - r["raw"] for r in mine])
        print(f"  {name.strip()}: mean {100 * np.mean([r['accuracy'] for r in mine]):.1f}%, "
              f"vs raw {100 * d.mean():+.1f} (min {100 * d.min():+.1f})", flush=True)
    return rows


def print_transfer(rows):
    import numpy as np

    splits = list(dict.fromkeys(tuple(r["held_out"]) for r in rows))
    raw = {tuple(r["held_out"]): r["raw"] for r in rows}
    head = " | ".join(",".join(map(str, h)) for h in splits)
    print("\nHeld-out digit classes, N-way one-shot (N = min(4, held-out classes)), same episodes; "
          "per split the mean over seeds")
    print(f"| change | mean | minus raw: mean | minus raw: worst fit | {head} | CPU s per fit |")
    print("|---|---|---|---|" + "---|" * len(splits) + "---|")
    print("| raw pixels (x / 16) | " + f"{100 * np.mean(list(raw.values())):.1f}% | | | "
          + " | ".join(f"{100 * raw[h]:.1f}" for h in splits) + " | |")
    for name in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == name]
        d = np.array([r["accuracy"] - r["raw"] for r in mine])
        per = [np.mean([r["accuracy"] for r in mine if tuple(r["held_out"]) == h]) for h in splits]
        print(f"| {name} | {100 * np.mean(per):.1f}% | {100 * d.mean():+.1f} | {100 * d.min():+.1f} | "
              + " | ".join(f"{100 * v:.1f}" for v in per)
              + f" | {np.mean([r['cpu_s'] for r in mine]):.1f} |")


def main(argv=None):
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    import torch  # after argparse: --help stays instant

    torch.set_num_threads(args.threads)
    if args.engine_overhead:
        result = {"engine_overhead": engine_overhead(args.seed)}
    elif args.transfer:
        only = None if args.configs is None else {c.strip() for c in args.configs.split(",")}
        rows = run_transfer(tuple(range(args.seed, args.seed + args.seeds)), only)
        print_transfer(rows)
        result = {"transfer": rows}
    elif args.retrieval:
        result = {"retrieval": retrieval_timing(args.seed, n=args.n, with_pml=args.with_pml)}
    else:
        print(f"digits, seed {args.seed}{', quick' if args.quick else ''}:")
        rows = run_table(args.quick, args.seed)
        print_table(rows)
        result = {"table": rows, "quick": args.quick, "seed": args.seed}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
