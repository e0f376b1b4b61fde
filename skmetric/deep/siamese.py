"""Siamese network (Koch et al., 2015) as a scikit-learn estimator.

``SiameseNet`` learns a shared encoder (an embedding) from class labels by
training on balanced same-class / different-class pairs drawn from the labels
each epoch. After fitting, ``transform`` gives the embeddings (for a kNN
classifier), and the pair methods score pairs with the loss's own rule.

torch is imported lazily: importing this module does not import torch.
"""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples, check_is_fitted, column_or_1d, validate_data

from .._optional import import_torch, resolve_device
from ..base import LabelSupervisedMixin
from .._validation import FLOAT_DTYPES, check_labeled_data, check_pairs
from ..constraints import sample_pairs
from ._images import as_image_batch, is_image_input
from .losses import LOSSES, PairLoss, get_loss

__all__ = ["SiameseNet"]

_SCORE_SEED = 0  # fixed pair draw in ``score``: the same X, y always give the same value


def _torch():
    # Cached by the import system after the first call; never stored on the
    # estimator (modules cannot be pickled or deep-copied).
    return import_torch("SiameseNet")


def _stack_samples(X):
    """A list of per-sample arrays -> one array, with a clear error for ragged shapes."""
    if isinstance(X, (list, tuple)) and len(X) and hasattr(X[0], "shape"):
        shapes = sorted({tuple(np.shape(x)) for x in X})
        if len(shapes) > 1:
            raise ValueError(
                f"Samples have inconsistent shapes {shapes[:4]}; every image (or "
                "feature vector) must have the same shape."
            )
        return np.stack([np.asarray(x) for x in X])
    return X


