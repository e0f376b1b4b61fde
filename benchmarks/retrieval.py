"""Retrieval example, the fashion-recommendation scenario: "show me items like this".

A catalogue of labelled images is embedded by a frozen CNN; a metric is
learned on the catalogue (LMNN on the CNN features, or a SiameseNet on them);
for each query image the k nearest catalogue items under the learned metric
and under the Euclidean distance on the same features are shown side by side
in a PNG grid (green frame: same class as the query, red: not), and
recall@k / precision@k / mAP@R over all held-out queries are reported for
both.

Runs on scikit-learn's digits by default (CNN pretrained on digits 0-4,
catalogue and queries from the unseen digits 5-9); on Fashion-MNIST when the
data are available (``--dataset fashion_mnist``; ImageNet ResNet-18 features,
so the torchvision weights must be cached or downloadable)::

    python -m benchmarks.retrieval
    python -m benchmarks.retrieval --dataset fashion_mnist --download --learner siamese
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from . import plots, suite
from .harness import markdown_table

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
LEARNERS = ("lmnn", "siamese")


def load_catalogue(dataset="digits", quick=False, seed=0, data_home=None, download=False):
    """(images, labels, feature extractor) for the example."""
    import skmetric

    if dataset == "digits":
        images, y, backbone = suite.digits_transfer(
            quick=quick, seed=seed, max_samples=300 if quick else None
        )
        return (
            images,
            y,
            skmetric.CNNFeatureExtractor(backbone=backbone, weights=None, device=suite.DEVICE),
        )
    if dataset == "fashion_mnist":
        images, y = suite.load_downloadable(
            dataset, 600 if quick else 3000, seed, data_home, download
        )
        extractor = skmetric.CNNFeatureExtractor(
            backbone="resnet18",
            weights="DEFAULT",
            input_size=64 if quick else None,
            device=suite.DEVICE,
        )
        return images, y, extractor
    raise ValueError(f"Unknown data set {dataset!r}; choose 'digits' or 'fashion_mnist'.")


def make_learner(learner, quick=False, seed=0):
    import skmetric

    if learner == "lmnn":
        return skmetric.LMNN(max_iter=20 if quick else 100, random_state=seed)
    if learner == "siamese":
        return skmetric.SiameseNet(
            max_epochs=3 if quick else 20, random_state=seed, device=suite.DEVICE
        )
    raise ValueError(f"Unknown learner {learner!r}; choose from {LEARNERS}.")


def retrieval_example(
    dataset="digits",
    learner="lmnn",
    k=5,
    n_queries=6,
    out=DEFAULT_OUT,
    quick=False,
    seed=0,
    data_home=None,
    download=False,
):
    """Run the example; returns a dict with the metrics and the PNG path.

    The catalogue is 70 % of the images (stratified), the queries the rest;
    the metric is learned on the catalogue only.
    """
    from skmetric.evaluation import retrieval_report

    images, y, extractor = load_catalogue(dataset, quick, seed, data_home, download)
    idx_cat, idx_q = train_test_split(
        np.arange(len(y)), test_size=0.3, stratify=y, random_state=seed
    )
    extractor.fit(images[idx_cat])
    scaler = StandardScaler().fit(extractor.transform(images[idx_cat]))
    F_cat = scaler.transform(extractor.transform(images[idx_cat]))
    F_q = scaler.transform(extractor.transform(images[idx_q]))
    y_cat, y_q = y[idx_cat], y[idx_q]

    model = make_learner(learner, quick, seed).fit(F_cat, y_cat)
    spaces = {
        "Euclidean": (F_cat, F_q),
        f"{learner.upper() if learner == 'lmnn' else 'SiameseNet'}": (
            model.transform(F_cat),
            model.transform(F_q),
        ),
    }

    ks = tuple(sorted({1, k}))
    metrics, neighbours = {}, {}
    rng = np.random.RandomState(seed)
    # One query per class (up to n_queries), so the grid shows different items.
    classes = rng.permutation(np.unique(y_q))[:n_queries]
    shown = np.array([rng.choice(np.flatnonzero(y_q == c)) for c in classes])
    for name, (Zc, Zq) in spaces.items():
        rep = retrieval_report(Zq, y_q, ks=ks, X_gallery=Zc, y_gallery=y_cat)
        metrics[name] = {key: float(v) for key, v in rep.items() if key != "cmc"}
        neighbours[name] = (
            NearestNeighbors(n_neighbors=k).fit(Zc).kneighbors(Zq[shown], return_distance=False)
        )

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(spaces)
    rows_imgs, rows_ok, titles, queries = [], [], [], []
    for i, q in enumerate(shown):
        for name in names:
            nb = neighbours[name][i]
            queries.append(images[idx_q][q])
            rows_imgs.append(images[idx_cat][nb])
            rows_ok.append(y_cat[nb] == y_q[q])
            titles.append(name)
    png = plots.image_grid(
        np.array(queries),
        np.array(rows_imgs),
        np.array(rows_ok),
        out / f"retrieval_{dataset}_{learner}.png",
        row_titles=titles,
        title=f"{dataset}: {k} most similar catalogue items per query\n"
        + "; ".join(
            f"{n}: precision@{k} {metrics[n][f'precision@{k}']:.3f}, "
            f"recall@{k} {metrics[n][f'recall@{k}']:.3f}"
            for n in names
        ),
    )
    result = {
        "dataset": dataset,
        "learner": learner,
        "k": k,
        "n_catalogue": int(len(idx_cat)),
        "n_queries": int(len(idx_q)),
        "metrics": metrics,
        "png": str(png),
    }
    with open(out / f"retrieval_{dataset}_{learner}.json", "w") as f:
        json.dump(result, f, indent=1)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.retrieval", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--dataset", default="digits", choices=("digits", "fashion_mnist"))
    p.add_argument("--learner", default="lmnn", choices=LEARNERS)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--n-queries", type=int, default=6)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--data-home", default=None)
    p.add_argument("--download", action="store_true")
    args = p.parse_args(argv)
    try:
        res = retrieval_example(
            args.dataset,
            args.learner,
            args.k,
            args.n_queries,
            args.out,
            args.quick,
            args.seed,
            args.data_home,
            args.download,
        )
    except suite.DatasetUnavailable as exc:
        print(
            f"error: {exc}\nThe example runs on digits without any download: --dataset digits",
            file=sys.stderr,
        )
        return 2
    rows = [
        {"metric": key, **{name: round(v[key], 4) for name, v in res["metrics"].items()}}
        for key in next(iter(res["metrics"].values()))
    ]
    print(markdown_table(rows, list(rows[0])))
    print(
        f"\n{res['n_queries']} queries against a catalogue of {res['n_catalogue']}; "
        f"grid: {res['png']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
