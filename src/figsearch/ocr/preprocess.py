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
    if grey.dtype == np.uint8 and grey.ndim == 2:
        hist = np.asarray(Image.fromarray(grey).histogram(), dtype=np.float64)  # PIL's counts: ~5× bincount's speed
    else:
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
    #: boxes (x0, y0, x1, y1) of every connected component of the sheet's ink (not only the kept
    #: ones): the label pass groups them into lines without labelling the sheet again
    boxes: np.ndarray | None = None
    #: the kept components as ``detect_words`` takes them (``labelled``): the sheet's labels, a
    #: lookup from them to 1..count (0: not kept), count, and the kept components' boxes, numbered
    #: in the order a labelling of ``image`` itself gives; the upright word detection starts from them.
    #: Where underlined glyphs were added (whose components are no whole components of the sheet): the
    #: layer's own labelling, the lookup the identity
    kept: tuple[np.ndarray, np.ndarray, int, np.ndarray] | None = None
    #: the sheet's ink (True) at ``ink_threshold``: what the label pass and the table finder look at
    ink: np.ndarray | None = None
    #: (rows, columns) of the layer's black pixels in row-major order, with ``kept``: what
    #: ``detect_words`` would find in it (``pixels``), for the upright layer and, through
    #: ``turned_pixels``, for the turned ones
    pixels: tuple[np.ndarray, np.ndarray] | None = None


def glyph_layer(grey: Image.Image, max_glyph: float = MAX_GLYPH) -> GlyphLayer:
    """Binarise ``grey`` and keep only the connected components of glyph size."""
    ndimage = require("scipy.ndimage", "the drawing text filter")
    pixels = np.asarray(grey)
    ink = pixels < ink_threshold(pixels)
    labels, count = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return GlyphLayer(Image.new("L", grey.size, 255), 0, 1.0)
    ys, xs = sparse_nonzero(ink)
    of_ink = labels[ys, xs]
    boxes = component_boxes(of_ink, count, ys, xs)
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
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
    underlined: list = []
    if text_height:  # after the orientation's glyphs: touching letters are wide whichever way up
        keep |= touching_letters(labels, boxes, keep, text_height, limit)
        underlined = underlined_glyphs(labels, boxes, keep, text_height, limit)
        underlined += leader_glyphs(labels, boxes, keep, text_height, limit)
    # the kept components renumbered 1..n in their order (a labelling of the layer alone numbers them
    # so too: removing whole components neither joins nor splits the others)
    kept_count = int(keep.sum())
    lookup = np.zeros(count + 1, dtype=np.int64)
    lookup[1:][keep] = np.arange(1, kept_count + 1)
    # the layer: white, with the kept components' ink pixels black (set through the ink's pixels, a few
    # per cent of the sheet, rather than looked up for every pixel)
    out = np.full(ink.shape, 255, dtype=np.uint8)
    inked = lookup[of_ink] > 0
    out.reshape(-1)[ys[inked] * ink.shape[1] + xs[inked]] = 0
    if underlined:
        # the glyphs of underlined numerals join the layer without their bar; the layer's components
        # are then no longer whole components of the sheet, so word detection labels the layer itself
        for x0, y0, glyphs in underlined:
            out[y0:y0 + glyphs.shape[0], x0:x0 + glyphs.shape[1]][glyphs] = 0
        # labelled here once, as word detection would label it, for the upright reading and every turn
        # (each turn used to turn the layer as an image and label it again)
        layer_ink = out == 0
        layer_labels, layer_count = ndimage.label(layer_ink, structure=np.ones((3, 3), dtype=bool))
        lys, lxs = sparse_nonzero(layer_ink)
        layer_boxes = component_boxes(layer_labels[lys, lxs], layer_count, lys, lxs)
        return GlyphLayer(Image.fromarray(out), kept_count + len(underlined), aspect, boxes,
                          (layer_labels, np.arange(layer_count + 1), layer_count, layer_boxes), ink, (lys, lxs))
    return GlyphLayer(Image.fromarray(out), kept_count, aspect, boxes, (labels, lookup, kept_count, boxes[keep]), ink,
                      (ys[inked], xs[inked]))


