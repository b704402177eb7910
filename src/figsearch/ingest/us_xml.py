"""USPTO XML v4.x (``us-patent-grant``, ``us-patent-application``, 2005 onwards).

Single documents (bulk-data layout: ``US...-20250626.XML`` next to its ``-D000nn.TIF``
sheets) and the weekly bulk files that glue thousands of documents together (the runner
splits those into one unit per document). Sheet ``-D00000`` is the front-page image and
repeats a drawing; ``img-content`` table/math/chem/character images are not drawings.
A figure's key is the tail of its file name (``D00003``, ``C00001``).
"""

from __future__ import annotations

import logging

import re
from collections.abc import Iterator
from pathlib import Path

from figsearch.errors import CorruptInput
from figsearch.ingest import figtext, language, xmlsafe
from figsearch.ingest.base import Reader, Unit, readers, reference, xml_file_references
from figsearch.ingest.numbers import application_number, normalise
from figsearch.records import Classification, Document, FigureRole, Paragraph, Patent, Section, SourceImage

log = logging.getLogger(__name__)

ROOTS = ("us-patent-grant", "us-patent-application")
_SKIP = ("maths", "chemistry", "tables", "img", "table-external-doc")
_BRIEF = "BRIEF DESCRIPTION OF THE DRAWINGS"


@readers.register("us-xml", help="USPTO XML v4.x (us-patent-grant / us-patent-application), bulk files too")
class UsXmlReader(Reader):
    name = "us-xml"
    multi_document = True

    def sniff(self, head: bytes, path: Path) -> bool:
        return xmlsafe._root_name(head) in ROOTS

    def referenced_files(self, data: bytes) -> list[str]:
        return [n for n in xml_file_references(data) if not n.lower().endswith((".xml", ".sgm"))]

    def read(self, unit: Unit) -> Iterator[Document]:
        root = xmlsafe.parse(unit.read_bytes(), unit.source)
        if xmlsafe.local(root.tag) not in ROOTS:
            raise CorruptInput(f"{unit.source}: expected <us-patent-grant> or <us-patent-application>, "
                               f"found <{xmlsafe.local(root.tag)}>")
        yield parse_document(root, unit.source, unit.path.parent)


def parse_document(root, source: str, folder: Path) -> Document:
    biblio = root.find("us-bibliographic-data-grant")
    if biblio is None:
        biblio = root.find("us-bibliographic-data-application")
    if biblio is None:
        raise CorruptInput(f"{source}: <{root.tag}> without bibliographic data")
    doc_id = biblio.find("publication-reference/document-id")
    number = xmlsafe.first_text(doc_id, "doc-number")
    if not number:
        raise CorruptInput(f"{source}: US document without a publication number")
    pub = normalise(xmlsafe.first_text(doc_id, "country") or "US", number, xmlsafe.first_text(doc_id, "kind"))
    patent = Patent(
        publication_number=pub.publication_number,
        office=pub.office,
        number=pub.number,
        kind=pub.kind,
        title=xmlsafe.first_text(biblio, "invention-title"),
        publication_date=xmlsafe.iso_date(xmlsafe.first_text(doc_id, "date")),
        filing_date=xmlsafe.iso_date(xmlsafe.first_text(biblio, "application-reference/document-id/date")),
        application_number=application_number(
            xmlsafe.first_text(biblio, "application-reference/document-id/country") or "US",
            xmlsafe.first_text(biblio, "application-reference/document-id/doc-number")),
        language=(root.get("lang") or "en").lower(),
        classifications=classifications(biblio),
        source_path=source,
        source_format="us-xml",
    )
    abstract = root.find("abstract")
    if abstract is not None:
        patent.abstract = " ".join(xmlsafe.text_of(p, _SKIP) for p in abstract.iter("p")) or None
    description = root.find("description")
    if description is not None:
        patent.paragraphs = list(_paragraphs(description))
    claims = root.find("claims")
    if claims is not None:
        patent.claims = [t for t in (xmlsafe.text_of(c, _SKIP) for c in claims.iter("claim")) if t]
    images = _images(root, folder)
    language.annotate(patent, patent.language)  # US documents state their language on the root
    figtext.assign(images, figtext.figure_sentences(patent.paragraphs))
    return Document(patent=patent, images=images)