class SiameseNet(LabelSupervisedMixin, TransformerMixin, BaseEstimator):
    """Siamese network for metric learning from class labels.

    Two copies of one encoder map the members of a pair to embeddings; a
    pair loss compares them. Training minimises the mean loss over balanced
    pairs (half same-class, half different-class) drawn from the labels with
    :func:`skmetric.constraints.sample_pairs`, a fresh draw each epoch, with
    Adam or SGD on mini-batches. With ``loss="koch"`` this is the model of
    Koch et al. (2015): a learned weighted L1 distance between sigmoid
    embeddings, a sigmoid, and the binary cross-entropy of the same/different
    label.

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
    loss : {'koch', 'contrastive', 'binomial_deviance'} or PairLoss, default='koch'
        See :mod:`skmetric.deep.losses`. An instance is cloned at fit.
    optimizer : {'adam', 'sgd'}, default='adam'
        SGD uses momentum 0.9.
    lr : float, default=1e-3
        Learning rate. Keep it low: with a high one (e.g. 0.1 with Adam) the
        Koch head saturates and the model predicts 0.5 for every pair.
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
    validation_fraction : float, default=0.1
        Fraction of the samples (stratified) held out to draw fixed validation
        pairs for early stopping; 0 disables validation and early stopping.
    n_iter_no_change : int or None, default=5
        Stop when the validation loss has not improved by ``tol`` for this
        many epochs; the best weights are restored. None disables it.
    tol : float, default=1e-4
    device : str, default='auto'
        'auto' uses CUDA when available, else the CPU; or any torch device.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the pairs of every epoch and the batch order; two
        fits with the same integer give identical models on the CPU.
    verbose : int, default=0
        > 0 shows a tqdm progress bar over epochs with the losses.

    Attributes
    ----------
    module_ : torch.nn.ModuleDict
        ``{'encoder': ..., 'head': ...}``; the head holds the loss's learned
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
        Per epoch: 'epoch', 'train_loss', 'valid_loss', 'valid_accuracy'.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept (1-based).
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
    >>> net = SiameseNet(embedding_dim=8, max_epochs=2, n_pairs=200, random_state=0)
    >>> net.fit(X, y).transform(X).shape
    (150, 8)
    """

    _parameter_constraints = {
        "encoder": "no_validation",
        "encoder_params": [None, dict],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [tuple, list],
        "conv_channels": [None, tuple, list],
        "loss": [StrOptions(set(LOSSES)), PairLoss],
        "optimizer": [StrOptions({"adam", "sgd"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "n_pairs": [Interval(Integral, 2, None, closed="left")],
        "augment": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [None, Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": "no_validation",
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        encoder=None,
        encoder_params=None,
        embedding_dim=64,
        hidden_layer_sizes=(128,),
        conv_channels=None,
        loss="koch",
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=32,
        max_epochs=30,
        n_pairs=2000,
        augment=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.embedding_dim = embedding_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.conv_channels = conv_channels
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.n_pairs = n_pairs
        self.augment = augment
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ input
    def _validate_fit_input(self, X, y):
        """(X as float32 network input, encoded y); every check before training."""
        X = _stack_samples(X)
        if is_image_input(X):
            if y is None:
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None."
                )
            images = as_image_batch(X)
            y = column_or_1d(y, warn=True)
            if y.shape[0] != images.shape[0]:
                raise ValueError(
                    f"X has {images.shape[0]} images but y has {y.shape[0]} labels."
                )
            check_classification_targets(y)
            classes, y_enc = np.unique(y, return_inverse=True)
            if classes.size < 2:
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes in y, got 1 class."
                )
            self.input_kind_ = "image"
            self.input_dtype_ = np.dtype(np.float32)
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
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 samples, got {n} sample(s)."
                )
            Xv, y_enc, classes = check_labeled_data(self, X, y, dtype=FLOAT_DTYPES)
            self.input_kind_ = "vector"
            Xn = Xv.astype(np.float32)
        counts = np.bincount(y_enc)
        if counts.max() < 2:
            raise ValueError(
                f"{type(self).__name__} needs a class with at least 2 samples to form "
                "same-class pairs; every class has a single sample."
            )
        self.classes_ = classes
        self.input_shape_ = tuple(Xn.shape[1:])
        return Xn, y_enc.astype(np.intp)

    def _validate_samples(self, X):
        """Network input (float32) for transform, and the output dtype."""
        check_is_fitted(self, "module_")
        X = _stack_samples(X)
        if self.input_kind_ == "image":
            images = as_image_batch(X, copy=False)
            if tuple(images.shape[1:]) != self.input_shape_:
                raise ValueError(
                    f"Images have shape {images.shape[1:]} (C, H, W), but "
                    f"{type(self).__name__} was fitted on {self.input_shape_}."
                )
            return images, np.float32
        Xv = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        return Xv.astype(np.float32, copy=False), Xv.dtype

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
    def _initialize_module(self, torch):
        """Build ``module_`` (encoder + loss head) and ``loss_``: the initialize() step."""
        self.loss_ = copy.deepcopy(get_loss(self.loss))
        self.loss_._validate_params()
        extra = dict(self.encoder_params or {})
        enc = self.encoder
        if enc is None:
            from .encoders import default_encoder

            encoder = default_encoder(
                self.input_shape_,
                self.embedding_dim,
                out_activation=self.loss_.embedding_activation,
                hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                channels=self.conv_channels,
                **extra,
            )
            emb_dim = self.embedding_dim
        else:
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
            emb_dim = int(out.shape[1])
        head = self.loss_.make_head(emb_dim)
        self.module_ = torch.nn.ModuleDict(
            {"encoder": encoder, "head": head if head is not None else torch.nn.Identity()}
        )
        self._has_head = head is not None
        self.embedding_dim_ = emb_dim

    def _head(self):
        return self.module_["head"] if self._has_head else None

    def _make_optimizer(self, torch):
        params = self.module_.parameters()
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)

    def get_loss(self, emb_a, emb_b, target):
        """Mean loss of a batch of embedded pairs (override point)."""
        return self.loss_(emb_a, emb_b, target, self._head())

    def train_step(self, xa, xb, target):
        """One optimisation step on a batch of pairs; returns the loss (override point)."""
        self.module_.train()
        self.optimizer_.zero_grad()
        enc = self.module_["encoder"]
        # One forward pass over both members keeps batch statistics shared.
        emb = enc(_torch().cat([xa, xb]))
        loss = self.get_loss(emb[: xa.shape[0]], emb[xa.shape[0]:], target)
        loss.backward()
        self.optimizer_.step()
        return float(loss.detach())

    # -------------------------------------------------------------- training
    def _split_validation(self, y, rng):
        n = y.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n)) if self.validation_fraction > 0 else 0
        if n_val == 0:
            return np.arange(n), None
        idx_train, idx_val = [], []
        # Stratified: each class gives about the same fraction, rounded down,
        # so every class keeps at least one training sample.
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            k = int(np.floor(self.validation_fraction * members.size))
            idx_val.append(members[:k])
            idx_train.append(members[k:])
        idx_train, idx_val = np.sort(np.concatenate(idx_train)), np.sort(np.concatenate(idx_val))
        yv, yt = y[idx_val], y[idx_train]

        def ok(lab):
            return lab.size > 0 and np.unique(lab).size >= 2 and np.bincount(lab).max() >= 2

        if not ok(yv) or not ok(yt):
            warnings.warn(
                f"validation_fraction={self.validation_fraction} leaves too few samples "
                "per class to draw same-class validation pairs (each part needs 2 classes "
                "and a class with 2 samples); training on all samples without "
                "validation or early stopping.",
                UserWarning,
            )
            return np.arange(n), None
        return idx_train, idx_val

    def _augment_batch(self, x, gen):
        """Random affine distortions of an image batch (Koch et al., sec. 4.2).

        Each of rotation (+-10 degrees), shear (+-0.3), scale (0.8-1.2) and
        translation (+-10% of the size) is applied with probability 1/2, drawn
        from ``gen`` so that fits stay reproducible.
        """
        torch = _torch()
        n = x.shape[0]
        u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)
        on = lambda: (torch.rand(n, generator=gen) < 0.5).float()
        theta = torch.deg2rad(u(-10.0, 10.0)) * on()
        shear = u(-0.3, 0.3) * on()
        scale_on = on()
        sx = 1 + (u(0.8, 1.2) - 1) * scale_on
        sy = 1 + (u(0.8, 1.2) - 1) * scale_on
        t_on = on()
        tx, ty = u(-0.2, 0.2) * t_on, u(-0.2, 0.2) * t_on
        cos, sin = torch.cos(theta), torch.sin(theta)
        A = torch.stack(
            [
                torch.stack([sx * cos, -sy * sin + shear, tx], 1),
                torch.stack([sx * sin, sy * cos, ty], 1),
            ],
            1,
        ).to(x.device, x.dtype)
        grid = torch.nn.functional.affine_grid(A, x.shape, align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, padding_mode="zeros", align_corners=False)

    def _pair_batches(self, X, idx, labels, gen, shuffle):
        torch = _torch()
        order = torch.randperm(len(idx), generator=gen).numpy() if shuffle else np.arange(len(idx))
        augment = shuffle and self.augment and self.input_kind_ == "image"
        for start in range(0, len(idx), self.batch_size):
            b = order[start : start + self.batch_size]
            xa = torch.from_numpy(X[idx[b, 0]]).to(self.device_)
            xb = torch.from_numpy(X[idx[b, 1]]).to(self.device_)
            if augment:
                xa, xb = self._augment_batch(xa, gen), self._augment_batch(xb, gen)
            t = torch.from_numpy((labels[b] > 0).astype(np.float32)).to(self.device_)
            yield xa, xb, t

    def _eval_pairs(self, X, idx, labels):
        """Mean loss and pair accuracy (logit or score sign after calibration) on fixed pairs."""
        torch = _torch()
        self.module_.eval()
        total, n, scores = 0.0, 0, []
        with torch.no_grad():
            for xa, xb, t in self._pair_batches(X, idx, labels, None, shuffle=False):
                enc = self.module_["encoder"]
                ea, eb = enc(xa), enc(xb)
                total += float(self.get_loss(ea, eb, t)) * xa.shape[0]
                n += xa.shape[0]
                scores.append(self.loss_.pair_score(ea, eb, self._head()).cpu().numpy())
        return total / n, np.concatenate(scores)

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
        Xn, y_enc = self._validate_fit_input(X, y)
        torch = _torch()
        self.device_ = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        idx_train, idx_val = self._split_validation(y_enc, rng)
        torch_seed = int(rng.randint(np.iinfo(np.int32).max))

        cpu_only = self.device_.type == "cpu"
        deterministic = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            with torch.random.fork_rng(devices=[] if cpu_only else None):
                torch.manual_seed(torch_seed)
                self._initialize_module(torch)
            self.module_.to(self.device_)
            self.optimizer_ = self._make_optimizer(torch)
            gen = torch.Generator().manual_seed(torch_seed)
            self._train(Xn, y_enc, idx_train, idx_val, rng, gen)
        finally:
            torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        del self.optimizer_
        self._calibrate(Xn, y_enc, idx_train, idx_val, rng)
        self.module_.eval()
        return self

    def _train(self, X, y, idx_train, idx_val, rng, gen):
        half = self.n_pairs // 2
        y_train = y[idx_train]
        if idx_val is not None:
            n_val_pairs = max(2, int(round(self.n_pairs * self.validation_fraction)) // 2)
            vi, self._val_labels = sample_pairs(y[idx_val], n_val_pairs, random_state=rng)
            self._val_idx = idx_val[vi]
        self.loss_curve_, self.validation_scores_, self.history_ = [], [], []
        best, best_state, stall = np.inf, None, 0
        epochs = range(1, self.max_epochs + 1)
        bar = None
        if self.verbose:
            try:
                from tqdm.auto import tqdm

                bar = tqdm(epochs, desc=type(self).__name__, unit="epoch")
                epochs = bar
            except ImportError:  # progress lines instead of a bar
                pass
        for epoch in epochs:
            pi, labels = sample_pairs(y_train, half, self.n_pairs - half, random_state=rng)
            idx = idx_train[pi]
            total, n = 0.0, 0
            for xa, xb, t in self._pair_batches(X, idx, labels, gen, shuffle=True):
                total += self.train_step(xa, xb, t) * xa.shape[0]
                n += xa.shape[0]
            record = {"epoch": epoch, "train_loss": total / n}
            self.loss_curve_.append(total / n)
            monitored = total / n
            if idx_val is not None:
                v_loss, v_scores = self._eval_pairs(X, self._val_idx, self._val_labels)
                record["valid_loss"] = v_loss
                logit = self._native_or_none(v_scores)
                if logit is not None:
                    record["valid_accuracy"] = float(np.mean((logit >= 0) == (self._val_labels > 0)))
                self.validation_scores_.append(v_loss)
                monitored = v_loss
            self.history_.append(record)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch"})
            elif self.verbose:
                print(", ".join(f"{k}={v:.4g}" for k, v in record.items()))
            self.n_iter_ = epoch
            if idx_val is None or self.n_iter_no_change is None:
                self.best_epoch_ = epoch
                continue
            if monitored < best - self.tol:
                best, stall, self.best_epoch_ = monitored, 0, epoch
                best_state = copy.deepcopy(self.module_.state_dict())
            else:
                stall += 1
                if stall >= self.n_iter_no_change:
                    break
        if bar is not None:
            bar.close()
        if best_state is not None:
            self.module_.load_state_dict(best_state)

    def _has_native_proba(self):
        return type(self.loss_).pair_logit is not PairLoss.pair_logit

    def _native_or_none(self, scores):
        """Scores are logits for losses with a probability (Koch); None otherwise."""
        return scores if self._has_native_proba() else None

    def _calibrate(self, X, y, idx_train, idx_val, rng):
        """Platt scaling of the pair score for losses without a probability."""
        self.proba_calibration_ = None
        if self._has_native_proba():
            return
        if idx_val is not None:
            idx, labels = self._val_idx, self._val_labels
        else:
            pi, labels = sample_pairs(y[idx_train], self.n_pairs // 2, random_state=rng)
            idx = idx_train[pi]
        _, s = self._eval_pairs(X, idx, labels)
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4).fit(s[:, None].astype(np.float64), labels > 0)
        self.proba_calibration_ = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))

    # ------------------------------------------------------------- inference
    def _embed(self, Xn, chunk=1024):
        torch = _torch()
        self.module_.eval()
        out = []
        with torch.no_grad():
            for s in range(0, Xn.shape[0], chunk):
                xb = torch.from_numpy(np.ascontiguousarray(Xn[s : s + chunk])).to(self.device_)
                out.append(self.module_["encoder"](xb))
        return torch.cat(out) if out else torch.zeros((0, self.embedding_dim_))

    def transform(self, X):
        """Embed samples with the trained encoder.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images as in fit

        Returns
        -------
        X_new : ndarray of shape (n_samples, embedding_dim)
            float32 for float32 vectors and for images, float64 otherwise.
        """
        Xn, dtype = self._validate_samples(X)
        return self._embed(Xn).cpu().numpy().astype(dtype, copy=False)

    def _scores_from_embeddings(self, Ea, Eb):
        """pair_score and decision values (logits) of embedded pairs."""
        with _torch().no_grad():
            s = self.loss_.pair_score(Ea, Eb, self._head()).cpu().numpy().astype(np.float64)
        if self.proba_calibration_ is None:
            return s, s
        a, b = self.proba_calibration_
        return s, a * s + b

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

    # --------------------------------------------------------------- pickle
    def __getstate__(self):
        state = self.__dict__.copy()
        if "module_" in state:
            # Store the weights as a CPU state_dict next to a CPU skeleton, so a
            # model trained on a GPU loads on a machine without one.
            module = state.pop("module_")
            state["_module_skeleton"] = copy.deepcopy(module).cpu()
            state["_module_state"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
            state["device_"] = str(state.get("device_", "cpu"))
        return state

    def __setstate__(self, state):
        skeleton = state.pop("_module_skeleton", None)
        weights = state.pop("_module_state", None)
        self.__dict__.update(state)
        if skeleton is not None:
            torch = _torch()
            skeleton.load_state_dict(weights)
            device = torch.device(self.device_)
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.device_ = device
            self.module_ = skeleton.to(device).eval()
