"""Unseen classes: does a learned metric help on classes it never saw in training?

Every vector method of the registry (the baselines, the classic learners and
the deep ones) runs under one protocol. The classes of each data set are
split into folds; each fold is held out once: the scaler (StandardScaler)
and the method are fitted on the other classes only, and the held-out
classes are then embedded and scored:

* N-way one-shot accuracy (Koch et al., 2015) on a fixed set of episodes per
  fold, drawn once from the held-out labels and identical for every method
  (each row records a digest of its episodes; a method scored on other
  episodes stops the run);
* mAP@R and precision@1 of leave-one-out retrieval within the held-out
  images (Musgrave et al., 2020).

Each figure sits beside the same figure of the raw features (Euclidean
distance after the same scaling, the registry's "Euclidean kNN") on the same
episodes and queries, and the difference ("delta") is what the method adds.

Data sets (all offline):

* ``digits``: scikit-learn's 8x8 digits, 64 pixels; the ten classes in three
  class-disjoint folds (:class:`skmetric.model_selection.ClassDisjointKFold`),
  3-way episodes.
* ``digits_cnn``: the 256-d features of a small CNN pretrained on digits 0-4
  (:mod:`benchmarks.transfer`), on digits 5-9 only (the CNN never saw them);
  two class folds, 2-way episodes.
* ``font_glyphs``: letters drawn from fonts
  (:func:`skmetric.datasets.make_font_glyphs`, 8x8, the digits' format) from
  six scripts (Latin, Greek, Cyrillic, Georgian, Armenian, Lao; the first word
  of each letter's Unicode name); a fixed number of letters per script, and
  each script is held out once (train on the five others), 10-way episodes.

Each method uses its estimator's defaults, with the registry's caps (the
main benchmark's settings). Writes ``unseen_<quick|full>.csv`` / ``.json`` /
``.md`` (per fold) and ``unseen_<quick|full>_summary.csv`` into ``--out``, and
the plot ``unseen_delta.png`` (a full run: also into benchmarks/figures as
``unseen_delta.png`` and ``unseen_table.md``)::

    python -m benchmarks.bench_unseen --quick           # smoke run, about a minute
    python -m benchmarks.bench_unseen --datasets digits --methods LMNN NCA
    python -m benchmarks --unseen                       # after the main run
"""

import sys
import time
from dataclasses import dataclass, field

from .report import FIGURES, parser

DATASETS = ("digits", "digits_cnn", "font_glyphs")
RAW = "Euclidean kNN"  # the registry's raw-feature baseline (None between scaler and 1-NN)
RAW_LABEL = "raw features"
# Registry methods run by default besides the default vector methods of the main table.
EXTRA = ("SDML", "LSML", "SCML", "DeepMetricLearner (triplet)",
         "DeepMetricLearner (proxy_anchor)")
MAX_WAY = 10
SCRIPTS = ("LATIN", "GREEK", "CYRILLIC", "GEORGIAN", "ARMENIAN", "LAO")
# Letters per script and drawings per letter of the glyph data set.
GLYPHS = dict(letters=20, n_per_class=10)
GLYPHS_QUICK = dict(letters=6, n_per_class=5)
N_EPISODES = 1000
N_EPISODES_QUICK = 200
METRICS = (("one_shot_acc", "one-shot acc"), ("map_at_r", "mAP@R"), ("p_at_1", "P@1"))


@dataclass
class Fold:
    """One held-out fold: training and test indices, and what is held out."""

    train: object
    test: object
    held_out: str  # the held-out classes (or script) in words


@dataclass
class UnseenData:
    """Feature vectors, labels and their class-disjoint folds."""

    name: str
    X: object
    y: object
    folds: list
    n_way: int
    note: str = ""
    class_names: dict = field(default_factory=dict)


# --------------------------------- the data -------------------------------- #
def class_folds(y, n_splits, seed, names=None):
    """:class:`ClassDisjointKFold` folds as :class:`Fold` (held-out classes named)."""
    import numpy as np

    from skmetric.model_selection import ClassDisjointKFold

    folds = []
    for train, test in ClassDisjointKFold(n_splits, random_state=seed).split(y, y):
        held = np.unique(y[test])
        label = ",".join(str(names.get(c, c) if names else c) for c in held)
        folds.append(Fold(train, test, label))
    return folds


def group_folds(y, class_group):
    """One fold per group of classes (e.g. a script): that group's samples held out."""
    import numpy as np

    groups = np.array([class_group[c] for c in y])
    return [Fold(np.flatnonzero(groups != g), np.flatnonzero(groups == g), g)
            for g in dict.fromkeys(class_group[c] for c in np.unique(y))]


