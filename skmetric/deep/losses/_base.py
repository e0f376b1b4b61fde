"""The pair-loss interface shared by every Siamese loss.

A loss is a small configuration object (a scikit-learn ``BaseEstimator``, so
``SiameseNet(loss=ContrastiveLoss(margin=2.0))`` clones and tunes with
``set_params(loss__margin=...)``). It owns three things, like the distance
objects of pytorch-metric-learning own their "closer is smaller or larger"
rule:

* ``make_head(embedding_dim)``: the loss's own learned parameters as a torch
  module (or None);
* ``pair_score(a, b, head)``: a similarity of two embedding batches, higher
  means more similar;
* ``__call__(a, b, target, head)``: the scalar training loss, ``target`` being
  1.0 for same-class pairs and 0.0 otherwise.

``pair_logit`` returns a log-odds of "same class" when the loss defines a
probability (the Koch head); other losses return None and SiameseNet
calibrates their score with Platt scaling instead.

torch is imported lazily, only when a head is built or a loss is evaluated.
"""

from sklearn.base import BaseEstimator

from ..._optional import import_torch

__all__ = ["PairLoss"]


class PairLoss(BaseEstimator):
    """Base class of the Siamese pair losses."""

    #: Output non-linearity the default encoders put on the embedding.
    embedding_activation = None
    #: True when ``pair_score`` sees only the directions of the embeddings (a
    #: cosine): SiameseNet then L2-normalises the embedding, so that the
    #: Euclidean distances of ``transform`` (what a kNN classifier uses) rank
    #: pairs exactly as ``pair_score`` does.
    normalize_embeddings = False

    _parameter_constraints: dict = {}

    def make_head(self, embedding_dim):
        """Learned parameters of the loss (a torch module), or None."""
        return None

    def pair_score(self, a, b, head=None):
        """Similarity of the rows of ``a`` and ``b`` (torch tensors); higher is more similar."""
        raise NotImplementedError

    def pair_logit(self, a, b, head=None):
        """Log-odds that each pair is a same-class pair, or None if undefined."""
        return None

    def __call__(self, a, b, target, head=None):
        """Mean loss over a batch of pairs; ``target`` is 1.0 (same) / 0.0 (different)."""
        raise NotImplementedError

    @staticmethod
    def _torch():
        return import_torch("Siamese losses")
