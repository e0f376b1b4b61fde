"""CNNFeatureExtractor: input forms, weights (None, file, hub cache, offline), pickling."""

import os
import pickle
import socket
import time

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from skmetric._download import check_reachable  # noqa: E402
from skmetric.deep._backbones import cached_weights_path, preprocess, preprocessing_for  # noqa: E402
from skmetric.deep.feature_extraction import CNNFeatureExtractor  # noqa: E402

pytestmark = pytest.mark.deep

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()
    ).eval()


def gray_uint8(n=6, h=8, w=8, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=(n, h, w)).astype(np.uint8)


def test_grayscale_forms_give_the_same_features():
    X = gray_uint8()
    ext = CNNFeatureExtractor(backbone=tiny_net(), weights=None).fit(X)
    ref = ext.transform(X)
    assert ref.shape == (6, 16) and ref.dtype == np.float32
    for form in (X.astype(np.float64) / 255, X[..., None], X[:, None], np.repeat(X[..., None], 3, -1)):
        np.testing.assert_allclose(ext.transform(form), ref, rtol=1e-5, atol=1e-6)


def test_rgb_channel_positions_agree():
    X = np.random.RandomState(1).rand(4, 8, 8, 3).astype(np.float32)
    ext = CNNFeatureExtractor(backbone=tiny_net(), weights=None).fit(X)
    np.testing.assert_allclose(ext.transform(X), ext.transform(np.moveaxis(X, -1, 1)), atol=1e-6)


def test_image_paths_match_arrays(tmp_path):
    from PIL import Image

    X = gray_uint8(n=4)
    paths = []
    for i, im in enumerate(X):
        paths.append(str(tmp_path / f"im{i}.png"))
        Image.fromarray(im).save(paths[-1])
    ext = CNNFeatureExtractor(backbone=tiny_net(), weights=None, batch_size=3).fit(paths)
    np.testing.assert_allclose(ext.transform(paths), ext.transform(X), atol=1e-6)


def test_mixed_size_paths_need_an_input_size(tmp_path):
    from PIL import Image

    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    Image.fromarray(gray_uint8(1, 8, 8)[0]).save(paths[0])
    Image.fromarray(gray_uint8(1, 10, 12)[0]).save(paths[1])
    with pytest.raises(ValueError, match="different sizes"):
        CNNFeatureExtractor(backbone=tiny_net(), weights=None).fit(paths)
    ext = CNNFeatureExtractor(backbone=tiny_net(), weights=None, input_size=8).fit(paths)
    assert ext.transform(paths).shape == (2, 16)
    one_size = CNNFeatureExtractor(backbone=tiny_net(), weights=None, batch_size=1).fit(paths[:1])
    with pytest.raises(ValueError, match="different sizes"):  # even one image per batch
        one_size.transform(paths)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((3, 8, 8, 2), dtype=np.uint8), "channel"),
        (np.full((3, 8, 8), np.nan), "NaN"),
        (np.zeros((3, 64)), "2D"),
        (np.zeros((0, 8, 8)), "0 samples"),
        (np.full((3, 8, 8), 2.0), r"\[0, 1\]"),
    ],
    ids=["2-channels", "nan", "2d", "empty", "float-range"],
)
def test_bad_images_raise(X, match):
    with pytest.raises(ValueError, match=match):
        CNNFeatureExtractor(backbone=tiny_net(), weights=None).fit(X)


def test_transform_checks_images_too():
    ext = CNNFeatureExtractor(backbone=tiny_net(), weights=None).fit(gray_uint8())
    with pytest.raises(ValueError, match="NaN"):
        ext.transform(np.full((2, 8, 8), np.nan))
    with pytest.raises(ValueError, match="2D"):
        ext.transform(np.zeros((2, 64)))


def test_resnet18_penultimate_and_named_layer():
    X = np.random.RandomState(0).rand(3, 20, 20, 3).astype(np.float32)
    ext = CNNFeatureExtractor(weights=None, input_size=32).fit(X)
    assert ext.transform(X).shape == (3, 512) == (3, ext.n_features_out_)
    assert len(ext.get_feature_names_out()) == 512
    layer3 = CNNFeatureExtractor(weights=None, input_size=32, layer="layer3", pooling="flatten")
    assert layer3.fit_transform(X).shape == (3, 256 * 2 * 2)
    with pytest.raises(ValueError, match="Unknown layer"):
        CNNFeatureExtractor(weights=None, input_size=32, layer="nope").fit(X)


def test_default_preprocessing_is_the_imagenet_preset():
    spec = preprocessing_for("resnet18", None)
    assert (spec.resize, spec.crop) == (256, (224, 224))
    assert spec.mean == (0.485, 0.456, 0.406)
    assert preprocessing_for(tiny_net(), None).size is None  # user modules: keep the size


def test_preprocess_matches_torchvision_weights_transforms():
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    x = torch.rand(2, 3, 300, 260)
    ours = preprocess(x, preprocessing_for("resnet18", "IMAGENET1K_V1"))
    theirs = weights.transforms()(x)
    assert ours.shape == theirs.shape == (2, 3, 224, 224)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def _resnet18_state(seed, num_classes=1000):
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=num_classes).state_dict()


def _reference_features(state, X):
    model = torchvision.models.resnet18(num_classes=state["fc.weight"].shape[0])
    model.load_state_dict(state)
    model.fc = torch.nn.Identity()
    x = (torch.from_numpy(np.moveaxis(X, -1, 1)).float() - IMAGENET_MEAN) / IMAGENET_STD
    with torch.no_grad():
        return model.eval()(x).numpy()


def test_weights_file_gives_the_model_with_those_weights(tmp_path):
    state = _resnet18_state(seed=3, num_classes=7)  # a head of another size is fine
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    X = np.random.RandomState(0).rand(3, 32, 32, 3).astype(np.float32)
    ext = CNNFeatureExtractor(weights=str(path), input_size=32).fit(X)
    np.testing.assert_allclose(ext.transform(X), _reference_features(state, X), rtol=1e-4, atol=1e-5)
    random_init = CNNFeatureExtractor(weights=None, input_size=32).fit(X).transform(X)
    assert not np.allclose(random_init, ext.transform(X))


def test_weights_file_errors(tmp_path):
    X = gray_uint8(2, 16, 16)
    with pytest.raises(ValueError, match="not found"):
        CNNFeatureExtractor(weights=str(tmp_path / "missing.pth"), input_size=16).fit(X)
    other = tmp_path / "resnet34.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="do not fit"):
        CNNFeatureExtractor(weights=str(other), input_size=16).fit(X)


def test_unknown_names_raise():
    X = gray_uint8(2, 16, 16)
    with pytest.raises(ValueError, match="Unknown weights"):
        CNNFeatureExtractor(weights="IMAGENET9K", input_size=16).fit(X)
    with pytest.raises(ValueError, match="Unknown torchvision classification backbone"):
        CNNFeatureExtractor(backbone="resnet999", input_size=16).fit(X)
    with pytest.raises(ValueError, match="torchvision backbone name"):
        CNNFeatureExtractor(backbone=tiny_net(), weights="DEFAULT").fit(X)


def test_offline_weights_name_fails_fast_with_a_hint(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    X = gray_uint8(2, 16, 16)
    with pytest.raises(ConnectionError, match=r"(?s)unreachable.*hub.*checkpoints.*weights='/path"):
        CNNFeatureExtractor(weights="IMAGENET1K_V1", input_size=16).fit(X)


def test_reachability_check_is_bounded(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(2)  # a connection that never answers within the timeout
        raise OSError("too late")

    monkeypatch.setattr(socket, "create_connection", hang)
    with pytest.raises(ConnectionError, match="no answer"):
        check_reachable("https://download.pytorch.org/x.pth", "a file", "hint", timeout=0.2)


def test_weights_name_reads_the_torch_hub_cache(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cached = cached_weights_path(weights)
    assert cached.startswith(str(tmp_path))
    os.makedirs(os.path.dirname(cached))
    state = _resnet18_state(seed=5)
    torch.save(state, cached)
    X = np.random.RandomState(0).rand(2, 32, 32, 3).astype(np.float32)
    ext = CNNFeatureExtractor(weights="DEFAULT", input_size=32).fit(X)
    assert ext.preprocessing_.mean == tuple(weights.transforms().mean)
    np.testing.assert_allclose(ext.transform(X), _reference_features(state, X), rtol=1e-4, atol=1e-5)
    # Unpickling rebuilds from the pickled state_dict: no cache, no download.
    blob = pickle.dumps(ext)
    os.remove(cached)
    np.testing.assert_array_equal(pickle.loads(blob).transform(X), ext.transform(X))


def test_pickle_gives_identical_features():
    X = np.random.RandomState(0).rand(4, 16, 16).astype(np.float32)
    for ext in (
        CNNFeatureExtractor(backbone=tiny_net(), weights=None),
        CNNFeatureExtractor(weights=None, input_size=16, layer="layer2"),
    ):
        ext.fit(X)
        blob = pickle.dumps(ext)
        restored = pickle.loads(blob)
        np.testing.assert_array_equal(restored.transform(X), ext.transform(X))
    state = ext.__getstate__()  # the network travels as a CPU state_dict
    skeleton, weights = state["_torch_state_network_"]
    assert "network_" not in state and skeleton is None  # rebuilt from the parameters
    assert set(weights) == set(ext.network_.state_dict())


def test_fit_leaves_user_module_and_params_alone():
    net = tiny_net()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ext = CNNFeatureExtractor(backbone=net, weights=None)
    ext.fit(gray_uint8())
    assert ext.backbone is net and net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.requires_grad for p in net.parameters())
    assert not any(p.requires_grad for p in ext.network_.parameters())
    assert not ext.network_.training
    cloned = clone(ext)
    assert not hasattr(cloned, "network_") and cloned.get_params()["batch_size"] == 64


def test_grid_search_over_layers_and_verbose():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.rand(6, 8, 8) * 0.3, 0.7 + rng.rand(6, 8, 8) * 0.3]).astype(np.float32)
    y = np.repeat([0, 1], 6)
    pipe = make_pipeline(
        CNNFeatureExtractor(backbone=tiny_net(), weights=None, verbose=1),
        KNeighborsClassifier(n_neighbors=1),
    )
    search = GridSearchCV(pipe, {"cnnfeatureextractor__pooling": ["avg", "max"]}, cv=2)
    search.fit(X, y)
    assert search.best_score_ == 1.0
    assert search.predict(X).tolist() == y.tolist()
