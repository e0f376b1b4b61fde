"""What every trained embedding network shares (SiameseNet, DeepMetricLearner).

Input checks for vectors or images, the encoder (a default one, a user
module or a module class), batched embedding and ``transform``. The training
itself is the engine's (:mod:`skmetric.deep._engine`). torch is imported lazily.
"""

import copy
import math
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples, check_is_fitted, column_or_1d, validate_data

from .._init import check_float32_range
from .._optional import import_torch
from .._validation import FLOAT_DTYPES, check_labeled_data
from ..base import LabelSupervisedMixin
from ..evaluation import one_shot_episodes
from ._engine import (
    TrainingMixin,
    can_hold_out_classes,
    class_disjoint_split,
    class_folds,
    draw_seed,
    forward_in_batches,
    held_out_class_count,
    n_class_folds,
    stratified_split,
)
from ._images import as_image_batch, is_image_input, stack_samples

__all__ = ["ENCODER_CONSTRAINTS", "VALIDATION_CONSTRAINTS", "EmbeddingNetMixin"]

# The encoder parameters of every embedding network.
ENCODER_CONSTRAINTS = {
    "encoder": "no_validation",  # None, a module or a module class: checked in _build_encoder
    "encoder_params": [None, dict],
    "embedding_dim": [Interval(Integral, 1, None, closed="left")],
    "hidden_layer_sizes": [tuple, list],
    "conv_channels": [None, tuple, list],
    "encoder_init": [StrOptions({"pca", "random"})],
}

# How the validation samples of early stopping are chosen.
VALIDATION_CONSTRAINTS = {
    "validation": [StrOptions({"auto", "class_disjoint", "class_folds", "stratified"}), None],
}

_INFERENCE_BATCH = 1024
# The transfer score of class-disjoint validation: fixed N-way one-shot episodes
# drawn once per fit from the held-out classes.
VALID_N_WAY = 5
VALID_EPISODES = 1000
# Class-fold validation ('class_folds', and 'auto' when a single split would hold out
# fewer than VALID_N_WAY classes): at most this many groups of classes, each held out once.
MAX_CLASS_FOLDS = 3


