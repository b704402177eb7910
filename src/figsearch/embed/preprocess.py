"""Drawing preprocessing shared by every visual encoder (and by encoder training).

Patent sheets carry wide white margins and arbitrary aspect ratios; stretching them
to a square distorts shapes, so margins are trimmed and the drawing is padded, not stretched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from figsearch.imaging import to_grey

#: grey levels above this count as paper when trimming margins
PAPER_THRESHOLD = 235


def ink_box(image: Image.Image, threshold: int = PAPER_THRESHOLD, margin: int = 2) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the non-paper pixels, or None for a blank image."""
    pixels = np.asarray(to_grey(image))
    ink = pixels < threshold
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    h, w = pixels.shape
    return (
        max(int(cols[0]) - margin, 0),
        max(int(rows[0]) - margin, 0),
        min(int(cols[-1]) + 1 + margin, w),
        min(int(rows[-1]) + 1 + margin, h),
    )


def trim_margins(image: Image.Image, threshold: int = PAPER_THRESHOLD) -> Image.Image:
    image = to_grey(image)
    box = ink_box(image, threshold)
    return image.crop(box) if box else image


def pad_to_square(image: Image.Image, fill: int = 255) -> Image.Image:
    w, h = image.size
    side = max(w, h)
    return ImageOps.pad(image, (side, side), color=fill, centering=(0.5, 0.5)) if w != h else image


def prepare_drawing(image: Image.Image, size: int) -> Image.Image:
    """Grey, margins trimmed, padded to a square, resized to ``size``×``size`` (antialiased)."""
    square = pad_to_square(trim_margins(image))
    return square.resize((size, size), Image.Resampling.LANCZOS if square.width < size else Image.Resampling.BOX)


def strip_running_header(image: Image.Image, top: float = 0.12, max_band: float = 0.03, min_gap: float = 0.02):
    """Whiten a running header ("U.S. Patent  Sep. 4, 2007  Sheet 2 of 7  US D528,368 S").

    Sheets printed from PDFs carry one; the bulk-data TIFFs do not. Its patent number is the same
    on every sheet of a patent: left in, it teaches the encoder to read the header instead of
    looking at the drawing. A header is a thin band of ink near the top followed by a wide gap.
    """
    grey = image.convert("L")
    ink = np.asarray(grey) < 128
    height = ink.shape[0]
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0 or rows[0] > top * height:
        return image
    gaps = np.flatnonzero(np.diff(rows) > min_gap * height)
    if gaps.size == 0:
        return image
    end = rows[gaps[0]]
    if end - rows[0] > max_band * height:
        return image
    pixels = np.array(grey)
    pixels[: end + 1] = 255
    return Image.fromarray(pixels)


# -- masking what is not the drawing (issue 13 item 2) -------------------------------------------
#
# Figure labels ("FIG. 3"), reference signs ("12", "14a") and their leader lines are found from the
# pixels alone, so that an ingested sheet and the same drawing uploaded as a query (which runs no OCR)
# are cleaned exactly alike. The finder is cheap (one connected-component pass, about as costly as
# decoding the image): glyph-sized components grouped into lines of text, horizontally or vertically
# (sheets printed sideways carry vertical labels), kept only where nothing else of the drawing is near.

#: what ``mask_drawing`` can remove; ``leaders`` implies ``signs``
MASK_PARTS = ("labels", "signs", "leaders")
#: the finder works on the sheet scaled so that its longer side is at most this (boxes are scaled back)
FIND_SIDE = 1200
#: a glyph's height as a share of the sheet's longer side (12 px to 60 px on a 1200 px sheet)
GLYPH_MIN, GLYPH_MAX = 0.01, 0.05
#: reference signs are printed smaller than labels (about 0.015-0.02 of the sheet's longer side)
SIGN_MAX = 0.03


