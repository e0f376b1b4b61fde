"""Pair-only checks for the pair-input estimators (X of shape (n_pairs, 2, n_features)).

The API checks shared by every tuple-input estimator (clone and parameters,
fit returns self, pickling, refit, not-fitted errors, inputs left untouched,
predictions consistent with the decision function, bad input) run over pairs,
triplets and quadruplets in tests/test_tuples.py. Here: what only pairs have,
the {0, 1} label encoding and the pair label message.
"""

import numpy as np
import pytest
from sklearn.base import clone

from ._registry import pair_estimators, seeded
from .test_tuples import _tuples

ESTIMATORS = pair_estimators()
IDS = [type(e).__name__ for e in ESTIMATORS]


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_zero_one_labels_same_as_signed(est):
    pairs, y = _tuples(2, n=60)
    a = seeded(est).fit(pairs, y)
    b = seeded(est).fit(pairs, (y == 1).astype(int))
    np.testing.assert_allclose(a.components_, b.components_)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_pair_label_message(est):
    pairs, y = _tuples(2, n=60)
    with pytest.raises(ValueError, match=r"Pair labels must be \+1 \(similar\) and -1"):
        clone(est).fit(pairs, np.where(y == 1, 2, -1))
