"""Tesseract (through tesserocr, in process) on the glyph layer of a sheet.

Detection is the connected-component filter of ``preprocess`` plus tesseract's own
sparse-text layout analysis; recognition is tesseract's LSTM.
"""

from __future__ import annotations

import bisect
import glob
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from figsearch.errors import ModelUnavailable
from figsearch.extras import require
from figsearch.ocr.base import OCR_ENGINES, OcrEngine, TextBox, rotate_box
from figsearch.ocr.preprocess import (WordBox, detect_words, glyph_layer, ink_threshold, label_lines, rotate_boxes,
                                      rotations_for, turned_components, turned_pixels)
from figsearch.ocr.reread import second_look
from figsearch.ocr.signs import match_label_line, normalise_numeral, parse_signs

log = logging.getLogger(__name__)

_TESSDATA_GLOBS = (
    "/usr/share/tesseract-ocr/*/tessdata",
    "/usr/share/tesseract-ocr/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/usr/local/share/tesseract-ocr/*/tessdata",
    "/opt/homebrew/share/tessdata",
)


def find_tessdata(lang: str = "eng") -> str:
    """The folder holding ``{lang}.traineddata``: $TESSDATA_PREFIX, then the usual system places."""
    candidates: list[str] = []
    if os.environ.get("TESSDATA_PREFIX"):
        prefix = os.environ["TESSDATA_PREFIX"]
        candidates += [prefix, os.path.join(prefix, "tessdata")]
    for pattern in _TESSDATA_GLOBS:
        candidates += sorted(glob.glob(pattern), reverse=True)  # newest version first
    for folder in candidates:
        if (Path(folder) / f"{lang}.traineddata").is_file():
            return folder
    raise ModelUnavailable(
        f"tesseract language data {lang}.traineddata not found (looked in {', '.join(candidates) or 'nowhere'}); "
        "install it (Debian: apt-get install tesseract-ocr-eng) or set TESSDATA_PREFIX to its folder"
    )


#: every word of the mosaic is scaled to this height (tesseract reads best at 30-40 px)
MOSAIC_HEIGHT = 36


def _mosaic(image: Image.Image, words: list[WordBox]) -> tuple[Image.Image, list[tuple[float, float, int, int]]]:
    """Stack the word crops in one column.

    Returns the image and, per slot, (top y in the mosaic, scale, crop x0, crop y0) so that what
    tesseract reads in a slot maps back to the sheet's pixels.
    """
    pad = 3
    crops = []
    for word in words:
        x0, y0, x1, y1 = word.box
        origin = (max(0, x0 - pad), max(0, y0 - pad))
        crop = image.crop((*origin, x1 + pad, y1 + pad))
        scale = min(3.0, max(0.4, MOSAIC_HEIGHT / max(1, y1 - y0)))
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crops.append((crop.resize(size, Image.Resampling.BILINEAR), scale, origin))
    gap = MOSAIC_HEIGHT // 2
    width = max(c[0].width for c in crops) + 2 * gap
    height = sum(c[0].height for c in crops) + gap * (len(crops) + 1)
    canvas = Image.new("L", (width, height), 255)
    slots = []
    y = gap
    for crop, scale, origin in crops:
        slots.append((y - gap / 2, scale, origin[0] - gap / scale, origin[1] - y / scale))
        canvas.paste(crop, (gap, y))
        y += crop.height + gap
    return canvas, slots


#: a word whose strokes are dithered (a 3 × 3 closing adds this share of its ink or more) is read
#: closed: the checkered strokes of sheets printed in grey read as other glyphs ("1" as "4" or "E")
DITHERED = 0.12


#: a hole in a word's ink of at most this many pixels is a pinhole of grey (dithered) print, not a
#: letter's counter
PINHOLE = 4


