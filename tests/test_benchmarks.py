"""The benchmark suite: --quick end to end, the Dask grid search, the retrieval
example, the metric-learn keyword adapter, and the table bookkeeping."""

import csv
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("metric_learn")

from benchmarks import __main__ as bench  # noqa: E402
from benchmarks import data, peers, registry, report, runner  # noqa: E402


# --------------------------------------------------------------------------- #
# --quick end to end
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("bench")
    code = bench.main(["--quick", "--n-jobs", "1", "--out", str(out), "--no-progress"])
    return code, out


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_quick_run_succeeds_and_writes_everything(quick_run, capsys):
    code, out = quick_run
    assert code == 0
    for name in ("results.csv", "results_summary.csv", "results.json", "results.md",
                 "fit_time_vs_n.csv"):
        assert (out / name).stat().st_size > 0
    for png in ("error_by_method.png", "fit_time_vs_n.png", "digits_embedding.png"):
        path = out / png
        assert path.stat().st_size > 5000
        import matplotlib.image

        img = matplotlib.image.imread(path)
        assert img.ndim == 3 and min(img.shape[:2]) > 200
        assert img[..., :3].std() > 0.01  # not a blank canvas


def test_quick_run_has_a_row_per_fold_method_and_data_set(quick_run):
    _, out = quick_run
    rows = _csv(out / "results.csv")
    assert tuple(rows[0])[: len(runner.COLUMNS)] == runner.COLUMNS  # the one schema
    summary = {(r["dataset"], r["method"]): r for r in _csv(out / "results_summary.csv")}
    for ds in data.QUICK_DATASETS:
        for m in registry.select():
            if m.data == "images" and ds != "digits_cnn":
                assert (ds, m.name) not in summary  # image methods need images
                continue
            r = summary[(ds, m.name)]
            if m.kind != "peer":  # every skmetric method and baseline must run
                assert r["status"] == "ok", r["status"]
            folds = [f for f in rows if (f["dataset"], f["method"]) == (ds, m.name)]
            if r["status"] == "ok":
                assert sorted(int(f["fold"]) for f in folds) == list(range(registry.N_SPLITS))
                assert all(0.0 <= float(f["error"]) <= 1.0 for f in folds)
                assert all(float(f["fit_time_s"]) > 0 for f in folds)
                mean = 100 * np.mean([float(f["error"]) for f in folds])
                assert float(r["error_mean"]) == pytest.approx(mean)
    # The learned metrics beat chance by far on iris (3 classes, chance 67 % error).
    assert float(summary[("iris", "LMNN")]["error_mean"]) < 20.0
    lmnn = [f for f in rows if (f["dataset"], f["method"]) == ("iris", "LMNN")]
    assert all(int(f["n_iter"]) >= 1 and f["converged"] in ("True", "False") for f in lmnn)
    # Ratios are skmetric / peer fit times on the same data set.
    r = summary[("iris", "NCA")]
    peer = summary[("iris", r["compared_with"])]
    assert r["compared_with"] in registry.peers_of("NCA")
    ratio = float(r["fit_time_s"]) / float(peer["fit_time_s"])
    assert float(r["time_ratio"]) == pytest.approx(ratio)


def test_quick_run_json_and_markdown(quick_run):
    _, out = quick_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["meta"]["quick"] is True
    assert set(saved["meta"]["datasets"]) == set(data.QUICK_DATASETS)
    assert len(saved["rows"]) > 0 and all(
        len(r["errors"]) == registry.N_SPLITS for r in saved["summary"] if r["status"] == "ok"
    )
    assert {r["n"] for r in saved["scaling"]} == set(bench.scaling_sizes(True))
    md = (out / "results.md").read_text()
    assert md.startswith("| data set |")
    for m in registry.select():
        assert f"| {m.name} |" in md
    assert "Machine:" in md


