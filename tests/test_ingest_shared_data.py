"""Ingest on the real patent data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from figsearch.ingest.base import Unit
from figsearch.ingest.figtext import figure_sentences
from figsearch.ingest.runner import ingest_paths
from figsearch.records import FigureRole
from figsearch.store import Collection

pytestmark = pytest.mark.shared_data


def ingest(collection_dir: Path, *paths, jobs=1):
    with Collection.open(collection_dir, create=True) as collection:
        summary = ingest_paths(collection, list(paths), jobs=jobs)
    return summary


def test_ep1667425_drawings_and_text(shared_data, collection_dir):
    summary = ingest(collection_dir, shared_data / "ep-documents")
    assert not summary.failures
    with Collection.open(collection_dir) as collection:
        figures = collection.figures(patent="EP1667425A1")
        drawings = [f.figure_id for f in figures if f.role == FigureRole.DRAWING]
        assert drawings == [f"EP1667425A1-f{i:04d}" for i in range(1, 9)]
        assert [f.figure_id for f in figures if f.role == FigureRole.FRONT_PAGE] == ["EP1667425A1-af001"]
        patent = collection.patent("EP1667425A1")
        assert patent.title == "Image forming method and image forming apparatus"
        assert len(patent.paragraphs) > 50
        assert any("thermal head 14" in p.text for p in patent.paragraphs)
        brief = [p for p in patent.paragraphs if p.heading and "BRIEF DESCRIPTION" in p.heading]
        assert brief and brief[0].text.startswith("FIG. 1 is a block diagram")
        formulae = collection.figures(patent="EP1599469B1")
        assert formulae and all(f.role == FigureRole.NON_DRAWING for f in formulae)


def test_us_applications(shared_data, collection_dir):
    summary = ingest(collection_dir, shared_data / "us-applications")
    assert not summary.failures
    with Collection.open(collection_dir) as collection:
        for pub, sheets in (("US20250204297A1", 14), ("US20250250937A1", 8)):
            figures = collection.figures(patent=pub)
            assert [f.role for f in figures].count(FigureRole.DRAWING) == sheets
            assert figures[0].figure_id == f"{pub}-D00000" and figures[0].role == FigureRole.FRONT_PAGE
            assert len(collection.patent(pub).paragraphs) > 100
        # eight figures on eight sheets: each sheet gets its brief description
        sheet = collection.figure("US20250250937A1-D00003")
        assert sheet.label == "FIG. 3" and sheet.description.startswith("FIG. 3")
        assert any("turbine engine 10" in p.text for p in collection.patent("US20250250937A1").paragraphs)


def test_text_only_xml_parses_or_is_refused(shared_data, collection_dir):
    summary = ingest(collection_dir, shared_data / "xml-text-only")
    with Collection.open(collection_dir) as collection:
        counts = collection.counts()
        formats = counts["formats"]
    assert counts["patents"] == 33 + 18
    assert formats == {"ep-xml": 33, "us-xml": 12, "us-xml-old": 6}
    [failure] = summary.failures
    assert failure.source.endswith("cpc-scheme-A01L.xml") and "not a patent document" in failure.reason


def test_every_design_pdf_has_a_number_and_drawing_pages(shared_data, monkeypatch):
    """All 104 PDFs, read without rendering pixels (rendering is covered by the benchmark)."""
    import figsearch.ingest.pdf as pdf_module

    monkeypatch.setattr(pdf_module.imaging, "render_pdf_page", lambda pdf, index, source: None)
    reader = pdf_module.PdfReader()
    numbers, drawings, described = set(), 0, 0
    paths = sorted((shared_data / "us-design-pdfs").glob("*.pdf"))
    assert len(paths) == 104
    for path in paths:
        try:
            [document] = reader.read(Unit(str(path), "pdf", path, [path]))
        except Exception as exc:  # the two image-only PDFs without a title need the ocr extra
            pytest.importorskip("tesserocr", reason=f"{path.name} needs OCR of its front page: {exc}")
            raise
        roles = collections.Counter(image.role for image in document.images)
        assert roles[FigureRole.FRONT_PAGE] == 1 and roles[FigureRole.DRAWING] >= 1, path.name
        assert document.patent.publication_number.startswith("USD")
        numbers.add(document.patent.publication_number)
        drawings += roles[FigureRole.DRAWING]
        described += sum(bool(image.description) for image in document.images)
    assert len(numbers) == 104
    assert drawings >= 700
    # the front pages' two columns read one after the other (stop 25: 387 of 709; 32 before, some shifted by one)
    assert described >= 380


def test_a_two_column_front_page_is_read_column_by_column(shared_data, monkeypatch):
    """USPTO's text layer runs each printed row across both columns; read by columns, the brief description
    is whole again and each sheet gets its figure's sentence (here 9 figures on 9 sheets)."""
    import figsearch.ingest.pdf as pdf_module

    monkeypatch.setattr(pdf_module.imaging, "render_pdf_page", lambda pdf, index, source: None)
    reader = pdf_module.PdfReader()
    path = shared_data / "us-design-pdfs" / "114-USD778788.pdf"
    [document] = reader.read(Unit(str(path), "pdf", path, [path]))
    front = document.patent.paragraphs[0].text
    assert "DESCRIPTION. FIG. 1 is a perspective view of a bicycle rack; FIG. 2 is a front view thereof;" in front
    assert "References Cited U.S. PATENT DOCUMENTS D201,143 S" in front  # the left column's list, whole too
    path = shared_data / "us-design-pdfs" / "105-USD910780.pdf"
    [document] = reader.read(Unit(str(path), "pdf", path, [path]))
    sheets = [(image.key, image.label, image.description) for image in document.images if image.role == FigureRole.DRAWING]
    assert [(key, label) for key, label, _ in sheets] == [(f"p{n + 1:03d}", f"FIG. {n}") for n in range(1, 10)]
    assert sheets[1][2] == "FIG. 2 is a rear and bottom perspective view thereof."
    # a title that the right column's citations ran into ("Stripping tool for leafy veg CPC ........ A47J ...")
    path = shared_data / "us-design-pdfs" / "87-USD785767.pdf"
    [document] = reader.read(Unit(str(path), "pdf", path, [path]))
    assert document.patent.title == "Tub drain hair collector"
    path = shared_data / "us-design-pdfs" / "103-USD528368.pdf"  # "an “ice chest with wheels, as shown ..."
    [document] = reader.read(Unit(str(path), "pdf", path, [path]))
    assert document.patent.title == "Ice chest with wheels"

    def broken(textpage, width):
        raise ValueError("no boxes")

    monkeypatch.setattr(pdf_module, "_by_columns", broken)  # the page keeps its text, in the layer's order
    [document] = reader.read(Unit(str(path), "pdf", path, [path]))
    assert "ice chest with wheels" in document.patent.paragraphs[0].text


@pytest.mark.slow
def test_design_grants_sheets_and_view_descriptions(shared_data, collection_dir):
    summary = ingest(collection_dir, shared_data / "us-design-grants", jobs=2)
    assert not summary.failures
    assert summary.metadata_files == 1 and summary.ignored_files == 1  # sample_data.csv, ReadMe.txt
    folders = sorted(p for p in (shared_data / "us-design-grants").iterdir() if p.is_dir())
    with Collection.open(collection_dir) as collection:
        assert collection.counts()["patents"] == 50
        for folder in folders:
            pub = folder.name.split("-")[0] + "S1"
            sheets = len(list(folder.glob("*.TIF")))
            figures = collection.figures(patent=pub)
            assert len(figures) == sheets
            assert sum(f.role == FigureRole.DRAWING for f in figures) == sheets - 1
            views = figure_sentences(collection.patent(pub).paragraphs)
            assert views, pub
        described = collection.db.execute(
            "SELECT COUNT(*) FROM figures WHERE description LIKE 'FIG%view%'").fetchone()[0]
        assert described > 100
