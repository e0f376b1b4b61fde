"""The benchmark suite: --quick end to end, the Dask grid search, the retrieval
example, the metric-learn keyword adapter, and the table bookkeeping."""

import csv
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("metric_learn")

from benchmarks import __main__ as bench  # noqa: E402
from benchmarks import peers, suite  # noqa: E402


# --------------------------------------------------------------------------- #
# --quick end to end
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("bench")
    code = bench.main(["--quick", "--n-jobs", "1", "--out", str(out), "--no-progress"])
    return code, out


def test_quick_run_succeeds_and_writes_everything(quick_run, capsys):
    code, out = quick_run
    assert code == 0
    for name in ("results.csv", "results.json", "results.md", "fit_time_vs_n.csv"):
        assert (out / name).stat().st_size > 0
    for png in ("error_by_method.png", "fit_time_vs_n.png", "digits_embedding.png"):
        path = out / png
        assert path.stat().st_size > 5000
        import matplotlib.image

        img = matplotlib.image.imread(path)
        assert img.ndim == 3 and min(img.shape[:2]) > 200
        assert img[..., :3].std() > 0.01  # not a blank canvas


def test_quick_run_has_a_row_per_method_and_data_set(quick_run):
    _, out = quick_run
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    by = {(r["dataset"], r["method"]): r for r in rows}
    for ds in suite.QUICK_DATASETS:
        for m in suite.METHODS:
            if m.input == "images" and ds != "digits_cnn":
                assert (ds, m.name) not in by  # image methods need images
                continue
            assert (ds, m.name) in by, (ds, m.name)
            r = by[(ds, m.name)]
            if m.family != "peer":  # every skmetric method and baseline must run
                assert r["status"] == "ok", r["status"]
            if r["status"] == "ok":
                assert 0.0 <= float(r["error_mean"]) <= 100.0
                assert float(r["fit_time"]) > 0.0
    # The learned metrics beat chance by far on iris (3 classes, chance 67 % error).
    assert float(by[("iris", "LMNN")]["error_mean"]) < 20.0
    # Ratios are skmetric / peer fit times on the same data set.
    r = by[("iris", "NCA")]
    peer = by[("iris", r["compared_with"])]
    assert r["compared_with"] in suite.peers_of("NCA")
    assert float(r["time_ratio"]) == pytest.approx(float(r["fit_time"]) / float(peer["fit_time"]))


def test_quick_run_json_and_markdown(quick_run):
    _, out = quick_run
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["quick"] is True
    assert set(data["meta"]["datasets"]) == set(suite.QUICK_DATASETS)
    assert len(data["rows"]) > 0 and all(
        len(r["errors"]) == suite.N_SPLITS for r in data["rows"] if r["status"] == "ok"
    )
    assert {r["n"] for r in data["scaling"]} == set(bench.scaling_sizes(True))
    md = (out / "results.md").read_text()
    assert md.startswith("| data set |")
    for m in suite.METHODS:
        assert f"| {m.name} |" in md
    assert "Machine:" in md


