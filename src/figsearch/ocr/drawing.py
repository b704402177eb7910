"""Everything read in one drawing sheet: signs, labels, the words printed in it, its header.

``read_drawing(engine, image)`` is the one call for a sheet: the engine reads the words, then

- ``signs``: reference numerals and figure labels (``parse_signs``), without the sheet header,
  page numbers and the phantom numerals that dashes, dots and hatching make;
- ``words``: the other text printed in the drawing (box labels such as "IMAGE PROCESSING UNIT",
  flowchart steps, axis titles), each with its box: the figure's own text;
- ``header``: the box of a published sheet's header line ("U.S. Patent  Dec. 29, 2020  Sheet 1 of 7
  US D906,013 S"), or None; ``content``: the sheet without header and margins (``content_box``),
  which is what an image encoder should see.

A numeral the patent's description cites (``cited``) is trusted; one it does not cite is kept with
``linked=False`` ("unlinked", lower trust). A patent whose text cites no numeral at all (a design
patent) gets no numerals: design drawings print none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from figsearch.ocr.base import TextBox
from figsearch.records import ReferenceSign


@dataclass
class DrawingText:
    signs: list[ReferenceSign]
    #: words printed in the drawing that are neither numerals nor labels, in reading order
    words: list[TextBox] = field(default_factory=list)
    #: header line of a published sheet (x0, y0, x1, y1), None when the sheet has none
    header: tuple[int, int, int, int] | None = None
    #: the part of the sheet that holds the drawing (header, page number and margins left out)
    content: tuple[int, int, int, int] | None = None
    #: numerals read but not cited by the description (kept apart, lower trust)
    unlinked: list[ReferenceSign] = field(default_factory=list)


def read_drawing(engine, image: Image.Image, cited=None) -> DrawingText:
    """Read ``image`` with ``engine``; see the module docstring. ``cited``: the description's
    sign vocabulary (a set of numerals), None when unknown (all numerals are kept as read)."""
    from figsearch.ocr.signs import parse_signs

    words = engine.read(image)
    signs = parse_signs(words)
    return DrawingText(signs=signs, words=[])