@dataclass(frozen=True)
class Clutter:
    """Boxes (x0, y0, x1, y1, in the image's pixels) of what is not the drawing."""

    #: lines of text with four glyphs or more: figure labels, titles, axis captions
    labels: tuple[tuple[int, int, int, int], ...] = ()
    #: groups of one to three glyphs standing free of the drawing: reference signs
    signs: tuple[tuple[int, int, int, int], ...] = ()
    #: free-standing thin strokes that start next to a sign: leader lines, as small tiles along each
    #: stroke (a slanted stroke's own box would cover drawing beside it)
    leaders: tuple[tuple[int, int, int, int], ...] = ()

    @classmethod
    def from_ocr(cls, signs=(), words=()) -> "Clutter":
        """The boxes the OCR stage stored for a figure (``ReferenceSign`` and ``DrawingWord`` records):
        figure labels and printed words as labels, numerals (and other numbers) as signs. Not used by
        default: an image uploaded in ``visual`` mode is not read, so the finder serves both paths."""
        labels = [s.box for s in signs if s.box and s.kind == "figure_label"] + [w.box for w in words if w.box]
        numerals = [s.box for s in signs if s.box and s.kind != "figure_label"]
        return cls(tuple(map(tuple, labels)), tuple(map(tuple, numerals)))

    def boxes(self, parts) -> list[tuple[int, int, int, int]]:
        parts = set(parts)
        return [
            *(self.labels if "labels" in parts else ()),
            *(self.signs if parts & {"signs", "leaders"} else ()),
            *(self.leaders if "leaders" in parts else ()),
        ]


def parse_mask(text: str | None) -> tuple[str, ...]:
    """``"labels,signs"`` (or ``labels+signs``) -> ("labels", "signs") in canonical order; "" or "none" -> ()."""
    from figsearch.errors import InputError

    if not text or text.strip().lower() in ("none", "off", "0"):
        return ()
    asked = {p.strip().lower() for p in text.replace("+", ",").split(",") if p.strip()}
    unknown = sorted(asked - set(MASK_PARTS))
    if unknown:
        raise InputError(f"unknown mask part(s) {', '.join(unknown)}: choose from {', '.join(MASK_PARTS)}")
    if "leaders" in asked:
        asked.add("signs")
    return tuple(p for p in MASK_PARTS if p in asked)


