"""The one-shot benchmark: glyph classes never collide with digit labels, every
method of a fold is scored on the same episodes, rows carry real numbers, and
differences and tables are taken against the baseline of the same fold."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from benchmarks import bench_oneshot as bo  # noqa: E402
from benchmarks import registry  # noqa: E402


@pytest.fixture
def tiny_glyphs(monkeypatch):
    monkeypatch.setattr(bo, "GLYPHS_QUICK", dict(n_per_class=2, max_classes=4, random_state=0))
    bo.font_glyphs.cache_clear()
    yield
    bo.font_glyphs.cache_clear()


def test_glyph_labels_are_offset_past_the_digits(tiny_glyphs):
    X = np.zeros((6, 8, 8), np.float32)
    y = np.array([3, 3, 4, 4, 9, 9])
    Xt, yt = bo.with_glyphs(X, y, quick=True)
    assert Xt.shape == (14, 8, 8) and np.array_equal(yt[:6], y)
    assert yt[6:].min() == 10 and np.unique(yt[6:]).size == 4
    # The caller's arrays are untouched.
    assert np.array_equal(y, [3, 3, 4, 4, 9, 9]) and not X.any()


class PCANet:
    """A stand-in for SiameseNet (fits in milliseconds): a PCA embedding that scores
    pairs by minus their distance, so the protocol's pair_score path runs."""

    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, X, y):
        from sklearn.decomposition import PCA

        self.pca_ = PCA(n_components=6, random_state=self.seed).fit(X.reshape(len(X), -1))
        self.n_iter_ = 1
        return self

    def transform(self, X):
        return self.pca_.transform(X.reshape(len(X), -1))

    def pair_score(self, pairs):
        E = self.transform(pairs.reshape(-1, *pairs.shape[2:]))
        return -np.linalg.norm(E[::2] - E[1::2], axis=1)


FOLDS = bo.FOLDS[1:]  # two class folds keep the test short


@pytest.fixture(scope="module")
def protocol_rows():
    from skmetric.datasets import load_digits_images

    mp = pytest.MonkeyPatch()
    mp.setattr(bo, "siamese", lambda loss, quick, seed=0, **params: PCANet(seed))
    mp.setattr(bo, "GLYPHS_QUICK", dict(n_per_class=2, max_classes=4, random_state=0))
    bo.font_glyphs.cache_clear()
    X, y = load_digits_images()
    names = [bo.RAW, bo.RAW_UP, bo.GLYPH_METHOD, bo.DIGITS_ONLY_METHOD,
             bo.scratch_method("binomial_deviance")]
    try:
        rows = bo.held_out_classes(X, y, registry.select(names), FOLDS, [2, 3], 60,
                                   quick=True, seeds=(0, 1))
    finally:
        mp.undo()
        bo.font_glyphs.cache_clear()
    return rows, [*names, bo.ENSEMBLE_METHOD]


def test_every_method_of_a_fold_is_scored_on_the_same_episodes(protocol_rows):
    rows, methods = protocol_rows
    digests = {}
    for r in rows:
        digests.setdefault((r["fold"], r["n_way"]), set()).add(r["episodes"])
    assert len(digests) == len(FOLDS) * 2
    assert all(len(d) == 1 for d in digests.values())  # one draw per fold and N, for all
    assert len({d.pop() for d in digests.values()}) == len(digests)  # and they differ


def test_per_fold_rows_exist_with_numbers_in_range(protocol_rows):
    rows, methods = protocol_rows
    for held in FOLDS:
        fold = "held out " + ",".join(map(str, held))
        for m in methods:
            for n_way in (2, 3):
                mine = [r for r in rows if (r["fold"], r["method"], r["n_way"]) == (fold, m, n_way)]
                assert len(mine) == (2 if m == bo.GLYPH_METHOD else 1), (fold, m, n_way)
                for r in mine:
                    assert 1 / n_way - 0.2 < r["accuracy"] <= 1.0
                    assert r["error"] == pytest.approx(1 - r["accuracy"])
                    assert 0.0 < r["mAP@R"] <= r["precision@1"] <= 1.0
                    assert r["dataset"] == "digits" and r["status"] == "ok"
                    if m not in (bo.RAW, bo.RAW_UP):
                        assert r["fit_time_s"] > 0 and r["kind"] == "skmetric"
    seeds = {r["seed"] for r in rows if r["method"] == bo.GLYPH_METHOD}
    assert seeds == {0, 1}


def test_differences_pair_each_fit_with_its_folds_baseline():
    def row(fold, method, acc, n_way=2):
        return dict(protocol="held-out classes", fold=fold, method=method, n_way=n_way,
                    accuracy=acc)

    rows = [row("a", bo.RAW, 0.8), row("b", bo.RAW, 0.9), row("a", "m", 0.85),
            row("a", "m", 0.75), row("b", "m", 0.95), row("b", "m", 0.5, n_way=3)]
    np.testing.assert_allclose(bo.differences(rows, "m", 2), [0.05, -0.05, 0.05])