def script_of(char):
    """The script of a letter: the first word of its Unicode name (LATIN, GREEK, ...)."""
    import unicodedata

    return unicodedata.name(char, "UNKNOWN").split()[0]


def font_glyphs(quick=False, seed=0, scripts=SCRIPTS, letters=None, n_per_class=None):
    """Glyph vectors of ``letters`` random letters of each script, and the script folds."""
    import numpy as np

    from skmetric.datasets import make_font_glyphs

    cfg = GLYPHS_QUICK if quick else GLYPHS
    letters = letters or cfg["letters"]
    n_per_class = n_per_class or cfg["n_per_class"]
    X, y, chars = make_font_glyphs(n_per_class=n_per_class, random_state=seed,
                                   return_characters=True)
    rng = np.random.RandomState(seed)
    keep = []
    for s in scripts:
        members = [c for c, ch in enumerate(chars) if script_of(ch) == s]
        if len(members) < letters:
            raise ValueError(f"Script {s} has {len(members)} letters; {letters} are needed.")
        keep += sorted(rng.choice(members, letters, replace=False).tolist())
    # Relabel the kept letters 0..n-1, in script order.
    mask = np.isin(y, keep)
    new = {c: i for i, c in enumerate(keep)}
    X, y = X[mask].reshape(mask.sum(), -1).astype(np.float64), np.array([new[c] for c in y[mask]])
    kept = [chars[c] for c in keep]
    return X, y, {c: script_of(ch) for c, ch in enumerate(kept)}, kept


def load(name, quick=False, seed=0):
    """An :class:`UnseenData` by name."""
    import numpy as np

    from . import data

    if name == "digits":
        X, y = data.load_sklearn("digits")
        idx = data.stratified_subsample(y, 300 if quick else None, seed)
        X, y = X[idx].astype(np.float64), y[idx]
        return UnseenData(name, X, y, class_folds(y, 3, seed), n_way=3,
                          note="64 pixels; ten digits in 3 class folds")
    if name == "digits_cnn":
        ds = data.load("digits_cnn", quick, seed)
        return UnseenData(name, ds.X, ds.y, class_folds(ds.y, 2, seed), n_way=2,
                          note=f"{ds.note}; 2 class folds of the CNN's unseen digits")
    if name == "font_glyphs":
        X, y, script, chars = font_glyphs(quick, seed)
        n_letters = len(chars) // len(SCRIPTS)
        return UnseenData(name, X, y, group_folds(y, script), n_way=min(MAX_WAY, n_letters),
                          note=f"{n_letters} letters of each of {len(SCRIPTS)} scripts, "
                          f"{len(y) // len(chars)} drawings each; a script held out per fold",
                          class_names=dict(enumerate(chars)))
    raise ValueError(f"Unknown data set {name!r}; choose from {list(DATASETS)}.")


# ------------------------------- the protocol ------------------------------ #
def episode_draw(ds, fold_index, seed, quick):
    """The keyword arguments that fix the fold's episodes (the same for every method)."""
    return dict(n_way=ds.n_way, n_episodes=N_EPISODES_QUICK if quick else N_EPISODES,
                random_state=seed + fold_index)


def episodes(ds, fold_index, seed, quick):
    """The fold's fixed episodes (indices into the fold's test samples)."""
    from skmetric.evaluation import one_shot_episodes

    y_test = ds.y[ds.folds[fold_index].test]
    return one_shot_episodes(y_test, **episode_draw(ds, fold_index, seed, quick))


def score_embedding(Z, y, ds, fold_index, seed, quick):
    """One-shot accuracy on the fold's episodes, mAP@R and P@1 of held-out embeddings ``Z``."""
    from skmetric import evaluation as ev

    from .bench_oneshot import episodes_digest

    acc, ep = ev.one_shot_accuracy(None, Z, y, **episode_draw(ds, fold_index, seed, quick),
                                   return_episodes=True)
    rep = ev.retrieval_report(Z, y, ks=(1,))
    return {"one_shot_acc": acc, "map_at_r": rep["mAP@R"], "p_at_1": rep["precision@1"],
            "episodes": episodes_digest(ep)}


