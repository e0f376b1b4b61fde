"""What the benchmark runs: the method registry and the data-set registry.

A *method* builds the estimator that sits between ``StandardScaler`` and the
k-NN classifier (or, for classifiers such as the energy-based LMNN, the final
estimator itself). Peers (metric-learn 0.7.0 through :mod:`benchmarks.peers`,
scikit-learn's NCA) are methods too, paired with the skmetric method they are
compared with, and run on the same folds in the same run.

A *data set* is feature vectors ``X`` and labels ``y``, plus, for image data,
the images and a frozen backbone for the "CNN features + ..." methods.
"""

import functools
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .harness import load_dataset
from .peers import metric_learn_estimator

N_NEIGHBORS = 3  # k of the k-NN classifier every method is scored with
N_SPLITS = 3  # stratified folds per data set
DEVICE = "auto"  # deep models use a GPU when there is one


class DatasetUnavailable(RuntimeError):
    """A data set that cannot be loaded here (no network, not downloaded)."""


class MissingMethod(ImportError):
    """A method whose skmetric class cannot be imported."""


# --------------------------------------------------------------------------- #
# Settings shared by a method and its peers, so the time ratio compares like
# with like (same iteration caps / number of constraints).
# --------------------------------------------------------------------------- #
def settings(quick):
    """Per-method settings for the full run and for ``--quick``."""
    return {
        "nca_max_iter": 10 if quick else 50,
        "lmnn_max_iter": 20 if quick else 100,
        "mmc_max_iter": 5 if quick else 10,
        "itml_max_iter": 10 if quick else 100,
        # metric-learn's default of 100 chunklets, fewer where the classes cannot host them
        "rca_chunks": 100,
        "mcml_max_iter": 10 if quick else 50,
        # MCML is O(n^2 d^2) per iteration: fit it on at most this many samples.
        "mcml_max_samples": 100 if quick else 600,
        "siamese_epochs": 2 if quick else 20,
        "cnn_pretrain_epochs": 2 if quick else 10,
    }


NOTES = [
    "Every method: StandardScaler -> method -> 3-NN on the same stratified 3 folds "
    "(errors are mean +- std over folds; fit time is the mean per fold, fit only).",
    "Time ratio = skmetric fit time / peer fit time on the same folds (< 1: skmetric is faster).",
    "A method and its peers share their caps: NCA max_iter={nca_max_iter}, LMNN max_iter="
    "{lmnn_max_iter} (metric-learn also min_iter=min(50, max_iter)), MMC max_iter={mmc_max_iter}, "
    "ITML max_iter={itml_max_iter} (passes over the constraints), "
    "RCA min({rca_chunks}, n_train // 4) chunklets of 2; MMC/ITML use the default number of "
    "constraints (metric-learn: 20 * n_classes^2). The caps keep "
    "the default run short; several learners stop on them.",
    "MMC: skmetric's MMC stops on its tolerance long before the cap (the same error with "
    "max_iter 10, 100 or 1000 on digits); metric-learn's default of 100 outer iterations took "
    "about 70 s per digits fold, hence its cap of {mmc_max_iter}.",
    "MCML is fitted on a stratified subsample of at most {mcml_max_samples} training points "
    "per fold "
    "(its cost is quadratic in n); it is scored on the full test fold.",
    "digits_cnn: a small CNN pretrained for {cnn_pretrain_epochs} epochs on digit classes 0-4 "
    "(benchmarks.transfer), frozen; every method runs on its 256-d features of the unseen "
    "classes 5-9 (the 'CNN features + ...' rows run the extractor inside the pipeline, on images).",
    "SiameseNet: at most {siamese_epochs} epochs (early stopping on a validation split).",
    "A peer that raises (e.g. metric-learn RCA/LFDA on the rank-deficient digits pixels) is "
    "listed as failed with the reason.",
]


def notes(quick):
    """The table notes, with this run's settings filled in."""
    return [n.format(**settings(quick)) for n in NOTES]


