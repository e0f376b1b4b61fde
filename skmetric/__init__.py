"""skmetric: scikit-learn-style metric learning.

Classic Mahalanobis learners (LMNN, MMC, NCA, RCA, MCML, ITML, LFDA) and deep
models (a Siamese network, frozen-CNN feature extraction, fine-tuning) share one
fit/transform API, so they drop into scikit-learn Pipelines and GridSearchCV.

Public names are loaded lazily: ``import skmetric`` imports neither torch nor
any learner until it is used.
"""

import importlib

from ._psd import components_from_metric, psd_project
from .base import BaseMahalanobis, MahalanobisDistance, PairsClassifierMixin
from .constraints import pairs_from_indices, sample_pairs

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
    # deep components (need the 'deep' extra)
    "CNNFeatureExtractor": "skmetric.deep.feature_extraction",
    "FineTunedCNN": "skmetric.deep.fine_tuning",
    "SiameseNet": "skmetric.deep.siamese",
}
_SUBMODULES = ("datasets", "evaluation", "constraints", "base", "glyphs")

__all__ = [
    "BaseMahalanobis",
    "MahalanobisDistance",
    "PairsClassifierMixin",
    "components_from_metric",
    "psd_project",
    "pairs_from_indices",
    "sample_pairs",
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