def test_runs_are_reproducible(tmp_path):
    args = [
        "--datasets",
        "iris",
        "wine",
        "--methods",
        "NCA",
        "RCA",
        "--no-plots",
        "--no-scaling",
        "--no-progress",
    ]
    assert bench.main([*args, "--n-jobs", "1", "--out", str(tmp_path / "a")]) == 0
    assert bench.main([*args, "--n-jobs", "2", "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())["rows"]
    b = json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    assert [(r["dataset"], r["method"]) for r in a] == [(r["dataset"], r["method"]) for r in b]
    assert [r["errors"] for r in a] == [r["errors"] for r in b]
    assert {r["method"] for r in a} == {
        "NCA",
        "RCA",
        *suite.peers_of("NCA"),
        *suite.peers_of("RCA"),
    }


# --------------------------------------------------------------------------- #
# Registries and bookkeeping
# --------------------------------------------------------------------------- #
def test_method_filter_adds_peers_unless_no_peers():
    names = [m.name for m in suite.select_methods(["lmnn"])]
    assert names == ["LMNN", "metric-learn LMNN"]
    assert [m.name for m in suite.select_methods(["LMNN"], peers=False)] == ["LMNN"]
    assert all(m.family != "peer" for m in suite.select_methods(None, peers=False))
    with pytest.raises(ValueError, match="Unknown method"):
        suite.select_methods(["LMNN", "no such method"])


def test_every_listed_method_is_importable():
    suite.check_importable(suite.METHODS)  # raises MissingMethod otherwise


def test_missing_class_fails_loudly(monkeypatch):
    broken = suite.Method("broken", lambda ctx: None, "skmetric", requires=("NoSuchLearner",))
    with pytest.raises(suite.MissingMethod, match="NoSuchLearner"):
        suite.check_importable([broken])


def test_add_ratios_pairs_methods_with_their_peers():
    def row(method, family, fit_time, peer_of=None, status="ok"):
        return {
            "dataset": "d",
            "method": method,
            "family": family,
            "peer_of": peer_of,
            "fit_time": fit_time,
            "status": status,
        }

    rows = [
        row("NCA", "skmetric", 1.0),
        row("scikit-learn NCA", "peer", 4.0, "NCA", status="failed: X"),
        row("metric-learn NCA", "peer", 2.0, "NCA"),
        row("PCA", "baseline", 0.1),
    ]
    bench.add_ratios(rows)
    # The first peer failed, so NCA is compared with the next one.
    assert rows[0]["compared_with"] == "metric-learn NCA" and rows[0]["time_ratio"] == 0.5
    assert rows[2]["compared_with"] == "NCA" and rows[2]["time_ratio"] == 0.5
    assert rows[1]["time_ratio"] is None and rows[3]["time_ratio"] is None


def test_downloadable_data_set_unavailable_offline_is_explained(tmp_path):
    pytest.importorskip("torchvision")
    with pytest.raises(suite.DatasetUnavailable, match="mnist is not available.*--download"):
        suite.load("mnist", quick=True, data_home=str(tmp_path), download=False)


def test_unavailable_data_set_is_skipped_with_a_message(tmp_path, capsys):
    pytest.importorskip("torchvision")
    code = bench.main(
        [
            "--datasets",
            "iris",
            "fashion_mnist",
            "--methods",
            "PCA",
            "--n-jobs",
            "1",
            "--no-plots",
            "--no-scaling",
            "--no-progress",
            "--data-home",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 0
    assert "[skip] fashion_mnist is not available" in capsys.readouterr().err
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["meta"]["datasets"] == ["iris"] and "fashion_mnist" in data["skipped"]


def test_subsample_fit_is_stratified_and_bounded():
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    X, y = rng.randn(200, 5), np.repeat([0, 1, 2, 3], 50)
    est = suite.SubsampleFit(PCA(n_components=2), max_samples=40, random_state=0).fit(X, y)
    assert est.estimator_.n_samples_ == 40
    assert est.transform(X).shape == (200, 2)


# --------------------------------------------------------------------------- #
# metric-learn adapter
# --------------------------------------------------------------------------- #
def test_adapter_renames_force_all_finite():
    seen = {}

    def check_array(X, **kwargs):
        seen.update(kwargs)
        return X

    wrapped = peers._rename_force_all_finite(check_array)
    wrapped([[1.0]], force_all_finite=False, dtype="numeric")
    assert seen == {"ensure_all_finite": False, "dtype": "numeric"}


def test_adapter_lets_metric_learn_fit_with_this_scikit_learn():
    from sklearn.datasets import load_iris

    ml = peers.metric_learn_module()
    import metric_learn._util as util

    assert getattr(util.check_array, "__skmetric_adapter__", False)
    X, y = load_iris(return_X_y=True)
    est = peers.metric_learn_estimator("NCA", max_iter=5, random_state=0).fit(X, y)
    assert isinstance(est, ml.NCA) and est.components_.shape == (4, 4)


# --------------------------------------------------------------------------- #
# Grid search (joblib and Dask) and the retrieval example
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def tiny_images():
    pytest.importorskip("torch")
    from benchmarks.transfer import digits_cnn, split_digits

    _, (X, y) = split_digits()
    rng = np.random.RandomState(0)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 12, replace=False) for c in np.unique(y)]
    )
    net = digits_cnn(channels=(4, 4)).eval().requires_grad_(False)  # tiny, untrained, frozen
    return X[idx], y[idx], net


GRID = {"knn__n_neighbors": [1, 3], "lmnn__n_components": [2, None]}


def test_grid_search_on_a_dask_local_cluster_matches_joblib(tiny_images):
    distributed = pytest.importorskip("dask.distributed")
    from benchmarks.grid_search import dask_grid_search, grid_search

    X, y, net = tiny_images
    kw = dict(param_grid=GRID, cv=2, lmnn_max_iter=5, seed=0)
    from joblib import parallel_config

    with parallel_config(backend="threading"):  # n_jobs > 1 without spawning processes
        local = grid_search(X, y, net, n_jobs=2, **kw)
    with (
        distributed.LocalCluster(
            n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as tasks:
            remote = dask_grid_search(X, y, net, scheduler=client, **kw)
    assert len(tasks.data) >= 4  # the candidates x folds ran on the cluster
    assert len(remote.cv_results_["params"]) == 4
    assert remote.best_params_ in [
        dict(zip(GRID, v))
        for v in [(a, b) for a in GRID["knn__n_neighbors"] for b in GRID["lmnn__n_components"]]
    ]
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert 0.0 <= remote.best_score_ <= 1.0


def test_retrieval_example_on_tiny_digits(tmp_path, monkeypatch, tiny_images):
    from benchmarks import retrieval

    X, y, net = tiny_images
    monkeypatch.setattr(suite, "digits_transfer", lambda **kw: (X, y, net))
    res = retrieval.retrieval_example("digits", "lmnn", k=3, n_queries=3, out=tmp_path, quick=True)
    png = tmp_path / "retrieval_digits_lmnn.png"
    assert res["png"] == str(png) and png.stat().st_size > 5000
    assert set(res["metrics"]) == {"Euclidean", "LMNN"}
    for m in res["metrics"].values():
        assert 0.0 <= m["recall@1"] <= m["recall@3"] <= 1.0
    saved = json.loads((tmp_path / "retrieval_digits_lmnn.json").read_text())
    assert saved["n_catalogue"] + saved["n_queries"] == len(y)


def test_update_figures_refuses_a_quick_run(tmp_path):
    with pytest.raises(SystemExit, match="needs a full run"):
        bench.main(["--quick", "--update-figures", "--out", str(tmp_path)])


def test_load_note_says_when_timings_were_taken_under_load():
    assert "under load" in bench._load_note({"start": 3.0, "end": 5.0}, 2)
    assert "under load" not in bench._load_note({"start": 0.1, "end": 2.0}, 2)
    assert bench._load_note({"start": None, "end": None}, 2) == ""


def test_versus_euclidean_marks():
    from benchmarks.__main__ import versus_euclidean

    def row(dataset, method, err, status="ok"):
        return {"dataset": dataset, "method": method, "status": status, "error_mean": err}

    rows = [
        row("a", "Euclidean kNN", 3.0),
        row("a", "LMNN", 2.0),
        row("a", "MMC", 5.0),
        row("a", "NCA", 3.01),
        row("a", "ITML", 0.0, status="failed: boom"),
    ]
    lines = versus_euclidean(rows).splitlines()
    assert "| LMNN | 2.00 + |" in lines
    assert "| MMC | 5.00 - |" in lines
    assert "| NCA | 3.01 = |" in lines
    assert "| ITML |  |" in lines
    assert versus_euclidean([row("a", "LMNN", 1.0)]) == ""
