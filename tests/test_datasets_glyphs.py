"""make_font_glyphs: synthetic letter classes from font files."""

import unicodedata

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("matplotlib")

from skmetric.datasets import default_fonts, make_font_glyphs  # noqa: E402


@pytest.fixture(scope="module")
def two_fonts():
    fonts = default_fonts()
    return [f for f in fonts if f.endswith(("DejaVuSans.ttf", "DejaVuSerif.ttf"))]


def test_shapes_range_and_labels(two_fonts):
    X, y, chars = make_font_glyphs(n_per_class=3, fonts=two_fonts, max_classes=6, return_characters=True)
    assert X.shape == (18, 8, 8) and X.dtype == np.float32
    assert X.min() >= 0 and X.max() <= 1 and X.max() > 0.5
    assert np.array_equal(np.bincount(y), [3] * 6)
    assert len(chars) == 6
    # Every sample has ink, and the samples of a class are not all identical.
    assert (X.reshape(18, -1).sum(1) > 0).all()
    assert not np.allclose(X[0], X[1])


def test_block_counts_match_the_digits_format(two_fonts):
    X8, _ = make_font_glyphs(n_per_class=2, fonts=two_fonts, max_classes=3, random_state=1)
    X32, _ = make_font_glyphs(n_per_class=2, fonts=two_fonts, max_classes=3, image_size=32, random_state=1)
    # Same draw: the 8x8 images are the 4x4 block means of the 32x32 bitmaps.
    assert set(np.unique(X32)) <= {0.0, 1.0}
    np.testing.assert_allclose(X8, X32.reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4)), atol=1e-6)
    # Counts of 16 pixels: multiples of 1/16, like scikit-learn's digits / 16.
    np.testing.assert_allclose(X8 * 16, np.round(X8 * 16), atol=1e-5)


def test_only_letters_no_numbers_and_exclude(two_fonts):
    _, _, chars = make_font_glyphs(n_per_class=1, fonts=two_fonts, min_fonts=1, return_characters=True)
    assert len(chars) > 500
    assert all(unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lo") for c in chars)
    assert not set("0123456789") & set(chars)
    _, _, kept = make_font_glyphs(n_per_class=1, fonts=two_fonts, min_fonts=1, exclude="OolSZ",
                                  return_characters=True)
    assert not set("OolSZ") & set(kept) and set("OolSZ") <= set(chars)


def test_homoglyphs_are_merged(two_fonts):
    _, _, chars = make_font_glyphs(n_per_class=1, fonts=two_fonts, min_fonts=1, return_characters=True)
    # Latin A, Greek Alpha and Cyrillic A are drawn identically in DejaVu: one class.
    assert "A" in chars
    assert "\u0391" not in chars and "\u0410" not in chars


def test_reproducible_and_seeded(two_fonts):
    kw = dict(n_per_class=2, fonts=two_fonts, max_classes=4)
    a, ya = make_font_glyphs(random_state=3, **kw)
    b, yb = make_font_glyphs(random_state=3, **kw)
    c, _ = make_font_glyphs(random_state=4, **kw)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_per_class=0), "n_per_class"),
        (dict(image_size=10), "image_size"),
        (dict(min_fonts=0), "min_fonts"),
        (dict(max_classes=1), "max_classes"),
        (dict(stroke_widths=()), "stroke_widths"),
        (dict(stroke_widths=(0,)), "stroke_widths"),
        (dict(fonts=[]), "fonts is empty"),
        (dict(fonts=["/nonexistent/font.ttf"]), "not found"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_font_glyphs(**kwargs)


def test_unreadable_font_file(tmp_path):
    bad = tmp_path / "broken.ttf"
    bad.write_bytes(b"not a font")
    with pytest.raises(ValueError, match="Cannot read the font file"):
        make_font_glyphs(fonts=[bad])


def test_missing_pillow_names_the_extra(monkeypatch, two_fonts):
    import sys

    monkeypatch.setitem(sys.modules, "PIL.ImageFont", None)  # import of PIL.ImageFont now fails
    with pytest.raises(ImportError, match=r"make_font_glyphs needs PIL.ImageFont.*skmetric\[deep\]"):
        make_font_glyphs(fonts=two_fonts)
