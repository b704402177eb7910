"""Drawing-aware preprocessing: keep the text of a sheet, drop its lines and frames.

Plain OCR on line art reads almost nothing: long strokes, frames and hatching swamp
the page-layout analysis. Text in a patent drawing is made of small, separate glyphs,
so a connected-component filter that keeps only components of glyph size leaves
the reference numerals and labels on a white page. The glyphs' shapes also tell
whether the sheet is printed sideways: upright digits are taller than wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from figsearch.extras import require

#: largest glyph, as a fraction of the sheet's long side (≈60 px on a 300 dpi A4 sheet)
MAX_GLYPH = 0.025
#: smallest glyph area in pixels at working scale (specks and dust below)
MIN_GLYPH_AREA = 6


def ink_threshold(grey: np.ndarray) -> float:
    """Otsu's threshold, raised towards paper so that thin strokes of a scaled-down sheet stay ink."""
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128.0
    levels = np.arange(256)
    weight0 = np.cumsum(hist)
    weight1 = total - weight0
    mean0 = np.cumsum(hist * levels)
    mean_total = mean0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_total * weight0 / total - mean0) ** 2 / (weight0 * weight1)
    between = np.nan_to_num(between)
    otsu = float(np.argmax(between)) if between.any() else 128.0
    if otsu <= 0:  # a page with one grey level only: nothing distinguishes ink
        otsu = 128.0
    return min(200.0, otsu + 0.4 * (255.0 - otsu))


@dataclass
class GlyphLayer:
    """The glyph-sized components of a sheet and what their shapes say about its orientation."""

    image: Image.Image  # white page with only the kept components in black
    glyphs: int  # how many components were kept
    #: median height/width of digit-sized glyphs (> 1: upright text, < 1: sideways)
    aspect: float


def glyph_layer(grey: Image.Image, max_glyph: float = MAX_GLYPH) -> GlyphLayer:
    """Binarise ``grey`` and keep only the connected components of glyph size."""
    ndimage = require("scipy.ndimage", "the drawing text filter")
    pixels = np.asarray(grey)
    ink = pixels < ink_threshold(pixels)
    labels, count = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return GlyphLayer(Image.new("L", grey.size, 255), 0, 1.0)
    slices = ndimage.find_objects(labels)
    heights = np.array([s[0].stop - s[0].start for s in slices])
    widths = np.array([s[1].stop - s[1].start for s in slices])
    # relative to the sheet, but never below what it is on a full-size sheet at working scale:
    # a small image (a cropped figure, a test drawing) has relatively larger text
    limit = max(max_glyph * max(grey.size), max_glyph * 1800)
    text_height = _typical_glyph(heights, widths, limit * 2.5)
    if text_height:
        # sheets lettered larger than usual (small landscape pages): follow the lettering
        limit = max(limit, 1.6 * text_height)
    keep = (heights <= limit) & (widths <= limit) & (heights * widths >= MIN_GLYPH_AREA)
    # digits are at least a third of the largest glyph; smaller bits are dots and hatching
    digit_like = keep & (np.maximum(heights, widths) >= limit * 0.3)
    aspect = float(np.median(heights[digit_like] / widths[digit_like])) if digit_like.any() else 1.0
    lookup = np.concatenate([[False], keep])
    out = np.where(lookup[labels], 0, 255).astype(np.uint8)
    return GlyphLayer(Image.fromarray(out), int(keep.sum()), aspect)


