"""Supervised training of an image classifier with cross-entropy.

The solver behind :class:`~skmetric.deep.fine_tuning.FineTunedCNN` and the
digits pretraining of :mod:`benchmarks.transfer`: mini-batch Adam or SGD
over the parameters that require gradients, for a fixed number of epochs.
"""

import numpy as np

from .._optional import import_torch
from ._backbones import preprocess

__all__ = ["progress", "seed_everything", "train_classifier"]


def progress(iterable, verbose, desc, total=None):
    """``iterable`` wrapped in a tqdm bar when verbose (and tqdm is installed)."""
    if not verbose:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: progress is a nicety
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False)


def seed_everything(random_state):
    """An integer torch seed drawn from a numpy RandomState."""
    return int(random_state.randint(np.iinfo(np.int32).max))


def _set_modes(network):
    # Trainable parts train; frozen parts keep eval mode so that their batch
    # norm statistics stay those of the pretrained weights.
    network.train()
    for module in network.modules():
        params = list(module.parameters(recurse=False))
        if params and not any(p.requires_grad for p in params):
            module.eval()


def _batches(n, batch_size, generator):
    torch = import_torch()
    order = torch.randperm(n, generator=generator).numpy()
    n_batches = max(1, int(np.ceil(n / batch_size)))
    # array_split never leaves a final batch of one image (batch norm needs two).
    return np.array_split(order, n_batches)


def train_classifier(
    network,
    images,
    targets,
    spec,
    *,
    epochs,
    batch_size,
    optimizer="adam",
    learning_rate=1e-3,
    weight_decay=0.0,
    seed=0,
    device="cpu",
    verbose=0,
    desc="epochs",
):
    """Minimise the mean cross-entropy of ``network(preprocess(images))``.

    Parameters
    ----------
    network : torch.nn.Module
        Maps a preprocessed batch to class logits; only parameters with
        ``requires_grad`` are updated. Left in eval mode on return.
    images : ndarray of shape (N, C, H, W), float32 in [0, 1]
    targets : ndarray of shape (N,), int class indices
    spec : Preprocessing
    epochs, batch_size : int
    optimizer : {'adam', 'sgd'}
        SGD uses Nesterov momentum 0.9.
    learning_rate, weight_decay : float
    seed : int
        Seeds the batch order (the caller seeds initialisation).
    device : torch.device
    verbose : int
        A tqdm bar over epochs with the running loss.

    Returns
    -------
    loss_curve : list of float
        Mean training loss of each epoch.
    """
    torch = import_torch()
    params = [p for p in network.parameters() if p.requires_grad]
    if not params:
        raise ValueError("Nothing to train: no parameter requires gradients.")
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(
            params, lr=learning_rate, momentum=0.9, nesterov=True, weight_decay=weight_decay
        )
    generator = torch.Generator().manual_seed(int(seed))
    y_all = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    n = len(images)
    curve = []
    bar = progress(range(epochs), verbose, desc)
    for _ in bar:
        _set_modes(network)
        total = 0.0
        for idx in _batches(n, batch_size, generator):
            xb = preprocess(torch.from_numpy(images[idx]).to(device), spec)
            yb = y_all[idx].to(device)
            loss = torch.nn.functional.cross_entropy(network(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        curve.append(total / n)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{curve[-1]:.4f}")
    network.eval()
    return curve