def underlined_glyphs(labels: np.ndarray, boxes: np.ndarray, keep: np.ndarray, text_height: float,
                      limit: float) -> list[tuple[int, int, np.ndarray]]:
    """Numerals printed underlined ("Processor 202" with "202" underlined) whose digits the working
    scale joined to their underline: one component wider than the glyph limit, so dropped with the
    drawing's lines. Such a component is a bar at its bottom (rows filled across >= 80 % of its width,
    at most a quarter of its height thick) under ink as tall as the sheet's lettering (0.6-1.5 x) in
    which no row is filled across more than 60 % (no frame, no hatching), broken into 1-6 pieces each
    within the glyph limit. Returns (x0, y0, mask) of the ink above each bar, bar rows left out."""
    ndimage = require("scipy.ndimage", "the drawing text filter")
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    candidates = (~keep & (widths > limit) & (widths <= 15 * heights) & (heights >= 0.8 * text_height)
                  & (heights <= 2.0 * text_height))
    out = []
    for i in np.flatnonzero(candidates):
        x0, y0, x1, y1 = (int(v) for v in boxes[i])
        mask = labels[y0:y1, x0:x1] == i + 1
        full = mask.sum(axis=1) >= 0.8 * (x1 - x0)
        if not full[-3:].any():
            continue
        bottom = len(full) - 1 - int(np.argmax(full[::-1]))  # the bar's lowest full row
        top = bottom
        while top > 0 and full[top - 1]:
            top -= 1
        if bottom - top + 1 > 0.25 * (y1 - y0):
            continue
        above = mask[:top]
        rows = np.flatnonzero(above.any(axis=1))
        if rows.size == 0 or not 0.6 * text_height <= top - rows[0] <= 1.5 * text_height:
            continue
        if (above.sum(axis=1) > 0.6 * (x1 - x0)).any():
            continue
        pieces, n = ndimage.label(above, structure=np.ones((3, 3), dtype=bool))
        if not 1 <= n <= 6:
            continue
        spans = ndimage.find_objects(pieces)
        if any(sl[1].stop - sl[1].start > limit for sl in spans):
            continue
        out.append((x0, y0, above))
    return out


