"""Every deep transformer: seeded fits, strict image input, set_output."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from skmetric.deep.feature_extraction import CNNFeatureExtractor  # noqa: E402
from skmetric.deep.fine_tuning import FineTunedCNN  # noqa: E402
from skmetric.deep.siamese import SiameseNet  # noqa: E402

pytestmark = pytest.mark.deep


def _images(n=12, size=16, seed=0):
    rng = np.random.RandomState(seed)
    return rng.rand(n, size, size, 3).astype(np.float32), np.arange(n) % 2


def _tiny(cls):
    if cls is CNNFeatureExtractor:
        return CNNFeatureExtractor(weights=None, input_size=16, random_state=0)
    if cls is FineTunedCNN:
        return FineTunedCNN(input_size=16, max_epochs=1, batch_size=6, random_state=0)
    if cls is SiameseNet:
        return SiameseNet(conv_channels=(4,), embedding_dim=4, max_epochs=1, n_pairs=16,
                          validation_fraction=0, random_state=0)
    from skmetric import DeepMetricLearner

    pytest.importorskip("pytorch_metric_learning")
    return DeepMetricLearner(conv_channels=(4,), embedding_dim=4, max_epochs=1, batch_size=8,
                             m_per_class=4, random_state=0)


CLASSES = [CNNFeatureExtractor, FineTunedCNN, SiameseNet, "DeepMetricLearner"]


def _cls(c):
    if isinstance(c, str):
        import skmetric

        return getattr(skmetric, c)
    return c


@pytest.mark.parametrize("backbone", ["resnet18"])
def test_same_seed_same_random_weights(backbone):
    X, _ = _images(4)
    a = CNNFeatureExtractor(backbone, weights=None, input_size=16, random_state=0).fit_transform(X)
    b = CNNFeatureExtractor(backbone, weights=None, input_size=16, random_state=0).fit_transform(X)
    c = CNNFeatureExtractor(backbone, weights=None, input_size=16, random_state=1).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c if isinstance(c, str) else c.__name__)
def test_one_image_without_batch_axis_and_mixed_sizes_are_errors(cls):
    est = _tiny(_cls(cls))
    X, y = _images()
    with pytest.raises(ValueError, match="one image .* without a batch axis"):
        est.fit(X[0], y[:16])
    mixed = [X[0], X[1, :8, :8], X[2]]
    with pytest.raises(ValueError, match=r"inconsistent shapes .* expected \(16, 16, 3\)"):
        est.fit(mixed, y[:3])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c if isinstance(c, str) else c.__name__)
def test_set_output_pandas(cls):
    pd = pytest.importorskip("pandas")
    X, y = _images()
    est = _tiny(_cls(cls)).set_output(transform="pandas").fit(X, y)
    out = est.transform(X)
    assert isinstance(out, pd.DataFrame) and out.shape[0] == len(X)
    assert out.columns[0] == f"{type(est).__name__.lower()}0"
