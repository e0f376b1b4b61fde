"""The three kinds of transfer side by side: font glyphs -> scikit-learn digits.

Source domain: letter classes drawn from fonts in the digits' own 8x8 format
(:func:`skmetric.datasets.make_font_glyphs`, no digits among them; nothing to
resize). Target domain: the ten classes of scikit-learn's digits, of which
only ``k`` images per class are labelled (k = 1, 5, 10); every method is
scored by its accuracy on all the other digits (the same labelled/test split
for every method, 5 random draws of the labelled images per k).

Methods (each trained on the source once per run, then given the same
labelled digits):

(a) weight transfer: a small CNN (:func:`benchmarks.transfer.digits_cnn`)
    pretrained with cross-entropy to classify the glyph classes, then
    :class:`skmetric.FineTunedCNN` (its last two blocks and a new head)
    fine-tuned on the labelled digits; its own predictions.
    The same pretrained CNN frozen, 1-NN on its features (no fine-tuning).
(b) deep metric learning: :class:`skmetric.DeepMetricLearner` trained on the
    glyph classes (multi-similarity loss; bench_oneshot's source settings), its
    embedding used as is: 1-NN among the labelled digits.
(c) few-shot: :class:`skmetric.SiameseNet` trained on glyph pairs (binomial
    deviance; bench_oneshot's source settings), k-shot by the pair score: each class scores the
    the class of the labelled image most similar to the query (the
    loss's pair score, the cosine of the embeddings).
(d) from scratch: the same CNN, randomly initialised, trained with
    cross-entropy on the labelled digits only (FineTunedCNN, all blocks).
(e) raw pixels: 1-NN among the labelled digits.

Writes ``transfer_kinds_<quick|full>.csv`` / ``.json`` / ``.md`` and
``transfer_kinds_<quick|full>.png`` (accuracy against k, one line per method)
into ``--out``; a full run also benchmarks/figures/transfer_kinds.png.
"""

import sys
import time

from .report import parser

SHOTS = (1, 5, 10)
N_DRAWS = 5
# The source: all ~1,600 glyph classes with 20 images each (quick: a handful).
GLYPHS = dict(n_per_class=20, random_state=0)
GLYPHS_QUICK = dict(n_per_class=4, max_classes=12, random_state=0)
# Source training of each model (the rest are the estimators' defaults).
CE_SOURCE = dict(epochs=5, batch_size=256, learning_rate=3e-3)
CE_SOURCE_QUICK = dict(epochs=1, batch_size=32)
# The SiameseNet and DeepMetricLearner on the glyphs: bench_oneshot's source-domain settings.
SIAMESE_SOURCE_QUICK = dict(n_pairs=200, max_epochs=1, batch_size=32)
DML_SOURCE_QUICK = dict(batch_size=16, max_epochs=1)
# Target training (a few labelled digits): fine-tuning and from scratch.
FINE_TUNE = dict(n_trainable_blocks=2, lr=1e-3, max_epochs=60)
SCRATCH = dict(n_trainable_blocks=None, lr=1e-3, max_epochs=60)
TARGET_QUICK = dict(max_epochs=2)

RAW = "(e) raw pixels, 1-NN"
SCRATCH_METHOD = "(d) CNN from scratch on the labelled digits"
FINE_TUNED = "(a) weight transfer: glyph-pretrained CNN, fine-tuned"
FROZEN = "(a') glyph-pretrained CNN, frozen, 1-NN"
DML = "(b) metric learning: DeepMetricLearner on glyphs, 1-NN"
SIAMESE = "(c) few-shot: SiameseNet on glyphs, k-shot pair score"
METHODS = (FINE_TUNED, FROZEN, DML, SIAMESE, SCRATCH_METHOD, RAW)


# ------------------------------------------------------------ the data
def labelled_split(y, shots, random_state):
    """Indices (labelled, test): ``shots`` images of each class drawn at random, the rest."""
    import numpy as np

    rng = np.random.RandomState(random_state)
    labelled = np.concatenate([rng.choice(np.flatnonzero(y == c), shots, replace=False)
                               for c in np.unique(y)])
    test = np.setdiff1d(np.arange(len(y)), labelled)
    return np.sort(labelled), test


def source_glyphs(quick):
    from skmetric.datasets import make_font_glyphs

    return make_font_glyphs(**(GLYPHS_QUICK if quick else GLYPHS))


