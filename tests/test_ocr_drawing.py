"""read_drawing on synthetic sheets: no phantom numerals from broken lines and stipple, labels in
large and italic lettering, the header of a published sheet, drawing words, plausibility."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr_drawings import design_sheet, drawing, italic, published_sheet

pytest.importorskip("tesserocr")

from figsearch.ocr import create_engine, read_signs, sign_texts  # noqa: E402
from figsearch.ocr.drawing import read_drawing  # noqa: E402
from figsearch.ocr.sheet import content_box, content_mask, find_header, header_band  # noqa: E402

NUMERALS = ["12", "14a", "16", "102", "7", "38"]


@pytest.fixture(scope="module")
def engine():
    return create_engine("tesseract")


def test_broken_lines_and_stipple_give_no_numerals(engine):
    sheet = design_sheet("FIG. 2")
    result = read_drawing(engine, sheet)
    assert sign_texts(result.signs) == []
    assert sign_texts(result.signs, "figure_label") == ["FIG. 2"]


def test_a_sideways_design_sheet_gives_no_numerals_either(engine):
    sheet = design_sheet("FIG. 4").rotate(90, expand=True)
    assert sign_texts(read_signs(engine, sheet)) == []


def test_numerals_beside_broken_lines_are_kept(engine):
    sheet = drawing(NUMERALS, "FIG. 3")
    draw = ImageDraw.Draw(sheet)
    from ocr_drawings import dashed

    dashed(draw, (18, 150), (18, 1250))  # 20 px left of "12" and "14a"
    dashed(draw, (990, 150), (970, 1250), dash=18, gap=10, width=3)  # right of "16" and "102"
    assert set(sign_texts(read_signs(engine, sheet))) == set(NUMERALS)


@pytest.mark.parametrize("label", ["FIG. 5", "Fig. 7", "FIGURE 12"])
def test_large_labels_are_read_by_the_label_pass(engine, label):
    sheet = drawing(["12", "14"])
    big = Image.new("L", (700, 160), 255)
    ImageDraw.Draw(big).text((20, 10), label, fill=0, font=ImageFont.load_default(size=120))
    sheet.paste(big, (150, 1120))
    expected = "FIG. " + label.split()[-1]
    assert sign_texts(read_signs(engine, sheet), "figure_label") == [expected]


def test_an_italic_label_is_read(engine):
    sheet = drawing(["12", "14"])
    sheet.paste(italic("Fig. 5"), (300, 1130))
    assert sign_texts(read_signs(engine, sheet), "figure_label") == ["FIG. 5"]


def test_a_sideways_label_on_a_sheet_without_numerals_is_read(engine):
    sheet = design_sheet(label="").rotate(0)
    label = Image.new("L", (500, 120), 255)
    ImageDraw.Draw(label).text((10, 10), "FIG. 6", fill=0, font=ImageFont.load_default(size=80))
    sheet.paste(label.rotate(90, expand=True), (1150, 700))
    assert sign_texts(read_signs(engine, sheet), "figure_label") == ["FIG. 6"]


def test_the_header_of_a_published_sheet_is_no_sign_and_not_content(engine):
    sheet = published_sheet(["12", "14"])
    result = read_drawing(engine, sheet)
    assert result.header is not None and result.header[1] < 130 < result.header[3]
    assert set(sign_texts(result.signs)) == {"12", "14"}  # no 29, 2020, 1, 7 from the header
    assert result.content[1] > result.header[3]
    assert not any(w.text.lower().startswith("patent") for w in result.words)
    mask = content_mask(sheet, result.header)
    assert mask.getpixel((850, 140)) == 0 and mask.getpixel((850, 1200)) == 255


def test_no_header_on_a_plain_drawing(engine):
    sheet = drawing(NUMERALS, "FIG. 3")
    assert find_header(sheet, engine.read(sheet)) is None
    assert header_band(Image.new("L", (800, 1000), 255)) is None
    assert content_box(Image.new("L", (800, 1000), 255)) is None


def test_words_in_boxes_are_the_drawings_own_text(engine):
    sheet = drawing(["48"], "FIG. 2")
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((260, 640, 760, 720), fill=255, outline=0, width=3)
    draw.text((285, 660), "IMAGE PROCESSING UNIT", fill=0, font=ImageFont.load_default(size=34))
    result = read_drawing(engine, sheet)
    texts = {w.text for w in result.words}
    assert {"IMAGE", "PROCESSING", "UNIT"} <= texts
    assert "48" not in texts and not any(t.startswith("FIG") for t in texts)
    for w in result.words:
        assert 260 <= w.box[0] and w.box[2] <= 760


def test_numerals_the_text_does_not_cite_are_kept_apart(engine):
    sheet = drawing(NUMERALS, "FIG. 3")
    cited = {"12", "16", "102"}
    result = read_drawing(engine, sheet, cited=cited)
    assert set(sign_texts(result.signs)) == cited
    assert {s.text for s in result.unlinked} == set(NUMERALS) - cited
    design = read_drawing(engine, sheet, cited=set())  # a patent whose text cites no numeral
    assert sign_texts(design.signs) == [] and sign_texts(design.signs, "figure_label") == ["FIG. 3"]


def test_the_engines_plain_read_leaves_the_header_out(engine):
    """What the pipeline calls (engine.read + parse_signs) loses the header's date and sheet numbers too."""
    sheet = published_sheet(["12", "14"])
    words, header = engine.read_sheet(sheet)
    assert header is not None
    assert set(sign_texts(read_signs(engine, sheet))) == {"12", "14"}
    assert not any("Patent" in w.text or w.text.startswith("2020") for w in engine.read(sheet))


def test_a_numeral_with_its_leader_at_the_top_is_no_page_number():
    from figsearch.ocr.base import TextBox
    from figsearch.ocr.sheet import page_numbers

    image = Image.new("L", (1000, 1400), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 120, 900, 1200), outline=0, width=3)
    # "400 ——╮" near the top centre: its leader runs from beside it down to the frame
    draw.line((470, 40, 560, 40), fill=0, width=3)
    draw.line((560, 40, 600, 120), fill=0, width=3)
    # a lone "3" at the bottom centre: a page number
    numeral, page = TextBox("400", (400, 25, 460, 55), 0.96, line=1), TextBox("3", (490, 1330, 510, 1360), 0.96, line=9)
    assert page_numbers([numeral, page], image.size) == [numeral, page]  # by place alone, both looked like page numbers
    assert page_numbers([numeral, page], image.size, image=image) == [page]


def test_a_leader_numeral_at_the_top_of_a_block_diagram_is_read(engine):
    image = Image.new("L", (1200, 1600), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    draw.rectangle((60, 150, 1140, 1500), outline=0, width=4)
    draw.text((450, 40), "400", fill=0, font=font)
    right = draw.textbbox((450, 40), "400", font=font)[2]
    draw.line((right + 14, 62, right + 100, 62), fill=0, width=3)
    draw.line((right + 100, 62, right + 150, 150), fill=0, width=3)
    for y, text in ((400, "410"), (700, "420"), (1000, "430")):
        draw.text((300, y), text, fill=0, font=font)
    numerals = sign_texts(read_drawing(engine, image).signs)
    assert numerals == ["400", "410", "420", "430"]