def test_fold_table_averages_over_seeds():
    rows = [dict(protocol="held-out classes", fold="s", method="m", n_way=2, accuracy=a, seed=s)
            for s, a in enumerate((0.8, 0.9))]
    rows.append(dict(rows[0], fold="t", accuracy=0.5))
    lines = bo.table(rows, "held-out classes", [2], by_fold=True).splitlines()
    assert lines[0] == "| method | N | s | t |"
    assert lines[2] == "| m | 2-way | 85.0% | 50.0% |"  # the mean of the two seeds on fold s


def test_committee_distance_is_the_mean_cosine():
    rng = np.random.RandomState(0)

    class Member:
        def __init__(self):
            self.W = rng.randn(5, 3)

        def transform(self, X):
            return X @ self.W

    members = [Member() for _ in range(3)]
    X = rng.randn(4, 5)
    E = bo.Committee(members).transform(X)
    cos = []
    for m in members:
        Z = m.transform(X)
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        cos.append(Z @ Z.T)
    d2 = ((E[:, None] - E[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d2, 2 - 2 * np.mean(cos, axis=0), atol=1e-12)


def test_source_model_never_sees_a_digit_and_fits_once_per_seed(tiny_glyphs, monkeypatch):
    """The glyph-only models train on the glyphs alone, once per seed for every fold."""
    seen = []

    class Recorder(PCANet):
        best_epoch_ = 0

        def fit(self, X, y):
            seen.append((X.copy(), y.copy(), self.seed))
            return super().fit(X, y)

    monkeypatch.setattr(bo, "_SOURCE_FITS", {})
    G, g = bo.font_glyphs(True)
    digits = np.ones((5, 8, 8), np.float32)
    models = [bo.GlyphSource(lambda s=s: Recorder(s), ("m", s, True), quick=True)
              for s in (0, 0, 1)]
    for m in models:
        m.fit(digits, np.arange(5))
    assert len(seen) == 2 and [s for *_, s in seen] == [0, 1]  # seed 0 fitted once
    for X, y, _ in seen:
        assert np.array_equal(X, G) and np.array_equal(y, g)  # glyphs only, no digit
    assert models[0].estimator_ is models[1].estimator_ is not models[2].estimator_
    assert models[0].source_fit_["fit_time_s"] > 0
    Z = models[0].transform(digits.reshape(5, -1))
    assert Z.shape == (5, 6)


def test_m8_source_row_differs_from_the_dml_row_in_batch_classes_and_width_only():
    """The m_per_class=8 row is the source DML with 8 images per class in a batch and a
    wider convnet; the first row (and Koch's protocol) keep the library defaults."""
    ctx = registry.Context(0, False)
    built = {name: bo.model(ctx, name).build().get_params()
             for name in (bo.SOURCE_DML_METHOD, bo.SOURCE_DML_M8_METHOD, bo.KOCH_DML_METHOD)}
    m8, m4, koch = (built[bo.SOURCE_DML_M8_METHOD], built[bo.SOURCE_DML_METHOD],
                    built[bo.KOCH_DML_METHOD])
    assert m8["m_per_class"] == 8 and m4["m_per_class"] == koch["m_per_class"] == 4
    assert tuple(m8["conv_channels"]) == (64, 128) and m4["conv_channels"] is None
    assert {k for k in m8 if m8[k] != m4[k]} == {"m_per_class", "conv_channels"}
    assert m4 == koch
    assert bo.SOURCE_DML_M8_METHOD in bo.SEEDED_METHODS and bo.SOURCE_DML_M8_METHOD in bo.METHODS
    assert [m.name for m in registry.select([bo.SOURCE_DML_M8_METHOD])] == [bo.SOURCE_DML_M8_METHOD]


def test_m8_source_row_fits_on_glyphs_and_embeds_digits(monkeypatch):
    """Quick settings: a real fit of the m_per_class=8 row on a few glyph classes, then
    a finite unit-norm embedding of digit images it never saw."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(bo, "GLYPHS_QUICK", dict(n_per_class=8, max_classes=24, random_state=0))
    monkeypatch.setattr(bo, "_SOURCE_FITS", {})
    bo.font_glyphs.cache_clear()
    try:
        est = bo.model(registry.Context(0, True), bo.SOURCE_DML_M8_METHOD)
        digits = np.random.RandomState(0).rand(6, 8, 8).astype(np.float32)
        est.fit(digits, np.arange(6))
        assert est.estimator_.m_per_class == 8 and est.estimator_.n_iter_ <= 2
        convs = [m for m in est.estimator_.module_.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [c.out_channels for c in convs] == [64, 128]
        Z = est.transform(digits)
        assert Z.shape == (6, 64) and np.all(np.isfinite(Z))
        np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    finally:
        bo.font_glyphs.cache_clear()
