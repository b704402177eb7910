"""USPTO's XML formats before v4: grants in ST.32 ``PATDOC`` (2001-2004, DTD 2.4/2.5) and
applications in ``patent-application-publication`` (pap v1.5/1.6, 2001-2004).

Both carry everything needed (numbers, dates, classes, abstract, description, claims and
drawing file names), so they are parsed rather than refused. Keys and roles follow the
v4 reader: ``D00000`` is the front page, ``D000nn`` drawing sheets, other images
(``M``ath, ``C``hem, ``T``able) are not drawings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from figsearch.errors import CorruptInput
from figsearch.ingest import figtext, language, xmlsafe
from figsearch.ingest.base import Reader, Unit, readers, reference, xml_file_references
from figsearch.ingest.numbers import application_number, normalise
from figsearch.ingest.us_xml import image_key, ipc_from_text, locarno, uspc
from figsearch.records import Classification, Document, FigureRole, Paragraph, Patent, Section, SourceImage

ROOTS = ("PATDOC", "patent-application-publication")
_BRIEF = "BRIEF DESCRIPTION OF THE DRAWINGS"
_PATDOC_SECTIONS = {"DRWDESC": _BRIEF, "BRFSUM": "SUMMARY", "DETDESC": "DETAILED DESCRIPTION",
                    "RELAPP": "RELATED APPLICATIONS"}


@readers.register("us-xml-old", help="USPTO XML before v4: PATDOC grants (ST.32, 2001-04), pap applications")
class UsOldXmlReader(Reader):
    name = "us-xml-old"
    multi_document = True

    def sniff(self, head: bytes, path: Path) -> bool:
        return xmlsafe._root_name(head) in ROOTS

    def referenced_files(self, data: bytes) -> list[str]:
        return [n for n in xml_file_references(data) if not n.lower().endswith((".xml", ".sgm", ".nb"))]

    def read(self, unit: Unit) -> Iterator[Document]:
        root = xmlsafe.parse(unit.read_bytes(), unit.source)
        tag = xmlsafe.local(root.tag)
        if tag == "PATDOC":
            yield _patdoc(root, unit.source, unit.path.parent)
        elif tag == "patent-application-publication":
            yield _pap(root, unit.source, unit.path.parent)
        else:
            raise CorruptInput(f"{unit.source}: expected <PATDOC> or <patent-application-publication>, found <{tag}>")


def _pdat(element, path: str) -> str | None:
    return xmlsafe.first_text(element, path)


# -- PATDOC (ST.32 grants) ---------------------------------------------------------------------


def _patdoc(root, source: str, folder: Path) -> Document:
    b100 = root.find("SDOBI/B100")
    number = _pdat(b100, "B110/DNUM") if b100 is not None else None
    if not number:
        raise CorruptInput(f"{source}: PATDOC without a patent number (B110)")
    pub = normalise(_pdat(b100, "B190") or "US", number, _pdat(b100, "B130"))
    b500 = root.find("SDOBI/B500")
    patent = Patent(
        publication_number=pub.publication_number,
        office=pub.office,
        number=pub.number,
        kind=pub.kind,
        title=_pdat(b500, "B540") if b500 is not None else None,
        publication_date=xmlsafe.iso_date(_pdat(b100, "B140/DATE")),
        filing_date=xmlsafe.iso_date(_pdat(root, "SDOBI/B200/B220/DATE")),
        application_number=application_number("US", _pdat(root, "SDOBI/B200/B210/DNUM")),
        language="en",
        classifications=_patdoc_classes(b500, design=pub.number.startswith("D")),
        source_path=source,
        source_format="us-xml-old",
    )
    abstract = root.find("SDOAB")
    if abstract is not None:
        patent.abstract = " ".join(xmlsafe.text_of(p) for p in abstract.iter("PARA")) or None
    description = root.find("SDODE")
    if description is not None:
        patent.paragraphs = list(_patdoc_paragraphs(description))
    claims = root.find("SDOCL")
    if claims is not None:
        patent.claims = [t for t in (xmlsafe.text_of(c) for c in claims.iter("CLM")) if t]
    images = []
    for emi in root.iter("EMI"):
        name = (emi.get("FILE") or "").strip()
        if name and name.upper().endswith((".TIF", ".TIFF", ".PNG", ".JPG")):
            in_drawings = any(a.tag == "SDODR" for a in emi.iterancestors())
            images.append(_image(name, folder, in_drawings))
    images = list({i.key: i for i in images if i is not None}.values())
    language.annotate(patent, "en")
    figtext.assign(images, figtext.figure_sentences(patent.paragraphs))
    return Document(patent=patent, images=images)


def _patdoc_classes(b500, design: bool) -> list[Classification]:
    out: list[Classification] = []
    if b500 is None:
        return out
    for tag in ("B510/B511", "B510/B512"):
        for element in b500.findall(tag):
            text = "".join(element.itertext()).strip("\n\r\t")  # fixed-width: spaces matter
            if design and re.fullmatch(r"\d{4}", text.strip()):
                out.append(Classification("Locarno", locarno(text)))
                continue
            # "G06F 1516": subclass, group right-aligned in 3 characters, subgroup
            match = re.match(r"^([A-H]\d\d[A-Z])(.{3})(\d+)", text)
            if match and match.group(2).strip().isdigit():
                out.append(Classification("IPC", f"{match.group(1)} {match.group(2).strip()}/{match.group(3)}"))
    for tag in ("B520/B521", "B520/B522"):
        for element in b500.findall(tag):
            code = uspc("".join(element.itertext()).strip("\n\r\t"))
            if code:
                out.append(Classification("USPC", code))
    return list(dict.fromkeys(out))


def _patdoc_paragraphs(description) -> Iterator[Paragraph]:
    for section in description:
        if not isinstance(section.tag, str):
            continue
        heading = _PATDOC_SECTIONS.get(section.tag)
        for element in section.iter("H", "PARA"):
            if element.tag == "H":
                heading = xmlsafe.text_of(element) or heading
                continue
            text = xmlsafe.text_of(element)
            if text:
                number = (element.get("ID") or "").removeprefix("P-").lstrip("0") or None
                yield Paragraph(text=text, number=number, section=Section.DESCRIPTION, heading=heading)


# -- patent-application-publication (pap v1.x) --------------------------------------------------


def _pap(root, source: str, folder: Path) -> Document:
    biblio = root.find("subdoc-bibliographic-information")
    if biblio is None:
        raise CorruptInput(f"{source}: <patent-application-publication> without bibliographic data")
    number = _pdat(biblio, "document-id/doc-number")
    if not number:
        raise CorruptInput(f"{source}: application without a publication number")
    pub = normalise(_pdat(biblio, "document-id/country-code") or "US", number, _pdat(biblio, "document-id/kind-code"))
    tech = biblio.find("technical-information")
    patent = Patent(
        publication_number=pub.publication_number,
        office=pub.office,
        number=pub.number,
        kind=pub.kind,
        title=_pdat(tech, "title-of-invention") if tech is not None else None,
        publication_date=xmlsafe.iso_date(_pdat(biblio, "document-id/document-date")),
        filing_date=xmlsafe.iso_date(_pdat(biblio, "domestic-filing-data/filing-date")),
        application_number=application_number("US", _pdat(biblio, "domestic-filing-data/application-number/doc-number")),
        language="en",
        classifications=_pap_classes(tech),
        source_path=source,
        source_format="us-xml-old",
    )
    abstract = root.find("subdoc-abstract")
    if abstract is not None:
        patent.abstract = " ".join(xmlsafe.text_of(p) for p in abstract.iter("paragraph")) or None
    description = root.find("subdoc-description")
    if description is not None:
        patent.paragraphs = list(_pap_paragraphs(description))
    claims = root.find("subdoc-claims")
    if claims is not None:
        patent.claims = [t for t in (xmlsafe.text_of(c) for c in claims.iter("claim")) if t]
    images = []
    for image in root.iter("image"):
        name = (image.get("file") or "").strip()
        if name:
            in_drawings = any(a.tag == "subdoc-drawings" for a in image.iterancestors())
            images.append(_image(name, folder, in_drawings))
    images = list({i.key: i for i in images if i is not None}.values())
    language.annotate(patent, "en")
    figtext.assign(images, figtext.figure_sentences(patent.paragraphs))
    return Document(patent=patent, images=images)


def _pap_classes(tech) -> list[Classification]:
    out: list[Classification] = []
    if tech is None:
        return out
    for element in tech.iterfind("classification-ipc//ipc"):
        code = ipc_from_text(xmlsafe.text_of(element))
        if code:
            out.append(Classification("IPC", code))
    for element in tech.iterfind("classification-us//uspc"):
        klass, sub = (_pdat(element, "class") or "").strip(), (_pdat(element, "subclass") or "").strip()
        code = uspc(klass.rjust(3) + sub) if klass else None
        if code:
            out.append(Classification("USPC", code))
    return list(dict.fromkeys(out))


def _pap_paragraphs(description) -> Iterator[Paragraph]:
    heading = None
    for element in description.iter("heading", "paragraph"):
        if element.tag == "heading":
            heading = xmlsafe.text_of(element) or heading
            continue
        if any(a.tag in ("paragraph", "table-cwu") for a in element.iterancestors()):
            continue
        parent = element.getparent()
        section = next((a.tag for a in element.iterancestors() if a.tag == "brief-description-of-drawings"), None)
        if section and (heading is None or not figtext.BRIEF_HEADING.search(heading)):
            heading = _BRIEF
        number_el = element.find("number")
        number = xmlsafe.text_of(number_el).rstrip(".") if number_el is not None else None
        text = xmlsafe.text_of(element, ("number", "table-cwu", "in-line-formula-skip"))
        if text and parent is not None:
            yield Paragraph(text=text, number=number or None, section=Section.DESCRIPTION, heading=heading)


def _image(name: str, folder: Path, in_drawings: bool) -> SourceImage | None:
    key = image_key(name)
    if key == "D00000":
        role = FigureRole.FRONT_PAGE
    elif in_drawings and key.startswith("D"):
        role = FigureRole.DRAWING
    else:
        role = FigureRole.NON_DRAWING
    path = reference(folder, name)
    return SourceImage(key=key, path=path, role=role) if path is not None else None
