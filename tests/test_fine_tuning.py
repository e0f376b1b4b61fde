"""FineTunedCNN: which blocks train, determinism, embeddings, pickling, errors."""

import pickle

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from skmetric.deep._backbones import trainable_blocks  # noqa: E402
from skmetric.deep.fine_tuning import FineTunedCNN  # noqa: E402

pytestmark = pytest.mark.deep


def small_net(seed=0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 5),
    ).eval()


def two_class_images(n_per_class=8, size=8, seed=0):
    rng = np.random.RandomState(seed)
    dark = rng.rand(n_per_class, size, size) * 0.4
    bright = 0.6 + rng.rand(n_per_class, size, size) * 0.4
    y = np.repeat(np.array(["dark", "bright"]), n_per_class)
    return np.concatenate([dark, bright]).astype(np.float32), y


def test_fit_transform_predict_on_a_user_module():
    X, y = two_class_images()
    model = FineTunedCNN(
        backbone=small_net(), n_trainable_blocks=None, max_epochs=15, lr=0.05,
        batch_size=8, random_state=0,
    ).fit(X, y)
    assert model.transform(X).shape == (16, 5) == (16, model.n_features_out_)
    assert len(model.loss_curve_) == 15 and model.loss_curve_[-1] < model.loss_curve_[0]
    assert set(model.classes_) == {"bright", "dark"}
    assert model.score(X, y) == 1.0
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


def test_only_the_last_blocks_train():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    X, y = two_class_images()
    model = FineTunedCNN(backbone=net, n_trainable_blocks=1, max_epochs=2, batch_size=8, random_state=0)
    model.fit(X, y)
    body = model.network_[0]
    after = body.state_dict()
    # blocks: conv, bn, conv, linear -> only the final Linear trains
    assert len(trainable_blocks(body)) == 4
    for key in ("0.weight", "1.weight", "1.running_mean", "3.weight"):
        assert torch.equal(after[key], before[key]), key
    assert not torch.equal(after["7.weight"], before["7.weight"])
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # user's net untouched


def test_zero_trainable_blocks_is_a_linear_probe():
    net = small_net()
    X, y = two_class_images()
    model = FineTunedCNN(backbone=net, n_trainable_blocks=0, max_epochs=2, batch_size=8, random_state=0)
    model.fit(X, y)
    for k, v in net.state_dict().items():
        assert torch.equal(model.network_[0].state_dict()[k], v)


def test_same_seed_same_model_and_global_rng_untouched():
    X, y = two_class_images()
    params = dict(backbone=small_net(), n_trainable_blocks=2, max_epochs=3, batch_size=5, random_state=7)
    torch.manual_seed(123)
    a = FineTunedCNN(**params).fit(X, y)
    after_fit = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after_fit)
    b = FineTunedCNN(**params).fit(X, y)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = FineTunedCNN(**{**params, "random_state": 8}).fit(X, y)
    assert c.loss_curve_ != a.loss_curve_


def test_resnet18_last_block_from_a_weights_file_and_pickle(tmp_path):
    import torchvision

    torch.manual_seed(0)
    initial = torchvision.models.resnet18(num_classes=3).state_dict()
    torch.save(initial, tmp_path / "w.pth")
    X, y = two_class_images(n_per_class=4, size=16)
    model = FineTunedCNN(
        weights=str(tmp_path / "w.pth"), input_size=16, max_epochs=1, batch_size=4, random_state=0
    ).fit(X, y)
    after = model.network_[0].state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, initial[k])}
    assert changed and all(k.startswith("layer4.1.") for k in changed)  # the last block only
    assert model.predict(X).shape == (8,)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def test_in_a_pipeline_with_knn_and_verbose(capsys):
    X, y = two_class_images()
    pipe = make_pipeline(
        FineTunedCNN(backbone=small_net(), max_epochs=2, batch_size=8, random_state=0, verbose=1),
        KNeighborsClassifier(n_neighbors=1),
    )
    assert pipe.fit(X, y).predict(X).shape == (16,)
    assert "FineTunedCNN epochs" in capsys.readouterr().err  # the tqdm bar


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((4, 8, 8), np.float32), np.zeros(4), "2 classes"),
        (np.zeros((4, 8, 8), np.float32), np.arange(3) % 2, "4 images but y has 3"),
        (np.zeros((4, 64), np.float32), np.arange(4) % 2, "2D"),
        (np.full((4, 8, 8), np.nan), np.arange(4) % 2, "NaN"),
        (np.zeros((4, 8, 8), np.float32), np.linspace(0, 1, 4), "continuous"),
    ],
    ids=["one-class", "length", "2d", "nan", "continuous"],
)
def test_bad_input_raises(X, y, match):
    with pytest.raises(ValueError, match=match):
        FineTunedCNN(backbone=small_net(), max_epochs=1).fit(X, y)
