"""Synthetic character classes rendered from font files (a source domain for transfer).

:func:`make_font_glyphs` turns the letters of a set of fonts into a labelled
image data set: one class per letter, its samples the letter drawn in
several fonts with random affine distortions and stroke widths, then reduced
the way scikit-learn's digits were made (a 32 x 32 bitmap, counts of on-pixels
in square blocks). It gives about 1,600 training classes without any
download, which is what Siamese networks need to learn features that carry
over to classes they never saw (Koch et al. train on Omniglot's 964
characters; the 10 digit classes alone are too few).

By default the fonts are the DejaVu and STIX families that ship with
matplotlib. Only letters are drawn (Unicode categories Lu, Ll, Lt, Lo):
digits and other numbers are never classes, so digits stay unseen. Letters
that look like digits (``O``, ``l``, ``S``, ...) are kept; leave them out
with ``exclude``. Characters whose undistorted rendering is identical to an
earlier one (homoglyphs such as Latin A, Greek Alpha and Cyrillic A) are
merged into one class, so no two classes share an appearance.

Needs Pillow (rendering) and matplotlib (the default fonts and each font's
character map).
"""

import glob
import os
import unicodedata
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from .._optional import import_optional

__all__ = ["default_fonts", "make_font_glyphs"]

_BITMAP = 32  # bitmap side, as for scikit-learn's digits (UCI optdigits)
_LETTERS = ("Lu", "Ll", "Lt", "Lo")
_FAMILIES = ("DejaVuSans", "DejaVuSansMono", "DejaVuSerif", "STIXGeneral")
_CANVAS = 128  # drawing canvas for the 64-pt glyph, large enough for any letter
_POINT_SIZE = 64


def default_fonts():
    """The regular, bold and italic DejaVu Sans/Mono/Serif and STIX General fonts of matplotlib.

    Returns
    -------
    paths : list of str
    """
    matplotlib = import_optional("matplotlib", "default_fonts")
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    paths = []
    for path in sorted(glob.glob(os.path.join(folder, "*.ttf"))):
        stem = os.path.basename(path)[:-4]
        family = stem.split("-")[0]
        # STIX names its styles STIXGeneralBol, STIXGeneralItalic, ...; the
        # Display variants of DejaVu only cover a few characters.
        if family in _FAMILIES or (family.startswith("STIXGeneral") and "Display" not in family):
            paths.append(path)
    if not paths:
        raise ValueError(f"No DejaVu or STIX fonts found in {folder}; pass fonts=[...] explicitly.")
    return paths


def _letter_codepoints(cmaps, min_fonts, exclude):
    count = {}
    for cmap in cmaps:
        for cp in cmap:
            if unicodedata.category(chr(cp)) in _LETTERS and chr(cp) not in exclude:
                count[cp] = count.get(cp, 0) + 1
    return sorted(cp for cp, c in count.items() if c >= min_fonts)


