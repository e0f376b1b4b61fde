"""Binomial deviance loss on cosine similarity (Yi, Lei, Liao & Li, 2014)."""

from numbers import Real

from sklearn.utils._param_validation import Interval

from ._base import PairLoss

__all__ = ["BinomialDevianceLoss"]


class BinomialDevianceLoss(PairLoss):
    """Binomial deviance of the cosine similarity (Yi et al., 2014).

    With ``s = cos(a, b)`` and ``m = 1`` for same-class pairs, ``m = -cost``
    for different pairs, each pair costs ``log(1 + exp(-alpha * (s - beta) * m))``.
    As in the paper, positives and negatives are averaged separately and the
    two means are added (their weights ``W`` are ``1/n_pos`` and ``1/n_neg``),
    so the loss does not depend on the pair balance of a batch. The pair
    score is ``s``.

    Parameters
    ----------
    alpha : float, default=2.0
        Scale of the similarity inside the deviance.
    beta : float, default=0.5
        Similarity at which the deviance is centred.
    cost : float, default=25.0
        Extra weight ``c`` of the negative pairs inside the exponent (the
        paper's asymmetric cost, which makes pushing negatives below ``beta``
        matter more than pulling positives above it; 25 is the value used in
        the histogram-loss comparison of Ustinova & Lempitsky, 2016).

    References
    ----------
    D. Yi, Z. Lei, S. Liao, S. Z. Li. Deep Metric Learning for Person
    Re-Identification. ICPR 2014; arXiv:1407.4979.
    """

    normalize_embeddings = True  # the cosine only sees directions

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "beta": [Interval(Real, -1, 1, closed="both")],
        "cost": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, alpha=2.0, beta=0.5, cost=25.0):
        self.alpha = alpha
        self.beta = beta
        self.cost = cost

    def pair_score(self, a, b, head=None):
        F = self._torch().nn.functional
        return F.cosine_similarity(a, b, dim=-1, eps=1e-8)

    def __call__(self, a, b, target, head=None):
        torch = self._torch()
        s = self.pair_score(a, b)
        m = torch.where(target > 0.5, torch.ones_like(s), torch.full_like(s, -self.cost))
        dev = torch.nn.functional.softplus(-self.alpha * (s - self.beta) * m)
        pos = target > 0.5
        total = s.new_zeros(())
        for mask in (pos, ~pos):
            if mask.any():
                total = total + dev[mask].mean()
        return total
