"""Defaults that transfer to new classes: PCA-skip init, class-disjoint early stopping.

SiameseNet and DeepMetricLearner hold out whole classes for validation by
default (``validation='auto'``), score one-shot accuracy on them each epoch
(and on the untrained weights, epoch 0) and keep the best weights.
"""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import pairwise_distances

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_metric_learning")

from skmetric import DeepMetricLearner, SiameseNet  # noqa: E402
from skmetric.deep._engine import class_disjoint_split, class_folds, n_class_folds  # noqa: E402
from skmetric.deep.callbacks import Callback  # noqa: E402
from skmetric.evaluation import one_shot_accuracy  # noqa: E402

from ._deep_data import blobs  # noqa: E402

pytestmark = pytest.mark.deep

TINY_SIAMESE = dict(embedding_dim=8, hidden_layer_sizes=(16,), n_pairs=128, batch_size=32, max_epochs=3)
TINY_DML = dict(embedding_dim=8, hidden_layer_sizes=(16,), batch_size=16, m_per_class=4, max_epochs=3)


def _make(cls, **kw):
    base = TINY_SIAMESE if cls is SiameseNet else TINY_DML
    return cls(**{**base, "random_state": 0, "device": "cpu", **kw})


class Snapshots(Callback):
    """The embedding of X before training (key 0) and after every epoch."""

    def __init__(self, X=None):
        self.X = X

    def on_train_begin(self, net):
        self.embeddings_ = {0: net.transform(self.X)}

    def on_epoch_end(self, net):
        self.embeddings_[net.history_[-1]["epoch"]] = net.transform(self.X)


def test_class_disjoint_split_holds_out_whole_classes():
    y = np.repeat(np.arange(10), 5)
    y[:4] = 0  # class 0 keeps 4 samples; class 9 gets a single one below
    y = np.concatenate([y, [10]])
    train, val = class_disjoint_split(y, 0.3, np.random.RandomState(0))
    assert np.intersect1d(train, val).size == 0 and train.size + val.size == y.size
    assert not set(y[train]) & set(y[val])
    assert len(set(y[val])) == 3 and 10 not in set(y[val])  # a 1-sample class is never held out
    with pytest.raises(ValueError, match="Class-disjoint validation needs at least 4 classes"):
        class_disjoint_split(np.repeat(np.arange(3), 5), 0.3, np.random.RandomState(0))


@pytest.mark.parametrize("cls", [SiameseNet, DeepMetricLearner])
def test_validation_classes_are_never_trained_on(cls):
    X, y = blobs(n_per_class=12, n_classes=8)
    trained_on = []
    original = cls.iter_batches

    def spy(self, data, training):
        if training:
            labels = data["y"]  # the training part's labels (SiameseNet draws its pairs from them)
            trained_on.append(set(self.classes_[np.unique(labels)]))
        return original(self, data, training)

    cls.iter_batches = spy
    try:
        model = _make(cls, validation="class_disjoint").fit(X, y)
    finally:
        cls.iter_batches = original
    assert model.validation_kind_ == "class_disjoint"
    held = set(model.validation_classes_)
    assert len(held) == 2 and trained_on  # round(0.2 * 8) = 2 classes held out
    for seen in trained_on:
        assert not seen & held and seen | held == set(range(8))
    assert {"valid_one_shot", "valid_loss"} <= set(model.history_[0])
    assert 0 <= model.initial_scores_["valid_one_shot"] <= 1


@pytest.mark.parametrize("cls", [SiameseNet, DeepMetricLearner])
def test_early_stopping_keeps_the_best_epoch_and_its_weights(cls):
    X, y = blobs(n_per_class=12, n_classes=8)
    probe = Snapshots(X)
    # A high learning rate and no patience limit: every epoch runs, the best one is kept.
    model = _make(cls, validation="class_disjoint", lr=0.05, max_epochs=4, n_iter_no_change=10,
                  callbacks=[probe]).fit(X, y)
    scores = [model.initial_scores_["valid_one_shot"]] + [h["valid_one_shot"] for h in model.history_]
    assert model.n_iter_ == 4
    best = int(np.argmax(scores))  # the first of the best (tol > 0)
    raw = model.initial_scores_["valid_one_shot_raw"]  # the reference: the raw input
    if best > 0 and scores[best] > raw + model.tol:  # training beat it: the best epoch is kept
        assert model.best_epoch_ == best and not model.raw_geometry_
        snapshot = model.callbacks_[-1].embeddings_[best]
        np.testing.assert_allclose(model.transform(X), snapshot, rtol=1e-5, atol=1e-6)
    else:  # the raw input itself comes back
        assert model.best_epoch_ == 0 and model.raw_geometry_
        np.testing.assert_array_equal(model.transform(X), X)


