"""The patent XML readers (EP, US v4, US before v4) and safe XML parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import ep_xml, us_xml

from figsearch.errors import CorruptInput, FigsearchError
from figsearch.ingest import xmlsafe
from figsearch.ingest.base import Unit, readers
from figsearch.ingest.detect import classify
from figsearch.records import FigureRole, Section


def read(tmp_path: Path, text: str | bytes, name="doc.xml", reader=None):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    reader = reader or classify(path).name
    return list(readers.create(reader).read(Unit(str(path), reader, path, [path])))


def test_ep_document(tmp_path):
    [doc] = read(tmp_path, ep_xml(figures=3))
    patent = doc.patent
    assert patent.publication_number == "EP1234567A1"
    assert (patent.office, patent.number, patent.kind) == ("EP", "1234567", "A1")
    assert patent.title == "Widget holder"  # English among the B541/B542 pairs
    assert patent.publication_date == "2020-01-15" and patent.filing_date == "2018-03-01"
    assert patent.application_number == "EP18161234"  # B210 "18161234.5" without the check digit
    assert [c.code for c in patent.classifications] == ["B65D 43/02"]
    assert patent.abstract == "A holder (10) for widgets."
    assert patent.claims == ["A holder (10)."]
    first = patent.paragraphs[0]
    assert (first.number, first.heading, first.text) == ("0001", "FIELD", "The holder 10 has a base 12 & a lid 14.")
    brief = [p for p in patent.paragraphs if p.heading == "BRIEF DESCRIPTION OF THE DRAWINGS"]
    assert brief and "FIG. 2 is a view number 2" in brief[0].text
    roles = {image.key: image.role for image in doc.images}
    assert roles == {"af001": FigureRole.FRONT_PAGE, "b0001": FigureRole.NON_DRAWING, "f0001": FigureRole.DRAWING,
                     "f0002": FigureRole.DRAWING, "f0003": FigureRole.DRAWING}
    f2 = next(i for i in doc.images if i.key == "f0002")
    assert f2.label == "FIG. 2" and f2.description == "FIG. 2 is a view number 2 of the widget."
    assert f2.path == tmp_path / "imgf0002.tif"


def test_us_application_and_design_grant(tmp_path):
    [doc] = read(tmp_path, us_xml(sheets=2))
    assert doc.patent.publication_number == "US20250204297A1"
    assert doc.patent.application_number == "US18976479"
    assert doc.patent.title == "Seeding machine"
    assert [c.code for c in doc.patent.classifications] == ["A01B 63/32"]
    assert [(i.key, i.role, i.label) for i in doc.images] == [
        ("D00000", FigureRole.FRONT_PAGE, None), ("D00001", FigureRole.DRAWING, "FIG. 1"),
        ("D00002", FigureRole.DRAWING, "FIG. 2")]
    brief = [p for p in doc.patent.paragraphs if p.text.startswith("FIG. 1 is")]
    assert brief[0].heading == "BRIEF DESCRIPTION OF THE DRAWINGS" and brief[0].number == "0001"
    [grant] = read(tmp_path, us_xml(number="D0909824", kind="S1", root="us-patent-grant", sheets=3, figures=7,
                                    design=True), name="grant.xml")
    assert grant.patent.publication_number == "USD0909824S1"
    assert {(c.scheme, c.code) for c in grant.patent.classifications} == {("Locarno", "07-03"), ("USPC", "D7/654")}
    # seven figures on three sheets: the sentences stay paragraphs, no sheet gets a guessed label
    assert sum(p.text.startswith("FIG.") for p in grant.patent.paragraphs) == 7
    assert all(i.label is None for i in grant.images)


PATDOC = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE PATDOC SYSTEM "ST32-US-Grant-025xml.dtd" [
<!ENTITY USD0435854-20010102-D00001.TIF SYSTEM "USD0435854-20010102-D00001.TIF" NDATA TIF>
]>
<PATDOC DTD="2.4"><SDOBI><B100><B110><DNUM><PDAT>D0435854</PDAT></DNUM></B110><B130><PDAT>S</PDAT></B130>
<B140><DATE><PDAT>20010102</PDAT></DATE></B140><B190><PDAT>US</PDAT></B190></B100>
<B200><B210><DNUM><PDAT>29112233</PDAT></DNUM></B210></B200>
<B500><B510><B511><PDAT>1402</PDAT></B511></B510><B520><B521><PDAT>D14480</PDAT></B521></B520>
<B540><STEXT><PDAT>Disc cartridge</PDAT></STEXT></B540></B500></SDOBI>
<SDODE><DRWDESC><BTEXT><PARA ID="P-00001" LVL="7"><PTEXT><PDAT>FIG. 1 is a perspective view of a disc
cartridge.</PDAT></PTEXT></PARA></BTEXT></DRWDESC></SDODE>
<SDOCL><CL><CLM ID="CLM-00001"><PARA ID="P-00002"><PTEXT><PDAT>The ornamental design for a disc cartridge.</PDAT>
</PTEXT></PARA></CLM></CL></SDOCL>
<SDODR ID="DRAWINGS"><EMI ID="EMI-D00001" FILE="USD0435854-20010102-D00001.TIF"/></SDODR></PATDOC>
"""

