"""skmetric: scikit-learn-style metric learning.

Classic Mahalanobis learners (LMNN, MMC, NCA, RCA, MCML, ITML, SDML, MLKR, LFDA, LSML,
SCML) and deep
models (a Siamese network, frozen-CNN feature extraction, fine-tuning) share one
fit/transform API, so they drop into scikit-learn Pipelines and GridSearchCV.

Public names are loaded lazily: ``import skmetric`` imports neither torch nor
any learner until it is used.
"""

import importlib

from ._psd import components_from_metric, psd_project
from .base import (
    BaseMahalanobis,
    MahalanobisDistance,
    PairsClassifierMixin,
    QuadrupletsClassifierMixin,
    TripletsClassifierMixin,
)
from .constraints import pairs_from_indices, sample_pairs, sample_quadruplets, sample_triplets

__version__ = "0.1.0"

# Public estimator name -> module that defines it. Deep components (torch) are
# only imported when first accessed.
_LAZY = {
    # classic learners
    "Covariance": "skmetric.covariance",
    "LMNN": "skmetric.lmnn",
    "LMNNClassifier": "skmetric.lmnn",
    "MultiMetricLMNN": "skmetric.multi_metric_lmnn",
    "MMC": "skmetric.mmc",
    "MMCPairs": "skmetric.mmc",
    "NCA": "skmetric.nca",
    "RCA": "skmetric.rca",
    "LFDA": "skmetric.lfda",
    "MCML": "skmetric.mcml",
    "ITML": "skmetric.itml",
    "ITMLPairs": "skmetric.itml",
    "SDML": "skmetric.sdml",
    "SDMLPairs": "skmetric.sdml",
    "MLKR": "skmetric.mlkr",
    "LSML": "skmetric.lsml",
    "LSMLQuadruplets": "skmetric.lsml",
    "SCML": "skmetric.scml",
    "SCMLTriplets": "skmetric.scml",
    # deep components (need the 'deep' extra)
    "CNNFeatureExtractor": "skmetric.deep.feature_extraction",
    "FineTunedCNN": "skmetric.deep.fine_tuning",
    "SiameseNet": "skmetric.deep.siamese",
    "DeepMetricLearner": "skmetric.deep.metric_learner",
}
_SUBMODULES = ("datasets", "evaluation", "constraints", "base", "model_selection")

__all__ = [
    "BaseMahalanobis",
    "MahalanobisDistance",
    "PairsClassifierMixin",
    "TripletsClassifierMixin",
    "QuadrupletsClassifierMixin",
    "components_from_metric",
    "psd_project",
    "pairs_from_indices",
    "sample_pairs",
    "sample_triplets",
    "sample_quadruplets",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"skmetric.{name}")
    raise AttributeError(f"module 'skmetric' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
