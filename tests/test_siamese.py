"""SiameseNet: training, reproducibility, pickling, sklearn API, pair API, bad input."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skmetric.constraints import sample_pairs
from skmetric.deep.losses import ContrastiveLoss
from skmetric.deep.siamese import SiameseNet

torch = pytest.importorskip("torch")
from ._deep_data import blobs  # noqa: E402

pytestmark = pytest.mark.deep

# Tiny settings: every fit here runs in well under a second on one CPU core.
FAST = dict(max_epochs=2, n_pairs=64, batch_size=32, validation_fraction=0, random_state=0)
SMALL_CONV = dict(conv_channels=(4, 8), embedding_dim=8)


_blobs = blobs


def _digits(n=120, n_classes=4):
    d = load_digits()
    keep = d.target < n_classes
    return (d.images[keep][:n] / 16.0), d.target[keep][:n]


def _net(**kw):
    return SiameseNet(**{**FAST, "embedding_dim": 4, "hidden_layer_sizes": (8,), **kw})


# ---------------------------------------------------------------- outputs
def test_transform_vectors_shape_and_dtype():
    X, y = _blobs()
    net = _net().fit(X, y)
    Z = net.transform(X)
    assert Z.shape == (X.shape[0], 4) and Z.dtype == np.float64
    Z32 = net.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, Z, rtol=1e-5, atol=1e-6)
    assert net.n_features_in_ == 5 and net.input_shape_ == (5,)
    assert len(net.loss_curve_) == net.n_iter_ == 2


def test_image_layouts_give_the_same_embeddings():
    X, y = _digits()
    net = SiameseNet(**FAST, **SMALL_CONV).fit(X, y)
    Z = net.transform(X)
    assert Z.shape == (X.shape[0], 8) and Z.dtype == np.float32
    assert net.input_shape_ == (1, 8, 8)
    np.testing.assert_allclose(net.transform(X[:, :, :, None]), Z, rtol=1e-6)
    np.testing.assert_allclose(net.transform(X[:, None]), Z, rtol=1e-6)
    u8 = np.round(X * 255).astype(np.uint8)
    np.testing.assert_allclose(net.transform(u8), net.transform(u8.astype(np.float32) / 255), rtol=1e-6)


@pytest.mark.parametrize("loss", ["koch", "contrastive", "binomial_deviance"])
def test_pair_api(loss):
    X, y = _blobs()
    net = _net(loss=loss, max_epochs=3).fit(X, y)
    idx, labels = sample_pairs(y, 15, random_state=1)
    pairs = X[idx]
    s = net.pair_score(pairs)
    proba = net.pair_proba(pairs)
    dec = net.pair_decision_function(pairs)
    pred = net.pair_predict(pairs)
    assert s.shape == dec.shape == pred.shape == (30,)
    assert proba.shape == (30, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(pred, np.where(dec >= 0, 1, -1))
    np.testing.assert_array_equal(pred, np.where(proba[:, 1] >= 0.5, 1, -1))
    # Decision values are an increasing function of the loss's own score.
    order = np.argsort(s)
    assert np.all(np.diff(dec[order]) >= -1e-9)
    assert (net.proba_calibration_ is None) == (loss == "koch")
    # Image pairs go through the same validation as images.
    with pytest.raises(ValueError, match="Pairs must be"):
        net.pair_score(X[:10])


def test_image_pairs():
    X, y = _digits()
    net = SiameseNet(**FAST, **SMALL_CONV).fit(X, y)
    idx, _ = sample_pairs(y, 5, random_state=0)
    s = net.pair_score(X[idx])
    np.testing.assert_allclose(net.pair_score(X[idx][..., None]), s, rtol=1e-6)
    with pytest.raises(ValueError, match="Image pairs must have shape"):
        net.pair_score(X[:4])


def test_learns_separable_classes():
    X, y = _blobs(n_classes=4)
    net = _net(max_epochs=15, n_pairs=256, embedding_dim=8, hidden_layer_sizes=(16,), lr=1e-2)
    net.fit(X, y)
    assert net.loss_curve_[-1] < net.loss_curve_[0]
    assert net.score(X, y) > 0.9


def test_koch_high_learning_rate_collapses_to_constant_probability():
    X, y = _digits(n=160)
    pairs_idx, labels = sample_pairs(y, 50, random_state=1)
    kw = dict(FAST, conv_channels=(8, 16), embedding_dim=16, n_pairs=400, max_epochs=4, loss="koch",
              encoder_init="random")
    p_high = SiameseNet(lr=1.0, **kw).fit(X, y).pair_proba(X[pairs_idx])[:, 1]
    p_low = SiameseNet(lr=0.05, **kw).fit(X, y).pair_proba(X[pairs_idx])[:, 1]
    # High lr: dead/saturated features give one probability for every pair, near 1/2.
    assert p_high.std() < 1e-3 and abs(p_high.mean() - 0.5) < 0.1
    # A lower lr separates same-class from different-class pairs.
    assert np.mean((p_low >= 0.5) == (labels > 0)) > 0.75


def test_cosine_loss_embeds_on_the_unit_sphere():
    # Binomial deviance scores pairs by their cosine: transform gives unit vectors, so the
    # Euclidean distances a kNN classifier uses rank pairs as pair_score does.
    X, y = _blobs(n_classes=4)
    pairs = np.stack([X[:30], X[30:60]], axis=1)
    net = _net(max_epochs=3).fit(X, y)
    Z = net.transform(X)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-6)
    dist = np.linalg.norm(Z[:30] - Z[30:60], axis=1)
    np.testing.assert_allclose(net.pair_score(pairs), 1 - dist**2 / 2, atol=1e-5)
    # A Euclidean loss keeps the scale.
    norms = np.linalg.norm(_net(loss="contrastive").fit(X, y).transform(X), axis=1)
    assert norms.std() > 1e-2


# --------------------------------------------------------- reproducibility
@pytest.mark.parametrize("kind", ["vectors", "images"])
def test_two_fits_are_identical(kind):
    if kind == "vectors":
        X, y = _blobs()
        make = lambda: _net(validation="stratified", validation_fraction=0.25, max_epochs=3)  # noqa: E731
    else:
        X, y = _digits()
        make = lambda: SiameseNet(**{**FAST, **SMALL_CONV, "augment": True})  # noqa: E731
    a, b = make().fit(X, y), make().fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.loss_curve_ == b.loss_curve_
    c = clone(make()).set_params(random_state=1).fit(X, y)
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_pickle_round_trip_gives_identical_outputs():
    X, y = _blobs()
    net = _net(loss="contrastive").fit(X, y)
    back = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(back.transform(X), net.transform(X))
    idx, _ = sample_pairs(y, 10, random_state=0)
    np.testing.assert_array_equal(back.pair_proba(X[idx]), net.pair_proba(X[idx]))
    assert back.score(X, y) == net.score(X, y)


# ------------------------------------------------------------ sklearn API
def test_clone_params_and_nested_loss_params():
    net = SiameseNet(loss=ContrastiveLoss(margin=2.0), lr=1e-4)
    params = net.get_params()
    assert params["loss__margin"] == 2.0 and params["lr"] == 1e-4
    net.set_params(loss__margin=0.5, embedding_dim=3)
    c = clone(net)
    assert c.loss is not net.loss and c.loss.margin == 0.5 and c.embedding_dim == 3
    X, y = _blobs()
    fitted = clone(c).set_params(**FAST, hidden_layer_sizes=(8,)).fit(X, y)
    assert fitted.loss_.margin == 0.5 and fitted.transform(X).shape[1] == 3
    assert net.loss.margin == 0.5  # fit never changes the parameter objects


def test_grid_search_over_lr_and_embedding_dim():
    X, y = _blobs()
    grid = GridSearchCV(
        _net(), {"lr": [1e-3, 1e-2], "embedding_dim": [2, 4]}, cv=2, error_score="raise"
    ).fit(X, y)
    assert set(grid.best_params_) == {"lr", "embedding_dim"}
    assert grid.best_estimator_.transform(X).shape[1] == grid.best_params_["embedding_dim"]
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))


def test_user_encoder_module_and_class():
    X, y = _blobs()
    enc = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    before = [p.detach().clone() for p in enc.parameters()]
    net = _net(encoder=enc, loss="binomial_deviance").fit(X, y)
    assert net.transform(X).shape == (X.shape[0], 3)
    for p, q in zip(before, enc.parameters()):
        torch.testing.assert_close(p, q.detach())  # the user's module is not trained
    net2 = _net(encoder=torch.nn.Linear, encoder_params={"in_features": 5, "out_features": 2}).fit(X, y)
    assert net2.transform(X).shape == (X.shape[0], 2)
    with pytest.raises(ValueError, match="encoder must be"):
        _net(encoder="resnet").fit(X, y)


def test_validation_history_and_early_stopping():
    X, y = _blobs(n_per_class=20)
    net = _net(validation="stratified", validation_fraction=0.25, max_epochs=6, n_iter_no_change=2,
               tol=1e9, loss="koch").fit(X, y)
    # With an impossible tol nothing improves after epoch 1: stop after 1 + 2 epochs.
    assert net.n_iter_ == 3 and net.best_epoch_ == 1
    assert len(net.validation_scores_) == len(net.history_) == 3
    assert {"train_loss", "valid_loss", "valid_accuracy"} <= set(net.history_[0])
    full = _net(validation="stratified", validation_fraction=0.25, max_epochs=4,
                n_iter_no_change=None).fit(X, y)
    assert full.n_iter_ == 4


def test_verbose_shows_progress(capsys):
    X, y = _blobs()
    _net(verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "SiameseNet" in err and "train_loss" in err


def test_import_skmetric_does_not_import_torch():
    code = (
        "import sys, skmetric; skmetric.SiameseNet; skmetric.DeepMetricLearner; "
        "import skmetric.evaluation, skmetric.deep.losses, skmetric.deep.callbacks; "
        "assert not {'torch', 'pytorch_metric_learning', 'faiss'} & set(sys.modules), 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------- bad input
def test_bad_input_raises_before_training():
    X, y = _blobs()
    with pytest.raises(ValueError, match="2 classes"):
        _net().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="class with at least 2 samples"):
        _net().fit(X[:3], [0, 1, 2])
    Xi, yi = _digits()
    with pytest.raises(ValueError, match="2 classes"):
        _net().fit(Xi, np.zeros(len(yi)))
    bad = Xi.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _net().fit(bad, yi)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        _net().fit([np.zeros((8, 8)), np.zeros((8, 7)), np.zeros((8, 8))], [0, 1, 0])
    with pytest.raises(ValueError, match="labels"):
        _net().fit(Xi, yi[:-1])
    assert not np.isnan(Xi).any()  # the user's array was not touched


def test_single_sample_class_is_allowed():
    # Documented handling: a singleton class only appears in different-class pairs.
    X, y = _blobs()
    y = y.copy()
    y[0] = 7
    idx, labels = sample_pairs(y, 300, 300, random_state=0)  # the sampler SiameseNet uses
    with_singleton = (idx == 0).any(axis=1)
    assert with_singleton.any()
    assert np.all(labels[with_singleton] == -1)
    assert np.all(y[idx[with_singleton].max(axis=1)] != 7)  # its partner is another class

    net = _net().fit(X, y)
    assert 7 in net.classes_
    E = net.transform(X)
    assert E.shape == (X.shape[0], 4) and np.isfinite(E).all()
    # The singleton is embedded like any other point, not collapsed onto another sample.
    assert np.min(np.linalg.norm(E[1:] - E[0], axis=1)) > 0


def test_transform_checks_fitted_shape():
    Xi, yi = _digits()
    net = SiameseNet(**FAST, **SMALL_CONV).fit(Xi, yi)
    with pytest.raises(ValueError, match="fitted on"):
        net.transform(np.zeros((2, 10, 10)))
    X, y = _blobs()
    net = _net().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        net.transform(X[:, :3])
