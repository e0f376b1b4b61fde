"""The image pipeline end to end: frozen CNN -> LMNN -> kNN, offline and on CPU."""

import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from skmetric import LMNN  # noqa: E402
from skmetric.datasets import load_digits_images  # noqa: E402
from skmetric.deep.feature_extraction import CNNFeatureExtractor  # noqa: E402
from benchmarks.transfer import pretrain_digits_cnn, split_digits  # noqa: E402

pytestmark = pytest.mark.deep


def digit_images(classes=(0, 1, 7), per_class=15, offset=0):
    """``per_class`` images of each class, starting at the ``offset``-th of that class."""
    X, y = load_digits_images()
    idx = np.concatenate([np.flatnonzero(y == c)[offset:offset + per_class] for c in classes])
    return X[idx], y[idx]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_cnn_lmnn_knn_pipeline_fits_predicts_pickles_and_searches(no_network):
    """The issue's done-when, with no network and (on this machine) no GPU."""
    X, y = digit_images()
    pipe = make_pipeline(
        CNNFeatureExtractor(weights=None, input_size=16),
        LMNN(n_components=8, max_iter=30, random_state=0),
        KNeighborsClassifier(n_neighbors=3),
    )
    pipe.fit(X, y)
    if not torch.cuda.is_available():
        assert pipe[0].device_.type == "cpu"
    X_new, y_new = digit_images(offset=15)  # other images of the same classes
    pred = pipe.predict(X_new)
    assert pred.shape == y_new.shape and np.mean(pred == y_new) > 0.6  # chance is 1/3
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict(X_new), pred)
    np.testing.assert_array_equal(restored[:-1].transform(X_new), pipe[:-1].transform(X_new))

    search = GridSearchCV(pipe, {"kneighborsclassifier__n_neighbors": [1, 3]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["kneighborsclassifier__n_neighbors"] in (1, 3)
    assert search.predict(X).shape == y.shape


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_default_lmnn_on_cnn_features():
    X, y = digit_images(per_class=8)
    X_new, y_new = digit_images(per_class=8, offset=8)  # held-out images
    pipe = make_pipeline(CNNFeatureExtractor(weights=None, input_size=16), LMNN(), KNeighborsClassifier())
    assert pipe.fit(X, y).score(X_new, y_new) > 0.6  # chance is 1/3


def test_pretrained_digits_cnn_transfers_to_new_classes():
    net = pretrain_digits_cnn(epochs=2, random_state=0)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    again = pretrain_digits_cnn(epochs=2, random_state=0)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)

    _, (X_target, y_target) = split_digits((0, 1, 2, 3, 4))
    assert set(np.unique(y_target)) == {5, 6, 7, 8, 9}
    features = CNNFeatureExtractor(backbone=net, weights=None).fit_transform(X_target)
    assert features.shape == (len(X_target), 256)
    accuracy = cross_val_score(KNeighborsClassifier(3), features, y_target, cv=3).mean()
    assert accuracy > 0.8  # chance is 0.2


def test_split_digits_rejects_bad_sources():
    with pytest.raises(ValueError, match="proper subset"):
        split_digits(tuple(range(10)))
