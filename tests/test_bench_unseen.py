"""The unseen-class benchmark (benchmarks.bench_unseen) on tiny data: held-out classes
never reach a fit, every method is scored on the same episodes, the tables have
their columns. Seconds, not minutes."""

import csv
import pathlib
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_unseen as bu  # noqa: E402
from benchmarks import registry  # noqa: E402
from benchmarks.bench_oneshot import episodes_digest  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    """200 digits (20 per class) in 3 class-disjoint folds, 3-way episodes."""
    from sklearn.datasets import load_digits

    from benchmarks.data import stratified_subsample

    X, y = load_digits(return_X_y=True)
    idx = stratified_subsample(y, 200, 0)
    X, y = X[idx].astype(float), y[idx]
    return bu.UnseenData("tiny", X, y, bu.class_folds(y, 3, seed=0), n_way=3)


class Recorder(TransformerMixin, BaseEstimator):
    """Identity transformer that logs the labels and rows it is fitted on."""

    def __init__(self, log=None):
        self.log = log

    def fit(self, X, y):
        self.log.append((np.array(X), np.array(y)))
        return self

    def transform(self, X):
        return np.asarray(X)


def test_folds_hold_out_every_class_once_and_never_train_on_it(tiny):
    held = []
    for f in tiny.folds:
        train_classes, test_classes = set(tiny.y[f.train]), set(tiny.y[f.test])
        assert not train_classes & test_classes
        assert np.intersect1d(f.train, f.test).size == 0
        assert len(f.train) + len(f.test) == len(tiny.y)
        held += sorted(test_classes)
    assert sorted(held) == list(range(10))


def test_held_out_classes_never_reach_a_fit(tiny):
    log = []
    spy = registry.Method("spy", lambda ctx: Recorder(log), "skmetric")
    rows = bu.evaluate(spy, tiny, seed=0, quick=True)
    assert [r["status"] for r in rows] == ["ok"] * 3 and len(log) == 3
    for (Xfit, yfit), fold in zip(log, tiny.folds):
        assert not np.isin(yfit, tiny.y[fold.test]).any()
        np.testing.assert_array_equal(yfit, tiny.y[fold.train])  # exactly the training rows
        assert Xfit.shape == (len(fold.train), tiny.X.shape[1])
        # Scaled on the training classes alone: zero mean there.
        np.testing.assert_allclose(Xfit.mean(0), 0, atol=1e-9)


def test_every_method_is_scored_on_the_same_episodes(tiny):
    methods = [registry.get_method(n) for n in (bu.RAW, "PCA", "NCA")]
    rows = bu.add_raw([r for m in methods for r in bu.evaluate(m, tiny, seed=0, quick=True)])
    assert all(r["status"] == "ok" for r in rows) and len(rows) == 9
    for k in range(3):
        reference = episodes_digest(bu.episodes(tiny, k, seed=0, quick=True))
        fold = [r for r in rows if r["fold"] == k]
        assert {r["episodes"] for r in fold} == {reference}
        raw = next(r for r in fold if r["method"] == bu.RAW)
        for r in fold:  # raw's figures beside each row, and the deltas
            assert r["raw_one_shot_acc"] == raw["one_shot_acc"]
            assert r["delta_map_at_r"] == pytest.approx(r["map_at_r"] - raw["map_at_r"])
            assert 0 <= r["one_shot_acc"] <= 1 and 0 <= r["p_at_1"] <= 1
    # Other episodes for one method stop the run.
    rows[4]["episodes"] = "0" * 12
    with pytest.raises(RuntimeError, match="other episodes"):
        bu.add_raw(rows)
    # Other seeds draw other episodes (the digest sees them).
    assert episodes_digest(bu.episodes(tiny, 0, 1, True)) != episodes_digest(
        bu.episodes(tiny, 0, 0, True))


