"""Deep components: frozen-CNN features, fine-tuning, Siamese networks, deep metric learning.

* :class:`~skmetric.deep.feature_extraction.CNNFeatureExtractor`,
  :class:`~skmetric.deep.fine_tuning.FineTunedCNN`: transfer from a CNN backbone;
* :class:`~skmetric.deep.siamese.SiameseNet`: pairs and a pair loss;
* :class:`~skmetric.deep.metric_learner.DeepMetricLearner`: class-balanced
  batches and the losses / miners of pytorch-metric-learning.

The trained ones share one training engine (:mod:`skmetric.deep._engine`;
callbacks in :mod:`skmetric.deep.callbacks`). These modules need the 'deep'
extra (torch, torchvision, pytorch-metric-learning); they import torch
lazily so that ``import skmetric.deep`` alone stays cheap.
"""
