"""The OCR-engine interface: a drawing in, words with boxes and confidences out.

Backends implement one method, ``_read``, on an already prepared image (grey, at the
working scale, upright for the orientation being tried). Everything drawings need and
plain OCR lacks lives here, once: scaling to a working resolution, the orientation
search (patent sheets are often printed sideways), and mapping boxes back into the
pixels of the image the caller gave.
"""

from __future__ import annotations

import abc
import logging
import re
from dataclasses import dataclass, replace

from PIL import Image

from figsearch.registry import Registry

log = logging.getLogger(__name__)

#: a word that could be a reference numeral: what the orientation search counts
_SIGN_LIKE = re.compile(r"^\(?\d{1,4}[a-z]?['′]?\)?[.,]?$|^(fig|figure)s?\.?\d*[a-z]?$", re.IGNORECASE)


@dataclass
class TextBox:
    """One word (or short line) read in an image."""

    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the caller's image
    confidence: float  # 0..1
    #: words of one text line share a line number (used to join "FIG." and "3")
    line: int = 0
    #: the rotation (degrees counter-clockwise) under which the word was read upright
    rotation: int = 0
    #: the word stands in (or at the side of) a ruled table: a value, not a reference sign
    data: bool = False


def rotate_box(box, rotation: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map a box from an image rotated by ``rotation`` (PIL ``rotate(expand=True)``) back to
    the unrotated image of ``size`` (w, h)."""
    x0, y0, x1, y1 = box
    w, h = size
    if rotation % 360 == 0:
        return (x0, y0, x1, y1)
    if rotation % 360 == 90:  # rotated image is h wide: x' = y, y' = w - x
        return (w - y1, x0, w - y0, x1)
    if rotation % 360 == 270:  # x' = h - y, y' = x
        return (y0, h - x1, y1, h - x0)
    if rotation % 360 == 180:
        return (w - x1, h - y1, w - x0, h - y0)
    raise ValueError(f"rotation {rotation} is not a multiple of 90 degrees")


def sign_score(words: list[TextBox]) -> float:
    """How much of what was read looks like reference signs: decides the orientation."""
    return sum(w.confidence for w in words if _SIGN_LIKE.match(w.text.strip()) and w.confidence >= 0.5)


def mark_table_words(words: list[TextBox], grey: Image.Image, ink=None) -> list[TextBox]:
    """``words`` (boxes in ``grey``'s pixels) with ``data`` set on those inside a ruled table
    (``preprocess.table_boxes``) or standing right at its left or right side (a row's heading).
    ``ink``: ``grey``'s ink mask at ``ink_threshold`` when already computed."""
    import numpy as np

    from figsearch.ocr.preprocess import ink_threshold, table_boxes

    if not any(c.isdigit() for w in words for c in w.text):
        return words  # only numbers are changed by a table: no need to look for one
    if ink is None:
        pixels = np.asarray(grey)
        ink = pixels < ink_threshold(pixels)
    tables = table_boxes(ink)
    if not tables:
        return words
    out = []
    for w in words:
        x0, y0, x1, y1 = w.box
        cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, max(1, y1 - y0)
        data = False
        for tx0, ty0, tx1, ty1 in tables:
            inside = tx0 <= cx <= tx1 and ty0 <= cy <= ty1
            beside = ty0 <= cy <= ty1 and (0 <= tx0 - x1 <= 0.5 * h or 0 <= x0 - tx1 <= 0.5 * h)
            if inside or beside:
                data = True
                break
        out.append(replace(w, data=True) if data else w)
    return out


class OcrEngine(abc.ABC):
    """Image in, ``TextBox`` list out. Subclasses implement ``_read``."""

    #: registry name
    name: str = ""
    #: the long side of the image the backend works on; larger images are scaled down
    working_side: int = 1800
    #: rotations tried when the sheet's glyph shapes say it may be sideways
    rotations: tuple[int, ...] = (0, 270, 90)
    #: a rotation whose sign-like words reach this mean confidence ends the search early
    confident: float = 0.85
    #: mark words in ruled tables as data (``mark_table_words``)
    find_tables: bool = True

    @abc.abstractmethod
    def _read(self, image: Image.Image) -> list[TextBox]:
        """Read an upright, grey image at working scale; boxes in its own pixels."""

    def prepare(self, image: Image.Image) -> Image.Image:
        """Backend-specific clean-up of the scaled grey sheet (default: none)."""
        return image

    def candidate_rotations(self, prepared: Image.Image) -> tuple[int, ...]:
        """Rotations worth trying for this sheet (default: all of ``rotations``)."""
        return self.rotations

    def settled(self, words: list[TextBox]) -> bool:
        """Whether a reading in one orientation settles the orientation search without the others
        (default: never; the search then stops only on clearly read signs)."""
        return False

    def load(self) -> None:
        """Load what the engine reads with now rather than at its first reading (default: nothing to load)."""

    def working_ink(self, grey: Image.Image):
        """``grey``'s ink mask at ``ink_threshold`` if ``prepare`` kept it (default: None)."""
        return None

    @property
    def identity(self) -> dict:
        return {"name": self.name, "working_side": self.working_side}

    def _read_turned(self, prepared: Image.Image, rotation: int) -> list[TextBox]:
        """``_read`` of ``prepared`` turned by ``rotation`` (degrees counter-clockwise, PIL's
        ``rotate(expand=True)``); boxes in the turned view's pixels."""
        return self._read(prepared.rotate(rotation, expand=True) if rotation else prepared)

    def _read_oriented(self, prepared: Image.Image, rotations: tuple[int, ...]) -> list[TextBox]:
        """Read ``prepared`` under each rotation; keep the one whose words look most like signs.

        Boxes come back in ``prepared``'s (unrotated) pixels.
        """
        best: list[TextBox] = []
        best_score = -1.0
        for rotation in rotations:
            words = self._read_turned(prepared, rotation)
            score = sign_score(words)
            log.debug("%s: rotation %d scores %.1f (%d words)", self.name, rotation, score, len(words))
            if score > best_score:
                best_score = score
                best = [
                    replace(w, box=rotate_box(w.box, rotation, prepared.size), rotation=rotation) for w in words
                ]
            signs = [w for w in words if _SIGN_LIKE.match(w.text.strip())]
            if len(signs) >= 3 and score >= self.confident * len(signs):
                break  # the right way up reads clearly; the wrong ones would read noise
            if self.settled(words):
                break  # a figure label read surely: the sheet's lettering stands this way up
        return best

    def read(self, image: Image.Image) -> list[TextBox]:
        """Read ``image`` (any mode, any size); boxes are in ``image``'s pixels. The header line of
        a published sheet and page numbers are left out (``read_sheet`` gives the header's box)."""
        return self.read_sheet(image)[0]

    def read_sheet(self, image: Image.Image) -> tuple[list[TextBox], tuple[int, int, int, int] | None]:
        """(words, header box or None): ``read`` without dropping what ``figsearch.ocr.drawing``
        recognises as the sheet's header and page numbers, which come back apart."""
        from figsearch.ocr.sheet import find_header, one_sheet, page_numbers

        with one_sheet():
            words = self.read_words(image)
            header = find_header(image, words)
            numbers = page_numbers(words, image.size, header, image)
        if header is None and not numbers:
            return words, None
        drop = {id(w) for w in numbers}
        if header is not None:
            hx0, hy0, hx1, hy1 = header
            drop |= {id(w) for w in words if hx0 <= (w.box[0] + w.box[2]) / 2 <= hx1 and hy0 <= (w.box[1] + w.box[3]) / 2 <= hy1}
        return [w for w in words if id(w) not in drop], header

    def read_words(self, image: Image.Image) -> list[TextBox]:
        """Every word read in ``image``, header and page numbers included; boxes in ``image``'s pixels."""
        from figsearch.ocr.sheet import scaled_grey

        # computed once per sheet inside ``one_sheet``; the sheet's smaller ink views are scaled from it
        grey = scaled_grey(image, self.working_side)
        scale = min(1.0, self.working_side / max(image.size)) if max(image.size) else 1.0
        self._working = (image, grey)  # the scaled sheet, for a second pass over the same image
        prepared = self.prepare(grey)
        best = self._read_oriented(prepared, self.candidate_rotations(prepared))
        if best and self.find_tables:
            best = mark_table_words(best, grey, self.working_ink(grey))
        inverse = 1.0 / scale
        w0, h0 = image.size
        return [
            replace(
                w,
                box=(
                    max(0, int(w.box[0] * inverse)),
                    max(0, int(w.box[1] * inverse)),
                    min(w0, int(round(w.box[2] * inverse))),
                    min(h0, int(round(w.box[3] * inverse))),
                ),
            )
            for w in best
        ]


OCR_ENGINES: Registry[OcrEngine] = Registry("OCR engine")

#: the engine used when none is named; chosen by benchmarks/ocr_benchmark.py (see docs/ocr.md)
DEFAULT_ENGINE = "tesseract"
