"""Batch losses and miners of DeepMetricLearner, from pytorch-metric-learning.

Names map to the losses of pytorch-metric-learning (Musgrave et al., 2020)
and to our own pair losses, applied to every pair of a batch:

* ``'triplet'``: TripletMarginLoss (Schroff et al., 2015), margin 0.2;
* ``'multi_similarity'``: MultiSimilarityLoss (Wang et al., 2019);
* ``'proxy_anchor'``: ProxyAnchorLoss (Kim et al., 2020), learned proxies;
* ``'arcface'``: ArcFaceLoss (Deng et al., 2019), learned class centres;
* ``'ntxent'``: NTXentLoss (Chen et al., 2020), same-class samples as positives;
* ``'contrastive'``: our ContrastiveLoss (Hadsell et al., 2006);
* ``'binomial_deviance'``: our BinomialDevianceLoss (Yi et al., 2014).

All but 'proxy_anchor' and 'arcface' need positives (two samples of a class).

Miners: ``'semihard'`` and ``'hard'`` (TripletMarginMiner with that
``type_of_triplets``) and ``'multi_similarity'`` (MultiSimilarityMiner).

pytorch-metric-learning is imported only when a loss or miner is built.
"""

from ..._optional import import_optional
from ._base import PairLoss
from .binomial_deviance import BinomialDevianceLoss
from .contrastive import ContrastiveLoss

__all__ = ["METRIC_LOSSES", "MINERS", "NEEDS_POSITIVES", "make_metric_loss", "make_miner"]

_PML_LOSSES = {
    "triplet": ("TripletMarginLoss", {"margin": 0.2}),
    "multi_similarity": ("MultiSimilarityLoss", {}),
    "proxy_anchor": ("ProxyAnchorLoss", {}),
    "arcface": ("ArcFaceLoss", {}),
    "ntxent": ("NTXentLoss", {}),
}
_PAIR_LOSSES = {"contrastive": ContrastiveLoss, "binomial_deviance": BinomialDevianceLoss}
_WITH_CLASSES = {"proxy_anchor", "arcface"}  # built with num_classes, embedding_size

METRIC_LOSSES = (*_PML_LOSSES, *_PAIR_LOSSES)
NEEDS_POSITIVES = frozenset(METRIC_LOSSES) - _WITH_CLASSES
MINERS = ("semihard", "hard", "multi_similarity")


def _pml(submodule, purpose):
    return import_optional(f"pytorch_metric_learning.{submodule}", purpose)


def make_metric_loss(loss, n_classes, embedding_dim, params=None):
    """A fresh loss object from a name (with ``params``), or a deep copy of ``loss``.

    Returns a pytorch-metric-learning loss (a torch module, possibly with
    learned proxies) or one of our :class:`PairLoss` objects.
    """
    import copy

    params = dict(params or {})
    if not isinstance(loss, str):
        if params:
            raise ValueError("loss_params only apply to a loss given by name; configure the loss object itself.")
        return copy.deepcopy(loss)
    if loss in _PAIR_LOSSES:
        obj = _PAIR_LOSSES[loss](**params)
        obj._validate_params()
        return obj
    if loss not in _PML_LOSSES:
        raise ValueError(f"Unknown loss {loss!r}; use one of {list(METRIC_LOSSES)} or a loss object.")
    name, defaults = _PML_LOSSES[loss]
    cls = getattr(_pml("losses", f"loss={loss!r}"), name)
    kwargs = {**defaults, **params}
    if loss in _WITH_CLASSES:
        kwargs.update(num_classes=int(n_classes), embedding_size=int(embedding_dim))
    return cls(**kwargs)


def make_miner(miner, params=None):
    """None, a fresh miner from a name (with ``params``), or a deep copy of ``miner``."""
    import copy

    params = dict(params or {})
    if miner is None:
        return None
    if not isinstance(miner, str):
        return copy.deepcopy(miner)
    miners = _pml("miners", f"miner={miner!r}")
    if miner in ("semihard", "hard"):
        return miners.TripletMarginMiner(**{"margin": 0.2, "type_of_triplets": miner, **params})
    if miner == "multi_similarity":
        return miners.MultiSimilarityMiner(**params)
    raise ValueError(f"Unknown miner {miner!r}; use one of {list(MINERS)}, None or a miner object.")


def is_pair_loss(loss):
    return isinstance(loss, PairLoss)