@dataclass(frozen=True)
class Method:
    """One row kind of the table.

    ``build(ctx)`` returns the estimator placed between the scaler and the
    k-NN classifier (None for plain Euclidean k-NN); when ``classifier`` is
    True it returns the final classifier instead. ``input`` is 'vectors' or
    'images' (image methods run only on data sets with images and a backbone).
    """

    name: str
    build: object
    family: str  # 'baseline', 'skmetric' or 'peer'
    peer_of: str = None  # for peers: the skmetric method they are compared with
    input: str = "vectors"
    classifier: bool = False
    requires: tuple = ()  # public skmetric names the method needs
    max_features: int = None  # not run above this many features (and why)
    max_features_reason: str = ""


@dataclass
class Context:
    """What a method's factory may depend on."""

    seed: int
    quick: bool
    n_classes: int
    n_features: int
    n_train: int = 0
    backbone: object = None
    input_size: object = None
    settings: dict = field(default_factory=dict)


def _sk(name):
    """A public skmetric class; raises :class:`MissingMethod` with the reason."""
    import skmetric

    try:
        return getattr(skmetric, name)
    except (AttributeError, ImportError) as exc:
        raise MissingMethod(f"skmetric.{name} is not importable: {exc}") from exc


class SubsampleFit(TransformerMixin, BaseEstimator):
    """Fit ``estimator`` on a stratified subsample of at most ``max_samples`` rows.

    For learners whose cost grows quadratically in n (MCML): the metric is
    learned on the subsample and applied to every row.
    """

    def __init__(self, estimator, max_samples=600, random_state=None):
        self.estimator = estimator
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y):
        idx = _stratified_subsample(np.asarray(y), self.max_samples, self.random_state)
        self.estimator_ = clone(self.estimator).fit(X[idx], np.asarray(y)[idx])
        return self

    def transform(self, X):
        return self.estimator_.transform(X)


def _subsampled(estimator, max_samples, seed):
    return SubsampleFit(estimator, max_samples=max_samples, random_state=seed)


# ----------------------------- vector methods ------------------------------ #
def _pca(ctx):
    return PCA(n_components=0.95, random_state=ctx.seed)


def _lda(ctx):
    return LinearDiscriminantAnalysis()


def _nca(ctx):
    return _sk("NCA")(max_iter=ctx.settings["nca_max_iter"], random_state=ctx.seed)


def _rca(ctx):
    return _sk("RCA")(num_chunks=_rca_chunks(ctx), chunk_size=2, random_state=ctx.seed)


