"""Phantom words out of a drawing's words (``figsearch.ocr.words.clean_words``): the reader's boxes fed
directly, and real readings of small PIL sheets: phantoms go, real words stay."""

from __future__ import annotations

import pytest
from PIL import ImageDraw, ImageFont

from figsearch.ocr.base import TextBox
from figsearch.ocr.drawing import sheet_words
from figsearch.ocr.words import MIN_LETTERS_ALONE, clean_words, is_label_fragment


def box(text: str, x: int = 100, y: int = 100, confidence: float = 0.95, line: int = 0) -> TextBox:
    return TextBox(text, (x, y, x + 20 * len(text), y + 30), confidence, line)


def texts(words) -> list[str]:
    return [w.text for w in words]


@pytest.mark.parametrize("phantoms", [["if"], ["FI"], ["at"], ["ry", "ry"], ["LOH", "LOK"], ["ij", "if"],
                                      ["HH", "HRH", "li"], ["ure"], ["fis"]])
def test_short_tokens_alone_on_a_drawing_go(phantoms):
    assert clean_words([box(t, x=100 + 200 * i) for i, t in enumerate(phantoms)]) == []


@pytest.mark.parametrize("fragment", ["FI", "Fl", "F1", "FIC,", "FIG.", "fI"])
def test_label_fragments_go_even_beside_real_words(fragment):
    assert is_label_fragment(fragment)
    words = [box("Processor"), box(fragment, y=400), box("Memory", y=600)]
    assert texts(clean_words(words)) == ["Processor", "Memory"]


def test_real_words_stay_and_short_ones_beside_them_too():
    words = [box("Start"), box("Yes", y=300), box("No", y=400), box("OF", y=500), box("PT", y=600), box("RF", y=700)]
    assert clean_words(words) == words
    for word in ("FRONTGATE", "LIGHT", "Memory", "(Processor)", "TRON"):
        assert texts(clean_words([box(word)])) == [word]


def test_the_threshold_is_letters_not_characters():
    assert MIN_LETTERS_ALONE == 4
    assert clean_words([box("(ML)")]) == [] and clean_words([box("A/B-")]) == []
    assert texts(clean_words([box("Tank")])) == ["Tank"]


def test_words_not_real_words_are_left_to_the_other_rules():
    """Not a label fragment: "Flow", "FILL", "Fig" words of a drawing with a longer neighbour stay."""
    assert not any(is_label_fragment(t) for t in ("Flow", "FILL", "Fe", "IF", "of"))
    assert texts(clean_words([box("Flow"), box("Fe", y=300)])) == ["Flow", "Fe"]


def test_sheet_words_cleans_unless_asked_not_to():
    """What ``read_drawing`` sorts from a reading: numerals and labels out, then the phantoms."""
    kept = [box("12", y=100), box("if", y=300), box("FIG.", y=900, line=5), box("3", x=200, y=900, line=5)]
    assert texts(sheet_words(kept, None, clean=False)) == ["if"]
    assert sheet_words(kept, None) == []


tesserocr = pytest.importorskip("tesserocr")


@pytest.fixture(scope="module")
def engine():
    from figsearch.ocr import create_engine

    return create_engine("tesseract")


def test_a_drawing_with_hatching_and_one_short_printed_token_stores_no_words(engine):
    """A design drawing (hatched shape, label) with a lone two-letter token printed beside it."""
    from ocr_drawings import drawing

    from figsearch.ocr.drawing import read_drawing

    sheet = drawing([], "FIG. 2")
    draw = ImageDraw.Draw(sheet)
    for x in range(200, 500, 9):  # hatching
        draw.line((x, 300, x + 120, 520), fill=0, width=2)
    draw.text((600, 400), "at", fill=0, font=ImageFont.load_default(size=34))
    before = read_drawing(engine, sheet)
    assert before.words == []
    assert "at" in texts(sheet_words(engine.read_sheet(sheet)[0], None, clean=False))


def test_box_labels_with_short_words_are_read_whole(engine):
    from ocr_drawings import drawing

    from figsearch.ocr.drawing import read_drawing

    sheet = drawing(["48"], "FIG. 2")
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((200, 600, 820, 700), fill=255, outline=0, width=3)
    draw.text((225, 625), "END OF SCAN", fill=0, font=ImageFont.load_default(size=34))
    assert {"END", "OF", "SCAN"} <= set(texts(read_drawing(engine, sheet).words))
