"""The one method registry: every method any benchmark runs, by name.

A :class:`Method` builds, from a :class:`Context`, the estimator that sits
between ``StandardScaler`` and the k-NN classifier (or, for classifiers such
as the energy-based LMNN, the final estimator itself; for the one-shot
episodes, the embedding). Its metadata say who made it (``kind``: baseline,
skmetric or peer, with ``peer_of``), its ``family`` (classic or deep) and the
``data`` it applies to (vectors, images, or image classes for one-shot
episodes). Scripts select methods by name; a new learner is one entry here,
e.g. ``ours("SDML", "SDML", _seeded("sdml_max_iter"))`` beside its peer
``peer("metric-learn SDML", "SDML_Supervised", _seeded(), "SDML")``
(with the cap added to :func:`settings`); ``default=False`` keeps an entry
out of ``python -m benchmarks`` until it should be in the README's table.

Settings shared by a method and its peers (iteration caps) live in
:func:`settings`, so a time ratio compares like with like; a script changes
them by passing overrides (``None``: the estimator's own default).
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone

N_NEIGHBORS = 3  # k of the k-NN classifier every method is scored with
N_SPLITS = 3  # stratified folds per data set
DEVICE = "auto"  # deep models use a GPU when there is one


class MissingMethod(ImportError):
    """A method whose skmetric class cannot be imported."""


def settings(quick, **overrides):
    """Per-method settings of the main run (``--quick``: shorter), with overrides."""
    base = {
        "nca_max_iter": 10 if quick else 50,
        "lmnn_max_iter": 20 if quick else 100,
        "lmnn_peer_max_iter": None,  # set: metric-learn's LMNN alone capped (bench_lmnn)
        "mmc_max_iter": 5 if quick else 10,
        "itml_max_iter": 10 if quick else 100,
        # metric-learn's default of 100 chunklets, fewer where the classes cannot host them
        "rca_chunks": 100,
        "mcml_max_iter": 10 if quick else 50,
        # MCML is O(n^2 d^2) per iteration: fit it on at most this many samples.
        "mcml_max_samples": 100 if quick else 600,
        "siamese_epochs": 2 if quick else 20,
        # DeepMetricLearner: None keeps the estimator's own max_epochs.
        "dml_epochs": 2 if quick else None,
        # SDML / LSML / SCML: their own defaults, shorter with --quick.
        "sdml_max_iter": 50 if quick else None,
        "lsml_max_iter": 50 if quick else None,
        "scml_max_iter": 50 if quick else None,
        "cnn_pretrain_epochs": 2 if quick else 10,
    }
    unknown = set(overrides) - set(base)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; choose from {sorted(base)}.")
    return {**base, **overrides}


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
    "SiameseNet: at most {siamese_epochs} epochs, otherwise its defaults.",
    "DeepMetricLearner (multi_similarity, triplet, proxy_anchor losses): the estimator's "
    "defaults (its MLP encoder on the scaled features, class-balanced batches); --quick caps "
    "it at 2 epochs.",
    "SiameseNet and DeepMetricLearner keep their defaults for new classes: training is "
    "validated on held-out classes and the raw input is returned when training does not beat "
    "it there; with fewer than 4 classes (iris, wine, breast_cancer) nothing can be held out, "
    "so they warn and return the raw input (the Euclidean kNN figures). validation='stratified' "
    "or None trains a model of the seen classes.",
    "A peer that raises (e.g. metric-learn RCA/LFDA on the rank-deficient digits pixels) is "
    "listed as failed with the reason.",
    "SDML / LSML / SCML: each library's label form with its own constraints and defaults "
    "(--quick caps both LSMLs at 50 iterations). metric-learn 0.7.0's SDML_Supervised "
    "fails as installed: it passes cov_init to scikit-learn's graphical_lasso, which no longer "
    "takes that keyword (python -m benchmarks.bench_sdml_mlkr drops it and compares on the same "
    "pairs). metric-learn's SCML max_iter counts SGD steps, not L-BFGS-B iterations: no shared "
    "cap, its defaults (10,000 steps of 10 triplets); not run above 64 features. Tuple forms on "
    "identical constraints: "
    "python -m benchmarks.bench_tuples.",
]


def notes(quick):
    """The table notes, with this run's settings filled in."""
    return [n.format(**settings(quick)) for n in NOTES]


