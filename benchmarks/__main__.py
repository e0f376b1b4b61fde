"""``python -m benchmarks``: every method on every data set, peers side by side.

Each (data set, method) pair is one run: ``StandardScaler -> method -> 3-NN``
evaluated on the data set's stratified folds (the same folds for every method
and peer). Prints a markdown table and writes ``results.csv``,
``results.json``, ``results.md`` and PNG plots into ``--out``.

Examples
--------
    python -m benchmarks                      # the default run (sklearn data sets)
    python -m benchmarks --quick              # smoke run, < 2 minutes
    python -m benchmarks --datasets iris wine --methods LMNN NCA --n-jobs 2
    python -m benchmarks --datasets mnist --download --data-home ~/data
"""

import argparse
import json
import os
import platform
import sys
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import suite
from .harness import evaluate, markdown_table, stratified_folds, summarize

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
FIGURES = Path(__file__).resolve().parent / "figures"
N_SPLITS = suite.N_SPLITS


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="k-NN error and fit time of every metric learner on every data set, "
        "with metric-learn 0.7.0 and scikit-learn's NCA as peers on the same folds.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: small data, few iterations")
    p.add_argument(
        "--datasets",
        nargs="+",
        metavar="NAME",
        help=f"data sets (default: {' '.join(suite.DEFAULT_DATASETS)}; "
        f"downloadable: {' '.join(suite.DOWNLOADABLE)})",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        metavar="NAME",
        help="methods (default: all); quote names with spaces",
    )
    p.add_argument(
        "--peers", action=argparse.BooleanOptionalAction, default=True, help="run the peers"
    )
    p.add_argument(
        "--scaling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit time against n on digits",
    )
    p.add_argument(
        "--plots", action=argparse.BooleanOptionalAction, default=True, help="write PNG plots"
    )
    p.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        help="runs in parallel (joblib; default -1: all cores); "
        "--n-jobs 1 gives the cleanest timings",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    p.add_argument("--data-home", default=None, help="where downloadable data sets live")
    p.add_argument(
        "--download",
        action="store_true",
        help="download MNIST / Fashion-MNIST / Omniglot if missing",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list methods and data sets, then exit")
    p.add_argument(
        "--update-figures",
        action="store_true",
        help=f"also copy the error plot and the table into {FIGURES} "
        "(the README's; not with --quick)",
    )
    return p.parse_args(argv)


def _progress(total, disable):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="benchmark runs", unit="run", disable=disable, file=sys.stderr)