#: ``ndimage.label``'s default structure (4-connected), made once rather than at each call
_FOUR_NEIGHBOURS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def _pinholes(crop: np.ndarray) -> bool:
    """Whether the ink of ``crop`` (True = ink) has a pinhole: a white region of at most ``PINHOLE``
    pixels enclosed by ink. Strokes printed as a checkered grey have many; the thin, clean digits of
    a small scan have none, although a closing fills their narrow counters just as much (EP1667425A1's
    abstract figure: "10", "36", "18" read as "D", "BH", "8" once closed)."""
    from scipy import ndimage

    holes, count = ndimage.label(~crop, structure=_FOUR_NEIGHBOURS)
    if count < 2:
        return False
    sizes = np.bincount(holes.ravel(), minlength=count + 1)
    edge = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
    sizes[edge] = PINHOLE + 1  # the paper around the word is no hole
    sizes[0] = PINHOLE + 1
    return bool((sizes <= PINHOLE).any())


def solidify_dithered(image: Image.Image, words: list[WordBox]) -> Image.Image:
    """``image`` with the ink of each dithered word (``DITHERED``) closed by a 3 × 3 square, so that
    its strokes are solid again; clean words are left as they are (a closing would join their letters)."""
    width, height = image.size
    boxes = []
    for word in words:
        x0, y0, x1, y1 = word.box
        x0, y0, x1, y1 = max(0, x0 - 2), max(0, y0 - 2), min(width, x1 + 2), min(height, y1 + 2)
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    if not boxes:
        return image
    # a sheet's worth of words: its pixels as one array (one copy), sliced per word; a few words (the
    # label pass): each word's crop alone, cheaper than converting the whole sheet (a ``_TurnedView``
    # gives its crops' ink itself: an ink mask seen as a grey image would be converted whole)
    ink_of = getattr(image, "ink_crop", None)
    pixels = None
    if ink_of is None:
        if len(boxes) >= _WHOLE_ARRAY:
            pixels = np.asarray(image)
            crops = [pixels[y0:y1, x0:x1] < 128 for x0, y0, x1, y1 in boxes]
        else:
            crops = [np.asarray(image.crop(box)) < 128 for box in boxes]
    else:
        crops = [ink_of(box) for box in boxes]
    out = None
    for k, closed in _dithered_closings(crops):
        x0, y0, x1, y1 = boxes[k]
        if out is None:
            out = np.array(image, order="C") if pixels is None else pixels.copy()
        out[y0:y1, x0:x1][closed] = 0
    return image if out is None else Image.fromarray(out)


def _dithered_closings(crops: list[np.ndarray]):
    """(index, closing) of each of ``crops`` (ink masks) that is dithered: its 3 × 3 closing (``_close3``)
    adds ``DITHERED`` of its ink or more, and its ink has a pinhole (``_pinholes``). All crops are laid
    out on one canvas, apart, and closed and labelled there at once: per crop, those calls cost
    more than their work on word-sized crops (two thirds of a sheet's words went to ``_pinholes``).
    The same answers as ``_close3`` and ``_pinholes`` of each crop alone (a test compares them)."""
    from scipy import ndimage

    canvas, places = _lay_out(crops)
    # on the canvas: the crop of each pixel (-1: none), and each crop's border
    whose = np.full(canvas.shape, -1, dtype=np.int32)
    border = np.zeros(canvas.shape, dtype=bool)
    for k, (y, x, h, w) in enumerate(places):
        whose[y:y + h, x:x + w] = k
        border[y, x:x + w] = border[y + h - 1, x:x + w] = True
        border[y:y + h, x] = border[y:y + h, x + w - 1] = True
    inside = whose >= 0
    # crops are one column or row apart: no crop's dilation reaches another, and its erosion sees
    # "outside" (True) where the crop alone has nothing (``_close3``'s borders)
    dilated = _spread(canvas, np.logical_or)
    dilated[~inside] = True
    closed = _spread(dilated, np.logical_and)
    holes, count = ndimage.label(inside & ~canvas, structure=_FOUR_NEIGHBOURS)
    white = holes > 0
    of_white = holes[white]
    sizes = np.bincount(of_white, minlength=count + 1)
    owner = np.zeros(count + 1, dtype=np.int64)  # the crop of each white region
    owner[of_white] = whose[white]
    edge = np.zeros(count + 1, dtype=bool)  # white regions that touch their crop's border
    edge[holes[border]] = True
    regions = np.bincount(owner[1:], minlength=len(crops))
    small = np.flatnonzero((sizes <= PINHOLE) & ~edge)
    small = small[small > 0]
    pinholed = np.bincount(owner[small], minlength=len(crops)) > 0
    pinholed &= regions >= 2  # ``_pinholes``: fewer than two white regions, none
    for k in np.flatnonzero(pinholed).tolist():
        y, x, h, w = places[k]
        ink = int(np.count_nonzero(crops[k]))
        shut = closed[y:y + h, x:x + w]
        if np.count_nonzero(shut) - ink >= DITHERED * max(1, ink):
            yield k, shut