def embedder(method, ds, train, seed, quick):
    """The method's estimator for a fold (None: the raw features)."""
    import numpy as np

    from . import registry

    y = ds.y[train]
    ctx = registry.Context(seed=seed, quick=quick, n_classes=len(np.unique(y)),
                           n_features=ds.X.shape[1], n_train=len(train),
                           settings=registry.settings(quick))
    return method.build(ctx)


def evaluate(method, ds, seed=0, quick=False):
    """Fit ``method`` on the training classes of each fold, score it on the held-out ones.

    A row per fold (the runner's schema plus the protocol's columns); a
    failure, or a method without an embedding, is one row with the reason.
    """
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from . import registry, runner

    size = {"dataset": ds.name, "n": int(len(ds.y)), "d": int(ds.X.shape[1]),
            "protocol": "unseen", "n_way": ds.n_way}
    if method.data != "vectors" or method.classifier:
        return [runner.make_row(method, **size, status="not run: no embedding of new classes "
                                "(a classifier, or not a vector method)")]
    rows = []
    try:
        for k, fold in enumerate(ds.folds):
            train, test = fold.train, fold.test
            if np.isin(ds.y[test], ds.y[train]).any():
                raise AssertionError(f"fold {k}: a held-out class is in the training set")
            scaler = StandardScaler().fit(ds.X[train])
            Xtr, Xte = scaler.transform(ds.X[train]), scaler.transform(ds.X[test])
            est = embedder(method, ds, train, seed, quick)
            fit = {"fit_time_s": 0.0, "cpu_time_s": 0.0}
            if est is not None:
                fit = runner.timed_fit(est, Xtr, ds.y[train])
                Xte = np.asarray(est.transform(Xte), dtype=np.float64)
            scores = score_embedding(Xte, ds.y[test], ds, k, seed, quick)
            rows.append(runner.make_row(
                method, **size, fold=k, held_out=fold.held_out,
                n_train_classes=int(len(np.unique(ds.y[train]))),
                n_test_classes=int(len(np.unique(ds.y[test]))),
                n_episodes=N_EPISODES_QUICK if quick else N_EPISODES, **scores, **fit, status="ok"))
        return rows
    except registry.MissingMethod:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing method is a result
        return [runner.make_row(method, **size, **runner.failure(exc))]


def add_raw(rows):
    """Put the raw features' figures of the same fold beside every row, and the deltas.

    Raises RuntimeError when a method was scored on episodes other than raw's.
    """
    raw = {(r["dataset"], r["fold"]): r for r in rows if r["method"] == RAW and r["status"] == "ok"}
    for r in rows:
        if r["status"] != "ok":
            continue
        base = raw.get((r["dataset"], r["fold"]))
        if base is None:
            continue
        if r["episodes"] != base["episodes"]:
            raise RuntimeError(f"{r['dataset']} fold {r['fold']}: {r['method']} was scored on "
                               "other episodes than the raw features")
        for key, _ in METRICS:
            r[f"raw_{key}"] = base[key]
            r[f"delta_{key}"] = r[key] - base[key]
    return rows


def summarize(rows):
    """One row per (data set, method): means over folds, deltas, folds that beat raw."""
    import numpy as np

    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    out = []
    for (ds, method), rs in groups.items():
        s = {"dataset": ds, "method": method, "kind": rs[0]["kind"], "family": rs[0]["family"],
             "n_way": rs[0]["n_way"], "status": rs[0]["status"]}
        ok = [r for r in rs if r["status"] == "ok"]
        if ok:
            s["folds"] = len(ok)
            for key, _ in METRICS:
                s[key] = float(np.mean([r[key] for r in ok]))
                if all(f"raw_{key}" in r for r in ok):
                    s[f"raw_{key}"] = float(np.mean([r[f"raw_{key}"] for r in ok]))
                    s[f"delta_{key}"] = float(np.mean([r[f"delta_{key}"] for r in ok]))
                    s[f"wins_{key}"] = int(sum(r[f"delta_{key}"] > 0 for r in ok))
                    s[f"deltas_{key}"] = [float(r[f"delta_{key}"]) for r in ok]
            s["fit_time_s"] = float(np.mean([r["fit_time_s"] for r in ok]))
            s["cpu_time_s"] = float(np.mean([r["cpu_time_s"] for r in ok]))
        out.append(s)
    return out


# -------------------------------- the tables ------------------------------- #
FOLD_COLUMNS = ("dataset", "method", "fold", "held out", "one-shot acc", "mAP@R", "P@1",
                "raw one-shot acc", "raw mAP@R", "raw P@1", "Δ one-shot", "Δ mAP@R", "Δ P@1",
                "fit time (s)")
