"""The transfer-kinds benchmark (glyphs -> digits): the labelled and test images of a draw
are disjoint and cover the digits, the accuracies are real numbers of every method for every
number of shots, and the table and figure carry every method."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")
pytest.importorskip("torchvision")
pytest.importorskip("pytorch_metric_learning")

from benchmarks import bench_transfer_kinds as bt  # noqa: E402


def test_labelled_split_is_disjoint_balanced_and_seeded():
    y = np.repeat(np.arange(4), 7)
    lab, test = bt.labelled_split(y, 3, random_state=0)
    assert not np.intersect1d(lab, test).size
    assert np.array_equal(np.union1d(lab, test), np.arange(y.size))
    assert np.array_equal(np.bincount(y[lab]), [3, 3, 3, 3])
    again, _ = bt.labelled_split(y, 3, random_state=0)
    other, _ = bt.labelled_split(y, 3, random_state=1)
    assert np.array_equal(lab, again) and not np.array_equal(lab, other)


def test_nearest_rules_pick_the_closest_labelled_image():
    E_lab = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 0.0]])
    y_lab = np.array([0, 1, 2])
    # Euclidean: (6, 0) is nearest to (10, 0); cosine: it points the same way as (1, 0) and
    # (10, 0), the first of the tie wins; (0.1, 3) is class 1 under both.
    E_test = np.array([[6.0, 0.0], [0.1, 3.0]])
    assert bt.nearest_accuracy(E_lab, y_lab, E_test, np.array([2, 1])) == 1.0
    assert bt.cosine_accuracy(E_lab, y_lab, E_test, np.array([0, 1])) == 1.0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(bt, "GLYPHS_QUICK", dict(n_per_class=3, max_classes=8, random_state=0))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: more threads only spin on a shared machine
    out = tmp_path_factory.mktemp("transfer_kinds")
    try:
        rows, meta, splits = bt.run(quick=True, seed=0, shots=(1, 5), n_draws=2)
        bt.write(rows, meta, out, quick=True, shots=(1, 5))
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return rows, meta, splits, out


def test_draws_are_disjoint_and_cover_the_digits(tiny_run):
    from skmetric.datasets import load_digits_images

    rows, meta, splits, _ = tiny_run
    _, y = load_digits_images()
    assert len(splits) == 4  # 2 shots x 2 draws
    for (lab, test), k in zip(splits, (1, 1, 5, 5)):
        assert not np.intersect1d(lab, test).size
        assert lab.size + test.size == y.size
        assert np.array_equal(np.bincount(y[lab], minlength=10), np.full(10, k))
    assert not np.array_equal(splits[0][0], splits[1][0])  # the draws differ


def test_every_method_has_a_real_accuracy_per_draw(tiny_run):
    rows, meta, _, _ = tiny_run
    for m in bt.METHODS:
        for k in (1, 5):
            mine = [r for r in rows if r["method"] == m and r["shots"] == k]
            assert len(mine) == 2, (m, k)
            for r in mine:
                assert 0.0 <= r["accuracy"] <= 1.0 and r["n_labelled"] == 10 * k
                assert r["n_test"] == 1797 - 10 * k
    # Raw-pixel 1-NN on real digits is far above chance even with one image per class.
    raw = [r["accuracy"] for r in rows if r["method"] == bt.RAW]
    assert min(raw) > 0.4
    assert meta["source_classes"] == 8


def test_table_and_files_have_every_method(tiny_run):
    rows, _, _, out = tiny_run
    lines = bt.table(rows, shots=(1, 5)).splitlines()
    assert lines[0] == "| method | 1-shot | 5-shot |"
    assert [ln.split(" | ")[0].lstrip("| ") for ln in lines[2:]] == list(bt.METHODS)
    md = (out / "transfer_kinds_quick.md").read_text()
    assert all(m in md for m in bt.METHODS) and "5-shot" in md
    assert (out / "transfer_kinds_quick.png").stat().st_size > 10_000
    assert (out / "transfer_kinds_quick.csv").exists()
