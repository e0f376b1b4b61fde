"""``python -m benchmarks``: every method on every data set, peers side by side.

Each (data set, method) pair is one run: ``StandardScaler -> method -> 3-NN``
evaluated on the data set's stratified folds (the same folds for every method
and peer). Prints a markdown table and writes ``results.csv`` (one row per
fold), ``results_summary.csv``, ``results.json``, ``results.md`` and PNG plots
into ``--out``.

Examples
--------
    python -m benchmarks                      # the default run (sklearn data sets)
    python -m benchmarks --quick              # smoke run, < 2 minutes
    python -m benchmarks --unseen             # also the unseen-class benchmark
    python -m benchmarks --datasets iris wine --methods LMNN NCA --n-jobs 2
    python -m benchmarks --datasets mnist --download --data-home ~/data
"""

import argparse
import sys
import time

from .report import FIGURES, parser

# Fit time against n: these methods (and their peers) on digits subsamples.
SCALING_METHODS = ("NCA", "scikit-learn NCA", "metric-learn NCA", "LMNN", "metric-learn LMNN",
                   "MMC", "ITML")
QUICK_SCALING_METHODS = ("NCA", "scikit-learn NCA")


def parse_args(argv=None):
    from .data import DEFAULT_DATASETS, DOWNLOADABLE

    on_off = argparse.BooleanOptionalAction
    p = parser("python -m benchmarks", "k-NN error and fit time of every metric learner on "
               "every data set, with metric-learn 0.7.0 and scikit-learn's NCA as peers on the "
               "same folds.")
    p.add_argument("--datasets", nargs="+", metavar="NAME", help=f"data sets (default: "
                   f"{' '.join(DEFAULT_DATASETS)}; downloadable: {' '.join(DOWNLOADABLE)})")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="methods (default: all); quote "
                   "names with spaces; --list shows them")
    p.add_argument("--peers", action=on_off, default=True, help="run the peers")
    p.add_argument("--scaling", action=on_off, default=True, help="fit time against n on digits")
    p.add_argument("--plots", action=on_off, default=True, help="write PNG plots")
    p.add_argument("--unseen", action="store_true", help="also the unseen-class benchmark "
                   "(benchmarks.bench_unseen: held-out classes, one-shot and mAP@R vs raw "
                   "features; about 15 CPU-minutes, --quick about 1)")
    p.add_argument("--n-jobs", type=int, default=-1, help="runs in parallel (joblib; default -1: "
                   "all cores); --n-jobs 1 gives the cleanest timings")
    p.add_argument("--data-home", default=None, help="where downloadable data sets live")
    p.add_argument("--download", action="store_true",
                   help="download MNIST / Fashion-MNIST / Omniglot if missing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list methods and data sets, then exit")
    p.add_argument("--update-figures", action="store_true", help=f"also copy the error plot and "
                   f"the table into {FIGURES} (the README's; not with --quick)")
    args = p.parse_args(argv)
    if args.update_figures and args.quick:
        p.error("--update-figures needs a full run (the README shows real results), not --quick.")
    return args


def scaling_sizes(quick):
    return (60, 120) if quick else (200, 400, 800, 1600)


def select(args):
    """(methods, data sets, skipped data sets) of this run; exits on unknown names."""
    from . import data, registry

    try:
        methods = registry.select(args.methods, peers=args.peers)
        registry.check_importable(methods)  # fail loudly before any run
    except (ValueError, registry.MissingMethod) as exc:
        raise SystemExit(f"error: {exc}") from exc
    names = args.datasets or (data.QUICK_DATASETS if args.quick else data.DEFAULT_DATASETS)
    unknown = [d for d in names if d not in data.DATASET_NAMES]
    if unknown:
        raise SystemExit(f"Unknown data set(s) {unknown}; choose from {list(data.DATASET_NAMES)}.")
    datasets, skipped = [], {}
    for name in names:
        try:
            datasets.append(data.load(name, args.quick, args.seed, args.data_home, args.download))
        except data.DatasetUnavailable as exc:
            skipped[name] = str(exc)
            print(f"[skip] {exc}", file=sys.stderr)
    return methods, datasets, skipped


def tasks(args, methods, datasets):
    """The evaluation runs, and the scaling fits on digits subsamples."""
    from . import runner
    from .data import load_sklearn

    out = runner.evaluation_tasks(methods, datasets, seed=args.seed, quick=args.quick)
    scaling = QUICK_SCALING_METHODS if args.quick else SCALING_METHODS
    if args.scaling:
        X, y = load_sklearn("digits")
        for n in scaling_sizes(args.quick):
            out += [(n * X.shape[1], runner.fit_on_subsample, m.name, X, y, n, args.seed,
                     args.quick) for m in methods if m.name in scaling]
    return out


