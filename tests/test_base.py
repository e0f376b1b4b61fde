"""The shared foundation: Mahalanobis base, PSD helpers, init strategies,
validation and pair sampling."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmetric import components_from_metric, psd_project, sample_pairs
from skmetric._init import initialize_components, initialize_metric
from skmetric._validation import check_labeled_data, check_pair_labels, check_pairs
from skmetric.base import MahalanobisDistance, best_accuracy_threshold
from skmetric.constraints import pairs_from_indices
from skmetric.covariance import Covariance


@pytest.fixture
def iris():
    return load_iris(return_X_y=True)


def test_import_does_not_import_torch():
    code = (
        "import sys, skmetric, skmetric.covariance, skmetric.base, skmetric.constraints; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- base ---
def test_everything_derives_from_components(iris):
    X, _ = iris
    est = Covariance().fit(X)
    L = est.components_
    np.testing.assert_allclose(est.transform(X), X @ L.T)
    M = est.get_mahalanobis_matrix()
    np.testing.assert_allclose(M, L.T @ L)
    pairs = pairs_from_indices(X, [[0, 1], [5, 100], [7, 7]])
    diff = pairs[:, 0] - pairs[:, 1]
    expected = np.sqrt(np.einsum("ij,jk,ik->i", diff, M, diff))
    np.testing.assert_allclose(est.pair_distance(pairs), expected, atol=1e-10)
    np.testing.assert_allclose(est.pair_score(pairs), -expected, atol=1e-10)
    assert est.pair_distance(pairs)[2] == 0.0


def test_get_metric_in_cdist_knn_and_pickle(iris):
    X, y = iris
    est = Covariance().fit(X)
    metric = est.get_metric()
    Xt = est.transform(X)
    np.testing.assert_allclose(cdist(X[:5], X[:7], metric=metric), cdist(Xt[:5], Xt[:7]), atol=1e-9)
    knn_metric = KNeighborsClassifier(n_neighbors=3, metric=metric, algorithm="brute").fit(X, y)
    knn_euclid = KNeighborsClassifier(n_neighbors=3).fit(Xt, y)
    np.testing.assert_array_equal(knn_metric.predict(X[::7]), knn_euclid.predict(Xt[::7]))
    restored = pickle.loads(pickle.dumps(metric))
    assert restored(X[0], X[1]) == pytest.approx(metric(X[0], X[1]))
    assert "MahalanobisDistance" in repr(restored)


def test_metric_callable_matches_formula():
    rng = np.random.RandomState(0)
    L = rng.normal(size=(2, 3))
    u, v = rng.normal(size=3), rng.normal(size=3)
    assert MahalanobisDistance(L)(u, v) == pytest.approx(np.sqrt((u - v) @ L.T @ L @ (u - v)))
    assert MahalanobisDistance(L, squared=True)(u, v) == pytest.approx((u - v) @ L.T @ L @ (u - v))


def test_metric_callable_checks_shapes(iris):
    X, _ = iris
    metric = Covariance().fit(X).get_metric(squared=True)
    assert metric(X[0], X[1]) == pytest.approx(metric.components @ (X[0] - X[1]) @ metric.components @ (X[0] - X[1]))
    with pytest.raises(ValueError, match=r"u must be one point of shape \(4,\), got an array of shape \(3,\)"):
        metric(X[0, :3], X[1, :3])
    with pytest.raises(ValueError, match=r"v must be one point of shape \(4,\), got an array of shape \(2, 4\)"):
        metric(X[0], X[:2])
    assert "squared=True" in repr(metric)


def test_feature_names_and_pandas_output(iris):
    pd = pytest.importorskip("pandas")
    X, _ = iris
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = Covariance().set_output(transform="pandas").fit(df)
    out = est.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["covariance0", "covariance1", "covariance2", "covariance3"]
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])


def test_pair_distance_checks_shape_and_features(iris):
    X, _ = iris
    est = Covariance().fit(X)
    with pytest.raises(ValueError, match=r"\(n_pairs, 2, n_features\)"):
        est.pair_distance(X[:4])
    with pytest.raises(ValueError, match="fitted with 4 features"):
        est.pair_distance(np.zeros((3, 2, 5)))


def test_in_pipeline(iris):
    X, y = iris
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y,
                                                        random_state=0)
    pipe = make_pipeline(StandardScaler(), Covariance(), KNeighborsClassifier(3))
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.9  # held out; chance is 1/3


def test_best_accuracy_threshold():
    d = np.array([0.1, 0.2, 0.3, 1.0, 1.1, 1.2])
    y = np.array([1, 1, 1, -1, -1, -1])
    t = best_accuracy_threshold(d, y)
    assert 0.3 < t < 1.0
    # All similar: threshold covers every pair.
    assert best_accuracy_threshold(d, np.ones(6, int)) >= 1.2
    # All dissimilar: threshold below every distance.
    assert best_accuracy_threshold(d, -np.ones(6, int)) < 0.1


# ----------------------------------------------------------------- psd ---
def test_psd_project_clips_and_is_nearest():
    rng = np.random.RandomState(0)
    A = rng.normal(size=(5, 5))
    A = A + A.T
    A_orig = A.copy()
    P = psd_project(A)
    np.testing.assert_array_equal(A, A_orig)  # not modified
    w = np.linalg.eigvalsh(P)
    assert w.min() >= -1e-10
    np.testing.assert_allclose(P, P.T)
    # Frobenius-nearest: no random PSD matrix is closer.
    for _ in range(20):
        B = rng.normal(size=(5, 5))
        B = B @ B.T
        assert np.linalg.norm(A - P) <= np.linalg.norm(A - B) + 1e-12
    P2, w2, V2 = psd_project(A, min_eigenvalue=0.5, return_eigen=True)
    assert np.linalg.eigvalsh(P2).min() >= 0.5 - 1e-9
    np.testing.assert_allclose((V2 * w2) @ V2.T, P2, atol=1e-10)


def test_components_from_metric_roundtrip_and_errors():
    rng = np.random.RandomState(1)
    B = rng.normal(size=(4, 3))
    M = B @ B.T  # rank 3, PSD
    L = components_from_metric(M)
    np.testing.assert_allclose(L.T @ L, M, atol=1e-10)
    with pytest.raises(ValueError, match="not positive semidefinite"):
        components_from_metric(np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="symmetric"):
        components_from_metric(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        components_from_metric(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        components_from_metric(np.array([[np.nan, 0], [0, 1.0]]))
    L2 = components_from_metric(np.diag([1.0, -1.0]), strict=False)
    np.testing.assert_allclose(L2.T @ L2, np.diag([1.0, 0.0]), atol=1e-12)


# ---------------------------------------------------------------- init ---
@pytest.mark.parametrize("init", ["pca", "lda", "identity", "random", "auto"])
def test_init_shapes(iris, init):
    X, y = iris
    L = initialize_components(init, X, y, n_components=2, random_state=0)
    assert L.shape == (2, 4)
    assert np.all(np.isfinite(L))


def test_init_auto_choices(iris):
    X, y = iris
    lda = initialize_components("lda", X, y, n_components=2)
    np.testing.assert_allclose(initialize_components("auto", X, y, n_components=2), lda)
    pca = initialize_components("pca", X, y, n_components=3, random_state=0)
    np.testing.assert_allclose(initialize_components("auto", X, y, n_components=3, random_state=0), pca)
    np.testing.assert_allclose(initialize_components("auto", X, y), np.eye(4))


def test_init_errors(iris):
    X, y = iris
    with pytest.raises(ValueError, match="must not exceed the number of features"):
        initialize_components("identity", X, y, n_components=5)
    with pytest.raises(ValueError, match="lda"):
        initialize_components("lda", X, y, n_components=3)
    with pytest.raises(ValueError, match="needs class labels"):
        initialize_components("lda", X, None, n_components=1)
    with pytest.raises(ValueError, match=r"shape \(n_components, 4\)"):
        initialize_components(np.ones((2, 3)), X, y, n_components=2)
    with pytest.raises(ValueError, match="2 rows but n_components=3"):
        initialize_components(np.ones((2, 4)), X, y, n_components=3)


def test_init_random_reproducible(iris):
    X, y = iris
    a = initialize_components("random", X, y, 3, random_state=7)
    b = initialize_components("random", X, y, 3, random_state=7)
    np.testing.assert_array_equal(a, b)


def test_initialize_metric(iris):
    X, y = iris
    np.testing.assert_allclose(initialize_metric("identity", X, y), np.eye(4))
    M0 = np.diag([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(initialize_metric(M0, X, y), M0)
    with pytest.raises(ValueError, match="not positive semidefinite"):
        initialize_metric(np.diag([1.0, -2.0, 3.0, 4.0]), X, y)
    M = initialize_metric("random", X, y, random_state=0)
    assert np.linalg.eigvalsh(M).min() > -1e-10


# ---------------------------------------------------------- validation ---
class _Dummy(BaseEstimator):
    pass


def test_check_labeled_data_errors():
    X = np.random.RandomState(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="at least 2 classes"):
        check_labeled_data(_Dummy(), X, np.zeros(10))
    y = np.array([0] * 9 + [1])
    with pytest.raises(ValueError, match=r"at least 3 samples in every class; class\(es\) \[1\]"):
        check_labeled_data(_Dummy(), X, y, min_samples_per_class=3)
    Xc, yc, classes = check_labeled_data(_Dummy(), X, np.array(["b", "a"] * 5))
    np.testing.assert_array_equal(classes, ["a", "b"])
    np.testing.assert_array_equal(yc[:2], [1, 0])


def test_check_pairs_and_labels():
    pairs = np.zeros((4, 2, 3))
    p, y = check_pairs(pairs, [1, -1, 1, -1])
    np.testing.assert_array_equal(y, [1, -1, 1, -1])
    np.testing.assert_array_equal(check_pair_labels(np.array([0, 1, 1])), [-1, 1, 1])
    with pytest.raises(ValueError, match=r"\+1 \(similar\) and -1"):
        check_pairs(pairs, [1, 2, 1, -1])
    with pytest.raises(ValueError, match="must be numeric"):
        check_pairs(pairs, ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="4 pairs"):
        check_pairs(pairs, [1, -1])
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2, n_features\)"):
        check_pairs(np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="All pairs are labelled similar"):
        check_pairs(pairs, [1, 1, 1, 1], require_both_labels=True)
    bad = pairs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_pairs(bad)


# ------------------------------------------------------------- sampling ---
def test_sample_pairs_labels_are_right():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 4, size=200)
    y[:3] = 7  # a small class
    idx, lab = sample_pairs(y, 500, 300, random_state=0)
    assert idx.shape == (800, 2) and lab.shape == (800,)
    assert (lab == 1).sum() == 500
    same = y[idx[:, 0]] == y[idx[:, 1]]
    np.testing.assert_array_equal(same, lab == 1)
    assert np.all(idx[:, 0] != idx[:, 1])
    # Reproducible and varying with the seed.
    idx2, _ = sample_pairs(y, 500, 300, random_state=0)
    np.testing.assert_array_equal(idx, idx2)
    idx3, _ = sample_pairs(y, 500, 300, random_state=1)
    assert not np.array_equal(idx, idx3)


def test_sample_pairs_covers_classes_and_string_labels():
    y = np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 2, dtype=object)
    idx, lab = sample_pairs(y, 2000, random_state=0)
    sim = idx[lab == 1]
    assert set(y[sim[:, 0]]) == {"a", "b", "c"}
    dis = idx[lab == -1]
    assert np.all(y[dis[:, 0]] != y[dis[:, 1]])
    # Each partner of a similar pair is uniform over the rest of its class.
    counts = np.bincount(sim[y[sim[:, 0]] == "a"][:, 1], minlength=12)[:5]
    assert counts.min() > 0.5 * counts.mean()


def test_sample_pairs_errors():
    with pytest.raises(ValueError, match="at least 2 classes"):
        sample_pairs(np.zeros(5), 3, 3)
    with pytest.raises(ValueError, match="every class has one"):
        sample_pairs(np.arange(5), 3, 0)


def test_covariance_refuses_data_without_variance():
    X = np.ones((5, 3))
    with pytest.raises(ValueError, match="X has no variance .* Pass reg > 0"):
        Covariance().fit(X)
    # With a ridge it is a scaled Euclidean metric.
    np.testing.assert_allclose(Covariance(reg=0.5).fit(X).get_mahalanobis_matrix(), np.eye(3) / 0.5)
