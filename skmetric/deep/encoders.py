"""Default shared encoders of the Siamese network.

* :class:`KochConvNet` for images (N, C, H, W): the conv-ReLU-maxpool stack of
  Koch et al. (2015) scaled to the input size, then a dense embedding layer.
  Images of at least 96 pixels use the paper's layout (64@10x10, 128@7x7,
  128@4x4 with max-pooling, then 256@4x4); smaller images use 3x3 convolutions
  with one pooling per halving, fewer blocks for small images (two for the
  8x8 scikit-learn digits).
* :class:`MLPEncoder` for feature vectors (N, d).

This module imports torch; it is only imported when a network is built.
"""

import math

from .._optional import import_torch

torch = import_torch("skmetric.deep.encoders")
nn = torch.nn

__all__ = ["KochConvNet", "L2Normalize", "MLPEncoder", "default_encoder"]

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


def default_encoder(input_shape, embedding_dim, out_activation=None, hidden_layer_sizes=(128,), channels=None):
    """KochConvNet for image shapes (C, H, W), MLPEncoder for vector shapes (d,)."""
    if len(input_shape) == 3:
        return KochConvNet(input_shape, embedding_dim, channels=channels, out_activation=out_activation)
    return MLPEncoder(input_shape[0], embedding_dim, hidden_layer_sizes, out_activation=out_activation)
