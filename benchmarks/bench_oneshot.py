"""One-shot demonstration of SiameseNet on scikit-learn's digits (and Omniglot).

Protocols (Koch et al., 2015: one support image per class, a query from one of
them, predict the class whose support is most similar):

1. Held-out classes (the paper's protocol). The ten digits are partitioned
   into three class folds, {0,1,2}, {3,4,5}, {6,7,8,9}; each fold is held out
   once: every model is trained without that fold's classes and scored on
   2-way and 3-way episodes (1000 each) drawn from them only; numbers are
   means over the three folds. The Siamese model is a binomial deviance
   SiameseNet with the library's defaults (PCA-skip init, lr 1e-4,
   class-disjoint early stopping; 8x8 input, affine augmentation, up to 8
   epochs of 100,000 pairs, batch 256) trained on the fold's 6-7 training digit classes together
   with ~1,600 letter classes drawn from fonts in the digits' format
   (:func:`skmetric.datasets.make_font_glyphs`): Koch et al.'s transfer needs
   many training classes, and the digits offer only a handful. Three seeds
   per fold; each net is scored, and so is their committee (mean cosine
   similarity). The same net trained on the digits alone is the ablation.
   The source-domain models (the default run, and alone with
   ``--source-only``): a SiameseNet (binomial deviance) and a
   DeepMetricLearner (multi-similarity) trained on the font glyphs ONLY,
   never on a digit, with the defaults but for what a source of ~1,600
   classes needs (lr 1e-3, batch 256, augmentation, 20 epochs, 5% of the
   glyph classes for the class-disjoint early stopping), and the same
   DeepMetricLearner with 8 images per glyph class in a batch
   (``m_per_class=8``, 32 classes per batch of 256, instead of the default
   4) and conv blocks of 64 and 128 channels (default 32 and 64); one fit
   per seed serves every fold. ``--ce-init`` adds a CNN pretrained with cross-entropy on the training
   classes (frozen, and as a Siamese init), ``--scratch`` the from-scratch
   Siamese net on 16x16 upscaled digits (``--all-losses``: every loss).
2. With ``--images``: held-out images of seen classes: train on half of the
   images of every class (8x8 input), draw 2/5/10-way episodes from the
   other half.
3. With ``--glyph-koch`` (alone): Koch et al.'s protocol where it can run
   without a download. The letters of :func:`skmetric.datasets.make_font_glyphs`
   are split by Unicode script, like Omniglot's background and evaluation
   alphabets: the SiameseNet and DeepMetricLearner (the source settings
   above) train on the background scripts (Latin, Greek, Cyrillic and a few
   letter-like symbols: 1,359 classes) and are scored on 20-way and 5-way
   one-shot episodes drawn within ONE evaluation script at a time (Armenian
   76, Georgian 119, Lao 31 classes; 400 episodes per script and N), beside
   raw-pixel 1-NN on the same episodes. Koch et al.'s Omniglot numbers (92.0%
   Siamese, 21.7% raw 1-NN, 20-way) are printed as a reference only: other
   data (105x105 hand drawings). Writes ``oneshot_glyph_koch_<tag>.*`` and,
   full, benchmarks/figures/oneshot_glyph_koch.png.

Every model is scored on exactly the same episodes as the raw-pixel 1-NN
baseline (8x8 pixels; also upscaled to 16x16): each row records a digest of
its episodes, and a model scored on other episodes stops the run. Retrieval
metrics (precision@1, recall@k, mAP@R) of each embedding within the held-out
images go in the same rows. The models are registry methods
(``data='episodes'``). When Omniglot is available, the paper's 20-way
protocol runs on its evaluation alphabets (paper: 92% Siamese, 21.7% raw
1-NN). Measured results (full run with ``--images``, about 25 min on 2 CPU
cores): the README's one-shot section. Writes ``oneshot_<quick|full>.csv`` /
``.json`` / ``.md`` and a PNG into ``--out``; a full run also the README
figures benchmarks/figures/oneshot_digits.png and font_glyphs.png.
"""

import functools
import sys

from .bench_unseen import script_of as glyph_script  # the script of a letter: one home
from .report import parser

LOSSES = ("koch", "contrastive", "binomial_deviance")
# Held-out class folds: a partition of the ten digits; each fold is held out
# once while the model trains on the other classes.
FOLDS = ((0, 1, 2), (3, 4, 5), (6, 7, 8, 9))
UPSCALE = 16  # the from-scratch models see the digits bilinearly upscaled to 16x16
# The from-scratch model (16x16), and the CE-pretrained init's fine-tuning.
TRANSFER = dict(augment=True, n_pairs=2000, embedding_dim=64)
PRETRAIN = dict(epochs=15, random_state=0)
PRETRAINED_SIAMESE = dict(loss="binomial_deviance", lr=1e-3, max_epochs=10, n_pairs=2000,
                          augment=True)
# The held-out-class model: a binomial deviance Siamese net trained on the
# fold's training digits together with ~1,600 letter classes drawn from fonts
# (skmetric.datasets.make_font_glyphs, the same 8x8 format as the digits): many
# training classes, as Omniglot gives Koch et al. Large batches make the
# 800,000 training pairs affordable on a CPU (about 2 minutes per fit).
# It uses SiameseNet's defaults otherwise (binomial deviance, PCA-skip init, lr 1e-4,
# class-disjoint early stopping: 5% of the training classes held out, one-shot on them each
# epoch, the untrained weights as epoch 0, the best epoch kept).
MAIN = dict(loss="binomial_deviance", n_pairs=100_000, batch_size=256, max_epochs=8, augment=True,
            validation_fraction=0.05, n_iter_no_change=3)
MAIN_QUICK = dict(MAIN, n_pairs=20_000, max_epochs=2)
# The source-domain models: trained on the font glyphs ONLY (no digit at all), one fit per
# seed scored on every fold's held-out digits. The library's defaults but for what a source of
# ~1,600 classes needs: lr 1e-3 (1e-4, the default for a handful of classes, is still far
# from converged after 20 epochs here), larger batches, augmentation, 5% of the glyph classes
# for the class-disjoint early stopping (one-shot on held-out glyph classes).
SOURCE_SIAMESE = dict(loss="binomial_deviance", lr=1e-3, n_pairs=100_000, batch_size=256,
                      max_epochs=20, augment=True, validation_fraction=0.05, n_iter_no_change=3)
SOURCE_DML = dict(lr=1e-3, batch_size=256, max_epochs=20, augment=True, validation_fraction=0.05,
                  n_iter_no_change=3)
