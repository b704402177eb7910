"""Front-page INID codes ("(10) Patent No.", "(45) Date of Patent") are no reference signs (stop 25)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from figsearch.ingest import inid
from figsearch.ingest.base import Unit
from figsearch.link.glossary import glossary
from figsearch.link.patent_text import PatentText
from figsearch.records import Paragraph, Patent, Section

# a US design patent's front page as its text layer has it (USD778788, shortened), and an abstract of the
# kind utility front pages print, whose signs are real ones; "(12)" wraps to the start of a line there
FRONT_PAGE = [
    "(12) United States Design Patent (10) Patent No.: US D778,788 S",
    "Tsai (45) Date of Patent: Feb. 14, 2017",
    "(54) BICYCLE RACK",
    "(71) Applicant: Pretty Star Store LLC, Rowland Heights, CA (US)",
    "(72) Inventor: Tsung-Yu Tsai, Changhua (TW)",
    "( 21 ) Appl . No . : 29 / 528,399",
    "(22) Filed: May 28, 2015",
    "(51) LOC (10) Cl. 12-11",
    "(52) U.S. CI. USPC D12/115",
    "(58) Field of Classification Search",
    "(56) References Cited",
    "(74) Attorney, Agent, or Firm - Muncy, Geissler",
    "(57) ABSTRACT",
    "A bicycle rack has a frame (10) and a hook",
    "(12) carried by the frame (10).",
]


def _pdf(path: Path, lines: list[str]) -> Path:
    """A one-page PDF whose text layer holds ``lines`` (Helvetica, one line each)."""
    def text(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = "BT /F1 9 Tf 40 760 Td 12 TL " + " ".join(f"({text(line)}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)
    return path


def _signs(patent: Patent) -> tuple[set[str], dict[str, str]]:
    text = PatentText.of(patent)
    names = glossary(patent.publication_number, text.sentences, text.lang, text.mentions)
    return text.vocabulary, {entry.sign: entry.term for entry in names}


def _patent(front: str, *description: str) -> Patent:
    patent = Patent(publication_number="USD0778788S1", office="US", number="D0778788", kind="S1")
    patent.paragraphs = [Paragraph(text=" ".join(front.split()), section=Section.DESCRIPTION, heading="FRONT PAGE")]
    patent.paragraphs += [Paragraph(text=t, section=Section.DESCRIPTION) for t in description]
    return patent


def test_the_codes_were_read_as_signs_before():
    """Without taking the codes out, linking names signs after the front page's fields (what use32 saw)."""
    vocabulary, names = _signs(_patent("\n".join(FRONT_PAGE)))
    assert names["45"] == "S Tsai" and names["71"] == "BICYCLE RACK" and {"56", "57", "74"} <= vocabulary


def test_front_page_codes_give_no_sign_and_real_signs_stay():
    front = inid.strip_codes("\n".join(FRONT_PAGE), front_page=True)
    assert "Patent No.: US D778,788 S" in front and "Date of Patent" in front and "BICYCLE RACK" in front
    assert "LOC Cl. 12-11" in front  # the Locarno edition of field (51) too
    vocabulary, names = _signs(_patent(front, "The housing (20) holds the lid (22). The stand 30 is welded."))
    assert vocabulary == {"10", "12", "20", "22", "30"}
    assert names == {"10": "frame", "12": "hook", "20": "housing", "22": "lid", "30": "stand"}


def test_a_real_sign_in_parentheses_stays_anywhere():
    text = "the housing (10) is fixed to the base (45) with screws; (22) filed"
    assert inid.strip_codes(text) == text
    assert inid.strip_codes(text, front_page=True) == text
    # a code at a line's start is one only on the front page, and only before a capital, another code or the end
    wrapped = "a frame (10) and a hook\n(12) carried by it\n(30) The lid"
    assert inid.strip_codes(wrapped) == wrapped
    assert inid.strip_codes(wrapped, front_page=True) == "a frame (10) and a hook\n(12) carried by it\nThe lid"
    # a number that ST.9 does not use stays, even at a line's start
    assert inid.strip_codes("(20) Filed\n(99) TITLE", front_page=True) == "(20) Filed\n(99) TITLE"


def test_codes_as_text_layers_print_them():
    assert inid.strip_codes("( 10 ) Patent No . : US D903,789 S ( 45 ) Date of Patent : Dec. 1") == \
        " Patent No . : US D903,789 S  Date of Patent : Dec. 1"
    assert inid.strip_codes("( 5 1 ) LOC ( 13 ) CI . 21-01") == " LOC CI . 21-01"
    assert inid.strip_codes("(57) CLAM The ornamental design") == " CLAM The ornamental design"
    assert inid.strip_codes("(54) (75) (73) (**) (21) (22)\nICE CHEST", front_page=True) == "(**) \nICE CHEST"
    # a code before another field's words is not taken on that ground: "(10) Filed" is not field 10
    assert inid.strip_codes("x (10) Filed: May 28") == "x (10) Filed: May 28"
    front = inid.strip_codes("\n".join(FRONT_PAGE), front_page=True)
    # of the 15 codes (the Locarno edition with them), the abstract's two signs are all that is left in brackets
    assert re.findall(r"\(\s*\d+\s*\)", front) == ["(10)", "(12)", "(10)"]


def test_pdf_front_page_paragraph_has_no_codes(tmp_path, monkeypatch):
    """Through the PDF reader: its front page's paragraph gives the abstract's signs and none of the fields'."""
    import figsearch.ingest.pdf as pdf_module

    monkeypatch.setattr(pdf_module.imaging, "render_pdf_page", lambda pdf, index, source: None)
    path = _pdf(tmp_path / "114-USD778788.pdf", FRONT_PAGE)
    [document] = pdf_module.PdfReader().read(Unit(str(path), "pdf", path, [path]))
    [front] = document.patent.paragraphs
    assert front.heading == "FRONT PAGE" and "(10) Patent No" not in front.text and "Date of Patent" in front.text
    assert document.patent.title == "Bicycle rack"  # read from "(54)" before the codes go
    vocabulary, names = _signs(document.patent)
    assert vocabulary == {"10", "12"} and names == {"10": "frame", "12": "hook"}


@pytest.mark.shared_data
def test_design_pdf_gets_no_glossary_from_its_front_page(shared_data, monkeypatch):
    """USD778788 (use32's example): its glossary was "10 United States Design Patent", "45 S Tsai", ..."""
    import figsearch.ingest.pdf as pdf_module

    monkeypatch.setattr(pdf_module.imaging, "render_pdf_page", lambda pdf, index, source: None)
    path = shared_data / "us-design-pdfs" / "114-USD778788.pdf"
    [document] = pdf_module.PdfReader().read(Unit(str(path), "pdf", path, [path]))
    vocabulary, names = _signs(document.patent)
    assert vocabulary == set() and names == {}
    assert "FIG. 1 is a perspective view of a bicycle rack" in document.patent.paragraphs[0].text
