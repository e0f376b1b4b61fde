"""The one command line and the one writer of every benchmark script.

:func:`parser` gives every script ``--quick``, ``--seed`` and ``--out``; it
imports nothing heavy, so ``--help`` answers at once (scripts parse their
arguments before importing torch or the learners). :func:`write` puts rows
(:mod:`benchmarks.runner`'s schema) into ``<out>/<stem>.csv`` and
``<stem>.json``, and a text into ``<stem>.md``; :func:`markdown_table`
formats any list of dicts.
"""

import argparse
import csv
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = Path(__file__).resolve().parent / "figures"


def parser(prog, doc, quick="smoke run: small data, few iterations"):
    """An ArgumentParser with the options every benchmark script has."""
    p = argparse.ArgumentParser(prog=prog, description=doc.strip().split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--seed", type=int, default=0, help="seed of folds, pairs and learners")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    return p


def markdown_table(rows, columns=None):
    """A markdown table from a list of dicts (columns: given, or every key in order)."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def write_csv(rows, path):
    """Rows as CSV: the union of their keys, lists and tracebacks left out."""
    keys = list(dict.fromkeys(k for r in rows for k in r if not isinstance(r[k], (list, dict))))
    keys = [k for k in keys if k != "traceback"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def write(out, stem, rows, text=None, **extra):
    """``<stem>.csv`` (rows), ``<stem>.json`` (rows and ``extra``) and ``<stem>.md`` (text)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / f"{stem}.csv")
    with open(out / f"{stem}.json", "w") as f:
        json.dump({**extra, "rows": rows}, f, indent=1, default=_jsonable)
    paths = [out / f"{stem}.csv", out / f"{stem}.json"]
    if text is not None:
        (out / f"{stem}.md").write_text(text)
        paths.append(out / f"{stem}.md")
    return paths


def _jsonable(v):
    import numpy as np

    return v.tolist() if isinstance(v, np.ndarray) else v.item() if hasattr(v, "item") else str(v)


def pivot(summary, values=("error_mean", "fit_time_s"), labels=("err %", "fit s")):
    """One row per data set, a column per (method, value): scripts' comparison tables.

    Adds, for every skmetric method whose peer is there, ``speed-up vs <peer>``
    (peer fit time / ours).
    """
    out = {}
    ok = {(r["dataset"], r["method"]): r for r in summary if r["status"] == "ok"}
    for (ds, method), r in ok.items():
        row = out.setdefault(ds, {"dataset": ds})
        for v, label in zip(values, labels):
            row[f"{method} {label}"] = r[v]
    for (ds, method), r in ok.items():
        if r["kind"] == "peer" and (ds, r["peer_of"]) in ok:
            ours = ok[(ds, r["peer_of"])]
            out[ds][f"speed-up vs {method}"] = r["fit_time_s"] / ours["fit_time_s"]
    return list(out.values())


def machine():
    """This machine in words (CPU cores, GPU, Python)."""
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU (torch not installed)"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, "
        f"Python {platform.python_version()}"
    )


def load_average():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def load_note(load, n_jobs):
    """Say when other processes shared the CPU: timings are then inflated."""
    if load["start"] is None:
        return ""
    busy = load["start"] > 0.5 or load["end"] > n_jobs + 0.5
    return f"; 1-min load average {load['start']} at start, {load['end']} at the end" + (
        " (other processes were using the CPU: timings were taken under load)" if busy else ""
    )


# ------------------------ the main run's tables ---------------------------- #
def table(summary):
    """The README's table: one line per data set and method."""
    out = []
    for r in summary:
        ok = r["status"] == "ok"
        out.append(
            {
                "data set": r["dataset"],
                "n x d": f"{r['n']} x {r['d']}",
                "method": r["method"],
                "kind": r["kind"],
                "kNN error %": (
                    f"{r['error_mean']:.2f} ± {r['error_std']:.2f}"
                    if ok
                    else r["status"].split(":")[0]
                ),
                "fit time (s)": f"{r['fit_time_s']:.3g}" if ok else "",
                "peer": r.get("compared_with") or "",
                "time ratio": f"{r['time_ratio']:.2f}" if r.get("time_ratio") is not None else "",
            }
        )
    return markdown_table(out)


def versus_euclidean(summary):
    """Markdown matrix: each method's mean kNN error per data set, marked against
    Euclidean kNN on the same folds (+ lower error, - higher, = within 0.05 points)."""
    ok = [r for r in summary if r["status"] == "ok"]
    datasets = list(dict.fromkeys(r["dataset"] for r in summary))
    base = {r["dataset"]: r["error_mean"] for r in ok if r["method"] == "Euclidean kNN"}
    if not base:  # Euclidean kNN filtered out: nothing to compare with
        return ""
    methods = list(dict.fromkeys(r["method"] for r in summary if r["method"] != "Euclidean kNN"))
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


def main_text(summary, meta, notes):
    """results.md of ``python -m benchmarks``: table, machine, versus Euclidean, notes."""
    n_jobs = meta["n_jobs"]
    matrix = versus_euclidean(summary)
    return (
        f"{table(summary)}\n\nMachine: {meta['machine']}. Date: {meta['date']}. "
        f"Seed {meta['seed']}, {meta['n_splits']} stratified folds, {n_jobs} run(s) at a time"
        + (" (concurrent runs share the CPU, which inflates fit times)" if n_jobs > 1 else "")
        + f", wall time {meta['wall_time_s']:.0f} s"
        + load_note(meta["load_average"], n_jobs)
        + ".\n\n"
        + (
            "Against Euclidean kNN on the same folds (mean kNN error %; + lower, - higher, "
            "= within 0.05 points):\n\n" + matrix + "\n\n"
            if matrix
            else ""
        )
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )


def update_figures(out, text, meta):
    """Copy the error plot and the table into benchmarks/figures (the README's)."""
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
    return [FIGURES / "benchmark_errors.png", FIGURES / "latest_table.md"]