# The same DeepMetricLearner with 8 images per glyph class in a batch (32 classes of 8)
# instead of the default 4 (64 classes of 4: more positive pairs per anchor for the
# multi-similarity loss) and a wider default convnet on the 8x8 images (conv blocks of 64 and
# 128 channels instead of 32 and 64). Issue 14's bar (a single model at least 5 points ahead of
# raw pixels at 2-way on average, ahead on every digit fold) is met with it on seeds 0-4;
# m_per_class=8 alone met it on seeds 0-2 but not on seed 3 (+2.9), the wider net alone not
# on seed 0 (16 per class: less even over the folds). The settings above stay those of the
# first row, of Koch's protocol on the glyph alphabets and of bench_transfer_kinds.
SOURCE_DML_M8 = dict(SOURCE_DML, m_per_class=8, conv_channels=(64, 128))
SOURCE_QUICK = dict(max_epochs=2)
GLYPHS = dict(n_per_class=20, random_state=0)
GLYPHS_QUICK = dict(n_per_class=5, max_classes=300, random_state=0)
SEEDS = (0, 1, 2)  # training is noisy (a fold moves by points between seeds): report the mean
SAME_EPISODES_SEED = 0
# Registry names of the one-shot methods (benchmarks.registry, data='episodes').
RAW, RAW_UP = "raw pixels 1-NN", f"raw pixels 1-NN ({UPSCALE}x{UPSCALE})"
GLYPH_METHOD = "Siamese (binomial_deviance, digits + font glyphs)"
DIGITS_ONLY_METHOD = "Siamese (binomial_deviance, digits only)"
ENSEMBLE_METHOD = "3 Siamese nets (digits + font glyphs, seeds 0-2), mean cosine"
SOURCE_METHOD = "SiameseNet trained on font glyphs only (source domain)"
SOURCE_DML_METHOD = "DeepMetricLearner trained on font glyphs only (source domain)"
SOURCE_DML_M8_METHOD = ("DeepMetricLearner trained on font glyphs only (source domain, "
                        "m_per_class=8, 64-128 channels)")
FROZEN_METHOD = "CE-pretrained CNN features, frozen (1-NN)"
TRANSFER_METHOD = "Siamese (binomial_deviance, CE-pretrained init)"
OMNIGLOT_METHOD = "Siamese (koch, Omniglot settings)"
# Koch's protocol on the glyph alphabets (``--glyph-koch``): make_font_glyphs' letters split
# by Unicode script, Omniglot-like. Background (training) alphabets: Latin, Greek, Cyrillic and
# the few letter-like symbols (double-struck, Planck, ...), 1,359 classes; evaluation alphabets,
# whole scripts never seen in training: Armenian (76 classes), Georgian (119) and Lao (31), 226
# classes (Omniglot: 964 background / 659 evaluation characters). Each evaluation alphabet
# has at least 20 classes, so the 20-way episodes are drawn within ONE alphabet, as in the
# paper. Homoglyphs are merged by make_font_glyphs into the first code point (Latin before
# Greek, Cyrillic, Armenian, Lao, Georgian), so an evaluation letter never has an identical
# undistorted twin among the background classes.
KOCH_EVAL_SCRIPTS = ("ARMENIAN", "GEORGIAN", "LAO")
KOCH_WAYS = (20, 5)
KOCH_EPISODES, KOCH_EPISODES_QUICK = 400, 100  # per evaluation alphabet and N
# Koch et al. (2015), Omniglot 20-way within an alphabet (Table 2): their Siamese convnet and
# 1-NN on raw pixels. A reference only: other data (105x105 hand drawings, 20 drawers).
KOCH_PAPER = {"Siamese convnet": 0.92, "1-NN, raw pixels": 0.217}
KOCH_GLYPHS = dict(n_per_class=20, random_state=0)
KOCH_GLYPHS_QUICK = dict(n_per_class=5, random_state=0)
KOCH_PROTOCOL = "glyph koch"
KOCH_SIAMESE_METHOD = "SiameseNet trained on the background glyph alphabets"
KOCH_DML_METHOD = "DeepMetricLearner trained on the background glyph alphabets"
# Methods fitted once per seed (the others once per fold).
SEEDED_METHODS = (GLYPH_METHOD, SOURCE_METHOD, SOURCE_DML_METHOD, SOURCE_DML_M8_METHOD,
                  KOCH_SIAMESE_METHOD,
                  KOCH_DML_METHOD)


def scratch_method(loss):
    return f"Siamese ({loss}, from scratch, {UPSCALE}x{UPSCALE})"


def loss_method(loss):
    return f"Siamese ({loss})"


# Every one-shot method, as the registry lists them (data='episodes').
METHODS = (RAW, RAW_UP, GLYPH_METHOD, SOURCE_METHOD, SOURCE_DML_METHOD, SOURCE_DML_M8_METHOD,
           DIGITS_ONLY_METHOD,
           FROZEN_METHOD, TRANSFER_METHOD,
           OMNIGLOT_METHOD, KOCH_SIAMESE_METHOD, KOCH_DML_METHOD,
           *map(scratch_method, LOSSES), *map(loss_method, LOSSES))


# ------------------------- the models (registry factories) ----------------- #
def siamese(loss, quick, seed=0, **params):
    from skmetric.deep.siamese import SiameseNet

    kw = dict(loss=loss, max_epochs=4 if quick else 10, n_pairs=2000, embedding_dim=64,
              random_state=seed)
    return SiameseNet(**{**kw, **params})


class Prepared:
    """``estimator`` (None: raw pixels) on images upscaled to ``size`` and/or trained with
    the font-glyph classes added (``glyphs``); scored as the estimator is (its
    ``pair_score`` when it has one, else its embedding)."""

    def __init__(self, estimator=None, size=None, glyphs=False, quick=False):
        self.estimator, self.size, self.glyphs, self.quick = estimator, size, glyphs, quick

    def _in(self, X):
        return X if self.size is None else upscale(X, self.size)

    def fit(self, X, y):
        X, y = (with_glyphs(X, y, self.quick) if self.glyphs else (X, y))
        self.estimator_ = None if self.estimator is None else self.estimator.fit(self._in(X), y)
        return self

    def transform(self, X):
        Z = self._in(X)
        return Z if self.estimator_ is None else self.estimator_.transform(Z)

    @property
    def pair_score(self):
        score = self.estimator.pair_score  # AttributeError without one: 1-NN on transform

        def scored(pairs):
            Z = self._in(pairs.reshape(-1, *pairs.shape[2:]))
            return score(Z.reshape(len(pairs), 2, *Z.shape[1:]))

        return scored


_SOURCE_FITS = {}  # (method, seed, quick) -> (fitted model, fit fields): one fit for all folds