def test_runs_are_reproducible(tmp_path):
    args = ["--datasets", "iris", "wine", "--methods", "NCA", "RCA", "--no-plots",
            "--no-scaling", "--no-progress"]
    assert bench.main([*args, "--n-jobs", "1", "--out", str(tmp_path / "a")]) == 0
    assert bench.main([*args, "--n-jobs", "2", "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())["rows"]
    b = json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    key = [(r["dataset"], r["method"], r["fold"]) for r in a]
    assert key == [(r["dataset"], r["method"], r["fold"]) for r in b]
    assert [r["error"] for r in a] == [r["error"] for r in b]
    assert {r["method"] for r in a} == {
        "NCA",
        "RCA",
        *registry.peers_of("NCA"),
        *registry.peers_of("RCA"),
    }


# --------------------------------------------------------------------------- #
# Every script: the same options, --help before any heavy import, one schema
# --------------------------------------------------------------------------- #
SCRIPTS = ("__main__", "bench_mmc", "bench_itml_mcml", "bench_lmnn", "bench_oneshot",
           "grid_search", "retrieval")


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_answers_before_importing_torch_or_the_learners(script):
    import subprocess
    import sys
    import time

    code = (
        "import sys, contextlib, io\n"
        f"from benchmarks import {script} as s\n"
        "with contextlib.redirect_stdout(io.StringIO()) as f:\n"
        "    try:\n        s.main(['--help'])\n    except SystemExit:\n        pass\n"
        "assert all(o in f.getvalue() for o in ('--quick', '--seed', '--out')), f.getvalue()\n"
        "print(sorted(m for m in ('torch', 'skmetric', 'metric_learn') if m in sys.modules))\n"
    )
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]", res.stdout + res.stderr  # the real check
    assert time.perf_counter() - t0 < 10.0  # < 1 s on an idle machine; loose for a loaded one


def test_scripts_write_rows_of_the_one_schema(tmp_path):
    from benchmarks import bench_lmnn, bench_mmc

    quiet = ["--datasets", "iris", "--no-peer", "--out", str(tmp_path)]
    assert bench_mmc.main([*quiet, "--folds", "1"]) == 0
    assert bench_lmnn.main([*quiet, "--parts", "compare", "--max-iter", "5"]) == 0
    for stem, methods in (("bench_mmc", bench_mmc.METHODS), ("lmnn_compare", bench_lmnn.METHODS)):
        rows = _csv(tmp_path / f"{stem}.csv")
        assert tuple(rows[0])[: len(runner.COLUMNS)] == runner.COLUMNS
        ours = {m for m in methods if not m.startswith("metric-learn")}
        assert {r["method"] for r in rows} == ours
        assert all(r["status"] == "ok" and 0 <= float(r["error"]) <= 1 for r in rows)
        assert "| dataset |" in (tmp_path / f"{stem}.md").read_text()
    assert {r["fold"] for r in _csv(tmp_path / "bench_mmc.csv")} == {"0"}  # --folds 1
    capped = _csv(tmp_path / "lmnn_compare.csv")
    assert all(int(r["n_iter"]) <= 5 for r in capped if r["method"] == "LMNN")


def test_fit_warnings_are_counted_not_printed(recwarn):
    from sklearn.datasets import load_iris

    from skmetric import LMNN

    X, y = load_iris(return_X_y=True)
    fit = runner.timed_fit(LMNN(max_iter=1, random_state=0), X, y)
    assert len(recwarn) == 0  # nothing reached the caller
    assert fit["warnings"] >= 1 and fit["first_warning"].startswith("ConvergenceWarning: ")
    assert fit["n_iter"] == 1 and fit["converged"] is False
    rows = [runner.make_row(registry.get_method("LMNN"), status="ok", **fit) for _ in range(3)]
    rows.append(runner.make_row(registry.get_method("NCA"), status="ok", warnings=0))
    (line,) = runner.warning_lines(rows)  # one line per method that warned
    assert line.startswith(f"LMNN: {3 * fit['warnings']} warning(s) in 3 of 3 fits; first: Conv")


# --------------------------------------------------------------------------- #
# Registries and bookkeeping
# --------------------------------------------------------------------------- #
def test_method_filter_adds_peers_unless_no_peers():
    names = [m.name for m in registry.select(["lmnn"])]
    assert names == ["LMNN", "metric-learn LMNN"]
    assert [m.name for m in registry.select(["LMNN"], peers=False)] == ["LMNN"]
    assert all(m.kind != "peer" for m in registry.select(None, peers=False))
    with pytest.raises(ValueError, match="Unknown method"):
        registry.select(["LMNN", "no such method"])


def test_default_selection_is_the_readme_table():
    default = [m.name for m in registry.select()]
    assert "MMC exact" not in default and "raw pixels 1-NN" not in default
    assert default[:3] == ["Euclidean kNN", "PCA", "LDA"] and len(default) == 28
    for name in ("SDML", "LSML", "SCML"):  # each beside its metric-learn peer
        assert name in default and f"metric-learn {name}" in default
        assert registry.peers_of(name) == [f"metric-learn {name}"]
    assert {m.family for m in registry.METHODS} == {"classic", "deep"}
    assert {m.data for m in registry.METHODS} == {"vectors", "images", "episodes"}


def test_every_listed_method_is_importable():
    registry.check_importable(registry.METHODS)  # raises MissingMethod otherwise


def test_missing_class_fails_loudly(monkeypatch):
    broken = registry.Method("broken", lambda ctx: None, "skmetric", requires=("NoSuchLearner",))
    with pytest.raises(registry.MissingMethod, match="NoSuchLearner"):
        registry.check_importable([broken])


def test_add_ratios_pairs_methods_with_their_peers():
    def row(method, kind, fit_time, peer_of=None, status="ok"):
        return dict(dataset="d", method=method, kind=kind, peer_of=peer_of, fit_time_s=fit_time,
                    status=status)

    rows = [
        row("NCA", "skmetric", 1.0),
        row("scikit-learn NCA", "peer", 4.0, "NCA", status="failed: X"),
        row("metric-learn NCA", "peer", 2.0, "NCA"),
        row("PCA", "baseline", 0.1),
    ]
    runner.add_ratios(rows)
    # The first peer failed, so NCA is compared with the next one.
    assert rows[0]["compared_with"] == "metric-learn NCA" and rows[0]["time_ratio"] == 0.5
    assert rows[2]["compared_with"] == "NCA" and rows[2]["time_ratio"] == 0.5
    assert rows[1]["time_ratio"] is None and rows[3]["time_ratio"] is None


def test_downloadable_data_set_unavailable_offline_is_explained(tmp_path):
    pytest.importorskip("torchvision")
    with pytest.raises(data.DatasetUnavailable, match="mnist is not available.*--download"):
        data.load("mnist", quick=True, data_home=str(tmp_path), download=False)


def test_unavailable_data_set_is_skipped_with_a_message(tmp_path, capsys):
    pytest.importorskip("torchvision")
    code = bench.main(["--datasets", "iris", "fashion_mnist", "--methods", "PCA", "--n-jobs", "1",
                       "--no-plots", "--no-scaling", "--no-progress", "--data-home", str(tmp_path),
                       "--out", str(tmp_path / "r")])
    assert code == 0
    assert "[skip] fashion_mnist is not available" in capsys.readouterr().err
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["meta"]["datasets"] == ["iris"] and "fashion_mnist" in saved["skipped"]


def test_subsample_fit_is_stratified_and_bounded():
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    X, y = rng.randn(200, 5), np.repeat([0, 1, 2, 3], 50)
    est = registry.SubsampleFit(PCA(n_components=2), max_samples=40, random_state=0).fit(X, y)
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
    from benchmarks.grid_search import dask_grid_search, grid_search, summary

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
        remote.cv_results_["mean_test_accuracy"], local.cv_results_["mean_test_accuracy"]
    )
    assert 0.0 <= remote.best_score_ <= 1.0
    # LMNN capped at 5 iterations: its ConvergenceWarnings are counted, not printed.
    rows, line = summary(remote)
    assert [r["converged"] for r in rows] == [0.0] * 4
    assert line.startswith("LMNN: 8 of 8 cross-validation fits stopped on max_iter")


