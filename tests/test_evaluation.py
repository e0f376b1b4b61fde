"""One-shot episodes and retrieval metrics against hand-computed and brute-force values."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from skmetric import evaluation as ev


def _brute_force(X, y, Xg=None, yg=None):
    """Per-query sorted relevance by plain loops: the reference implementation."""
    loo = Xg is None
    Xg, yg = (X, y) if loo else (Xg, yg)
    rels = []
    for i in range(len(X)):
        d = np.linalg.norm(Xg - X[i], axis=1)
        idx = [j for j in np.argsort(d, kind="stable") if not (loo and j == i)]
        rels.append(np.array([yg[j] == y[i] for j in idx]))
    return rels


def _reference(X, y, k, Xg=None, yg=None):
    rels = [r for r in _brute_force(X, y, Xg, yg) if r.any()]
    p_at_k = np.mean([r[:k].mean() for r in rels])
    recall = np.mean([r[:k].any() for r in rels])
    aps = []
    for r in rels:
        R = r.sum()
        hits = r[:R]
        aps.append(sum(hits[i] * hits[: i + 1].sum() / (i + 1) for i in range(R)) / R)
    first = np.array([np.argmax(r) + 1 for r in rels])
    return p_at_k, recall, np.mean(aps), first


def test_hand_computed_case():
    # 1-D points 0, 1, 3, 7 with labels a, b, a, b. Leave-one-out neighbours:
    # 0 -> 1(b) 3(a) 7(b); 1 -> 0(a) 3(a) 7(b); 3 -> 1(b) 0(a) 7(b); 7 -> 3(a) 1(b) 0(a)
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    y = np.array(["a", "b", "a", "b"])
    assert ev.precision_at_1(X, y) == 0.0
    np.testing.assert_allclose(ev.cmc_curve(X, y, max_rank=3), [0.0, 0.75, 1.0])
    assert ev.recall_at_k(X, y, k=2) == 0.75
    assert ev.precision_at_k(X, y, k=2) == pytest.approx((1 + 0 + 1 + 1) / 8)
    assert ev.map_at_r(X, y) == 0.0


def test_perfect_embedding_gives_one():
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(4), 5)
    X = np.eye(4)[y] * 10 + rng.normal(scale=0.01, size=(20, 4))
    report = ev.retrieval_report(X, y, ks=(1, 4))
    assert report["precision@1"] == report["precision@4"] == report["mAP@R"] == 1.0
    np.testing.assert_array_equal(report["cmc"], np.ones(4))


def test_known_permutation_of_ranks():
    # Gallery: for the query, relevant items sit at ranks 2 and 4 (1-based).
    Xg = np.array([[1.0], [2.0], [3.0], [4.0]])
    yg = np.array([0, 1, 0, 1])
    Xq, yq = np.array([[0.0]]), np.array([1])
    assert ev.precision_at_1(Xq, yq, Xg, yg) == 0.0
    assert ev.map_at_r(Xq, yq, Xg, yg) == pytest.approx((0 + 1 / 2) / 2)  # R = 2
    np.testing.assert_allclose(ev.cmc_curve(Xq, yq, 4, Xg, yg), [0, 1, 1, 1])
    assert ev.precision_at_k(Xq, yq, 4, Xg, yg) == 0.5


@pytest.mark.parametrize("gallery", [False, True])
def test_matches_brute_force_and_is_chunked(monkeypatch, gallery):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 3))
    y = rng.randint(4, size=60)
    Xg = rng.normal(size=(45, 3)) if gallery else None
    yg = rng.randint(5, size=45) if gallery else None  # class 4 has no query: fine
    want = _reference(X, y, 3, Xg, yg)
    for block in (ev._BLOCK, 50):  # 50 entries: one query per chunk
        monkeypatch.setattr(ev, "_BLOCK", block)
        report = ev.retrieval_report(X, y, ks=(3,), X_gallery=Xg, y_gallery=yg)
        assert report["precision@3"] == pytest.approx(want[0])
        assert report["recall@3"] == pytest.approx(want[1])
        assert report["mAP@R"] == pytest.approx(want[2])
        np.testing.assert_allclose(report["cmc"], [np.mean(want[3] <= k) for k in (1, 2, 3)])
        assert ev.recall_at_k(X, y, 3, Xg, yg) == pytest.approx(report["cmc"][2])


def test_gallery_containing_the_queries_finds_them():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(30, 4))
    y = rng.randint(3, size=30)
    assert ev.precision_at_1(X, y, X, y) == 1.0  # each query's own copy is at distance 0
    assert ev.precision_at_1(X, y) < 1.0  # leave-one-out excludes it


def test_retrieval_bad_input():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="labels"):
        ev.precision_at_1(X, [0, 1])
    with pytest.raises(ValueError, match="both"):
        ev.precision_at_1(X, [0, 0, 1, 1, 1], X_gallery=X)
    with pytest.raises(ValueError, match="larger than"):
        ev.precision_at_k(X, [0, 0, 1, 1, 1], k=5)
    with pytest.raises(ValueError, match="No query"):
        ev.map_at_r(X, [0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="NaN|nan|infinity"):
        ev.map_at_r(np.full((5, 2), np.nan), [0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="features"):
        ev.precision_at_1(X, [0, 0, 1, 1, 1], np.zeros((3, 3)), [0, 1, 1])


# ------------------------------------------------------------------ one-shot
def _clusters(n_classes=10, n_per_class=4, seed=0):
    rng = np.random.RandomState(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = rng.normal(scale=20.0, size=(n_classes, 6))[y] + rng.normal(size=(y.size, 6))
    return X, y


def test_episodes_use_only_the_given_classes():
    _, y = _clusters()
    classes = [2, 3, 5, 7, 9]
    q, s, t = ev.one_shot_episodes(y, n_way=4, n_episodes=200, classes=classes, random_state=0)
    assert s.shape == (200, 4) and q.shape == t.shape == (200,)
    assert set(y[s].ravel()) <= set(classes) and set(y[q]) <= set(classes)
    assert np.all(y[s[np.arange(200), t]] == y[q])  # the target column holds the query's class
    assert np.all(s[np.arange(200), t] != q)  # the query is never its own support
    assert all(len(set(row)) == 4 for row in y[s])  # n_way distinct classes
    q2, s2, t2 = ev.one_shot_episodes(y, 4, 200, classes, random_state=0)
    np.testing.assert_array_equal(s, s2)


def test_one_shot_scorers():
    X, y = _clusters()
    raw = ev.one_shot_accuracy(None, X, y, n_way=5, n_episodes=100, random_state=0)
    assert raw == 1.0  # well-separated clusters

    class PairScorer:
        def __init__(self, sign):
            self.sign = sign

        def pair_score(self, pairs):
            return -self.sign * np.linalg.norm(pairs[:, 0] - pairs[:, 1], axis=1)

    assert ev.one_shot_accuracy(PairScorer(1), X, y, 5, 100, random_state=0, chunk_size=7) == 1.0
    # A scorer that prefers the farthest support never picks the right class here.
    assert ev.one_shot_accuracy(PairScorer(-1), X, y, 5, 100, random_state=0) == 0.0
    # A transformer: embedding + Euclidean distance.
    pca = PCA(n_components=3).fit(X)
    acc, (q, s, t, pred) = ev.one_shot_accuracy(
        pca, X, y, 5, 100, random_state=0, return_episodes=True
    )
    assert acc == 1.0 and np.array_equal(pred, t)


def test_one_shot_raw_baseline_on_images_is_chance_for_noise():
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(20), 3)
    X = rng.rand(60, 6, 6)  # pure noise images: no class information
    acc = ev.one_shot_accuracy(None, X, y, n_way=20, n_episodes=300, random_state=0)
    assert abs(acc - 1 / 20) < 0.05


def test_one_shot_bad_input():
    X, y = _clusters(n_classes=4)
    with pytest.raises(ValueError, match="need 5 classes"):
        ev.one_shot_accuracy(None, X, y, n_way=5)
    with pytest.raises(ValueError, match="do not occur"):
        ev.one_shot_accuracy(None, X, y, n_way=2, classes=[0, 42])
    with pytest.raises(ValueError, match="at least 2"):
        ev.one_shot_accuracy(None, X, y, n_way=1)
    with pytest.raises(ValueError, match="Unknown method"):
        ev.one_shot_accuracy(None, X, y, n_way=2, method="magic")
    y1 = y.copy()
    y1[0] = 99  # a singleton class is never eligible (no distinct query)
    q, s, _ = ev.one_shot_episodes(y1, 4, 50, random_state=0)
    assert 99 not in y1[s]


# ------------------------------------------------------------ faiss backend
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("gallery", [False, True])
def test_faiss_and_numpy_give_the_same_figures(metric, gallery):
    pytest.importorskip("faiss")
    rng = np.random.RandomState(3)
    X = rng.normal(size=(200, 8))
    y = rng.randint(6, size=200)
    Xg = rng.normal(size=(150, 8)) if gallery else None
    yg = rng.randint(6, size=150) if gallery else None
    kw = dict(ks=(1, 5, 10), X_gallery=Xg, y_gallery=yg, metric=metric)
    a = ev.retrieval_report(X, y, backend="numpy", **kw)
    b = ev.retrieval_report(X, y, backend="faiss", **kw)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(
        ev.cmc_curve(X, y, 7, Xg, yg, metric=metric, backend="faiss"),
        ev.cmc_curve(X, y, 7, Xg, yg, metric=metric, backend="numpy"),
    )


def test_r_precision_against_brute_force():
    rng = np.random.RandomState(4)
    X = rng.normal(size=(40, 3))
    y = rng.randint(3, size=40)
    D = np.linalg.norm(X[:, None] - X[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    want = []
    for i in range(40):
        R = (y == y[i]).sum() - 1
        want.append(np.mean(y[np.argsort(D[i], kind="stable")[:R]] == y[i]))
    assert ev.r_precision(X, y, backend="numpy") == pytest.approx(np.mean(want))
    assert ev.retrieval_report(X, y, ks=(1,))["R-precision"] == pytest.approx(np.mean(want))


def test_backend_errors():
    X, y = np.random.RandomState(0).normal(size=(10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="backend must be one of"):
        ev.map_at_r(X, y, backend="annoy")
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match="backend='faiss' supports metric"):
        ev.map_at_r(X, y, metric="manhattan", backend="faiss")
    assert ev.map_at_r(X, y, metric="manhattan") == ev.map_at_r(X, y, metric="manhattan", backend="numpy")
