"""Koch et al. (2015): learned weighted L1 distance, sigmoid, cross-entropy."""

from ._base import PairLoss

__all__ = ["KochLoss"]


class KochLoss(PairLoss):
    """The head of the Siamese network of Koch, Zemel & Salakhutdinov (2015).

    For embeddings ``h1, h2`` (sigmoid features, as in the paper) the
    probability that the pair is a same-class pair is
    ``p = sigmoid(sum_j alpha_j |h1_j - h2_j| + bias)`` with learned
    ``alpha`` and ``bias``; the loss is the binary cross-entropy of ``p``
    against the pair labels (1 = same class). The pair score is the logit
    (higher = more similar).

    References
    ----------
    G. Koch, R. Zemel, R. Salakhutdinov. Siamese Neural Networks for One-shot
    Image Recognition. ICML Deep Learning Workshop, 2015.
    """

    embedding_activation = "sigmoid"

    def make_head(self, embedding_dim):
        torch = self._torch()
        head = torch.nn.Linear(int(embedding_dim), 1)
        # Start from "closer in L1 is more similar": negative weights (random
        # magnitudes, the default scale) so that an untrained head already
        # ranks pairs by a weighted L1 distance instead of a random mix of
        # signs, which on small data the optimiser is slow to undo.
        with torch.no_grad():
            head.weight.abs_().neg_()
        return head

    def pair_logit(self, a, b, head=None):
        if head is None:
            raise ValueError("KochLoss needs its learned head (make_head).")
        return head((a - b).abs()).squeeze(-1)

    def pair_score(self, a, b, head=None):
        return self.pair_logit(a, b, head)

    def __call__(self, a, b, target, head=None):
        F = self._torch().nn.functional
        return F.binary_cross_entropy_with_logits(self.pair_logit(a, b, head), target)