def test_retrieval_example_on_tiny_digits(tmp_path, monkeypatch, tiny_images):
    from benchmarks import retrieval

    X, y, net = tiny_images
    monkeypatch.setattr(data, "digits_transfer", lambda **kw: (X, y, net))
    res = retrieval.retrieval_example("digits", "lmnn", k=3, n_queries=3, out=tmp_path, quick=True)
    png = tmp_path / "retrieval_digits_lmnn.png"
    assert res["png"] == str(png) and png.stat().st_size > 5000
    assert set(res["metrics"]) == {"Euclidean", "LMNN"}
    for m in res["metrics"].values():
        assert 0.0 <= m["recall@1"] <= m["recall@3"] <= 1.0
    saved = json.loads((tmp_path / "retrieval_digits_lmnn.json").read_text())
    assert saved["n_catalogue"] + saved["n_queries"] == len(y)
    # The grid shows the queries where the two rankings differ most, one per class.
    gaps = [abs(q["AP@R LMNN"] - q["AP@R Euclidean"]) for q in res["shown"]]
    assert len(gaps) == 3 and gaps == sorted(gaps, reverse=True)
    assert len({q["class"] for q in res["shown"]}) == 3
    assert all(0.0 <= m["mAP@R"] <= 1.0 for m in res["metrics"].values())


def test_update_figures_refuses_a_quick_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--update-figures", "--out", str(tmp_path)])
    assert "needs a full run" in capsys.readouterr().err


def test_load_note_says_when_timings_were_taken_under_load():
    assert "under load" in report.load_note({"start": 3.0, "end": 5.0}, 2)
    assert "under load" not in report.load_note({"start": 0.1, "end": 2.0}, 2)
    assert report.load_note({"start": None, "end": None}, 2) == ""


def test_versus_euclidean_marks():
    def row(dataset, method, err, status="ok"):
        return {"dataset": dataset, "method": method, "status": status, "error_mean": err}

    rows = [
        row("a", "Euclidean kNN", 3.0),
        row("a", "LMNN", 2.0),
        row("a", "MMC", 5.0),
        row("a", "NCA", 3.01),
        row("a", "ITML", 0.0, status="failed: boom"),
    ]
    lines = report.versus_euclidean(rows).splitlines()
    assert "| LMNN | 2.00 + |" in lines
    assert "| MMC | 5.00 - |" in lines
    assert "| NCA | 3.01 = |" in lines
    assert "| ITML |  |" in lines
    assert report.versus_euclidean([row("a", "LMNN", 1.0)]) == ""


# --------------------------------------------------------------------------- #
# LMNN scaling: peak RSS measured in a child process
# --------------------------------------------------------------------------- #
def test_child_peak_rss_counts_numpy_buffers_and_kills_on_timeout():
    from benchmarks.bench_lmnn import run_child

    alloc = "import numpy as np; a = np.ones(300 * 2**20 // 8); print('done', a.sum() > 0)"
    text, big, code = run_child(["-c", alloc])
    assert code == 0 and text.strip() == "done True"
    _, small, _ = run_child(["-c", "import numpy"])
    assert big - small > 250  # the 300 MiB buffer (tracemalloc-free, so BLAS buffers count too)
    _, _, code = run_child(["-c", "import time; time.sleep(60)"], timeout=1)
    assert code == -9


def test_scaling_point_runs_in_a_child(tmp_path):
    from benchmarks.bench_lmnn import scaling_point, scaling_table

    row = scaling_point("LMNN", "digits64", 150, max_iter=2, timeout=300)
    assert row["status"] == "ok", row
    assert row["peak_rss_mib"] >= row["rss_before_fit_mib"] > 0
    assert row["n"] == 150 and row["d"] == 64 and 1 <= row["n_iter"] <= 2
    assert 0 <= row["accuracy"] <= 100 and row["gflops"] > 0 and row["dgemm_gflops"] > 0
    assert "| d=64 enlarged digits | LMNN | 150 |" in scaling_table([row])


def test_failure_names_the_wrapped_cause():
    # A peer that wraps the real error (metric-learn's SDML) must not hide it.
    try:
        try:
            raise TypeError("graphical_lasso() got an unexpected keyword argument 'cov_init'")
        except TypeError as inner:
            raise RuntimeError("There was a problem in SDML") from inner
    except RuntimeError as exc:
        status = runner.failure(exc)["status"]
    assert status.startswith("failed: RuntimeError: There was a problem in SDML")
    assert "cause: TypeError: graphical_lasso() got an unexpected keyword argument" in status
    try:
        raise ValueError("plain")
    except ValueError as exc:
        assert runner.failure(exc)["status"] == "failed: ValueError: plain"


def test_failure_keeps_the_tail_of_a_long_message():
    long = "There was a problem in SDML. " + "x" * 400 + " thrown: unexpected keyword 'cov_init'."
    try:
        raise RuntimeError(long)
    except RuntimeError as exc:
        status = runner.failure(exc)["status"]
    assert status.endswith("unexpected keyword 'cov_init'.") and " ... " in status
    assert len(status) < 260
