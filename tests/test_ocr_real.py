"""OCR and linking on real patent data (../shared/data) and the CRAFT engine's packaged weights."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from figsearch.link.glossary import glossary
from figsearch.link.sentences import description_sentences
from figsearch.records import Paragraph


@pytest.mark.shared_data
@pytest.mark.slow
def test_tesseract_reads_ep1667425_fig1(shared_data):
    pytest.importorskip("tesserocr")
    from figsearch.ocr import create_engine, read_signs, sign_texts

    sheet = Image.open(shared_data / "ep-documents/EP1667425A1/imgf0001.tif")  # printed sideways
    found = set(sign_texts(read_signs(create_engine("tesseract"), sheet)))
    printed = {str(n) for n in range(10, 46, 2)}
    assert len(found & printed) >= 16 and len(found - printed) <= 2


@pytest.mark.shared_data
def test_glossary_of_ep1667425(shared_data):
    from lxml import etree

    root = etree.parse(str(shared_data / "ep-documents/EP1667425A1/DOC00001.xml")).getroot()
    paragraphs = [Paragraph(text=" ".join(p.itertext()), number=p.get("num")) for p in root.find(".//description").iter("p")]
    entries = {e.sign: e.term for e in glossary("EP1667425A1", description_sentences("EP1667425A1", paragraphs))}
    assert entries["14"] == "thermal head" and entries["16"] == "platen roller" and entries["44"] == "recording medium"


@pytest.mark.slow
def test_craft_engine_reads_a_line_of_signs():
    pytest.importorskip("torch")
    pytest.importorskip("easyocr_en_models")
    from figsearch.ocr import create_engine, read_signs

    image = Image.new("L", (700, 200), 255)
    ImageDraw.Draw(image).text((20, 60), "FIG. 3   14a   102", fill=0, font=ImageFont.load_default(size=48))
    signs = read_signs(create_engine("craft"), image)
    assert {(s.text, s.kind) for s in signs} == {("FIG. 3", "figure_label"), ("14a", "numeral"), ("102", "numeral")}


@pytest.mark.shared_data
@pytest.mark.slow
def test_a_sideways_sheet_dithered_all_over_is_read_by_the_builds_call(shared_data):
    """dev5's US-12243080-B2 fig2 (every stroke an edge-enhanced halftone, printed sideways) read no
    numeral of its twelve before the engine's undithered second look; ``read`` is what the build calls."""
    pytest.importorskip("tesserocr")
    from figsearch.ocr import create_engine, read_signs, sign_texts

    sheet = Image.open(shared_data / "us-utility-sheets/US-12243080-B2/fig2.png")
    signs = read_signs(create_engine("tesseract"), sheet)
    found = set(sign_texts(signs))
    printed = {"100", "104", "106", "110", "112", "120", "121", "122", "124", "126", "128", "130"}
    assert len(found & printed) >= 9 and len(found - printed) <= 2
    assert sign_texts(signs, "figure_label") == ["FIG. 2"]
