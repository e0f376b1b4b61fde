"""The data sets every benchmark draws from, and the folds they are scored on.

A :class:`Dataset` is feature vectors ``X`` and labels ``y``, plus, for image
data, the images and a frozen backbone for the "CNN features + ..." methods.
"""

import functools
import time
from dataclasses import dataclass

import numpy as np

SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits")
DOWNLOADABLE = ("mnist", "fashion_mnist", "omniglot")
DEFAULT_DATASETS = (*SKLEARN_DATASETS, "digits_cnn")
QUICK_DATASETS = ("iris", "digits_cnn")
DATASET_NAMES = (*DEFAULT_DATASETS, *DOWNLOADABLE)
SOURCE_CLASSES = (0, 1, 2, 3, 4)  # digits_cnn: the CNN is pretrained on these, scored on the rest
OMNIGLOT_CHARACTERS = 50  # Omniglot: the first 50 characters, all 20 drawings each


class DatasetUnavailable(RuntimeError):
    """A data set that cannot be loaded here (no network, not downloaded)."""


@dataclass
class Dataset:
    name: str
    X: np.ndarray
    y: np.ndarray
    images: np.ndarray = None
    backbone: object = None
    input_size: object = None
    note: str = ""
    prep_time: float = 0.0


def load_sklearn(name):
    """(X, y) of one of the data sets that ship with scikit-learn."""
    import sklearn.datasets

    if name not in SKLEARN_DATASETS:
        raise ValueError(f"Unknown data set {name!r}; choose from {list(SKLEARN_DATASETS)}.")
    return getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)


def stratified_folds(X, y, n_splits=3, seed=0):
    """The folds every method is evaluated on: a list of (train, test) indices."""
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(X, y))


def stratified_subsample(y, n, seed):
    """Indices of a stratified subsample of size n (all indices when n >= len(y))."""
    if n is None or n >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(idx)


def fold0_pairs(name, seed=0):
    """Fold 0 of a data set, scaled on its training part, with ``20 * n_classes**2`` pairs
    of each kind drawn from that part (both libraries' default), for the solver checks.

    Returns (X_train, X_test, y_train, y_test, pairs, pair_labels).
    """
    from sklearn.preprocessing import StandardScaler

    from skmetric.constraints import pairs_from_indices, sample_pairs

    X, y = load_sklearn(name)
    train, test = stratified_folds(X, y, n_splits=3, seed=seed)[0]
    scaler = StandardScaler().fit(X[train])
    Xs, Xt = scaler.transform(X[train]), scaler.transform(X[test])
    idx, lab = sample_pairs(y[train], 20 * np.unique(y).size ** 2, random_state=seed)
    return Xs, Xt, y[train], y[test], pairs_from_indices(Xs, idx), lab


@functools.lru_cache(maxsize=4)
def pretrained_digits_backbone(quick, seed):
    """The small CNN pretrained on the source digit classes, frozen afterwards.

    Cached: the benchmark, the grid search and the retrieval example share it
    within one process (the extractor copies the module, never modifies it).
    """
    from .registry import settings
    from .transfer import pretrain_digits_cnn

    return pretrain_digits_cnn(
        source_classes=SOURCE_CLASSES,
        epochs=settings(quick)["cnn_pretrain_epochs"],
        random_state=seed,
        verbose=0,
    )


def digits_transfer(quick=False, seed=0, max_samples=None):
    """Target digit classes (5-9): images, labels, and the pretrained backbone."""
    from skmetric.datasets import load_digits_images

    images, y = load_digits_images()
    target = ~np.isin(y, SOURCE_CLASSES)
    images, y = images[target], y[target]
    idx = stratified_subsample(y, max_samples, seed)
    return images[idx], y[idx], pretrained_digits_backbone(quick, seed)


def cnn_features(images, backbone, input_size=None, random_state=None):
    """Frozen-CNN features of images (the extractor has nothing to learn; ``random_state``
    seeds the random weights of a named backbone)."""
    from .registry import DEVICE, _sk

    ext = _sk("CNNFeatureExtractor")(
        backbone=backbone, weights=None, input_size=input_size, device=DEVICE,
        random_state=random_state,
    )
    return np.asarray(ext.fit(images).transform(images), dtype=np.float64)


def load(name, quick=False, seed=0, data_home=None, download=False):
    """Load a data set by name; raises :class:`DatasetUnavailable` with the reason."""
    t0 = time.perf_counter()
    max_n = 200 if quick else None
    if name in SKLEARN_DATASETS:
        X, y = load_sklearn(name)
        idx = stratified_subsample(y, max_n if name == "digits" else None, seed)
        return Dataset(name, X[idx], y[idx], prep_time=time.perf_counter() - t0)
    if name == "digits_cnn":
        images, y, backbone = digits_transfer(quick, seed, max_samples=max_n)
        X = cnn_features(images, backbone)
        note = "CNN pretrained on digits 0-4, features of digits 5-9"
        return Dataset(name, X, y, images, backbone, None, note, time.perf_counter() - t0)
    if name in DOWNLOADABLE:
        from sklearn.decomposition import PCA

        images, y = load_downloadable(name, 500 if quick else 3000, seed, data_home, download)
        # Pixels -> 64 PCA components (unsupervised, fitted on all images) so the
        # Mahalanobis learners work in a space of digits' size; CNN methods see images.
        flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
        X = PCA(n_components=64, random_state=seed).fit_transform(flat)
        note = (
            "64 PCA components of the pixels; CNN methods: ImageNet ResNet-18 features "
            "(torchvision weights, downloaded once)"
        )
        return Dataset(name, X, y, images, note=note, prep_time=time.perf_counter() - t0)
    raise ValueError(f"Unknown data set {name!r}; choose from {list(DATASET_NAMES)}.")


def load_downloadable(name, n_samples, seed, data_home=None, download=False):
    """Images and labels of MNIST / Fashion-MNIST / Omniglot, or DatasetUnavailable."""
    import skmetric.datasets as ds

    try:
        if name == "omniglot":
            images, y = ds.load_omniglot(data_home=data_home, download=download)
            keep = np.isin(y, np.unique(y)[:OMNIGLOT_CHARACTERS])
            images, y = _downscale(images[keep], 28), y[keep]
        else:
            loader = getattr(ds, f"load_{name}")
            images, y = loader(
                data_home=data_home, download=download, n_samples=n_samples, random_state=seed
            )
    except Exception as exc:  # offline, not downloaded, torchvision missing
        raise DatasetUnavailable(
            f"{name} is not available ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). "
            "Fetch it once with --download (needs a network), or point --data-home at a copy."
        ) from exc
    return np.asarray(images), np.asarray(y)


def _downscale(images, size):
    """Resize uint8 (N, H, W) images to (N, size, size) with PIL (Omniglot is 105x105)."""
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images]
    )
