"""Koch's protocol on the glyph alphabets (``bench_oneshot --glyph-koch``): the split is
class- and script-disjoint, the learned models train on the background alphabets only,
episodes stay within one evaluation alphabet, raw 1-NN is scored on the same episodes,
and impossible requests fail with a ValueError that says what is wrong."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from benchmarks import bench_oneshot as bo  # noqa: E402
from benchmarks import registry  # noqa: E402
from skmetric.evaluation import one_shot_episodes  # noqa: E402

SCRIPTS = ["LATIN"] * 12 + ["GREEK"] * 6 + ["ARMENIAN"] * 7 + ["LAO"] * 5
EVAL = ("ARMENIAN", "LAO")


def tiny_alphabets(n_per_class=4, seed=0):
    """Images of 30 classes (a prototype each, plus noise) with a script per class."""
    rng = np.random.RandomState(seed)
    protos = rng.rand(len(SCRIPTS), 8, 8)
    y = np.repeat(np.arange(len(SCRIPTS)), n_per_class)
    X = np.clip(protos[y] + 0.15 * rng.randn(len(y), 8, 8), 0, 1).astype(np.float32)
    return X, y, np.array(SCRIPTS)


def test_glyph_script_reads_the_unicode_name():
    assert [bo.glyph_script(c) for c in "Aαжաაກ"] == [
        "LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "GEORGIAN", "LAO"]


def test_split_is_class_and_script_disjoint():
    X, y, scripts = tiny_alphabets()
    background, alphabets = bo.koch_split(y, scripts, EVAL, n_way=5)
    assert list(alphabets) == list(EVAL)
    eval_classes = np.concatenate(list(alphabets.values()))
    assert not np.isin(y[background], eval_classes).any()  # class-disjoint
    assert np.isin(y[~background], eval_classes).all()
    assert set(scripts[np.unique(y[background])]) == {"LATIN", "GREEK"}  # script-disjoint
    for script, classes in alphabets.items():
        assert (scripts[classes] == script).all()
        assert classes.size == SCRIPTS.count(script)
    # The caller's arrays are untouched.
    assert np.array_equal(scripts, SCRIPTS)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_way=6), r"6-way one-shot within the LAO alphabet needs at least 6 classes; it has 5"),
    (dict(eval_scripts=("ARMENIAN", "GEORGIAN")), r"\['GEORGIAN'\] have no glyph class"),
    (dict(eval_scripts=("LATIN", "GREEK", "ARMENIAN", "LAO")), "leave 0 background class"),
    (dict(eval_scripts=()), "eval_scripts is empty"),
])
def test_split_rejects_impossible_requests(kwargs, match):
    X, y, scripts = tiny_alphabets()
    kwargs = {"eval_scripts": EVAL, "n_way": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        bo.koch_split(y, scripts, **kwargs)


def test_protocol_asks_too_many_ways():
    data = tiny_alphabets()
    with pytest.raises(ValueError, match="20-way one-shot within the ARMENIAN alphabet"):
        bo.glyph_koch(registry.select([bo.RAW]), True, (0,), n_ways=(20, 5), data=data,
                      eval_scripts=EVAL)


class Recorder:
    """A stand-in for SiameseNet / DeepMetricLearner (fits in milliseconds): a PCA
    embedding; records what it was trained on."""

    seen = []
    best_epoch_ = 0

    def __init__(self, random_state=0, **params):
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.decomposition import PCA

        Recorder.seen.append((X.copy(), y.copy(), self.random_state))
        self.pca_ = PCA(n_components=6, random_state=self.random_state)
        self.pca_.fit(X.reshape(len(X), -1))
        return self

    def transform(self, X):
        return self.pca_.transform(X.reshape(len(X), -1))


@pytest.fixture(scope="module")
def koch_rows():
    import skmetric

    mp = pytest.MonkeyPatch()
    mp.setattr(skmetric, "SiameseNet", Recorder)
    mp.setattr(skmetric, "DeepMetricLearner", Recorder)
    mp.setattr(bo, "_SOURCE_FITS", {})
    Recorder.seen = []
    data = tiny_alphabets()
    names = [bo.RAW, bo.KOCH_SIAMESE_METHOD, bo.KOCH_DML_METHOD]
    try:
        rows = bo.glyph_koch(registry.select(names), True, (0, 1), n_ways=(2, 5), n_episodes=40,
                             data=data, eval_scripts=EVAL)
    finally:
        mp.undo()
    return rows, data, list(Recorder.seen)


def test_models_train_on_the_background_alphabets_once_per_seed(koch_rows):
    rows, (X, y, scripts), seen = koch_rows
    background, _ = bo.koch_split(y, scripts, EVAL, n_way=5)
    # Two methods x two seeds, each fitted once for both evaluation alphabets.
    assert sorted(s for *_, s in seen) == [0, 0, 1, 1]
    for Xs, ys, _ in seen:
        assert np.array_equal(Xs, X[background]) and np.array_equal(ys, y[background])
    for m in (bo.KOCH_SIAMESE_METHOD, bo.KOCH_DML_METHOD):
        mine = [r for r in rows if r["method"] == m]
        assert {r["seed"] for r in mine} == {0, 1}
        assert all(r["fit_time_s"] > 0 for r in mine)


def test_episodes_stay_within_one_evaluation_alphabet_and_are_shared(koch_rows):
    rows, (X, y, scripts), _ = koch_rows
    assert {r["fold"] for r in rows} == {"Armenian", "Lao"}
    assert {r["protocol"] for r in rows} == {bo.KOCH_PROTOCOL}
    for script in EVAL:
        classes = np.flatnonzero(scripts == script)
        for n_way in (2, 5):
            mine = [r for r in rows if (r["fold"], r["n_way"]) == (script.title(), n_way)]
            # raw 1-NN and both models (2 seeds each), all on one draw of episodes
            assert len(mine) == 5 and {r["method"] for r in mine} >= {bo.RAW}
            assert len({r["episodes"] for r in mine}) == 1
            q, s, t = one_shot_episodes(y, n_way, 40, classes, bo.SAME_EPISODES_SEED)
            assert bo.episodes_digest((q, s, t)) == mine[0]["episodes"]
            assert np.isin(y[np.concatenate([q, s.ravel()])], classes).all()
            for r in mine:
                assert 1 / n_way - 0.2 < r["accuracy"] <= 1.0
    # Different alphabets, different episodes.
    assert len({r["episodes"] for r in rows if r["n_way"] == 2}) == 2


def test_summary_and_figure_use_the_rows(koch_rows, tmp_path):
    rows, *_ = koch_rows
    text = bo.koch_summary(rows, (0, 1), n_ways=(2, 5))
    raw = np.mean([r["accuracy"] for r in rows if r["method"] == bo.RAW and r["n_way"] == 5])
    assert f"| {bo.RAW} | " in text and f"{100 * raw:.1f}%" in text
    assert "92.0%" in text and "Not the same data" in text
    d = bo.differences(rows, bo.KOCH_DML_METHOD, 2, protocol=bo.KOCH_PROTOCOL)
    assert d.size == 4  # 2 alphabets x 2 seeds, each against its alphabet's raw 1-NN
    bo.plot_koch(rows, tmp_path / "koch.png", n_ways=(2, 5))
    assert (tmp_path / "koch.png").stat().st_size > 10_000


def test_digits_figure_draws_classes_and_images_panels(tmp_path):
    rows = []
    for protocol, folds, ways in (("held-out classes", ("a", "b"), (2, 3)),
                                  ("held-out images", ("50% | 50%",), (2, 5, 10))):
        for f in folds:
            for n in ways:
                for m, acc in ((bo.RAW, 0.80), (bo.SOURCE_DML_METHOD, 0.85)):
                    rows.append(dict(protocol=protocol, fold=f, method=m, n_way=n,
                                     accuracy=acc - 0.02 * n))
    bo.plot(rows, [2, 3], [2, 5, 10], tmp_path / "digits.png")
    assert (tmp_path / "digits.png").stat().st_size > 10_000


def test_default_split_of_the_real_glyphs_has_20_classes_per_evaluation_alphabet(monkeypatch):
    """The documented split: every evaluation script can hold 20-way episodes on its own."""
    monkeypatch.setattr(bo, "KOCH_GLYPHS_QUICK", dict(n_per_class=1, random_state=0))
    bo.glyph_alphabets.cache_clear()
    try:
        X, y, scripts = bo.glyph_alphabets(True)
    finally:
        bo.glyph_alphabets.cache_clear()
    background, alphabets = bo.koch_split(y, scripts)
    assert list(alphabets) == list(bo.KOCH_EVAL_SCRIPTS)
    assert all(c.size >= 20 for c in alphabets.values())
    n_background = np.unique(y[background]).size
    assert n_background > 3 * sum(c.size for c in alphabets.values())
    assert {"LATIN", "GREEK", "CYRILLIC"} <= set(scripts[np.unique(y[background])])
