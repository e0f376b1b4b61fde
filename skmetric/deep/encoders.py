"""Default shared encoders of the Siamese network.

* :class:`KochConvNet` for images (N, C, H, W): the conv-ReLU-maxpool stack of
  Koch et al. (2015) scaled to the input size, then a dense embedding layer.
  Images of at least 96 pixels use the paper's layout (64@10x10, 128@7x7,
  128@4x4 with max-pooling, then 256@4x4); smaller images use 3x3 convolutions
  with one pooling per halving, fewer blocks for small images (two for the
  8x8 scikit-learn digits).
* :class:`MLPEncoder` for feature vectors (N, d).
* :class:`PCASkipEncoder` around either (``encoder_init='pca'``, the default):
  a linear path from the flattened input, initialised with the training
  data's principal axes, plus the network, whose last layer starts at zero.
  The untrained embedding is the PCA projection of the input (the raw-pixel
  distances when ``embedding_dim`` reaches the input's rank), so training
  starts from the raw-input geometry instead of a random projection.
* :class:`RawInput`: the flattened input, the model kept when training never
  beats the raw-input geometry on held-out classes.

This module imports torch; it is only imported when a network is built.
"""

import math

import numpy as np

from .._optional import import_torch

torch = import_torch("skmetric.deep.encoders")
nn = torch.nn

__all__ = ["KochConvNet", "L2Normalize", "MLPEncoder", "PCASkipEncoder", "RawInput", "default_encoder"]

# Above this many input features (e.g. 128x128 grayscale) the PCA skip path is
# not built: the default encoder is the plain network ('random' init).
MAX_SKIP_FEATURES = 16384
# Samples the principal axes are computed from (the first ones of a seeded permutation).
_PCA_SAMPLES = 2000

_ACTIVATIONS = {None: nn.Identity, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


def _activation(name):
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown output activation {name!r}; use one of {list(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]()


class KochConvNet(nn.Module):
    """Koch-style convnet scaled to the input size.

    Parameters
    ----------
    input_shape : (C, H, W)
    embedding_dim : int
        Size of the dense embedding layer (4096 in the paper).
    channels : sequence of int or None
        Output channels of the conv blocks; None picks the paper's
        (64, 128, 128, 256) for large images and (32, 64, 128, 128)[:n_blocks]
        for small ones, where ``n_blocks = clip(floor(log2(min(H, W) / 2)), 1, 4)``.
    out_activation : {None, 'sigmoid', 'relu', 'tanh'}
        Non-linearity on the embedding (the paper uses a sigmoid).
    """

    def __init__(self, input_shape, embedding_dim=64, channels=None, out_activation=None):
        super().__init__()
        c_in, h, w = (int(s) for s in input_shape)
        size = min(h, w)
        layers = []
        if size >= 96:
            channels = tuple(channels or (64, 128, 128, 256))
            kernels = (10, 7, 4, 4)[: len(channels)]
            for i, (c, k) in enumerate(zip(channels, kernels)):
                layers += [nn.Conv2d(c_in, c, k), nn.ReLU()]
                if i < len(channels) - 1:
                    layers.append(nn.MaxPool2d(2))
                c_in = c
        else:
            n_blocks = int(min(4, max(1, math.floor(math.log2(max(size, 2) / 2)))))
            channels = tuple(channels or (32, 64, 128, 128)[:n_blocks])
            for c in channels:
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU()]
                if min(h, w) >= 2:
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
                c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *(int(s) for s in input_shape))).shape[1]
        self.embedding = nn.Sequential(nn.Linear(n_flat, int(embedding_dim)), _activation(out_activation))

    def forward(self, x):
        return self.embedding(self.features(x))


