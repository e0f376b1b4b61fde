"""Class-disjoint model selection: ClassDisjointKFold and the held-out-class scorers."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmetric import NCA, Covariance
from skmetric.evaluation import map_at_r, map_at_r_scorer, one_shot_accuracy, one_shot_scorer
from skmetric.model_selection import ClassDisjointKFold


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[::3], y[::3]


def test_folds_hold_out_whole_classes(digits):
    X, y = digits
    cv = ClassDisjointKFold(3, random_state=0)
    seen = []
    for train, test in cv.split(X, y):
        assert not set(y[train]) & set(y[test])
        assert np.union1d(train, test).size == y.size
        seen.extend(np.unique(y[test]))
    assert sorted(seen) == list(range(10))  # each class held out exactly once
    assert cv.get_n_splits() == 3
    # Fold sizes in classes differ by at most one (10 classes -> 4, 3, 3).
    sizes = sorted(np.unique(y[test]).size for _, test in cv.split(X, y))
    assert sizes == [3, 3, 4]


def test_folds_are_seeded(digits):
    X, y = digits
    a = [t.tolist() for _, t in ClassDisjointKFold(3, random_state=1).split(X, y)]
    b = [t.tolist() for _, t in ClassDisjointKFold(3, random_state=1).split(X, y)]
    c = [t.tolist() for _, t in ClassDisjointKFold(3, random_state=2).split(X, y)]
    assert a == b and a != c
    unshuffled = [np.unique(y[t]).tolist() for _, t in ClassDisjointKFold(5, shuffle=False).split(X, y)]
    assert unshuffled == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def test_split_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"needs at least 4 classes to hold out; y has 3"):
        list(ClassDisjointKFold(4).split(X[y < 3], y[y < 3]))
    with pytest.raises(ValueError, match="needs the class labels y"):
        list(ClassDisjointKFold(3).split(X))
    with pytest.raises(ValueError, match="n_splits must be an integer of at least 2"):
        ClassDisjointKFold(1)


def test_scorers_match_the_metrics_on_held_out_classes(digits):
    X, y = digits
    train, test = next(ClassDisjointKFold(3, random_state=0).split(X, y))
    est = make_pipeline(StandardScaler(), Covariance()).fit(X[train], y[train])
    scorer = one_shot_scorer(n_way=3, n_episodes=200, random_state=5)
    expected = one_shot_accuracy(est, X[test], y[test], n_way=3, n_episodes=200, random_state=5)
    assert scorer(est, X[test], y[test]) == pytest.approx(expected)
    assert map_at_r_scorer()(est, X[test], y[test]) == pytest.approx(
        map_at_r(est.transform(X[test]), y[test]))
    # A pipeline ending in a classifier is scored on the embedding before it.
    knn = make_pipeline(StandardScaler(), Covariance(), KNeighborsClassifier()).fit(X[train], y[train])
    assert scorer(knn, X[test], y[test]) == pytest.approx(expected)
    assert pickle.loads(pickle.dumps(scorer))(est, X[test], y[test]) == pytest.approx(expected)


def test_grid_search_selects_on_held_out_classes(digits):
    X, y = digits
    search = GridSearchCV(
        make_pipeline(StandardScaler(), NCA(max_iter=5, random_state=0)),
        {"nca__n_components": [2, 16]},
        cv=ClassDisjointKFold(3, random_state=0),
        scoring={"one_shot": one_shot_scorer(n_way=3, n_episodes=100), "map": map_at_r_scorer()},
        refit="one_shot",
    ).fit(X, y)
    scores = search.cv_results_["mean_test_one_shot"]
    assert np.all((scores > 1 / 3) & (scores <= 1))  # better than chance on unseen classes
    # Two dimensions lose most of what 16 keep, on classes never trained on.
    assert search.best_params_["nca__n_components"] == 16
    assert np.all(np.isfinite(search.cv_results_["mean_test_map"]))
    folds = cross_val_score(make_pipeline(StandardScaler(), Covariance()), X, y,
                            cv=ClassDisjointKFold(3, random_state=0), scoring=map_at_r_scorer())
    assert folds.shape == (3,) and np.all((folds > 0) & (folds <= 1))


def test_scorer_errors(digits):
    X, y = digits
    est = Covariance().fit(X)
    with pytest.raises(ValueError, match=r"5-way one-shot scoring needs at least 5 held-out classes; the test fold has 3"):
        one_shot_scorer(n_way=5)(est, X[y < 3], y[y < 3])
    y1 = y.copy()
    y1[0] = 42
    with pytest.raises(ValueError, match=r"class\(es\) \[42\] have a single sample"):
        one_shot_scorer(n_way=2)(est, X, y1)
    with pytest.raises(ValueError, match="single sample"):
        map_at_r_scorer()(est, X, y1)
    with pytest.raises(ValueError, match="n_way must be at least 2"):
        one_shot_scorer(n_way=1)
    with pytest.raises(ValueError, match="no transform or pair_score"):
        one_shot_scorer(n_way=2)(KNeighborsClassifier().fit(X, y), X, y)
