"""Split a drawing sheet that holds several figures, by the positions of its figure labels.

Conservative on purpose (a wrong cut hurts retrieval more than an unsplit sheet). First the
sheet is cut along straight white gutters (recursive XY-cut) such that every part holds exactly
one label and a real share of the drawing's ink. Where no such gutters exist (figures that
interlock, a label far below its figure), the connected regions of the drawing (ink joined
across small gaps) are given to the nearest label, and each figure is the box of its regions
and its label, when those boxes do not overlap. Any doubt — a duplicate label, a label without
ink of its own, overlapping figures — and the sheet stays whole.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from figsearch.imaging import to_grey
from figsearch.records import ReferenceSign

#: a gutter must be at least this fraction of the sheet's side, and never less than 4 px
MIN_GUTTER = 0.006
#: each part must hold this share of the sheet's ink outside the label boxes
MIN_INK_SHARE = 0.08
#: a component of at most this many pixels of the ~700 px view is a speck of stipple, no figure's ink
SPECK_PIXELS = 3


def _gutters(profile: np.ndarray, start: int, min_gap: int) -> list[tuple[int, int]]:
    """Runs of empty rows (or columns) of at least ``min_gap``, as (begin, end) offsets."""
    empty = np.concatenate([[False], profile == 0, [False]])
    edges = np.flatnonzero(np.diff(empty.astype(np.int8)))
    runs = edges.reshape(-1, 2)
    return [(start + a, start + b) for a, b in runs if b - a >= min_gap and a > 0 and b < len(profile)]


def _cut(ink: np.ndarray, box, labels, total_ink: float, min_gap: int):
    """Recursive XY-cut of ``box`` until each part holds one label; None when impossible."""
    x0, y0, x1, y1 = box
    if len(labels) == 1:
        return [(labels[0], box)]
    region = ink[y0:y1, x0:x1]
    best = None
    for axis in (0, 1):  # 0: horizontal gutters (cut between rows), 1: vertical gutters
        profile = region.sum(axis=1 - axis)
        offset = y0 if axis == 0 else x0
        for a, b in _gutters(profile, offset, min_gap):
            middle = (a + b) // 2
            low = [s for s in labels if (s.box[3] if axis == 0 else s.box[2]) <= middle]
            high = [s for s in labels if (s.box[1] if axis == 0 else s.box[0]) >= middle]
            if not low or not high or len(low) + len(high) != len(labels):
                continue
            if axis == 0:
                parts = ((x0, y0, x1, middle), (x0, middle, x1, y1))
            else:
                parts = ((x0, y0, middle, y1), (middle, y0, x1, y1))
            if any(_drawing_ink(ink, p, labels) < MIN_INK_SHARE * total_ink for p in parts):
                continue  # a part that is (nearly) only its label: the gutter separates a label from its figure
            width = b - a
            if best is None or width > best[0]:
                best = (width, parts, (low, high))
    if best is None:
        return None
    out = []
    for part, group in zip(best[1], best[2]):
        sub = _cut(ink, part, group, total_ink, min_gap)
        if sub is None:
            return None
        out += sub
    return out


def _drawing_ink(ink: np.ndarray, box, labels) -> float:
    x0, y0, x1, y1 = box
    total = float(ink[y0:y1, x0:x1].sum())
    for s in labels:
        lx0, ly0, lx1, ly1 = s.box
        ix0, iy0, ix1, iy1 = max(x0, lx0), max(y0, ly0), min(x1, lx1), min(y1, ly1)
        if ix1 > ix0 and iy1 > iy0:
            total -= float(ink[iy0:iy1, ix0:ix1].sum())
    return total


def split_sheet(image: Image.Image, signs: list[ReferenceSign]) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(label, box) of each figure on the sheet, or [] when it holds one figure or cannot be split safely."""
    labels = [s for s in signs if s.kind == "figure_label" and s.box]
    texts = [s.text for s in labels]
    if len(labels) < 2 or len(set(texts)) != len(texts):
        return []
    ink = np.asarray(to_grey(image)) < 128
    from figsearch.ocr.sheet import header_band

    band = header_band(image)
    if band is not None and _drawing_above_label(ink, band, labels):
        band = None
    if band is not None:  # a published sheet's header line belongs to no figure
        ink = ink.copy()
        ink[band[1]:band[3], band[0]:band[2]] = False
    total = float(ink.sum())
    if total == 0:
        return []
    h, w = ink.shape
    min_gap = max(4, int(MIN_GUTTER * max(w, h)))
    parts = _cut(ink, (0, 0, w, h), labels, total, min_gap)
    if not parts:
        return _by_regions(ink, labels, total)
    out = []
    for label, (x0, y0, x1, y1) in parts:
        sub = ink[y0:y1, x0:x1]
        rows, cols = np.flatnonzero(sub.any(axis=1)), np.flatnonzero(sub.any(axis=0))
        if rows.size == 0:
            return []
        margin = min_gap // 2
        tight = (
            max(0, x0 + int(cols[0]) - margin), max(0, y0 + int(rows[0]) - margin),
            min(w, x0 + int(cols[-1]) + 1 + margin), min(h, y0 + int(rows[-1]) + 1 + margin),
        )
        out.append((label.text, tuple(int(v) for v in tight)))
    return out


