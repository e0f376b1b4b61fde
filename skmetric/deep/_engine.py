"""The one training engine of the deep estimators (SiameseNet, FineTunedCNN, DeepMetricLearner).

What lives here, once: the fit loop and its hooks, callbacks (progress,
early stopping with the best weights restored, learning-rate scheduling,
checkpointing), ``history_``, the optimizer from a name or a class with
``optimizer__*`` parameters, seeding, device handling (through
:func:`skmetric._optional.resolve_device`), batched inference and CPU/GPU-safe
pickling.

Design, in the spirit of skorch (``NeuralNet``):

* ``initialize()`` runs the steps named in ``_initialize_steps`` in order
  (device, module, optimizer, callbacks); a subclass adds or replaces steps.
* ``fit_loop(train_data, valid_data)`` runs the epochs; each batch goes through
  ``train_step(batch) -> get_loss(batch, training=True)`` (and
  ``validation_step`` without gradients). A subclass only says what a batch
  is (``iter_batches``) and what its loss is (``get_loss``).
* Callbacks get ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` and
  ``on_train_end`` with the estimator; ``history_`` is a list of per-epoch
  dicts (``epoch``, ``train_loss``, ``valid_loss``, ``valid_loss_best``,
  ``lr``, ``dur``, and whatever a callback or subclass adds).

Why our own loop and not skorch underneath. What users get: skorch's
``NeuralNet`` owns ``__init__``, ``fit`` and the data pipeline
(``Dataset`` / ``DataLoader`` / ``ValidSplit``); SiameseNet (fresh balanced
pairs every epoch, Platt calibration), DeepMetricLearner (m-per-class
batches, PML losses with learned proxies) and FineTunedCNN (frozen blocks
kept in eval mode) would override most of it, and our estimators are
scikit-learn estimators first (``_parameter_constraints``, ``_fit_context``,
their own validation rules). The user-facing pieces skorch is known for
(``initialize()`` steps, ``fit_loop -> train_step -> get_loss``, callbacks,
``history_``, ``optimizer__*`` routing) are here in one module, with no
new dependency. Measured overhead against a plain torch loop (same module,
same batches, Adam, batch 64, CPU, 1 thread, median of 9 interleaved runs;
``python benchmarks/bench_deep.py --engine-overhead``, skorch 1.4.0 for
comparison) on a 2-core machine shared with other jobs:

=====================================  ==========  ===============  ===============
case                                   plain loop  this engine      skorch NeuralNet
=====================================  ==========  ===============  ===============
MLP 64-128-10, 2,000 vectors, 20 ep.   2.63 s      2.27 s (-13.5%)  3.88 s (+47.7%)
CNN 2 conv, 2,000 8x8 images, 5 ep.    2.87 s      2.86 s (-0.3%)   3.41 s (+18.9%)
=====================================  ==========  ===============  ===============

The engine's cost is below the noise of that machine (its only per-batch
extra is one Python call; per epoch, a history record and the callbacks),
while skorch's DataLoader collation costs 20-50% on models this small.

torch is imported lazily.
"""

import contextlib
import copy
import os
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from .._optional import import_torch, resolve_device
from .._solver import Progress

__all__ = [
    "EARLY_STOPPING_CONSTRAINTS",
    "ENGINE_CONSTRAINTS",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "LRScheduler",
    "ProgressBar",
    "TorchStateMixin",
    "TrainingMixin",
    "draw_seed",
    "forward_in_batches",
    "progress",
    "seeded",
    "class_disjoint_split",
    "class_folds",
    "n_class_folds",
    "stratified_split",
]

OPTIMIZERS = ("adam", "adamw", "sgd")


def _torch():
    return import_torch("skmetric's deep estimators")


# ------------------------------------------------------------------ helpers
def progress(iterable, verbose, desc, total=None):
    """``iterable`` wrapped in a tqdm bar when verbose (and tqdm is installed)."""
    if not verbose:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: progress is a nicety
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False)


