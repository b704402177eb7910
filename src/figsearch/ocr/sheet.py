"""The parts of a drawing sheet that are not the drawing: the header line of a published sheet
("U.S. Patent  Dec. 29, 2020  Sheet 1 of 7  US D906,013 S"), page numbers, margins.

A leaf of figsearch.ocr (it imports no other ocr module), so that the engines' base class can leave
the header out of every reading without an import cycle.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Iterator

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from figsearch.ocr.base import TextBox

HEADER_BAND = 0.12
_HEADER_TOKEN = re.compile(
    r"^(u\.?s\.?|us|patent|sheet|of|pub\.?|no\.?|publication|application|"
    r"jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[.,]?$|^(19|20)\d\d[.,]?$|^d?\d{3},\d{3}$|^[a-z]?\d{1,2}[.,]?$",
    re.IGNORECASE,
)
_STRONG_HEADER = re.compile(r"^(patent|sheet|publication|application)[.,]?$", re.IGNORECASE)
#: words of a drawing: at least two letters, mostly letters

def _inside(box, area, slack: int = 4) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] - slack <= cx <= area[2] + slack and area[1] - slack <= cy <= area[3] + slack


#: results computed on one sheet, reused while ``one_sheet`` is open (key: (what, id(image), arg))
_SHEET_CACHE: ContextVar[dict | None] = ContextVar("figsearch_ocr_sheet_cache", default=None)


@contextmanager
def one_sheet() -> Iterator[None]:
    """While open, ``_ink`` and ``header_band`` compute once per image and argument: a sheet's reading
    asks for them several times (label pass, header, content box). Nested uses share the outer cache;
    it is dropped when the outermost closes, so an image changed afterwards is never answered stale."""
    if _SHEET_CACHE.get() is not None:
        yield
        return
    token = _SHEET_CACHE.set({})
    try:
        yield
    finally:
        _SHEET_CACHE.reset(token)


def _cached(what: str, image: Image.Image, arg, compute):
    cache = _SHEET_CACHE.get()
    if cache is None:
        return compute()
    key = (what, id(image), arg)
    hit = cache.get(key)
    if hit is not None and hit[0] is image:  # the image is held, so its id cannot be reused meanwhile
        return hit[1]
    value = compute()
    cache[key] = (image, value)
    return value


def _ink(image: Image.Image, side: int = 1000) -> tuple[np.ndarray, float]:
    """Ink mask of ``image`` scaled to at most ``side`` px, and the scale back to its pixels (the mask
    is shared inside ``one_sheet``: do not change it in place)."""
    return _cached("ink", image, side, lambda: _compute_ink(image, side))


#: the long side of the grey sheet that ``_ink``'s smaller views are scaled from (the engines' working side)
SCALED_SIDE = 1800


def scaled_grey(image: Image.Image, side: int = SCALED_SIDE) -> Image.Image:
    """``image`` in grey, scaled down (BOX) to at most ``side`` px; computed once per sheet inside
    ``one_sheet``. The engine reads this very sheet (``OcrEngine.read_words``), and ``_ink`` scales its
    smaller views from it (stop 19): scaling the sheet as stored again for each view (a PDF page is
    2560 x 3300 px) cost more than the steps that use them."""
    return _cached("grey", image, side, lambda: _compute_scaled(image, side))


def _compute_scaled(image: Image.Image, side: int) -> Image.Image:
    from figsearch.imaging import to_grey

    grey = to_grey(image)
    scale = min(1.0, side / max(grey.size)) if max(grey.size) else 1.0
    if scale < 1.0:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.Resampling.BOX)
    return grey


def _compute_ink(image: Image.Image, side: int) -> tuple[np.ndarray, float]:
    from figsearch.ocr.preprocess import ink_threshold

    width, height = image.size
    scale = min(1.0, side / max(width, height)) if max(width, height) else 1.0
    # from the working sheet (the same for every caller: it depends on the image alone)
    grey = scaled_grey(image, max(side, SCALED_SIDE))
    if scale < 1.0:
        grey = grey.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    pixels = np.asarray(grey)
    ink = pixels < ink_threshold(pixels)
    ink.setflags(write=False)  # shared by the callers of one sheet
    return ink, 1.0 / scale


def header_band(image: Image.Image) -> tuple[int, int, int, int] | None:
    """Where a sheet header line would be: the first row of ink in the top ``HEADER_BAND`` of the page,
    one text line high, spanning most of the width in many separate pieces, with white below it."""
    return _cached("header_band", image, None, lambda: _header_band(image))


def _header_band(image: Image.Image) -> tuple[int, int, int, int] | None:
    ndimage = __import__("scipy.ndimage", fromlist=["label"])
    ink, back = _ink(image)
    h, w = ink.shape
    if h < 50 or w < 50:
        return None
    top = ink[: int(HEADER_BAND * h)]
    rows = np.flatnonzero(top.sum(axis=1) >= 1)
    if rows.size == 0:
        return None
    start = int(rows[0])
    end = start
    while end + 1 < top.shape[0] and top[end + 1].any():
        end += 1
    end += 1
    if end - start > 0.035 * h or end >= top.shape[0] - 1:
        return None
    below = ink[end: end + max(2, int(0.01 * h))]
    if below.any():
        return None
    band = ink[start:end]
    cols = np.flatnonzero(band.any(axis=0))
    if cols.size == 0 or cols[-1] - cols[0] < 0.45 * w:
        return None
    _, pieces = ndimage.label(band)
    if pieces < 10:
        return None
    pad = max(2, int(0.004 * h))
    return (
        max(0, int((cols[0] - pad) * back)), max(0, int((start - pad) * back)),
        min(image.width, int((cols[-1] + 1 + pad) * back)), min(image.height, int((end + pad) * back)),
    )


def find_header(image: Image.Image, words: list[TextBox] | None = None) -> tuple[int, int, int, int] | None:
    """The header line of a published sheet, or None. The band must look like a header
    (``header_band``) and, when ``words`` read on the sheet are given, its words must read like one
    ("Patent", "Sheet", a date, "US D906,013 S"). Without ``words`` the geometry alone decides."""
    band = header_band(image)
    if band is None or words is None:
        return band
    inside = [w.text.strip() for w in words if _inside(w.box, band)]
    if not inside:
        return None
    strong = sum(bool(_STRONG_HEADER.match(t)) for t in inside)
    tokens = sum(bool(_HEADER_TOKEN.match(t)) for t in inside)
    return band if strong >= 1 and tokens >= 3 else None


def page_numbers(words: list[TextBox], size: tuple[int, int], header=None,
                 image: Image.Image | None = None) -> list[TextBox]:
    """Words that are page numbers or sheet counters ("3", "2/7", "- 4 -"): alone in the top or bottom
    6 % of the page, near its horizontal centre. With ``image``, alone means on white too: a number
    with ink beside it in its row (within 1.5 of its heights: a leader line, "400 ——" at the top of a
    block diagram) is a reference numeral, not a page number."""
    w, h = size
    out = []
    for word in words:
        if header and _inside(word.box, header):
            continue
        cy = (word.box[1] + word.box[3]) / 2
        cx = (word.box[0] + word.box[2]) / 2
        if not (cy < 0.06 * h or cy > 0.94 * h) or abs(cx - w / 2) > 0.15 * w:
            continue
        if re.fullmatch(r"[-–(]?\s*\d{1,3}(\s*/\s*\d{1,3})?\s*[-–)]?", word.text.strip()):
            band = [o for o in words if abs((o.box[1] + o.box[3]) / 2 - cy) < (word.box[3] - word.box[1]) and o is not word]
            if not band and (image is None or not _ink_beside(image, word.box)):
                out.append(word)
    return out


def _ink_beside(image: Image.Image, box) -> bool:
    """Whether there is ink left or right of ``box`` in its rows, within 1.5 of its heights."""
    ink, back = _ink(image)
    x0, y0, x1, y1 = (v / back for v in box)
    reach = 1.5 * (y1 - y0)
    rows = slice(max(0, int(y0)), int(np.ceil(y1)))
    left = ink[rows, max(0, int(x0 - reach)): max(0, int(x0) - 1)]
    right = ink[rows, int(np.ceil(x1)) + 1: int(np.ceil(x1 + reach))]
    return bool(left.any() or right.any())


def content_box(image: Image.Image, header=None, exclude=(), margin: float = 0.01) -> tuple[int, int, int, int] | None:
    """The box of the sheet's drawing: its ink without the header box and ``exclude`` boxes (page
    numbers), padded by ``margin`` of the long side; None for a blank sheet. An image encoder can crop
    to it (or paint the rest white) so that headers and margins do not count as the drawing."""
    ink, back = _ink(image)
    ink = ink.copy()
    for box in ([header] if header else []) + list(exclude):
        x0, y0, x1, y1 = (int(v / back) for v in box)
        ink[max(0, y0 - 1): y1 + 2, max(0, x0 - 1): x1 + 2] = False
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    pad = margin * max(image.size)
    return (
        max(0, int(cols[0] * back - pad)), max(0, int(rows[0] * back - pad)),
        min(image.width, int((cols[-1] + 1) * back + pad)), min(image.height, int((rows[-1] + 1) * back + pad)),
    )


def content_mask(image: Image.Image, header=None, exclude=()) -> Image.Image:
    """A mode-"L" mask of ``image``'s size: 255 on the drawing (``content_box``), 0 elsewhere."""
    mask = Image.new("L", image.size, 0)
    box = content_box(image, header, exclude)
    if box:
        mask.paste(255, box)
    return mask
