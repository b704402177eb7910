"""Second looks at a sheet whose first reading went wrong, taken by the engine itself.

``second_look(engine, image, words, header)`` runs inside the engine's ``read_sheet`` (tesseract's), so
that every caller gets the same words: ``read_drawing`` (the benchmark, an uploaded drawing), the build's
sign stage (``engine.read``), its worker processes and the Ray readers. Two cases, each rare and each
kept only when the new reading holds a numbering that the first lacks:

- *a sideways sheet taken for upright* (``read_turned``): background stipple can make the glyph shapes
  of a sideways sheet look upright, so the orientation search reads it upright and finds nothing
  (dev4's US-10011995-B2 fig28: no numeral, while the label pass, which looks in the other turns when no
  label was read, found "FIG. 36" at 270°). The sheet is read again turned that way.
- *a sheet printed in dithered grey all over* (``read_undithered``): every stroke of an edge-enhanced
  halftone (US-12243080-B2 fig2 of dev5, fig3 of the truth set) is a band of diagonal specks; the glyph
  filter sees specks whose shapes say "upright" whatever the sheet's turn, and tesseract reads them as
  hundreds of unsure letters. Such a reading is mostly noise (``noisy_reading``); the sheet is then
  blurred and thresholded (``undither``: solid strokes again) and read in each turn, and the turn that
  reads the most sure numerals wins.

The re-reading is done by a copy of the engine limited to no further turn and to no second look (the
engine itself is not changed).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from PIL import Image, ImageFilter

from figsearch.ocr.base import TextBox, rotate_box
from figsearch.ocr.signs import NUMERAL, parse_signs

#: distinct numerals of two digits or more read surely (0.85) that a sheet's reading needs before a
#: label read sideways is ignored; and that a second reading needs to replace the first
TURNED_MIN_SIGNS = 3
#: words the general reading must hold for the turned re-read: a sheet where it found (almost) none has
#: no lettering to be misoriented (design drawings, whose re-reading only cost time)
TURNED_MIN_WORDS = 10
#: ... unless the label pass, reading the lines of the label's turn, found at least this many sure numerals of
#: two digits or more among them: a numbering printed that way, on a sheet whose general reading found
#: almost nothing (dev6's US-10563407-B2 fig9: thin shading strokes made the glyphs look upright, 5 words
#: read, the label pass read "FIG. 11" and 3 of its 4 numerals at 270°). On the sheets of the truth set and
#: dev1-dev6 with fewer than 10 words and a label found in another turn, that count is 0 or 1 on every other one
TURNED_FEW_WORDS_NUMERALS = 2
#: a reading is noise when it holds at least this many words ...
NOISY_MIN_WORDS = 150
#: ... and at least this share of them is read below ``NOISY_CONFIDENCE`` (the dithered sheets of
#: the truth set and dev5: 0.75 and 0.73 of 206 and 465 words; the noisiest other sheet of the truth set
#: and dev1-dev5, a design page shaded densely (dev2's 28-USD901646.pdf page 3): 0.63 of 197)
NOISY_SHARE = 0.7
NOISY_CONFIDENCE = 0.5
#: ``undither``: Gaussian blur radius (pixels of the stored sheet) and the grey level below which the
#: blurred sheet is ink
UNDITHER_RADIUS = 2.5
UNDITHER_LEVEL = 215

#: how often each second look was taken in this process and whether its reading was kept
#: ("turned", "turned kept", "undithered", "undithered kept"): diagnostics, printed by the benchmark
TAKEN: Counter = Counter()


#: False while the sheets read belong to a patent whose description cites no numeral (``numerals_wanted``)
_NUMERALS_WANTED: ContextVar[bool] = ContextVar("figsearch_ocr_numerals_wanted", default=True)


@contextmanager
def numerals_wanted(wanted: bool) -> Iterator[None]:
    """While open with ``wanted=False``, ``second_look`` takes none: each second look is kept only when
    its reading holds more sure numerals, and the sheets read now belong to a patent whose description
    cites none (a design patent's), so every numeral read becomes an unlinked number whatever the
    reading (``PatentText.classify``, ``read_drawing(..., cited=set())``). On 123 images stored by a
    build of the first 10 design grants the turned re-read was taken 25 times, kept never: 10 % of the OCR."""
    token = _NUMERALS_WANTED.set(wanted)
    try:
        yield
    finally:
        _NUMERALS_WANTED.reset(token)


def sure_signs(words: list[TextBox]) -> int:
    """Distinct numerals of two digits or more read at 0.85 or more (the phantoms of dashes, dots and
    stipple are one-digit: "1", "3", "4")."""
    return len({s.text for s in parse_signs(words) if s.kind == NUMERAL and s.confidence >= 0.85 and s.text[1:2].isdigit()})


def second_look(engine, image: Image.Image, words: list[TextBox], header):
    """``(words, header)`` of ``engine``'s first reading of ``image``, or of a second reading that
    replaces it (see the module docstring)."""
    if not getattr(engine, "second_look", True):
        return words, header
    if not _NUMERALS_WANTED.get():
        TAKEN["skipped: no numeral cited"] += 1
        return words, header
    if noisy_reading(words):
        # read turned as it stands, a dithered sheet gives the same specks turned: only undithered
        # can it be read (in every turn), so the turned re-read is not taken (the truth set's
        # US-12243080-B2 fig3 took both: 2.3 s of its 4.8 went to the turned re-read)
        return read_undithered(engine, image, words, header)
    return read_turned(engine, image, words, header)


def _reader(engine):
    """A copy of ``engine`` that reads a sheet as it stands (no orientation search, no second look),
    sharing its recogniser."""
    upright = copy.copy(engine)
    upright.rotations = (0,)
    upright.second_look = False
    return upright


def _turned_reading(reader, image: Image.Image, turn: int):
    """``reader``'s reading of ``image`` turned by ``turn``, boxes back in ``image``'s pixels."""
    view = image.rotate(turn, expand=True) if turn else image
    words, header = reader.read_sheet(view)
    if not turn:
        return words, header
    back = [TextBox(w.text, rotate_box(w.box, turn, image.size), w.confidence, w.line, (w.rotation + turn) % 360, w.data)
            for w in words]
    return back, (rotate_box(header, turn, image.size) if header else None)


def read_turned(engine, image: Image.Image, words: list[TextBox], header):
    """A sheet whose label the label pass found only in a turn that no word of the general reading has,
    and whose general reading holds fewer than ``TURNED_MIN_SIGNS`` sure numerals, is read again turned
    that way; that reading replaces the first when it holds ``TURNED_MIN_SIGNS`` sure numerals of two
    digits or more, and more than the first (one-digit ones do not count: a sideways design drawing's
    stipple, read turned, gave sure "1", "3", "4"). A sheet where the general reading found fewer than
    ``TURNED_MIN_WORDS`` words keeps its reading (nothing lettered to be misoriented: on the truth set,
    four design drawings with a sideways label, whose re-reading only cost time) unless the label pass
    found ``TURNED_FEW_WORDS_NUMERALS`` sure numerals among the lines of that turn (a sideways numbering
    that the general reading missed altogether), and a sheet on which the label pass, reading the lines of
    that turn, found no sure numeral of two digits or more among them keeps it too
    (``TesseractEngine._label_turn_numerals``; an engine that does not say is re-read, but only when its
    general reading holds ``TURNED_MIN_WORDS`` words)."""
    # the label pass's words (line -1) read in a turn that no word of the general reading has
    general = [w for w in words if w.line != -1]
    turns = {w.rotation for w in words if w.line == -1} - {w.rotation for w in general}
    if len(turns) != 1:
        return words, header
    if len(general) < TURNED_MIN_WORDS and (getattr(engine, "_label_turn_numerals", None) or 0) < TURNED_FEW_WORDS_NUMERALS:
        return words, header
    first = sure_signs(words)
    if first >= TURNED_MIN_SIGNS:
        return words, header
    if getattr(engine, "_label_turn_numerals", None) == 0:
        # the label pass read the lines of that turn and found no numeral among them: a design drawing
        # with a sideways label (on the design pages of dev2-dev5 none; dev4's US-10011995-B2 fig28: 4).
        # Re-reading those cost the build 1.18x its OCR time (18 of 60 design drawings, none kept)
        TAKEN["turned skipped"] += 1
        return words, header
    TAKEN["turned"] += 1
    back, back_header = _turned_reading(_reader(engine), image, turns.pop())
    if sure_signs(back) < max(TURNED_MIN_SIGNS, first + 1):
        return words, header
    TAKEN["turned kept"] += 1
    return back, back_header


def noisy_reading(words: list[TextBox]) -> bool:
    """Whether the general reading is mostly noise: ``NOISY_MIN_WORDS`` words or more, of which
    ``NOISY_SHARE`` or more were read below ``NOISY_CONFIDENCE`` (specks of a dithered sheet read as
    letters)."""
    general = [w for w in words if w.line != -1]
    if len(general) < NOISY_MIN_WORDS:
        return False
    return sum(w.confidence < NOISY_CONFIDENCE for w in general) >= NOISY_SHARE * len(general)


def undither(image: Image.Image) -> Image.Image:
    """``image`` in black and white with the specks of a dithered print merged into solid strokes: a
    Gaussian blur of ``UNDITHER_RADIUS``, then ink below ``UNDITHER_LEVEL``."""
    from figsearch.imaging import to_grey

    blurred = to_grey(image).filter(ImageFilter.GaussianBlur(UNDITHER_RADIUS))
    return blurred.point(lambda v: 0 if v < UNDITHER_LEVEL else 255)


#: the turns an undithered sheet is read in, the commoner first (the first reading's turn says nothing:
#: the specks' shapes decided it)
UNDITHER_TURNS = (270, 90, 0)
#: a turn whose numerals are read this surely (their mean confidence, with one sure numeral at least)
#: ends the search: the right way up reads clearly, the others noise; a turn found right that reads too
#: few numerals to be kept is not bettered by the other turns (the truth set's US-12243080-B2 fig3:
#: "310", "110" sure, "312" at 0.76 at 270°; nothing at 90°)
UNDITHER_CLEAR = 0.85


def _clear(words: list[TextBox]) -> bool:
    signs = [s for s in parse_signs(words) if s.kind == NUMERAL]
    return sure_signs(words) >= 1 and sum(s.confidence for s in signs) >= UNDITHER_CLEAR * len(signs)


def _looks_sideways(engine, clean: Image.Image) -> bool:
    """Whether the glyphs of the undithered sheet are wider than tall (``preprocess.rotations_for``
    would try only the two sideways turns): then the upright turn is not read (the truth set's
    US-12243080-B2 fig3: one reading fewer)."""
    from figsearch.ocr.preprocess import glyph_layer, rotations_for

    side = getattr(engine, "working_side", 1800)
    scale = min(1.0, side / max(clean.size)) if max(clean.size) else 1.0
    grey = clean if scale >= 1.0 else clean.resize((max(1, round(clean.width * scale)), max(1, round(clean.height * scale))),
                                                    Image.Resampling.BOX)
    layer = glyph_layer(grey)
    return layer.glyphs > 0 and 0 not in rotations_for(layer.aspect, (0, 270, 90))


def read_undithered(engine, image: Image.Image, words: list[TextBox], header):
    """A sheet whose reading is mostly noise (``noisy_reading``, checked by ``second_look``) is read again undithered, turn by turn
    (``UNDITHER_TURNS``, of the engine's ``rotations``) until one reads clearly (``UNDITHER_CLEAR``); the
    turn with the most sure numerals (``sure_signs``; ties: the earlier turn) replaces the first reading
    when it holds ``TURNED_MIN_SIGNS`` of them and more than the first."""
    TAKEN["undithered"] += 1
    first = sure_signs(words)
    clean = undither(image)
    reader = _reader(engine)
    best, best_sure = None, max(TURNED_MIN_SIGNS, first + 1) - 1
    allowed = getattr(engine, "rotations", (0,))
    turns = [t for t in UNDITHER_TURNS if t in allowed]
    if _looks_sideways(engine, clean):
        turns = [t for t in turns if t % 180] or turns  # solid again, its glyphs' shape can be trusted to say "sideways"
    for turn in turns:
        reading = _turned_reading(reader, clean, turn)
        sure = sure_signs(reading[0])
        if sure > best_sure:
            best, best_sure = reading, sure
        if _clear(reading[0]):
            break
    if best is None:
        return words, header
    TAKEN["undithered kept"] += 1
    return best