class GlyphSource:
    """A model trained on the font-glyph classes only (the source domain).

    ``fit(X, y)`` ignores the digits it is given: the model (``build()``, a
    fresh estimator) is trained on :func:`font_glyphs` once per ``key`` and
    that fit serves every fold; ``source_fit_`` holds its time fields. With
    ``given=True`` (Koch's protocol on the glyph alphabets) it trains on the
    ``X, y`` of its first fit instead, the background alphabets, and that fit
    serves every evaluation alphabet.
    """

    def __init__(self, build, key, quick=False, given=False):
        self.build, self.key, self.quick, self.given = build, key, quick, given

    def fit(self, X=None, y=None):
        from .runner import timed_fit

        if self.key not in _SOURCE_FITS:
            est = self.build()
            train = (X, y) if self.given else font_glyphs(self.quick)
            fields = timed_fit(est, *train)
            _SOURCE_FITS[self.key] = (est, {**fields, "best_epoch": int(est.best_epoch_)})
        self.estimator_, self.source_fit_ = _SOURCE_FITS[self.key]
        return self

    def transform(self, X):
        return self.estimator_.transform(X)

    @property
    def pair_score(self):  # AttributeError without one (DeepMetricLearner): 1-NN on transform
        return self.estimator_.pair_score


def source_model(name, quick, seed):
    """The glyph-only (source-domain) SiameseNet or DeepMetricLearner of ``seed``: trained on
    every glyph class, or (the Koch methods) on the background alphabets only."""
    from skmetric import DeepMetricLearner, SiameseNet

    cls, params = ((SiameseNet, SOURCE_SIAMESE) if name in (SOURCE_METHOD, KOCH_SIAMESE_METHOD)
                   else (DeepMetricLearner, SOURCE_DML_M8) if name == SOURCE_DML_M8_METHOD
                   else (DeepMetricLearner, SOURCE_DML))
    params = dict(params, **(SOURCE_QUICK if quick else {}), random_state=seed)
    given = name in (KOCH_SIAMESE_METHOD, KOCH_DML_METHOD)  # the background alphabets
    return GlyphSource(lambda: cls(**params), (name, seed, quick), quick, given=given)


class CEPretrained:
    """A CNN pretrained with cross-entropy on the training classes: frozen features
    (``fine_tune=False``) or the init of a binomial deviance Siamese net."""

    def __init__(self, fine_tune=False, quick=False):
        self.fine_tune, self.quick = fine_tune, quick

    def fit(self, X, y):
        import copy

        import numpy as np

        self.encoder_ = pretrained_encoder(np.unique(y))
        if self.fine_tune:
            enc = copy.deepcopy(self.encoder_).requires_grad_(True)  # fine-tune a copy
            params = dict(PRETRAINED_SIAMESE, max_epochs=4 if self.quick else 10)
            net = siamese(params.pop("loss"), self.quick, encoder=enc, **params)
            self.estimator_ = net.fit(X, y)
        return self

    def transform(self, X):
        return self.estimator_.transform(X) if self.fine_tune else frozen_features(self.encoder_, X)

    @property
    def pair_score(self):  # the fine-tuned net scores pairs itself; frozen features: 1-NN
        if not self.fine_tune:
            raise AttributeError("pair_score")
        return self.estimator_.pair_score


def model(ctx, name):
    """The registry's factory of the one-shot method ``name``."""
    quick, seed = ctx.quick, ctx.seed
    if name in (GLYPH_METHOD, DIGITS_ONLY_METHOD):
        net = siamese(quick=quick, **dict(MAIN_QUICK if quick else MAIN, random_state=seed))
        return Prepared(net, glyphs=True, quick=quick) if name == GLYPH_METHOD else net
    if name in (SOURCE_METHOD, SOURCE_DML_METHOD, SOURCE_DML_M8_METHOD, KOCH_SIAMESE_METHOD,
                KOCH_DML_METHOD):
        return source_model(name, quick, seed)
    if name in (FROZEN_METHOD, TRANSFER_METHOD):
        return CEPretrained(fine_tune=name == TRANSFER_METHOD, quick=quick)
    if name == RAW_UP:
        return Prepared(size=UPSCALE)
    if name == OMNIGLOT_METHOD:
        return siamese("koch", quick, seed, augment=True, max_epochs=2 if quick else 50,
                       n_pairs=2000 if quick else 30000)
    for loss in LOSSES:
        if name == scratch_method(loss):
            return Prepared(siamese(loss, quick, seed, **TRANSFER), size=UPSCALE)
        if name == loss_method(loss):
            return siamese(loss, quick, seed)
    raise ValueError(f"Unknown one-shot method {name!r}.")


class Committee:
    """Several fitted Siamese nets scored together: the mean of their cosine similarities.

    ``transform`` concatenates the members' L2-normalised embeddings divided
    by sqrt(n_members), so the squared Euclidean distance between two
    samples is 2 - 2 * (mean cosine similarity): 1-NN on it picks the
    support with the highest mean cosine.
    """

    def __init__(self, members):
        self.members = members

    def transform(self, X):
        import numpy as np

        parts = []
        for m in self.members:
            E = m.transform(X)
            parts.append(E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12))
        return np.hstack(parts) / np.sqrt(len(parts))


def _preprocessed(net):
    """Wrap a :func:`pretrain_digits_cnn` network so it takes SiameseNet's (N, 1, H, W) input.

    The network was pretrained on grayscale-to-3-channel, ImageNet-normalised
    digits (``CNNFeatureExtractor``'s preprocessing); the wrapper applies the same.
    """
    import torch

    from skmetric.deep._backbones import IMAGENET_MEAN, IMAGENET_STD

    class Preprocessed(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, x):
            return self.net((x.expand(-1, 3, -1, -1) - self.mean) / self.std)

    return Preprocessed(net)


def pretrained_encoder(train_classes):
    """CE-pretrained CNN on ``train_classes`` only, frozen, wrapped for (N, 1, 8, 8) input."""
    from benchmarks.transfer import pretrain_digits_cnn

    net = pretrain_digits_cnn(source_classes=tuple(int(c) for c in train_classes), **PRETRAIN)
    return _preprocessed(net).eval()


def frozen_features(encoder, X):
    import numpy as np
    import torch

    with torch.no_grad():
        return encoder(torch.from_numpy(np.ascontiguousarray(X[:, None], dtype=np.float32))).numpy()


def upscale(X, size):
    """Bilinear upscaling of (N, h, w) images to (N, size, size), values kept in [0, 1]."""
    import numpy as np
    from scipy.ndimage import zoom

    h, w = X.shape[1:]
    return np.clip(zoom(X, (1, size / h, size / w), order=1, grid_mode=True, mode="nearest"), 0, 1)


