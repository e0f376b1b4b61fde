"""Transfer demonstration on scikit-learn's digits: pretrain on some classes, reuse.

:func:`pretrain_cnn` trains the same small CNN on any source images (e.g. the
font glyphs of :func:`skmetric.datasets.make_font_glyphs`, as
``benchmarks.bench_transfer_kinds`` does); :func:`pretrain_digits_cnn` on
some digit classes:

A small CNN is trained to classify the *source* digit classes (0-4 by
default), then frozen; its penultimate layer is a feature extractor for the
*target* classes it never saw (5-9), used as

>>> from benchmarks.transfer import pretrain_digits_cnn       # doctest: +SKIP
>>> from skmetric.deep.feature_extraction import CNNFeatureExtractor
>>> net = pretrain_digits_cnn()                                   # doctest: +SKIP
>>> features = CNNFeatureExtractor(backbone=net, weights=None)    # doctest: +SKIP

The training code ships, not a weights file: it runs in seconds on a CPU.
"""

import numpy as np
from sklearn.utils import check_random_state

from skmetric._optional import import_torch

__all__ = ["digits_cnn", "pretrain_cnn", "pretrain_digits_cnn", "split_digits"]


def digits_cnn(channels=(32, 64)):
    """The small CNN for 8x8 digit images; its output is the embedding.

    Two 3x3 convolution stages (``channels``, batch norm, ReLU, one 2x2 max
    pooling between them) and adaptive average pooling to 2x2, flattened:
    3 x H x W -> ``4 * channels[1]`` (256 by default). The embedding is the
    pooled convolutional map rather than a fully connected layer trained on
    the source classes: such a layer specialises to those classes and
    transfers worse to new ones. An ``nn.Sequential``, so it pickles without
    custom classes; works for any input of at least 2x2 pixels.
    """
    nn = import_torch("digits_cnn").nn
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(3, c1, 3, padding=1),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.Conv2d(c1, c1, 3, padding=1),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.BatchNorm2d(c2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
    )


def split_digits(source_classes=(0, 1, 2, 3, 4)):
    """Digits images split by class: ((X_source, y_source), (X_target, y_target)).

    Images are float32 (N, 8, 8) in [0, 1] (:func:`skmetric.datasets.load_digits_images`).
    """
    from skmetric.datasets import load_digits_images

    X, y = load_digits_images()
    source = np.isin(y, np.asarray(source_classes))
    if not source.any() or source.all():
        raise ValueError(
            f"source_classes={tuple(source_classes)} must be a non-empty proper subset of 0-9."
        )
    return (X[source], y[source]), (X[~source], y[~source])


def pretrain_digits_cnn(
    source_classes=(0, 1, 2, 3, 4),
    epochs=15,
    channels=(32, 64),
    batch_size=64,
    learning_rate=3e-3,
    random_state=0,
    verbose=0,
):
    """Train :func:`digits_cnn` on the source digit classes and freeze it.

    :func:`pretrain_cnn` on the images of ``source_classes`` of
    scikit-learn's digits (:func:`split_digits`).

    Parameters
    ----------
    source_classes : sequence of int, default=(0, 1, 2, 3, 4)
    epochs, channels, batch_size, learning_rate, random_state, verbose
        As in :func:`pretrain_cnn`.

    Returns
    -------
    net : torch.nn.Sequential
        Frozen (eval mode, no gradients); maps (N, 3, H, W) to (N, 4 * channels[1]).
    """
    (X, y), _ = split_digits(source_classes)
    return pretrain_cnn(X, y, epochs=epochs, channels=channels, batch_size=batch_size,
                        learning_rate=learning_rate, random_state=random_state, verbose=verbose)


def pretrain_cnn(
    X,
    y,
    epochs=15,
    channels=(32, 64),
    batch_size=64,
    learning_rate=3e-3,
    random_state=0,
    verbose=0,
):
    """Train :func:`digits_cnn` to classify the source images ``X`` (labels ``y``), freeze it.

    The network plus a linear head (after dropout 0.3) is trained with
    cross-entropy (Adam), with the preprocessing that
    ``CNNFeatureExtractor(backbone=net, weights=None)`` and
    ``FineTunedCNN(backbone=net, weights=None)`` apply (grayscale to 3
    channels, ImageNet normalisation, native size), so the returned module
    drops straight into them. The head is discarded.

    Parameters
    ----------
    X : ndarray of shape (N, H, W), float in [0, 1]
        Source images (e.g. 8x8 digits, or font glyphs from
        :func:`skmetric.datasets.make_font_glyphs`).
    y : ndarray of shape (N,)
        Source class labels.
    epochs : int, default=15
    channels : (int, int), default=(32, 64)
        Channels of the two convolution stages; the embedding has
        ``4 * channels[1]`` dimensions.
    batch_size : int, default=64
    learning_rate : float, default=3e-3
    random_state : int, RandomState or None, default=0
        Seeds initialisation and batch order; deterministic on CPU.
    verbose : int, default=0
        A tqdm bar over epochs.

    Returns
    -------
    net : torch.nn.Sequential
        Frozen (eval mode, no gradients); maps (N, 3, H, W) to (N, 4 * channels[1]).
    """
    from skmetric.deep._backbones import preprocessing_for
    from skmetric.deep._images import as_image_batch
    from skmetric.deep._engine import draw_seed
    from skmetric.deep.fine_tuning import train_classifier

    torch = import_torch("pretrain_cnn")
    classes, targets = np.unique(np.asarray(y), return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"pretrain_cnn needs at least 2 source classes; got {classes.size}.")
    seed = draw_seed(check_random_state(random_state))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = digits_cnn(channels)
        head = torch.nn.Sequential(
            torch.nn.Dropout(0.3), torch.nn.Linear(4 * channels[1], len(classes))
        )
        classifier = torch.nn.Sequential(net, head)
        spec = preprocessing_for(net, None)
        train_classifier(
            classifier,
            as_image_batch(X),
            targets,
            spec,
            max_epochs=epochs,
            batch_size=batch_size,
            lr=learning_rate,
            seed=seed,
            device=torch.device("cpu"),
            verbose=verbose,
        )
    net.eval()
    net.requires_grad_(False)
    return net