class MLPEncoder(nn.Module):
    """Fully connected encoder for feature vectors: (Linear-ReLU)* then Linear.

    Parameters
    ----------
    n_features : int
    embedding_dim : int
    hidden_layer_sizes : sequence of int
    out_activation : {None, 'sigmoid', 'relu', 'tanh'}
    """

    def __init__(self, n_features, embedding_dim=64, hidden_layer_sizes=(128,), out_activation=None):
        super().__init__()
        layers, d = [], int(n_features)
        for h in hidden_layer_sizes:
            layers += [nn.Linear(d, int(h)), nn.ReLU()]
            d = int(h)
        layers += [nn.Linear(d, int(embedding_dim)), _activation(out_activation)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class L2Normalize(nn.Module):
    """Scale each embedding (row) to unit L2 norm."""

    def forward(self, x):
        return nn.functional.normalize(x, p=2, dim=1)


class RawInput(nn.Module):
    """The input itself, flattened: the raw-input geometry as an encoder.

    What SiameseNet and DeepMetricLearner return when their transfer
    validation finds that no training beats the raw input (``raw_geometry_``):
    Euclidean distances of its output are exactly the raw-input distances.
    """

    def forward(self, x):
        return x.flatten(1)


class PCASkipEncoder(nn.Module):
    """``branch(x) + W (flatten(x) - mean)``, then the output activation.

    ``W`` (embedding_dim x n_features, trained) starts as the top principal
    axes of the training data (rows past its rank are zero) and ``mean`` is
    its mean (a buffer); the last Linear layer of ``branch`` starts at zero.
    Before training the embedding is therefore the PCA projection of the
    input: Euclidean distances between embeddings are the raw-input
    distances (exactly, when ``embedding_dim`` is at least the rank). The
    network then learns a correction on top of the raw geometry; with few
    training classes it can only move away from it as far as the
    class-disjoint validation of the estimators lets it.

    Parameters
    ----------
    branch : nn.Module
        The network (no output activation); its last ``nn.Linear`` is zeroed.
    X : ndarray of shape (n_samples, ...)
        Training input (network input form) for the principal axes.
    embedding_dim : int
    out_activation : {None, 'sigmoid', 'relu', 'tanh'}
    random_state : int
        Picks the samples used for the principal axes when there are many.
    """

    def __init__(self, branch, X, embedding_dim, out_activation=None, random_state=0):
        super().__init__()
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        if X.shape[0] > _PCA_SAMPLES:
            X = X[np.random.RandomState(random_state).permutation(X.shape[0])[:_PCA_SAMPLES]]
        mean = X.mean(axis=0)
        _, _, Vt = np.linalg.svd(X - mean, full_matrices=False)
        W = np.zeros((int(embedding_dim), X.shape[1]))
        k = min(W.shape[0], Vt.shape[0])
        W[:k] = Vt[:k]
        self.branch = branch
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.skip = nn.Linear(X.shape[1], int(embedding_dim), bias=False)
        last = [m for m in branch.modules() if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            self.skip.weight.copy_(torch.tensor(W, dtype=torch.float32))
            last.weight.zero_()
            last.bias.zero_()
        self.activation = _activation(out_activation)

    def forward(self, x):
        z = self.skip(x.flatten(1) - self.mean.to(x.dtype)) + self.branch(x)
        return self.activation(z)


def default_encoder(input_shape, embedding_dim, out_activation=None, hidden_layer_sizes=(128,),
                    channels=None, init_data=None, random_state=0):
    """KochConvNet for image shapes (C, H, W), MLPEncoder for vector shapes (d,).

    With ``init_data`` (the training input) and at most ``MAX_SKIP_FEATURES``
    input features, the network is wrapped in a :class:`PCASkipEncoder`
    that starts at the PCA projection of the input.
    """
    skip = init_data is not None and math.prod(int(s) for s in input_shape) <= MAX_SKIP_FEATURES
    activation = None if skip else out_activation
    if len(input_shape) == 3:
        net = KochConvNet(input_shape, embedding_dim, channels=channels, out_activation=activation)
    else:
        net = MLPEncoder(input_shape[0], embedding_dim, hidden_layer_sizes, out_activation=activation)
    if not skip:
        return net
    return PCASkipEncoder(net, init_data, embedding_dim, out_activation, random_state=random_state)