def _draw(char, font):
    """Ink of ``char`` cropped to its bounding box, float in [0, 1], or None if empty."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(img).text((_CANVAS // 4, _CANVAS // 8), char, fill=255, font=font)
    ink = np.asarray(img, dtype=np.float64) / 255.0
    rows, cols = np.nonzero(ink > 0.5)
    if rows.size < 4:
        return None
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _distort(ink, rng, height, rotation, shear, shift):
    """Scale the larger side to ``height`` pixels, rotate, shear, shift; a binary 32 x 32 bitmap."""
    from scipy.ndimage import affine_transform

    h, w = ink.shape
    theta = np.deg2rad(rng.uniform(-rotation, rotation))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    forward = rot @ np.array([[1.0, rng.uniform(-shear, shear)], [0.0, 1.0]]) * (height / max(h, w))
    inverse = np.linalg.inv(forward)
    centre_out = _BITMAP / 2 + rng.uniform(-shift, shift, size=2)
    offset = np.array([h / 2, w / 2]) - inverse @ centre_out
    return affine_transform(ink, inverse, offset=offset, output_shape=(_BITMAP, _BITMAP), order=1) > 0.5


def _thicken(bitmap, width):
    from scipy.ndimage import binary_dilation

    return bitmap if width <= 1 else binary_dilation(bitmap, np.ones((width, width), bool))


def make_font_glyphs(
    n_per_class=20,
    image_size=8,
    fonts=None,
    min_fonts=8,
    max_classes=None,
    stroke_widths=(1, 1, 2),
    exclude="",
    random_state=0,
    return_characters=False,
):
    """Letters of several fonts as a labelled image data set (one class per letter).

    Each sample is one letter drawn in one of the fonts that have it (taken
    in turn), its larger side scaled to 20-28 pixels of a 32 x 32 bitmap,
    rotated (+-12 degrees), sheared (+-0.25), shifted (+-2 pixels),
    binarised, thickened by a stroke width drawn from ``stroke_widths``, and
    reduced to ``image_size`` by counting the on-pixels of square blocks:
    with ``image_size=8`` (4 x 4 blocks) exactly the format of scikit-learn's
    digits (:func:`skmetric.datasets.load_digits_images`), scaled to [0, 1].

    Parameters
    ----------
    n_per_class : int, default=20
        Samples per letter.
    image_size : {8, 16, 32}, default=8
        Side of the returned images.
    fonts : list of str or None, default=None
        Paths of TrueType/OpenType fonts; None uses :func:`default_fonts`.
    min_fonts : int, default=8
        Keep the letters present in at least this many of the fonts (capped
        at the number of fonts), so that each class has several styles.
    max_classes : int or None, default=None
        Keep this many letters, drawn at random; None keeps all (about
        1,600 with the default fonts).
    stroke_widths : sequence of int, default=(1, 1, 2)
        Dilation widths (pixels of the 32 x 32 bitmap) to draw from; wide
        strokes fill the loops of small letters, which makes classes that
        differ by a loop (such as the digits 8 and 9) look alike.
    exclude : str, default=""
        Characters to leave out.
    random_state : int, RandomState instance or None, default=0
        Seeds the choice of classes and every distortion.
    return_characters : bool, default=False
        Also return the character of each class.

    Returns
    -------
    X : ndarray of shape (n_classes * n_per_class, image_size, image_size), float32 in [0, 1]
    y : ndarray of shape (n_classes * n_per_class,), int64
        Class index of each sample, 0 to n_classes - 1.
    characters : list of str, only with ``return_characters``
        The character of each class index.

    Examples
    --------
    >>> from skmetric.datasets import make_font_glyphs
    >>> X, y = make_font_glyphs(n_per_class=3, max_classes=5)
    >>> X.shape, sorted(set(y.tolist()))
    ((15, 8, 8), [0, 1, 2, 3, 4])
    """
    if not isinstance(n_per_class, Integral) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}.")
    if image_size not in (8, 16, 32):
        raise ValueError(f"image_size must be 8, 16 or 32 (a divisor of the 32-pixel bitmap), got {image_size!r}.")
    if not isinstance(min_fonts, Integral) or min_fonts < 1:
        raise ValueError(f"min_fonts must be a positive integer, got {min_fonts!r}.")
    if max_classes is not None and (not isinstance(max_classes, Integral) or max_classes < 2):
        raise ValueError(f"max_classes must be None or an integer >= 2, got {max_classes!r}.")
    widths = list(stroke_widths)
    if not widths or any(not isinstance(w, Integral) or w < 1 for w in widths):
        raise ValueError(f"stroke_widths must be a non-empty sequence of positive integers, got {stroke_widths!r}.")
    fonts = default_fonts() if fonts is None else [os.fspath(f) for f in fonts]
    if not fonts:
        raise ValueError("fonts is empty; pass font file paths or None for the defaults.")
    missing = [f for f in fonts if not os.path.isfile(f)]
    if missing:
        raise ValueError(f"Font files not found: {missing[:3]}")
    ImageFont = import_optional("PIL.ImageFont", "make_font_glyphs")
    FT2Font = import_optional("matplotlib.ft2font", "make_font_glyphs").FT2Font
    rng = check_random_state(random_state)

    loaded, cmaps = [], []
    for path in fonts:
        try:
            loaded.append(ImageFont.truetype(path, _POINT_SIZE))
            cmaps.append(set(FT2Font(path).get_charmap()))
        except OSError as exc:
            raise ValueError(f"Cannot read the font file {path!r}: {exc}") from exc
    codepoints = _letter_codepoints(cmaps, min(min_fonts, len(fonts)), set(exclude))

    # One class per distinct appearance: drop letters whose undistorted
    # drawing (first font that has them) repeats an earlier one exactly.
    # ``inks`` keeps every drawing, keyed by (letter, font), for the samples.
    seen, letters, inks = set(), [], {}
    for cp in codepoints:
        first = next(i for i, cmap in enumerate(cmaps) if cp in cmap)
        ink = inks[cp, first] = _draw(chr(cp), loaded[first])
        if ink is None:
            continue
        key = (ink.shape, (ink > 0.5).tobytes())
        if key not in seen:
            seen.add(key)
            letters.append(cp)
    if len(letters) < 2:
        raise ValueError(f"The fonts give {len(letters)} distinct letters; at least 2 are needed.")
    if max_classes is not None and max_classes < len(letters):
        letters = sorted(rng.choice(letters, max_classes, replace=False).tolist())

    block = _BITMAP // image_size
    X = np.empty((len(letters) * n_per_class, image_size, image_size), np.float32)
    y = np.repeat(np.arange(len(letters), dtype=np.int64), n_per_class)
    for k, cp in enumerate(letters):
        owners = [i for i, cmap in enumerate(cmaps) if cp in cmap]
        for j in range(n_per_class):
            font = owners[j % len(owners)]
            if (cp, font) not in inks:
                inks[cp, font] = _draw(chr(cp), loaded[font])
            ink = inks[cp, font]
            if ink is None:  # the glyph is blank in this font: use the first font's drawing
                ink = inks[cp, owners[0]]
            bitmap = _distort(ink, rng, rng.uniform(20, 28), rotation=12, shear=0.25, shift=2)
            bitmap = _thicken(bitmap, widths[rng.randint(len(widths))])
            counts = bitmap.reshape(image_size, block, image_size, block).sum(axis=(1, 3))
            X[k * n_per_class + j] = counts / float(block * block)
    if return_characters:
        return X, y, [chr(cp) for cp in letters]
    return X, y