#: from this many words on, ``solidify_dithered`` converts the whole image once rather than each crop
_WHOLE_ARRAY = 8


def _close3(ink: np.ndarray) -> np.ndarray:
    """A 3 × 3 closing (dilation, then erosion) of a boolean mask, pixels outside it ignored: the
    same as scipy.ndimage's 1-d maximum and minimum filters of size 3 (border "reflect") along each
    axis, without their per-call cost, which on word-sized crops was most of the time."""
    return _spread(_spread(ink, np.logical_or), np.logical_and)


def _spread(mask: np.ndarray, op) -> np.ndarray:
    """``op`` (or: dilation, and: erosion) of each pixel of ``mask`` with its 3 × 3 neighbours, rows
    then columns; pixels outside the mask are ignored."""
    out = mask.copy()
    op(out[1:], mask[:-1], out=out[1:])
    op(out[:-1], mask[1:], out=out[:-1])
    wide = out.copy()
    op(wide[:, 1:], out[:, :-1], out=wide[:, 1:])
    op(wide[:, :-1], out[:, 1:], out=wide[:, :-1])
    return wide


def _lay_out(crops: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """One canvas (False around them) holding every crop, one row or column apart from the others, in
    shelves (tallest first) about as wide as the canvas is tall; and (y, x, height, width) of each crop
    on it, in the crops' order."""
    area = sum((c.shape[0] + 1) * (c.shape[1] + 1) for c in crops)
    width = max(int(np.sqrt(area)) + 1, max(c.shape[1] for c in crops))
    places: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * len(crops)
    y = x = shelf = 0
    for k in sorted(range(len(crops)), key=lambda i: -crops[i].shape[0]):
        h, w = crops[k].shape
        if x and x + w > width:  # a new shelf below the last one
            y, x, shelf = y + shelf + 1, 0, 0
        places[k] = (y, x, h, w)
        x += w + 1
        shelf = max(shelf, h)
    canvas = np.zeros((y + shelf, width), dtype=bool)
    for crop, (y, x, h, w) in zip(crops, places):
        canvas[y:y + h, x:x + w] = crop
    return canvas, places


def _labels_in(words: list[TextBox]) -> list[tuple[str, tuple[int, int, int, int], float]]:
    """(label, box, confidence) of each candidate line (words sharing ``line``) that reads as a label."""
    lines: dict[int, list[TextBox]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    out = []
    for members in lines.values():
        label = match_label_line(" ".join(w.text for w in members))
        if label is None:
            continue
        box = (min(w.box[0] for w in members), min(w.box[1] for w in members),
               max(w.box[2] for w in members), max(w.box[3] for w in members))
        out.append((label, box, min(w.confidence for w in members)))
    return out


#: text that may be part of a label ("Fig", "FIG.", "ig.", "Figure")
_LOOSE_LABEL = re.compile(r"[FfEP]?[IiLl1|][Gg]|gure|GURE")


def _scaled(box, scale: float):
    return tuple(v * scale for v in box)


def _mostly_read(box, read_boxes) -> bool:
    """Whether words read surely cover most of ``box`` (a candidate line, working pixels)."""
    area = max(1.0, (box[2] - box[0]) * (box[3] - box[1]))
    covered = 0.0
    for r in read_boxes:
        ix = min(box[2], r[2]) - max(box[0], r[0])
        iy = min(box[3], r[3]) - max(box[1], r[1])
        if ix > 0 and iy > 0:
            covered += ix * iy
    return covered >= 0.6 * area


def may_hold_more_figures(image: Image.Image) -> bool:
    """Whether a white gutter (≥ 2 % of the sheet) crosses the drawing with ≥ 10 % of its ink on
    each side: a sheet that may hold more than one figure, so more than one label."""
    from figsearch.ocr.sheet import _ink

    ink, _ = _ink(image, side=400)
    total = ink.sum()
    if total == 0:
        return False
    for profile in (ink.sum(axis=1), ink.sum(axis=0)):
        filled = np.flatnonzero(profile)
        inner = profile[filled[0]: filled[-1] + 1]
        cum = np.cumsum(inner)
        empty = np.concatenate([[False], inner == 0, [False]])
        edges = np.flatnonzero(np.diff(empty.astype(np.int8))).reshape(-1, 2)
        for a, b in edges:
            if b - a >= 0.02 * len(profile) and 0.1 * total <= cum[a - 1] <= 0.9 * total:
                return True
    return False


def _overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


class _TurnedView:
    """A grey image turned by ``rotation`` (PIL's ``rotate(rotation, expand=True)``) as ``_recognise``
    reads it, its words' crops (``crop``) and its pixels (``np.asarray``), without making the whole
    turned image: a sheet's glyph layer turned, or its ink mask made an image, cost more than the crops
    of the few words read in it. ``pixels``: the image's grey pixels, or an ink mask (True: ink),
    which stands for the image with the ink black (0) on white (255)."""

    def __init__(self, pixels: np.ndarray, rotation: int = 0) -> None:
        self._pixels = np.rot90(pixels, (rotation // 90) % 4)  # a view: nothing copied
        self._mask = pixels.dtype == np.bool_
        self.height, self.width = self._pixels.shape
        self.size = (self.width, self.height)

    def _grey(self, part: np.ndarray) -> np.ndarray:
        return np.where(part, np.uint8(0), np.uint8(255)) if self._mask else part

    def __array__(self, dtype=None, copy=None):
        whole = self._grey(self._pixels)
        if dtype is not None:
            return whole.astype(dtype)
        # ``np.array(view)`` asks for a copy and takes what comes back as one: never hand out the source
        return whole.copy() if copy and whole is self._pixels else whole

    def crop(self, box) -> Image.Image:
        """As ``Image.crop``: what lies outside the image is 0."""
        x0, y0, x1, y1 = box
        out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), dtype=np.uint8)
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, self.width), min(y1, self.height)
        if ix1 > ix0 and iy1 > iy0:
            out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = self._grey(self._pixels[iy0:iy1, ix0:ix1])
        return Image.fromarray(out, "L")

    def ink_crop(self, box) -> np.ndarray:
        """``np.asarray(self.crop(box)) < 128`` for a ``box`` inside the image, without the grey crop
        (``solidify_dithered``: ``np.asarray`` of a mask's view would be a grey copy of the whole sheet)."""
        x0, y0, x1, y1 = box
        part = self._pixels[y0:y1, x0:x1]
        return part.copy() if self._mask else part < 128


#: a figure label read at least this surely in one orientation ends the orientation search (``settled``; no
#: search of the truth set and dev1-dev6 read a label in an orientation that lost, at any confidence)
SETTLED_LABEL = 0.75


class TesseractEngine(OcrEngine):
    """Tesseract LSTM on the glyph layer (lines and frames removed), with an orientation search."""

    name = "tesseract"
    working_side = 1800

    def __init__(self, lang: str = "eng", tessdata: str | None = None, label_pass: bool = True,
                 reject_phantoms: bool = True, max_word_glyphs: int = 40, solidify: bool = True,
                 tables: bool = True, invert: bool = False) -> None:
        """``label_pass``, ``reject_phantoms``, ``max_word_glyphs`` (10: numerals and labels only,
        no drawing words), ``solidify`` (dithered words read closed) and ``tables`` (numbers in
        ruled tables are data) switch off what issue 14 added, for comparisons; ``invert``: let
        tesseract also read low-confidence lines inverted (its default; off here, see docs/ocr.md)."""
        tesserocr = require("tesserocr", "the tesseract OCR engine")
        self._tesserocr = tesserocr
        self._path = tessdata or find_tessdata(lang)
        self._invert = invert
        self._made: object | None = None  # tesseract's API, made at its first use (``_api``)
        self._lock = threading.Lock()
        self._making = threading.Lock()
        # what one reading found, per thread: a server's threads share one engine
        self._per_thread = threading.local()
        self.lang = lang
        self.label_pass = label_pass
        self.reject_phantoms = reject_phantoms
        self.max_word_glyphs = max_word_glyphs
        self.solidify = solidify
        self.find_tables = tables

    @property
    def _api(self):
        """Tesseract's API, one per engine (tesserocr's API is not safe to share between threads), made
        when first used: loading the language model costs about 0.15 CPU s, which a process that holds
        the engine and never reads with it does not pay (an overlapped build's writer, whose readers
        read every drawing)."""
        if self._made is None:
            with self._making:
                if self._made is None:
                    tesserocr = self._tesserocr
                    try:
                        api = tesserocr.PyTessBaseAPI(path=self._path, lang=self.lang, psm=tesserocr.PSM.SINGLE_BLOCK)
                    except RuntimeError as exc:  # the file is there (``find_tessdata``) but does not load
                        raise ModelUnavailable(f"tesseract cannot load {Path(self._path) / self.lang}.traineddata: "
                                               f"{exc}") from None
                    if not self._invert:
                        # by default tesseract reads every line of low confidence a second time, inverted
                        # (white on black): never the case in a drawing, and ~12 % of its time on the mosaics
                        api.SetVariable("tessedit_do_invert", "0")
                    self._made = api
        return self._made

    @_api.setter
    def _api(self, api) -> None:  # a test's stand-in
        self._made = api

    def load(self) -> None:
        """Load the language model now rather than at the first reading (a server warming up, a reader
        process starting ahead of its drawings)."""
        self._api  # noqa: B018 - made on access

    @property
    def identity(self) -> dict:
        return {**super().identity, "lang": self.lang, "version": self._tesserocr.tesseract_version().split()[1]}

    def prepare(self, image: Image.Image) -> Image.Image:
        layer = glyph_layer(image)
        self._aspect = layer.aspect
        self._glyphs = layer.glyphs
        # the components found here serve the upright word detection and the label pass (no second
        # labelling of the sheet): kept for this one reading, tied to the images they belong to
        self._layer = (image, layer)
        return layer.image

    def working_ink(self, grey: Image.Image) -> np.ndarray | None:
        layer = getattr(self, "_layer", None)
        return layer[1].ink if layer is not None and layer[0] is grey else None

    def settled(self, words: list[TextBox]) -> bool:
        """A figure label read at ``SETTLED_LABEL`` or more ends the orientation search (stop 19): on the
        truth set and dev1-dev6, every search that read a label in one orientation chose that orientation
        (7 of the 31 searches that read more than one orientation read one at 0.75 or more; 293 of the
        1,217 words those 31 read in losing orientations are then not read), while each other
        orientation costs a mosaic."""
        return any(s.kind == "figure_label" and s.confidence >= SETTLED_LABEL for s in parse_signs(words))

    def candidate_rotations(self, prepared: Image.Image) -> tuple[int, ...]:
        if self._glyphs == 0:
            return (0,)
        return rotations_for(self._aspect, self.rotations)

    def _read_turned(self, prepared: Image.Image, rotation: int) -> list[TextBox]:
        """``OcrEngine._read_turned``; this reading's glyph layer, upright or turned, is read from what
        ``glyph_layer`` found in it: its components (``turned_components``: no second labelling of the
        sheet) and its black pixels (``turned_pixels``), and a turned one is not turned as a whole
        (``_TurnedView``: only the crops of its words are)."""
        layer = getattr(self, "_layer", None)
        glyphs = layer[1] if layer is not None and layer[1].image is prepared else None
        if glyphs is None or glyphs.kept is None or glyphs.pixels is None:
            return super()._read_turned(prepared, rotation)
        if not rotation:
            return self._read(prepared, glyphs.kept, glyphs.pixels)
        shape = (prepared.height, prepared.width)
        return self._read(_TurnedView(np.asarray(prepared), rotation), turned_components(glyphs.kept, rotation),
                          turned_pixels(glyphs.pixels, rotation, shape), renumber=True)

    def _read(self, image: Image.Image, labelled: tuple | None = None, pixels: tuple | None = None,
              renumber: bool = False) -> list[TextBox]:
        """Detect word boxes in the glyph layer, then recognise them all in one tesseract call.

        Tesseract's own layout analysis drops isolated single digits as noise, which is what most
        reference numerals are; so every detected word is cut out, scaled to one text height and
        stacked in a column ("mosaic"), which tesseract reads as a block of short lines.
        ``labelled``, ``pixels``, ``renumber``: what ``detect_words`` takes, when the layer's
        components and black pixels are known (``_read_turned``).
        """
        if labelled is None:
            layer = getattr(self, "_layer", None)
            labelled = layer[1].kept if layer is not None and layer[1].image is image else None
        binary = None if pixels is not None else np.asarray(image) < 128
        words = detect_words(binary, reject_phantoms=self.reject_phantoms,
                             max_members=self.max_word_glyphs, max_aspect=30.0 if self.max_word_glyphs > 10 else 8.0,
                             labelled=labelled, renumber=renumber, pixels=pixels)
        return self._recognise(image, words)

    def _recognise(self, image: Image.Image, words: list[WordBox]) -> list[TextBox]:
        """Read each of ``words`` (boxes in ``image``) through one mosaic; boxes in ``image``'s pixels."""
        if not words:
            return []
        mosaic, slots = _mosaic(solidify_dithered(image, words) if self.solidify else image, words)
        tops = [slot[0] for slot in slots]
        tesserocr = self._tesserocr
        level = tesserocr.RIL.WORD
        read: list[tuple[tuple[int, int], TextBox]] = []
        with self._lock:
            api = self._api
            # the mosaic's bytes as they are: ``SetImage`` would write it as a BMP for leptonica to decode
            api.SetImageBytes(mosaic.tobytes(), mosaic.width, mosaic.height, 1, mosaic.width)
            api.Recognize()
            for result in tesserocr.iterate_level(api.GetIterator(), level):
                if result is None:  # nothing recognised at all
                    break
                try:
                    text = result.GetUTF8Text(level)
                except RuntimeError:  # tesserocr raises on an empty word
                    continue
                box = result.BoundingBox(level)
                if not text or not text.strip() or box is None:
                    continue
                slot = bisect.bisect_right(tops, (box[1] + box[3]) / 2) - 1
                if not 0 <= slot < len(words):
                    continue
                _, scale, dx, dy = slots[slot]
                word = words[slot]
                # back to the sheet's pixels, clipped to the detected word
                x0 = max(word.box[0], int(box[0] / scale + dx))
                x1 = min(word.box[2], int(round(box[2] / scale + dx)))
                sheet_box = (x0, word.box[1], max(x0 + 1, x1), word.box[3])
                read.append(((word.line, x0), TextBox(text.strip(), sheet_box, result.Confidence(level) / 100.0, line=word.line)))
            api.Clear()
        # reading order (line, then left to right) so that "FIG." and "3" follow each other
        return [box for _, box in sorted(read, key=lambda item: item[0])]

    #: take a second look at a sheet whose first reading went wrong (``ocr.reread``: a sideways sheet
    #: taken for upright, a sheet dithered all over); the copy that re-reads has it off
    second_look = True

    def read_sheet(self, image: Image.Image) -> tuple[list[TextBox], tuple[int, int, int, int] | None]:
        """``OcrEngine.read_sheet``, then ``reread.second_look``: every caller (``read_drawing``, the
        build's ``read``, its workers) gets the same words."""
        words, header = super().read_sheet(image)
        return second_look(self, image, words, header)

    @property
    def _label_turn_numerals(self) -> int | None:
        """Sure numerals the label pass of this thread's latest reading found among the lines of its
        label's turn (None: no label found that way); ``reread.read_turned`` asks."""
        return getattr(self._per_thread, "label_turn_numerals", None)

    @_label_turn_numerals.setter
    def _label_turn_numerals(self, value: int | None) -> None:
        self._per_thread.label_turn_numerals = value

    def read_words(self, image: Image.Image) -> list[TextBox]:
        """The general reading, then a figure-label pass (``read_labels``) whose labels join the
        words where the general reading has no label of that number and none at that place."""
        self._label_turn_numerals = None
        try:
            words = super().read_words(image)
            if not self.label_pass:
                return words
            have = [s for s in parse_signs(words) if s.kind == "figure_label"]
            if have and not may_hold_more_figures(image):
                return words  # a label found, and one figure on the sheet: nothing more to look for
            extra = self.read_labels(image, words, every_rotation=not have)
        finally:
            self._working = self._layer = None  # the scaled sheet is kept for this one reading only
        texts = {s.text for s in have}
        for word in extra:
            if word.text in texts or any(_overlaps(word.box, s.box) for s in have):
                continue
            texts.add(word.text)
            words.append(word)
        return words

    def read_labels(self, image: Image.Image, words: list[TextBox] | None = None,
                    every_rotation: bool = True) -> list[TextBox]:
        """Figure labels that the general reading misses: lettering larger than the glyph filter's
        limit, italic "Fig.", labels turned sideways. Lines of glyph-sized and larger components are
        read in one mosaic per orientation; lines that read as a label ("FIG. 3", "Fig.5", "ig. 2",
        "Figure 3A") come back as one word ``FIG. n`` each. Orientations: the general reading's
        first, then (``every_rotation``) the others of ``rotations`` until one yields a label."""
        from figsearch.imaging import to_grey

        scale = min(1.0, self.working_side / max(image.size)) if max(image.size) else 1.0
        working = getattr(self, "_working", None)
        if working is not None and working[0] is image:
            grey = working[1]  # read_words scaled this very image already
        else:
            grey = to_grey(image)
            if scale < 1.0:
                grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.Resampling.BOX)
        first = words[0].rotation if words else 0
        # a label may stand sideways on a sheet whose other text is upright (and the other way round)
        order = [first] + ([r for r in self.rotations if r != first] if every_rotation else [])
        # lines the general reading read surely (numerals, words) need no second reading
        done = [w.box for w in (words or []) if w.confidence >= 0.8 and w.rotation == first
                and not _LOOSE_LABEL.search(w.text)]
        # the glyph filter found this very ink and its components (same grey, same threshold)
        layer = getattr(self, "_layer", None)
        if layer is not None and layer[0] is grey and layer[1].ink is not None:
            ink, boxes = layer[1].ink, layer[1].boxes
        else:
            pixels = np.asarray(grey)
            ink, boxes = pixels < ink_threshold(pixels), None
        from figsearch.ocr.sheet import header_band

        band = header_band(image)
        band = _scaled(band, scale) if band is not None else None
        for rotation in order:
            view_ink = np.rot90(ink, k=rotation // 90) if rotation else ink
            candidates = label_lines(view_ink, boxes=None if boxes is None else rotate_boxes(boxes, rotation, ink.shape))
            if band is not None:  # the header line of a published sheet holds no label
                candidates = [c for c in candidates if not _mostly_read(rotate_box(c.box, rotation, grey.size), [band])]
            if rotation == first and done and candidates:
                mapped = [_scaled(b, scale) for b in done]
                candidates = [c for c in candidates
                              if not _mostly_read(rotate_box(c.box, rotation, grey.size), mapped)]
            found = []
            # the turned sheet's ink as an image, of which only the crops of the lines read are made
            view = _TurnedView(ink, rotation) if candidates else None
            for tb in self._recognise(view, candidates) if candidates else []:
                found.append(tb)
            labels = _labels_in(found)
            if labels:
                # numerals read surely among the lines of that turn: a numbering printed that way too
                # (``reread.read_turned`` re-reads a sheet turned only when its label turn shows one)
                self._label_turn_numerals = sum(
                    1 for tb in found if tb.confidence >= 0.85 and (n := normalise_numeral(tb.text)) and n[1:2].isdigit())
                inverse = 1.0 / scale
                out = []
                for text, box, conf in labels:
                    x0, y0, x1, y1 = rotate_box(box, rotation, grey.size)
                    out.append(TextBox(text, (int(x0 * inverse), int(y0 * inverse), int(round(x1 * inverse)), int(round(y1 * inverse))),
                                       conf, line=-1, rotation=rotation))
                return out
        return []

    def close(self) -> None:
        if self._made is not None:
            self._made.End()


@OCR_ENGINES.register("tesseract", "Tesseract LSTM on the glyph layer of the sheet (fast; default)")
def _tesseract(**options) -> OcrEngine:
    return TesseractEngine(**options)