# ---------------------------------------------------------- the methods
def _timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def train_sources(G, g, quick, seed):
    """The source-trained models: {'cnn', 'dml', 'siamese'} and their fit times."""
    from skmetric import DeepMetricLearner, SiameseNet

    from .transfer import pretrain_cnn

    ce = dict(CE_SOURCE, **(CE_SOURCE_QUICK if quick else {}))
    from .bench_oneshot import SOURCE_DML, SOURCE_SIAMESE

    sia = dict(SOURCE_SIAMESE, **SIAMESE_SOURCE_QUICK) if quick else SOURCE_SIAMESE
    dml = dict(SOURCE_DML, **DML_SOURCE_QUICK) if quick else SOURCE_DML
    models, times = {}, {}
    models["cnn"], times["cnn"] = _timed(pretrain_cnn, G, g, random_state=seed, **ce)
    print(f"  source CNN (cross-entropy): {times['cnn']['cpu_s']:.0f} s CPU", flush=True)
    models["dml"], times["dml"] = _timed(DeepMetricLearner(random_state=seed, device="cpu",
                                                           **dml).fit, G, g)
    print(f"  source DeepMetricLearner: {times['dml']['cpu_s']:.0f} s CPU, "
          f"best epoch {models['dml'].best_epoch_}", flush=True)
    models["siamese"], times["siamese"] = _timed(SiameseNet(random_state=seed, device="cpu",
                                                            **sia).fit, G, g)
    print(f"  source SiameseNet: {times['siamese']['cpu_s']:.0f} s CPU, "
          f"best epoch {models['siamese'].best_epoch_}", flush=True)
    return models, times


def nearest_accuracy(E_lab, y_lab, E_test, y_test):
    """1-NN accuracy (Euclidean) of the test embeddings among the labelled ones."""
    import numpy as np

    d2 = (E_test ** 2).sum(1)[:, None] - 2 * E_test @ E_lab.T + (E_lab ** 2).sum(1)[None]
    return float(np.mean(y_lab[np.argmin(d2, axis=1)] == y_test))


def cosine_accuracy(E_lab, y_lab, E_test, y_test):
    """k-shot by the pair score of binomial deviance (the cosine of the embeddings): each
    query takes the class of its most similar labelled image."""
    import numpy as np

    def unit(E):
        return E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)

    S = unit(E_test) @ unit(E_lab).T
    return float(np.mean(y_lab[np.argmax(S, axis=1)] == y_test))


def cnn_features(net, X):
    """Features of the frozen glyph CNN (its own preprocessing, as FineTunedCNN applies it)."""
    from skmetric.deep.feature_extraction import CNNFeatureExtractor

    return CNNFeatureExtractor(backbone=net, weights=None, device="cpu").fit(X).transform(X)


def fine_tuned_accuracy(backbone, params, Xl, yl, Xt, yt, quick, seed):
    from skmetric import FineTunedCNN

    kw = dict(params, **(TARGET_QUICK if quick else {}))
    clf = FineTunedCNN(backbone=backbone, weights=None, batch_size=min(32, len(yl)),
                       random_state=seed, device="cpu", **kw).fit(Xl, yl)
    return float(clf.score(Xt, yt))


def embeddings(models, X):
    """The digits as each source-trained model embeds them (computed once per run)."""
    return {FROZEN: cnn_features(models["cnn"], X), DML: models["dml"].transform(X),
            SIAMESE: models["siamese"].transform(X), RAW: X.reshape(len(X), -1)}


def evaluate_draw(models, emb, X, y, shots, draw, quick, seed):
    """Rows (one per method) of one draw of ``shots`` labelled images per class."""
    from .transfer import digits_cnn

    lab, test = labelled_split(y, shots, random_state=1000 * seed + 100 * shots + draw)
    assert not set(lab) & set(test) and len(lab) + len(test) == len(y)
    Xl, yl, Xt, yt = X[lab], y[lab], X[test], y[test]
    base = dict(shots=shots, draw=draw, n_labelled=len(lab), n_test=len(test), seed=seed)
    rows = []

    def add(method, fn, *args):
        acc, t = _timed(fn, *args)
        rows.append({**base, "method": method, "accuracy": acc, **t})

    import torch

    add(FINE_TUNED, fine_tuned_accuracy, models["cnn"], FINE_TUNE, Xl, yl, Xt, yt, quick, seed)
    for method in (FROZEN, DML):
        E = emb[method]
        add(method, nearest_accuracy, E[lab], yl, E[test], yt)
    S = emb[SIAMESE]
    add(SIAMESE, cosine_accuracy, S[lab], yl, S[test], yt)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + draw)
        fresh = digits_cnn()
    add(SCRATCH_METHOD, fine_tuned_accuracy, fresh, SCRATCH, Xl, yl, Xt, yt, quick, seed)
    R = emb[RAW]
    add(RAW, nearest_accuracy, R[lab], yl, R[test], yt)
    return rows, (lab, test)