def test_tables_have_their_columns(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(bu, "load", lambda name, quick, seed: tiny)
    code = bu.main(["--quick", "--datasets", "digits", "--methods", "LDA", "--n-jobs", "1",
                    "--no-progress", "--out", str(tmp_path)])
    assert code == 0
    with open(tmp_path / "unseen_quick.csv") as f:
        rows = list(csv.DictReader(f))
    for col in ("dataset", "method", "fold", "held_out", "one_shot_acc", "map_at_r", "p_at_1",
                "raw_one_shot_acc", "raw_map_at_r", "raw_p_at_1", "delta_one_shot_acc",
                "delta_map_at_r", "delta_p_at_1", "fit_time_s", "cpu_time_s", "episodes"):
        assert col in rows[0], col
    assert {r["method"] for r in rows} == {bu.RAW, "LDA"} and len(rows) == 6
    with open(tmp_path / "unseen_quick_summary.csv") as f:
        summary = list(csv.DictReader(f))
    lda = next(s for s in summary if s["method"] == "LDA")
    wins = sum(float(r["delta_one_shot_acc"]) > 0 for r in rows if r["method"] == "LDA")
    assert int(lda["wins_one_shot_acc"]) == wins and int(lda["folds"]) == 3
    md = (tmp_path / "unseen_quick.md").read_text()
    assert md.startswith("| " + " | ".join(bu.SUMMARY_COLUMNS) + " |")
    assert "| " + " | ".join(bu.FOLD_COLUMNS) + " |" in md
    png = tmp_path / "unseen_delta.png"
    assert png.stat().st_size > 5000


def test_glyph_folds_hold_out_whole_scripts():
    X, y, script, chars = bu.font_glyphs(letters=2, n_per_class=2)
    assert X.shape == (len(bu.SCRIPTS) * 2 * 2, 64) and len(chars) == len(bu.SCRIPTS) * 2
    folds = bu.group_folds(y, script)
    assert [f.held_out for f in folds] == list(bu.SCRIPTS)
    for f in folds:
        assert {script[c] for c in y[f.test]} == {f.held_out}
        assert f.held_out not in {script[c] for c in y[f.train]}
    assert bu.script_of("Ж") == "CYRILLIC" and bu.script_of("a") == "LATIN"


def test_registry_and_retrieval_know_the_deep_learners():
    from benchmarks import retrieval

    names = [m.name for m in bu.default_methods()]
    assert names[0] == bu.RAW and "LMNN" in names and "SCML" in names
    assert {registry.dml_method(loss) for loss in registry.DML_LOSSES} <= set(names)
    assert not any(registry.get_method(n).kind == "peer" for n in names)
    # --learner offers every skmetric vector learner with an embedding, and only those.
    learners = {m.name for m in registry.METHODS if m.kind == "skmetric" and m.data == "vectors"
                and not m.classifier and not m.name.startswith(("MMC ", "LMNN, "))}
    assert set(retrieval.LEARNERS.values()) == learners
    est = retrieval.make_learner("deep-triplet", quick=True)
    assert type(est).__name__ == "DeepMetricLearner" and est.loss == "triplet"
    assert est.max_epochs == 2  # the registry's quick cap; a full run keeps the default
    full = registry.get_method(registry.dml_method("triplet")).build(
        registry.Context(0, False, settings=registry.settings(False)))
    assert full.max_epochs == type(full)().max_epochs
    with pytest.raises(ValueError, match="Unknown learner"):
        retrieval.make_learner("no-such-learner")


def test_help_answers_before_importing_torch_or_the_learners():
    import subprocess

    code = (
        "import sys, contextlib, io\n"
        "from benchmarks import bench_unseen as s\n"
        "with contextlib.redirect_stdout(io.StringIO()) as f:\n"
        "    try:\n        s.main(['--help'])\n    except SystemExit:\n        pass\n"
        "assert '--quick' in f.getvalue() and '--seed' in f.getvalue()\n"
        "print(sorted(m for m in ('torch', 'skmetric') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr
