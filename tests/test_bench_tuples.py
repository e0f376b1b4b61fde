"""Smoke test of benchmarks/bench_tuples.py (without the metric-learn peer)."""

import json

from benchmarks.bench_tuples import main, parse_args


def test_bench_tuples_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert parse_args(["--quick"]).quick
    main(["--datasets", "iris", "--no-peer", "--no-label-forms", "--seed", "1", "--out", str(out)])
    table = capsys.readouterr().out
    assert "| iris | LSML |" in table and "| iris | SCML |" in table
    results = json.loads(out.read_text())["results"]
    rows = {r["learner"]: r for r in results}
    assert set(rows) == {"Euclidean", "LSML", "SCML"}
    for name in ("LSML", "SCML"):
        assert len(rows[name]["folds"]) == 3
        assert 0 <= rows[name]["ours_err"] <= 0.2 and rows[name]["ours_wall"] > 0
        assert rows[name]["peer_err"] is None


def test_note_gives_the_reason_under_10x_and_counts_whole_test_points():
    from benchmarks.bench_tuples import _note

    row = dict(learner="SCML", n_samples=150, ours_err=0.04 + 1e-4, peer_err=0.04,
               ours_wall=0.2, peer_wall=1.0, ours_n_iter=50.0, peer_n_iter=9999.0,
               ours_objective=0.01, peer_objective=5.0)
    note = _note(row, euclid=0.04)
    assert note.startswith("< 10x: ") and "500x higher objective" in note
    assert "error above" not in note  # a hundredth of a test point is no test point
    row.update(ours_err=0.04 + 1 / 150, peer_wall=3.0)  # 15x faster, one point worse
    assert _note(row, euclid=None) == "error above metric-learn's by 1 test point(s) of 150"


def test_lsml_note_blames_fixed_costs_only_for_millisecond_fits():
    from benchmarks.bench_tuples import _note

    row = dict(learner="LSML", n_samples=150, ours_err=0.04, peer_err=0.04, ours_wall=0.003,
               peer_wall=0.006, ours_n_iter=20.0, peer_n_iter=4.0,
               ours_time_to_peer_objective=0.0005)
    assert _note(row, euclid=0.04).endswith("millisecond fits are mostly fixed costs")
    row.update(ours_wall=0.3, peer_wall=0.6)
    assert "fixed costs" not in _note(row, euclid=0.04)
    assert "reaches metric-learn's objective in 0.5 ms" in _note(row, euclid=0.04)
