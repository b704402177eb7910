"""read_drawing reads a sheet again turned when only its label was found sideways (a sideways sheet
taken for upright), and keeps the first reading otherwise. A scripted engine stands in for tesseract."""

from __future__ import annotations

from PIL import Image

from figsearch.ocr.base import TextBox, rotate_box
from figsearch.ocr.drawing import read_drawing
from figsearch.ocr.signs import sign_texts

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


LABEL_SIDEWAYS = TextBox("FIG. 36", (20, 300, 60, 500), 0.95, line=-1, rotation=270)
TURNED_NUMERALS = [TextBox(t, (100 + 150 * i, 100, 160 + 150 * i, 140), 0.97, line=1 + i) for i, t in enumerate(("160", "162", "164", "165"))]
TURNED_LABEL = [TextBox("FIG.", (300, 540, 380, 580), 0.95, line=9), TextBox("36", (390, 540, 430, 580), 0.95, line=9)]
#: what the general reading makes of background stipple: specks read as letters, unsurely
SPECKS = [TextBox("e", (5 + 40 * i, 5, 9 + 40 * i, 9), 0.3, line=1) for i in range(12)]


def test_a_sideways_sheet_taken_for_upright_is_read_again_turned():
    engine = Scripted(SPECKS + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    result = read_drawing(engine, Image.new("L", SIZE, 255))
    assert sign_texts(result.signs) == ["160", "162", "164", "165"]
    assert sign_texts(result.signs, "figure_label") == ["FIG. 36"]
    # the turned sheet was read as it stands, by a copy: the engine's own rotations are unchanged
    assert engine.calls == [(SIZE, (0, 270, 90)), ((800, 600), (0,))]
    assert engine.rotations == (0, 270, 90)
    # boxes come back in the stored sheet's pixels
    box = next(s.box for s in result.signs if s.text == "160")
    assert box == rotate_box((100, 100, 160, 140), 270, SIZE)
    assert box[2] - box[0] < box[3] - box[1]  # a sideways word: taller than wide as stored


def test_an_upright_reading_with_a_numbering_keeps_its_sideways_label():
    upright = [TextBox(t, (100, 100 + 100 * i, 150, 130 + 100 * i), 0.97, line=1 + i) for i, t in enumerate(("10", "12", "14"))]
    engine = Scripted(upright + [LABEL_SIDEWAYS], TURNED_NUMERALS)
    result = read_drawing(engine, Image.new("L", SIZE, 255))
    assert sign_texts(result.signs) == ["10", "12", "14"]
    assert len(engine.calls) == 1


def test_a_turned_reading_without_a_numbering_is_not_kept():
    # a design drawing with a sideways label: turned, its stipple reads sure "1", "3", "4" and one "14"
    engine = Scripted(SPECKS + [LABEL_SIDEWAYS], [TextBox(t, (100 + 100 * i, 100, 120 + 100 * i, 140), 0.9, line=1 + i) for i, t in enumerate(("1", "3", "4", "14"))]
                      + TURNED_LABEL)
    result = read_drawing(engine, Image.new("L", SIZE, 255))
    assert sign_texts(result.signs) == []
    assert sign_texts(result.signs, "figure_label") == ["FIG. 36"]
    assert len(engine.calls) == 2


def test_a_sheet_with_almost_nothing_read_is_not_read_again():
    # a design drawing whose only lettering is its sideways label: nothing to be misoriented
    engine = Scripted(SPECKS[:3] + [LABEL_SIDEWAYS], TURNED_NUMERALS + TURNED_LABEL)
    result = read_drawing(engine, Image.new("L", SIZE, 255))
    assert sign_texts(result.signs) == []
    assert len(engine.calls) == 1