PAP = """<?xml version="1.0" encoding="UTF-8"?>
<patent-application-publication><subdoc-bibliographic-information>
<document-id><doc-number>20010000044</doc-number><kind-code>A1</kind-code><document-date>20010315</document-date>
</document-id><domestic-filing-data><application-number><doc-number>09342986</doc-number></application-number>
<filing-date>19990629</filing-date></domestic-filing-data>
<technical-information><classification-ipc><classification-ipc-primary><ipc>G06F017/60</ipc>
</classification-ipc-primary></classification-ipc><classification-us><classification-us-primary><uspc>
<class>705</class><subclass>026000</subclass></uspc></classification-us-primary></classification-us>
<title-of-invention>Transacting business</title-of-invention></technical-information>
</subdoc-bibliographic-information>
<subdoc-abstract><paragraph id="A-00001">A business model.</paragraph></subdoc-abstract>
<subdoc-description><brief-description-of-drawings><heading>Brief Description of Drawings</heading>
<paragraph id="P-00014"><number>14.</number><cross-reference target="DRAWINGS">FIG. 1</cross-reference> is a
flow chart.</paragraph></brief-description-of-drawings></subdoc-description>
<subdoc-claims><claim id="CLM-00001"><claim-text>1. A method.</claim-text></claim></subdoc-claims>
<subdoc-drawings id="DRAWINGS"><figure id="figure-D00001"><image id="EMI-D00001"
 file="US20010000044A1-20010315-D00001.TIF"/></figure></subdoc-drawings>
</patent-application-publication>
"""


def test_patdoc_grant(tmp_path):
    [doc] = read(tmp_path, PATDOC)
    patent = doc.patent
    assert patent.publication_number == "USD0435854S1"
    assert patent.title == "Disc cartridge" and patent.publication_date == "2001-01-02"
    assert patent.application_number == "US29112233"
    assert {(c.scheme, c.code) for c in patent.classifications} == {("Locarno", "14-02"), ("USPC", "D14/480")}
    assert patent.claims == ["The ornamental design for a disc cartridge."]
    assert [(i.key, i.label) for i in doc.images] == [("D00001", "FIG. 1")]


def test_pap_application(tmp_path):
    [doc] = read(tmp_path, PAP)
    patent = doc.patent
    assert patent.publication_number == "US20010000044A1"
    assert patent.application_number == "US09342986" and patent.filing_date == "1999-06-29"
    assert {(c.scheme, c.code) for c in patent.classifications} == {("IPC", "G06F 17/60"), ("USPC", "705/26")}
    [paragraph] = patent.paragraphs
    assert paragraph.number == "14" and paragraph.section == Section.DESCRIPTION
    assert paragraph.text == "FIG. 1 is a flow chart."
    assert doc.images[0].description == "FIG. 1 is a flow chart."


def test_xxe_does_not_read_local_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    attack = ep_xml().replace(
        '<!DOCTYPE ep-patent-document PUBLIC "-//EPO//EP PATENT DOCUMENT 1.5//EN" "ep-patent-document-v1-5.dtd">',
        f'<!DOCTYPE ep-patent-document [<!ENTITY xxe SYSTEM "file://{secret}">]>',
    ).replace("Widget holder", "&xxe;")
    with pytest.raises(CorruptInput, match="declares entities"):
        read(tmp_path, attack)


def test_xxe_without_declaration_subset_is_not_resolved(tmp_path):
    # an external DTD is never loaded: an undefined entity stays unexpanded or fails, never reads a file
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY xxe SYSTEM "file://{secret}">')
    attack = ep_xml().replace('"ep-patent-document-v1-5.dtd"', f'"file://{dtd}"').replace("Widget holder", "&xxe;")
    try:
        docs = read(tmp_path, attack)
    except FigsearchError:
        return
    assert "TOP-SECRET" not in (docs[0].patent.title or "")