def _typical_glyph(heights: np.ndarray, widths: np.ndarray, ceiling: float) -> float | None:
    """The most common long side of glyph-shaped components (digits and letters are 1.1-3.5 times
    longer than wide, whichever way up), or None when too few are found to say."""
    long, short = np.maximum(heights, widths), np.maximum(1, np.minimum(heights, widths))
    ratio = long / short
    glyphish = (ratio >= 1.1) & (ratio <= 3.5) & (long >= 12) & (long <= ceiling)
    if glyphish.sum() < 8:
        return None
    counts = np.bincount((long[glyphish] // 4).astype(np.int64))
    return float(np.argmax(counts) * 4 + 2)


def rotations_for(aspect: float, allowed: tuple[int, ...]) -> tuple[int, ...]:
    """Which rotations to try given the glyphs' median aspect (upright digits are ~1.5 tall:wide)."""
    if aspect >= 1.2:
        wanted: tuple[int, ...] = (0,)
    elif aspect <= 0.85:
        wanted = (270, 90)  # sheets turned clockwise (text reading upwards) are the commoner
    else:
        wanted = (0, 270, 90)
    return tuple(r for r in wanted if r in allowed) or allowed


@dataclass
class WordBox:
    """A group of glyphs that read as one word, found without OCR (the detection stage)."""

    box: tuple[int, int, int, int]
    line: int
    glyphs: int


def _components(count: int, pairs: np.ndarray) -> np.ndarray:
    """Group label of each of ``count`` nodes linked by ``pairs`` (connected components, in C)."""
    sparse = require("scipy.sparse", "the drawing text detector")
    csgraph = require("scipy.sparse.csgraph", "the drawing text detector")
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return csgraph.connected_components(graph, directed=False)[1]


def _group(boxes: np.ndarray, gap: float) -> np.ndarray:
    """Group boxes that share a text row (vertical overlap) and lie within ``gap`` × height of each other."""
    spatial = require("scipy.spatial", "the drawing text detector")
    n = len(boxes)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    x0, y0, x1, y1 = boxes.T.astype(np.float64)
    h = y1 - y0
    centres = np.stack([(x0 + x1) / 2, (y0 + y1) / 2], axis=1)
    # only pairs whose centres are close can be neighbours: a k-d tree finds them without an n×n matrix
    reach = float((1 + gap) * h.max() + (x1 - x0).max())
    pairs = spatial.cKDTree(centres).query_pairs(reach, output_type="ndarray")
    if len(pairs) == 0:
        return np.arange(n)
    a, b = pairs[:, 0], pairs[:, 1]
    overlap = np.minimum(y1[a], y1[b]) - np.maximum(y0[a], y0[b])
    # a period or a prime overlaps its word completely; digits of one word share most of their height
    same_row = overlap >= 0.5 * np.minimum(h[a], h[b])
    hgap = np.maximum(x0[a], x0[b]) - np.minimum(x1[a], x1[b])
    near = hgap <= gap * np.maximum(h[a], h[b])
    return _components(n, pairs[same_row & near])


def detect_words(binary: np.ndarray, max_components: int = 4000) -> list[WordBox]:
    """Word boxes in a glyph layer (True = ink), for upright text, with text-line numbers."""
    ndimage = require("scipy.ndimage", "the drawing text filter")
    labels, count = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return []
    slices = ndimage.find_objects(labels)
    boxes = np.array([(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices], dtype=np.int64)
    areas = ndimage.sum_labels(binary, labels, index=np.arange(1, count + 1))
    if count > max_components:
        # a hatched or stippled sheet: keep the largest glyphs, which is where the digits are
        order = np.argsort(-(boxes[:, 3] - boxes[:, 1]))[:max_components]
        boxes, areas = boxes[order], areas[order]
    groups = _group(boxes, gap=0.6)
    g = int(groups.max()) + 1
    gx0 = np.full(g, np.iinfo(np.int64).max); gy0 = gx0.copy()
    gx1 = np.zeros(g, dtype=np.int64); gy1 = gx1.copy()
    np.minimum.at(gx0, groups, boxes[:, 0]); np.minimum.at(gy0, groups, boxes[:, 1])
    np.maximum.at(gx1, groups, boxes[:, 2]); np.maximum.at(gy1, groups, boxes[:, 3])
    members = np.bincount(groups, minlength=g)
    ink = np.bincount(groups, weights=areas, minlength=g)
    w, h = gx1 - gx0, gy1 - gy0
    # reference numerals have at most 5 glyphs ("1250a"), labels up to 10 ("Figure 12A", the i's dot
    # counts); longer words are prose ("GENERATING UNIT") and only cost recognition time
    keep = (h >= 8) & (w <= 8 * h) & (members <= 10)
    # one glyph: a digit is upright-ish and solid enough; hatching strokes and dashes are not
    single = members == 1
    keep &= ~single | ((ink / np.maximum(1, w * h) >= 0.12) & (h >= 0.8 * w) & (h <= 10 * w))
    words = [((int(gx0[i]), int(gy0[i]), int(gx1[i]), int(gy1[i])), int(members[i])) for i in np.flatnonzero(keep)]
    if not words:
        return []
    word_boxes = np.array([w[0] for w in words], dtype=np.int64)
    lines = _group(word_boxes, gap=2.0)
    return [WordBox(w[0], int(lines[i]) + 1, w[1]) for i, w in enumerate(words)]
