"""The learned metric handed to scikit-learn's neighbours: ``get_metric()`` (a
callable for cdist) and ``neighbors_pipeline()`` (the fast native path)."""

import doctest
import pickle

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NearestNeighbors,
    RadiusNeighborsClassifier,
)
from sklearn.preprocessing import StandardScaler

import skmetric.base
from skmetric import LMNN
from skmetric.covariance import Covariance


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:600])
    return train_test_split(X, y[:600], test_size=0.5, stratify=y[:600], random_state=0)


@pytest.fixture(scope="module")
def learner(digits_split):
    Xtr, _, ytr, _ = digits_split
    # A few iterations: a learned, non-trivial L (not the identity) is all these tests need.
    with pytest.warns(Warning):
        return LMNN(n_neighbors=3, n_components=20, max_iter=5, random_state=0).fit(Xtr, ytr)


def test_neighbors_pipeline_predicts_as_knn_on_transform(digits_split, learner):
    Xtr, Xte, ytr, yte = digits_split
    pipe = learner.neighbors_pipeline(KNeighborsClassifier(n_neighbors=3)).fit(Xtr, ytr)
    ref = KNeighborsClassifier(n_neighbors=3).fit(learner.transform(Xtr), ytr)
    np.testing.assert_array_equal(pipe.predict(Xte), ref.predict(learner.transform(Xte)))
    assert pipe.score(Xte, yte) == pytest.approx(ref.score(learner.transform(Xte), yte))
    # The learner is frozen: the pipeline's fit left it as it was.
    assert pipe.named_steps["metric"].estimator is learner
    # Same neighbours as the callable metric on the raw features (held-out queries).
    slow = KNeighborsClassifier(n_neighbors=3, metric=learner.get_metric(), algorithm="brute")
    slow.fit(Xtr, ytr)
    np.testing.assert_array_equal(slow.predict(Xte[:20]), pipe.predict(Xte[:20]))


def test_neighbors_pipeline_other_estimators_and_cv(digits_split, learner):
    Xtr, Xte, ytr, _ = digits_split
    Z = learner.transform(Xtr)
    nn = learner.neighbors_pipeline(NearestNeighbors(n_neighbors=4)).fit(Xtr)
    dist, idx = nn[-1].kneighbors(nn[0].transform(Xte[:5]))
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=4).fit(Z).kneighbors(learner.transform(Xte[:5]))
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist[:, 0], cdist(Xte[:5], Xtr[idx[:, 0]], learner.get_metric())
                               .diagonal(), rtol=1e-6)
    reg = learner.neighbors_pipeline(KNeighborsRegressor(3, metric="euclidean")).fit(Xtr, ytr)
    np.testing.assert_allclose(reg.predict(Xte), KNeighborsRegressor(3).fit(Z, ytr)
                               .predict(learner.transform(Xte)))
    learner.neighbors_pipeline(RadiusNeighborsClassifier(radius=50.0)).fit(Xtr, ytr).predict(Xte)
    # clone / cross-validation keep the frozen learner fitted and unchanged.
    pipe = learner.neighbors_pipeline(KNeighborsClassifier(3))
    L = learner.components_.copy()
    assert clone(pipe).named_steps["metric"].estimator is learner
    assert cross_val_score(pipe, Xtr, ytr, cv=2).mean() > 0.5  # chance is 0.1
    np.testing.assert_array_equal(learner.components_, L)


def test_neighbors_pipeline_pickles(digits_split, learner):
    Xtr, Xte, ytr, _ = digits_split
    pipe = learner.neighbors_pipeline(KNeighborsClassifier(3)).fit(Xtr, ytr)
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict(Xte), pipe.predict(Xte))


@pytest.mark.parametrize("neighbors, match", [
    (KNeighborsClassifier(metric="cosine"), r"Euclidean metric .* got metric='cosine'"),
    (KNeighborsClassifier(p=1), r"got metric='minkowski' with p=1"),
    (KNeighborsClassifier(metric_params={"w": np.ones(20)}), r"metric_params="),
    (KNeighborsClassifier(metric=lambda u, v: 0.0), r"got metric=function"),
    (StandardScaler(), r"neighbours estimator with a metric parameter"),
])
def test_neighbors_pipeline_rejects_non_euclidean(learner, neighbors, match):
    with pytest.raises(ValueError, match=match):
        learner.neighbors_pipeline(neighbors)


def test_neighbors_pipeline_needs_a_fitted_learner():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Covariance().neighbors_pipeline(KNeighborsClassifier())


def test_get_metric_cdist_pickle_and_shapes(digits_split, learner):
    Xtr, Xte, _, _ = digits_split
    for squared in (False, True):
        metric = pickle.loads(pickle.dumps(learner.get_metric(squared=squared)))
        expected = cdist(learner.transform(Xte[:4]), learner.transform(Xtr[:6]),
                         "sqeuclidean" if squared else "euclidean")
        np.testing.assert_allclose(cdist(Xte[:4], Xtr[:6], metric=metric), expected, rtol=1e-8)
    with pytest.raises(ValueError, match=r"u must be one point of shape \(64,\), got .* \(20,\)"):
        metric(learner.transform(Xte[:1])[0], Xtr[0])
    with pytest.raises(ValueError, match=r"shape \(64,\)"):
        cdist(Xte[:2, :10], Xtr[:2, :10], metric=metric)


def test_docstring_examples_run():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for name in ("get_metric", "neighbors_pipeline"):
        for test in finder.find(getattr(skmetric.base.BaseMahalanobis, name), name):
            runner.run(test)
    assert runner.failures == 0 and runner.tries >= 6