def test_billion_laughs_refused_quickly(tmp_path):
    lol = "".join(f'<!ENTITY lol{i} "{"&lol%d;" % (i - 1) * 10}">' for i in range(1, 10))
    attack = f'<?xml version="1.0"?><!DOCTYPE us-patent-grant [<!ENTITY lol0 "lol">{lol}]><us-patent-grant>&lol9;</us-patent-grant>'
    with pytest.raises(CorruptInput, match="entities"):
        read(tmp_path, attack, reader="us-xml")


def test_truncated_xml_is_refused(tmp_path):
    text = us_xml()
    with pytest.raises(CorruptInput, match="malformed XML"):
        read(tmp_path, text[: len(text) // 2], reader="us-xml")


def test_unescaped_ampersand_is_read_as_text(tmp_path):
    [doc] = read(tmp_path, ep_xml(title="Kador & Partner holder"))
    assert doc.patent.title == "Kador & Partner holder"


def test_legacy_encoding_is_read(tmp_path):
    data = ep_xml(title="Caf\u00e9 holder").encode("cp1252")
    [doc] = read(tmp_path, data)
    assert doc.patent.title == "Caf\u00e9 holder"


def test_wrong_root_and_schemes_are_not_patents(tmp_path):
    path = tmp_path / "cpc-scheme.xml"
    path.write_text('<?xml version="1.0"?><class-scheme><classification-item/></class-scheme>')
    kind = classify(path)
    assert (kind.name, kind.detail) == ("xml-other", "class-scheme")


def test_bulk_file_ranges():
    one, two = us_xml(number="20250000001").encode(), us_xml(number="20250000002").encode()
    data = one + two
    ranges = xmlsafe.document_ranges(data)
    assert [data[a:b] for a, b in ranges] == [one, two]
    assert xmlsafe.document_ranges(one) == [(0, len(one))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=4000), junk=st.binary(max_size=40))
def test_damaged_xml_never_crashes(tmp_path, cut, junk):
    """Any prefix of a document with junk appended either parses or raises CorruptInput, nothing else."""
    text = ep_xml().encode()
    data = text[:cut] + junk
    try:
        root = xmlsafe.parse(data, "fuzz.xml")
    except CorruptInput:
        return
    assert root is not None


def test_deep_nesting_refused(tmp_path):
    deep = '<?xml version="1.0"?><us-patent-grant>' + "<a>" * 3000 + "</a>" * 3000 + "</us-patent-grant>"
    with pytest.raises(CorruptInput, match="nested more than 256"):
        read(tmp_path, deep, reader="us-xml")


def test_utf16_document(tmp_path):
    data = ep_xml(number="7654321").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    path = tmp_path / "utf16.xml"
    path.write_bytes(data)
    assert classify(path).name == "ep-xml"
    [doc] = read(tmp_path, data, name="utf16.xml")
    assert doc.patent.publication_number == "EP7654321A1" and len(doc.images) == 4


def test_root_found_after_prolog_only(tmp_path):
    assert xmlsafe._root_name(b'<!-- EPO --><!DOCTYPE x [<!ENTITY a SYSTEM "a.tif" NDATA TIF>]><?pi?>\n<PATDOC>') == "PATDOC"
    assert xmlsafe._root_name(b"PK\x03\x04....<ep-patent-document>") is None


def test_aps_text_refused_with_reason(tmp_path):
    path = tmp_path / "pftaps19760106.txt"
    path.write_bytes(b"PATN\nWKU  039305347\nSRC  5\n")
    kind = classify(path)
    assert kind.name == "refused" and "APS" in kind.detail


def test_drawing_reference_cannot_leave_the_folder(tmp_path):
    secret = tmp_path / "secret.tif"
    secret.write_bytes(b"II*\x00not really")
    inner = tmp_path / "inner"
    inner.mkdir()
    text = ep_xml(figures=1).replace('file="imgf0001.tif"', 'file="../secret.tif"')
    [doc] = read(inner, text)
    assert all(image.path.parent == inner for image in doc.images)
    assert "f0001" not in {image.key for image in doc.images}


def test_application_numbers_in_one_form():
    from figsearch.ingest.numbers import application_number

    assert application_number("US", "29/740,061") == application_number("us", "29740061") == "US29740061"
    assert application_number("EP", "05255002.7") == application_number("EP", "05255002") == "EP05255002"
    assert application_number("US", "") is None and application_number(None, "123") is None