def _rca_chunks(ctx):
    # At most one chunklet per 4 training points, so every class can host its share.
    return int(min(ctx.settings["rca_chunks"], ctx.n_train // 4))


def _mcml(ctx):
    est = _sk("MCML")(max_iter=ctx.settings["mcml_max_iter"], random_state=ctx.seed)
    return _subsampled(est, ctx.settings["mcml_max_samples"], ctx.seed)


def _itml(ctx):
    return _sk("ITML")(max_iter=ctx.settings["itml_max_iter"], random_state=ctx.seed)


def _mmc(ctx):
    return _sk("MMC")(max_iter=ctx.settings["mmc_max_iter"], random_state=ctx.seed)


def _lmnn(ctx):
    return _sk("LMNN")(
        n_neighbors=N_NEIGHBORS, max_iter=ctx.settings["lmnn_max_iter"], random_state=ctx.seed
    )


def _lfda(ctx):
    return _sk("LFDA")()


def _energy_lmnn(ctx):
    return _sk("LMNNClassifier")(
        n_neighbors=N_NEIGHBORS, max_iter=ctx.settings["lmnn_max_iter"], random_state=ctx.seed
    )


def _siamese(ctx):
    return _sk("SiameseNet")(
        max_epochs=ctx.settings["siamese_epochs"], random_state=ctx.seed, device=DEVICE
    )


# ------------------------------ image methods ------------------------------ #
def _cnn(ctx):
    cls = _sk("CNNFeatureExtractor")
    if ctx.backbone is None:
        # Downloadable image data sets: ImageNet weights (their users have a network).
        return cls(backbone="resnet18", weights="DEFAULT", device=DEVICE)
    return cls(backbone=ctx.backbone, weights=None, input_size=ctx.input_size, device=DEVICE)


def _cnn_lmnn(ctx):
    return make_pipeline(_cnn(ctx), StandardScaler(), _lmnn(ctx))


def _cnn_siamese(ctx):
    return make_pipeline(_cnn(ctx), StandardScaler(), _siamese(ctx))


# ---------------------------------- peers ---------------------------------- #
def _peer(name, params):
    """A metric-learn class by name; ``params(ctx)`` gives its keyword arguments."""

    def build(ctx):
        est = metric_learn_estimator(name, **params(ctx))
        if est is None:
            raise MissingMethod("metric-learn is not installed (pip install 'skmetric[bench]').")
        return est

    return build


def _sk_nca(ctx):
    return NeighborhoodComponentsAnalysis(
        max_iter=ctx.settings["nca_max_iter"], random_state=ctx.seed
    )


METHODS = [
    Method("Euclidean kNN", lambda ctx: None, "baseline"),
    Method("PCA", _pca, "baseline"),
    Method("LDA", _lda, "baseline"),
    Method("NCA", _nca, "skmetric", requires=("NCA",)),
    Method("scikit-learn NCA", _sk_nca, "peer", peer_of="NCA"),
    Method(
        "metric-learn NCA",
        _peer("NCA", lambda c: dict(max_iter=c.settings["nca_max_iter"], random_state=c.seed)),
        "peer",
        peer_of="NCA",
    ),
    Method("RCA", _rca, "skmetric", requires=("RCA",)),
    Method(
        "metric-learn RCA",
        _peer(
            "RCA_Supervised",
            lambda c: dict(n_chunks=_rca_chunks(c), chunk_size=2, random_state=c.seed),
        ),
        "peer",
        peer_of="RCA",
    ),
    Method("MCML", _mcml, "skmetric", requires=("MCML",)),
    Method("ITML", _itml, "skmetric", requires=("ITML",)),
    Method(
        "metric-learn ITML",
        _peer(
            "ITML_Supervised",
            lambda c: dict(max_iter=c.settings["itml_max_iter"], random_state=c.seed),
        ),
        "peer",
        peer_of="ITML",
    ),
    Method("MMC", _mmc, "skmetric", requires=("MMC",)),
    Method(
        "metric-learn MMC",
        _peer(
            "MMC_Supervised",
            lambda c: dict(max_iter=c.settings["mmc_max_iter"], random_state=c.seed),
        ),
        "peer",
        peer_of="MMC",
        # Its inner loop of up to 10,000 projections (each a d x d eigendecomposition)
        # ran for more than 4 minutes on 200 x 256 CNN features.
        max_features=64,
        max_features_reason="metric-learn MMC's projection loop takes minutes per fold for d > 64",
    ),
    Method("LMNN", _lmnn, "skmetric", requires=("LMNN",)),
    Method(
        "metric-learn LMNN",
        _peer(
            "LMNN",
            lambda c: dict(
                n_neighbors=N_NEIGHBORS,
                max_iter=c.settings["lmnn_max_iter"],
                min_iter=min(50, c.settings["lmnn_max_iter"]),
                random_state=c.seed,
            ),
        ),
        "peer",
        peer_of="LMNN",
    ),
    Method("LFDA", _lfda, "skmetric", requires=("LFDA",)),
    Method("metric-learn LFDA", _peer("LFDA", lambda c: {}), "peer", peer_of="LFDA"),
    Method(
        "energy-based LMNN",
        _energy_lmnn,
        "skmetric",
        classifier=True,
        requires=("LMNNClassifier",),
    ),
    Method("SiameseNet", _siamese, "skmetric", requires=("SiameseNet",)),
    Method(
        "CNN features + LMNN",
        _cnn_lmnn,
        "skmetric",
        input="images",
        requires=("CNNFeatureExtractor", "LMNN"),
    ),
    Method(
        "CNN features + SiameseNet",
        _cnn_siamese,
        "skmetric",
        input="images",
        requires=("CNNFeatureExtractor", "SiameseNet"),
    ),
]
METHOD_NAMES = [m.name for m in METHODS]
_BY_NAME = {m.name: m for m in METHODS}


def get_method(name):
    if name not in _BY_NAME:
        raise ValueError(f"Unknown method {name!r}; choose from {METHOD_NAMES}.")
    return _BY_NAME[name]


def select_methods(names=None, peers=True):
    """Methods by name (case-insensitive), in registry order; peers optional.

    When ``names`` is given, the peers of the selected skmetric methods are
    added (if ``peers``) so every ratio can be computed.
    """
    if names:
        lookup = {n.lower(): n for n in METHOD_NAMES}
        unknown = [n for n in names if n.lower() not in lookup]
        if unknown:
            raise ValueError(f"Unknown method(s) {unknown}; choose from {METHOD_NAMES}.")
        wanted = {lookup[n.lower()] for n in names}
        wanted |= {m.name for m in METHODS if m.peer_of in wanted} if peers else set()
    else:
        wanted = set(METHOD_NAMES)
    return [m for m in METHODS if m.name in wanted and (peers or m.family != "peer")]


def check_importable(methods):
    """Raise :class:`MissingMethod` naming every selected method that cannot be built."""
    missing = []
    for m in methods:
        for name in m.requires:
            try:
                _sk(name)
            except MissingMethod as exc:
                missing.append(f"{m.name}: {exc}")
    if missing:
        raise MissingMethod("Cannot run these methods:\n  " + "\n  ".join(missing))


def peers_of(name):
    """Names of the peers compared with skmetric method ``name`` (first is the primary)."""
    return [m.name for m in METHODS if m.peer_of == name]


# --------------------------------------------------------------------------- #
# Data sets
# --------------------------------------------------------------------------- #
@dataclass
class Dataset:
    name: str
    X: np.ndarray
    y: np.ndarray
    images: np.ndarray = None
    backbone: object = None
    input_size: object = None
    note: str = ""
    prep_time: float = 0.0


SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits")
DOWNLOADABLE = ("mnist", "fashion_mnist", "omniglot")
DEFAULT_DATASETS = (*SKLEARN_DATASETS, "digits_cnn")
QUICK_DATASETS = ("iris", "digits_cnn")
DATASET_NAMES = (*DEFAULT_DATASETS, *DOWNLOADABLE)

SOURCE_CLASSES = (0, 1, 2, 3, 4)


def _stratified_subsample(y, n, seed):
    """Indices of a stratified subsample of size n (all indices when n >= len(y))."""
    if n is None or n >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(idx)


@functools.lru_cache(maxsize=4)
def pretrained_digits_backbone(quick, seed):
    """The small CNN pretrained on the source digit classes, frozen afterwards.

    Cached: the benchmark, the grid search and the retrieval example share it
    within one process (the extractor copies the module, never modifies it).
    """
    from benchmarks.transfer import pretrain_digits_cnn

    return pretrain_digits_cnn(
        source_classes=SOURCE_CLASSES,
        epochs=settings(quick)["cnn_pretrain_epochs"],
        random_state=seed,
        verbose=0,
    )


def digits_transfer(quick=False, seed=0, max_samples=None):
    """Target digit classes (5-9): images, labels, and the pretrained backbone."""
    from skmetric.datasets import load_digits_images

    images, y = load_digits_images()
    target = ~np.isin(y, SOURCE_CLASSES)
    images, y = images[target], y[target]
    idx = _stratified_subsample(y, max_samples, seed)
    return images[idx], y[idx], pretrained_digits_backbone(quick, seed)


def cnn_features(images, backbone, input_size=None):
    """Frozen-CNN features of images (the extractor has nothing to learn)."""
    ext = _sk("CNNFeatureExtractor")(
        backbone=backbone, weights=None, input_size=input_size, device=DEVICE
    )
    return np.asarray(ext.fit(images).transform(images), dtype=np.float64)


def load(name, quick=False, seed=0, data_home=None, download=False):
    """Load a data set of the registry; raises :class:`DatasetUnavailable` with the reason."""
    import time

    t0 = time.perf_counter()
    max_n = 200 if quick else None
    if name in SKLEARN_DATASETS:
        X, y = load_dataset(name)
        idx = _stratified_subsample(y, max_n if name == "digits" else None, seed)
        return Dataset(name, X[idx], y[idx], prep_time=time.perf_counter() - t0)
    if name == "digits_cnn":
        images, y, backbone = digits_transfer(quick, seed, max_samples=max_n)
        X = cnn_features(images, backbone)
        return Dataset(
            name,
            X,
            y,
            images=images,
            backbone=backbone,
            note="CNN pretrained on digits 0-4, features of digits 5-9",
            prep_time=time.perf_counter() - t0,
        )
    if name in DOWNLOADABLE:
        images, y = load_downloadable(name, 500 if quick else 3000, seed, data_home, download)
        # Pixels -> 64 PCA components (unsupervised, fitted on all images) so the
        # Mahalanobis learners work in a space of digits' size; CNN methods see images.
        flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
        X = PCA(n_components=64, random_state=seed).fit_transform(flat)
        return Dataset(
            name,
            X,
            y,
            images=images,
            note="64 PCA components of the pixels; CNN methods: ImageNet ResNet-18 features "
            "(torchvision weights, downloaded once)",
            prep_time=time.perf_counter() - t0,
        )
    raise ValueError(f"Unknown data set {name!r}; choose from {list(DATASET_NAMES)}.")


OMNIGLOT_CHARACTERS = 50  # Omniglot: the first 50 characters, all 20 drawings each


def load_downloadable(name, n_samples, seed, data_home=None, download=False):
    """Images and labels of MNIST / Fashion-MNIST / Omniglot, or DatasetUnavailable."""
    import skmetric.datasets as ds

    try:
        if name == "omniglot":
            images, y = ds.load_omniglot(data_home=data_home, download=download)
            keep = np.isin(y, np.unique(y)[:OMNIGLOT_CHARACTERS])
            images, y = _downscale(images[keep], 28), y[keep]
        else:
            loader = getattr(ds, f"load_{name}")
            images, y = loader(
                data_home=data_home, download=download, n_samples=n_samples, random_state=seed
            )
    except Exception as exc:  # offline, not downloaded, torchvision missing
        raise DatasetUnavailable(
            f"{name} is not available ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). "
            "Fetch it once with --download (needs a network), or point --data-home at a copy."
        ) from exc
    return np.asarray(images), np.asarray(y)


def _downscale(images, size):
    """Resize uint8 (N, H, W) images to (N, size, size) with PIL (Omniglot is 105x105)."""
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images]
    )


def applicable(method, dataset):
    """Whether a method applies to a data set (image methods need images)."""
    return method.input == "vectors" or dataset.images is not None


def not_run_reason(method, dataset):
    """Why an applicable method is left out on this data set, or None."""
    if method.max_features is not None and dataset.X.shape[1] > method.max_features:
        return f"not run: {method.max_features_reason}"
    return None


def build_pipeline(method, dataset, seed=0, quick=False):
    """StandardScaler -> method -> k-NN for vectors; method -> k-NN for images."""
    ctx = Context(
        seed=seed,
        quick=quick,
        n_classes=len(np.unique(dataset.y)),
        n_features=dataset.X.shape[1],
        n_train=int(len(dataset.y) * (N_SPLITS - 1) / N_SPLITS),
        backbone=dataset.backbone,
        input_size=dataset.input_size,
        settings=settings(quick),
    )
    step = method.build(ctx)
    steps = [StandardScaler()] if method.input == "vectors" else []
    if step is not None:
        steps.append(step)
    if not method.classifier:
        steps.append(KNeighborsClassifier(n_neighbors=N_NEIGHBORS))
    return make_pipeline(*steps)
