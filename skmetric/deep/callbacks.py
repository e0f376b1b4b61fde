"""Training callbacks of the deep estimators (``callbacks=[...]``).

>>> from skmetric.deep.callbacks import LRScheduler, Checkpoint
>>> cbs = [LRScheduler("StepLR", step_size=5, gamma=0.5), Checkpoint("best.pt")]

They are defined with the training engine, :mod:`skmetric.deep._engine`.
"""

from ._engine import Callback, Checkpoint, EarlyStopping, LRScheduler, ProgressBar

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "LRScheduler", "ProgressBar"]
