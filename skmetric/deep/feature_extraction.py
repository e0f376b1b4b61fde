"""Frozen-CNN feature extraction: images -> feature vectors for metric learners."""

import os
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._optional import resolve_device
from ._engine import TorchStateMixin, draw_seed, forward_in_batches, seeded
from ._images import as_image_batch, stack_samples

__all__ = ["CNNFeatureExtractor"]

_CHECK_CHUNK = 4096
_MODULE = HasMethods(["forward", "state_dict"])

# Parameters shared by every estimator built on a CNN backbone.
_BACKBONE_CONSTRAINTS = {
    "backbone": [str, _MODULE],
    "weights": [None, str, os.PathLike, HasMethods(["get_state_dict"])],
    "input_size": [None, Interval(Integral, 1, None, closed="left"), tuple],
    "normalize": [StrOptions({"auto"}), None, tuple, list],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": "no_validation",  # 'auto', 'cpu', 'cuda:0' or a torch.device
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def _is_path_list(X):
    return isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], (str, os.PathLike))


def check_images(X, size=None):
    """Validate images cheaply, without keeping a float copy of all of them.

    Arrays are checked whole (shape, dtype, range, NaN); a list of paths is
    checked for existence and, without ``size``, for a common image size,
    reading only the file headers.
    """
    if sp.issparse(X):
        raise TypeError(
            "Sparse input is not supported: images must be a dense array or a list of paths."
        )
    if _is_path_list(X):
        from PIL import Image

        sizes = set()
        for p in X:
            if not os.path.isfile(p):
                raise ValueError(f"Image file not found: {os.fspath(p)!r}.")
            if size is None:
                with Image.open(p) as im:
                    sizes.add(im.size)
        if len(sizes) > 1:
            shapes = sorted((h, w) for w, h in sizes)[:4]
            raise ValueError(
                f"Images in the list have different sizes {shapes}; pass input_size "
                "to resize them to a common size."
            )
        return len(X)
    X = np.asarray(stack_samples(X))
    if X.ndim == 2:
        raise ValueError(
            f"Expected images of shape (N, H, W), (N, H, W, C) or (N, C, H, W), or a list "
            f"of image paths; got a 2D array of shape {X.shape}. Reshape flattened "
            "images, e.g. X.reshape(-1, 8, 8)."
        )
    if X.ndim not in (3, 4):
        as_image_batch(X)  # raises the shape message
    # In chunks, so that validating never holds a float copy of every image.
    for start in range(0, max(len(X), 1), _CHECK_CHUNK):
        as_image_batch(X[start : start + _CHECK_CHUNK], copy=False)
    return len(X)


class _CNNBase(TorchStateMixin, BaseEstimator):
    """Shared machinery: network building, batching, pickling via state_dict.

    Subclasses set ``network_``, ``preprocessing_`` and ``device_`` in fit and
    implement ``_restore_network(state_dict)``, which rebuilds the network
    on unpickling (see :class:`~skmetric.deep._engine.TorchStateMixin`).
    """

    _torch_modules = ("network_",)

    def _device(self):
        return resolve_device(self.device)

    def _check_transform_input(self, X):
        # The minimum: 2-D arrays get their own message; path lists are checked
        # whole (headers only), as their batches are read one at a time.
        if getattr(X, "ndim", None) == 2 or _is_path_list(X):
            check_images(X, size=self.input_size)

    def _image_batches(self, X):
        """Yield float32 (n, C, H, W) numpy batches in [0, 1]."""
        size = self.preprocessing_.size if _is_path_list(X) else None
        X = stack_samples(X)
        n = len(X)
        for start in range(0, n, self.batch_size):
            chunk = X[start : start + self.batch_size]
            yield as_image_batch(list(chunk) if _is_path_list(X) else chunk, size=size, copy=False)

    def _forward_batches(self, X, forward, desc):
        """Run ``forward`` (a preprocessed tensor -> (n, D) tensor) over X."""
        from ._backbones import preprocess

        n_batches = int(np.ceil(len(X) / self.batch_size))
        return forward_in_batches(
            lambda x: forward(preprocess(x, self.preprocessing_)),
            self._image_batches(X), self.device_, self.verbose, desc, total=n_batches,
        )

    def _rebuild_module(self, name, state_dict):
        return self._restore_network(state_dict)


