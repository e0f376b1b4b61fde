"""Image data set loaders (``skmetric.datasets.load_*``).

* :func:`load_digits_images`: scikit-learn's digits as (N, 8, 8) images
  (ships with scikit-learn, no download).
* :func:`load_mnist`, :func:`load_fashion_mnist`, :func:`load_cifar10`,
  :func:`load_omniglot`: read through torchvision's data sets from
  ``data_home`` (``$SKMETRIC_DATA`` or ``~/skmetric_data``), in torchvision's
  on-disk layout; downloaded only with ``download=True``. Missing files
  without ``download``, or an unreachable host, raise within seconds with a
  message that says where the files go.

Images come back as uint8 arrays, (N, H, W) for grayscale and (N, H, W, 3)
for colour, labels as int64. Importing this module does not import torch.
"""

import os
import pickle

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state

from .._download import check_reachable, download_timeout
from .._optional import import_torchvision

__all__ = [
    "get_data_home",
    "load_cifar10",
    "load_digits_images",
    "load_fashion_mnist",
    "load_mnist",
    "load_omniglot",
]


def get_data_home(data_home=None):
    """The folder of the torchvision data sets.

    ``data_home`` if given, else ``$SKMETRIC_DATA``, else ``~/skmetric_data``.
    """
    if data_home is None:
        data_home = os.environ.get("SKMETRIC_DATA", os.path.join("~", "skmetric_data"))
    return os.path.abspath(os.path.expanduser(os.fspath(data_home)))


def load_digits_images():
    """scikit-learn's handwritten digits as images.

    Returns
    -------
    X : ndarray of shape (1797, 8, 8), float32 in [0, 1]
        The 0-16 pixel counts divided by 16.
    y : ndarray of shape (1797,), int64
    """
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    return X, digits.target.astype(np.int64)


def _subset(n, n_samples, random_state):
    if n_samples is None or n_samples >= n:
        return slice(None)
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1; got {n_samples}.")
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, size=int(n_samples), replace=False))


def _open(name, factory, root, download, url, layout):
    """Build a torchvision data set, with the offline errors of this module."""
    try:
        return factory(download=False)
    except RuntimeError as exc:  # torchvision: "Dataset not found ..."
        missing = exc
    hint = (
        f"Copy the files there by hand ({layout} under {root}), or set data_home / "
        "$SKMETRIC_DATA to a folder that has them."
    )
    if not download:
        raise FileNotFoundError(
            f"{name} not found under {root} ({missing}). Pass download=True to fetch it "
            f"(needs network access). {hint}"
        )
    check_reachable(url, f"the {name} data set", hint)
    os.makedirs(root, exist_ok=True)
    with download_timeout():
        return factory(download=True)


def _mnist_like(cls_name, name, url, data_home, train, download, n_samples, random_state):
    tv = import_torchvision(f"skmetric.datasets.load_{name.lower().replace('-', '_')}")
    root = get_data_home(data_home)
    cls = getattr(tv.datasets, cls_name)
    layout = f"{cls_name}/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte"
    ds = _open(
        name, lambda download: cls(root, train=train, download=download), root, download, url, layout
    )
    keep = _subset(len(ds.data), n_samples, random_state)
    return ds.data.numpy()[keep], ds.targets.numpy().astype(np.int64)[keep]


def load_mnist(data_home=None, train=True, download=False, n_samples=None, random_state=0):
    """MNIST handwritten digits (LeCun et al., 1998) through torchvision.

    Parameters
    ----------
    data_home : str or path, default=None
        See :func:`get_data_home`; files live in ``MNIST/raw``.
    train : bool, default=True
        The 60,000 training images, or the 10,000 test images.
    download : bool, default=False
        Fetch missing files (needs network access).
    n_samples : int or None, default=None
        A random subset of this many images.
    random_state : int, RandomState or None, default=0
        Picks the subset.

    Returns
    -------
    X : ndarray of shape (N, 28, 28), uint8
    y : ndarray of shape (N,), int64
    """
    return _mnist_like(
        "MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/",
        data_home, train, download, n_samples, random_state,
    )


def load_fashion_mnist(data_home=None, train=True, download=False, n_samples=None, random_state=0):
    """Fashion-MNIST clothing images (Xiao et al., 2017) through torchvision.

    Same parameters and returns as :func:`load_mnist`; files live in
    ``FashionMNIST/raw``.
    """
    return _mnist_like(
        "FashionMNIST", "Fashion-MNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        data_home, train, download, n_samples, random_state,
    )


