"""Everything read in one drawing sheet: signs, labels, the words printed in it, its header.

``read_drawing(engine, image, cited=None)`` is the one call for a sheet: the engine reads the words, then

- ``signs``: reference numerals and figure labels (``parse_signs``), without the sheet header and
  page numbers (and, by the engine, without the phantom numerals that dashes, dots and stipple make);
- ``words``: the other text printed in the drawing (box labels such as "IMAGE PROCESSING UNIT",
  flowchart steps, axis titles), each a ``TextBox`` with its box: the figure's own text, without the
  phantoms that hatching, shading and broken labels make (``figsearch.ocr.words.clean_words``);
- ``header``: the box of a published sheet's header line ("U.S. Patent  Dec. 29, 2020  Sheet 1 of 7
  US D906,013 S"), or None; ``content``: the sheet's drawing without header, page number and white
  margins (``content_box``), which is what an image encoder should see.

Plausibility for the patent (``cited``, the description's sign vocabulary, e.g.
``PatentText.vocabulary`` of ``figsearch.link.pipeline``): a numeral the description cites stays in
``signs``; one it does not cite moves to ``unlinked`` (lower trust: shown apart, never linked). A
patent whose description cites no numeral at all (a design patent) has no numerals in ``signs``:
design drawings print none. ``cited=None`` (an uploaded drawing, no text) keeps every numeral read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from figsearch.ocr.base import TextBox
from figsearch.ocr.reread import numerals_wanted
from figsearch.ocr.sheet import _inside, content_box, find_header, one_sheet, page_numbers
from figsearch.records import ReferenceSign

#: the header band of a published sheet lies in this top share of the page
_WORDLIKE = re.compile(r"^[(\"'“]?[A-Za-z][A-Za-z/&'’-]*[A-Za-z)]?[.,:;)\"”]*$")
#: a drawing word must be read this surely (tesseract confidence; at 0.8, pieces of split words and
#: symbols read as letters came through: "Proce", "AO", "yi")
MIN_WORD_CONFIDENCE = 0.9


@dataclass
class DrawingText:
    signs: list[ReferenceSign]
    #: words printed in the drawing that are neither numerals nor labels, in reading order
    words: list[TextBox] = field(default_factory=list)
    #: header line of a published sheet (x0, y0, x1, y1), None when the sheet has none
    header: tuple[int, int, int, int] | None = None
    #: the part of the sheet that holds the drawing (header, page number and margins left out)
    content: tuple[int, int, int, int] | None = None
    #: numerals read but not cited by the patent's description (kept apart, lower trust)
    unlinked: list[ReferenceSign] = field(default_factory=list)

    @property
    def word_texts(self) -> list[str]:
        return [w.text for w in self.words]


def drawing_words(words: list[TextBox], signs_used: set[int], excluded: list) -> list[TextBox]:
    """The words printed in the drawing: read surely, mostly letters, not signs, labels or header."""
    out = []
    for i, word in enumerate(words):
        text = word.text.strip()
        if i in signs_used or word.confidence < MIN_WORD_CONFIDENCE or len(text) < 2:
            continue
        if not _WORDLIKE.match(text) or sum(c.isalpha() for c in text) < 2:
            continue
        if any(_inside(word.box, box) for box in excluded):
            continue
        out.append(word)
    return out


def sheet_words(kept: list[TextBox], header, clean: bool = True) -> list[TextBox]:
    """The drawing words among the words ``kept`` of a sheet whose header box is ``header``:
    ``drawing_words``, then (``clean``) ``clean_words`` drops the phantoms that shading makes."""
    from figsearch.ocr.signs import _LABEL_WORD, normalise_label, normalise_numeral
    from figsearch.ocr.words import clean_words

    # words that made a sign (numerals, "FIG." and its number) are not drawing words
    used = {i for i, w in enumerate(kept)
            if normalise_numeral(w.text) or normalise_label(w.text) or _LABEL_WORD.match(w.text.strip())
            or re.fullmatch(r"[\d.,:/()'-]+", w.text.strip())}
    words = drawing_words(kept, used, [header] if header else [])
    return clean_words(words) if clean else words


def read_drawing(engine, image: Image.Image, cited: set[str] | None = None, content: bool = True) -> DrawingText:
    """Read ``image`` with ``engine``: see the module docstring. ``content=False``: no ``content`` box
    (for callers that want the words only; the box costs a binarisation of the whole sheet)."""
    with one_sheet():  # the sheet's ink and header band are computed once for all the steps below
        return _read_drawing(engine, image, cited, content)


def _read_drawing(engine, image: Image.Image, cited: set[str] | None, want_content: bool = True) -> DrawingText:
    from figsearch.ocr.signs import NUMERAL, parse_signs

    if hasattr(engine, "read_sheet"):
        # (the engine's own second looks, ``ocr.reread``, are in its ``read_sheet``: the build's ``read`` gets them
        # too; none when no numeral can be cited, ``cited=set()``: they are taken for numerals)
        with numerals_wanted(cited is None or bool(cited)):
            kept, header = engine.read_sheet(image)
        numbers: list[TextBox] = []
    else:  # an engine of another kind: only ``read``
        words = engine.read(image)
        header = find_header(image, words)
        numbers = page_numbers(words, image.size, header, image)
        excluded = ([header] if header else []) + [w.box for w in numbers]
        kept = [w for w in words if not any(_inside(w.box, box) for box in excluded)]
    signs = parse_signs(kept)
    text_words = sheet_words(kept, header)
    unlinked: list[ReferenceSign] = []
    if cited is not None:
        unlinked = [s for s in signs if s.kind == NUMERAL and s.text not in cited]
        signs = [s for s in signs if not (s.kind == NUMERAL and s.text not in cited)]
    content = content_box(image, header, [w.box for w in numbers]) if want_content else None
    return DrawingText(signs=signs, words=text_words, header=header, content=content, unlinked=unlinked)