def leader_glyphs(labels: np.ndarray, boxes: np.ndarray, keep: np.ndarray, text_height: float,
                  limit: float, most: int = 40) -> list[tuple[int, int, np.ndarray]]:
    """Digits joined to a leader line: "50" whose "0" touches the curve that leaves it is a "5" (kept)
    and a "0" that is part of the drawing's large component (dropped with the lines). Beside a kept
    glyph of the sheet's lettering height (0.7-1.4 x), a slot as tall as it and 0.9 x as wide: when a
    large component's ink there spans >= 75 % of the glyph's height, starts near the glyph, leaves the
    slot only through its far side (a leader going away; a frame or hatching line would pass above or
    below) and fills >= 12 % of it, that ink is a glyph. Returns (x0, y0, mask) as ``underlined_glyphs``."""
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    big = np.concatenate([[False], ~keep & ((heights > limit) | (widths > limit))])
    glyph = keep & (heights >= 0.7 * text_height) & (heights <= 1.4 * text_height) & (widths <= heights)
    rows, cols = labels.shape
    out: list[tuple[int, int, np.ndarray]] = []
    for i in np.flatnonzero(glyph).tolist():
        x0, y0, x1, y1 = (int(v) for v in boxes[i])
        h = y1 - y0
        slot = max(3, round(0.9 * h))
        margin = max(4, round(0.3 * h))
        if y0 - margin < 0 or y1 + margin > rows:
            continue
        mid = labels[(y0 + y1) // 2]
        for side in (1, -1):
            sx0, sx1 = (x1, x1 + slot) if side == 1 else (x0 - slot, x0)
            if sx0 < 0 or sx1 > cols or not big[mid[sx0:sx1]].any():
                continue  # the cheap test first: no large component crosses the slot's middle row
            window = labels[y0:y1, sx0:sx1]
            found = window[big[window]]
            if found.size < 0.12 * h * slot:
                continue
            other = int(np.bincount(found).argmax())
            mask = window == other
            filled = np.flatnonzero(mask.any(axis=1))
            if filled[-1] - filled[0] + 1 < 0.75 * h:
                continue
            reach = max(1, round(0.4 * h))
            near, far = (mask[:, :reach], mask[:, -1]) if side == 1 else (mask[:, -reach:], mask[:, 0])
            if not near.any() or not far.any() or mask.sum() < 0.12 * h * slot:
                continue
            tol = max(2, round(0.1 * h))  # a digit may stand a pixel or two taller than its neighbour
            if (labels[y0 - margin:y0 - tol, sx0:sx1] == other).any() or (labels[y1 + tol:y1 + margin, sx0:sx1] == other).any():
                continue  # the component goes on above or below: a line passing by, not a digit
            out.append((sx0, y0, mask))
            if len(out) >= most:
                return out
    return out


def touching_letters(labels: np.ndarray, boxes: np.ndarray, keep: np.ndarray, text_height: float,
                     limit: float) -> np.ndarray:
    """Components wider than the glyph limit that are letters printed touching ("RMA" of a bold
    "INFORMATION", "RRI" of "HURRICANE"): as tall as the sheet's lettering (0.7-1.4 x), at most 8
    times as wide as tall, not a stroke (elongation by second moments <= 5, ink >= 15 % of the box),
    with a kept glyph of about their height (0.7-1.4 x) beside them on the same row, within 0.6 x
    their height. Dropped, they cut a word in two ("INFO" + "TION"). A boolean mask over ``boxes``."""
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    out = np.zeros(len(boxes), dtype=bool)
    wide = ~keep & (widths > limit) & (heights >= 0.7 * text_height) & (heights <= 1.4 * text_height) & (widths <= 8 * heights)
    if not wide.any() or not keep.any():
        return out
    glyphs = boxes[keep]
    gh = glyphs[:, 3] - glyphs[:, 1]
    for i in np.flatnonzero(wide):
        x0, y0, x1, y1 = boxes[i]
        h = y1 - y0
        overlap = np.minimum(glyphs[:, 3], y1) - np.maximum(glyphs[:, 1], y0)
        gap = np.maximum(glyphs[:, 0] - x1, x0 - glyphs[:, 2])
        if not ((overlap >= 0.5 * np.minimum(gh, h)) & (gap >= -1) & (gap <= 0.6 * h)
                & (gh >= 0.7 * h) & (gh <= 1.4 * h)).any():
            continue
        ys, xs = np.nonzero(labels[y0:y1, x0:x1] == i + 1)
        if len(ys) < 0.15 * h * (x1 - x0):
            continue
        cov = np.cov(np.stack([xs, ys]).astype(np.float64)) + np.eye(2) / 12
        small, large = np.linalg.eigvalsh(cov)
        if np.sqrt(large / max(small, 1 / 12)) <= 5.0:
            out[i] = True
    return out


def component_boxes(of_pixel: np.ndarray, count: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of components 1..``count``, from their pixels: row ``ys``, column ``xs`` and the
    component ``of_pixel`` of each (every component has one at least). The same boxes as
    ``ndimage.find_objects`` (stop 21): that scans every pixel of the label array and makes two slice
    objects per component, four times the cost on a sheet's ink (thousands of components)."""
    x0 = np.full(count + 1, np.iinfo(np.int64).max, dtype=np.int64)
    y0 = x0.copy()
    x1 = np.zeros(count + 1, dtype=np.int64)
    y1 = x1.copy()
    np.minimum.at(x0, of_pixel, xs)
    np.minimum.at(y0, of_pixel, ys)
    np.maximum.at(x1, of_pixel, xs)
    np.maximum.at(y1, of_pixel, ys)
    return np.stack([x0[1:], y0[1:], x1[1:] + 1, y1[1:] + 1], axis=1)


def rotate_boxes(boxes: np.ndarray, rotation: int, shape: tuple[int, int]) -> np.ndarray:
    """``boxes`` of an array of ``shape`` (h, w) as boxes of ``np.rot90(array, rotation // 90)``
    (PIL's counter-clockwise ``rotate(rotation, expand=True)``)."""
    h, w = shape
    x0, y0, x1, y1 = boxes.T
    k = (rotation // 90) % 4
    if k == 0:
        return boxes
    if k == 1:
        return np.stack([y0, w - x1, y1, w - x0], axis=1)
    if k == 2:
        return np.stack([w - x1, h - y1, w - x0, h - y0], axis=1)
    return np.stack([h - y1, x0, h - y0, x1], axis=1)


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
    pairs = _row_pairs(y0, y1) if h.min() > 0 else None
    if pairs is None:
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


#: ``_row_pairs`` gives up (None) above this many candidate pairs: the k-d tree's reach is then no worse
_MAX_ROW_PAIRS = 1 << 21


def _row_pairs(y0: np.ndarray, y1: np.ndarray) -> np.ndarray | None:
    """Every pair (i, j), i < j, of boxes whose rows [y0, y1) overlap, as (k, 2) indices; None when
    there are more than ``_MAX_ROW_PAIRS``. ``_group`` joins only boxes that overlap by half a height
    (so, for boxes at least one pixel high, by more than nothing): these pairs hold all of them, and the
    grouping is the same as from the k-d tree's pairs (a connected component does not depend on which
    extra pairs were looked at). The k-d tree's reach, set by the sheet's tallest and widest boxes, gave
    the label pass about 800 pairs per box joined, nearly all on other rows."""
    order = np.argsort(y0, kind="stable")
    starts = y0[order]
    # a box overlaps the boxes that start at or after its start and before its end (and those that
    # start before it, which list it themselves); ties of start included once, from the earlier one
    ends = np.searchsorted(starts, y1[order], side="left")
    counts = np.maximum(ends - np.arange(1, len(order) + 1), 0)
    total = int(counts.sum())
    if total > _MAX_ROW_PAIRS:
        return None
    first = np.repeat(np.arange(len(order)), counts)
    # the k-th partner of box i in sorted order is i + 1 + k
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    second = first + 1 + offsets
    a, b = order[first], order[second]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def component_shapes(labels: np.ndarray, count: int, mask: np.ndarray | None = None,
                     lookup: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component (1..count): major-axis length, elongation (major/minor axis) and the unit
    vector of its major axis, from second moments of its ink pixels (a tilted dash is elongated
    although its bounding box is not). ``mask``: the pixels of the components (default: labels > 0);
    ``lookup``: maps ``labels`` to the component numbers 1..count."""
    ys, xs = np.nonzero(labels if mask is None else mask)
    lab = labels[ys, xs]
    if lookup is not None:
        lab = lookup[lab]
    return _shapes(ys, xs, lab, count)


def _shapes(ys: np.ndarray, xs: np.ndarray, lab: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``component_shapes`` from the ink pixels' rows, columns and component numbers."""
    n = count + 1
    m = np.maximum(1.0, np.bincount(lab, minlength=n))
    mx, my = np.bincount(lab, xs, n) / m, np.bincount(lab, ys, n) / m
    dx, dy = xs - mx[lab], ys - my[lab]
    sxx = np.bincount(lab, dx * dx, n) / m + 1 / 12
    syy = np.bincount(lab, dy * dy, n) / m + 1 / 12
    sxy = np.bincount(lab, dx * dy, n) / m
    half = (sxx + syy) / 2
    root = np.sqrt(((sxx - syy) / 2) ** 2 + sxy**2)
    major, minor = half + root, np.maximum(1 / 12, half - root)
    theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    axis = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return np.sqrt(12 * major)[1:], np.sqrt(major / minor)[1:], axis[1:]


def phantom_components(boxes: np.ndarray, length: np.ndarray, elongation: np.ndarray, axis: np.ndarray,
                       text_height: float | None) -> np.ndarray:
    """Components that are not glyphs although glyph-sized: the dashes of broken lines and the dots
    of dotted lines (links of a chain of evenly spaced similar components, spaced further apart
    than the letters of a word, dashes lying along the chain), and stipple (tiny dots among tiny
    dots). ``boxes``: (n, 4) x0, y0, x1, y1; the rest from ``component_shapes``. A boolean mask."""
    spatial = require("scipy.spatial", "the drawing text detector")
    n = len(boxes)
    out = np.zeros(n, dtype=bool)
    if n < 3:
        return out
    x0, y0, x1, y1 = boxes.T.astype(np.float64)
    long = np.maximum(x1 - x0, y1 - y0)
    size = np.maximum(length, 1.0)
    centres = np.stack([(x0 + x1) / 2, (y0 + y1) / 2], axis=1)
    k = min(n, 9)
    dist, idx = spatial.cKDTree(centres).query(centres, k=k, distance_upper_bound=float(4.0 * long.max() + 1))
    dist, idx = dist[:, 1:], idx[:, 1:]  # the first neighbour is the component itself
    valid = idx < n
    idx = np.where(valid, idx, 0)
    dist = np.where(valid, dist, np.inf)
    li = size[:, None]
    lj = size[idx]
    dash = elongation >= 2.5
    thick = size / np.maximum(elongation, 1.0)
    dot = (long < 0.45 * text_height) & ~dash if text_height else np.zeros(n, dtype=bool)
    ux = (centres[idx, 0] - centres[:, None, 0]) / np.maximum(dist, 1e-6)
    uy = (centres[idx, 1] - centres[:, None, 1]) / np.maximum(dist, 1e-6)
    ax, ay = axis[:, 0:1], axis[:, 1:2]
    along = np.abs(ux * ax + uy * ay)
    parallel = np.abs(ax * axis[idx, 0] + ay * axis[idx, 1]) >= 0.9
    gap = dist - (li + lj) / 2
    dash_link = (
        dash[:, None] & dash[idx] & (along >= 0.9) & parallel
        # dashes of one line: as thick as each other, end to end with a gap shorter than the longer dash
        & (np.abs(thick[idx] - thick[:, None]) <= 0.5 * thick[:, None] + 1.0)
        & (gap >= -0.1 * np.minimum(li, lj)) & (gap <= 1.5 * np.maximum(li, lj))
    )
    dot_link = (
        dot[:, None] & dot[idx] & (np.abs(lj - li) <= 0.35 * li + 1.5)
        # dots of a dotted line sit further apart than letters of a word
        & (dist >= 0.95 * li) & (dist <= 3.5 * li + 2)
    )
    link = valid & (dash_link | dot_link)
    # a glyph with a neighbour beside it (across its long side) that is not a parallel dash is a
    # letter of a word: "1" in "100" stays, whatever lies above or below it
    beside = valid & (dist <= 1.2 * li) & (along <= 0.6) & (lj >= 0.4 * li) & (lj <= 1.6 * li) & ~(dash[idx] & parallel)
    text = beside.any(axis=1)
    # two links on opposite sides at comparable distances: a chain
    for a in range(k - 1):
        for b in range(a + 1, k - 1):
            both = link[:, a] & link[:, b]
            if not both.any():
                continue
            opposite = ux[:, a] * ux[:, b] + uy[:, a] * uy[:, b] <= -0.8
            with np.errstate(invalid="ignore"):
                ratio = np.maximum(dist[:, a], dist[:, b]) / np.maximum(1e-6, np.minimum(dist[:, a], dist[:, b]))
            out |= both & opposite & (ratio <= 1.8)
    # the ends of a chain: linked to a chain member
    out |= (link & out[idx]).any(axis=1)
    out &= ~text
    if text_height:
        # stipple: dots far below the text size, among other such dots
        tiny = long < 0.3 * text_height
        near = valid & (dist <= 1.5 * text_height)
        crowd = (near & tiny[idx]).sum(axis=1)
        out |= tiny & (crowd >= 4)
        # clumps of stipple dots: well below the text size, in a crowd of dots
        out |= (long < 0.6 * text_height) & (crowd >= 5)
    return out


def detect_words(binary: np.ndarray, max_components: int = 4000, reject_phantoms: bool = True,
                 max_members: int = 40, max_aspect: float = 30.0,
                 labelled: tuple[np.ndarray, np.ndarray, int, np.ndarray] | None = None,
                 renumber: bool = False, pixels: tuple[np.ndarray, np.ndarray] | None = None) -> list[WordBox]:
    """Word boxes in a glyph layer (True = ink), for upright text, with text-line numbers.
    ``labelled``: the layer's components already labelled (``GlyphLayer.kept``, or ``turned_components``
    of it for a turned view), to skip doing it again; ``renumber``: they are numbered otherwise than a
    labelling of ``binary`` would number them (a turned view), so number them as it would; ``pixels``
    (with ``labelled``): ``sparse_nonzero(binary)`` when known (``GlyphLayer.pixels``, ``turned_pixels``),
    and ``binary`` is not looked at (None will do)."""
    if labelled is not None:
        labels, lookup, count, boxes = labelled
        if count == 0:
            return []
        ys, xs = pixels if pixels is not None else sparse_nonzero(binary)
        of_ink = lookup[labels[ys, xs]]
        if renumber:
            of_ink, boxes = _raster_numbered(of_ink, count, boxes)
    else:
        ndimage = require("scipy.ndimage", "the drawing text filter")
        labels, count = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
        if count == 0:
            return []
        ys, xs = sparse_nonzero(binary)
        of_ink = labels[ys, xs]
        boxes = component_boxes(of_ink, count, ys, xs)
    areas = np.bincount(of_ink, minlength=count + 1)[1:].astype(np.float64)  # ink per component
    if reject_phantoms:
        heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
        length, elongation, axis = _shapes(ys, xs, of_ink, count)
        text_height = _typical_glyph(heights, widths, 200.0)
        phantom = phantom_components(boxes, length, elongation, axis, text_height)
        # a thin slanting stroke (a leader line, an arrow's shaft) is no glyph of upright text: joined
        # to the numeral it points at, it spoils the numeral's reading ("↙21" read as "—21,")
        slant = np.abs(axis[:, 0])
        phantom |= (elongation >= 4.0) & (slant >= 0.34) & (slant <= 0.94) & (length >= 0.6 * (text_height or 20.0))
        if phantom.all():
            return []
        boxes, areas = boxes[~phantom], areas[~phantom]
    if len(boxes) > max_components:
        # a hatched or stippled sheet: keep the largest glyphs, which is where the digits are
        order = np.argsort(-(boxes[:, 3] - boxes[:, 1]))[:max_components]
        boxes, areas = boxes[order], areas[order]
    groups = _split_long_rows(boxes, _group(boxes, gap=0.6), max_members)
    g = int(groups.max()) + 1
    gx0 = np.full(g, np.iinfo(np.int64).max); gy0 = gx0.copy()
    gx1 = np.zeros(g, dtype=np.int64); gy1 = gx1.copy()
    np.minimum.at(gx0, groups, boxes[:, 0]); np.minimum.at(gy0, groups, boxes[:, 1])
    np.maximum.at(gx1, groups, boxes[:, 2]); np.maximum.at(gy1, groups, boxes[:, 3])
    members = np.bincount(groups, minlength=g)
    ink = np.bincount(groups, weights=areas, minlength=g)
    w, h = gx1 - gx0, gy1 - gy0
    # reference numerals have at most 5 glyphs ("1250a"), labels up to 10 ("Figure 12A", the i's dot
    # counts); longer groups are the drawing's words ("IMAGE PROCESSING UNIT", a flowchart step),
    # read for read_drawing's words up to ``max_members`` glyphs; longer ones are paragraphs
    keep = (h >= 8) & (w <= max_aspect * h) & (members <= max_members)
    # one glyph: a digit is upright-ish and solid enough; hatching strokes and dashes are not
    single = members == 1
    keep &= ~single | ((ink / np.maximum(1, w * h) >= 0.12) & (h >= 0.8 * w) & (h <= 10 * w))
    chosen = np.flatnonzero(keep)
    if chosen.size == 0:
        return []
    word_boxes = np.stack([gx0[chosen], gy0[chosen], gx1[chosen], gy1[chosen]], axis=1)
    lines = _group(word_boxes, gap=2.0)
    return [WordBox(tuple(box), line + 1, n)
            for box, line, n in zip(word_boxes.tolist(), lines.tolist(), members[chosen].tolist())]


def turned_components(kept: tuple[np.ndarray, np.ndarray, int, np.ndarray], rotation: int
                      ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """``GlyphLayer.kept`` of a layer as seen turned by ``rotation`` (``np.rot90``, PIL's
    ``rotate(rotation, expand=True)``): the labels turned (a view), the boxes turned, the numbering
    the upright one (``detect_words(..., renumber=True)`` numbers them as a labelling of the turned
    layer would). Turning keeps every component whole, so the turned layer need not be labelled again."""
    labels, lookup, count, boxes = kept
    k = (rotation // 90) % 4
    return (np.rot90(labels, k) if k else labels), lookup, count, rotate_boxes(boxes, rotation, labels.shape)


def turned_pixels(pixels: tuple[np.ndarray, np.ndarray], rotation: int, shape: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``sparse_nonzero`` of ``np.rot90(mask, rotation // 90)``, from ``pixels`` = ``sparse_nonzero(mask)``
    (``mask`` of ``shape`` (h, w)), without turning the mask: the same pixels in the turned view's
    row-major order (a stable sort on one coordinate, a radix sort for sheet-sized images)."""
    ys, xs = pixels
    h, w = shape
    k = (rotation // 90) % 4
    if k == 0:
        return ys, xs
    if k == 2:  # (h-1-y, w-1-x): the row-major order reversed
        return h - 1 - ys[::-1], w - 1 - xs[::-1]
    key_type = np.uint16 if max(h, w) <= np.iinfo(np.uint16).max else np.int64
    if k == 1:  # (w-1-x, y): by column from the right, each column top to bottom as listed
        order = np.argsort((w - 1 - xs).astype(key_type), kind="stable")
        return w - 1 - xs[order], ys[order]
    # k == 3: (x, h-1-y): by column from the left, each column bottom to top (the list reversed)
    ys, xs = ys[::-1], xs[::-1]
    order = np.argsort(xs.astype(key_type), kind="stable")
    return xs[order], h - 1 - ys[order]


def _raster_numbered(of_pixel: np.ndarray, count: int, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Components 1..``count`` numbered in the order of their first pixel in ``of_pixel`` (the component
    of each ink pixel in row-major order), as ``ndimage.label`` numbers them, and their boxes in that
    order. Every component must have a pixel."""
    first = np.full(count + 1, of_pixel.size, dtype=np.int64)
    np.minimum.at(first, of_pixel, np.arange(of_pixel.size, dtype=np.int64))
    order = np.argsort(first[1:], kind="stable")
    number = np.zeros(count + 1, dtype=np.int64)
    number[1 + order] = np.arange(1, count + 1)
    return number[of_pixel], boxes[order]


def sparse_nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a 2-d boolean mask with little ink, the same arrays in the same (row-major)
    order, about twice as fast: the mask's bytes are scanned 8 at a time as 64-bit words, and only
    the words that hold ink are looked into (numpy's ``nonzero`` tests every byte; on a sheet's
    glyph layer it was a third of the word detection's time)."""
    if mask.ndim != 2 or mask.dtype != np.bool_:
        return np.nonzero(mask)
    width = mask.shape[1]
    flat = np.ascontiguousarray(mask).reshape(-1).view(np.uint8)
    pad = (-flat.size) % 8
    if pad:
        flat = np.concatenate([flat, np.zeros(pad, dtype=np.uint8)])
    words = np.flatnonzero(flat.view(np.uint64))
    block, offset = np.nonzero(flat.reshape(-1, 8)[words])
    position = words[block] * 8 + offset
    return position // width, position % width


def _split_long_rows(boxes: np.ndarray, groups: np.ndarray, max_members: int) -> np.ndarray:
    """Groups of more than ``max_members`` glyphs that are one row of text (the group at most twice as
    tall as its median glyph) cut into their words (gaps over 0.3 x height): a box label of 43 glyphs,
    "Graphic-Based Response Generating Module 210B", was dropped whole with its numeral. Groups of
    other shapes (stipple, hatching: many rows) stay as they are, and are dropped as before."""
    members = np.bincount(groups)
    long = np.flatnonzero(members > max_members)
    if long.size == 0:
        return groups
    groups = groups.copy()
    top = int(groups.max()) + 1
    for g in long.tolist():
        sel = np.flatnonzero(groups == g)
        part = boxes[sel]
        median = float(np.median(part[:, 3] - part[:, 1]))
        if part[:, 3].max() - part[:, 1].min() > 2.0 * median:
            continue
        words = _group(part, gap=0.3)
        groups[sel] = top + words
        top += int(words.max()) + 1
    return np.unique(groups, return_inverse=True)[1].reshape(-1)


def label_lines(binary: np.ndarray, max_lines: int = 20, boxes: np.ndarray | None = None) -> list[WordBox]:
    """Candidate figure-label lines of an upright sheet (True = ink), for the label pass.

    Labels are often lettered larger than the glyph filter's limit and set apart from the drawing:
    components from about half the sheet's text height up to ~8 % of its long side are grouped
    into words and lines; lines of 2-16 glyphs, at least as tall as the sheet's lettering, are
    kept, tallest first. Each line gets its own line number. ``boxes``: the boxes of all of
    ``binary``'s connected components when already known (``GlyphLayer.boxes``, turned with
    ``rotate_boxes``), so that the sheet is not labelled again.
    """
    if boxes is None:
        ndimage = require("scipy.ndimage", "the figure-label pass")
        labels, count = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
        if count == 0:
            return []
        ys, xs = sparse_nonzero(binary)
        boxes = component_boxes(labels[ys, xs], count, ys, xs)
    if len(boxes) == 0:
        return []
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    side = max(binary.shape)
    text_height = _typical_glyph(heights, widths, MAX_GLYPH * max(side, 1800) * 2.5) or 0.012 * side
    ceiling = max(0.08 * side, 3 * text_height)
    keep = (heights <= ceiling) & (widths <= ceiling) & (np.maximum(heights, widths) >= 0.5 * text_height)
    keep &= heights * widths >= MIN_GLYPH_AREA
    if keep.sum() < 2:
        return []
    idx = np.flatnonzero(keep)
    small = boxes[idx]
    # periods and the dot of an i are small: let them join their word afterwards
    words = _group(small, gap=0.9)
    lines = _group(_union_by(small, words), gap=1.1)
    word_of = words
    line_of = lines[word_of]
    g = int(line_of.max()) + 1
    x0 = np.full(g, np.iinfo(np.int64).max); y0 = x0.copy()
    x1 = np.zeros(g, dtype=np.int64); y1 = x1.copy()
    np.minimum.at(x0, line_of, small[:, 0]); np.minimum.at(y0, line_of, small[:, 1])
    np.maximum.at(x1, line_of, small[:, 2]); np.maximum.at(y1, line_of, small[:, 3])
    members = np.bincount(line_of, minlength=g)
    h, w = y1 - y0, x1 - x0
    ok = (members >= 2) & (members <= 16) & (h >= 0.8 * text_height) & (w <= 14 * h) & (w >= 1.2 * h)
    # tallest first; ties by place (top, then left), so that the choice does not hang on the order
    # in which the components were numbered (which differs between a turned labelling and turned boxes)
    order = [int(i) for i in np.lexsort((x0, y0, -h)) if ok[i]][:max_lines]
    return [WordBox((int(x0[i]), int(y0[i]), int(x1[i]), int(y1[i])), n + 1, int(members[i])) for n, i in enumerate(order)]


def _union_by(boxes: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The bounding box of each group (rows in group order)."""
    g = int(groups.max()) + 1
    x0 = np.full(g, np.iinfo(np.int64).max); y0 = x0.copy()
    x1 = np.zeros(g, dtype=np.int64); y1 = x1.copy()
    np.minimum.at(x0, groups, boxes[:, 0]); np.minimum.at(y0, groups, boxes[:, 1])
    np.maximum.at(x1, groups, boxes[:, 2]); np.maximum.at(y1, groups, boxes[:, 3])
    return np.stack([x0, y0, x1, y1], axis=1)


def table_boxes(ink: np.ndarray, min_lines: int = 4) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of the tables of a sheet (True = ink): lattices of straight ruled lines,
    at least ``min_lines`` horizontal and as many vertical ones, crossing at (nearly) every pair, so
    that the cells form rows and columns (a 3 × 3 table or larger). A drawing's own lines cross too,
    but not as a full lattice; numbers in a table's cells are data, not reference signs."""
    ndimage = require("scipy.ndimage", "the table finder")
    if ink.shape[0] < 40 or ink.shape[1] < 40:
        return []
    # at a third of the resolution (3 × 3 blocks with any ink are ink): ruled lines survive, the cost
    # is a ninth (at a quarter, the crossings of small tables ran together)
    f = 3
    h, w = ink.shape[0] // f, ink.shape[1] // f
    small = block_any(ink, f)
    length = max(6, int(0.025 * max(h, w)))
    solid = small.astype(np.float32)
    # a ruled line: ``length`` pixels of ink in a row (column), grown back to its full length
    rows = ndimage.maximum_filter1d(ndimage.uniform_filter1d(solid, length, axis=1) > 0.999, length, axis=1)
    cols = ndimage.maximum_filter1d(ndimage.uniform_filter1d(solid, length, axis=0) > 0.999, length, axis=0)
    if not rows.any() or not cols.any():
        return []

    def grow(mask):
        return ndimage.maximum_filter1d(ndimage.maximum_filter1d(mask, 3, axis=0), 3, axis=1)

    crossings, n = ndimage.label(grow(rows) & grow(cols))
    if n < min_lines * min_lines:
        return []
    centres = np.array([((a.start + a.stop - 1) / 2, (b.start + b.stop - 1) / 2) for a, b in ndimage.find_objects(crossings)])
    network, _ = ndimage.label(rows | cols, structure=np.ones((3, 3), dtype=bool))
    owner = network[np.clip(centres[:, 0].round().astype(int), 0, h - 1), np.clip(centres[:, 1].round().astype(int), 0, w - 1)]
    out = []
    tolerance = max(1.0, 0.004 * max(h, w))
    for group in np.unique(owner[owner > 0]):
        points = centres[owner == group]
        if len(points) < min_lines * min_lines:
            continue
        ys, xs = _levels(points[:, 0], tolerance), _levels(points[:, 1], tolerance)
        if ys < min_lines or xs < min_lines or len(points) < 0.8 * xs * ys or len(points) > 1.2 * xs * ys:
            continue
        y0, x0 = points.min(axis=0)
        y1, x1 = points.max(axis=0)
        box = (f * int(x0), f * int(y0), f * int(x1) + f, f * int(y1) + f)
        if ink[box[1]:box[3], box[0]:box[2]].mean() > 0.55:
            continue  # mostly ink (a coil spring, hatching): a drawing, not a ruled table with text in it
        out.append(box)
    return out


def block_any(ink: np.ndarray, f: int) -> np.ndarray:
    """Whether each ``f`` × ``f`` block of ``ink`` holds ink (the last partial row/column of blocks
    dropped): ORs of the blocks' columns, then rows (numpy's ``any`` over two strided axes is ~9× slower)."""
    h, w = ink.shape[0] // f, ink.shape[1] // f
    blocks = ink[: f * h, : f * w].reshape(f * h, w, f)
    rows = np.logical_or.reduce([blocks[:, :, i] for i in range(f)]).reshape(h, f, w)
    return np.logical_or.reduce([rows[:, i] for i in range(f)])


def _levels(values: np.ndarray, tolerance: float) -> int:
    """How many distinct positions ``values`` take, those within ``tolerance`` counting as one."""
    ordered = np.sort(values)
    return int(1 + (np.diff(ordered) > tolerance).sum())