def _cifar10_class(tv):
    from torchvision.datasets.utils import check_integrity

    class CIFAR10(tv.datasets.CIFAR10):
        # torchvision checks each batch's MD5, which only the original files
        # pass; downloads are still verified (against the archive's MD5), but
        # files placed by hand only need to exist.
        def _check_integrity(self):
            return all(
                os.path.isfile(os.path.join(self.root, self.base_folder, f))
                for f, _ in self.train_list + self.test_list
            )

        def _load_meta(self):
            path = os.path.join(self.root, self.base_folder, self.meta["filename"])
            if not check_integrity(path):
                raise RuntimeError(f"CIFAR-10 metadata file not found: {path}")
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return CIFAR10


def load_cifar10(data_home=None, train=True, download=False, n_samples=None, random_state=0):
    """CIFAR-10 colour images (Krizhevsky, 2009) through torchvision.

    Parameters
    ----------
    data_home, download, n_samples, random_state
        As in :func:`load_mnist`; files live in ``cifar-10-batches-py``
        (``data_batch_1`` ... ``data_batch_5``, ``test_batch``, ``batches.meta``).
    train : bool, default=True
        The 50,000 training images, or the 10,000 test images.

    Returns
    -------
    X : ndarray of shape (N, 32, 32, 3), uint8
    y : ndarray of shape (N,), int64
    """
    tv = import_torchvision("skmetric.datasets.load_cifar10")
    root = get_data_home(data_home)
    cls = _cifar10_class(tv)
    ds = _open(
        "CIFAR-10",
        lambda download: cls(root, train=train, download=download),
        root,
        download,
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
    )
    keep = _subset(len(ds.data), n_samples, random_state)
    return np.ascontiguousarray(ds.data[keep]), np.asarray(ds.targets, dtype=np.int64)[keep]


def _omniglot_class(tv):
    class Omniglot(tv.datasets.Omniglot):
        # torchvision checks the MD5 of the downloaded zip, which is not kept
        # when the images were copied by hand; the image folder is enough.
        def _check_integrity(self):
            return os.path.isdir(os.path.join(self.root, self._get_target_folder())) or (
                super()._check_integrity()
            )

    return Omniglot


def load_omniglot(data_home=None, background=True, download=False, n_samples=None, random_state=0):
    """Omniglot handwritten characters (Lake et al., 2015) through torchvision.

    Parameters
    ----------
    data_home, download, n_samples, random_state
        As in :func:`load_mnist`; images live in
        ``omniglot-py/images_background/<alphabet>/<character>/*.png`` (and
        ``images_evaluation``).
    background : bool, default=True
        The 964-character background set, or the 659-character evaluation set.

    Returns
    -------
    X : ndarray of shape (N, 105, 105), uint8
        Black strokes (0) on white (255), as in the files.
    y : ndarray of shape (N,), int64
        Character index (alphabet/character folders in sorted order).
    """
    from PIL import Image

    tv = import_torchvision("skmetric.datasets.load_omniglot")
    root = get_data_home(data_home)
    cls = _omniglot_class(tv)
    ds = _open(
        "Omniglot",
        lambda download: cls(root, background=background, download=download),
        root,
        download,
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_background.zip",
        "omniglot-py/images_background/<alphabet>/<character>/*.png",
    )
    # torchvision lists folders in file-system order; sort for stable labels.
    items = [
        (os.path.join(ds.target_folder, character, name), label)
        for label, character in enumerate(sorted(ds._characters))
        for name in sorted(os.listdir(os.path.join(ds.target_folder, character)))
        if name.endswith(".png")
    ]
    if not items:
        raise FileNotFoundError(f"No Omniglot images found under {ds.target_folder}.")
    keep = np.arange(len(items))[_subset(len(items), n_samples, random_state)]
    images, labels = [], []
    for i in keep:
        path, label = items[i]
        with Image.open(path) as im:
            images.append(np.asarray(im.convert("L"), dtype=np.uint8))
        labels.append(label)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"Omniglot images have different sizes {sorted(shapes)[:4]}.")
    return np.stack(images), np.asarray(labels, dtype=np.int64)

