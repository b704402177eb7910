"""The engine's second looks (``ocr.reread``): a sheet read again turned when only its label was found
sideways (a sideways sheet taken for upright), or read again undithered when its reading is mostly noise
(a sheet printed in dithered grey); the first reading kept otherwise. They run inside the engine's
``read_sheet``, so the build's ``read`` and ``read_drawing`` get the same words. Scripted engines stand
in for tesseract's reading.

(Rewritten in stop 18: these tests called ``read_drawing`` with a scripted ``read_sheet``, when the
turned re-read lived in ``read_drawing`` only; they now call ``reread.second_look`` the same way, and
the new tests below check that the build's path reads what ``read_drawing`` reads.)
"""

from __future__ import annotations

import collections
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from figsearch.ocr import parse_signs
from figsearch.ocr.base import TextBox, rotate_box
from figsearch.ocr.drawing import read_drawing
from figsearch.ocr.reread import NOISY_MIN_WORDS, noisy_reading, second_look, undither
from figsearch.ocr.signs import sign_texts
from figsearch.ocr.tesseract import TesseractEngine

SIZE = (600, 800)  # the sheet as stored (w, h); turned by 270 it is 800 wide, 600 high


class Scripted:
    """``read_sheet`` answers from a script: the sheet as stored gives ``first``, the sheet turned
    (its width and height swapped) gives ``turned`` (boxes in the turned sheet's pixels)."""

    rotations = (0, 270, 90)

    def __init__(self, first, turned):
        self.first, self.turned = first, turned
        self.calls: list[tuple[tuple[int, int], tuple[int, ...]]] = []

    def read_sheet(self, image):
        self.calls.append((image.size, self.rotations))
        return (list(self.first) if image.size == SIZE else list(self.turned)), None

    def look(self, image=None):
        """``second_look`` on the first reading, as the engine's ``read_sheet`` takes it."""
        image = image or Image.new("L", SIZE, 255)
        return second_look(self, image, *self.read_sheet(image))


