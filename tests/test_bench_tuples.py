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