def _group_lines(boxes: np.ndarray, vertical: bool) -> list[list[int]]:
    """Glyph indices grouped into lines of text: similar heights, overlapping rows, small gaps."""
    if vertical:
        boxes = boxes[:, [1, 0, 3, 2]]
    n = len(boxes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(boxes[:, 0], kind="stable")
    boxes = boxes[order]
    heights = boxes[:, 3] - boxes[:, 1]
    reach_max = 1.5 * int(heights.max()) if n else 0
    for a in range(n):
        # only glyphs starting before this one's right edge plus the longest reach can join it (one
        # numpy step per glyph, so a busy sheet costs O(n * window), never a Python loop over all pairs)
        stop = int(np.searchsorted(boxes[:, 0], boxes[a, 2] + reach_max, side="right"))
        if stop <= a + 1:
            continue
        b = np.arange(a + 1, stop)
        gap = boxes[b, 0] - boxes[a, 2]
        big = np.maximum(heights[a], heights[b])
        small = np.minimum(heights[a], heights[b])
        overlap = np.minimum(boxes[a, 3], boxes[b, 3]) - np.maximum(boxes[a, 1], boxes[b, 1])
        for j in b[(gap <= 1.5 * big) & (big <= 2.0 * small) & (overlap >= 0.5 * small)]:
            parent[find(a)] = find(int(j))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    groups: dict[int, list[int]] = {}
    for i in range(n):  # in the caller's order of glyphs
        groups.setdefault(find(int(position[i])), []).append(i)
    return list(groups.values())


def _stroke_tiles(labels: np.ndarray, where: tuple, value: int, tile: int = 4) -> list:
    """Boxes of the ``tile``-pixel cells that hold ink of one component (its pixels, not its box)."""
    ys, xs = np.nonzero(labels[where] == value)
    cells = np.unique(np.stack([(ys + where[0].start) // tile, (xs + where[1].start) // tile], axis=1), axis=0)
    return [np.array([x * tile, y * tile, (x + 1) * tile, (y + 1) * tile]) for y, x in cells]


def find_clutter(image: Image.Image) -> Clutter:
    """Figure labels, reference signs and their free-standing leader lines of a drawing, from its pixels."""
    from figsearch.extras import require

    ndimage = require("scipy.ndimage", "masking labels and signs on drawings")
    grey = to_grey(image)
    width, height = grey.size
    scale = min(1.0, FIND_SIDE / max(width, height))
    small = grey.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX) if scale < 1 else grey
    ink = np.asarray(small) < 160
    labels, count = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return Clutter()
    slices = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    side = max(ink.shape)
    lo, hi = GLYPH_MIN * side, GLYPH_MAX * side
    boxes = np.array([(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices], dtype=np.int64)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    fill = areas[1:] / np.maximum(w * h, 1)

    found: dict[str, list] = {"labels": [], "signs": []}
    leaders: list = []
    taken: set[int] = set()
    for vertical in (False, True):
        tall, wide = (w, h) if vertical else (h, w)
        candidates = np.flatnonzero((tall >= lo) & (tall <= hi) & (wide <= 1.6 * tall) & (fill >= 0.08))
        if candidates.size == 0 or candidates.size > 4000:  # a sheet of hatching: nothing to read
            continue
        for group in _group_lines(boxes[candidates], vertical):
            members = {int(candidates[i]) for i in group}
            if members & taken:
                continue
            index = list(members)
            heights = tall[index]
            thickness = int(heights.max())
            if len(members) >= 4:  # a line of text: a figure label, a caption
                if heights.max() > 1.6 * heights.min():
                    continue
                kind, pad, allowed = "labels", 0.5, 0
            else:  # one to three digits (or "12a"): a reference sign, with at most its leader line beside it
                # digits are clearly taller than wide and of one size; loops of a drawing's lines seldom are
                if (wide[index] * 1.25 > tall[index]).any() or heights.max() > 1.3 * heights.min() or thickness > SIGN_MAX * side:
                    continue
                kind, pad, allowed = "signs", 1.0, 1
            box = [int(boxes[index, 0].min()), int(boxes[index, 1].min()), int(boxes[index, 2].max()), int(boxes[index, 3].max())]
            margin = int(np.ceil(pad * thickness))
            x0, y0 = max(box[0] - margin, 0), max(box[1] - margin, 0)
            x1, y1 = min(box[2] + margin, ink.shape[1]), min(box[3] + margin, ink.shape[0])
            near = {int(v) - 1 for v in np.unique(labels[y0:y1, x0:x1]) if v} - members
            # beside a label, specks (the period of "FIG. 3") do not count as the drawing; a sign stands alone
            specks = {o for o in near if areas[o + 1] <= 0.15 * thickness * thickness} if kind == "labels" else set()
            others = near - specks
            if len(others) > allowed:
                continue
            members |= {o for o in specks if w[o] <= thickness and h[o] <= thickness}
            index = list(members)
            box = [int(boxes[index, 0].min()), int(boxes[index, 1].min()), int(boxes[index, 2].max()), int(boxes[index, 3].max())]
            taken |= members
            found[kind].append(box)
            for o in others:  # beside a sign: a free-standing thin stroke is its leader line
                extent = max(w[o], h[o])
                if o not in taken and extent <= 0.2 * side and areas[o + 1] <= 4 * extent + 8:
                    leaders.extend(_stroke_tiles(labels, slices[o], o + 1))
                    taken.add(o)

    def back(items) -> tuple:
        return tuple(
            (int(b[0] / scale), int(b[1] / scale), min(int(np.ceil(b[2] / scale)), width), min(int(np.ceil(b[3] / scale)), height))
            for b in items
        )

    return Clutter(back(found["labels"]), back(found["signs"]), back(leaders))


def mask_boxes(image: Image.Image, boxes, fill: int = 255) -> Image.Image:
    """The image in grey with every box painted paper white."""
    grey = to_grey(image)
    if not boxes:
        return grey
    pixels = np.array(grey)
    for x0, y0, x1, y1 in boxes:
        pixels[max(int(y0), 0) : max(int(y1), 0), max(int(x0), 0) : max(int(x1), 0)] = fill
    return Image.fromarray(pixels)


def mask_drawing(image: Image.Image, parts, clutter: Clutter | None = None) -> Image.Image:
    """The drawing with what is not the drawing whitened: the running header of a PDF sheet always,
    then the ``parts`` (``labels``, ``signs``, ``leaders``) of ``clutter`` (found here when not given).
    With no parts, the image is returned unchanged (so masking off gives exactly the previous vectors)."""
    parts = tuple(parts)
    if not parts:
        return image
    grey = strip_running_header(to_grey(image))
    if clutter is None:
        clutter = find_clutter(grey)
    return mask_boxes(grey, clutter.boxes(parts))
