"""The tesseract engine on small drawings: numerals found, also on a sheet turned sideways."""

from __future__ import annotations

import pytest
from PIL import Image

from ocr_drawings import drawing, two_figures

pytest.importorskip("tesserocr")

from figsearch.errors import InputError  # noqa: E402
from figsearch.ocr import OCR_ENGINES, create_engine, read_signs, sign_texts  # noqa: E402
from figsearch.ocr.base import rotate_box  # noqa: E402
from figsearch.ocr.split import split_sheet  # noqa: E402

NUMERALS = ["12", "14a", "16", "102", "7", "38"]


@pytest.fixture(scope="module")
def engine():
    return create_engine("tesseract")


def test_reads_the_numerals_of_a_line_drawing(engine):
    signs = read_signs(engine, drawing(NUMERALS, "FIG. 3"))
    assert set(sign_texts(signs)) == set(NUMERALS)
    assert sign_texts(signs, "figure_label") == ["FIG. 3"]
    for sign in signs:
        x0, y0, x1, y1 = sign.box
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 1300


@pytest.mark.parametrize("angle", [90, 270])
def test_a_sheet_turned_sideways_gives_the_same_signs(engine, angle):
    upright = drawing(NUMERALS)
    turned = upright.rotate(angle, expand=True)
    assert set(sign_texts(read_signs(engine, turned))) == set(sign_texts(read_signs(engine, upright)))


def test_boxes_are_in_the_callers_pixels_for_a_turned_and_large_sheet(engine):
    upright = drawing(["12"]).resize((2000, 2600))  # above the working size: scaled down and back
    turned = upright.rotate(90, expand=True)
    (sign,) = [s for s in read_signs(engine, turned) if s.text == "12"]
    x0, y0, x1, y1 = sign.box
    # "12" was drawn at (40, 300) in the 1000x1300 drawing: in the turned 2600x2000 sheet it sits
    # near the left of the bottom edge
    assert y0 > 2000 - 2 * 140 and x0 > 2 * 290 and x1 < 2 * 400


def test_blank_and_tiny_images_give_no_signs(engine):
    assert read_signs(engine, Image.new("L", (800, 1000), 255)) == []
    assert read_signs(engine, Image.new("L", (1, 1), 0)) == []
    assert read_signs(engine, Image.new("RGBA", (300, 300), (0, 0, 0, 0))) == []


def test_rotate_box_inverts_pil_rotation():
    w, h = 100, 60
    image = Image.new("L", (w, h), 255)
    image.putpixel((10, 5), 0)
    for angle in (90, 180, 270):
        turned = image.rotate(angle, expand=True)
        x, y = next((x, y) for x in range(turned.width) for y in range(turned.height) if turned.getpixel((x, y)) == 0)
        assert rotate_box((x, y, x + 1, y + 1), angle, (w, h)) == (10, 5, 11, 6)


def test_unknown_engine_names_the_valid_ones():
    with pytest.raises(InputError, match="tesseract"):
        OCR_ENGINES.create("no-such-engine")


def test_a_sheet_with_two_labelled_figures_is_split_between_them(engine):
    sheet = two_figures(["12", "14"], ["22", "24"])
    signs = read_signs(engine, sheet)
    parts = dict(split_sheet(sheet, signs))
    assert set(parts) == {"FIG. 1", "FIG. 2"}
    assert parts["FIG. 1"][2] <= 1100 <= parts["FIG. 2"][0]


def test_one_labelled_figure_or_duplicate_labels_are_not_split(engine):
    one = drawing(NUMERALS, "FIG. 3")
    assert split_sheet(one, read_signs(engine, one)) == []
    same = Image.new("L", (2100, 1300), 255)
    same.paste(drawing(["12"], "FIG. 1"), (0, 0))
    same.paste(drawing(["14"], "FIG. 1"), (1100, 0))
    assert split_sheet(same, read_signs(engine, same)) == []


