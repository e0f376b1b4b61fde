"""Weight transfer: fine-tune the last blocks of a pretrained CNN, embed images."""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._optional import import_torch
from ._engine import EARLY_STOPPING_CONSTRAINTS, ENGINE_CONSTRAINTS, TrainingMixin, draw_seed, stratified_split
from ._images import as_image_batch
from .feature_extraction import _BACKBONE_CONSTRAINTS, _CNNBase, _is_path_list, check_images

__all__ = ["FineTunedCNN", "train_classifier"]


class _ClassifierTraining(TrainingMixin):
    """Cross-entropy training of ``network_`` on preprocessed images (the engine's hooks).

    ``network_`` maps a preprocessed batch to class logits; only parameters
    with ``requires_grad`` train, and frozen parts stay in eval mode (their
    batch norm statistics stay those of the pretrained weights).
    """

    _torch_modules = ("network_",)

    @property
    def module_(self):
        return self.network_

    def _set_train_mode(self, training):
        self.network_.train(training)
        if training:
            for module in self.network_.modules():
                params = list(module.parameters(recurse=False))
                if params and not any(p.requires_grad for p in params):
                    module.eval()

    def iter_batches(self, data, training):
        """Batches ``(preprocessed images, targets)``."""
        from ._backbones import preprocess

        torch = import_torch(type(self).__name__)
        images, targets = data
        for idx in self.batch_indices(len(images), training):
            xb = preprocess(torch.from_numpy(images[idx]).to(self.device_), self.preprocessing_)
            yield xb, torch.as_tensor(targets[idx], dtype=torch.long, device=self.device_)

    def get_loss(self, batch, training=False):
        """Mean cross-entropy of the logits of a batch."""
        xb, yb = batch
        return import_torch(type(self).__name__).nn.functional.cross_entropy(self.network_(xb), yb)


def train_classifier(
    network, images, targets, spec, *, max_epochs, batch_size, lr=1e-3, optimizer="adam",
    weight_decay=0.0, seed=0, device="cpu", verbose=0, callbacks=None,
):
    """Minimise the mean cross-entropy of ``network(preprocess(images))`` in place.

    The engine of :class:`FineTunedCNN` on a network you built (used by the
    benchmarks' digits pretraining).

    Parameters
    ----------
    network : torch.nn.Module
        Maps a preprocessed batch to class logits; only parameters with
        ``requires_grad`` are updated. Left in eval mode on return.
    images : ndarray of shape (N, C, H, W), float32 in [0, 1]
    targets : ndarray of shape (N,), int class indices
    spec : Preprocessing
    max_epochs, batch_size, lr, optimizer, weight_decay, device, verbose, callbacks
        As in :class:`FineTunedCNN`.
    seed : int
        Seeds the batch order (and anything random in the network).

    Returns
    -------
    loss_curve : list of float
        Mean training loss of each epoch.
    """
    trainer = _ClassifierTraining()
    trainer.__dict__.update(
        network_=network, preprocessing_=spec, max_epochs=max_epochs, batch_size=batch_size,
        lr=lr, optimizer=optimizer, weight_decay=weight_decay, device=device, verbose=verbose,
        callbacks=callbacks, _initialize_module=lambda: None,
    )
    trainer._fit_engine((images, np.asarray(targets)), None, seed)
    return trainer.loss_curve_


