"""Quality yardsticks shared by the learners' tests: 3-NN error against
Euclidean, and tuple accuracy on held-out data."""

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmetric._validation import COMPARED_PAIRS


def knn_cv_error(loader, *steps, seed=0):
    """Mean 3-NN error of ``StandardScaler -> steps -> 3-NN`` on 3 stratified folds."""
    X, y = loader(return_X_y=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    pipe = make_pipeline(StandardScaler(), *steps, KNeighborsClassifier(3))
    return 1 - cross_val_score(pipe, X, y, cv=cv).mean()


def held_out_split(loader, seed=0):
    """Standardised data split 2/3 - 1/3 (stratified): X_train, y_train, X_test, y_test."""
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y))
    return X[train], y[train], X[test], y[test]


def euclidean_tuple_accuracy(tuples):
    """Fraction of triplets / quadruplets whose comparison holds in Euclidean distance."""
    (i, j), (k, m) = COMPARED_PAIRS[tuples.shape[1]]
    first = np.linalg.norm(tuples[:, i] - tuples[:, j], axis=1)
    second = np.linalg.norm(tuples[:, k] - tuples[:, m], axis=1)
    return float(np.mean(first < second))