def _drawing_above_label(ink: np.ndarray, band, labels) -> bool:
    """Whether the row taken for a header line (``header_band``: geometry alone) is the drawing of a
    figure whose label stands right below it, nothing but white between them: a flat view drawn in
    dash-dot line at the top of a design sheet (the truth set's USD0915081 D00003: its "FIG. 3" strip was
    blanked as a header, and FIG. 3's part held only its label)."""
    for s in labels:
        if s.box[1] < band[3]:
            continue
        gap = ink[band[3]:s.box[1], :]
        if not gap.any():
            return True
    return False


def inside(box, part, slack: int = 2) -> bool:
    """Whether the centre of ``box`` lies in ``part``."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return part[0] - slack <= cx <= part[2] + slack and part[1] - slack <= cy <= part[3] + slack


def _by_regions(ink: np.ndarray, labels: list[ReferenceSign], total: float) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Figures as the connected regions of ink nearest to each label (see the module docstring)."""
    from scipy import ndimage

    h, w = ink.shape
    step = max(1, int(max(h, w) / 700))  # work on a ~700 px view
    small = ink[::step, ::step]
    # specks (background stipple, a few pixels of the view each) would join every figure they lie
    # between into one region (dev5's US-10011995-B2 fig17): they join none
    specks, count = ndimage.label(small, structure=np.ones((3, 3), bool))
    sizes = np.bincount(specks.ravel(), minlength=count + 1)
    if count:
        solid = sizes > SPECK_PIXELS
        solid[0] = False
        small = solid[specks]
    reach = max(2, int(0.012 * max(small.shape)))  # gaps inside one figure (broken lines, leaders)
    joined = ndimage.binary_dilation(small, iterations=reach)
    regions, count = ndimage.label(joined)
    if count < len(labels):
        return []
    boxes = ndimage.find_objects(regions)
    weight = ndimage.sum_labels(small, regions, index=np.arange(1, count + 1))
    label_boxes = [tuple(v / step for v in s.box) for s in labels]
    owned: dict[int, list[int]] = {i: [] for i in range(len(labels))}
    for r, sl in enumerate(boxes):
        if weight[r] < 0.002 * small.sum():
            continue  # specks
        box = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
        # the label itself: its region is its lettering widened by the dilation (``reach`` on each side),
        # which a fixed slack did not allow for (dev5's US-10011995-B2 fig17: "FIG. 24", printed far from
        # its drawing, owned only its own lettering, and the sheet was cut into that and the rest)
        if any(_covers(lb, box, slack=reach + 8) for lb in label_boxes):
            continue
        nearest = min(range(len(labels)), key=lambda i: _gap(label_boxes[i], box))
        owned[nearest].append(r)
    out = []
    for i, label in enumerate(labels):
        if not owned[i] or sum(weight[r] for r in owned[i]) * step * step < MIN_INK_SHARE * total * 0.5:
            return []
        # the dilation widened each region by ``reach``: take it back, then add the label's box
        x0 = (min(boxes[r][1].start for r in owned[i]) + reach) * step
        y0 = (min(boxes[r][0].start for r in owned[i]) + reach) * step
        x1 = (max(boxes[r][1].stop for r in owned[i]) - reach) * step
        y1 = (max(boxes[r][0].stop for r in owned[i]) - reach) * step
        lx0, ly0, lx1, ly1 = label.box
        margin = 2 * step
        box = (max(0, int(min(x0, lx0)) - margin), max(0, int(min(y0, ly0)) - margin),
               min(w, int(max(x1, lx1)) + margin), min(h, int(max(y1, ly1)) + margin))
        out.append((label.text, box))
    for a in range(len(out)):
        for b in range(a + 1, len(out)):
            if _overlap(out[a][1], out[b][1]) > 0.1:
                return []
    return out


def _covers(label_box, box, slack: float = 8) -> bool:
    return (box[0] >= label_box[0] - slack and box[1] >= label_box[1] - slack
            and box[2] <= label_box[2] + slack and box[3] <= label_box[3] + slack)


def _gap(a, b) -> float:
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return (dx * dx + dy * dy) ** 0.5


def _overlap(a, b) -> float:
    """Intersection over the smaller box."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 1.0
