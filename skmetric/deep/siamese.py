"""Siamese network (Koch et al., 2015) as a scikit-learn estimator.

``SiameseNet`` learns a shared encoder (an embedding) from class labels by
training on balanced same-class / different-class pairs drawn from the labels
each epoch. After fitting, ``transform`` gives the embeddings (for a kNN
classifier), and the pair methods score pairs with the loss's own rule.

torch is imported lazily: importing this module does not import torch.
"""

import copy
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._optional import import_torch
from .._validation import check_pairs
from ..constraints import sample_pairs
from ._embedding import ENCODER_CONSTRAINTS, VALIDATION_CONSTRAINTS, EmbeddingNetMixin
from ._engine import EARLY_STOPPING_CONSTRAINTS, ENGINE_CONSTRAINTS, draw_seed
from ._images import random_affine
from .losses import LOSSES, PairLoss, get_loss

__all__ = ["SiameseNet"]

_SCORE_SEED = 0  # fixed pair draw in ``score``: the same X, y always give the same value


class SiameseNet(EmbeddingNetMixin, BaseEstimator):
    """Siamese network for metric learning from class labels.

    Two copies of one encoder map the members of a pair to embeddings; a
    pair loss compares them. Training minimises the mean loss over balanced
    pairs (half same-class, half different-class) drawn from the labels with
    :func:`skmetric.constraints.sample_pairs`, a fresh draw each epoch, with
    Adam or SGD on mini-batches. With ``loss="koch"`` this is the model of
    Koch et al. (2015): a learned weighted L1 distance between sigmoid
    embeddings, a sigmoid, and the binary cross-entropy of the same/different
    label.

    The defaults are chosen for new classes (one-shot recognition, the
    point of a Siamese net): the encoder starts at the PCA projection of
    the input (raw-input quality), the learning rate is low, and early
    stopping validates on whole held-out classes with a one-shot score,
    returning the raw input itself when training never beats it there
    (``raw_geometry_``).

    Parameters
    ----------
    encoder : None, torch.nn.Module instance or subclass, default=None
        The shared encoder. None builds the default for the input kind:
        :class:`~skmetric.deep.encoders.KochConvNet` for images,
        :class:`~skmetric.deep.encoders.MLPEncoder` for vectors. A module
        instance is deep-copied at fit (the one passed in is never trained);
        a class is instantiated with ``encoder_params``. A user encoder must
        map a float32 batch (N, C, H, W) or (N, d) to (N, embedding_dim).
    encoder_params : dict or None, default=None
        Keyword arguments for an encoder class (or extra ones for the default
        encoders).
    embedding_dim : int, default=64
        Size of the embedding of the default encoders.
    hidden_layer_sizes : tuple of int, default=(128,)
        Hidden layers of the default MLP encoder (vector input).
    conv_channels : tuple of int or None, default=None
        Channels of the default convnet blocks; None scales them to the input.
    encoder_init : {'pca', 'random'}, default='pca'
        Start of the default encoders. 'pca': the network is wrapped in a
        :class:`~skmetric.deep.encoders.PCASkipEncoder`, a linear path from
        the input initialised with the training data's principal axes plus
        the network, whose last layer starts at zero, so the untrained
        embedding is the PCA projection of the input (the raw-input
        distances when ``embedding_dim`` reaches the input's rank) and
        training can only move away from raw-input quality as far as the
        validation allows. 'random': the plain network (inputs of more than
        16,384 features always use it). Ignored for a user encoder.
    loss : {'koch', 'contrastive', 'binomial_deviance'} or PairLoss, default='binomial_deviance'
        See :mod:`skmetric.deep.losses`. An instance is cloned at fit.
        Binomial deviance (cosine similarity) is the default because it
        transfers to new classes best of the three (README, "defaults that
        transfer"); 'koch' is the paper's model. A loss on the cosine
        (``normalize_embeddings``, binomial deviance) gets L2-normalised
        embeddings: ``transform`` returns unit vectors, whose Euclidean
        distances rank pairs as :meth:`pair_score` does.
    optimizer : {'adam', 'adamw', 'sgd'} or torch.optim.Optimizer class, default='adam'
        'sgd' uses Nesterov momentum 0.9. Keyword arguments of the optimizer
        are passed as ``optimizer__<name>`` (e.g. ``optimizer__betas``).
    lr : float, default=1e-4
        Learning rate. A low one keeps the embedding close to its start for
        the first epochs, so that early stopping can pick the epoch that
        transfers best; with a high one (e.g. 0.1 with Adam) the Koch head
        saturates and the model predicts 0.5 for every pair.
    weight_decay : float, default=0.0
        L2 penalty passed to the optimizer.
    batch_size : int, default=32
        Pairs per gradient step.
    max_epochs : int, default=30
        Epochs; each epoch is one pass over ``n_pairs`` freshly drawn pairs.
    n_pairs : int, default=2000
        Pairs per epoch (half similar, half dissimilar).
    augment : bool, default=False
        Random affine distortions of training images (rotation, shear,
        scale, translation), as in Koch et al.; ignored for vectors.
    validation : {'auto', 'class_disjoint', 'class_folds', 'stratified'} or None, default='auto'
        The samples early stopping validates on.
        'class_disjoint': ``validation_fraction`` of the classes (rounded,
        at least 2, drawn among classes with 2+ samples) are held out whole
        and never trained on; each epoch scores N-way one-shot accuracy
        (N = min(5, held-out classes), 1000 fixed episodes, the loss's pair
        score) on them (history key 'valid_one_shot'), the untrained weights
        too (``initial_scores_``, epoch 0), and training keeps the best of
        these epochs: a transfer score, which the loss on held-out samples
        of the seen classes is not (it keeps improving while the embedding
        forgets what new classes need). With the default encoder the raw
        input itself (Euclidean distances, ``initial_scores_
        ['valid_one_shot_raw']``) is the reference: when no epoch beats it
        by ``tol`` (the untrained weights are no candidate), the raw input
        is returned instead (``raw_geometry_``). Raises a ValueError when ``y`` has fewer than 4
        classes (2 held out, 2 trained on).
        'class_folds': the same score rotated over groups of classes, for
        few classes, where one held-out pair of classes says little about
        other new classes: the classes (with 2+ samples) are cut into up to
        3 groups of 2 or more; a model is trained on the other classes for
        each group and scored on it untrained and after every epoch. A
        number of epochs is a candidate when its score averaged over the
        groups beats the reference (the raw input; a user's encoder or
        ``encoder_init='random'``: its untrained weights) by more than the
        standard error of the paired difference over the episodes; the best
        candidate is chosen and the final model trained on every class for
        as many steps, or the reference is returned when there is none (``fold_scores_`` and
        ``fold_raw_scores_`` hold the scores). About 4 times the cost of one
        fit. Raises a ValueError below 4 classes.
        'auto' (default): 'class_disjoint' when it holds out at least 5
        classes (e.g. 25 classes or more at ``validation_fraction=0.2``),
        'class_folds' with 4 to 24 classes. Below 4 classes nothing can tell
        whether training transfers to new classes: a UserWarning says so and
        the raw input is returned untrained (with a user's encoder or a
        random start, training runs without validation).
        The raw input as the model (``raw_geometry_ = True``):
        ``transform`` returns the flattened input and the pair scores are
        minus its Euclidean distances, exactly what training was compared
        with, so the model is never below the raw input on the classes the
        validation held out.
        'stratified': ``validation_fraction`` of each class's samples,
        validation loss monitored (for a model of the training classes only).
        None: no validation and no early stopping.
    validation_fraction : float, default=0.2
        Fraction of the classes ('class_disjoint') or of each class's samples
        ('stratified') held out for validation; 'class_folds' holds out
        every class once (in groups) whatever the fraction, which only
        decides what 'auto' picks. 0 disables validation.
    n_iter_no_change : int or None, default=5
        Stop when the monitored validation score has not improved by ``tol``
        for this many epochs; the best weights are restored. None disables it.
    tol : float, default=1e-4
    callbacks : list of Callback or None, default=None
        Training callbacks (:mod:`skmetric.deep.callbacks`: LRScheduler,
        Checkpoint, EarlyStopping, or your own); deep-copied at fit.
    device : str, default='auto'
        'auto' uses CUDA when available, else the CPU; or any torch device.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the pairs of every epoch and the batch order; two
        fits with the same integer give identical models on the CPU.
    verbose : int, default=0
        > 0 shows a tqdm progress bar over epochs with the losses.
    **kwargs
        ``optimizer__<name>`` parameters of the optimizer.

    Attributes
    ----------
    module_ : torch.nn.ModuleDict
        ``{'encoder': ..., 'head': ...}``; the encoder ends with the L2
        normalisation for a cosine loss; the head holds the loss's learned
        parameters (an empty module for losses without any).
    loss_ : PairLoss
    classes_ : ndarray
        Class labels seen in fit.
    input_shape_ : tuple
        Shape of one sample as the network sees it: (C, H, W) or (d,).
    n_features_in_ : int
        Number of features (vector input only).
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_scores_ : list of float
        Validation loss per epoch (empty without validation).
    history_ : list of dict
        Per epoch: 'epoch', 'train_loss', 'valid_loss', 'valid_one_shot'
        (class-disjoint validation), 'valid_accuracy' (Koch loss), 'lr',
        'dur' and the '*_best' flags (see :mod:`skmetric.deep._engine`).
    initial_scores_ : dict
        The validation scores of the untrained weights ('valid_one_shot')
        and, for the default encoder, of the raw input ('valid_one_shot_raw');
        empty without class-disjoint validation.
    validation_kind_ : {'class_disjoint', 'class_folds', 'stratified'} or None
        The validation used ('auto' resolved).
    fold_scores_ : list of list of float
        With 'class_folds' only: per group of held-out classes, the one-shot
        accuracy of the untrained weights and after each epoch.
    fold_raw_scores_ : list of float
        With 'class_folds' and the default encoder: per group, the one-shot
        accuracy of the raw input (the reference).
    validation_classes_ : ndarray
        The held-out classes (only with class-disjoint validation; the
        pair accuracy of ``score`` and the Platt calibration use them too).
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (1-based; 0: no training was kept: the
        raw input when ``raw_geometry_``, else the untrained weights of a
        user's encoder or random start).
    raw_geometry_ : bool
        True when the raw input was kept (nothing beat it on the held-out
        classes, or 'auto' could not check): ``module_['encoder']``
        is then :class:`~skmetric.deep.encoders.RawInput` (the flattened
        input), ``embedding_dim_`` the number of input features, and
        :meth:`pair_score` minus the Euclidean distance (Platt-calibrated
        for the probabilities, whatever the loss).
    embedding_dim_ : int
        Size of the embeddings ``transform`` returns.
    proba_calibration_ : (float, float) or None
        Platt-scaling (slope, intercept) mapping ``pair_score`` to a logit,
        for losses without their own probability (all but 'koch').

    Notes
    -----
    After fitting, :meth:`transform` gives the embeddings (what a kNN
    classifier uses) and pairs of samples, shape (n_pairs, 2, ...), are
    scored with :meth:`pair_score` (the loss's own similarity),
    :meth:`pair_decision_function` (same-class log-odds), :meth:`pair_proba`
    and :meth:`pair_predict`; :meth:`score` is the pair accuracy on pairs
    drawn from labelled samples.

    Classes with a single sample are allowed: they only appear in
    different-class pairs. At least two classes, and one class with two
    samples, are required.

    The default encoders do not standardise vector input: scale features
    first (e.g. a ``StandardScaler`` in a Pipeline).

    References
    ----------
    G. Koch, R. Zemel, R. Salakhutdinov. Siamese Neural Networks for One-shot
    Image Recognition. ICML Deep Learning Workshop, 2015.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric.deep.siamese import SiameseNet
    >>> X, y = load_iris(return_X_y=True)
    >>> # iris has 3 classes, too few to validate on held-out ones: validation=None
    >>> net = SiameseNet(embedding_dim=8, max_epochs=2, n_pairs=200, validation=None, random_state=0)
    >>> net.fit(X, y).transform(X).shape
    (150, 8)
    """

    _parameter_constraints = {
        **ENGINE_CONSTRAINTS,
        **ENCODER_CONSTRAINTS,
        "loss": [StrOptions(set(LOSSES)), PairLoss],
        "n_pairs": [Interval(Integral, 2, None, closed="left")],
        "augment": ["boolean"],
        **EARLY_STOPPING_CONSTRAINTS,
        **VALIDATION_CONSTRAINTS,
    }

    def __init__(
        self,
        encoder=None,
        encoder_params=None,
        embedding_dim=64,
        hidden_layer_sizes=(128,),
        conv_channels=None,
        encoder_init="pca",
        loss="binomial_deviance",
        optimizer="adam",
        lr=1e-4,
        weight_decay=0.0,
        batch_size=32,
        max_epochs=30,
        n_pairs=2000,
        augment=False,
        validation="auto",
        validation_fraction=0.2,
        n_iter_no_change=5,
        tol=1e-4,
        callbacks=None,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self._store_init_params(locals())

    # ------------------------------------------------------------------ pairs
    def _validate_pairs(self, pairs):
        """The two members of each pair, validated like samples: (A, B)."""
        check_is_fitted(self, "module_")
        if self.input_kind_ == "vector":
            pairs = check_pairs(pairs)
            if pairs.shape[2] != self.n_features_in_:
                raise ValueError(
                    f"Pairs have {pairs.shape[2]} features, but {type(self).__name__} was "
                    f"fitted with {self.n_features_in_} features."
                )
            P = pairs.astype(np.float32, copy=False)
            return P[:, 0], P[:, 1]
        arr = np.asarray(pairs)
        if arr.ndim not in (4, 5) or arr.shape[1] != 2:
            raise ValueError(
                "Image pairs must have shape (n_pairs, 2, H, W), (n_pairs, 2, H, W, C) or "
                f"(n_pairs, 2, C, H, W); got shape {arr.shape}."
            )
        flat = arr.reshape((arr.shape[0] * 2,) + arr.shape[2:])
        images, _ = self._validate_samples(flat)
        return images[0::2], images[1::2]

    # ----------------------------------------------------------- the network
    def _initialize_module(self):
        """Build ``module_`` (encoder + loss head) and ``loss_``: the first initialize() step."""
        torch = import_torch("SiameseNet")
        self.loss_ = copy.deepcopy(get_loss(self.loss))
        self.loss_._validate_params()
        encoder, emb_dim = self._build_encoder(self.loss_.embedding_activation)
        if self.loss_.normalize_embeddings:
            encoder = self._unit_norm(encoder)
        head = self.loss_.make_head(emb_dim)
        self.module_ = torch.nn.ModuleDict(
            {"encoder": encoder, "head": head if head is not None else torch.nn.Identity()}
        ).to(self.device_)
        self._has_head = head is not None
        self.embedding_dim_ = emb_dim

    def _head(self):
        return self.module_["head"] if self._has_head else None

    def get_loss(self, batch, training=False):
        """Mean loss of a batch of pairs ``(xa, xb, target)`` (the engine's hook)."""
        xa, xb, target = batch
        # One forward pass over both members keeps batch statistics shared.
        emb = self.module_["encoder"](import_torch("SiameseNet").cat([xa, xb]))
        return self.loss_(emb[: xa.shape[0]], emb[xa.shape[0]:], target, self._head())

    # -------------------------------------------------------------- training
    def _split_validation(self, y, rng):
        idx_train, idx_val, kind = self._split_for_validation(y, rng)
        if kind != "stratified":
            return idx_train, idx_val, kind

        def ok(lab):
            return lab.size > 0 and np.unique(lab).size >= 2 and np.bincount(lab).max() >= 2

        if not ok(y[idx_val]) or not ok(y[idx_train]):
            warnings.warn(
                f"validation_fraction={self.validation_fraction} leaves too few samples "
                "per class to draw same-class validation pairs (each part needs 2 classes "
                "and a class with 2 samples); training on all samples without "
                "validation or early stopping.",
                UserWarning,
            )
            return np.arange(y.shape[0]), None, None
        return idx_train, idx_val, kind

    def iter_batches(self, data, training):
        """Batches ``(xa, xb, target)`` of pairs: fresh balanced pairs each training epoch."""
        torch = import_torch("SiameseNet")
        X = data["X"]
        if training:
            y_train, idx_train = data["y"], data["idx"]
            half = self.n_pairs // 2
            pi, labels = sample_pairs(y_train, half, self.n_pairs - half, random_state=data["rng"])
            idx = idx_train[pi]
        else:
            idx, labels = data["pairs"], data["labels"]
        augment = training and self.augment and self.input_kind_ == "image"
        for b in self.batch_indices(len(idx), training):
            xa = torch.from_numpy(X[idx[b, 0]]).to(self.device_)
            xb = torch.from_numpy(X[idx[b, 1]]).to(self.device_)
            if augment:
                xa = random_affine(xa, self._batch_generator)
                xb = random_affine(xb, self._batch_generator)
            t = torch.from_numpy((labels[b] > 0).astype(np.float32)).to(self.device_)
            yield xa, xb, t

    def on_epoch_record(self, record, valid_data):
        """Adds the one-shot score and, for losses with their own probability, the pair accuracy."""
        super().on_epoch_record(record, valid_data)
        if valid_data is not None and self._has_native_proba():
            logit = self._scores_of(valid_data["X"], valid_data["pairs"])[0]  # Koch: the logit
            record["valid_accuracy"] = float(np.mean((logit >= 0) == (valid_data["labels"] > 0)))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on pairs drawn from the class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            (n_samples, H, W), (n_samples, H, W, C), (n_samples, C, H, W)
            (uint8 in [0, 255] or float in [0, 1]), or a list of image paths.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self
        """
        Xn, y_enc = self._validate_fit_input(X, y, min_class_size=2)
        rng = check_random_state(self.random_state)
        idx_train, idx_val, self.validation_kind_ = self._split_validation(y_enc, rng)
        if idx_val is not None:
            self.validation_classes_ = self.classes_[np.unique(y_enc[idx_val])]
        train, valid = self._train(Xn, y_enc, idx_train, idx_val, rng, seed=draw_seed(rng))
        self._calibrate(Xn, y_enc, train["idx"], valid, rng)
        return self

    def _epoch_size(self, n_train):
        return self.n_pairs  # fresh pairs each epoch, however many samples

    def _training_data(self, Xn, y_enc, idx_train, idx_val, rng, one_shot=False):
        """(train, valid) data of the engine; sets the PCA-init input."""
        train = {"X": Xn, "y": y_enc[idx_train], "idx": idx_train, "rng": rng}
        valid = None
        if idx_val is not None:
            n_val_pairs = max(2, int(round(self.n_pairs * self.validation_fraction)) // 2)
            vi, labels = sample_pairs(y_enc[idx_val], n_val_pairs, random_state=rng)
            valid = {"X": Xn, "pairs": idx_val[vi], "labels": labels}
            if one_shot:
                valid["one_shot"] = self._one_shot_data(Xn, y_enc, idx_val, rng)
        self._init_data = Xn[idx_train]
        return train, valid

    def _pair_similarity(self, Ea, Eb):
        """The loss's own pair score (before calibration) of embedded pairs."""
        return self._scores_from_embeddings(Ea, Eb)[0]

    def _has_native_proba(self):
        if getattr(self, "raw_geometry_", False):
            return False
        return type(self.loss_).pair_logit is not PairLoss.pair_logit

    def _calibrate(self, X, y, idx_train, valid, rng):
        """Platt scaling of the pair score for losses without a probability."""
        self.proba_calibration_ = None
        if self._has_native_proba():
            return
        if valid is not None:
            idx, labels = valid["pairs"], valid["labels"]
        else:
            pi, labels = sample_pairs(y[idx_train], self.n_pairs // 2, random_state=rng)
            idx = idx_train[pi]
        s = self._scores_of(X, idx)[0]
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4).fit(s[:, None].astype(np.float64), labels > 0)
        self.proba_calibration_ = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))

    # ------------------------------------------------------------- inference
    def _scores_of(self, Xn, idx):
        """(pair_score, decision values) of the pairs ``Xn[idx]`` (network input)."""
        E = self._embed(Xn)
        return self._scores_from_embeddings(E[idx[:, 0]], E[idx[:, 1]])

    def _scores_from_embeddings(self, Ea, Eb):
        """pair_score and decision values (logits) of embedded pairs (numpy)."""
        if getattr(self, "raw_geometry_", False):  # the raw input: minus the Euclidean distance
            s = super()._pair_similarity(np.asarray(Ea, np.float64), np.asarray(Eb, np.float64))
        else:
            torch = import_torch("SiameseNet")
            with torch.no_grad():
                a = torch.from_numpy(np.ascontiguousarray(Ea, dtype=np.float32)).to(self.device_)
                b = torch.from_numpy(np.ascontiguousarray(Eb, dtype=np.float32)).to(self.device_)
                s = self.loss_.pair_score(a, b, self._head()).cpu().numpy().astype(np.float64)
        if getattr(self, "proba_calibration_", None) is None:
            return s, s
        slope, intercept = self.proba_calibration_
        return s, slope * s + intercept

    def pair_score(self, pairs):
        """Similarity of each pair by the loss's rule (higher = more similar).

        Koch: the logit of the same-class probability; contrastive: minus the
        Euclidean distance of the embeddings; binomial deviance: their cosine.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features), or image pairs
            (n_pairs, 2, H, W), (n_pairs, 2, H, W, C), (n_pairs, 2, C, H, W)

        Returns
        -------
        scores : ndarray of shape (n_pairs,)
        """
        A, B = self._validate_pairs(pairs)
        return self._scores_from_embeddings(self._embed(A), self._embed(B))[0]

    def pair_decision_function(self, pairs):
        """Log-odds that each pair is a same-class pair (> 0 means same class).

        Koch's own logit, or the Platt-calibrated :meth:`pair_score` for the
        other losses. Parameters as in :meth:`pair_score`.
        """
        A, B = self._validate_pairs(pairs)
        return self._scores_from_embeddings(self._embed(A), self._embed(B))[1]

    def pair_proba(self, pairs):
        """Probabilities of [different class, same class] for each pair.

        Returns
        -------
        proba : ndarray of shape (n_pairs, 2)
            Column 1 is the same-class probability.
        """
        p = 1.0 / (1.0 + np.exp(-self.pair_decision_function(pairs)))
        return np.column_stack([1.0 - p, p])

    def pair_predict(self, pairs):
        """+1 (same class) or -1 (different class) for each pair."""
        return np.where(self.pair_decision_function(pairs) >= 0, 1, -1)

    def score(self, X, y):
        """Pair accuracy on balanced pairs drawn from labelled samples.

        Draws ``min(n_pairs, 2000)`` balanced pairs from ``y`` with a fixed
        seed (the same X, y always give the same value) and returns the
        accuracy of :meth:`pair_predict` on them. This is the default criterion of
        GridSearchCV, which passes labelled samples.

        Parameters
        ----------
        X : array-like of samples (as in fit)
        y : array-like of shape (n_samples,), class labels

        Returns
        -------
        accuracy : float
        """
        Xn, _ = self._validate_samples(X)
        y = column_or_1d(y)
        if Xn.shape[0] != y.shape[0]:
            raise ValueError(f"X has {Xn.shape[0]} samples but y has {y.shape[0]} labels.")
        n = min(self.n_pairs, 2000) // 2
        idx, labels = sample_pairs(y, max(n, 1), random_state=_SCORE_SEED)
        E = self._embed(Xn)
        logits = self._scores_from_embeddings(E[idx[:, 0]], E[idx[:, 1]])[1]
        return float(np.mean(np.where(logits >= 0, 1, -1) == labels))
