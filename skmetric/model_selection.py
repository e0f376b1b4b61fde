"""Class-disjoint model selection: validate a metric on classes it never saw.

A learned metric earns its keep on new classes (re-identification of unseen
people, one-shot recognition, a catalogue that keeps growing). Selecting its
hyper-parameters on held-out *samples* of the training classes rewards a
metric that memorises those classes; :class:`ClassDisjointKFold` holds out
whole classes instead, and the scorers of :mod:`skmetric.evaluation`
(:func:`~skmetric.evaluation.one_shot_scorer`,
:func:`~skmetric.evaluation.map_at_r_scorer`) score the embedding on them.

>>> from sklearn.datasets import load_digits
>>> from sklearn.model_selection import GridSearchCV
>>> from skmetric import NCA
>>> from skmetric.evaluation import one_shot_scorer
>>> from skmetric.model_selection import ClassDisjointKFold
>>> X, y = load_digits(return_X_y=True)
>>> search = GridSearchCV(NCA(max_iter=5), {"n_components": [8, 16]},
...                       cv=ClassDisjointKFold(3, random_state=0),
...                       scoring=one_shot_scorer(n_way=3, random_state=0))
>>> search.fit(X, y).best_params_["n_components"] in (8, 16)
True
"""

from numbers import Integral

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state
from sklearn.utils.validation import column_or_1d

__all__ = ["ClassDisjointKFold"]


class ClassDisjointKFold(BaseCrossValidator):
    """K-fold cross-validation over classes: each fold holds out whole classes.

    The classes of ``y`` are split into ``n_splits`` groups of (nearly) equal
    size; each group is the test set once and the remaining classes are
    trained on, so train and test never share a class. Usable as ``cv=`` in
    :class:`~sklearn.model_selection.GridSearchCV` and
    :func:`~sklearn.model_selection.cross_val_score` (``y`` must be passed to
    ``fit``, as for any supervised metric learner).

    Parameters
    ----------
    n_splits : int, default=3
        Number of folds; at least 2 and at most the number of classes.
    shuffle : bool, default=True
        Shuffle the classes before they are grouped (otherwise the sorted
        classes are cut into consecutive runs).
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.model_selection import ClassDisjointKFold
    >>> y = np.repeat(np.arange(6), 2)
    >>> for train, test in ClassDisjointKFold(3, random_state=0).split(y, y):
    ...     assert not set(y[train]) & set(y[test])
    """

    def __init__(self, n_splits=3, *, shuffle=True, random_state=None):
        if not isinstance(n_splits, Integral) or n_splits < 2:
            raise ValueError(f"n_splits must be an integer of at least 2, got {n_splits!r}.")
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.random_state = random_state

    def _class_folds(self, y):
        if y is None:
            raise ValueError(
                "ClassDisjointKFold needs the class labels y to split on "
                "(pass y to split(), or to fit() of the search using it)."
            )
        y = column_or_1d(y)
        classes = np.unique(y)
        if classes.size < self.n_splits:
            raise ValueError(
                f"ClassDisjointKFold(n_splits={self.n_splits}) needs at least "
                f"{self.n_splits} classes to hold out; y has {classes.size}."
            )
        if self.shuffle:
            classes = check_random_state(self.random_state).permutation(classes)
        return y, np.array_split(classes, self.n_splits)

    def _iter_test_masks(self, X=None, y=None, groups=None):
        y, folds = self._class_folds(y)
        for held_out in folds:
            yield np.isin(y, held_out)

    def split(self, X, y=None, groups=None):
        """Generate (train, test) index arrays whose classes are disjoint.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
            Class labels; required.
        groups : ignored

        Yields
        ------
        train, test : ndarray of int
        """
        if y is not None and len(X) != len(y):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels.")
        return super().split(X, y, groups)

    def get_n_splits(self, X=None, y=None, groups=None):
        """The number of folds, ``n_splits``."""
        return self.n_splits
