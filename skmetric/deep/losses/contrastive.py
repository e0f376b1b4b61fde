"""Contrastive loss of Hadsell, Chopra & LeCun (2006)."""

from numbers import Real

from sklearn.utils._param_validation import Interval

from ._base import PairLoss

__all__ = ["ContrastiveLoss"]


class ContrastiveLoss(PairLoss):
    """Contrastive loss with a margin (Hadsell, Chopra & LeCun, 2006).

    With ``D = ||a - b||_2`` and ``t = 1`` for same-class pairs::

        L = t * D**2 / 2 + (1 - t) * max(0, margin - D)**2 / 2

    averaged over the batch. Same-class pairs are pulled together; different
    pairs are pushed apart until they are ``margin`` away. The pair score is
    ``-D``.

    Parameters
    ----------
    margin : float, default=1.0

    References
    ----------
    R. Hadsell, S. Chopra, Y. LeCun. Dimensionality Reduction by Learning an
    Invariant Mapping. CVPR 2006.
    """

    _parameter_constraints = {"margin": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, margin=1.0):
        self.margin = margin

    @staticmethod
    def _distance(a, b):
        # The epsilon keeps the gradient of sqrt finite for identical embeddings.
        return ((a - b).pow(2).sum(-1) + 1e-12).sqrt()

    def pair_score(self, a, b, head=None):
        return -self._distance(a, b)

    def __call__(self, a, b, target, head=None):
        d = self._distance(a, b)
        hinge = (self.margin - d).clamp(min=0)
        return 0.5 * (target * d.pow(2) + (1 - target) * hinge.pow(2)).mean()
