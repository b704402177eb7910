"""The offline visual encoders (hog, lines) on small synthetic line drawings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from figsearch.embed.catalog import create_visual, encoder_key
from figsearch.embed.encoders.inkstats import local_binary_patterns, run_length_histograms, stroke_width
from figsearch.embed.encoders.lines import LinesEncoder


def drawing(kind: int, size=(360, 480), line=3) -> Image.Image:
    """Distinct drafting styles: hatched box, stippled circle, dashed outline, concentric rings."""
    image = Image.new("L", size, 255)
    d = ImageDraw.Draw(image)
    w, h = size
    if kind == 0:
        d.rectangle((40, 60, w - 40, h - 60), outline=0, width=line)
        for x in range(40, w - 40, 14):
            d.line((x, 60, min(x + 90, w - 40), 150), fill=0, width=1)
    elif kind == 1:
        d.ellipse((30, 80, w - 30, h - 80), outline=0, width=line)
        rng = np.random.default_rng(1)
        for x, y in rng.integers((60, 120), (w - 60, h - 120), size=(400, 2)):
            d.point((int(x), int(y)), fill=0)
    elif kind == 2:
        for i in range(0, w - 80, 24):
            d.line((40 + i, 50, 52 + i, 50), fill=0, width=line)
            d.line((40 + i, h - 50, 52 + i, h - 50), fill=0, width=line)
        d.line((40, 50, 40, h - 50), fill=0, width=line)
    else:
        for r in range(20, min(w, h) // 2 - 10, 18):
            d.ellipse((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), outline=0, width=line)
    return image


def cos(a, b):
    return float(a @ b)


@pytest.mark.parametrize("name", ["hog", "lines"])
def test_vectors_are_normalised_deterministic_and_typed(name):
    encoder = create_visual(name)
    images = [drawing(k) for k in range(4)]
    first = encoder.encode(images)
    assert first.shape == (4, encoder.dim) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, encoder.encode(images))
    assert encoder.encode([]).shape == (0, encoder.dim)
    assert encoder_key(encoder).startswith(f"{name}:")


def test_lines_is_robust_to_resolution_and_mode():
    encoder = LinesEncoder()
    originals = encoder.encode([drawing(k) for k in range(4)])
    # the same drawings scanned at twice the resolution (lines twice as wide), as RGB
    bigger = [drawing(k, size=(720, 960), line=6).convert("RGB") for k in range(4)]
    copies = encoder.encode(bigger)
    for k in range(4):
        own = cos(copies[k], originals[k])
        others = [cos(copies[k], originals[j]) for j in range(4) if j != k]
        assert own > max(others), (k, own, others)


def test_degenerate_images_do_not_break_it():
    encoder = LinesEncoder()
    blank = Image.new("L", (200, 300), 255)
    tiny = Image.new("1", (9, 9), 0)
    transparent = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    vectors = encoder.encode([blank, tiny, transparent])
    assert np.isfinite(vectors).all()


def test_ink_statistics_by_hand():
    ink = np.zeros((4, 10), bool)
    ink[:, 2:4] = True  # a vertical bar two pixels wide
    ink[:, 7] = True  # and a one-pixel line, five pixels of paper away
    runs = run_length_histograms(ink).reshape(4, -1)
    # horizontal ink runs: lengths 2 and 1 per row -> bins log2(2)=1 and log2(1)=0, equally often
    assert runs[0][:2].tolist() == [0.5, 0.5]
    # horizontal gaps between ink: length 3 per row -> bin 1
    assert runs[1][1] == 1.0
    lbp = local_binary_patterns(ink, 1)
    assert lbp.shape == (512,) and lbp.sum() == pytest.approx(1.0)
    dark = np.zeros((40, 40), np.float32)
    dark[10:30, 18:21] = 1.0  # a 3-pixel-wide stroke
    assert stroke_width(dark) == pytest.approx(3.0, rel=0.2)


def test_unknown_encoder_lists_the_valid_ones():
    from figsearch.errors import InputError

    with pytest.raises(InputError, match="choose one of: .*hog.*lines"):
        create_visual("sift")


def test_lines_projection_file_errors(tmp_path):
    from figsearch.errors import InputError

    with pytest.raises(InputError, match="not found"):
        create_visual(f"lines:{tmp_path / 'missing.npz'}")
    raw = create_visual("lines", model=None)
    assert raw.dim == 2395 and raw.identity["projection_sha256"] == "raw"
    assert not math.isnan(float(raw.encode([drawing(0)])[0, 0]))
