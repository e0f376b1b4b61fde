"""Siamese pair losses, one per file, and the name -> class registry.

>>> from skmetric.deep.losses import get_loss
>>> get_loss("contrastive")
ContrastiveLoss()
"""

from ._base import PairLoss
from .binomial_deviance import BinomialDevianceLoss
from .contrastive import ContrastiveLoss
from .koch import KochLoss

__all__ = ["PairLoss", "KochLoss", "ContrastiveLoss", "BinomialDevianceLoss", "LOSSES", "get_loss"]

LOSSES = {
    "koch": KochLoss,
    "contrastive": ContrastiveLoss,
    "binomial_deviance": BinomialDevianceLoss,
}


def get_loss(loss):
    """A fresh loss object from a registered name, or ``loss`` itself if it is a PairLoss."""
    if isinstance(loss, PairLoss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(
        f"Unknown loss {loss!r}; use one of {sorted(LOSSES)} or a PairLoss instance."
    )