def test_untrained_weights_are_kept_when_training_never_helps():
    # The PCA-skip init starts at the raw geometry: with embedding_dim >= n_features the
    # untrained embedding distances are the raw distances. An impossible tol rejects every
    # epoch, so the initial weights (epoch 0) come back.
    X, y = blobs(n_per_class=12, n_classes=8)
    model = _make(SiameseNet, loss="contrastive", validation="class_disjoint", lr=0.05, tol=1e9,
                  n_iter_no_change=2).fit(X, y)
    assert model.best_epoch_ == 0 and model.n_iter_ == 2 and model.raw_geometry_
    # What is kept is the raw input itself: transform, pair scores and the embedding size.
    np.testing.assert_array_equal(model.transform(X), X)
    assert model.embedding_dim_ == X.shape[1] == model.get_feature_names_out().size
    pairs = np.stack([X[:20], X[20:40]], axis=1)
    np.testing.assert_allclose(model.pair_score(pairs), -np.linalg.norm(X[:20] - X[20:40], axis=1))
    assert np.all(np.diff(model.pair_proba(pairs)[np.argsort(model.pair_score(pairs)), 1]) >= 0)
    random = _make(SiameseNet, loss="contrastive", encoder_init="random", validation=None,
                   max_epochs=1, lr=1e-12).fit(X, y)
    assert not np.allclose(pairwise_distances(random.transform(X)), pairwise_distances(X), atol=1e-2)


@pytest.mark.parametrize("cls", [SiameseNet, DeepMetricLearner])
def test_too_few_classes_to_hold_out(cls):
    X, y = blobs(n_per_class=12, n_classes=3)
    with pytest.raises(ValueError, match="Class-disjoint validation needs at least 4 classes"):
        _make(cls, validation="class_disjoint").fit(X, y)
    # 'auto' (the default) cannot check that training transfers: it says so and keeps the
    # raw input (the model it would have compared training with), untrained.
    with pytest.warns(UserWarning, match=r"needs at least 4 classes.*\(y has 3 classes\).*raw-input"):
        model = _make(cls).fit(X, y)
    assert model.validation_kind_ is None and model.raw_geometry_
    assert model.n_iter_ == model.best_epoch_ == 0 and model.history_ == []
    np.testing.assert_array_equal(model.transform(X), X)
    back = pickle.loads(pickle.dumps(model))  # the raw input survives pickling
    assert back.raw_geometry_ and np.array_equal(back.transform(X), X)
    # validation=None trains for max_epochs without validation, as before.
    blind = _make(cls, validation=None).fit(X, y)
    assert blind.validation_kind_ is None and "valid_loss" not in blind.history_[0]
    assert blind.initial_scores_ == {} and blind.best_epoch_ == blind.n_iter_ == 3
    assert not blind.raw_geometry_ and blind.transform(X).shape == (X.shape[0], 8)
    # A user's start (here the random one) has no raw geometry to keep: 'auto' trains it.
    random = _make(cls, encoder_init="random").fit(X, y)
    assert not random.raw_geometry_ and random.n_iter_ == 3
    stratified = _make(cls, validation="stratified", validation_fraction=0.25).fit(X, y)
    assert stratified.validation_kind_ == "stratified" and "valid_loss" in stratified.history_[0]
    assert "valid_one_shot" not in stratified.history_[0]


