"""Deep metric learning from class labels with class-balanced batches.

``DeepMetricLearner`` trains an encoder (ours, a torchvision backbone or the
user's module) with a batch loss of pytorch-metric-learning (triplet,
multi-similarity, ProxyAnchor, ArcFace, NT-Xent) or one of our pair losses
over every pair of a batch, optionally with a miner, on batches of
``m_per_class`` samples from each of ``batch_size / m_per_class`` classes
(PML's MPerClassSampler). ``transform`` gives the embeddings.

torch and pytorch-metric-learning are imported lazily.
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from .._optional import import_optional, import_torch
from ._embedding import ENCODER_CONSTRAINTS, VALIDATION_CONSTRAINTS, EmbeddingNetMixin
from ._engine import EARLY_STOPPING_CONSTRAINTS, ENGINE_CONSTRAINTS
from ._images import random_affine
from .losses._base import PairLoss
from .losses.pml import NEEDS_POSITIVES, make_metric_loss, make_miner

__all__ = ["DeepMetricLearner"]

_VALID_SEED = 0  # the fixed class-balanced batches of the validation loss


def _m_per_class_order(y, m, batch_size, length, rng):
    """Sample indices of one epoch from PML's MPerClassSampler, drawn from ``rng``.

    The sampler draws from ``pytorch_metric_learning.utils.common_functions.
    NUMPY_RANDOM`` (numpy's global RNG by default); it is pointed at ``rng``
    for the draw and restored, so fits are reproducible and numpy's global
    state is left alone.
    """
    samplers = import_optional("pytorch_metric_learning.samplers", "DeepMetricLearner")
    from pytorch_metric_learning.utils import common_functions as c_f

    sampler = samplers.MPerClassSampler(y, m, batch_size=batch_size, length_before_new_iter=length)
    saved = c_f.NUMPY_RANDOM
    c_f.NUMPY_RANDOM = rng
    try:
        return np.fromiter(iter(sampler), dtype=np.intp)
    finally:
        c_f.NUMPY_RANDOM = saved


class DeepMetricLearner(EmbeddingNetMixin, BaseEstimator):
    """Deep metric learning on class-balanced batches (pytorch-metric-learning losses).

    An encoder maps samples (images or vectors) to embeddings; each training
    batch holds ``m_per_class`` samples of each of ``batch_size //
    m_per_class`` classes drawn at random (the m-per-class sampling of
    pytorch-metric-learning), so that every batch has positives and
    negatives; the loss compares all the embeddings of a batch (or the
    pairs/triplets a miner picks). After fitting, :meth:`transform` returns
    the embeddings, L2-normalised by default, for a kNN classifier or a
    retrieval index; the estimator drops into Pipelines and GridSearchCV.

    Parameters
    ----------
    encoder : None, torch.nn.Module instance or subclass, default=None
        None builds the default for the input kind:
        :class:`~skmetric.deep.encoders.KochConvNet` for images,
        :class:`~skmetric.deep.encoders.MLPEncoder` for vectors. A module
        (e.g. a torchvision backbone with its classifier replaced by
        ``torch.nn.Identity()``) is deep-copied at fit; a class is built with
        ``encoder_params``. It must map a float32 batch (N, C, H, W) or
        (N, d) to (N, embedding_dim).
    encoder_params : dict or None, default=None
    embedding_dim : int, default=64
        Embedding size of the default encoders.
    hidden_layer_sizes : tuple of int, default=(128,)
        Hidden layers of the default MLP encoder.
    conv_channels : tuple of int or None, default=None
        Channels of the default convnet.
    encoder_init : {'pca', 'random'}, default='pca'
        'pca': the default encoder starts at the PCA projection of the input
        (a :class:`~skmetric.deep.encoders.PCASkipEncoder`; raw-input
        geometry), 'random': the plain network. As in
        :class:`~skmetric.deep.siamese.SiameseNet`.
    loss : str or loss object, default='multi_similarity'
        'triplet' (Schroff et al., 2015), 'multi_similarity' (Wang et al.,
        2019), 'proxy_anchor' (Kim et al., 2020), 'arcface' (Deng et al.,
        2019), 'ntxent' (Chen et al., 2020), 'contrastive' (Hadsell et al.,
        2006) or 'binomial_deviance' (Yi et al., 2014); see
        :mod:`skmetric.deep.losses.pml`. Or a pytorch-metric-learning loss
        object or a :class:`~skmetric.deep.losses.PairLoss` (deep-copied).
    loss_params : dict or None, default=None
        Keyword arguments of a loss given by name (e.g. ``{"margin": 0.1}``).
    miner : {'semihard', 'hard', 'multi_similarity'}, miner object or None, default=None
        Picks the informative pairs or triplets of each training batch.
    miner_params : dict or None, default=None
    m_per_class : int, default=4
        Samples of each class in a batch. A batch holds ``batch_size /
        m_per_class`` classes (at most the number of training classes), so
        ``batch_size`` must be a multiple of ``m_per_class`` (a ValueError
        otherwise) and at least ``2 * m_per_class``.
    normalize : bool, default=True
        L2-normalise the embeddings (in training and in ``transform``).
    augment : bool, default=False
        Random affine distortions of training images.
    optimizer, lr, weight_decay, max_epochs, batch_size, callbacks, device, random_state, verbose
        The training engine's parameters (as in
        :class:`~skmetric.deep.siamese.SiameseNet`; ``lr`` defaults to
        1e-4 for the same reason). An epoch draws about as many samples as
        there are training samples.
    validation : {'auto', 'class_disjoint', 'class_folds', 'stratified'} or None, default='auto'
        As in :class:`~skmetric.deep.siamese.SiameseNet`: by default whole
        classes are held out and the untrained weights and each epoch are
        scored by one-shot accuracy on them (Euclidean distance of the
        embeddings) against the raw input: with 25 classes or more (5+ held
        out) one class-disjoint split whose best epoch is kept; with 4 to 24
        classes 'class_folds' (each of up to 3 groups of classes held out in
        turn, the number of epochs chosen on their mean score, then the
        final model trained on every class for as many steps); below 4
        classes a UserWarning and the raw input, untrained. Training must
        beat the raw input on the held-out classes (by ``tol``; with class
        folds by a standard error), or the model is the raw input itself
        (``raw_geometry_``: ``transform`` returns the flattened input, not
        normalised). 'class_disjoint' and
        'class_folds' raise a ValueError with fewer than 4 classes;
        'stratified' monitors the loss on fixed class-balanced batches of
        held-out samples.
    validation_fraction : float, default=0.2
        Fraction of the classes ('class_disjoint') or of each class's
        samples ('stratified') held out ('class_folds' holds out every class
        once, in groups); 0 disables validation.
    n_iter_no_change : int or None, default=5
    tol : float, default=1e-4
    **kwargs
        ``optimizer__<name>`` parameters of the optimizer.

    Attributes
    ----------
    module_ : torch.nn.ModuleDict
        {'encoder': the encoder (with the normalisation), 'loss': the loss's
        learned parameters (proxies, class centres) or an empty module}.
    loss_ : loss object
    miner_ : miner object or None
    classes_ : ndarray
    embedding_dim_ : int
        Size of the embeddings (the number of input features when
        ``raw_geometry_``).
    raw_geometry_ : bool
        True when the raw input was kept: ``module_['encoder']`` is
        :class:`~skmetric.deep.encoders.RawInput`.
    batch_size_ : int
        The batch size used: ``batch_size``, or ``m_per_class`` times the
        number of training classes when that is smaller.
    history_, loss_curve_, validation_scores_, n_iter_, best_epoch_, initial_scores_
        The engine's training record (``best_epoch_ = 0``: no training was
        kept).
    validation_kind_, validation_classes_, fold_scores_, fold_raw_scores_
        As in :class:`~skmetric.deep.siamese.SiameseNet`.
    input_shape_ : tuple
    n_features_in_ : int
        Vector input only.

    References
    ----------
    K. Musgrave, S. Belongie, S.-N. Lim. A Metric Learning Reality Check.
    ECCV 2020 (and the pytorch-metric-learning library).

    F. Schroff, D. Kalenichenko, J. Philbin. FaceNet: A Unified Embedding for
    Face Recognition and Clustering. CVPR 2015.

    X. Wang, X. Han, W. Huang, D. Dong, M. R. Scott. Multi-Similarity Loss
    with General Pair Weighting for Deep Metric Learning. CVPR 2019.

    S. Kim, D. Kim, M. Cho, S. Kwak. Proxy Anchor Loss for Deep Metric
    Learning. CVPR 2020.

    J. Deng, J. Guo, N. Xue, S. Zafeiriou. ArcFace: Additive Angular Margin
    Loss for Deep Face Recognition. CVPR 2019.

    T. Chen, S. Kornblith, M. Norouzi, G. Hinton. A Simple Framework for
    Contrastive Learning of Visual Representations. ICML 2020.

    R. Hadsell, S. Chopra, Y. LeCun. Dimensionality Reduction by Learning an
    Invariant Mapping. CVPR 2006.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmetric import DeepMetricLearner
    >>> X, y = load_iris(return_X_y=True)
    >>> # iris has 3 classes, too few to validate on held-out ones: validation=None
    >>> dml = DeepMetricLearner(embedding_dim=8, max_epochs=2, validation=None, random_state=0)
    >>> dml.fit(X, y).transform(X).shape
    (150, 8)
    """

    _parameter_constraints = {
        **ENGINE_CONSTRAINTS,
        **ENCODER_CONSTRAINTS,
        "loss": "no_validation",  # a name of METRIC_LOSSES or a loss object: make_metric_loss checks
        "loss_params": [None, dict],
        "miner": "no_validation",  # None, a name of MINERS or a miner object: make_miner checks
        "miner_params": [None, dict],
        "m_per_class": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
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
        loss="multi_similarity",
        loss_params=None,
        miner=None,
        miner_params=None,
        m_per_class=4,
        normalize=True,
        augment=False,
        optimizer="adam",
        lr=1e-4,
        weight_decay=0.0,
        batch_size=32,
        max_epochs=20,
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

    # ------------------------------------------------------------- checks
    def _check_sampling(self, y):
        """Every check of the labels against the loss and the sampler, before training."""
        counts = np.bincount(y)
        n_classes = counts.size
        m = self.m_per_class
        if self.batch_size < 2 * m:
            raise ValueError(
                f"batch_size={self.batch_size} is smaller than the m_per_class sampler "
                f"needs: a batch holds m_per_class={m} samples of at least 2 classes, "
                f"so batch_size must be at least {2 * m}."
            )
        if self.batch_size % m:
            lower, upper = self.batch_size - self.batch_size % m, self.batch_size - self.batch_size % m + m
            raise ValueError(
                f"batch_size={self.batch_size} is not a multiple of m_per_class={m}: a batch "
                f"holds m_per_class samples of each of its classes. Use batch_size={lower} "
                f"or {upper}."
            )
        if isinstance(self.loss, str) and self.loss in NEEDS_POSITIVES and counts.min() < 2:
            single = self.classes_[counts < 2]
            raise ValueError(
                f"loss={self.loss!r} needs positives (two samples of a class), but "
                f"class(es) {list(single[:5])} have a single sample; remove them or use "
                "loss='proxy_anchor' or 'arcface'."
            )
        return min(self.batch_size, m * n_classes)

    # ---------------------------------------------------------- the network
    def _initialize_module(self):
        torch = import_torch("DeepMetricLearner")
        encoder, emb_dim = self._build_encoder()
        if self.normalize:
            encoder = self._unit_norm(encoder)
        self.embedding_dim_ = emb_dim
        self.loss_ = make_metric_loss(self.loss, len(self.classes_), emb_dim, self.loss_params)
        self.miner_ = make_miner(self.miner, self.miner_params)
        self._has_head = False
        if isinstance(self.loss_, PairLoss):
            head = self.loss_.make_head(emb_dim)
            self._has_head = head is not None
            loss_module = head if head is not None else torch.nn.Identity()
        else:
            loss_module = self.loss_
        self.module_ = torch.nn.ModuleDict({"encoder": encoder, "loss": loss_module}).to(self.device_)

    def get_loss(self, batch, training=False):
        """The loss of a class-balanced batch ``(x, labels)`` (the engine's hook)."""
        x, labels = batch
        emb = self.module_["encoder"](x)
        mined = self.miner_(emb, labels) if training and self.miner_ is not None else None
        if not isinstance(self.loss_, PairLoss):
            return self.loss_(emb, labels, mined)
        from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

        a1, p, a2, n = lmu.convert_to_pairs(mined, labels)
        a, b = torch_cat(a1, a2), torch_cat(p, n)
        target = torch_cat(a1.new_ones(a1.shape, dtype=emb.dtype), a2.new_zeros(a2.shape, dtype=emb.dtype))
        if a.numel() == 0:
            return emb.sum() * 0.0
        return self.loss_(emb[a], emb[b], target, self.module_["loss"] if self._has_head else None)

    def iter_batches(self, data, training):
        """Class-balanced batches ``(x, labels)`` on the device."""
        torch = import_torch("DeepMetricLearner")
        X, y = data["X"], data["y"]
        batch = data["batch_size"]
        if training:
            order = _m_per_class_order(y, self.m_per_class, batch, max(len(y), batch), data["rng"])
        else:
            order = data["order"]
        augment = training and self.augment and self.input_kind_ == "image"
        for start in range(0, len(order) - batch + 1, batch):
            b = order[start : start + batch]
            x = torch.from_numpy(X[b]).to(self.device_)
            if augment:
                x = random_affine(x, self._batch_generator)
            yield x, torch.from_numpy(y[b]).to(self.device_)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the encoder on class-balanced batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images
            (n_samples, H, W), (n_samples, H, W, C), (n_samples, C, H, W)
            (uint8 in [0, 255] or float in [0, 1]), or a list of image paths.
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        Xn, y_enc = self._validate_fit_input(X, y)
        self._check_sampling(y_enc)
        import_optional("pytorch_metric_learning", "DeepMetricLearner")
        rng = check_random_state(self.random_state)
        idx_train, idx_val, self.validation_kind_ = self._split_for_validation(y_enc, rng)
        if idx_val is not None and np.unique(y_enc[idx_val]).size < 2:
            idx_val, self.validation_kind_ = None, None
            idx_train = np.arange(y_enc.shape[0])
        if idx_val is not None:
            self.validation_classes_ = self.classes_[np.unique(y_enc[idx_val])]
        self._train(Xn, y_enc, idx_train, idx_val, rng)
        return self

    def _training_data(self, Xn, y_enc, idx_train, idx_val, rng, one_shot=False):
        """(train, valid) data of the engine; sets ``batch_size_`` and the PCA-init input."""
        # The training classes fill the batches (fewer once classes are held out).
        self.batch_size_ = min(self.batch_size, self.m_per_class * np.unique(y_enc[idx_train]).size)
        train = {"X": Xn[idx_train], "y": y_enc[idx_train], "rng": rng, "batch_size": self.batch_size_}
        valid = None
        if idx_val is not None:
            yv = y_enc[idx_val]
            # Fewer classes may have validation samples: the batches shrink to fit them.
            batch = min(self.batch_size_, self.m_per_class * np.unique(yv).size)
            order = _m_per_class_order(
                yv, self.m_per_class, batch, max(len(yv), batch), np.random.RandomState(_VALID_SEED)
            )
            valid = {"X": Xn[idx_val], "y": yv, "order": order, "batch_size": batch}
            if one_shot:
                valid["one_shot"] = self._one_shot_data(Xn, y_enc, idx_val, rng)
        self._init_data = train["X"]
        return train, valid


def torch_cat(a, b):
    return import_torch("DeepMetricLearner").cat([a, b])