LABEL_SIDEWAYS = TextBox("FIG. 36", (20, 300, 60, 500), 0.95, line=-1, rotation=270)
TURNED_NUMERALS = [TextBox(t, (100 + 150 * i, 100, 160 + 150 * i, 140), 0.97, line=1 + i) for i, t in enumerate(("160", "162", "164", "165"))]
TURNED_LABEL = [TextBox("FIG.", (300, 540, 380, 580), 0.95, line=9), TextBox("36", (390, 540, 430, 580), 0.95, line=9)]
#: what the general reading makes of background stipple: specks read as letters, unsurely
SPECKS = [TextBox("e", (5 + 40 * i, 5, 9 + 40 * i, 9), 0.3, line=1) for i in range(12)]
#: what it makes of a sheet dithered all over: hundreds of specks read as letters and digits, unsurely
DITHER_NOISE = [TextBox("y" if i % 4 else "45", (5 + 3 * i, 5, 8 + 3 * i, 9), 0.2 if i % 4 else 0.7, line=1 + i // 10)
                for i in range(NOISY_MIN_WORDS + 20)]


def test_a_sideways_sheet_taken_for_upright_is_read_again_turned():
    engine = Scripted(SPECKS + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    words, _ = engine.look()
    signs = parse_signs(words)
    assert sign_texts(signs) == ["160", "162", "164", "165"]
    assert sign_texts(signs, "figure_label") == ["FIG. 36"]
    # the turned sheet was read as it stands, by a copy: the engine's own rotations are unchanged
    assert engine.calls == [(SIZE, (0, 270, 90)), ((800, 600), (0,))]
    assert engine.rotations == (0, 270, 90)
    # boxes come back in the stored sheet's pixels
    box = next(s.box for s in signs if s.text == "160")
    assert box == rotate_box((100, 100, 160, 140), 270, SIZE)
    assert box[2] - box[0] < box[3] - box[1]  # a sideways word: taller than wide as stored


def test_an_upright_reading_with_a_numbering_keeps_its_sideways_label():
    upright = [TextBox(t, (100, 100 + 100 * i, 150, 130 + 100 * i), 0.97, line=1 + i) for i, t in enumerate(("10", "12", "14"))]
    engine = Scripted(upright + [LABEL_SIDEWAYS], TURNED_NUMERALS)
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == ["10", "12", "14"]
    assert len(engine.calls) == 1


def test_a_turned_reading_without_a_numbering_is_not_kept():
    # a design drawing with a sideways label: turned, its stipple reads sure "1", "3", "4" and one "14"
    engine = Scripted(SPECKS + [LABEL_SIDEWAYS], [TextBox(t, (100 + 100 * i, 100, 120 + 100 * i, 140), 0.9, line=1 + i) for i, t in enumerate(("1", "3", "4", "14"))]
                      + TURNED_LABEL)
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == []
    assert sign_texts(parse_signs(words), "figure_label") == ["FIG. 36"]
    assert len(engine.calls) == 2


def test_a_sheet_with_almost_nothing_read_is_not_read_again():
    # a design drawing whose only lettering is its sideways label: nothing to be misoriented
    engine = Scripted(SPECKS[:3] + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == []
    assert len(engine.calls) == 1


def test_a_reading_that_is_mostly_noise_is_noisy():
    assert noisy_reading(DITHER_NOISE)
    assert not noisy_reading(DITHER_NOISE[: NOISY_MIN_WORDS - 1])  # too few words to say
    sure = [TextBox("MODULE", w.box, 0.95, w.line) for w in DITHER_NOISE]
    assert not noisy_reading(sure)  # a dense sheet read surely


def test_a_noisy_sheet_is_read_again_undithered_turn_by_turn():
    engine = Scripted(DITHER_NOISE, TURNED_NUMERALS + TURNED_LABEL)
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == ["160", "162", "164", "165"]
    # 270 first (the commoner turn), and it read clearly: no other turn tried; a copy read it as it stands
    assert engine.calls == [(SIZE, (0, 270, 90)), ((800, 600), (0,))]
    box = next(s.box for s in parse_signs(words) if s.text == "160")
    assert box == rotate_box((100, 100, 160, 140), 270, SIZE)


def test_an_undithered_reading_without_a_numbering_is_not_kept():
    # a stippled design drawing read as noise: undithered, no turn reads a numbering
    engine = Scripted(DITHER_NOISE, SPECKS)
    words, _ = engine.look()
    assert words == DITHER_NOISE
    assert [size for size, _ in engine.calls] == [SIZE, (800, 600), (800, 600), SIZE]  # 270, 90, then 0


def test_undither_makes_a_band_of_specks_one_solid_stroke():
    from scipy import ndimage

    image = Image.new("L", (200, 80), 255)
    ImageDraw.Draw(image).rectangle((20, 30, 180, 42), fill=0)  # a stroke 13 px thick
    pixels = np.array(image)
    yy, xx = np.mgrid[0:80, 0:200]
    pixels[((xx + yy) % 5 == 0) & (pixels == 0)] = 255  # cut into diagonal specks, as an edge-enhanced halftone
    dithered = Image.fromarray(pixels)
    assert ndimage.label(np.asarray(dithered) < 128)[1] > 20
    clean = np.asarray(undither(dithered)) < 128
    assert ndimage.label(clean)[1] == 1
    assert clean[36, 100] and not clean[10, 100]


class ScriptedTesseract(TesseractEngine):
    """Tesseract's ``read_sheet`` (and so its second looks) over a scripted general reading: no
    tesseract needed."""

    def __init__(self, first, turned):  # noqa: D107 - tesseract itself is not started
        self.first, self.turned = first, turned
        self.calls: list[tuple[int, int]] = []

    def read_words(self, image):
        self.calls.append(image.size)
        return list(self.first) if image.size == SIZE else list(self.turned)


def test_the_build_reads_a_sideways_sheet_as_read_drawing_does(tmp_path):
    """``read_drawing`` (the benchmark, an upload) and the build's sign stage (``engine.read`` in its
    worker processes, then ``parse_signs`` and ``drawing_words`` in the parent) agree."""
    from figsearch.pipeline import signs as stage

    words = [TextBox(f"w{i}x", (5 + 40 * i, 5, 30 + 40 * i, 20), 0.3, line=1) for i in range(12)]
    engine = ScriptedTesseract(words + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL
                               + [TextBox("PUMP", (100, 300, 200, 340), 0.96, line=20)])
    image = Image.new("L", SIZE, 255)
    drawing = read_drawing(engine, image)
    path = tmp_path / "sheet.png"
    image.save(path)
    stage._worker_engine = engine
    try:
        read = stage._read_in_worker(str(path))
    finally:
        stage._worker_engine = None
    built = parse_signs(read)
    assert sign_texts(built) == sign_texts(drawing.signs) == ["160", "162", "164", "165"]
    assert sign_texts(built, "figure_label") == sign_texts(drawing.signs, "figure_label") == ["FIG. 36"]
    assert [s.box for s in built] == [s.box for s in drawing.signs]
    assert [w.text for w in stage.drawing_words(image, read)] == drawing.word_texts == ["PUMP"]
    # the sheet was read twice in each path (as stored, then turned), never three times
    assert engine.calls == [SIZE, (800, 600), SIZE, (800, 600)]


def test_a_noisy_sheet_is_not_read_again_turned_as_it_stands():
    # a dithered sheet whose label the label pass found sideways: turned as it stands it reads the same
    # specks, so only the undithered readings are taken (none of which reads a numbering here)
    engine = Scripted(DITHER_NOISE + [LABEL_SIDEWAYS], SPECKS)
    words, _ = engine.look()
    assert words == DITHER_NOISE + [LABEL_SIDEWAYS]
    assert len(engine.calls) == 4  # the first reading, then 270, 90 and 0 undithered (no turned re-read)


def test_a_sheet_whose_label_turn_shows_no_numeral_is_not_read_again():
    # the label pass read the lines of the label's turn and found no numeral there: a design drawing
    # with a sideways label, whose re-reading only cost time
    engine = Scripted(SPECKS + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    engine._label_turn_numerals = 0
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == []
    assert len(engine.calls) == 1
    engine = Scripted(SPECKS + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    engine._label_turn_numerals = 2
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == ["160", "162", "164", "165"]


def test_what_the_label_pass_found_is_kept_per_thread():
    """A server's threads share one engine: one upload's label-turn count must not decide another's
    second look (it was a plain attribute until stop 18's last read)."""
    import threading

    import pytest

    try:
        engine = TesseractEngine()
    except Exception as exc:  # no tesseract here: nothing to share
        pytest.skip(f"tesseract is not available: {exc}")
    engine._label_turn_numerals = 0
    seen = []
    other = threading.Thread(target=lambda: seen.append(engine._label_turn_numerals))
    other.start()
    other.join()
    assert seen == [None] and engine._label_turn_numerals == 0


def test_a_sheet_with_almost_nothing_read_but_a_numbering_in_its_label_turn_is_read_again():
    """dev6's US-10563407-B2 fig9: thin shading strokes made a sideways sheet's glyphs look upright, the
    general reading found 5 specks, the label pass read its label and 3 sure numerals at 270°."""
    engine = Scripted(SPECKS[:3] + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    engine._label_turn_numerals = 3
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == ["160", "162", "164", "165"]
    assert len(engine.calls) == 2
    # one sure numeral in the label's turn is not enough on a sheet where almost nothing was read
    engine = Scripted(SPECKS[:3] + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    engine._label_turn_numerals = 1
    words, _ = engine.look()
    assert sign_texts(parse_signs(words)) == []
    assert len(engine.calls) == 1


def test_no_second_look_where_no_numeral_can_be_cited(tmp_path):
    """A patent whose description cites no numeral (a design patent's) keeps every first reading: each
    second look is kept only for the numerals it reads, which such a patent drops as unlinked."""
    from types import SimpleNamespace

    from figsearch.ocr.reread import numerals_wanted
    from figsearch.pipeline import signs as stage

    engine = Scripted(SPECKS + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    with numerals_wanted(False):
        words, _ = engine.look()
    assert words == SPECKS + [LABEL_SIDEWAYS] and len(engine.calls) == 1
    words, _ = engine.look()  # the context closed: the sideways sheet is read again turned
    assert sign_texts(parse_signs(words)) == ["160", "162", "164", "165"]
    noisy = Scripted(DITHER_NOISE, SPECKS)
    with numerals_wanted(False):
        assert noisy.look()[0] == DITHER_NOISE and len(noisy.calls) == 1  # not read undithered either

    # read_drawing with an empty vocabulary, and the build's readers for such a patent, read once
    image = Image.new("L", SIZE, 255)
    engine = ScriptedTesseract(SPECKS + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    drawing = read_drawing(engine, image, cited=set())
    assert sign_texts(drawing.signs, "figure_label") == ["FIG. 36"] and drawing.unlinked == []
    assert engine.calls == [SIZE]
    assert sign_texts(read_drawing(engine, image).signs) == ["160", "162", "164", "165"]
    path = tmp_path / "sheet.png"
    image.save(path)
    stage._worker_engine = engine
    try:
        engine.calls.clear()
        read, ahead = stage._read_ahead_in_worker(str(path), False)
        assert engine.calls == [SIZE] and read == SPECKS + [LABEL_SIDEWAYS]
        assert ahead.words == stage.drawing_words(image, read) and ahead.parts == []
        read, _ = stage._read_ahead_in_worker(str(path), True)
        assert engine.calls == [SIZE, SIZE, (800, 600)]
    finally:
        stage._worker_engine = None
    cites = SimpleNamespace(sentences=["The pump 12 ..."], vocabulary={"12"})
    design = SimpleNamespace(sentences=["FIG. 1 is a front view of a lamp."], vocabulary=set())
    no_text = SimpleNamespace(sentences=[], vocabulary=set())
    assert [stage.numerals_wanted(t) for t in (cites, design, no_text)] == [True, False, True]


def test_a_ray_worker_takes_no_second_look_where_no_numeral_can_be_cited():
    """The Ray build's workers apply the local readers' rule: they read a design patent's drawings once,
    while ingesting (the patent's text parsed on the worker) and in the signs stage (the driver's flag)."""
    from types import SimpleNamespace

    pytest.importorskip("ray")
    from figsearch.pipeline import ray_worker
    from figsearch.records import Figure, FigureRole, Paragraph, Patent

    image = Image.new("L", SIZE, 255)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    data = buffer.getvalue()
    engine = ScriptedTesseract(SPECKS + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    seconds = collections.defaultdict(float)

    read, ahead = ray_worker._read_ahead(data, seconds, engine, False)
    assert engine.calls == [SIZE] and read == SPECKS + [LABEL_SIDEWAYS] and ahead is not None
    engine.calls.clear()
    ray_worker._read_ahead(data, seconds, engine, True)
    assert engine.calls[0] == SIZE and (800, 600) in engine.calls  # read again turned

    def unit_of(description):
        patent = Patent("USD0000001", "US", "D0000001", "S1", title="Lamp", paragraphs=[Paragraph(description)])
        figure = Figure("USD0000001-D00001", "USD0000001", role=FigureRole.DRAWING, image_path="d1.png")
        return SimpleNamespace(documents=[SimpleNamespace(patent=patent, figures=[figure])])

    for description, turned in (("FIG. 1 is a front view of a lamp.", False),
                                ("The lamp 12 has a shade 14. FIG. 1 shows the lamp 12.", True)):
        engine.calls.clear()
        boxes = ray_worker.read_signs(SimpleNamespace(source="u"), unit_of(description), {"d1.png": data}.get,
                                      engine, seconds)
        assert list(boxes) == ["USD0000001-D00001"], description
        assert ((800, 600) in engine.calls) == turned and (engine.calls == [SIZE]) != turned, description