def main(argv=None):
    args = parse_args(argv)
    from . import registry, report, runner

    if args.list:
        from .data import DATASET_NAMES

        for m in registry.METHODS:
            peer = "peer of " + m.peer_of if m.peer_of else ""
            print(f"method  {m.name:28s} {m.kind:9s} {m.family:8s} {m.data:9s} {peer}")
        print("\n".join(f"dataset {d}" for d in DATASET_NAMES))
        return 0
    t_start, load_start = time.perf_counter(), report.load_average()
    methods, datasets, skipped = select(args)
    rows = runner.execute(tasks(args, methods, datasets), args.n_jobs, not args.no_progress)
    scaling_rows = runner.ordered([r for r in rows if r.get("protocol") == "scaling"], methods)
    rows = runner.ordered([r for r in rows if r.get("protocol") != "scaling"], methods,
                          [d.name for d in datasets])
    summary = runner.add_ratios(runner.summarize(rows))
    meta = run_meta(args, methods, datasets, t_start, load_start)
    notes = run_notes(args, summary + scaling_rows, datasets, skipped, rows)
    text = report.main_text(summary, meta, notes)
    write_all(args, rows, summary, scaling_rows, meta, text, skipped)
    print(text)
    failed = [r for r in summary + scaling_rows if r["status"].startswith("failed")]
    code = 0
    if any(r["kind"] != "peer" for r in failed):
        print(f"{len(failed)} run(s) failed; see the notes.", file=sys.stderr)
        code = 1
    if args.unseen:
        from . import bench_unseen

        unseen = ["--seed", str(args.seed), "--out", str(args.out), "--n-jobs", str(args.n_jobs)]
        unseen += ["--quick"] * args.quick + ["--no-progress"] * args.no_progress
        unseen += ["--update-figures"] * args.update_figures
        code = max(code, bench_unseen.main(unseen))
    return code


def run_meta(args, methods, datasets, t_start, load_start):
    from datetime import datetime, timezone

    from joblib import effective_n_jobs

    from . import registry, report

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "seed": args.seed,
        "quick": args.quick,
        "n_jobs": effective_n_jobs(args.n_jobs),
        "n_splits": registry.N_SPLITS,
        "datasets": [d.name for d in datasets],
        "methods": [m.name for m in methods],
        "settings": registry.settings(args.quick),
        "wall_time_s": time.perf_counter() - t_start,
        "load_average": {"start": load_start, "end": report.load_average()},
    }


def run_notes(args, summary, datasets, skipped, rows):
    """The notes under the table: settings, data, runs that did not run or failed, warnings."""
    from . import registry, runner

    notes = registry.notes(args.quick)
    if args.quick:
        notes.insert(0, "--quick: subsampled data and few iterations; numbers are a smoke test, "
                     "not results.")
    notes += [f"{d.name}: {d.note} (prepared in {d.prep_time:.1f} s)." for d in datasets if d.note]
    problems = [r for r in summary if r["status"] != "ok"]
    problems.sort(key=lambda r: not r["status"].startswith("not run"))  # not run, then failed
    notes += [f"{r['dataset']} / {r['method']}: {r['status']}" for r in problems]
    notes += [f"skipped {name}: {why}" for name, why in skipped.items()]
    return notes + [f"warnings: {line}" for line in runner.warning_lines(rows)]


def write_all(args, rows, summary, scaling_rows, meta, text, skipped):
    from . import report

    args.out.mkdir(parents=True, exist_ok=True)  # plots are written before the tables
    if args.plots:
        from . import plots

        meta["plots"] = [str(plots.error_by_method(summary, args.out / "error_by_method.png"))]
        if scaling_rows:
            png = plots.fit_time_vs_n(scaling_rows, args.out / "fit_time_vs_n.png")
            meta["plots"].append(str(png))
        meta["plots"].append(str(plots.digits_embedding(args.out / "digits_embedding.png",
                                                        quick=args.quick, seed=args.seed)))
    report.write(args.out, "results", rows, text, meta=meta, summary=summary, skipped=skipped,
                 scaling=scaling_rows)
    report.write_csv(summary, args.out / "results_summary.csv")
    report.write_csv(scaling_rows, args.out / "fit_time_vs_n.csv")
    if args.update_figures:
        paths = report.update_figures(args.out, text, meta)
        print(f"Updated {', '.join(map(str, paths))}", file=sys.stderr)
    print(f"Results in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