def classifications(biblio) -> list[Classification]:
    out: list[Classification] = []
    for element in biblio.findall("classifications-ipcr/classification-ipcr"):
        code = _structured(element)
        if code:
            out.append(Classification("IPC", code))
    for element in biblio.iterfind("classifications-cpc//classification-cpc"):
        code = _structured(element)
        if code:
            out.append(Classification("CPC", code))
    for element in biblio.findall("classification-ipc"):  # v4.0-4.1: "G06F015/00"
        for child in element:
            if child.tag in ("main-classification", "further-classification"):
                code = ipc_from_text(child.text)
                if code:
                    out.append(Classification("IPC", code))
    for element in biblio.findall("classification-locarno/main-classification"):
        code = locarno(element.text)
        if code:
            out.append(Classification("Locarno", code))
    for element in biblio.findall("classification-national"):
        for child in element:
            if child.tag in ("main-classification", "further-classification"):
                code = uspc(child.text)
                if code:
                    out.append(Classification("USPC", code))
    return list(dict.fromkeys(out))


def _structured(element) -> str | None:
    parts = [xmlsafe.first_text(element, tag) or "" for tag in ("section", "class", "subclass", "main-group", "subgroup")]
    if not all(parts[:3]) or not parts[3]:
        return None
    return f"{parts[0]}{parts[1]}{parts[2]} {parts[3].lstrip('0') or '0'}/{parts[4] or '00'}"


_IPC_TEXT = re.compile(r"^\s*([A-H]\d\d[A-Z])\s*0*(\d+)\s*/\s*(\d+)")


def ipc_from_text(text: str | None) -> str | None:
    match = _IPC_TEXT.match(text or "")
    return f"{match.group(1)} {match.group(2)}/{match.group(3)}" if match else None


def locarno(text: str | None) -> str | None:
    digits = re.sub(r"\D", "", text or "")
    return f"{digits[:2]}-{digits[2:4]}" if len(digits) == 4 else None


def uspc(text: str | None) -> str | None:
    """USPTO's fixed-width national class -> ``CLASS/SUBCLASS``.

    The class fills 3 characters, the subclass 3 digits and an optional extension (decimal
    digits or letters): ``D 7654`` -> ``D7/654``; `` D74012`` -> ``D7/401.2``; ``D14486`` ->
    ``D14/486``; ``709203`` -> ``709/203``; ``600300000`` -> ``600/300``; ``D21801-805`` ->
    ``D21/801-805``.
    """
    raw = (text or "").rstrip("\n\r\t ")
    if len(raw.strip()) < 4:
        return raw.strip() or None
    klass, sub = raw[:3].replace(" ", ""), raw[3:]
    if not klass:
        return None
    main, extension = sub[:3].strip(), sub[3:].strip()
    if main.isdigit():
        main = main.lstrip("0") or "0"
    if extension.isdigit():
        extension = extension.rstrip("0")
        extension = f".{extension}" if extension else ""
    return f"{klass}/{main}{extension}" if main else klass


def _paragraphs(description) -> Iterator[Paragraph]:
    heading = None
    in_brief = False
    for element in description.iter():
        tag = element.tag
        if not isinstance(tag, str):
            # processing instructions mark the sections in v4.0-4.1 (<?brief-description-of-drawings ...?>)
            target = getattr(element, "target", "") or ""
            if target.lower() in ("brief-description-of-drawings", "drwdesc"):
                in_brief = 'end="lead"' in (element.text or "")
                heading = _BRIEF if in_brief else None
            continue
        if tag == "heading":
            heading = xmlsafe.text_of(element) or heading
        elif tag == "description-of-drawings":
            in_brief = True
            heading = _BRIEF
        elif tag == "p" and not any(a.tag == "p" for a in element.iterancestors()):
            text = xmlsafe.text_of(element, _SKIP)
            if text:
                yield Paragraph(text=text, number=element.get("num") or None, section=Section.DESCRIPTION,
                                heading=heading)


_KEY = re.compile(r"-([A-Z]\d{5})$", re.I)


def image_key(name: str) -> str:
    stem = Path(name).stem
    match = _KEY.search(stem)
    return match.group(1).upper() if match else stem


def _images(root, folder: Path) -> list[SourceImage]:
    images: list[SourceImage] = []
    seen: set[str] = set()
    for img in root.iter("img"):
        name = (img.get("file") or "").strip()
        if not name or name in seen:
            continue
        seen.add(name)
        key = image_key(name)
        content = (img.get("img-content") or "drawing").lower()
        in_drawings = any(a.tag == "drawings" for a in img.iterancestors())
        if key == "D00000":
            role = FigureRole.FRONT_PAGE
        elif content == "drawing" and in_drawings:
            role = FigureRole.DRAWING
        else:
            role = FigureRole.NON_DRAWING
        path = reference(folder, name)
        if path is None:
            log.warning("%s: drawing reference %r leaves the document's folder; ignored", folder, name)
            continue
        images.append(SourceImage(key=key, path=path, role=role))
    return images