@dataclass(frozen=True)
class Method:
    """One method: a factory and what it is.

    ``build(ctx)`` returns the estimator placed between the scaler and the
    k-NN classifier (None for plain Euclidean k-NN); when ``classifier`` is
    True it returns the final classifier instead. ``data`` is 'vectors',
    'images' (data sets with images and a backbone) or 'episodes' (the
    one-shot protocol's image classes). ``default``: part of ``python -m
    benchmarks`` without ``--methods``.
    """

    name: str
    build: object
    kind: str  # 'baseline', 'skmetric' or 'peer'
    family: str = "classic"  # or 'deep'
    peer_of: str = None  # for peers: the skmetric method they are compared with
    data: str = "vectors"
    classifier: bool = False
    requires: tuple = ()  # public skmetric names the method needs
    max_features: int = None  # not run above this many features (and why)
    max_features_reason: str = ""
    default: bool = True


@dataclass
class Context:
    """What a method's factory may depend on."""

    seed: int
    quick: bool
    n_classes: int = 0
    n_features: int = 0
    n_train: int = 0
    backbone: object = None
    input_size: object = None
    settings: dict = field(default_factory=dict)

    def cap(self, key, name="max_iter"):
        """``{name: settings[key]}``, or {} when the setting is None (the default)."""
        value = self.settings.get(key)
        return {} if value is None else {name: value}


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
        from .data import stratified_subsample

        idx = stratified_subsample(np.asarray(y), self.max_samples, self.random_state)
        self.estimator_ = clone(self.estimator).fit(X[idx], np.asarray(y)[idx])
        return self

    def transform(self, X):
        return self.estimator_.transform(X)


# -------------------------------- factories -------------------------------- #
def _none(ctx):
    return {}


def _seeded(cap_key=None, **fixed):
    """Keyword arguments: the cap ``cap_key`` (if set), random_state=seed, ``fixed``."""
    return lambda ctx: {**(ctx.cap(cap_key) if cap_key else {}), "random_state": ctx.seed, **fixed}


def _build(cls, params=_none, module=None):
    """Build ``cls`` (skmetric's, or ``module``'s) with the keyword arguments ``params(ctx)``."""
    if module is None:
        return lambda ctx: _sk(cls)(**params(ctx))
    import importlib

    return lambda ctx: getattr(importlib.import_module(module), cls)(**params(ctx))


def _peer(cls, params):
    """A metric-learn class by name (through the keyword adapter)."""

    def build(ctx):
        from .peers import metric_learn_estimator

        est = metric_learn_estimator(cls, **params(ctx))
        if est is None:
            raise MissingMethod("metric-learn is not installed (pip install 'skmetric[bench]').")
        return est

    return build


def ours(name, cls, params=_none, **meta):
    """A skmetric method: class ``cls`` built with ``params(ctx)``."""
    return Method(name, _build(cls, params), "skmetric", requires=(cls,), **meta)


def peer(name, cls, params, of, **meta):
    """A metric-learn method compared with skmetric method ``of``."""
    return Method(name, _peer(cls, params), "peer", peer_of=of, **meta)


