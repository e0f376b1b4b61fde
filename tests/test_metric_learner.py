"""DeepMetricLearner: losses, miners, class-balanced batches, quality, bad input, API."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

torch = pytest.importorskip("torch")
pml = pytest.importorskip("pytorch_metric_learning")
import pytorch_metric_learning.losses  # noqa: E402,F401  (pml.losses, pml.miners below)
import pytorch_metric_learning.miners  # noqa: E402,F401

from skmetric import DeepMetricLearner  # noqa: E402
from skmetric.deep.losses import ContrastiveLoss  # noqa: E402
from skmetric.evaluation import one_shot_accuracy  # noqa: E402

from ._deep_data import blobs  # noqa: E402

pytestmark = pytest.mark.deep

# validation=None: these tests are about other things (class-disjoint validation: test_deep_transfer.py).
TINY = dict(embedding_dim=8, hidden_layer_sizes=(16,), max_epochs=1, batch_size=16, m_per_class=4,
            validation=None, random_state=0)


def _blobs(n_per_class=12, n_classes=4, **kw):
    return blobs(n_per_class=n_per_class, n_classes=n_classes, **kw)


def _digits():
    d = load_digits()
    return d.data / 16.0, d.target


# ---------------------------------------------------------------- losses
@pytest.mark.parametrize(
    "loss", ["triplet", "multi_similarity", "proxy_anchor", "arcface", "ntxent", "contrastive", "binomial_deviance"]
)
def test_every_named_loss_trains(loss):
    X, y = _blobs()
    model = DeepMetricLearner(loss=loss, **{**TINY, "max_epochs": 2}).fit(X, y)
    Z = model.transform(X)
    assert Z.shape == (48, 8) and np.isfinite(Z).all()
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)  # normalize=True
    assert len(model.history_) == 2 and np.isfinite(model.loss_curve_).all()


@pytest.mark.parametrize("miner", ["semihard", "hard", "multi_similarity"])
def test_miners_by_name(miner):
    X, y = _blobs()
    loss = "multi_similarity" if miner == "multi_similarity" else "triplet"
    model = DeepMetricLearner(loss=loss, miner=miner, **TINY).fit(X, y)
    assert type(model.miner_).__module__.startswith("pytorch_metric_learning")


def test_loss_and_miner_objects_and_params():
    X, y = _blobs()
    pml_loss = pml.losses.TripletMarginLoss(margin=0.3)
    miner = pml.miners.TripletMarginMiner(margin=0.3, type_of_triplets="semihard")
    model = DeepMetricLearner(loss=pml_loss, miner=miner, **TINY).fit(X, y)
    assert model.loss_ is not pml_loss and model.loss_.margin == 0.3
    ours = DeepMetricLearner(loss=ContrastiveLoss(margin=0.5), miner="hard", **TINY).fit(X, y)
    assert ours.loss_.margin == 0.5
    named = DeepMetricLearner(loss="proxy_anchor", loss_params={"margin": 0.2}, **TINY).fit(X, y)
    assert named.loss_.margin == 0.2
    # ProxyAnchor's proxies are learned with the encoder.
    assert "loss.proxies" in dict(named.module_.named_parameters())
    with pytest.raises(ValueError, match="Unknown loss"):
        DeepMetricLearner(loss="nope", **TINY).fit(X, y)
    with pytest.raises(ValueError, match="Unknown miner"):
        DeepMetricLearner(miner="nope", **TINY).fit(X, y)


def test_batches_hold_m_samples_of_each_class():
    X, y = _blobs(n_classes=6)
    model = DeepMetricLearner(**{**TINY, "batch_size": 12, "m_per_class": 3})
    seen = []
    original = DeepMetricLearner.get_loss

    def spy(self, batch, training=False):
        seen.append(batch[1].numpy().copy())
        return original(self, batch, training)

    DeepMetricLearner.get_loss = spy
    try:
        model.fit(X, y)
    finally:
        DeepMetricLearner.get_loss = original
    assert model.batch_size_ == 12 and seen
    for labels in seen:
        _, counts = np.unique(labels, return_counts=True)
        assert len(labels) == 12 and set(counts) == {3}


# --------------------------------------------------------------- quality
def test_knn_on_held_out_digits_and_one_shot_on_held_out_classes():
    X, y = _digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = DeepMetricLearner(max_epochs=3, batch_size=64, m_per_class=8, random_state=0).fit(Xtr, ytr)
    knn = KNeighborsClassifier(3).fit(model.transform(Xtr), ytr)
    acc = knn.score(model.transform(Xte), yte)
    assert acc > 0.9  # chance is 0.1

    seen = y <= 6
    held_out = DeepMetricLearner(max_epochs=3, batch_size=56, m_per_class=8, random_state=0).fit(X[seen], y[seen])
    kw = dict(n_way=3, n_episodes=300, random_state=0)
    learned = one_shot_accuracy(held_out, X[~seen], y[~seen], method="transform", **kw)
    raw = one_shot_accuracy(None, X[~seen], y[~seen], **kw)
    print(f"\none-shot 3-way on digits 7-9: embedding {learned:.3f}, raw pixels {raw:.3f}")
    assert learned > 1 / 3 + 0.2  # far above chance on classes never trained on


# ---------------------------------------------------------- reproducibility
def test_same_seed_same_model_and_global_rngs_untouched():
    X, y = _blobs()
    np.random.seed(5)
    torch.manual_seed(5)
    a = DeepMetricLearner(miner="multi_similarity", **{**TINY, "max_epochs": 2}).fit(X, y)
    after_np, after_torch = np.random.rand(), torch.rand(1)
    np.random.seed(5)
    torch.manual_seed(5)
    assert np.random.rand() == after_np and torch.equal(torch.rand(1), after_torch)
    b = DeepMetricLearner(miner="multi_similarity", **{**TINY, "max_epochs": 2}).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.loss_curve_ == b.loss_curve_
    c = DeepMetricLearner(**{**TINY, "max_epochs": 2, "random_state": 1}).fit(X, y)
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_validation_split_and_early_stopping():
    X, y = _blobs(n_classes=5)
    y = y.copy()
    y[:10] = 5  # a class with too few samples to give any to validation (floor(0.2 * 2) = 0)
    y[10] = 6
    y[11] = 6
    model = DeepMetricLearner(
        loss="proxy_anchor", validation_fraction=0.2, n_iter_no_change=1, tol=1e9,
        **{**TINY, "max_epochs": 4, "batch_size": 20, "validation": "stratified"},
    ).fit(X, y)
    assert model.n_iter_ == 2 and model.best_epoch_ == 1
    assert np.isfinite(model.validation_scores_).all() and len(model.validation_scores_) == 2


def test_pickle_round_trip():
    X, y = _blobs()
    model = DeepMetricLearner(loss="proxy_anchor", **TINY).fit(X, y)
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.transform(X), model.transform(X))


# ------------------------------------------------------------ sklearn API
def test_pipeline_grid_search_and_set_output():
    pd = pytest.importorskip("pandas")
    X, y = _blobs()
    pipe = make_pipeline(DeepMetricLearner(**TINY), KNeighborsClassifier(1))
    grid = GridSearchCV(
        pipe, {"deepmetriclearner__loss": ["triplet", "proxy_anchor"], "deepmetriclearner__lr": [1e-3, 1e-2]},
        cv=2, error_score="raise",
    ).fit(X, y)
    assert set(grid.best_params_) == {"deepmetriclearner__loss", "deepmetriclearner__lr"}
    model = DeepMetricLearner(**TINY).set_output(transform="pandas").fit(X, y)
    out = model.transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns)[:2] == ["deepmetriclearner0", "deepmetriclearner1"]


def test_images_with_default_convnet_and_torchvision_backbone():
    tv = pytest.importorskip("torchvision")
    d = load_digits()
    X, y = d.images[:80] / 16.0, d.target[:80]
    keep = y < 4
    model = DeepMetricLearner(conv_channels=(4, 8), **TINY).fit(X[keep], y[keep])
    assert model.transform(X[keep]).shape == (keep.sum(), 8) and model.input_shape_ == (1, 8, 8)
    rgb = np.repeat(X[keep][..., None], 3, axis=-1)
    rgb = np.kron(rgb, np.ones((1, 4, 4, 1)))  # 32x32 RGB
    backbone = tv.models.resnet18(num_classes=6)
    model = DeepMetricLearner(encoder=backbone, **TINY).fit(rgb, y[keep])
    assert model.transform(rgb).shape == (keep.sum(), 6) and model.embedding_dim_ == 6


# --------------------------------------------------------------- bad input
def test_bad_input_raises_before_training():
    X, y = _blobs()
    calls = []
    original = DeepMetricLearner.fit_loop
    DeepMetricLearner.fit_loop = lambda self, *a: calls.append(1)
    try:
        with pytest.raises(ValueError, match="smaller than the m_per_class sampler needs"):
            DeepMetricLearner(batch_size=6, m_per_class=4).fit(X, y)
        with pytest.raises(ValueError, match="at least 2 classes"):
            DeepMetricLearner().fit(X, np.zeros(len(y)))
        y1 = y.copy()
        y1[0] = 9  # a class with a single sample
        with pytest.raises(ValueError, match=r"needs positives .* single sample"):
            DeepMetricLearner(loss="triplet").fit(X, y1)
        with pytest.raises(ValueError, match="inconsistent shapes"):
            DeepMetricLearner().fit([np.zeros((8, 8)), np.zeros((8, 7))], [0, 1])
    finally:
        DeepMetricLearner.fit_loop = original
    assert not calls
    # Losses without positives accept a singleton class.
    DeepMetricLearner(loss="proxy_anchor", **TINY).fit(X, y1)


def test_koch_pair_loss_object_trains_its_head():
    from skmetric.deep.losses import KochLoss

    X, y = _blobs()
    model = DeepMetricLearner(loss=KochLoss(), normalize=False, **TINY).fit(X, y)
    assert "loss.weight" in dict(model.module_.named_parameters())