@functools.lru_cache(maxsize=2)
def font_glyphs(quick):
    """The font-glyph classes, drawn once per run (every fold and seed trains on the same ones)."""
    from skmetric.datasets import make_font_glyphs

    return make_font_glyphs(**(GLYPHS_QUICK if quick else GLYPHS))


def with_glyphs(X, y, quick):
    """Training digits plus the font-glyph classes (labels offset past the digits)."""
    import numpy as np

    G, g = font_glyphs(quick)
    return np.concatenate([X, G]), np.concatenate([y, g + int(y.max()) + 1])


@functools.lru_cache(maxsize=2)
def glyph_alphabets(quick):
    """All font-glyph classes with the script of each class: (X, y, class_scripts)."""
    import numpy as np

    from skmetric.datasets import make_font_glyphs

    X, y, chars = make_font_glyphs(**(KOCH_GLYPHS_QUICK if quick else KOCH_GLYPHS),
                                   return_characters=True)
    return X, y, np.array([glyph_script(c) for c in chars])


def koch_split(y, class_scripts, eval_scripts=KOCH_EVAL_SCRIPTS, n_way=max(KOCH_WAYS)):
    """Omniglot-like split of glyph classes by script.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class index of each sample, 0 to ``len(class_scripts) - 1``.
    class_scripts : ndarray of str, shape (n_classes,)
        The script of each class.
    eval_scripts : sequence of str
        The evaluation alphabets (whole scripts); every other script is background.
    n_way : int
        The largest N of the episodes: every evaluation alphabet must have that many classes.

    Returns
    -------
    background : ndarray of bool, shape (n_samples,)
        The samples of the background (training) alphabets.
    alphabets : dict
        Evaluation script -> its classes (sorted ndarray).
    """
    import numpy as np

    class_scripts = np.asarray(class_scripts)
    eval_scripts = [str(s).upper() for s in eval_scripts]
    if not eval_scripts:
        raise ValueError("eval_scripts is empty; name at least one evaluation alphabet.")
    present = sorted(set(class_scripts.tolist()))
    missing = [s for s in eval_scripts if s not in present]
    if missing:
        raise ValueError(f"Evaluation script(s) {missing} have no glyph class; scripts present: "
                         f"{present}.")
    is_eval = np.isin(class_scripts, eval_scripts)
    if is_eval.all() or (~is_eval).sum() < 2:
        raise ValueError(f"The evaluation scripts {eval_scripts} leave {(~is_eval).sum()} "
                         "background class(es); training needs at least 2.")
    alphabets = {}
    for s in eval_scripts:
        classes = np.flatnonzero(class_scripts == s)
        if classes.size < n_way:
            raise ValueError(f"{n_way}-way one-shot within the {s} alphabet needs at least "
                             f"{n_way} classes; it has {classes.size}. Lower N or choose other "
                             "evaluation scripts.")
        alphabets[s] = classes
    background = ~np.isin(y, np.flatnonzero(is_eval))
    return background, alphabets


# ------------------------------- the protocol ------------------------------ #
def episodes_digest(episodes):
    """A short digest of (queries, supports, targets): equal digests, equal episodes."""
    import hashlib

    import numpy as np

    data = b"".join(np.ascontiguousarray(a).tobytes() for a in episodes[:3])
    return hashlib.sha1(data).hexdigest()[:12]


def score(fitted, episodes, retrieval, n_ways, n_episodes, row):
    """Rows of one fitted model: N-way one-shot accuracy on ``episodes`` = (X, y, classes)
    (same draw for every model) and retrieval metrics on ``retrieval`` = (X, y) or None."""
    from skmetric import evaluation as ev

    X, y, classes = episodes
    extra = {}
    if retrieval is not None:
        Xr, yr = retrieval
        E = Xr if fitted is None else fitted.transform(Xr)
        report = ev.retrieval_report(E.reshape(len(Xr), -1), yr, ks=(1, 2, 4))
        extra = {k: float(v) for k, v in report.items() if k != "cmc"}
    rows = []
    for n_way in n_ways:
        acc, ep = ev.one_shot_accuracy(fitted, X, y, n_way, n_episodes, classes=classes,
                                       random_state=SAME_EPISODES_SEED, return_episodes=True)
        rows.append({**row, "n_way": n_way, "accuracy": acc, "error": 1 - acc, "status": "ok",
                     "episodes": episodes_digest(ep), **extra})
    return rows


def run_protocol(methods, train, episodes, retrieval, n_ways, n_episodes, quick, seeds, **fields):
    """Fit every method on ``train`` = (X, y) (the glyph model once per seed, with its
    committee), score each on the same ``episodes``; rows with ``fields`` added."""
    from .registry import Context
    from .runner import make_row, timed_fit

    rows, members = [], []
    for m in methods:
        for seed in seeds if m.name in SEEDED_METHODS else seeds[:1]:
            est = m.build(Context(seed, quick))
            fit = timed_fit(est, *train) if est is not None else {}
            fit.update(getattr(est, "source_fit_", {}))  # a shared source fit: its own time
            row = {**make_row(m, **fields), "seed": seed, **fit}
            rows += score(est, episodes, retrieval, n_ways, n_episodes, row)
            members += [est] if m.name == GLYPH_METHOD else []
            accs = ", ".join(f"{r['n_way']}-way {r['accuracy']:.1%}" for r in rows[-len(n_ways):])
            print(f"  {fields.get('fold')}: {m.name} (seed {seed}): {accs}", flush=True)
        if m.name == GLYPH_METHOD and len(members) > 1:
            fit_s = sum(r["fit_time_s"] for r in rows if r["method"] == GLYPH_METHOD
                        and r["fold"] == fields.get("fold") and r["n_way"] == n_ways[0])
            row = {**make_row(m, **fields), "method": ENSEMBLE_METHOD, "fit_time_s": fit_s}
            row["seed"] = "all"
            rows += score(Committee(members), episodes, retrieval, n_ways, n_episodes, row)
    if len({(r["n_way"], r["episodes"]) for r in rows}) != len(n_ways):
        raise AssertionError("the methods were scored on different episodes")
    return rows


def held_out_classes(X, y, methods, folds, n_ways, n_episodes, quick, seeds):
    """Train on all classes but one fold, N-way one-shot on that fold's classes."""
    import numpy as np

    rows = []
    for held in folds:
        train, test = ~np.isin(y, held), np.isin(y, held)
        fold = "held out " + ",".join(map(str, held))
        rows += run_protocol(methods, (X[train], y[train]), (X, y, held), (X[test], y[test]),
                             n_ways, n_episodes, quick, seeds, dataset="digits",
                             protocol="held-out classes", fold=fold)
    return rows