class EmbeddingNetMixin(ClassNamePrefixFeaturesOutMixin, LabelSupervisedMixin, TrainingMixin, TransformerMixin):
    """Label-supervised embedding network: validated input, encoder, ``transform``.

    The trained module is ``module_``, a ``ModuleDict`` whose 'encoder' maps a
    float32 batch (N, C, H, W) or (N, d) to (N, embedding_dim_).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ input
    def _validate_fit_input(self, X, y, min_class_size=1):
        """(X as float32 network input, encoded y); every check before training.

        ``min_class_size=2``: at least one class must have two samples.
        """
        name = type(self).__name__
        X = stack_samples(X)
        if is_image_input(X):
            if y is None:
                raise ValueError(f"{name} requires y to be passed, but the target y is None.")
            images = as_image_batch(X)
            y = column_or_1d(y, warn=True)
            if y.shape[0] != images.shape[0]:
                raise ValueError(f"X has {images.shape[0]} images but y has {y.shape[0]} labels.")
            check_classification_targets(y)
            classes, y_enc = np.unique(y, return_inverse=True)
            if classes.size < 2:
                raise ValueError(f"{name} needs at least 2 classes in y, got 1 class.")
            self.input_kind_ = "image"
            for attr in ("n_features_in_", "feature_names_in_"):
                if hasattr(self, attr):
                    delattr(self, attr)
            Xn = images
        else:
            try:
                n = _num_samples(X)
            except TypeError:
                n = None
            if n is not None and n < 2:
                raise ValueError(f"{name} needs at least 2 samples, got {n} sample(s).")
            Xv, y_enc, classes = check_labeled_data(self, X, y, dtype=FLOAT_DTYPES)
            check_float32_range(Xv, self)  # 1e150 would be inf, 1e-150 zero in float32
            self.input_kind_ = "vector"
            Xn = Xv.astype(np.float32)
        if min_class_size > 1 and np.bincount(y_enc).max() < min_class_size:
            raise ValueError(
                f"{name} needs a class with at least 2 samples to form same-class "
                "pairs; every class has a single sample."
            )
        self.classes_ = classes
        self.input_shape_ = tuple(Xn.shape[1:])
        return Xn, y_enc.astype(np.intp)

    def _validate_samples(self, X):
        """Network input for transform (float32 images; float32 or float64 vectors) and its dtype."""
        check_is_fitted(self, "module_")
        X = stack_samples(X)
        if self.input_kind_ == "image":
            images = as_image_batch(X, copy=False)
            if tuple(images.shape[1:]) != self.input_shape_:
                raise ValueError(
                    f"Images have shape {images.shape[1:]} (C, H, W), but "
                    f"{type(self).__name__} was fitted on {self.input_shape_}."
                )
            return images, np.float32
        Xv = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        return Xv, Xv.dtype

    # ------------------------------------------------------------- validation
    def _split_for_validation(self, y, rng):
        """(idx_train, idx_val, kind): the samples early stopping validates on.

        ``kind`` is 'class_disjoint' (whole held-out classes, scored by one-shot
        accuracy), 'class_folds' (the same, rotated over groups of classes to
        choose the number of epochs; ``idx_train`` is every sample and
        ``idx_val`` None), 'stratified' (held-out samples of every class,
        scored by the loss) or None (no validation: ``idx_val`` is None).
        """
        kind, fraction = self.validation, self.validation_fraction
        for attr in ("fold_scores_", "fold_raw_scores_", "raw_geometry_"):  # of an earlier fit
            self.__dict__.pop(attr, None)
        if not fraction:
            kind = None
        if kind == "auto":
            if can_hold_out_classes(y, fraction) and held_out_class_count(y, fraction) >= VALID_N_WAY:
                kind = "class_disjoint"
            elif self._n_class_folds(y) >= 2:
                kind = "class_folds"
            else:
                kind = None
                if self._starts_at_raw_geometry():
                    warnings.warn(
                        f"{type(self).__name__}: validation='auto' checks on whole held-out "
                        "classes that training helps on new classes, which needs at least 4 "
                        f"classes with 2+ samples (y has {np.unique(y).size} classes); without "
                        "that check the raw-input geometry is kept untrained (raw_geometry_=True: "
                        "transform returns the flattened input). Pass validation=None to train "
                        "for max_epochs without validation, or validation='stratified' for a "
                        "model of these classes only.",
                        UserWarning,
                    )
        if kind is None:
            return np.arange(y.shape[0]), None, None
        if kind == "class_folds":
            class_folds(y, max(2, self._n_class_folds(y)), rng)  # raises if y cannot be folded
            return np.arange(y.shape[0]), None, kind
        if kind == "class_disjoint":
            idx_train, idx_val = class_disjoint_split(y, fraction, rng, type(self).__name__)
        else:
            idx_train, idx_val = stratified_split(y, fraction, rng)
        return idx_train, idx_val, kind

    def _starts_at_raw_geometry(self):
        """Whether the raw input is the reference model: the default encoder with its PCA start.

        Its untrained embedding starts from the raw-input geometry, so the
        raw input itself (Euclidean distances of the flattened input) is the
        model that training must beat on the held-out classes, and the one
        returned when it does not (:meth:`_train`). A user's encoder or a
        random start has no such reference: its untrained weights are it.
        """
        from .encoders import MAX_SKIP_FEATURES

        return (self.encoder is None and self.encoder_init == "pca"
                and math.prod(self.input_shape_) <= MAX_SKIP_FEATURES)

    def _auto_could_not_validate(self):
        """'auto' found no classes to hold out and the raw input is the reference: no training."""
        return (self.validation == "auto" and bool(self.validation_fraction)
                and self.validation_kind_ is None and self._starts_at_raw_geometry())

    def _train(self, Xn, y, idx_train, idx_val, rng, seed=None):
        """Train as ``validation_kind_`` says; returns the (train, valid) data of the final run.

        Class folds, or one engine run (no epoch at all when 'auto' could not
        validate). ``seed`` (the engine's) is drawn from ``rng`` when None:
        before the class folds, after the training data otherwise. The raw
        input is kept (``raw_geometry_``) when training did not beat it on
        the held-out classes, or when 'auto' could not check.
        """
        if self.validation_kind_ == "class_folds":
            seed = draw_seed(rng) if seed is None else seed
            train, valid, keep_raw = self._fit_class_folds(Xn, y, rng, seed)
        else:
            one_shot = self.validation_kind_ == "class_disjoint"
            train, valid = self._training_data(Xn, y, idx_train, idx_val, rng, one_shot=one_shot)
            seed = draw_seed(rng) if seed is None else seed
            untrained = self._auto_could_not_validate()
            try:
                self._fit_engine(train, valid, seed, n_epochs=0 if untrained else None)
            finally:
                self.__dict__.pop("_init_data", None)
            keep_raw = untrained or self._raw_beats_training()
        self.raw_geometry_ = bool(keep_raw)
        if keep_raw:  # transform and the pair scores give exactly the raw-input distances
            from .encoders import RawInput

            self.module_["encoder"] = RawInput().to(self.device_)
            self.embedding_dim_ = int(math.prod(self.input_shape_))
            self.best_epoch_ = 0
        return train, valid

    def _raw_beats_training(self):
        """One class-disjoint split: no epoch was kept, or the raw input scored as well (+ ``tol``)."""
        raw = getattr(self, "initial_scores_", {}).get("valid_one_shot_raw")
        if raw is None:
            return False
        if self.best_epoch_ == 0:
            return True
        return self.history_[self.best_epoch_ - 1]["valid_one_shot"] <= raw + self.tol

    def _epoch_size(self, n_train):
        """Samples (or pairs) one epoch draws when ``n_train`` samples are trained on."""
        return n_train

    @staticmethod
    def _n_class_folds(y):
        """Groups of class-fold validation: up to MAX_CLASS_FOLDS (0: ``y`` cannot be folded)."""
        return n_class_folds(y, MAX_CLASS_FOLDS)

    def _fit_class_folds(self, Xn, y, rng, seed):
        """Class-fold validation: choose the number of epochs, then train on every class.

        The classes are cut into ``k`` groups (:func:`class_folds`); for each,
        a model is trained on the other classes with class-disjoint early
        stopping on the group (one-shot accuracy of the untrained weights
        and of every epoch, and of the raw input for the default encoder),
        without the user's callbacks. The reference is the raw input (a
        user's encoder: its untrained weights): a number of epochs is a
        candidate when its one-shot score, averaged over the groups, beats
        the reference by more than the standard error of the paired
        difference over the episodes (a run stopped early keeps its last
        score), and the best candidate is chosen. The model is then trained
        on all the samples for as many optimisation steps (the epochs
        rescaled by the epoch sizes). Returns the (train, valid) data of the
        final run and whether the raw input is kept instead (no candidate).
        """
        curves, raws, sizes = [], [], []
        try:
            for idx_train, idx_val in class_folds(y, self._n_class_folds(y), rng):
                train, valid = self._training_data(Xn, y, idx_train, idx_val, rng, one_shot=True)
                self._episode_log = {"model": [], "raw": None}
                self._fit_engine(train, valid, draw_seed(rng), user_callbacks=False)
                curves.append(np.array(self._episode_log["model"]))  # (epochs + 1, episodes)
                raws.append(self._episode_log["raw"])
                sizes.append(self._epoch_size(idx_train.size))
        finally:
            self.__dict__.pop("_episode_log", None)
            self.__dict__.pop("_init_data", None)
        has_raw = raws[0] is not None
        # A run stopped early keeps its last score for the epochs it did not run.
        n = max(c.shape[0] for c in curves)
        curves = [np.concatenate([c, np.repeat(c[-1:], n - c.shape[0], axis=0)]) for c in curves]
        gain = [c - (r if has_raw else c[0]) for c, r in zip(curves, raws)]
        mean = np.mean([g.mean(axis=1) for g in gain], axis=0)
        se = np.sqrt(np.sum([g.var(axis=1, ddof=1) / g.shape[1] for g in gain], axis=0)) / len(gain)
        mean = np.where(mean > se, mean, -np.inf)
        # The reference is no candidate: the raw input (returned when nothing beats it), or
        # the untrained weights (kept when nothing beats them).
        mean[0] = -np.inf if has_raw else 0.0
        keep_raw = not np.isfinite(mean).any()
        epochs = 0 if keep_raw else int(np.argmax(mean))
        if epochs:  # as many optimisation steps as in the folds
            epochs = max(1, int(round(epochs * np.mean(sizes) / self._epoch_size(y.size))))
        self.fold_scores_ = [c.mean(axis=1).tolist() for c in curves]
        if has_raw:
            self.fold_raw_scores_ = [float(r.mean()) for r in raws]
        train, _ = self._training_data(Xn, y, np.arange(y.shape[0]), None, rng)
        try:
            self._fit_engine(train, None, seed, n_epochs=epochs)
        finally:
            self.__dict__.pop("_init_data", None)
        self.best_epoch_ = epochs
        return train, None, keep_raw

    def _one_shot_data(self, X, y, idx_val, rng):
        """Fixed one-shot episodes among the validation classes (indices into ``X``)."""
        y_val = y[idx_val]
        n_way = int(min(VALID_N_WAY, np.unique(y_val).size))
        q, s, t = one_shot_episodes(y_val, n_way, VALID_EPISODES, random_state=rng)
        used, inv = np.unique(np.concatenate([q, s.ravel()]), return_inverse=True)
        return {
            "X": X,
            "idx": idx_val[used],
            "queries": inv[: q.size],
            "supports": inv[q.size :].reshape(s.shape),
            "targets": t,
        }

    def _pair_similarity(self, Ea, Eb):
        """Similarity of embedded pairs (numpy, higher = more alike): minus the Euclidean distance."""
        return -np.sqrt(((Ea - Eb) ** 2).sum(-1))

    def _valid_one_shot(self, data, raw=False):
        """One-shot accuracy of the current weights (``raw``: of the raw input) on the fixed episodes."""
        X = data["X"][data["idx"]]
        if raw:  # the raw input, Euclidean
            E = X.reshape(X.shape[0], -1).astype(np.float64)
            similarity = EmbeddingNetMixin._pair_similarity
        else:
            E = self._embed(X).astype(np.float64)
            similarity = type(self)._pair_similarity
        q, s = data["queries"], data["supports"]
        sim = similarity(self, np.repeat(E[q], s.shape[1], axis=0), E[s.ravel()])
        correct = (np.argmax(sim.reshape(s.shape), axis=1) == data["targets"]).astype(np.float64)
        log = getattr(self, "_episode_log", None)
        if log is not None:  # class-fold validation keeps the paired outcomes
            if raw:
                log["raw"] = correct
            else:
                log["model"].append(correct)
        return float(np.mean(correct))

    def _early_stopping_monitor(self):
        if getattr(self, "validation_kind_", None) in ("class_disjoint", "class_folds"):
            return "valid_one_shot", False
        return "valid_loss", True

    def initial_record(self, valid_data):
        if valid_data is None or "one_shot" not in valid_data:
            return {}
        record = {"valid_one_shot": self._valid_one_shot(valid_data["one_shot"])}
        if self._starts_at_raw_geometry():  # the reference training must beat
            record["valid_one_shot_raw"] = self._valid_one_shot(valid_data["one_shot"], raw=True)
        return record

    def on_epoch_record(self, record, valid_data):
        if valid_data is not None and "one_shot" in valid_data:
            record["valid_one_shot"] = self._valid_one_shot(valid_data["one_shot"])

    # ---------------------------------------------------------------- encoder
    def _build_encoder(self, out_activation=None):
        """The encoder (a fresh module) and its embedding size.

        ``self.encoder``: None (default encoder for the input kind), a module
        instance (deep-copied), or a module class (built with ``encoder_params``).
        """
        torch = import_torch(type(self).__name__)
        extra = dict(self.encoder_params or {})
        enc = self.encoder
        if enc is None:
            from .encoders import default_encoder

            init_data = getattr(self, "_init_data", None) if self.encoder_init == "pca" else None
            encoder = default_encoder(
                self.input_shape_,
                self.embedding_dim,
                out_activation=out_activation,
                hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                channels=self.conv_channels,
                init_data=init_data,
                **extra,
            )
            return encoder, int(self.embedding_dim)
        if isinstance(enc, type) and issubclass(enc, torch.nn.Module):
            encoder = enc(**extra)
        elif isinstance(enc, torch.nn.Module):
            encoder = copy.deepcopy(enc)
        else:
            raise ValueError(
                "encoder must be None, a torch.nn.Module or a torch.nn.Module "
                f"subclass; got {type(enc).__name__}."
            )
        with torch.no_grad():
            was_training = encoder.training
            encoder.eval()
            out = encoder(torch.zeros((1,) + self.input_shape_))
            encoder.train(was_training)
        if out.ndim != 2:
            raise ValueError(
                f"The encoder must return (batch, embedding_dim) arrays; got shape {tuple(out.shape)}."
            )
        return encoder, int(out.shape[1])

    @staticmethod
    def _unit_norm(encoder):
        """``encoder`` followed by L2 normalisation of its output rows."""
        torch = import_torch("skmetric.deep")
        from .encoders import L2Normalize

        return torch.nn.Sequential(encoder, L2Normalize())

    # -------------------------------------------------------------- inference
    def _embed(self, Xn):
        """Embeddings of network input ``Xn`` (numpy), in the precision of ``Xn``.

        float64 input runs through a float64 copy of the encoder: float32
        matrix products depend (at 1e-7) on a row's position in the batch,
        so float64 embeddings would otherwise change with the sample order.
        """
        self.module_.eval()
        encoder = self.module_["encoder"]
        if Xn.dtype == np.float64:
            encoder = copy.deepcopy(encoder).double()
        else:
            Xn = Xn.astype(np.float32, copy=False)
        if Xn.shape[0] == 0:
            return np.zeros((0, self.embedding_dim_), Xn.dtype)
        batches = (Xn[s : s + _INFERENCE_BATCH] for s in range(0, Xn.shape[0], _INFERENCE_BATCH))
        return forward_in_batches(encoder, batches, self.device_, dtype=Xn.dtype)

    def transform(self, X):
        """Embed samples with the trained encoder.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images as in fit

        Returns
        -------
        X_new : ndarray of shape (n_samples, embedding_dim_)
            float32 for float32 vectors and for images, float64 otherwise.
        """
        Xn, dtype = self._validate_samples(X)
        return self._embed(Xn).astype(dtype, copy=False)

    @property
    def _n_features_out(self):
        return self.embedding_dim_
