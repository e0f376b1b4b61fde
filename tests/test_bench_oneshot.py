"""The one-shot benchmark's bookkeeping: glyph classes never collide with digit
labels, and differences are taken against the baseline of the same fold."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

from benchmarks import bench_oneshot as bo  # noqa: E402


def test_glyph_labels_are_offset_past_the_digits(monkeypatch):
    monkeypatch.setattr(bo, "GLYPHS_QUICK", dict(n_per_class=2, max_classes=4, random_state=0))
    bo.font_glyphs.cache_clear()
    X = np.zeros((6, 8, 8), np.float32)
    y = np.array([3, 3, 4, 4, 9, 9])
    Xt, yt = bo.with_glyphs(X, y, quick=True)
    bo.font_glyphs.cache_clear()
    assert Xt.shape == (14, 8, 8) and np.array_equal(yt[:6], y)
    assert yt[6:].min() == 10 and np.unique(yt[6:]).size == 4
    # The caller's arrays are untouched.
    assert np.array_equal(y, [3, 3, 4, 4, 9, 9]) and not X.any()


def test_differences_pair_each_fit_with_its_folds_baseline():
    def row(split, method, acc, n_way=2):
        return dict(protocol="held-out classes", split=split, method=method, n_way=n_way, accuracy=acc)

    rows = [row("a", "raw pixels 1-NN", 0.8), row("b", "raw pixels 1-NN", 0.9),
            row("a", "m", 0.85), row("a", "m", 0.75), row("b", "m", 0.95), row("b", "m", 0.5, n_way=3)]
    np.testing.assert_allclose(bo.differences(rows, "m", 2), [0.05, -0.05, 0.05])


def test_fold_table_averages_over_seeds():
    rows = [dict(protocol="held-out classes", split="s", method="m", n_way=2, accuracy=a) for a in (0.8, 0.9)]
    assert "85.0%" in bo.fold_table(rows, [2])


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
