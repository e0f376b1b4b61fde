"""The training engine shared by the deep estimators: parameters, callbacks, history, pickling."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

torch = pytest.importorskip("torch")

from skmetric.deep.callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler  # noqa: E402
from skmetric.deep.siamese import SiameseNet  # noqa: E402

from ._deep_data import blobs  # noqa: E402

pytestmark = pytest.mark.deep

FAST = dict(max_epochs=3, n_pairs=64, batch_size=32, validation_fraction=0, embedding_dim=4,
            hidden_layer_sizes=(8,), random_state=0)


_blobs = blobs


def test_optimizer_class_with_routed_parameters():
    X, y = _blobs()
    net = SiameseNet(optimizer=torch.optim.SGD, optimizer__momentum=0.5, **FAST)
    assert net.get_params()["optimizer__momentum"] == 0.5
    net.set_params(optimizer__momentum=0.7, optimizer__nesterov=True)
    c = clone(net)
    assert c.optimizer__momentum == 0.7 and c.optimizer__nesterov is True
    seen = {}

    class Spy(Callback):
        def on_train_begin(self, net):
            seen.update(net.optimizer_.param_groups[0])

    c.set_params(callbacks=[Spy()]).fit(X, y)
    assert seen["momentum"] == 0.7 and seen["nesterov"] is True and seen["lr"] == c.lr
    assert not hasattr(c, "optimizer_")  # dropped after training
    with pytest.raises(TypeError, match="unexpected keyword argument 'momentum'"):
        SiameseNet(momentum=0.5)
    with pytest.raises(ValueError, match="optimizer must be"):
        SiameseNet(optimizer=dict, **FAST).fit(X, y)


def test_history_lr_scheduler_and_checkpoint(tmp_path):
    X, y = _blobs()
    path = tmp_path / "best.pt"
    net = SiameseNet(
        callbacks=[LRScheduler("StepLR", step_size=1, gamma=0.5), Checkpoint(path, monitor=None)],
        **{**FAST, "lr": 0.01},
    ).fit(X, y)
    assert [h["lr"] for h in net.history_] == pytest.approx([0.01, 0.005, 0.0025])
    assert {"epoch", "train_loss", "train_loss_best", "lr", "dur"} <= set(net.history_[0])
    saved = torch.load(path)
    assert set(saved) == set(net.module_.state_dict())
    # The user's callback objects are not fitted (copied at fit).
    assert not hasattr(net.callbacks[0], "scheduler_")


def test_unwritable_checkpoint_fails_at_once(tmp_path):
    X, y = _blobs()
    bad = tmp_path / "no_such_dir" / "w.pt"
    epochs = []

    class Count(Callback):
        def on_epoch_begin(self, net):
            epochs.append(1)

    with pytest.raises(ValueError, match="no_such_dir"):
        SiameseNet(callbacks=[Checkpoint(bad), Count()], **FAST).fit(X, y)
    assert not epochs


def test_early_stopping_restores_the_best_weights():
    X, y = _blobs()
    snapshots = {}

    class Snap(Callback):
        def on_epoch_end(self, net):
            snapshots[net.history_[-1]["epoch"]] = {k: v.clone() for k, v in net.module_.state_dict().items()}

    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=1e9)
    net = SiameseNet(callbacks=[Snap(), stop], **{**FAST, "max_epochs": 5}).fit(X, y)
    assert net.n_iter_ == 2 and net.best_epoch_ == 1
    for k, v in net.module_.state_dict().items():
        assert torch.equal(v, snapshots[1][k])


def test_pickle_moves_weights_to_the_cpu_and_loads_without_a_gpu():
    X, y = _blobs()
    net = SiameseNet(**FAST).fit(X, y)
    state = net.__getstate__()
    skeleton, weights = state["_torch_state_module_"]
    assert all(v.device.type == "cpu" for v in weights.values())
    state["device_"] = "cuda:0"  # as if pickled on a GPU machine
    back = SiameseNet.__new__(SiameseNet)
    if not torch.cuda.is_available():
        back.__setstate__(pickle.loads(pickle.dumps(state)))
        assert back.device_.type == "cpu"
        np.testing.assert_array_equal(back.transform(X), net.transform(X))


def test_fine_tuned_cnn_has_validation_and_early_stopping():
    from skmetric.deep.fine_tuning import FineTunedCNN

    rng = np.random.RandomState(0)
    X = np.concatenate([rng.rand(10, 8, 8) * 0.4, 0.6 + rng.rand(10, 8, 8) * 0.4]).astype(np.float32)
    y = np.repeat([0, 1], 10)
    body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    model = FineTunedCNN(
        backbone=body, n_trainable_blocks=None, validation_fraction=0.2, n_iter_no_change=1, tol=1e9,
        max_epochs=4, batch_size=8, random_state=0,
    ).fit(X, y)
    assert model.n_iter_ == 2 and model.best_epoch_ == 1 and "valid_loss" in model.history_[0]