# --------------------------------------------------------------------------- #
# One run
# --------------------------------------------------------------------------- #
def run_one(method, dataset, folds, seed, quick):
    """Evaluate one method on one data set; failures are recorded, not raised."""
    row = {
        "dataset": dataset.name,
        "n": int(len(dataset.y)),
        "d": int(dataset.X.shape[1]),
        "method": method.name,
        "family": method.family,
        "peer_of": method.peer_of,
        "status": "ok",
    }
    X = dataset.images if method.input == "images" else dataset.X
    reason = suite.not_run_reason(method, dataset)
    if reason:
        row["status"] = reason
        return row
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of short runs
            pipe = suite.build_pipeline(method, dataset, seed=seed, quick=quick)
            res = evaluate(pipe, X, dataset.y, folds)
        row.update(summarize(res))
        row["errors"] = [float(e) for e in res["errors"]]
        row["fit_times"] = [float(t) for t in res["fit_times"]]
    except suite.MissingMethod:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing peer is a result
        row["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        row["traceback"] = traceback.format_exc(limit=5)
    return row


def _task_size(task):
    kind, _, a, b = task
    if kind == "run":
        return a.X.shape[0] * a.X.shape[1]
    return b * a[0].shape[1]


def _task(kind, method_name, a, b, seed, quick):
    # Methods travel by name: their factories are looked up in the worker.
    m = suite.get_method(method_name)
    if kind == "run":
        return kind, run_one(m, a, b, seed, quick)
    return kind, run_scaling(m, a[0], a[1], b, seed, quick)


def run_scaling(method, X, y, n, seed, quick):
    """Fit time of one method on a stratified subsample of size n (one fit)."""
    idx = suite._stratified_subsample(y, n, seed)
    ds = suite.Dataset("digits", X[idx], y[idx])
    row = {
        "method": method.name,
        "family": method.family,
        "peer_of": method.peer_of,
        "n": int(len(idx)),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = suite.build_pipeline(method, ds, seed=seed, quick=quick)
            t0 = time.perf_counter()
            pipe.fit(ds.X, ds.y)
            row["fit_time"] = time.perf_counter() - t0
        row["status"] = "ok"
    except Exception as exc:  # noqa: BLE001
        row["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return row


# Fit time against n: these methods (and their peers) on digits subsamples.
SCALING_METHODS = (
    "NCA",
    "scikit-learn NCA",
    "metric-learn NCA",
    "LMNN",
    "metric-learn LMNN",
    "MMC",
    "ITML",
)


def scaling_sizes(quick):
    return (60, 120) if quick else (200, 400, 800, 1600)


# --------------------------------------------------------------------------- #
# Table
# --------------------------------------------------------------------------- #
def add_ratios(rows):
    """Time ratio skmetric / peer for skmetric rows (primary peer) and peer rows."""
    by_key = {(r["dataset"], r["method"]): r for r in rows}
    for r in rows:
        r["compared_with"], r["time_ratio"] = None, None
        if r["status"] != "ok":
            continue
        if r["family"] == "peer":
            ours, peer = by_key.get((r["dataset"], r["peer_of"])), r
            partner = r["peer_of"]
        elif r["family"] == "skmetric":
            ours, peer, partner = r, None, None
            for name in suite.peers_of(r["method"]):
                cand = by_key.get((r["dataset"], name))
                if cand is not None and cand["status"] == "ok":
                    peer, partner = cand, name
                    break
        else:
            continue
        if partner is None:
            continue
        r["compared_with"] = partner
        if (
            ours is not None
            and peer is not None
            and ours["status"] == "ok"
            and peer["fit_time"] > 0
        ):
            r["time_ratio"] = ours["fit_time"] / peer["fit_time"]
    return rows


def table(rows):
    out = []
    for r in rows:
        ok = r["status"] == "ok"
        out.append(
            {
                "data set": r["dataset"],
                "n x d": f"{r['n']} x {r['d']}",
                "method": r["method"],
                "kind": r["family"],
                "kNN error %": (
                    f"{r['error_mean']:.2f} ± {r['error_std']:.2f}"
                    if ok
                    else r["status"].split(":")[0]
                ),
                "fit time (s)": f"{r['fit_time']:.3g}" if ok else "",
                "peer": r.get("compared_with") or "",
                "time ratio": f"{r['time_ratio']:.2f}" if r.get("time_ratio") is not None else "",
            }
        )
    columns = [
        "data set",
        "n x d",
        "method",
        "kind",
        "kNN error %",
        "fit time (s)",
        "peer",
        "time ratio",
    ]
    return markdown_table(out, columns)


def versus_euclidean(rows):
    """Markdown matrix: each method's mean kNN error per data set, marked against
    Euclidean kNN on the same folds (+ lower error, - higher, = within 0.05 points)."""
    ok = [r for r in rows if r["status"] == "ok"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    base = {r["dataset"]: r["error_mean"] for r in ok if r["method"] == "Euclidean kNN"}
    if not base:  # Euclidean kNN filtered out: nothing to compare with
        return ""
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "Euclidean kNN"))
    by_key = {(r["dataset"], r["method"]): r for r in ok}
    out = [{"method": "Euclidean kNN", **{d: f"{base[d]:.2f}" for d in base}}]
    for m in methods:
        row = {"method": m}
        for d in datasets:
            r = by_key.get((d, m))
            if r is None or d not in base:
                continue
            diff = r["error_mean"] - base[d]
            mark = "=" if abs(diff) <= 0.05 else ("+" if diff < 0 else "-")
            row[d] = f"{r['error_mean']:.2f} {mark}"
        out.append(row)
    return markdown_table(out, ["method", *datasets])


def _versus_euclidean_section(rows):
    matrix = versus_euclidean(rows)
    if not matrix:
        return ""
    return (
        "Against Euclidean kNN on the same folds (mean kNN error %; + lower, - higher, "
        "= within 0.05 points):\n\n" + matrix + "\n\n"
    )


def machine():
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU (torch not installed)"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, "
        f"Python {platform.python_version()}"
    )


# --------------------------------------------------------------------------- #
# Main
# --------------------------------------------------------------------------- #
def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for m in suite.METHODS:
            print(
                f"method  {m.name:28s} {m.family:9s} {'peer of ' + m.peer_of if m.peer_of else ''}"
            )
        for d in suite.DATASET_NAMES:
            print(f"dataset {d}")
        return 0

    if args.update_figures and args.quick:
        raise SystemExit(
            "error: --update-figures needs a full run (the README shows real results), not --quick."
        )
    t_start = time.perf_counter()
    load_start = _load_average()
    try:
        methods = suite.select_methods(args.methods, peers=args.peers)
        suite.check_importable(methods)  # fail loudly before any run
    except (ValueError, suite.MissingMethod) as exc:
        raise SystemExit(f"error: {exc}") from exc
    dataset_names = args.datasets or (
        suite.QUICK_DATASETS if args.quick else suite.DEFAULT_DATASETS
    )
    unknown = [d for d in dataset_names if d not in suite.DATASET_NAMES]
    if unknown:
        raise SystemExit(f"Unknown data set(s) {unknown}; choose from {list(suite.DATASET_NAMES)}.")

    datasets, skipped = [], {}
    for name in dataset_names:
        try:
            datasets.append(suite.load(name, args.quick, args.seed, args.data_home, args.download))
        except suite.DatasetUnavailable as exc:
            skipped[name] = str(exc)
            print(f"[skip] {exc}", file=sys.stderr)

    tasks = []
    for ds in datasets:
        folds = stratified_folds(ds.X, ds.y, n_splits=N_SPLITS, seed=args.seed)
        for m in methods:
            if suite.applicable(m, ds):
                tasks.append(("run", m.name, ds, folds))
    if args.scaling:
        scaling = [m for m in methods if m.name in SCALING_METHODS]
        if args.quick:
            scaling = [m for m in scaling if m.name in ("NCA", "scikit-learn NCA")]
        if scaling:
            Xd, yd = suite.load_dataset("digits")
            for n in scaling_sizes(args.quick):
                for m in scaling:
                    tasks.append(("scaling", m.name, (Xd, yd), n))

    from joblib import Parallel, delayed, effective_n_jobs

    n_jobs = effective_n_jobs(args.n_jobs)
    results = {"run": [], "scaling": []}
    # Biggest data first, so parallel workers do not end on one long run.
    tasks.sort(key=lambda t: -_task_size(t))
    with _progress(len(tasks), args.no_progress) as bar:
        gen = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_task)(*t, args.seed, args.quick) for t in tasks
        )
        for kind, row in gen:
            results[kind].append(row)
            bar.set_postfix_str(f"done {row.get('dataset', 'scaling')}/{row['method']}"[:45])
            bar.update()

    order = {
        (d.name, m.name): i for i, (d, m) in enumerate((d, m) for d in datasets for m in methods)
    }
    rows = sorted(results["run"], key=lambda r: order[(r["dataset"], r["method"])])
    add_ratios(rows)
    m_order = {m.name: i for i, m in enumerate(methods)}
    scaling_rows = sorted(results["scaling"], key=lambda r: (m_order[r["method"]], r["n"]))

    notes = suite.notes(args.quick)
    if args.quick:
        notes.insert(
            0, "--quick: subsampled data and few iterations; numbers are a smoke test, not results."
        )
    for d in datasets:
        if d.note:
            notes.append(f"{d.name}: {d.note} (prepared in {d.prep_time:.1f} s).")
    failed = [r for r in rows + scaling_rows if r["status"].startswith("failed")]
    for r in rows:
        if r["status"].startswith("not run"):
            notes.append(f"{r['dataset']} / {r['method']}: {r['status']}")
    for r in failed:
        notes.append(f"{r.get('dataset', 'scaling')} / {r['method']}: {r['status']}")
    for name, why in skipped.items():
        notes.append(f"skipped {name}: {why}")

    args.out.mkdir(parents=True, exist_ok=True)
    md = table(rows)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = {
        "date": stamp,
        "machine": machine(),
        "seed": args.seed,
        "quick": args.quick,
        "n_jobs": n_jobs,
        "n_splits": N_SPLITS,
        "datasets": [d.name for d in datasets],
        "methods": [m.name for m in methods],
        "settings": suite.settings(args.quick),
    }

    plot_paths = []
    if args.plots:
        from . import plots

        plot_paths.append(plots.error_by_method(rows, args.out / "error_by_method.png"))
        if scaling_rows:
            plot_paths.append(plots.fit_time_vs_n(scaling_rows, args.out / "fit_time_vs_n.png"))
        plot_paths.append(
            plots.digits_embedding(
                args.out / "digits_embedding.png", quick=args.quick, seed=args.seed
            )
        )
        meta["plots"] = [str(p) for p in plot_paths]

    meta["wall_time_s"] = time.perf_counter() - t_start
    meta["load_average"] = {"start": load_start, "end": _load_average()}
    _write_csv(rows, args.out / "results.csv")
    _write_csv(scaling_rows, args.out / "fit_time_vs_n.csv")
    with open(args.out / "results.json", "w") as f:
        json.dump(
            {
                "meta": meta,
                "rows": rows,
                "scaling": scaling_rows,
                "skipped": skipped,
                "notes": notes,
            },
            f,
            indent=1,
        )
    text = (
        f"{md}\n\nMachine: {meta['machine']}. Date: {stamp}. Seed {args.seed}, "
        f"{N_SPLITS} stratified folds, {n_jobs} run(s) at a time"
        + (" (concurrent runs share the CPU, which inflates fit times)" if n_jobs > 1 else "")
        + f", wall time {meta['wall_time_s']:.0f} s"
        + _load_note(meta["load_average"], n_jobs)
        + ".\n\n"
        + _versus_euclidean_section(rows)
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )
    (args.out / "results.md").write_text(text)
    print(text)
    if args.update_figures:
        _update_figures(args.out, text, meta)
    print(f"Results in {args.out}", file=sys.stderr)
    ours_failed = [r for r in failed if r["family"] != "peer"]
    if ours_failed:
        print(
            f"{len(ours_failed)} skmetric/baseline run(s) failed; see the notes.", file=sys.stderr
        )
        return 1
    return 0


