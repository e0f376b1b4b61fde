"""skmetric.datasets: digits images and the torchvision loaders on files the tests write."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from skmetric import datasets

pytest.importorskip("torchvision")

pytestmark = pytest.mark.deep


def test_import_does_not_import_torch():
    code = "import skmetric, skmetric.datasets, sys; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_digits_images():
    X, y = datasets.load_digits_images()
    assert X.shape == (1797, 8, 8) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))


def test_data_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SKMETRIC_DATA", str(tmp_path))
    assert datasets.get_data_home() == str(tmp_path)
    assert datasets.get_data_home(tmp_path / "x") == str(tmp_path / "x")


def _write_idx(path, array):
    # The MNIST idx format: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian sizes, data.
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        f.write(np.asarray(array.shape, dtype=">i4").tobytes())
        f.write(array.astype(np.uint8).tobytes())


def _write_mnist(root, folder, seed=0):
    rng = np.random.RandomState(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    data = {}
    for split, n in (("train", 12), ("t10k", 5)):
        X = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        y = rng.randint(0, 10, size=n).astype(np.uint8)
        _write_idx(raw / f"{split}-images-idx3-ubyte", X)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", y)
        data[split] = (X, y)
    return data


@pytest.mark.parametrize(
    "loader, folder",
    [(datasets.load_mnist, "MNIST"), (datasets.load_fashion_mnist, "FashionMNIST")],
    ids=["mnist", "fashion"],
)
def test_mnist_like_loaders_read_idx_files(tmp_path, loader, folder):
    written = _write_mnist(tmp_path, folder)
    X, y = loader(data_home=tmp_path)
    assert X.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(X, written["train"][0])
    np.testing.assert_array_equal(y, written["train"][1])
    X_test, y_test = loader(data_home=tmp_path, train=False)
    np.testing.assert_array_equal(X_test, written["t10k"][0])
    X_sub, y_sub = loader(data_home=tmp_path, n_samples=4, random_state=0)
    assert X_sub.shape == (4, 28, 28)
    rows = [np.flatnonzero((written["train"][0] == x).all(axis=(1, 2)))[0] for x in X_sub]
    np.testing.assert_array_equal(y_sub, written["train"][1][rows])


def test_cifar10_reads_python_batches(tmp_path):
    rng = np.random.RandomState(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(3, 3072)).astype(np.uint8)
        labels = rng.randint(0, 10, size=3).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    X, y = datasets.load_cifar10(data_home=tmp_path)
    assert X.shape == (15, 32, 32, 3) and X.dtype == np.uint8
    first = batches["data_batch_1"][0][0]
    # the files hold planes R, G, B of 32x32; we return height x width x channel
    np.testing.assert_array_equal(X[0, :, :, 1], first[1024:2048].reshape(32, 32))
    assert y[:3].tolist() == batches["data_batch_1"][1]
    X_test, y_test = datasets.load_cifar10(data_home=tmp_path, train=False)
    assert X_test.shape == (3, 32, 32, 3) and y_test.tolist() == batches["test_batch"][1]


def test_omniglot_reads_the_png_folders(tmp_path):
    from PIL import Image

    rng = np.random.RandomState(0)
    base = tmp_path / "omniglot-py" / "images_background"
    written = {}
    for alphabet in ("Beta", "Alpha"):
        for character in ("character02", "character01"):
            folder = base / alphabet / character
            folder.mkdir(parents=True)
            for k in range(2):
                im = (rng.rand(105, 105) > 0.5).astype(np.uint8) * 255
                Image.fromarray(im).save(folder / f"img_{k}.png")
                written[(alphabet, character, k)] = im
    X, y = datasets.load_omniglot(data_home=tmp_path)
    assert X.shape == (8, 105, 105) and X.dtype == np.uint8
    assert y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # sorted alphabet/character folders
    np.testing.assert_array_equal(X[0], written[("Alpha", "character01", 0)])
    np.testing.assert_array_equal(X[7], written[("Beta", "character02", 1)])
    assert datasets.load_omniglot(data_home=tmp_path, n_samples=3)[0].shape == (3, 105, 105)


@pytest.mark.parametrize(
    "loader",
    [datasets.load_mnist, datasets.load_fashion_mnist, datasets.load_cifar10, datasets.load_omniglot],
    ids=["mnist", "fashion", "cifar10", "omniglot"],
)
def test_missing_files_offline_errors(tmp_path, loader, no_network):
    with pytest.raises(FileNotFoundError, match=r"(?s)not found under .*download=True"):
        loader(data_home=tmp_path)
    with pytest.raises(ConnectionError, match=r"(?s)unreachable.*by hand"):
        loader(data_home=tmp_path, download=True)
    assert not any(name.endswith((".gz", ".zip")) for name in os.listdir(tmp_path))