def _rca_params(ctx, chunks="num_chunks"):
    # At most one chunklet per 4 training points, so every class can host its share.
    n = int(min(ctx.settings["rca_chunks"], ctx.n_train // 4))
    return {chunks: n, "chunk_size": 2, "random_state": ctx.seed}


def _mcml(ctx):
    est = _sk("MCML")(**_seeded("mcml_max_iter")(ctx))
    return SubsampleFit(est, max_samples=ctx.settings["mcml_max_samples"], random_state=ctx.seed)


def _lmnn_params(ctx, peer=False):
    # lmnn_peer_max_iter (bench_lmnn --peer-max-iter): metric-learn alone capped.
    peer_cap = peer and ctx.settings.get("lmnn_peer_max_iter") is not None
    caps = ctx.cap("lmnn_peer_max_iter" if peer_cap else "lmnn_max_iter")
    if caps and peer:  # metric-learn's min_iter would otherwise exceed a small cap
        caps["min_iter"] = min(50, caps["max_iter"])
    return {"n_neighbors": N_NEIGHBORS, **caps, "random_state": ctx.seed}


def _siamese_params(ctx):
    return dict(max_epochs=ctx.settings["siamese_epochs"], random_state=ctx.seed, device=DEVICE)


def _dml_params(loss):
    """DeepMetricLearner with ``loss``: the estimator's defaults but for the epoch cap."""
    return lambda ctx: dict(loss=loss, **ctx.cap("dml_epochs", "max_epochs"),
                            random_state=ctx.seed, device=DEVICE)


DML_LOSSES = ("multi_similarity", "triplet", "proxy_anchor")


def dml_method(loss):
    """Registry name of the DeepMetricLearner entry with ``loss``."""
    return f"DeepMetricLearner ({loss})"


def _cnn_then(cls, params):
    """CNNFeatureExtractor (the data set's frozen backbone) -> StandardScaler -> ``cls``."""

    def cnn_pipeline(ctx):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        cnn = _sk("CNNFeatureExtractor")
        if ctx.backbone is None:  # downloadable image data: ImageNet weights (users have a network)
            cnn = cnn(backbone="resnet18", weights="DEFAULT", device=DEVICE)
        else:
            cnn = cnn(backbone=ctx.backbone, weights=None, input_size=ctx.input_size, device=DEVICE)
        return make_pipeline(cnn, StandardScaler(), _build(cls, params)(ctx))

    return cnn_pipeline


def _episode_methods():
    """The one-shot models of :mod:`benchmarks.bench_oneshot` (its episode protocol)."""
    from . import bench_oneshot as bo

    def build(name):
        return lambda ctx: bo.model(ctx, name)

    out = [Method(bo.RAW, lambda ctx: None, "baseline", data="episodes", default=False)]
    for name in bo.METHODS[1:]:
        meta = {} if name == bo.RAW_UP else dict(family="deep", requires=("SiameseNet",))
        kind = "baseline" if name == bo.RAW_UP else "skmetric"
        out.append(Method(name, build(name), kind, data="episodes", default=False, **meta))
    return out


METHODS = [
    Method("Euclidean kNN", lambda ctx: None, "baseline"),
    Method("PCA", _build("PCA", lambda c: dict(n_components=0.95, random_state=c.seed),
                         "sklearn.decomposition"), "baseline"),
    Method("LDA", _build("LinearDiscriminantAnalysis", module="sklearn.discriminant_analysis"),
           "baseline"),
    ours("NCA", "NCA", _seeded("nca_max_iter")),
    Method("scikit-learn NCA", _build("NeighborhoodComponentsAnalysis", _seeded("nca_max_iter"),
                                      "sklearn.neighbors"), "peer", peer_of="NCA"),
    peer("metric-learn NCA", "NCA", _seeded("nca_max_iter"), "NCA"),
    ours("RCA", "RCA", _rca_params),
    peer("metric-learn RCA", "RCA_Supervised", lambda c: _rca_params(c, "n_chunks"), "RCA"),
    Method("MCML", _mcml, "skmetric", requires=("MCML",)),
    ours("ITML", "ITML", _seeded("itml_max_iter")),
    peer("metric-learn ITML", "ITML_Supervised", _seeded("itml_max_iter"), "ITML"),
    ours("MMC", "MMC", _seeded("mmc_max_iter")),
    # Xing's problem itself (no pull towards the prior), and the diagonal metric.
    ours("MMC exact", "MMC", _seeded("mmc_max_iter", regularization=0), default=False),
    ours("MMC diagonal", "MMC", _seeded("mmc_max_iter", diagonal=True), default=False),
    # Its inner loop of up to 10,000 projections (each a d x d eigendecomposition)
    # ran for more than 4 minutes on 200 x 256 CNN features.
    peer("metric-learn MMC", "MMC_Supervised", _seeded("mmc_max_iter"), "MMC", max_features=64,
         max_features_reason="metric-learn MMC's projection loop takes minutes per fold "
         "for d > 64"),
    ours("LMNN", "LMNN", _lmnn_params),
    peer("metric-learn LMNN", "LMNN", lambda c: _lmnn_params(c, peer=True), "LMNN"),
    # bench_lmnn --n-components: ours at a lower rank (the high-dimensional CNN features)
    *(ours(f"LMNN, n_components={k}", "LMNN",
           lambda c, k=k: {**_lmnn_params(c), "n_components": k}, default=False)
      for k in (32, 64)),
    ours("LFDA", "LFDA"),
    peer("metric-learn LFDA", "LFDA", _none, "LFDA"),
    ours("energy-based LMNN", "LMNNClassifier", _lmnn_params, classifier=True),
    ours("SDML", "SDML", _seeded("sdml_max_iter")),
    # metric-learn 0.7.0's SDML passes cov_init to scikit-learn's graphical_lasso, which no
    # longer takes it: as installed it fails (a failed row; bench_sdml_mlkr drops the keyword).
    peer("metric-learn SDML", "SDML_Supervised", _seeded(), "SDML"),
    ours("LSML", "LSML", _seeded("lsml_max_iter")),
    peer("metric-learn LSML", "LSML_Supervised", _seeded("lsml_max_iter"), "LSML"),
    ours("SCML", "SCML", _seeded("scml_max_iter")),
    # Its max_iter counts SGD steps of 10 triplets (default 10,000), not L-BFGS-B iterations:
    # no shared cap, its own defaults. Its bases (k-means with 10 restarts, an LDA per
    # cluster, 20 * d of them) took 23 CPU-s per fit on 600 x 256 even with 500 SGD steps.
    peer("metric-learn SCML", "SCML_Supervised", _seeded(), "SCML", max_features=64,
         max_features_reason="metric-learn SCML's basis construction takes about 25 CPU-s "
         "per fold for d = 256"),
    ours("SiameseNet", "SiameseNet", _siamese_params, family="deep"),
    # The estimator's default loss joins the README's table; the others the unseen benchmark.
    *(ours(dml_method(loss), "DeepMetricLearner", _dml_params(loss), family="deep",
           default=loss == DML_LOSSES[0]) for loss in DML_LOSSES),
    Method("CNN features + LMNN", _cnn_then("LMNN", _lmnn_params), "skmetric", "deep",
           data="images", requires=("CNNFeatureExtractor", "LMNN")),
    Method("CNN features + SiameseNet", _cnn_then("SiameseNet", _siamese_params), "skmetric",
           "deep", data="images", requires=("CNNFeatureExtractor", "SiameseNet")),
    *_episode_methods(),
]
_BY_NAME = {m.name: m for m in METHODS}


def get_method(name):
    if name not in _BY_NAME:
        raise ValueError(f"Unknown method {name!r}; choose from {list(_BY_NAME)}.")
    return _BY_NAME[name]


def select(names=None, peers=True, data=("vectors", "images")):
    """Methods by name (case-insensitive), in registry order; peers optional.

    Without ``names``: the default methods for ``data``. When ``names`` is
    given, the peers of the selected skmetric methods are added (if
    ``peers``) so every ratio can be computed.
    """
    if names:
        lookup = {n.lower(): n for n in _BY_NAME}
        unknown = [n for n in names if n.lower() not in lookup]
        if unknown:
            raise ValueError(f"Unknown method(s) {unknown}; choose from {list(_BY_NAME)}.")
        wanted = {lookup[n.lower()] for n in names}
        wanted |= {m.name for m in METHODS if m.peer_of in wanted} if peers else set()
    else:
        wanted = {m.name for m in METHODS if m.default and m.data in data}
    return [m for m in METHODS if m.name in wanted and (peers or m.kind != "peer")]


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


def applicable(method, dataset):
    """Whether a method applies to a data set (image methods need images)."""
    return method.data == "vectors" or (method.data == "images" and dataset.images is not None)


def not_run_reason(method, dataset):
    """Why an applicable method is left out on this data set, or None."""
    if method.max_features is not None and dataset.X.shape[1] > method.max_features:
        return f"not run: {method.max_features_reason}"
    return None


def build_pipeline(method, dataset, seed=0, quick=False, overrides=None):
    """StandardScaler -> method -> k-NN for vectors; method -> k-NN for images."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ctx = Context(
        seed=seed,
        quick=quick,
        n_classes=len(np.unique(dataset.y)),
        n_features=dataset.X.shape[1],
        n_train=int(len(dataset.y) * (N_SPLITS - 1) / N_SPLITS),
        backbone=dataset.backbone,
        input_size=dataset.input_size,
        settings=settings(quick, **(overrides or {})),
    )
    step = method.build(ctx)
    steps = [StandardScaler()] if method.data == "vectors" else []
    if step is not None:
        steps.append(step)
    if not method.classifier:
        steps.append(KNeighborsClassifier(n_neighbors=N_NEIGHBORS))
    return make_pipeline(*steps)