def draw_seed(random_state):
    """An integer torch seed drawn from ``random_state`` (int, RandomState or None)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed, device=None):
    """Seed torch inside the block and restore the global RNG state after it.

    Deterministic algorithms are switched on (warn only) inside, so that two
    fits with the same seed are identical on the CPU; the caller's settings
    and RNG state are restored on exit.
    """
    torch = _torch()
    cpu_only = device is None or getattr(device, "type", str(device)) == "cpu"
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[] if cpu_only else None):
            torch.manual_seed(int(seed))
            yield
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])


def forward_in_batches(forward, batches, device, verbose=0, desc="batches", total=None, dtype=np.float32):
    """Run ``forward`` (a tensor -> (n, D) tensor) over numpy ``batches`` without gradients.

    Returns a numpy array of ``dtype`` (float32 by default), the outputs
    stacked in order.
    """
    torch = _torch()
    outputs = []
    with torch.inference_mode():
        for batch in progress(batches, verbose, desc, total=total):
            batch = np.ascontiguousarray(batch)
            if not batch.flags.writeable:  # torch warns on read-only arrays (memmaps)
                batch = batch.copy()
            x = torch.from_numpy(batch).to(device)
            outputs.append(forward(x).cpu().numpy())
    return np.concatenate(outputs).astype(dtype, copy=False)


def stratified_split(y, fraction, rng):
    """Indices (train, valid) with about ``fraction`` of each class held out.

    Each class gives ``floor(fraction * n_c)`` samples, so every class keeps at
    least one training sample. Returns ``(arange(n), None)`` for fraction 0.
    """
    n = y.shape[0]
    if not fraction:
        return np.arange(n), None
    idx_train, idx_val = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        k = int(np.floor(fraction * members.size))
        idx_val.append(members[:k])
        idx_train.append(members[k:])
    return np.sort(np.concatenate(idx_train)), np.sort(np.concatenate(idx_val))


MIN_VALIDATION_CLASSES = 2  # a 2-way one-shot episode needs two held-out classes
MIN_TRAINING_CLASSES = 2  # pairs and class-balanced batches need two training classes


def class_disjoint_split(y, fraction, rng, who="the estimator"):
    """Indices (train, valid) where the validation samples are whole held-out classes.

    ``round(fraction * n_classes)`` classes (at least 2) are drawn from the
    classes with two or more samples (a one-shot episode needs a query and a
    support of each class); all their samples are validation samples, every
    other class is trained on, so the two parts share no class. Returns
    ``(arange(n), None)`` for fraction 0.

    Raises
    ------
    ValueError
        When ``y`` has too few classes to hold 2 out and keep 2 for training.
    """
    n = y.shape[0]
    if not fraction:
        return np.arange(n), None
    classes, eligible, n_val = _held_out_classes(y, fraction)
    if not _can_hold_out(classes, eligible, n_val):
        raise ValueError(
            f"Class-disjoint validation needs at least {MIN_VALIDATION_CLASSES + MIN_TRAINING_CLASSES} "
            f"classes ({MIN_VALIDATION_CLASSES} held out with 2+ samples each, "
            f"{MIN_TRAINING_CLASSES} to train on); y has {classes.size} classes "
            f"({eligible.size} with 2+ samples) and validation_fraction={fraction} holds out "
            f"{n_val}. Pass validation='stratified' (held-out samples of the training classes) "
            f"or validation=None to fit {who} without it."
        )
    held = rng.choice(eligible, n_val, replace=False)
    is_val = np.isin(y, held)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _held_out_classes(y, fraction):
    """(classes, classes with 2+ samples, number of classes to hold out)."""
    classes, eligible = _fold_plan(y)
    n_val = max(MIN_VALIDATION_CLASSES, int(round(fraction * classes.size)))
    return classes, eligible, n_val


def _can_hold_out(classes, eligible, n_val):
    """``n_val`` held-out classes with 2+ samples each, and enough left to train on."""
    return eligible.size >= n_val and classes.size - n_val >= MIN_TRAINING_CLASSES


def can_hold_out_classes(y, fraction):
    """Whether :func:`class_disjoint_split` can split ``y`` with ``fraction``."""
    return _can_hold_out(*_held_out_classes(y, fraction))


def held_out_class_count(y, fraction):
    """Classes :func:`class_disjoint_split` holds out of ``y`` with ``fraction``."""
    return _held_out_classes(y, fraction)[2]


def _fold_plan(y):
    """(classes, classes with 2+ samples): the classes a split or a fold can hold out."""
    classes, counts = np.unique(y, return_counts=True)
    return classes, classes[counts >= 2]


def _can_fold(n_classes, n_eligible, n_folds):
    """Every group 2+ held-out classes, every fold 2+ classes to train on."""
    return (n_folds >= 2 and n_eligible >= MIN_VALIDATION_CLASSES * n_folds
            and n_classes - int(np.ceil(n_eligible / n_folds)) >= MIN_TRAINING_CLASSES)


def n_class_folds(y, max_folds):
    """The most folds (up to ``max_folds``) :func:`class_folds` can cut ``y`` into; 0 if none."""
    classes, eligible = _fold_plan(y)
    return next((k for k in range(int(max_folds), 1, -1) if _can_fold(classes.size, eligible.size, k)), 0)


def class_folds(y, n_folds, rng):
    """``n_folds`` class-disjoint (train, valid) index pairs: each group of classes held out once.

    The classes with two or more samples are shuffled with ``rng`` and cut
    into ``n_folds`` groups of nearly equal size (``np.array_split``); fold
    ``k`` validates on every sample of group ``k`` and trains on all the
    other samples (classes with a single sample are always trained on).

    Raises
    ------
    ValueError
        When a group would have fewer than 2 classes or a fold fewer than 2
        training classes (``y`` needs ``2 * n_folds`` classes with 2+
        samples, and at least 4 classes).
    """
    classes, eligible = _fold_plan(y)
    n_folds = int(n_folds)
    if not _can_fold(classes.size, eligible.size, n_folds):
        raise ValueError(
            f"Class folds need at least 2 folds of {MIN_VALIDATION_CLASSES} held-out classes with "
            f"2+ samples each and {MIN_TRAINING_CLASSES} classes left to train on; y has "
            f"{classes.size} classes ({eligible.size} with 2+ samples), n_folds={n_folds}."
        )
    folds = []
    for group in np.array_split(rng.permutation(eligible), n_folds):
        is_val = np.isin(y, group)
        folds.append((np.flatnonzero(~is_val), np.flatnonzero(is_val)))
    return folds


# ---------------------------------------------------------------- callbacks
class Callback(BaseEstimator):
    """Base class of the training callbacks (every hook does nothing).

    Hooks receive the estimator being fitted (``net``): ``net.history_`` (the
    current epoch's record is ``net.history_[-1]``), ``net.optimizer_``,
    ``net.module_`` (the trained module) and ``net.stop_training()``. A
    callback passed in ``callbacks`` is deep-copied at fit: the fitted copies
    are in ``net.callbacks_``.
    """

    def on_train_begin(self, net):
        """Before the first epoch (after ``initialize``)."""

    def on_epoch_begin(self, net):
        """Before each epoch."""

    def on_epoch_end(self, net):
        """After each epoch; ``net.history_[-1]`` holds its record."""

    def on_train_end(self, net):
        """After the last epoch."""


class ProgressBar(Callback):
    """A tqdm bar over epochs with the epoch's record (or printed lines without tqdm).

    Added by the estimators when ``verbose > 0``.
    """

    def on_train_begin(self, net):
        self.bar_ = None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # progress lines instead of a bar
            return
        self.bar_ = tqdm(total=net.max_epochs, desc=f"{type(net).__name__} epochs", unit="epoch")

    def on_epoch_end(self, net):
        shown = {
            k: f"{v:.4g}" for k, v in net.history_[-1].items()
            if k not in ("epoch", "dur") and isinstance(v, Real) and not isinstance(v, bool)
        }
        if self.bar_ is not None:
            self.bar_.set_postfix(shown)
            self.bar_.update(1)
        else:  # the shared voice: [ClassName] iter k  loss ...
            record = net.history_[-1]
            extra = {k: v for k, v in shown.items() if k != "train_loss"}
            Progress(net, 1).iter(record["epoch"], record.get("train_loss", float("nan")), **extra)

    def on_train_end(self, net):
        if getattr(self, "bar_", None) is not None:
            self.bar_.close()
        self.bar_ = None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``threshold`` for ``patience`` epochs.

    The weights of the best epoch are restored at the end of training
    (``load_best=True``) and ``net.best_epoch_`` is set. When the estimator
    scored its untrained weights (``net.initial_scores_`` holds ``monitor``:
    the class-disjoint validation of SiameseNet and DeepMetricLearner), the
    initial weights compete as epoch 0: an epoch must beat them by
    ``threshold`` to be kept, and ``best_epoch_ = 0`` means training never
    did and the initial weights were restored.

    Parameters
    ----------
    monitor : str, default='valid_loss'
        A key of the history records; falls back to 'train_loss' (lower is
        better) when the records do not have it.
    patience : int, default=5
    threshold : float, default=1e-4
        Absolute improvement that counts.
    load_best : bool, default=True
    lower_is_better : bool, default=True
        False for scores (e.g. 'valid_one_shot', an accuracy).
    """

    def __init__(self, monitor="valid_loss", patience=5, threshold=1e-4, load_best=True,
                 lower_is_better=True):
        self.monitor = monitor
        self.patience = patience
        self.threshold = threshold
        self.load_best = load_best
        self.lower_is_better = lower_is_better

    def _value(self, record):
        """The monitored value as a loss (lower is better), or None if absent."""
        if self.monitor in record:
            v = float(record[self.monitor])
            return v if self.lower_is_better else -v
        if record is not getattr(self, "_initial", None) and "train_loss" in record:
            return float(record["train_loss"])
        return None

    def on_train_begin(self, net):
        self.best_, self.best_epoch_, self.stall_, self.best_state_ = np.inf, None, 0, None
        self._initial = getattr(net, "initial_scores_", None) or {}
        value = self._value(self._initial) if self.monitor in self._initial else None
        if value is not None:
            self.best_, self.best_epoch_ = value, 0
            if self.load_best:
                self.best_state_ = copy.deepcopy(net.module_.state_dict())

    def on_epoch_end(self, net):
        value = self._value(net.history_[-1])
        if value is not None and value < self.best_ - self.threshold:
            self.best_, self.best_epoch_, self.stall_ = value, net.history_[-1]["epoch"], 0
            if self.load_best:
                self.best_state_ = copy.deepcopy(net.module_.state_dict())
        else:
            self.stall_ += 1
            if self.stall_ >= self.patience:
                net.stop_training()

    def on_train_end(self, net):
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
            net.best_epoch_ = self.best_epoch_
        self.best_state_ = None  # do not keep a second copy of the weights


class LRScheduler(Callback):
    """A torch learning-rate scheduler stepped once per epoch.

    Parameters
    ----------
    policy : str or class, default='StepLR'
        A name in ``torch.optim.lr_scheduler`` or a scheduler class.
    monitor : str, default='valid_loss'
        The history key passed to ``ReduceLROnPlateau`` (falls back to
        'train_loss').
    **kwargs
        Passed to the scheduler (e.g. ``step_size=10, gamma=0.5``).

    The learning rate of each epoch is in ``history_`` under 'lr'.
    """

    def __init__(self, policy="StepLR", monitor="valid_loss", **kwargs):
        self.policy = policy
        self.monitor = monitor
        self.kwargs = kwargs

    def get_params(self, deep=True):
        return {"policy": self.policy, "monitor": self.monitor, **self.kwargs}

    def set_params(self, **params):
        for key in ("policy", "monitor"):
            if key in params:
                setattr(self, key, params.pop(key))
        self.kwargs.update(params)
        return self

    def on_train_begin(self, net):
        sched = _torch().optim.lr_scheduler
        cls = getattr(sched, self.policy, None) if isinstance(self.policy, str) else self.policy
        if cls is None:
            raise ValueError(f"Unknown LR scheduler policy {self.policy!r}; use a name in torch.optim.lr_scheduler or a class.")
        self.scheduler_ = cls(net.optimizer_, **self.kwargs)

    def on_epoch_end(self, net):
        record = net.history_[-1]
        if isinstance(self.scheduler_, _torch().optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler_.step(record.get(self.monitor, record["train_loss"]))
        else:
            self.scheduler_.step()

    def on_train_end(self, net):
        del self.scheduler_


class Checkpoint(Callback):
    """Save the trained module's ``state_dict`` to a file during training.

    Parameters
    ----------
    f_params : str or path
        The file. It is opened for writing when training begins, so a path
        that cannot be written fails the fit at once (a ValueError naming it).
    monitor : str or None, default='valid_loss_best'
        Save when this history key is true (the best validation loss so far,
        or the best training loss without validation); None saves every epoch.
    """

    def __init__(self, f_params, monitor="valid_loss_best"):
        self.f_params = f_params
        self.monitor = monitor

    def on_train_begin(self, net):
        path = os.fspath(self.f_params)
        try:
            with open(path, "ab"):
                pass
        except OSError as exc:
            raise ValueError(f"Checkpoint cannot write to {path!r}: {exc.strerror or exc}.") from exc

    def on_epoch_end(self, net):
        record = net.history_[-1]
        key = self.monitor
        if key == "valid_loss_best" and "valid_loss_best" not in record:
            key = "train_loss_best"
        if key is None or record.get(key, False):
            state = {k: v.detach().cpu() for k, v in net.module_.state_dict().items()}
            _torch().save(state, os.fspath(self.f_params))
            record["checkpoint"] = True


# -------------------------------------------------------------- pickling
class TorchStateMixin:
    """Pickle the torch modules named in ``_torch_modules`` as CPU state_dicts.

    A model trained on a GPU unpickles on a machine without one (on the CPU).
    A class that can rebuild a module from its parameters implements
    ``_rebuild_module(name, state_dict)``; otherwise a CPU copy of the module
    (without gradients) travels with the weights.
    """

    _torch_modules = ("module_",)

    def _rebuild_module(self, name, state_dict):
        return None

    def __getstate__(self):
        state = dict(super().__getstate__())
        for name in self._torch_modules:
            module = state.pop(name, None)
            if module is None:
                continue
            weights = {k: v.detach().cpu() for k, v in module.state_dict().items()}
            skeleton = None
            if type(self)._rebuild_module is TorchStateMixin._rebuild_module:
                skeleton = copy.deepcopy(module).cpu()
            state[f"_torch_state_{name}"] = (skeleton, weights)
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = {n: state.pop(f"_torch_state_{n}") for n in self._torch_modules if f"_torch_state_{n}" in state}
        super().__setstate__(state)
        if not saved:
            return
        torch = _torch()
        device = torch.device(str(getattr(self, "device_", "cpu")))
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")
        self.device_ = device
        for name, (skeleton, weights) in saved.items():
            module = skeleton if skeleton is not None else self._rebuild_module(name, weights)
            module.load_state_dict(weights)
            setattr(self, name, module.to(device).eval())


# ----------------------------------------------------------------- engine
# Validation split and early stopping, for the estimators that have them.
EARLY_STOPPING_CONSTRAINTS = {
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "n_iter_no_change": [None, Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
}

ENGINE_CONSTRAINTS = {
    "optimizer": "no_validation",  # a name or a torch.optim.Optimizer class; checked in initialize
    "lr": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "callbacks": [None, list, tuple],
    "device": "no_validation",  # checked by resolve_device
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


class TrainingMixin(TorchStateMixin):
    """The fit loop, callbacks, optimizer, seeding and device of a deep estimator.

    A subclass implements:

    * ``_initialize_module()``: build the trained module and store it as
      ``self.module_`` (a ``torch.nn.Module``; a ``ModuleDict`` for several
      parts);
    * ``iter_batches(data, training)``: the batches of one epoch (on
      ``self.device_``); ``data`` is whatever the subclass passes to
      :meth:`fit_loop`;
    * ``get_loss(batch, training)``: the scalar loss tensor of a batch.

    Its ``__init__`` takes ``optimizer``, ``lr``, ``weight_decay``,
    ``max_epochs``, ``batch_size``, ``callbacks``, ``device``,
    ``random_state``, ``verbose`` (see ``ENGINE_CONSTRAINTS``) and
    ``**kwargs`` for ``optimizer__*`` parameters; its body is
    ``self._store_init_params(locals())``.
    """

    _initialize_steps = ("_initialize_module", "_initialize_optimizer", "_initialize_callbacks")
    _routed_prefixes = ("optimizer__",)

    # ---- parameters routed to the optimizer (optimizer__momentum=0.9, ...)
    def _store_init_params(self, params):
        """Store the ``__init__`` arguments (``locals()``) unchanged, ``**kwargs`` routed."""
        params = dict(params)
        kwargs = params.pop("kwargs", {})
        params.pop("self", None)
        for key, value in params.items():
            setattr(self, key, value)
        self._store_routed_params(kwargs)

    def _store_routed_params(self, kwargs):
        for key, value in kwargs.items():
            if not key.startswith(self._routed_prefixes):
                raise TypeError(
                    f"{type(self).__name__}.__init__() got an unexpected keyword argument {key!r}"
                )
            setattr(self, key, value)

    def _routed(self, prefix):
        return {k[len(prefix):]: v for k, v in vars(self).items() if k.startswith(prefix) and not k.endswith("_")}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update({k: v for k, v in vars(self).items() if k.startswith(self._routed_prefixes)})
        return params

    def set_params(self, **params):
        for key in [k for k in params if k.startswith(self._routed_prefixes)]:
            setattr(self, key, params.pop(key))
        return super().set_params(**params)

    # ---- initialize(): a list of steps
    def initialize(self):
        """Run the ``_initialize_steps`` (build module, optimizer, callbacks)."""
        for step in self._initialize_steps:
            getattr(self, step)()
        return self

    def _trainable_parameters(self):
        return [p for p in self.module_.parameters() if p.requires_grad]

    def _initialize_optimizer(self):
        torch = _torch()
        params = self._trainable_parameters()
        if not params:
            raise ValueError("Nothing to train: no parameter requires gradients.")
        kwargs = {"lr": self.lr, "weight_decay": self.weight_decay}
        opt = self.optimizer
        if isinstance(opt, str):
            if opt not in OPTIMIZERS:
                raise ValueError(f"Unknown optimizer {opt!r}; use one of {list(OPTIMIZERS)} or a torch.optim.Optimizer class.")
            if opt == "sgd":
                kwargs.update(momentum=0.9, nesterov=True)
            opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[opt]
        elif not (isinstance(opt, type) and issubclass(opt, torch.optim.Optimizer)):
            raise ValueError(
                f"optimizer must be one of {list(OPTIMIZERS)} or a torch.optim.Optimizer "
                f"subclass; got {opt!r}."
            )
        kwargs.update(self._routed("optimizer__"))
        self.optimizer_ = opt(params, **kwargs)

    def _default_callbacks(self):
        """Callbacks added before the user's.

        Early stopping on the validation loss when there is validation data
        and the estimator has ``n_iter_no_change`` (not None) and ``tol``.
        """
        patience = getattr(self, "n_iter_no_change", None)
        if self._has_valid and patience is not None:
            monitor, lower = self._early_stopping_monitor()
            return [EarlyStopping(monitor, patience=patience, threshold=self.tol, lower_is_better=lower)]
        return []

    def _early_stopping_monitor(self):
        """(history key, lower_is_better) that early stopping watches."""
        return "valid_loss", True

    def _initialize_callbacks(self):
        user = (self.callbacks or ()) if getattr(self, "_user_callbacks", True) else ()
        cbs = list(self._default_callbacks()) + [copy.deepcopy(cb) for cb in user]
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise ValueError(f"callbacks must be Callback instances; got {type(cb).__name__}.")
        if self.verbose:
            cbs.append(ProgressBar())
        self.callbacks_ = cbs

    # ---- the loop
    def stop_training(self):
        """Ask the loop to stop after the current epoch (for callbacks)."""
        self._stop = True

    def _notify(self, hook):
        for cb in self.callbacks_:
            getattr(cb, hook)(self)

    def train_step(self, batch):
        """One optimisation step on a batch; returns the loss as a float."""
        self.optimizer_.zero_grad(set_to_none=True)
        loss = self.get_loss(batch, training=True)
        loss.backward()
        self.optimizer_.step()
        return float(loss.detach())

    def validation_step(self, batch):
        """The loss of a batch without gradients, as a float."""
        with _torch().no_grad():
            return float(self.get_loss(batch, training=False))

    def _set_train_mode(self, training):
        self.module_.train(training)

    def _run_epoch(self, data, training):
        self._set_train_mode(training)
        total, n = 0.0, 0
        step = self.train_step if training else self.validation_step
        for batch in self.iter_batches(data, training):
            size = self.batch_length(batch)
            total += step(batch) * size
            n += size
        return total / max(n, 1)

    @staticmethod
    def batch_length(batch):
        """Samples in a batch (its first tensor's length)."""
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        return int(first.shape[0])

    # History keys that are scores (higher is better); they get '*_best' flags too.
    _higher_is_better = ("valid_one_shot",)

    def on_epoch_record(self, record, valid_data):
        """Add entries to an epoch's record before the callbacks see it (override point)."""

    def initial_record(self, valid_data):
        """The validation record of the untrained weights (``initial_scores_``; override point).

        Empty by default; the class-disjoint validation of the embedding
        networks scores the initial weights here, so that early stopping can
        keep them when training never helps on the held-out classes.
        """
        return {}

    def fit_loop(self, train_data, valid_data=None):
        """Run up to ``max_epochs`` epochs; fills ``history_``."""
        self.history_, self._stop = [], False
        self.best_epoch_ = None
        self.initial_scores_ = self.initial_record(valid_data) if valid_data is not None else {}
        self._notify("on_train_begin")
        best = {"train_loss": np.inf, "valid_loss": np.inf}
        best.update({k: -v for k, v in self.initial_scores_.items() if k in self._higher_is_better})
        try:
            n_epochs = getattr(self, "_n_epochs", None)
            for epoch in range(1, (self.max_epochs if n_epochs is None else n_epochs) + 1):
                self._notify("on_epoch_begin")
                t0 = time.perf_counter()
                record = {"epoch": epoch, "lr": float(self.optimizer_.param_groups[0]["lr"])}
                record["train_loss"] = self._run_epoch(train_data, training=True)
                if valid_data is not None:
                    record["valid_loss"] = self._run_epoch(valid_data, training=False)
                self.on_epoch_record(record, valid_data)
                for key in ("train_loss", "valid_loss", *self._higher_is_better):
                    if key in record:
                        value = -record[key] if key in self._higher_is_better else record[key]
                        record[f"{key}_best"] = bool(value < best.get(key, np.inf))
                        best[key] = min(best.get(key, np.inf), value)
                record["dur"] = time.perf_counter() - t0
                self.history_.append(record)
                self._notify("on_epoch_end")
                if self._stop:
                    break
        finally:
            self._notify("on_train_end")
        self.module_.eval()
        self.n_iter_ = len(self.history_)
        if self.best_epoch_ is None:
            self.best_epoch_ = self.n_iter_
        self.loss_curve_ = [h["train_loss"] for h in self.history_]
        self.validation_scores_ = [h["valid_loss"] for h in self.history_ if "valid_loss" in h]
        return self

    def _fit_engine(self, train_data, valid_data, seed, n_epochs=None, user_callbacks=True):
        """Resolve the device, seed torch with ``seed``, initialize and run the loop.

        ``n_epochs`` (default ``max_epochs``) epochs at most; 0 builds the
        untrained module. ``user_callbacks=False`` leaves out the user's
        callbacks (the selection runs of class-fold validation). The global
        torch RNG is left as it was; the optimizer is dropped after training
        (``history_`` keeps the record).
        """
        self.device_ = resolve_device(self.device)
        self._has_valid = valid_data is not None
        self._n_epochs, self._user_callbacks = n_epochs, user_callbacks
        try:
            with seeded(seed, self.device_):
                self._batch_generator = _torch().Generator().manual_seed(int(seed))
                self.initialize()
                self.fit_loop(train_data, valid_data)
        finally:
            del self._n_epochs, self._user_callbacks
        del self.optimizer_, self._batch_generator
        return self

    def _shuffled(self, n, training):
        """Order of ``n`` items for one epoch: shuffled (seeded) in training."""
        if not training:
            return np.arange(n)
        return _torch().randperm(n, generator=self._batch_generator).numpy()

    def batch_indices(self, n, training):
        """Index arrays of the batches of one epoch over ``n`` items.

        Shuffled in training; about ``batch_size`` each, split evenly
        (``np.array_split``) so that no batch has a single item, which batch
        norm cannot train on.
        """
        n_batches = max(1, int(np.ceil(n / self.batch_size)))
        return np.array_split(self._shuffled(n, training), n_batches)