def _load_average():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def _load_note(load, n_jobs):
    """Say when other processes shared the CPU: timings are then inflated."""
    if load["start"] is None:
        return ""
    busy = load["start"] > 0.5 or load["end"] > n_jobs + 0.5
    return f"; 1-min load average {load['start']} at start, {load['end']} at the end" + (
        " (other processes were using the CPU: timings were taken under load)" if busy else ""
    )


def _update_figures(out, text, meta):
    import shutil

    FIGURES.mkdir(exist_ok=True)
    shutil.copyfile(out / "error_by_method.png", FIGURES / "benchmark_errors.png")
    header = (
        "# Latest benchmark table\n\n"
        f"`python -m benchmarks` (`make bench`), taken {meta['date']} on {meta['machine']}. "
        "Regenerate with `python -m benchmarks --update-figures`; the plot is "
        "[benchmark_errors.png](benchmark_errors.png).\n\n"
    )
    (FIGURES / "latest_table.md").write_text(header + text)
    print(
        f"Updated {FIGURES / 'benchmark_errors.png'} and {FIGURES / 'latest_table.md'}",
        file=sys.stderr,
    )


def _write_csv(rows, path):
    import csv

    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys and k not in ("errors", "fit_times", "traceback")]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


if __name__ == "__main__":
    sys.exit(main())