def _grid(draw, x, y, rows, cols, cell=(150, 60), width=3):
    for r in range(rows + 1):
        draw.line((x, y + r * cell[1], x + cols * cell[0], y + r * cell[1]), fill=0, width=width)
    for c in range(cols + 1):
        draw.line((x + c * cell[0], y, x + c * cell[0], y + rows * cell[1]), fill=0, width=width)


def test_a_ruled_table_is_found_and_a_drawings_crossing_lines_are_not():
    import numpy as np
    from PIL import ImageDraw

    from figsearch.ocr.preprocess import table_boxes

    sheet = Image.new("L", (1400, 1800), 255)
    draw = ImageDraw.Draw(sheet)
    _grid(draw, 200, 300, 3, 3)
    # a frame with one cross inside (2 × 2 cells) and a long line crossing a box: no table
    draw.rectangle((200, 900, 700, 1400), outline=0, width=3)
    draw.line((450, 900, 450, 1400), fill=0, width=3)
    draw.line((200, 1150, 700, 1150), fill=0, width=3)
    draw.rectangle((900, 900, 1200, 1100), outline=0, width=3)
    draw.line((850, 1000, 1250, 1000), fill=0, width=3)
    tables = table_boxes(np.asarray(sheet) < 128)
    assert len(tables) == 1
    x0, y0, x1, y1 = tables[0]
    assert abs(x0 - 200) <= 6 and abs(y0 - 300) <= 6 and abs(x1 - 650) <= 6 and abs(y1 - 480) <= 6


def test_numbers_in_a_table_are_no_signs_but_signs_beside_a_drawing_are(engine):
    from PIL import ImageDraw, ImageFont

    sheet = drawing(["12", "14"], "FIG. 3", size=(1000, 1800))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=36)
    # a table of values, and small 3 × 3 grids each with the value it stands for right at its side
    _grid(draw, 200, 1300, 3, 3, cell=(120, 60))
    for r, row in enumerate([["33", "99", "149"], ["231", "51", "127"], ["255", "183", "75"]]):
        for c, value in enumerate(row):
            draw.text((210 + c * 120, 1310 + r * 60), value, fill=0, font=font)
    _grid(draw, 720, 1300, 3, 3, cell=(40, 40))
    draw.text((676, 1302), "68", fill=0, font=font)
    _grid(draw, 720, 1150, 3, 3, cell=(40, 40))
    draw.text((676, 1152), "85", fill=0, font=font)
    signs = read_signs(engine, sheet)
    assert set(sign_texts(signs)) == {"12", "14"}
    assert {"33", "149", "183", "68", "85"} <= set(sign_texts(signs, "number"))


def test_an_arrow_pointing_at_a_numeral_is_not_part_of_its_word():
    import numpy as np
    from PIL import ImageDraw, ImageFont

    from figsearch.ocr.preprocess import detect_words

    sheet = Image.new("L", (600, 400), 255)
    draw = ImageDraw.Draw(sheet)
    draw.text((300, 150), "21", fill=0, font=ImageFont.load_default(size=40))
    x0 = draw.textbbox((300, 150), "21", font=ImageFont.load_default(size=40))[0]
    # a short slanting arrow shaft ending just left of the numeral ("↙21" as drawn by hand)
    draw.line((x0 - 8, 165, x0 - 40, 195), fill=0, width=3)
    boxes = [w.box for w in detect_words(np.asarray(sheet) < 128)]
    assert any(b[0] >= x0 - 3 for b in boxes)  # the numeral's word starts at the numeral
    assert not any(b[0] < x0 - 20 and b[2] > x0 + 10 for b in boxes)  # no word spans shaft and numeral