def test_epoch_zero_is_the_raw_input_whatever_the_loss():
    # The reference every epoch must beat is the raw input (Euclidean), the same for every
    # loss on the same held-out classes and episodes (same random_state); the untrained
    # weights are scored with the loss's own similarity (cosine, Koch's head) beside it.
    X, y = blobs(n_per_class=12, n_classes=10)
    X = X + 3.0  # off-centre: the cosine of the raw input would rank pairs differently
    fits = {loss: _make(SiameseNet, loss=loss, validation="class_disjoint", max_epochs=1).fit(X, y)
            for loss in ("binomial_deviance", "koch", "contrastive")}
    raw = {loss: m.initial_scores_["valid_one_shot_raw"] for loss, m in fits.items()}
    assert len(set(raw.values())) == 1, raw
    untrained = {loss: m.initial_scores_["valid_one_shot"] for loss, m in fits.items()}
    assert untrained["contrastive"] == raw["contrastive"]  # Euclidean on the PCA projection
    # A user's encoder has no raw candidate: its untrained weights are the reference and are
    # never replaced by the input.
    enc = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 3))
    user = _make(SiameseNet, encoder=enc, validation="class_disjoint", lr=0.05, tol=1e9,
                 n_iter_no_change=1).fit(X, y)
    assert user.best_epoch_ == 0 and not user.raw_geometry_ and user.transform(X).shape[1] == 3
    assert "valid_one_shot_raw" not in user.initial_scores_


def test_batch_size_must_be_a_multiple_of_m_per_class():
    X, y = blobs(n_per_class=12, n_classes=4)
    with pytest.raises(ValueError, match=r"batch_size=18 is not a multiple of m_per_class=4.*16 or 20"):
        DeepMetricLearner(batch_size=18, m_per_class=4).fit(X, y)


@pytest.mark.parametrize("cls", [SiameseNet, DeepMetricLearner])
def test_defaults_stay_level_with_raw_pixels_on_new_digit_classes(cls):
    # Trained on digits 0-6, scored on 7-9 (3-way one-shot, the same episodes as raw pixels).
    # The old defaults (random MLP init, lr 1e-3, validation on the seen classes) scored
    # 53-59% here against 74% for raw pixels. Few epochs keep the test fast.
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    seen = y <= 6
    kw = dict(n_way=3, n_episodes=500, random_state=0)
    raw = one_shot_accuracy(None, X[~seen], y[~seen], **kw)
    params = dict(max_epochs=3) if cls is DeepMetricLearner else dict(max_epochs=3, n_pairs=1000)
    model = cls(random_state=0, device="cpu", **params).fit(X[seen], y[seen])
    learned = one_shot_accuracy(model, X[~seen], y[~seen], **kw)
    assert learned >= raw - 0.02, (learned, raw)


def test_class_folds_hold_out_every_class_once():
    y = np.concatenate([np.repeat(np.arange(7), 4), [7]])  # class 7 has a single sample
    folds = class_folds(y, 3, np.random.RandomState(0))
    assert len(folds) == 3
    held = [set(y[val]) for _, val in folds]
    assert sorted(len(h) for h in held) == [2, 2, 3]
    assert set().union(*held) == set(range(7))  # each class with 2+ samples held out once
    for (train, val), h in zip(folds, held):
        assert np.intersect1d(train, val).size == 0 and train.size + val.size == y.size
        assert not set(y[train]) & h and 7 in set(y[train])
    # up to 3 groups of 2+ classes, 2+ classes left to train on; none below 4 classes
    assert [n_class_folds(np.repeat(np.arange(n), 3), 3) for n in (3, 4, 5, 6, 30)] == [0, 2, 2, 3, 3]
    for bad_y, k in ((np.repeat(np.arange(5), 3), 3), (np.repeat(np.arange(6), 3), 1),
                     (np.repeat(np.arange(3), 3), 2)):
        with pytest.raises(ValueError, match="Class folds need"):
            class_folds(bad_y, k, np.random.RandomState(0))