def held_out_images(X, y, methods, n_ways, n_episodes, quick):
    """Train on half of every class's images, N-way one-shot on the other half."""
    import numpy as np

    rng = np.random.RandomState(0)
    train = np.zeros(len(y), bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        train[members[: members.size // 2]] = True
    test = (X[~train], y[~train])
    return run_protocol(methods, (X[train], y[train]), (*test, None), test, n_ways, n_episodes,
                        quick, (0,), dataset="digits", protocol="held-out images",
                        fold="50% | 50%")


def omniglot(methods, quick, n_episodes):
    """The paper's 20-way protocol on the Omniglot evaluation set, if present."""
    try:
        from skmetric.datasets import load_omniglot

        Xb, yb = load_omniglot(background=True)
        Xe, ye = load_omniglot(background=False)
    except Exception as exc:  # missing module, files or torchvision
        print(f"\nOmniglot: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
        return []
    # Strokes are black on white: invert so that ink is 1 (as the paper's nets see it).
    return run_protocol(methods, (255 - Xb, yb), (255 - Xe, ye, None), None, [20], n_episodes,
                        quick, (0,), dataset="omniglot", protocol="omniglot",
                        fold="background | evaluation")


def glyph_koch(methods, quick, seeds, n_ways=KOCH_WAYS, n_episodes=None, data=None,
               eval_scripts=KOCH_EVAL_SCRIPTS):
    """Koch's protocol on the glyph alphabets: train on the background scripts, N-way
    one-shot within each evaluation script (every method on the same episodes).

    ``data``: (X, y, class_scripts), default :func:`glyph_alphabets`. Rows carry the
    evaluation alphabet as ``fold``.
    """
    import numpy as np

    X, y, scripts = glyph_alphabets(quick) if data is None else data
    n_ways = sorted(n_ways, reverse=True)
    if n_ways[-1] < 2:
        raise ValueError(f"N-way episodes need N >= 2, got {n_ways}.")
    background, alphabets = koch_split(y, scripts, eval_scripts, n_ways[0])
    n_episodes = n_episodes or (KOCH_EPISODES_QUICK if quick else KOCH_EPISODES)
    rows = []
    for script, classes in alphabets.items():
        test = np.isin(y, classes)
        rows += run_protocol(methods, (X[background], y[background]), (X, y, classes),
                             (X[test], y[test]), n_ways, n_episodes, quick, seeds,
                             dataset="font glyphs", protocol=KOCH_PROTOCOL,
                             fold=script.title())
    return rows


# ------------------------------ tables and plots --------------------------- #
def _mean(rows, key="accuracy", **match):
    import numpy as np

    v = [r[key] for r in rows
         if r.get(key) is not None and all(r.get(k) == x for k, x in match.items())]
    return float(np.mean(v)) if v else None


def differences(rows, method, n_way, baseline=RAW, protocol="held-out classes"):
    """Accuracy of every fit of ``method`` minus the baseline's on the same fold and episodes."""
    import numpy as np

    mine = [r for r in rows if r["protocol"] == protocol and r["n_way"] == n_way]
    base = {r["fold"]: r["accuracy"] for r in mine if r["method"] == baseline}
    return np.array([r["accuracy"] - base[r["fold"]] for r in mine if r["method"] == method])


def table(rows, protocol, n_ways, by_fold=False, retrieval=False):
    """Markdown: mean one-shot accuracy over folds (or per fold) per method and N, or the
    retrieval metrics (``retrieval``)."""
    from .report import markdown_table

    mine = [r for r in rows if r["protocol"] == protocol]
    folds = list(dict.fromkeys(r["fold"] for r in mine))
    out = []
    for m in dict.fromkeys(r["method"] for r in mine):
        if retrieval:
            keys = ("precision@1", "recall@2", "recall@4", "mAP@R")
            vals = [_mean(mine, k, method=m, n_way=n_ways[0]) for k in keys]
            if vals[0] is not None:
                out.append({"method": m, **{k: f"{100 * v:.1f}%" for k, v in zip(keys, vals)}})
        elif by_fold:
            for n in n_ways:
                cells = {f: _mean(mine, method=m, fold=f, n_way=n) for f in folds}
                cells = {f: "" if v is None else f"{100 * v:.1f}%" for f, v in cells.items()}
                out.append({"method": m, "N": f"{n}-way", **cells})
        else:
            accs = {f"{n}-way": f"{100 * _mean(mine, method=m, n_way=n):.1f}%" for n in n_ways}
            fit = _mean(mine, "fit_time_s", method=m, n_way=n_ways[0])
            out.append({"method": m, **accs, "fit (s)": "" if fit is None else f"{fit:.1f}"})
    return markdown_table(out)


_STYLES = {
    RAW: dict(color="#444444", ls="--", marker="s"),
    RAW_UP: dict(color="#999999", ls="--", marker="s", ms=4),
    FROZEN_METHOD: dict(color="C4", ls="-.", marker="^"),
    GLYPH_METHOD: dict(color="C3", marker="o", lw=2),
    SOURCE_METHOD: dict(color="C1", marker="^", lw=2),
    SOURCE_DML_METHOD: dict(color="C0", marker="v", lw=2),
    SOURCE_DML_M8_METHOD: dict(color="C9", marker="v", lw=2.5),
    DIGITS_ONLY_METHOD: dict(color="C3", marker="o", ls=":", alpha=0.7),
    ENSEMBLE_METHOD: dict(color="C2", marker="D", lw=2),
    TRANSFER_METHOD: dict(color="C5", marker="o"),
    **{loss_method(loss): dict(color=f"C{i}", marker="o") for i, loss in enumerate(LOSSES)},
}


def plot_glyph_samples(path, n_classes=10, n_per_class=6):
    """Font-glyph classes next to scikit-learn's digits, same 8x8 format (a README figure)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from skmetric.datasets import load_digits_images, make_font_glyphs

    G, g, chars = make_font_glyphs(n_per_class=n_per_class, max_classes=n_classes, random_state=1,
                                   return_characters=True)
    D, t = load_digits_images()
    fig, axes = plt.subplots(n_classes, 2 * n_per_class + 1, figsize=(8, 0.62 * n_classes))
    for k in range(n_classes):
        axes[k, 0].text(0.5, 0.5, chars[k], fontsize=13, ha="center", va="center")
        for j in range(n_per_class):
            axes[k, j + 1].imshow(G[k * n_per_class + j], cmap="gray_r", vmin=0, vmax=1)
            digit = D[np.flatnonzero(t == k % 10)[j]]
            axes[k, j + 1 + n_per_class].imshow(digit, cmap="gray_r", vmin=0, vmax=1)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle("Left: letter classes drawn by make_font_glyphs (8x8).  "
                 "Right: scikit-learn digits.", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


_FOLD_MARKERS = "os^DvP*X"


def _padded(values, pad=0.12, floor=None, ceil=None):
    """Axis limits around ``values`` with a margin of ``pad`` of their range."""
    import numpy as np

    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    margin = max(hi - lo, 1.0) * pad
    lo, hi = lo - margin, hi + margin
    return (lo if floor is None else max(lo, floor)), (hi if ceil is None else min(hi, ceil))


def plot(rows, ways_classes, ways_images, path, note=""):
    """Top: mean one-shot accuracy per method and N, the axis scaled to the data (chance is
    written, not drawn, when it lies far below). Bottom: the claim, each fit's accuracy minus
    raw-pixel 1-NN on the same episodes (one marker per fold and seed, a bar at the mean),
    with a zero line. Legends sit outside the axes."""
    import matplotlib.pyplot as plt
    import numpy as np

    n_folds = len({r["fold"] for r in rows if r["protocol"] == "held-out classes"})
    panels = [("held-out classes", ways_classes,
               f"Held-out digit classes (mean over {n_folds} class fold(s))")]
    if any(r["protocol"] == "held-out images" for r in rows):
        panels.append(("held-out images", ways_images, "Held-out images of the training classes"))
    fig, axes = plt.subplots(2, len(panels), figsize=(4.6 * len(panels) + 4.2, 7.4),
                             squeeze=False, sharex="col", gridspec_kw=dict(height_ratios=(3, 2)))
    handles = {}
    for col, (protocol, n_ways, title) in enumerate(panels):
        ax, dx = axes[0, col], axes[1, col]
        mine = [r for r in rows if r["protocol"] == protocol]
        methods = list(dict.fromkeys(r["method"] for r in mine))
        learned = [m for m in methods if m not in (RAW, RAW_UP)]
        shown = []
        for m in methods:
            acc = 100 * np.array([_mean(mine, method=m, n_way=n) for n in n_ways])
            (line,) = ax.plot(n_ways, acc, **_STYLES.get(m, dict(marker="o")))
            handles.setdefault(m, line)
            shown.append(acc)
        ax.set_ylim(*_padded(shown, ceil=100.5))
        chance = ", ".join(f"{n}-way {100 / n:.0f}%" for n in n_ways)
        ax.set(ylabel="one-shot accuracy (%)", xticks=n_ways)
        ax.set_title(f"{title}\n(axis cut to the data; chance: {chance})", fontsize=9)
        ax.grid(alpha=0.3)
        # The claim: the learned embeddings minus raw pixels on the same episodes.
        folds = list(dict.fromkeys(r["fold"] for r in mine))
        span = max(1, n_ways[-1] - n_ways[0])
        offsets = np.linspace(-0.1, 0.1, len(learned)) * span if len(learned) > 1 else [0.0]
        half = 0.04 * span  # half the width of a mean bar
        diffs = [0.0]
        for i, m in enumerate(learned):
            style = _STYLES.get(m, dict(color=f"C{i}"))
            for n in n_ways:
                x = n + offsets[i]
                base = {r["fold"]: r["accuracy"] for r in mine
                        if r["method"] == RAW and r["n_way"] == n}
                for k, f in enumerate(folds):
                    d = [100 * (r["accuracy"] - base[f]) for r in mine
                         if (r["method"], r["n_way"], r["fold"]) == (m, n, f) and f in base]
                    sc = dx.scatter(np.full(len(d), x), d, s=22, color=style.get("color"),
                                    marker=_FOLD_MARKERS[k % len(_FOLD_MARKERS)],
                                    edgecolor="k", linewidth=0.4, zorder=3)
                    if len(folds) > 1:
                        handles.setdefault(f"fold: {f}", dx.scatter([], [], s=22, color="w",
                                           edgecolor="k", marker=_FOLD_MARKERS[k % 8]))
                    diffs += d
                mean = differences(rows, m, n, protocol=protocol)
                if mean.size:
                    dx.hlines(100 * mean.mean(), x - half, x + half, color=style.get("color"),
                              lw=2.5)
                    dx.annotate(f"{100 * mean.mean():+.1f}", (x + half, 100 * mean.mean()),
                                xytext=(3, -3), textcoords="offset points", fontsize=7)
        dx.axhline(0, color="k", lw=1)
        dx.set_ylim(*_padded(diffs, pad=0.15))
        dx.set(xlabel="N-way", ylabel="minus raw-pixel 1-NN (points)", xticks=n_ways)
        dx.set_title("gain over raw pixels (8x8), same episodes; bar: mean, "
                     "marker: fold x seed", fontsize=8)
        dx.grid(alpha=0.3)
    handles["bar: mean gain"] = plt.Line2D([], [], color="k", lw=2.5)
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="center left",
               bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle("Learned embeddings vs raw-pixel 1-NN, N-way one-shot on scikit-learn digits "
                 "(same episodes)" + note, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


_KOCH_STYLES = {RAW: dict(color="#444444", marker="s"),
                KOCH_SIAMESE_METHOD: dict(color="C1", marker="^"),
                KOCH_DML_METHOD: dict(color="C0", marker="v")}


def plot_koch(rows, path, n_ways=KOCH_WAYS, note=""):
    """Koch's protocol on the glyph alphabets: accuracy per method and N (mean, with every
    alphabet and seed), chance and the paper's Omniglot numbers marked; and each fit's
    accuracy minus raw 1-NN on the same episodes, with a zero line."""
    import matplotlib.pyplot as plt
    import numpy as np

    n_ways = sorted(n_ways, reverse=True)
    mine = [r for r in rows if r["protocol"] == KOCH_PROTOCOL]
    methods = list(dict.fromkeys(r["method"] for r in mine))
    folds = list(dict.fromkeys(r["fold"] for r in mine))
    learned = [m for m in methods if m != RAW]
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw=dict(width_ratios=(3, 2)))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        style = _KOCH_STYLES.get(m, dict(color=f"C{i + 2}", marker="o"))
        for j, n in enumerate(n_ways):
            x = j + (i - (len(methods) - 1) / 2) * width
            each = [100 * r["accuracy"] for r in mine if r["method"] == m and r["n_way"] == n]
            ax.bar(x, np.mean(each), width * 0.9, color=style["color"], alpha=0.35,
                   label=m if j == 0 else None)
            ax.scatter(np.full(len(each), x), each, s=14, color=style["color"], zorder=3)
            ax.text(x, max(each) + 1.5, f"{np.mean(each):.1f}", ha="center", fontsize=7)
    for j, n in enumerate(n_ways):
        ax.hlines(100 / n, j - 0.45, j + 0.45, color="#888888", ls=":", lw=1.5,
                  label="chance (1/N)" if j == 0 else None)
        if n == 20:  # the paper's Omniglot numbers, 20-way within an alphabet
            for (name, acc), ls in zip(KOCH_PAPER.items(), ("--", "-.")):
                ax.hlines(100 * acc, j - 0.45, j + 0.45, color="k", ls=ls, lw=1,
                          label=f"Koch et al. 2015, Omniglot (other data): {name} "
                          f"{100 * acc:.1f}%")
    ax.set(xticks=range(len(n_ways)), xticklabels=[f"{n}-way" for n in n_ways],
           ylabel="one-shot accuracy (%)", ylim=(0, 100))
    ax.set_title(f"Accuracy within the evaluation alphabets ({', '.join(folds)});\n"
                 "bars: mean, dots: each alphabet and seed", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2)
    # Right: the claim, each fit minus raw pixels on the same episodes.
    width = 0.8 / max(1, len(learned))
    for i, m in enumerate(learned):
        style = _KOCH_STYLES.get(m, dict(color=f"C{i + 2}"))
        for j, n in enumerate(n_ways):
            x = j + (i - (len(learned) - 1) / 2) * width
            base = {r["fold"]: r["accuracy"] for r in mine if r["method"] == RAW
                    and r["n_way"] == n}
            for k, f in enumerate(folds):
                d = [100 * (r["accuracy"] - base[f]) for r in mine
                     if (r["method"], r["n_way"], r["fold"]) == (m, n, f)]
                dx.scatter(np.full(len(d), x + (k - 1) * 0.04), d, s=18, color=style["color"],
                           marker=_FOLD_MARKERS[k % len(_FOLD_MARKERS)], zorder=3,
                           edgecolor="k", linewidth=0.3)
                if (i, j) == (0, 0):  # a neutral legend entry per alphabet
                    dx.scatter([], [], s=18, color="w", edgecolor="k", label=f,
                               marker=_FOLD_MARKERS[k % len(_FOLD_MARKERS)])
            mean = 100 * differences(rows, m, n, protocol=KOCH_PROTOCOL).mean()
            dx.hlines(mean, x - width * 0.35, x + width * 0.35, color=style["color"], lw=2.5)
            dx.annotate(f"{mean:+.1f}", (x + width * 0.35, mean), xytext=(2, -3),
                        textcoords="offset points", fontsize=7)
    dx.axhline(0, color="k", lw=1)
    dx.set(xticks=range(len(n_ways)), xticklabels=[f"{n}-way" for n in n_ways],
           ylabel="accuracy minus raw-pixel 1-NN (points)", xlim=(-0.6, len(n_ways) - 0.4))
    dx.set_title("Gain over raw pixels, same episodes;\nline: mean, markers: alphabet "
                 "(each seed)", fontsize=9)
    dx.grid(axis="y", alpha=0.3)
    dx.legend(fontsize=7, title="evaluation alphabet", title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Koch's one-shot protocol on make_font_glyphs' alphabets (8x8): trained on "
                 "Latin/Greek/Cyrillic, tested on unseen scripts" + note, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def summary_text(rows, folds, ways_classes, ways_images):
    lines = [f"## Held-out classes (the paper's protocol), mean over folds {folds}, same episodes:",
             table(rows, "held-out classes", ways_classes),
             "Retrieval within the held-out classes (embedding vs raw pixels, leave-one-out):",
             table(rows, "held-out classes", ways_classes, retrieval=True)]
    for n in ways_classes:
        for method in (SOURCE_METHOD, SOURCE_DML_METHOD, SOURCE_DML_M8_METHOD, GLYPH_METHOD,
                       ENSEMBLE_METHOD,
                       DIGITS_ONLY_METHOD):
            d = differences(rows, method, n)
            if d.size:
                each = ", ".join(f"{100 * v:+.1f}" for v in d)
                lines.append(f"{method} minus raw 1-NN, {n}-way: mean {100 * d.mean():+.1f} points "
                             f"over {d.size} fits (per fold and seed: {each})")
    lines += ["Per fold (one-shot accuracy, same episodes):",
              table(rows, "held-out classes", ways_classes, by_fold=True)]
    if any(r["protocol"] == "held-out images" for r in rows):
        lines += ["## Held-out images of the training classes (50/50 split per class, 8x8 input)",
                  table(rows, "held-out images", ways_images),
                  "Retrieval within the held-out images:",
                  table(rows, "held-out images", ways_images, retrieval=True)]
    if any(r["protocol"] == "omniglot" for r in rows):
        lines += ["## Omniglot 20-way (paper: 92.0% Siamese, 21.7% raw 1-NN)",
                  table(rows, "omniglot", [20])]
    return "\n\n".join(lines)


def koch_summary(rows, seeds, n_ways=KOCH_WAYS):
    """Markdown summary of Koch's protocol on the glyph alphabets."""
    from .report import markdown_table

    n_ways = sorted(n_ways, reverse=True)
    mine = [r for r in rows if r["protocol"] == KOCH_PROTOCOL]
    alphabets = list(dict.fromkeys(r["fold"] for r in mine))
    out = []
    for m in dict.fromkeys(r["method"] for r in mine):
        cells = {}
        for n in n_ways:
            cells[f"{n}-way"] = f"{100 * _mean(mine, method=m, n_way=n):.1f}%"
            if m != RAW:
                d = differences(rows, m, n, protocol=KOCH_PROTOCOL)
                cells[f"{n}-way"] += f" ({100 * d.mean():+.1f})"
        fits = {(r["seed"], r.get("fit_time_s"), r.get("cpu_time_s")) for r in mine
                if r["method"] == m and r.get("fit_time_s") is not None}
        cpu = _mean(mine, "cpu_time_s", method=m, n_way=n_ways[0])
        wall = _mean(mine, "fit_time_s", method=m, n_way=n_ways[0])
        out.append({"method": m, **cells, "seeds": len({f[0] for f in fits}) or "",
                    "fit CPU (s)": "" if cpu is None else f"{cpu:.0f}",
                    "fit wall (s)": "" if wall is None else f"{wall:.0f}"})
    ref = ", ".join(f"{k} {100 * v:.1f}%" for k, v in KOCH_PAPER.items())
    lines = [f"## Koch's protocol on the glyph alphabets: trained on the background scripts, "
             f"N-way one-shot within each evaluation alphabet ({', '.join(alphabets)}); mean over "
             f"the alphabets and seeds {list(seeds)}, same episodes for every method "
             "(in brackets: points above raw 1-NN):",
             markdown_table(out),
             f"Reference, Koch et al. (2015), Omniglot 20-way within an alphabet: {ref}. Not the "
             "same data (105x105 hand drawings of 50 alphabets; here 8x8 font glyphs).",
             "Per evaluation alphabet (one-shot accuracy, same episodes, mean over seeds):",
             table(rows, KOCH_PROTOCOL, n_ways, by_fold=True)]
    for n in n_ways:
        for m in (KOCH_SIAMESE_METHOD, KOCH_DML_METHOD):
            d = differences(rows, m, n, protocol=KOCH_PROTOCOL)
            if d.size:
                each = ", ".join(f"{100 * v:+.1f}" for v in d)
                lines.append(f"{m} minus raw 1-NN, {n}-way: mean {100 * d.mean():+.1f} points over "
                             f"{d.size} (alphabet, seed) pairs ({each})")
    return "\n\n".join(lines)


def run_glyph_koch(args, seeds):
    """``--glyph-koch``: Koch's protocol on the glyph alphabets, its report and figure."""
    from . import registry, report, runner

    quick = args.quick
    X, y, scripts = glyph_alphabets(quick)
    background, alphabets = koch_split(y, scripts)
    sizes = ", ".join(f"{s.title()} {c.size}" for s, c in alphabets.items())
    n_bg = len(set(y[background].tolist()))
    print(f"Koch's protocol on the glyph alphabets ({'quick' if quick else 'full'}): "
          f"{n_bg} background classes ({', '.join(sorted(set(scripts) - set(alphabets)))}); "
          f"evaluation alphabets: {sizes} classes; "
          f"{KOCH_EPISODES_QUICK if quick else KOCH_EPISODES} episodes per alphabet and N")
    rows = glyph_koch(registry.select([RAW, KOCH_SIAMESE_METHOD, KOCH_DML_METHOD]), quick, seeds)
    text = "\n\n".join([koch_summary(rows, seeds), *runner.warning_lines(rows)])
    print("\n" + text)
    tag = "quick" if quick else "full"
    report.write(args.out, f"oneshot_glyph_koch_{tag}", rows, text)
    png = args.out / f"oneshot_glyph_koch_{tag}.png"
    plot_koch(rows, png, note="\nquick run: 2 epochs, 5 images per class, 100 episodes" if quick
              else "")
    if not quick:
        import shutil

        shutil.copy(png, report.FIGURES / "oneshot_glyph_koch.png")
    print(f"Wrote {png}")
    return 0


def main(argv=None):
    p = parser("python -m benchmarks.bench_oneshot", __doc__,
               quick="one fold, fewer epochs and episodes")
    p.add_argument("--scratch", action="store_true",
                   help="also train the from-scratch 16x16 binomial deviance Siamese net per fold")
    p.add_argument("--all-losses", action="store_true",
                   help="also train from-scratch Koch, contrastive and binomial deviance "
                   "models per fold")
    p.add_argument("--ce-init", action="store_true",
                   help="also score a CE-pretrained CNN (frozen, and as a Siamese init)")
    p.add_argument("--images", action="store_true",
                   help="also run protocol 2 (held-out images of the training classes)")
    p.add_argument("--n-seeds", type=int, default=None,
                   help=f"seeds per seeded model (default {len(SEEDS)}; quick: 1): --seed, "
                   "--seed + 1, ...")
    p.add_argument("--source-only", action="store_true",
                   help="only the raw pixels and the glyph-only (source-domain) models, which "
                   "fit once per seed (no per-fold fits, no Omniglot)")
    p.add_argument("--glyph-koch", action="store_true",
                   help="only Koch's protocol on the glyph alphabets: train on the background "
                   f"scripts, {'/'.join(map(str, KOCH_WAYS))}-way one-shot within the evaluation "
                   f"scripts ({', '.join(s.title() for s in KOCH_EVAL_SCRIPTS)})")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared machine more threads spin; "
                   "2 threads ran 3x slower than 1 on 2 loaded cores)")
    args = p.parse_args(argv)
    import matplotlib
    import torch

    matplotlib.use("Agg")
    torch.set_num_threads(args.threads)
    from skmetric.datasets import load_digits_images

    from . import registry, report, runner

    quick = args.quick
    n_seeds = args.n_seeds or (1 if quick else len(SEEDS))
    seeds = tuple(range(args.seed, args.seed + n_seeds))
    if args.glyph_koch:
        return run_glyph_koch(args, seeds)
    X, y = load_digits_images()
    n_episodes, folds = (200, FOLDS[:1]) if quick else (1000, FOLDS)
    scratch = LOSSES if args.all_losses else ("binomial_deviance",) if args.scratch else ()
    ways_classes, ways_images = [2, 3], [2, 5, 10]
    print(f"Digits one-shot ({'quick' if quick else 'full'}): {n_episodes} episodes per N and fold")
    names = [RAW, RAW_UP, SOURCE_METHOD, SOURCE_DML_METHOD, SOURCE_DML_M8_METHOD]
    if not args.source_only:
        names += [GLYPH_METHOD, DIGITS_ONLY_METHOD,
                  *((FROZEN_METHOD, TRANSFER_METHOD) if args.ce_init else ()),
                  *map(scratch_method, scratch)]
    rows = held_out_classes(X, y, registry.select(names), folds, ways_classes, n_episodes, quick,
                            seeds)
    if args.images:
        methods = registry.select([RAW, *map(loss_method, LOSSES)])
        rows += held_out_images(X, y, methods, ways_images, n_episodes, quick)
    if not args.source_only:
        rows += omniglot(registry.select([RAW, OMNIGLOT_METHOD]), quick, 100 if quick else 400)
    text = summary_text(rows, folds, ways_classes, ways_images)
    text = "\n\n".join([text, *runner.warning_lines(rows)])
    print("\n" + text)
    tag = "quick" if quick else "full"
    report.write(args.out, f"oneshot_{tag}", rows, text)
    png = args.out / f"oneshot_digits_{tag}.png"
    note = "\nquick run: 1 fold, 200 episodes" if quick else ""
    if args.source_only:
        note += (f"\n(--source-only: no digit in training; seed(s) {', '.join(map(str, seeds))},"
                 " 1 fit per seed)")
    plot(rows, ways_classes, ways_images, png, note=note)
    if not quick:
        import shutil

        shutil.copy(png, report.FIGURES / "oneshot_digits.png")
        plot_glyph_samples(report.FIGURES / "font_glyphs.png")
    print(f"Wrote {png}" + ("" if quick else f" and {report.FIGURES / 'oneshot_digits.png'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
