"""Retrieval example, the fashion-recommendation scenario: "show me items like this".

A catalogue of labelled images is embedded by a frozen CNN; a metric is
learned on the catalogue's CNN features by any learner of the registry
(``--learner``: lmnn (default), nca, itml, mmc, ..., siamese, deep-multisim,
deep-triplet, deep-proxy-anchor); recall@k / precision@k / mAP@R over all held-out queries are
reported for the learned metric and for the Euclidean distance on the same
features. The PNG grid shows the queries where the two rankings differ most
(average precision at R per query, one query per class): for each, a row per
space with the catalogue items at ranks spread from 1 to R (R: the query's
number of same-class items; mAP@R rewards a ranking whose first R items are
all of the query's class), framed green when of the query's class, red when
not.

Runs on scikit-learn's digits by default (CNN pretrained on digits 0-4,
catalogue and queries from the unseen digits 5-9); on Fashion-MNIST when the
data are available (``--dataset fashion_mnist``; ImageNet ResNet-18 features,
so the torchvision weights must be cached or downloadable)::

    python -m benchmarks.retrieval
    python -m benchmarks.retrieval --learner deep-multisim
    python -m benchmarks.retrieval --dataset fashion_mnist --download --learner siamese
"""

import sys

from .report import RESULTS, parser

# --learner option -> registry method (every skmetric learner with an embedding; written
# out so that --help imports nothing: tests/test_bench_unseen.py checks it against the registry).
CLASSIC = ("NCA", "RCA", "MCML", "ITML", "MMC", "LMNN", "LFDA", "SDML", "LSML", "SCML")
LEARNERS = {**{name.lower(): name for name in CLASSIC}, "siamese": "SiameseNet",
            "deep-multisim": "DeepMetricLearner (multi_similarity)",
            "deep-triplet": "DeepMetricLearner (triplet)",
            "deep-proxy-anchor": "DeepMetricLearner (proxy_anchor)"}


def load_catalogue(dataset="digits", quick=False, seed=0, data_home=None, download=False):
    """(images, labels, feature extractor) for the example."""
    import skmetric

    from . import data
    from .registry import DEVICE

    if dataset == "digits":
        images, y, backbone = data.digits_transfer(
            quick=quick, seed=seed, max_samples=300 if quick else None
        )
        cnn = skmetric.CNNFeatureExtractor(backbone=backbone, weights=None, device=DEVICE)
        return images, y, cnn
    if dataset == "fashion_mnist":
        n = 600 if quick else 3000
        images, y = data.load_downloadable(dataset, n, seed, data_home, download)
        extractor = skmetric.CNNFeatureExtractor(
            backbone="resnet18", weights="DEFAULT", input_size=64 if quick else None, device=DEVICE
        )
        return images, y, extractor
    raise ValueError(f"Unknown data set {dataset!r}; choose 'digits' or 'fashion_mnist'.")


def make_learner(learner, quick=False, seed=0, X=None, y=None):
    """The registry's method for option ``learner`` (:data:`LEARNERS`), with the main
    benchmark's settings; ``X, y``: the training data its settings may depend on."""
    import numpy as np

    from .registry import Context, get_method, settings

    if learner not in LEARNERS:
        raise ValueError(f"Unknown learner {learner!r}; choose from {tuple(LEARNERS)}.")
    size = {} if y is None else dict(n_classes=len(np.unique(y)), n_train=len(y),
                                     n_features=np.shape(X)[1])
    return get_method(LEARNERS[learner]).build(Context(seed, quick, settings=settings(quick),
                                                       **size))