class CNNFeatureExtractor(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _CNNBase):
    """Images -> features of a frozen convolutional network.

    Transfer learning by feature extraction (Razavian et al., 2014;
    Yosinski et al., 2014): a network trained on a source task (ImageNet, or
    another data set) is used, unchanged, to map images to vectors on which a
    metric learner and a k-NN classifier then work. Nothing is optimised:
    ``fit`` validates the input and builds the frozen network (eval mode, no
    gradients).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default='resnet18'
        A torchvision classification model name (``torchvision.models.
        get_model``), or your own module (its output is the feature vector
        when ``layer`` is None). The module is copied, never modified.
    weights : None, str or path, default=None
        None: random initialisation (no download). A torchvision weights name
        of the backbone ("DEFAULT", "IMAGENET1K_V1", or
        "ResNet18_Weights.IMAGENET1K_V1"): read from the torch hub cache,
        downloaded only when missing; without network this fails within
        seconds with a ConnectionError that says where to put the file. A
        path: a local file holding a state_dict (a classifier head of another
        size is accepted).
    layer : str or None, default=None
        None: the pooled penultimate layer (the input of the final Linear
        classifier) of a torchvision model, or the output of a user module.
        A node name (see ``torchvision.models.feature_extraction.
        get_graph_node_names``, e.g. 'layer3' for ResNets) reads that node.
    pooling : {'avg', 'max', 'flatten'}, default='avg'
        How a feature map (N, C, H, W) or token sequence (N, T, D) read from
        ``layer`` becomes a vector.
    input_size : int, (height, width) or None, default=None
        Resize every image exactly to this size. None follows the weights'
        own transforms (resize the shorter side, centre-crop; torchvision's
        256/224 ImageNet preset when weights=None or a file) for torchvision
        models, and keeps the images' size for a user module.
    normalize : 'auto', None or (mean, std), default='auto'
        'auto': the weights' mean/std (ImageNet's when there are none).
    batch_size : int, default=64
    device : str or torch.device, default='auto'
        'auto' uses CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation of ``weights=None`` (and of a
        classifier head a weights file does not fill): two fits with the
        same integer give identical features on the CPU.
    verbose : int, default=0
        A tqdm progress bar over batches in ``transform``.

    Attributes
    ----------
    network_ : torch.nn.Module
        The frozen feature network (pickled as a state_dict and rebuilt).
    preprocessing_ : Preprocessing
        Resize/crop/normalisation applied to each batch.
    device_ : torch.device
    n_features_out_ : int
        Length of the feature vectors.

    Notes
    -----
    Input: arrays (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3},
    uint8 in [0, 255] or float in [0, 1], or a list of image paths.
    Grayscale images are repeated to 3 channels. A 2-D array is rejected
    (flattened images are ambiguous); reshape it first.

    References
    ----------
    A. S. Razavian, H. Azizpour, J. Sullivan, S. Carlsson. CNN features
    off-the-shelf: an astounding baseline for recognition. CVPR Workshops,
    2014.

    J. Yosinski, J. Clune, Y. Bengio, H. Lipson. How transferable are features
    in deep neural networks? NeurIPS, 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.deep.feature_extraction import CNNFeatureExtractor
    >>> X = np.random.RandomState(0).rand(4, 32, 32, 3).astype("float32")
    >>> CNNFeatureExtractor(weights=None, input_size=32).fit_transform(X).shape
    (4, 512)
    """

    _parameter_constraints = {
        **_BACKBONE_CONSTRAINTS,
        "layer": [None, str],
        "pooling": [StrOptions({"avg", "max", "flatten"})],
    }

    def __init__(
        self,
        backbone="resnet18",
        weights=None,
        layer=None,
        pooling="avg",
        input_size=None,
        normalize="auto",
        batch_size=64,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.input_size = input_size
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the images and build the frozen network.

        Parameters
        ----------
        X : array-like or list of image paths
            See Notes; only validated.
        y : ignored

        Returns
        -------
        self
        """
        from ._backbones import build_network, preprocessing_for

        check_images(X, size=self.input_size)
        self.preprocessing_ = preprocessing_for(
            self.backbone, self.weights, self.input_size, self.normalize
        )
        self.device_ = self._device()
        with seeded(draw_seed(self.random_state)):
            network = build_network(self.backbone, self.weights, self.layer)
        self.network_ = network.to(self.device_)
        # One image through the network: catches an input size the network
        # cannot take now rather than in transform, and sizes the output.
        first = X[:1] if not _is_path_list(X) else list(X[:1])
        self.n_features_out_ = self._features(first).shape[1]
        return self

    def _features(self, X):
        from ._backbones import pool_features

        def forward(x):
            return pool_features(self.network_(x), self.layer, self.pooling)

        return self._forward_batches(X, forward, "features")

    def transform(self, X):
        """Feature vectors of the images.

        Parameters
        ----------
        X : array-like or list of image paths

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out_), float32
        """
        check_is_fitted(self, "network_")
        self._check_transform_input(X)
        return self._features(X)

    @property
    def _n_features_out(self):
        return self.n_features_out_

    def _restore_network(self, state):
        from ._backbones import build_network

        return build_network(self.backbone, self.weights, self.layer, state=state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
