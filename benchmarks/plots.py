"""PNG plots of the benchmark: error per method and data set, fit time against
n, and a 2-D embedding of digits before and after learning a metric."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

KIND_COLOURS = {"baseline": "#9e9e9e", "skmetric": "#1f77b4", "peer": "#ff7f0e"}


def error_by_method(rows, path):
    """One panel per data set: k-NN error (mean +- std over folds) per method."""
    path = Path(path)
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(
        1,
        max(len(datasets), 1),
        figsize=(2.6 * max(len(datasets), 1) + 2.2, 0.28 * len(methods) + 1.6),
        sharey=True,
        squeeze=False,
    )
    ypos = {m: i for i, m in enumerate(methods)}
    for ax, ds in zip(axes[0], datasets):
        for r in rows:
            if r["dataset"] != ds:
                continue
            y = ypos[r["method"]]
            if r["status"] != "ok":
                ax.text(0, y, " " + r["status"].split(":")[0], va="center", fontsize=7, color="red")
                continue
            ax.barh(
                y,
                r["error_mean"],
                xerr=r["error_std"],
                color=KIND_COLOURS[r["kind"]],
                height=0.7,
                error_kw={"elinewidth": 0.8, "capsize": 2},
            )
        ax.set_title(ds, fontsize=9)
        ax.set_xlabel("k-NN error (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(left=0)
    axes[0][0].set_yticks(range(len(methods)))
    axes[0][0].set_yticklabels(methods)
    axes[0][0].invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in KIND_COLOURS.values()]
    fig.legend(handles, list(KIND_COLOURS), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("3-NN error over 3 stratified folds (mean ± std)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fit_time_vs_n(scaling_rows, path, panels=(("fit_time_s", "fit time (s)"),),
                  xlabel="training points n (digits, 64 features)",
                  title="Fit time against n (dashed: peers)"):
    """One log-log panel per (row key, label) in ``panels`` against n, a line per method
    (a peer dashed, in its skmetric method's colour)."""
    path = Path(path)
    fig, axes = plt.subplots(1, len(panels), figsize=(3 + 4.5 * len(panels), 4.2), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, ylabel) in zip(axes[0], panels):
        colour_of, n_peers = {}, {}
        for m in dict.fromkeys(r["method"] for r in scaling_rows):
            rows = [r for r in scaling_rows if r["method"] == m and r["status"] == "ok"]
            if not rows:
                continue
            peer = rows[0]["kind"] == "peer"
            anchor = rows[0]["peer_of"] or m  # a peer shares its skmetric method's colour
            colour_of.setdefault(anchor, colours[len(colour_of) % len(colours)])
            # Several peers of one method: same colour, their own markers.
            rank = n_peers[anchor] = n_peers.get(anchor, -1) + 1 if peer else -1
            ax.plot([r["n"] for r in rows], [r[key] for r in rows], label=m,
                    marker="o" if rank < 0 else "s^vD"[rank % 4], ls="--" if peer else "-",
                    color=colour_of[anchor])
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
        ax.grid(which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def lmnn_scaling_figure(rows, path, cap_s=None):
    """The LMNN scaling figure: one row of panels per feature size (d=64; d=512), columns
    fit wall time, fit CPU time and peak RSS of the child process against n, log-log.

    ``rows``: :func:`benchmarks.bench_lmnn.scaling` rows (``features``, ``method``, ``kind``,
    ``n``, ``fit_time_s``, ``cpu_time_s``, ``peak_rss_mib``, ``rss_before_fit_mib``,
    ``status``). skmetric solid, metric-learn dashed; the real resnet18 features are single
    stars on the d=512 row; skipped or failed peer points are listed in the panel.
    """
    path = Path(path)
    star = any(r.get("features") == "resnet512" for r in rows)
    groups = [("d = 64: digits enlarged with shifts and noise", ("digits64",)),
              ("d = 512: CNN-like vectors" + (" (star: resnet18 features of digits)"
                                               if star else ""), ("cnn512", "resnet512"))]
    groups = [g for g in groups if any(r.get("features") in g[1] for r in rows)]
    cols = (("fit_time_s", "fit wall time (s)"), ("cpu_time_s", "fit CPU time (s)"),
            ("peak_rss_mib", "peak RSS of the child (MiB)"))
    fig, axes = plt.subplots(len(groups), 3, figsize=(14, 4.0 * len(groups)), squeeze=False)
    colour = {"skmetric": KIND_COLOURS["skmetric"], "peer": KIND_COLOURS["peer"]}
    for (title, feats), ax_row in zip(groups, axes):
        for key, ylabel in cols:
            ax = ax_row[[c[0] for c in cols].index(key)]
            for feat in feats:
                for kind in ("skmetric", "peer"):
                    pts = sorted((r["n"], r[key], r) for r in rows if r.get("features") == feat
                                 and r.get("kind") == kind and r.get("status") == "ok"
                                 and r.get(key) is not None)
                    if not pts:
                        continue
                    label = pts[0][2]["method"] + (" (resnet18)" if feat == "resnet512" else "")
                    style = dict(color=colour[kind], ls="--" if kind == "peer" else "-",
                                 marker="*" if feat == "resnet512" else "o",
                                 ms=12 if feat == "resnet512" else 5)
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
                    if key == "peak_rss_mib" and feat != "resnet512":
                        base = [(p[0], p[2].get("rss_before_fit_mib")) for p in pts]
                        base = [b for b in base if b[1] is not None]
                        ax.plot([b[0] for b in base], [b[1] for b in base], color=colour[kind],
                                ls=":", lw=1, label=f"{pts[0][2]['method']}: RSS before fit")
            notes = sorted({f"{r['method']} n={r['n']}: {r['status']}" for r in rows
                            if r.get("features") in feats and r.get("status") != "ok"},
                           key=lambda t: int(t.split("n=")[1].split(":")[0]))
            if notes:
                shown = notes[:1] + ([f"... and at {len(notes) - 1} larger n"]
                                     if len(notes) > 1 else [])
                ax.text(0.02, 0.98, "\n".join(shown), transform=ax.transAxes, fontsize=6.5,
                        va="top", color="#b35900")
            ax.set(xscale="log", yscale="log", xlabel="training points n", ylabel=ylabel)
            ax.grid(which="both", alpha=0.3)
        ax_row[0].set_title(title, fontsize=9, loc="left")
        ax_row[-1].legend(fontsize=7, loc="best")
    cap = f"; metric-learn skipped where its projected CPU time > {cap_s:.0f} s" if cap_s else ""
    fig.suptitle("LMNN scaling, one child process per point (k=3, peak RSS via wait4)"
                 + cap, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def digits_embedding(path, quick=False, seed=0):
    """Digits in 2-D before (PCA of the pixels) and after learning (NCA, 2 components).

    Both maps are fitted on a training half and show the held-out half, so the
    picture shows what the metric does on unseen digits.
    """
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    import skmetric

    from .runner import timed_fit

    X, y = load_digits(return_X_y=True)
    if quick:
        X, _, y, _ = train_test_split(X, y, train_size=400, stratify=y, random_state=seed)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    before = PCA(n_components=2, random_state=seed).fit(Xtr).transform(Xte)  # unsupervised
    nca = skmetric.NCA(n_components=2, max_iter=10 if quick else 100, random_state=seed)
    timed_fit(nca, Xtr, ytr)  # its convergence warning is counted, not printed
    after = nca.transform(Xte)

    from sklearn.neighbors import KNeighborsClassifier

    def knn_acc(Ztr, Zte):  # how well classes separate in each picture
        return KNeighborsClassifier(n_neighbors=3).fit(Ztr, ytr).score(Zte, yte)

    pca = PCA(n_components=2, random_state=seed).fit(Xtr)
    acc_before = knn_acc(pca.transform(Xtr), before)
    acc_after = knn_acc(nca.transform(Xtr), after)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, Z, title in (
        (axes[0], before, f"before: PCA of the pixels (3-NN acc. {acc_before:.2f})"),
        (axes[1], after, f"after: NCA, 2 components (3-NN acc. {acc_after:.2f})"),
    ):
        sc = ax.scatter(Z[:, 0], Z[:, 1], c=yte, cmap="tab10", s=8, vmin=-0.5, vmax=9.5)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
    fig.suptitle("Held-out digits in 2-D", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def image_grid(query_images, neighbour_images, correct, path, row_titles=None, title=None,
               col_titles=None):
    """A grid: one row per query, the query then its neighbours (green frame: the query's
    class, red: another; ``col_titles`` name the neighbour columns, default #1..#k).

    ``neighbour_images`` is (n_rows, k, H, W[, C]); ``correct`` is (n_rows, k) booleans.
    """
    path = Path(path)
    n_rows, k = len(neighbour_images), neighbour_images.shape[1]
    fig, axes = plt.subplots(
        n_rows, k + 1, figsize=(1.1 * (k + 1), 1.15 * n_rows + 0.4), squeeze=False
    )
    for i in range(n_rows):
        cells = [(query_images[i], None)] + [
            (neighbour_images[i, j], bool(correct[i, j])) for j in range(k)
        ]
        for j, (img, ok) in enumerate(cells):
            ax = axes[i, j]
            ax.imshow(np.squeeze(img), cmap="gray_r" if np.ndim(np.squeeze(img)) == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            colour = "black" if ok is None else ("green" if ok else "red")
            for s in ax.spines.values():
                s.set_edgecolor(colour)
                s.set_linewidth(1 if ok is None else 2.5)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=7, rotation=0, ha="right", va="center")
    axes[0, 0].set_title("query", fontsize=8)
    for j, name in enumerate(col_titles or [f"#{j}" for j in range(1, k + 1)], start=1):
        axes[0, j].set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


FAMILY_COLOURS = {"baseline": "#9e9e9e", "classic": "#1f77b4", "deep": "#d62728"}


def unseen_delta(summary, path, metrics=(("one_shot_acc", "one-shot accuracy"),
                                         ("map_at_r", "mAP@R")), raw="Euclidean kNN",
                 title="Unseen classes: method − raw features"):
    """Unseen-class benchmark: each method's figure minus the raw features', per data set.

    One panel per (metric, data set); a bar per method at its mean delta over
    the folds, a dot per fold; right of the zero line: better than raw.
    Baselines grey, classic learners blue, deep ones red; the raw features'
    own mean is in each panel's title. Methods that did not run are marked.
    """
    path = Path(path)
    datasets = list(dict.fromkeys(s["dataset"] for s in summary))
    methods = list(dict.fromkeys(s["method"] for s in summary if s["method"] != raw))
    by_key = {(s["dataset"], s["method"]): s for s in summary}
    fig, axes = plt.subplots(len(metrics), max(len(datasets), 1),
                             figsize=(3.0 * max(len(datasets), 1) + 2.6,
                                      (0.24 * len(methods) + 1.0) * len(metrics) + 0.6),
                             sharey=True, squeeze=False)
    ypos = {m: i for i, m in enumerate(methods)}
    for row, (key, label) in enumerate(metrics):
        for ax, ds in zip(axes[row], datasets):
            for m in methods:
                s, y = by_key.get((ds, m)), ypos[m]
                if s is None:
                    continue
                if s["status"] != "ok" or f"delta_{key}" not in s:
                    ax.text(0, y, " " + s["status"].split(":")[0], va="center", fontsize=6,
                            color="red")
                    continue
                colour = "#9e9e9e" if s["kind"] == "baseline" else FAMILY_COLOURS[s["family"]]
                ax.barh(y, s[f"delta_{key}"], color=colour, height=0.65, alpha=0.55)
                d = s[f"deltas_{key}"]
                ax.plot(d, np.full(len(d), y), "o", ms=2.6, color="black", alpha=0.8)
            ax.axvline(0, color="black", lw=0.8)
            base = by_key.get((ds, raw))
            raw_txt = (f" (raw {base[key]:.3f})" if base is not None and base["status"] == "ok"
                       else "")
            ax.set_title(f"{ds}{raw_txt}", fontsize=8)
            ax.set_xlabel(f"Δ {label} vs raw", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(axis="x", alpha=0.3)
        axes[row][0].set_yticks(range(len(methods)))
        axes[row][0].set_yticklabels(methods)
    axes[0][0].invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.55) for c in FAMILY_COLOURS.values()]
    handles.append(plt.Line2D([], [], ls="", marker="o", ms=3, color="black"))
    fig.legend(handles, [*FAMILY_COLOURS, "one fold"], loc="lower center", ncol=4, fontsize=8,
               frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