@pytest.mark.parametrize("cls", [SiameseNet, DeepMetricLearner])
def test_auto_rotates_the_held_out_classes_when_they_are_few(cls):
    # 8 classes: a single split would hold out 2 (a 2-way score); 'auto' cuts the classes
    # into 3 groups, picks the epoch count on them and trains the final model on all 8.
    X, y = blobs(n_per_class=12, n_classes=8)
    seen = []

    class Seen(Callback):
        def on_train_begin(self, net):
            seen.append(net.n_iter_ if hasattr(net, "n_iter_") else None)

    trained_on = []
    original = cls.iter_batches

    def spy(self, data, training):
        if training:
            trained_on.append(set(np.unique(data["y"])))
        return original(self, data, training)

    cls.iter_batches = spy
    try:
        model = _make(cls, lr=0.01, max_epochs=3, callbacks=[Seen()]).fit(X, y)
    finally:
        cls.iter_batches = original
    assert model.validation_kind_ == "class_folds" and not hasattr(model, "validation_classes_")
    assert len(model.fold_scores_) == 3 and all(len(c) >= 2 for c in model.fold_scores_)
    assert len(seen) == 1  # the user's callbacks see the final run only
    assert 0 <= model.best_epoch_ == model.n_iter_ <= 3 and len(model.history_) == model.n_iter_
    assert all(len(c) < 8 for c in trained_on[:-model.n_iter_ or None])  # the fold runs
    assert model.n_iter_ == 0 or trained_on[-1] == set(range(8))  # the final run: every class
    # Many classes: a single class-disjoint split (5+ held out), as before.
    Xm, ym = blobs(n_per_class=6, n_classes=25)
    many = _make(cls, max_epochs=1).fit(Xm, ym)
    assert many.validation_kind_ == "class_disjoint" and len(many.validation_classes_) == 5


@pytest.mark.parametrize("cls", [SiameseNet, DeepMetricLearner])
def test_class_folds_keep_the_raw_input_when_nothing_beats_it(cls):
    # lr 1e-12 changes nothing, and a Euclidean embedding of the PCA start scores exactly
    # the raw input's: no candidate beats the raw input by a standard error, so no step is
    # taken and the raw input itself is returned.
    X, y = blobs(n_per_class=12, n_classes=6)
    model = _make(cls, lr=1e-12, max_epochs=2, normalize=False) if cls is DeepMetricLearner else \
        _make(cls, loss="contrastive", lr=1e-12, max_epochs=2)
    model.fit(X, y)
    assert model.validation_kind_ == "class_folds"
    assert model.best_epoch_ == 0 and model.n_iter_ == 0 and model.history_ == []
    assert model.raw_geometry_ and model.embedding_dim_ == X.shape[1]
    np.testing.assert_array_equal(model.transform(X), X)
    np.testing.assert_allclose([c[0] for c in model.fold_scores_], model.fold_raw_scores_)


def test_class_folds_keep_training_that_beats_the_raw_input():
    # Classes are rays through the origin with very different lengths: the cosine of the
    # (PCA-start) embedding separates them, Euclidean raw distances do not. Even at lr 1e-12
    # the trained epochs beat the raw input on the held-out groups, and the trained model is
    # kept; the untrained weights themselves are no candidate.
    rng = np.random.RandomState(0)
    dirs = np.linalg.qr(rng.randn(8, 3))[0].T
    dirs = np.vstack([dirs, -dirs])  # 6 classes, centred on the origin
    y = np.repeat(np.arange(6), 20)
    X = dirs[y] * rng.uniform(0.2, 4.0, (y.size, 1)) + 0.02 * rng.randn(y.size, 8)
    model = _make(SiameseNet, lr=1e-12, max_epochs=2).fit(X, y)  # binomial deviance: cosine
    assert model.validation_kind_ == "class_folds" and model.best_epoch_ >= 1
    assert not model.raw_geometry_ and model.embedding_dim_ == 8
    assert np.mean([c[1] for c in model.fold_scores_]) > np.mean(model.fold_raw_scores_) + 0.05
    kw = dict(n_way=3, n_episodes=300, random_state=0)
    assert one_shot_accuracy(model, X, y, **kw) > one_shot_accuracy(None, X, y, **kw) + 0.05


@pytest.mark.parametrize("cls", [SiameseNet, DeepMetricLearner])
def test_class_folds_need_enough_classes(cls):
    X, y = blobs(n_per_class=12, n_classes=3)
    with pytest.raises(ValueError, match="Class folds need"):
        _make(cls, validation="class_folds").fit(X, y)