SUMMARY_COLUMNS = ("dataset", "method", "N-way", "one-shot acc", "Δ one-shot", "mAP@R", "Δ mAP@R",
                   "P@1", "Δ P@1", "beats raw (one-shot)", "beats raw (mAP@R)", "fit time (s)")


def _f(v, signed=False):
    return "" if v is None else (f"{v:+.3f}" if signed else f"{v:.3f}")


def fold_table_rows(rows):
    """The per-fold table: a row per (data set, method, fold)."""
    out = []
    for r in rows:
        if r["status"] != "ok":
            out.append({"dataset": r["dataset"], "method": r["method"],
                        "held out": r["status"].split(":")[0]})
            continue
        out.append({"dataset": r["dataset"], "method": r["method"], "fold": r["fold"],
                    "held out": r["held_out"],
                    **{label: _f(r[key]) for key, label in METRICS},
                    **{f"raw {label}": _f(r.get(f"raw_{key}")) for key, label in METRICS},
                    **{"Δ " + label.replace(" acc", ""): _f(r.get(f"delta_{key}"), True)
                       for key, label in METRICS},
                    "fit time (s)": f"{r['fit_time_s']:.3g}"})
    return out


def summary_table_rows(summary):
    """The summary table: means over folds and the raw features' row first per data set."""
    out = []
    for s in summary:
        if s["status"] != "ok":
            out.append({"dataset": s["dataset"], "method": s["method"],
                        "one-shot acc": s["status"].split(":")[0]})
            continue
        name = f"{RAW_LABEL} ({RAW})" if s["method"] == RAW else s["method"]
        row = {"dataset": s["dataset"], "method": name, "N-way": s["n_way"],
               "fit time (s)": f"{s['fit_time_s']:.3g}"}
        for key, label in METRICS:
            row[label] = _f(s[key])
            if s["method"] != RAW and f"delta_{key}" in s:
                row["Δ " + label.replace(" acc", "")] = _f(s[f"delta_{key}"], True)
        for key, label in METRICS[:2]:
            if s["method"] != RAW and f"wins_{key}" in s:
                row[f"beats raw ({label.replace(' acc', '')})"] = f"{s[f'wins_{key}']}/{s['folds']}"
        out.append(row)
    return out


def below_raw(summary, key="one_shot_acc"):
    """(data set, method, delta) of every method whose mean is below raw on ``key``."""
    return [(s["dataset"], s["method"], s[f"delta_{key}"]) for s in summary
            if s["status"] == "ok" and s["method"] != RAW and s.get(f"delta_{key}", 0) < 0]


def text(rows, summary, meta, datasets):
    """The markdown report: summary, notes, per-fold table."""
    from .report import load_note, markdown_table

    lines = [markdown_table(summary_table_rows(summary), list(SUMMARY_COLUMNS)), ""]
    lines.append(
        f"Unseen classes: each method (and StandardScaler) is fitted on the training classes "
        f"of a fold and scored on its held-out classes, beside the raw features (Euclidean "
        f"after the same scaling) on the same {meta['n_episodes']} episodes per fold and the "
        f"same retrieval queries; Δ = method − raw, mean over folds; 'beats raw': folds where "
        f"the method's figure is above raw's. mAP@R and P@1: leave-one-out retrieval within "
        f"the held-out samples. Machine: {meta['machine']}. Date: {meta['date']}. Seed "
        f"{meta['seed']}, wall time {meta['wall_time_s']:.0f} s, {meta['n_jobs']} run(s) at a "
        f"time" + load_note(meta["load_average"], meta["n_jobs"]) + ".")
    lines.append("")
    if meta["quick"]:
        lines.append("- --quick: tiny data and few iterations; numbers are a smoke test, "
                     "not results.")
    lines += [f"- {d.name}: {d.note}; {d.n_way}-way episodes; folds hold out: "
              + "; ".join(f.held_out for f in d.folds) + "." for d in datasets]
    below = below_raw(summary)
    if below:
        lines.append("- Below raw on one-shot accuracy (mean over folds): " + "; ".join(
            f"{m} on {d} ({v:+.3f})" for d, m, v in below) + ".")
    from .runner import warning_lines

    lines += [f"- warnings: {w}" for w in warning_lines([r for r in rows if "warnings" in r])]
    lines += ["", "Per fold:", "", markdown_table(fold_table_rows(rows), list(FOLD_COLUMNS))]
    return "\n".join(lines) + "\n"