def ranked(Zc, Zq):
    """Catalogue indices of every query's neighbours, nearest first."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=len(Zc)).fit(Zc).kneighbors(Zq, return_distance=False)


def retrieval_example(dataset="digits", learner="lmnn", k=5, n_queries=6, out=RESULTS, quick=False,
                      seed=0, data_home=None, download=False):
    """Run the example; returns a dict with the metrics and the PNG path.

    The catalogue is 70 % of the images (stratified), the queries the rest;
    the metric is learned on the catalogue only.
    """
    from pathlib import Path

    import numpy as np
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from skmetric.evaluation import _retrieval_stats, retrieval_report

    from . import plots, report
    from .runner import timed_fit

    images, y, extractor = load_catalogue(dataset, quick, seed, data_home, download)
    idx_cat, idx_q = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y,
                                      random_state=seed)
    extractor.fit(images[idx_cat])
    scaler = StandardScaler().fit(extractor.transform(images[idx_cat]))
    F_cat = scaler.transform(extractor.transform(images[idx_cat]))
    F_q = scaler.transform(extractor.transform(images[idx_q]))
    y_cat, y_q = y[idx_cat], y[idx_q]
    model = make_learner(learner, quick, seed, F_cat, y_cat)
    timed_fit(model, F_cat, y_cat)  # warnings counted, not printed
    spaces = {"Euclidean": (F_cat, F_q),
              LEARNERS[learner]: (model.transform(F_cat), model.transform(F_q))}

    metrics, ap_r, order = {}, {}, {}
    for name, (Zc, Zq) in spaces.items():
        rep = retrieval_report(Zq, y_q, ks=tuple(sorted({1, k})), X_gallery=Zc, y_gallery=y_cat)
        metrics[name] = {key: float(v) for key, v in rep.items() if key != "cmc"}
        ap_r[name] = _retrieval_stats(Zq, y_q, Zc, y_cat, (1,), "euclidean", True)["ap_r"]
        order[name] = ranked(Zc, Zq)
    # The queries where the two rankings differ most, one per class.
    names = list(spaces)
    gap = np.abs(ap_r[names[1]] - ap_r[names[0]])
    shown = []
    for q in np.argsort(-gap, kind="stable"):
        if len(shown) < n_queries and y_q[q] not in y_q[shown]:
            shown.append(q)
    R = int(min((y_cat == y_q[q]).sum() for q in shown))
    ranks = np.unique(np.round(np.linspace(1, R, k)).astype(int))
    rows_imgs, rows_ok, titles, queries = [], [], [], []
    for q in shown:
        for name in names:
            nb = order[name][q, ranks - 1]
            queries.append(images[idx_q][q])
            rows_imgs.append(images[idx_cat][nb])
            rows_ok.append(y_cat[nb] == y_q[q])
            titles.append(f"{name}\nAP@R {ap_r[name][q]:.2f}")
    title = (f"{dataset}: catalogue items at ranks 1..R={R} for the queries where the rankings "
             "differ most\n" + "; ".join(f"{n}: precision@{k} {metrics[n][f'precision@{k}']:.3f}, "
                                         f"mAP@R {metrics[n]['mAP@R']:.3f}" for n in names))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png = plots.image_grid(np.array(queries), np.array(rows_imgs), np.array(rows_ok),
                           out / f"retrieval_{dataset}_{learner}.png", row_titles=titles,
                           title=title,
                           col_titles=[f"rank {r}" for r in ranks])
    result = {"dataset": dataset, "learner": learner, "k": k, "n_catalogue": int(len(idx_cat)),
              "n_queries": int(len(idx_q)), "metrics": metrics, "png": str(png),
              "shown": [{"query": int(q), "class": int(y_q[q]),
                         **{f"AP@R {n}": float(ap_r[n][q]) for n in names}} for q in shown]}
    report.write(out, f"retrieval_{dataset}_{learner}", result["shown"], **result)
    return result


def main(argv=None):
    p = parser("python -m benchmarks.retrieval", __doc__)
    p.add_argument("--dataset", default="digits", choices=("digits", "fashion_mnist"))
    p.add_argument("--learner", default="lmnn", choices=tuple(LEARNERS),
                   help="the metric learner (a registry method; default lmnn)")
    p.add_argument("-k", type=int, default=5, help="precision@k, recall@k; columns of the grid")
    p.add_argument("--n-queries", type=int, default=6)
    p.add_argument("--data-home", default=None)
    p.add_argument("--download", action="store_true")
    args = p.parse_args(argv)
    from .data import DatasetUnavailable
    from .report import markdown_table

    try:
        res = retrieval_example(args.dataset, args.learner, args.k, args.n_queries, args.out,
                                args.quick, args.seed, args.data_home, args.download)
    except DatasetUnavailable as exc:
        print(f"error: {exc}\nThe example runs on digits without any download: --dataset digits",
              file=sys.stderr)
        return 2
    rows = [{"metric": key, **{name: round(v[key], 4) for name, v in res["metrics"].items()}}
            for key in next(iter(res["metrics"].values()))]
    print(markdown_table(rows))
    print(f"\n{res['n_queries']} queries against a catalogue of {res['n_catalogue']}; "
          f"grid: {res['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
