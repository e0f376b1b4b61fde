"""benchmarks/bench_sdml_mlkr.py: arguments, a quick run without the peer, its JSON."""

import json

from benchmarks import bench_sdml_mlkr as bench


def test_arguments():
    args = bench.parse_args(["--quick", "--seed", "3", "--no-peer", "--out", "x.json"])
    assert args.quick and args.no_peer and args.seed == 3 and str(args.out) == "x.json"
    assert bench.parse_args([]).out.name == "bench_sdml_mlkr.json"


def test_quick_run_without_peer_writes_every_table(tmp_path, capsys):
    out = tmp_path / "r.json"
    bench.main(["--quick", "--no-peer", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "## SDML" in printed and "## MLKR" in printed
    data = json.loads(out.read_text())
    methods = {(r["dataset"], r["method"]) for r in data["sdml"]}
    assert ("iris", "skmetric SDMLPairs") in methods and ("wine", "Euclidean") in methods
    assert ("iris", "skmetric SDMLPairs (PD balance)") in methods
    for row in data["sdml"] + data["mlkr"]:
        assert row["folds_ok"] == "3/3" and row["failure"] is None
        assert row["score"] >= 0
    assert {r["method"] for r in data["mlkr"]} == {"Euclidean", "skmetric MLKR"}
    assert data["mlkr_evaluation"][0]["skmetric_ms"] > 0