def run(quick, seed, shots=SHOTS, n_draws=N_DRAWS):
    """Every row of the benchmark and the source fit times."""
    from skmetric.datasets import load_digits_images

    G, g = source_glyphs(quick)
    print(f"Source: {len(G)} glyph images of {g.max() + 1} classes", flush=True)
    models, times = train_sources(G, g, quick, seed)
    X, y = load_digits_images()
    emb = embeddings(models, X)
    rows, splits = [], []
    for k in shots:
        for draw in range(n_draws):
            r, split = evaluate_draw(models, emb, X, y, k, draw, quick, seed)
            rows += r
            splits.append(split)
            print(f"  {k}-shot draw {draw}: " + ", ".join(
                f"{x['method'].split(':')[0].split(',')[0]} {100 * x['accuracy']:.1f}"
                for x in r), flush=True)
    meta = {"source_classes": int(g.max() + 1), "source_images": int(len(G)),
            "source_fit": times}
    return rows, meta, splits


# ----------------------------------------------------- table and figure
def summary(rows, shots=SHOTS):
    """{method: {shots: (mean, std, n)}} of the accuracy over draws."""
    import numpy as np

    out = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        out[m] = {}
        for k in shots:
            a = [r["accuracy"] for r in rows if r["method"] == m and r["shots"] == k]
            if a:
                out[m][k] = (float(np.mean(a)), float(np.std(a)), len(a))
    return out


def table(rows, shots=SHOTS):
    """Markdown: a row per method, a column per number of labelled images per class."""
    from .report import markdown_table

    out = []
    for m, cells in summary(rows, shots).items():
        out.append({"method": m, **{f"{k}-shot": f"{100 * mu:.1f} ± {100 * sd:.1f}"
                                    for k, (mu, sd, _) in cells.items()}})
    return markdown_table(out, ["method", *(f"{k}-shot" for k in shots)])


_STYLES = {
    FINE_TUNED: dict(color="C0", marker="o", lw=2),
    FROZEN: dict(color="C0", marker="o", ls=":"),
    DML: dict(color="C2", marker="D", lw=2),
    SIAMESE: dict(color="C3", marker="^", lw=2),
    SCRATCH_METHOD: dict(color="C1", marker="s", ls="-."),
    RAW: dict(color="#444444", marker="s", ls="--"),
}


def plot(rows, path, note="", shots=SHOTS):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    for m, cells in summary(rows, shots).items():
        k = np.array(sorted(cells))
        mu = np.array([cells[s][0] for s in k]) * 100
        sd = np.array([cells[s][1] for s in k]) * 100
        ax.errorbar(k, mu, yerr=sd, capsize=3, label=m, **_STYLES.get(m, dict(marker="o")))
    ax.axhline(10, color="#bbbbbb", ls=":", label="chance (10 classes)")
    ax.set(xlabel="labelled digit images per class (k)", ylabel="accuracy on the other digits (%)",
           xticks=list(shots), ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # hides no line
    ax.set_title("Transfer from font glyphs to scikit-learn digits (mean ± std over draws)"
                 + note, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = parser("python -m benchmarks.bench_transfer_kinds", __doc__,
               quick="tiny source and training, 2 draws: a smoke run of seconds")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared machine more threads spin)")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import torch

    torch.set_num_threads(args.threads)
    quick = args.quick
    t0, c0 = time.perf_counter(), time.process_time()
    rows, meta, _ = run(quick, args.seed, n_draws=2 if quick else N_DRAWS)
    meta.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0)
    write(rows, meta, args.out, quick)
    return 0


def write(rows, meta, out, quick, shots=SHOTS):
    """The table (printed and in ``<out>/transfer_kinds_<tag>.md``), rows, and the figure."""
    from . import report

    src = meta["source_fit"]
    n_draws = len({r["draw"] for r in rows})
    text = "\n\n".join([
        f"## Transfer from font glyphs ({meta['source_classes']} classes, "
        f"{meta['source_images']} images) to scikit-learn digits: accuracy (%) on the "
        f"digits not labelled, mean ± std over {n_draws} draws of the labelled images",
        table(rows, shots),
        "Source training (CPU s): " + ", ".join(f"{k} {v['cpu_s']:.0f}" for k, v in src.items())
        + f". Whole run: {meta.get('cpu_s', 0):.0f} s CPU, {meta.get('wall_s', 0):.0f} s wall "
        f"on {report.machine()}; load average {report.load_average()} at the end.",
    ])
    print("\n" + text)
    tag = "quick" if quick else "full"
    report.write(out, f"transfer_kinds_{tag}", rows, text, **meta)
    png = out / f"transfer_kinds_{tag}.png"
    plot(rows, png, note=f"\nquick run: tiny source, {n_draws} draws" if quick else "",
         shots=shots)
    if not quick:
        import shutil

        shutil.copy(png, report.FIGURES / "transfer_kinds.png")
    print(f"Wrote {png}")
    return png


if __name__ == "__main__":
    sys.exit(main())