def test_a_box_label_longer_than_a_word_group_keeps_its_numeral():
    import numpy as np
    from PIL import ImageDraw, ImageFont

    from figsearch.ocr.preprocess import detect_words

    # one row of more than 40 glyphs (a long box label and its numeral): cut into its words, not dropped
    text = "Graphic-Based Response Generating Module 210B"
    sheet = Image.new("L", (1400, 200), 255)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=30)
    draw.text((20, 80), text, fill=0, font=font)
    x0 = draw.textbbox((20, 80), text[:-4], font=font)[2]
    words = detect_words(np.asarray(sheet) < 128, max_members=40)
    assert len(words) >= 4
    assert any(w.box[0] >= x0 and w.glyphs == 4 for w in words)  # "210B" is a word of its own
    # a field of stipple (many rows of dots) is no row of text: it stays one group, dropped
    dots = Image.new("L", (600, 600), 255)
    draw = ImageDraw.Draw(dots)
    for y in range(100, 300, 9):
        for x in range(100, 300, 9):
            draw.rectangle((x, y, x + 3, y + 3), fill=0)
    assert detect_words(np.asarray(dots) < 128, reject_phantoms=False, max_members=40) == []


def test_a_digit_joined_to_its_leader_joins_the_glyph_layer():
    import numpy as np
    from PIL import ImageDraw, ImageFont

    from figsearch.ocr.preprocess import glyph_layer

    def sheet(with_frame: bool):
        image = Image.new("L", (1800, 1000), 255)
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=40)
        for i in range(12):  # the sheet's lettering: other numerals
            draw.text((100 + i * 120, 800), str(10 + 2 * i), fill=0, font=font)
        draw.text((300, 300), "50", fill=0, font=font)
        ink = np.asarray(image)[250:400, 250:450] < 128
        ys, xs = np.nonzero(ink)
        x0, y0, x1, y1 = 250 + xs.min(), 250 + ys.min(), 250 + xs.max() + 1, 250 + ys.max() + 1
        if with_frame:  # a frame line running past the numeral, touching its "0"
            draw.line((x1, 100, x1, 600), fill=0, width=3)
        else:  # a curved leader leaving the "0" to the drawing (a large component)
            draw.line((x1 - 2, (y0 + y1) // 2, x1 + 150, y0 - 60, x1 + 300, y0 - 60), fill=0, width=3)
            draw.rectangle((x1 + 300, y0 - 200, x1 + 700, y0 + 100), outline=0, width=4)
        return np.asarray(image), (x0, y0, x1, y1)

    pixels, (x0, y0, x1, y1) = sheet(False)
    layer = np.asarray(glyph_layer(Image.fromarray(pixels)).image) < 128
    right_half = layer[y0:y1, (x0 + x1) // 2:x1 - 3]
    assert right_half.sum() > 0.5 * (pixels[y0:y1, (x0 + x1) // 2:x1 - 3] < 128).sum()  # the "0" is kept
    pixels, (x0, y0, x1, y1) = sheet(True)
    layer = np.asarray(glyph_layer(Image.fromarray(pixels)).image) < 128
    assert not layer[y0:y1, x1 - 3:x1 + 3].any()  # the frame line is not taken for a glyph



def test_the_tesseract_api_is_made_at_the_first_reading_and_reads_the_same():
    """A process that holds an engine and never reads with it (an overlapped build's writer) does not
    load tesseract's language model; the first reading makes it, and reads as an engine made before."""
    lazy = create_engine("tesseract")
    assert lazy._made is None
    lazy.close()  # nothing made, nothing to end
    lazy = create_engine("tesseract")
    sheet = drawing(NUMERALS, "FIG. 3")
    eager = create_engine("tesseract")
    eager._api  # made before any reading
    assert eager._made is not None
    assert lazy.read(sheet) == eager.read(sheet)
    assert lazy._made is not None and lazy._api is lazy._made  # made once, then kept
    lazy.close()
    eager.close()


def test_a_language_file_that_does_not_load_says_so_when_the_engine_loads(tmp_path):
    from figsearch.errors import ModelUnavailable
    from figsearch.ocr.tesseract import TesseractEngine

    (tmp_path / "eng.traineddata").write_bytes(b"not a model")
    engine = TesseractEngine(tessdata=str(tmp_path))  # the file is there: made, not loaded
    with pytest.raises(ModelUnavailable, match="cannot load .*eng.traineddata"):
        engine.load()
    with pytest.raises(ModelUnavailable):
        engine.read(drawing(NUMERALS))  # a reading says the same
    ready = create_engine("tesseract")
    ready.load()
    assert ready._made is not None