# -------------------------------- the script ------------------------------- #
def default_methods():
    """The default vector methods of the main table (not the peers), plus :data:`EXTRA`."""
    from . import registry

    main = [m.name for m in registry.select(data=("vectors",), peers=False)]
    return [m for m in registry.METHODS
            if (m.name in main or m.name in EXTRA) and not m.classifier]


def select_methods(names=None, peers=False):
    """Registry methods by name (raw always included), or the defaults."""
    from . import registry

    if not names:
        methods = default_methods()
        if peers:
            chosen = {m.name for m in methods}
            methods = [m for m in registry.METHODS
                       if m in methods or (m.peer_of in chosen and m.data == "vectors")]
    else:
        methods = registry.select([RAW, *names], peers=peers, data=("vectors",))
    registry.check_importable(methods)
    return methods


def run(datasets, methods, seed=0, quick=False, n_jobs=1, progress=False):
    """Every method on every data set's folds; the rows, raw figures added."""
    from . import runner

    tasks = [(len(ds.y) * ds.X.shape[1], evaluate, m.name, ds, seed, quick)
             for ds in datasets for m in methods]
    rows = runner.execute(tasks, n_jobs, progress)
    d_order = {d.name: i for i, d in enumerate(datasets)}
    m_order = {m.name: i for i, m in enumerate(methods)}
    rows.sort(key=lambda r: (d_order[r["dataset"]], m_order[r["method"]], r["fold"] or 0))
    return add_raw(rows)


def parse_args(argv=None):
    p = parser("python -m benchmarks.bench_unseen", __doc__)
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="registry methods (default: every vector method; raw always runs)")
    p.add_argument("--peers", action="store_true", help="also the metric-learn peers")
    p.add_argument("--n-jobs", type=int, default=-1, help="runs in parallel (default: all cores)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--update-figures", action="store_true",
                   help=f"copy the plot and the table into {FIGURES} (not with --quick)")
    args = p.parse_args(argv)
    if args.update_figures and args.quick:
        p.error("--update-figures needs a full run, not --quick.")
    return args


def main(argv=None):
    args = parse_args(argv)
    from datetime import datetime, timezone

    from joblib import effective_n_jobs

    from . import plots, registry, report

    t0, load0 = time.perf_counter(), report.load_average()
    try:
        methods = select_methods(args.methods, args.peers)
    except (ValueError, registry.MissingMethod) as exc:
        raise SystemExit(f"error: {exc}") from exc
    datasets = [load(name, args.quick, args.seed) for name in args.datasets]
    rows = run(datasets, methods, args.seed, args.quick, args.n_jobs, not args.no_progress)
    summary = summarize(rows)
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": report.machine(), "seed": args.seed, "quick": args.quick,
            "n_jobs": effective_n_jobs(args.n_jobs),
            "n_episodes": N_EPISODES_QUICK if args.quick else N_EPISODES,
            "datasets": {d.name: {"n": len(d.y), "d": d.X.shape[1], "n_way": d.n_way,
                                  "folds": [f.held_out for f in d.folds]} for d in datasets},
            "methods": [m.name for m in methods], "settings": registry.settings(args.quick),
            "wall_time_s": time.perf_counter() - t0,
            "load_average": {"start": load0, "end": report.load_average()}}
    stem = f"unseen_{'quick' if args.quick else 'full'}"
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    png = plots.unseen_delta(summary, out / "unseen_delta.png",
                             title=f"Unseen classes: method − raw features, per fold (dots) and "
                             f"mean (bar){' [--quick]' if args.quick else ''}")
    md = text(rows, summary, meta, datasets)
    report.write(out, stem, rows, md, meta=meta, summary=summary)
    report.write_csv(summary, out / f"{stem}_summary.csv")
    print(md)
    if args.update_figures:
        import shutil

        FIGURES.mkdir(exist_ok=True)
        shutil.copyfile(png, FIGURES / "unseen_delta.png")
        (FIGURES / "unseen_table.md").write_text(
            "# Unseen-class benchmark\n\n`python -m benchmarks.bench_unseen --update-figures`, "
            f"taken {meta['date']}; plot: [unseen_delta.png](unseen_delta.png).\n\n" + md)
    print(f"Results in {out} ({stem}.md, {png.name})", file=sys.stderr)
    failed = [s for s in summary if s["status"].startswith("failed") and s["kind"] != "peer"]
    if failed:
        print(f"{len(failed)} method(s) failed: " + ", ".join(
            f"{s['dataset']}/{s['method']}" for s in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