class FineTunedCNN(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClassifierMixin, _ClassifierTraining, _CNNBase):
    """A pretrained CNN whose last blocks are fine-tuned on labelled images.

    Transfer by weight transfer (Yosinski et al., 2014): the network starts
    from a backbone and its weights, a new linear head with one output per
    class is put on its pooled penultimate layer, and the head plus the last
    ``n_trainable_blocks`` blocks are trained to minimise the mean
    cross-entropy of the labels (mini-batch Adam or SGD); earlier blocks stay
    frozen, batch norm statistics included. ``transform`` then returns the
    penultimate-layer embeddings, so the estimator slots into the same
    pipelines as :class:`~skmetric.deep.feature_extraction.CNNFeatureExtractor`
    (``predict`` uses the head).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default='resnet18'
        A torchvision classification model name or your own module (its
        output is the embedding). The module is copied, never modified.
    weights : None, str or path, default=None
        As in CNNFeatureExtractor: None, a torchvision weights name
        ("DEFAULT", "IMAGENET1K_V1"; from the torch hub cache) or a local
        state_dict file.
    n_trainable_blocks : int or None, default=1
        How many blocks, counted from the output, are trained. A block is a
        top-level child with parameters, with top-level ``nn.Sequential``
        stages split into their children (ResNet-18's last block is
        ``layer4[1]``). 0 trains only the head (a linear probe); None trains
        everything.
    input_size : int, (height, width) or None, default=None
        As in CNNFeatureExtractor.
    normalize : 'auto', None or (mean, std), default='auto'
    optimizer : {'adam', 'adamw', 'sgd'} or torch.optim.Optimizer class, default='adam'
        'sgd' uses Nesterov momentum 0.9; ``optimizer__<name>`` parameters
        are passed to the optimizer.
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    max_epochs : int, default=10
    batch_size : int, default=32
    validation_fraction : float, default=0.0
        Fraction of the images (stratified) held out to compute a
        validation loss each epoch; with ``n_iter_no_change`` it stops
        training early and restores the best weights. 0 disables it.
        Stratified on purpose: a fine-tuned classifier predicts the classes
        it was trained on, so held-out samples of those classes are the
        right validation (SiameseNet and DeepMetricLearner, meant for new
        classes, hold out whole classes instead).
    n_iter_no_change : int or None, default=5
    tol : float, default=1e-4
    callbacks : list of Callback or None, default=None
        See :mod:`skmetric.deep.callbacks` (LRScheduler, Checkpoint, ...).
    random_state : int, RandomState or None, default=None
        Seeds the head's initialisation (and the random weights of
        ``weights=None``) and the batch order; on CPU two fits with the same
        integer are identical.
    device : str or torch.device, default='auto'
    verbose : int, default=0
        A tqdm bar over epochs (with the loss), and over batches in transform.
    **kwargs
        ``optimizer__<name>`` parameters.

    Attributes
    ----------
    network_ : torch.nn.Sequential
        ``(body, head)``: the embedding network and the linear head.
    classes_ : ndarray of shape (n_classes,)
    loss_curve_ : list of float
        Mean training cross-entropy of each epoch.
    history_ : list of dict
        Per-epoch records of the training engine (train_loss, valid_loss, lr, ...).
    n_features_out_ : int
        Embedding length.
    preprocessing_ : Preprocessing
    device_ : torch.device

    References
    ----------
    J. Yosinski, J. Clune, Y. Bengio, H. Lipson. How transferable are features
    in deep neural networks? NeurIPS, 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.deep.fine_tuning import FineTunedCNN
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.rand(8, 32, 32).astype("float32"), np.arange(8) % 2
    >>> model = FineTunedCNN(input_size=32, max_epochs=1, random_state=0).fit(X, y)
    >>> model.transform(X).shape
    (8, 512)
    """

    _parameter_constraints = {
        **_BACKBONE_CONSTRAINTS,
        **ENGINE_CONSTRAINTS,
        "n_trainable_blocks": [None, Interval(Integral, 0, None, closed="left")],
        **EARLY_STOPPING_CONSTRAINTS,
    }

    def __init__(
        self,
        backbone="resnet18",
        weights=None,
        n_trainable_blocks=1,
        input_size=None,
        normalize="auto",
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        max_epochs=10,
        batch_size=32,
        validation_fraction=0.0,
        n_iter_no_change=5,
        tol=1e-4,
        callbacks=None,
        random_state=None,
        device="auto",
        verbose=0,
        **kwargs,
    ):
        self._store_init_params(locals())

    @staticmethod
    def _check_targets(y):
        # Labels are checked before the images: their errors are the clearer ones.
        if y is None:
            raise ValueError("FineTunedCNN requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"FineTunedCNN needs at least 2 classes; got {len(classes)} class.")
        return classes, encoded

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fine-tune the head and the last blocks on (X, y).

        Parameters
        ----------
        X : array-like or list of image paths
            (N, H, W), (N, H, W, C) or (N, C, H, W), uint8 or float in [0, 1].
        y : array-like of shape (N,)

        Returns
        -------
        self
        """
        from ._backbones import preprocessing_for

        self.classes_, targets = self._check_targets(y)
        n_images = check_images(X, size=self.input_size)
        if n_images != len(targets):
            raise ValueError(f"X has {n_images} images but y has {len(targets)} labels.")
        size = self.input_size if _is_path_list(X) else None
        images = as_image_batch(list(X) if _is_path_list(X) else X, size=size, copy=False)
        self.preprocessing_ = preprocessing_for(
            self.backbone, self.weights, self.input_size, self.normalize
        )
        rng = check_random_state(self.random_state)
        idx_train, idx_val = stratified_split(targets, self.validation_fraction, rng)
        self._first_image = images[:1]
        train = (images[idx_train], targets[idx_train])
        valid = None if idx_val is None or idx_val.size == 0 else (images[idx_val], targets[idx_val])
        self._fit_engine(train, valid, draw_seed(rng))
        del self._first_image
        for p in self.network_.parameters():
            p.grad = None  # frees memory; the network is frozen from now on
        self.network_.requires_grad_(False)
        return self

    def _initialize_module(self):
        """Body from the backbone, a new linear head, the last blocks trainable."""
        from ._backbones import build_network, trainable_blocks

        torch = import_torch("FineTunedCNN")
        body = build_network(self.backbone, self.weights).to(self.device_)
        self.n_features_out_ = self._embed_with(body, self._first_image).shape[1]
        head = torch.nn.Linear(self.n_features_out_, len(self.classes_))
        self.network_ = torch.nn.Sequential(body, head).to(self.device_)
        blocks = trainable_blocks(body)
        n = len(blocks) if self.n_trainable_blocks is None else self.n_trainable_blocks
        for block in blocks[len(blocks) - min(n, len(blocks)) :]:
            block.requires_grad_(True)
        head.requires_grad_(True)

    def _embed_with(self, body, X):
        from ._backbones import pool_features

        return self._forward_batches(X, lambda x: pool_features(body(x)), "embeddings")

    def transform(self, X):
        """Penultimate-layer embeddings of the images.

        Returns
        -------
        embeddings : ndarray of shape (n_images, n_features_out_), float32
        """
        check_is_fitted(self, "network_")
        self._check_transform_input(X)
        return self._embed_with(self.network_[0], X)

    def predict_proba(self, X):
        """Class probabilities from the fine-tuned head (softmax)."""
        check_is_fitted(self, "network_")
        self._check_transform_input(X)
        torch = import_torch("FineTunedCNN")
        logits = self._forward_batches(X, self.network_, "predict")
        return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    def predict(self, X):
        """The most probable class of each image."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def _n_features_out(self):
        return self.n_features_out_

    def _restore_network(self, state):
        from ._backbones import build_network

        torch = import_torch("FineTunedCNN")
        body_state = {k[2:]: v for k, v in state.items() if k.startswith("0.")}
        body = build_network(self.backbone, self.weights, state=body_state)
        head = torch.nn.Linear(self.n_features_out_, len(self.classes_))
        head.load_state_dict({k[2:]: v for k, v in state.items() if k.startswith("1.")})
        return torch.nn.Sequential(body, head).requires_grad_(False).eval()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
